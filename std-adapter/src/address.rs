//! Bitcoin addresses to the output scripts Electrum servers index, checked against the
//! network so a testnet address cannot be watched on mainnet by mistake.

use std::str::FromStr;

use electrum_spv_core::chain::Network;

use crate::Error;

/// The output script of an address of `network` (P2PKH, P2SH, P2WPKH, P2WSH, P2TR, ...).
///
/// # Errors
/// [`Error::InvalidArgument`] when the text is not an address, or is one of another network.
pub fn address_script(address: &str, network: Network) -> Result<Vec<u8>, Error> {
    let unchecked = bitcoin::Address::from_str(address)
        .map_err(|e| Error::InvalidArgument(format!("address {address}: {e}")))?;
    let checked = unchecked.require_network(network.into()).map_err(|_| {
        Error::InvalidArgument(format!(
            "address {address} is not a {} address",
            network.name()
        ))
    })?;
    Ok(checked.script_pubkey().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_p2wpkh_script() {
        let s = address_script(
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            Network::Mainnet,
        )
        .unwrap();
        assert_eq!(
            crate::to_hex(&s),
            "0014751e76e8199196d454941c45d1b3a323f1433bd6"
        );
    }

    #[test]
    fn wrong_network_and_garbage_are_refused() {
        let e = address_script(
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            Network::Testnet3,
        );
        assert!(
            matches!(&e, Err(Error::InvalidArgument(m)) if m.contains("not a testnet")),
            "{e:?}"
        );
        assert!(matches!(
            address_script("not an address", Network::Mainnet),
            Err(Error::InvalidArgument(_))
        ));
    }
}
