//! A subscription watcher on the `electrum-spv` adapter: subscribes to addresses and prints
//! each verified change (transactions that appeared, confirmed or vanished) until stopped.
//! It survives server restarts: the client reconnects, resubscribes, and reports what changed
//! while it was away.
//!
//! ```text
//! cargo run -p electrum-spv --example watch -- --network regtest --server tcp://127.0.0.1:PORT ADDRESS...
//! ```

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use electrum_spv::core::hash::{ScriptHash, Txid};
use electrum_spv::core::script::TxHeight;
use electrum_spv::{
    Client, ClientConfig, Error, HeaderChain, Network, Notice, ScriptRef, ServerAddr,
    verified_history,
};
use tokio_stream::StreamExt;

/// An address, its script, and its transactions (confirmed or not) last seen.
type Watched = (String, Vec<u8>, BTreeMap<Txid, bool>);

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("watch: {e}");
        std::process::exit(1);
    }
}

fn usage() -> Error {
    Error::InvalidArgument(
        "usage: watch --network mainnet|testnet|testnet4|signet|regtest --server URL ADDRESS..."
            .into(),
    )
}

async fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut network, mut server, mut addresses) = (Network::Mainnet, None, Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--network" => {
                let name = it.next().ok_or_else(usage)?;
                network = Network::ALL
                    .into_iter()
                    .find(|n| n.name() == name)
                    .ok_or_else(usage)?;
            }
            "--server" => {
                let s = it.next().ok_or_else(usage)?;
                server = Some(
                    ServerAddr::from_str(s).map_err(|e| Error::InvalidArgument(e.to_string()))?,
                );
            }
            other => addresses.push(other.to_owned()),
        }
    }
    let server = server.ok_or_else(usage)?;
    if addresses.is_empty() {
        return Err(usage());
    }
    let client = Client::connect(&server, &ClientConfig::new(network)).await?;
    let mut notices = client.notifications();
    let mut chain = HeaderChain::from_latest_checkpoint(network);
    chain.sync(&client, |_, _| {}).await?;

    let mut watched: HashMap<ScriptHash, Watched> = HashMap::new();
    for address in addresses {
        let script = script_of(&address, network)?;
        let history = verified_history(&client, &mut chain, ScriptRef::Script(&script)).await?;
        println!(
            "{address}: {} transactions, status verified",
            history.txs.len()
        );
        let seen = history
            .txs
            .iter()
            .map(|t| (t.txid, matches!(t.height, TxHeight::Confirmed(_))))
            .collect();
        watched.insert(
            electrum_spv::core::script_hash(&script),
            (address, script, seen),
        );
    }
    client.block_headers_subscribe().await?;
    while let Some(notice) = notices.next().await {
        let hash = match notice {
            Ok(Notice::ScriptStatus { script_hash, .. }) => script_hash,
            Ok(Notice::Header { height, .. }) => {
                chain.sync(&client, |_, _| {}).await?;
                println!("tip {height} (verified)");
                continue;
            }
            Ok(Notice::Disconnected(why)) => {
                println!("connection lost ({why}); reconnecting");
                continue;
            }
            Ok(Notice::Reconnected { attempts }) => {
                println!("reconnected after {attempts} attempts");
                continue;
            }
            Ok(Notice::Outpoint(_)) => continue,
            Err(missed) => {
                println!("missed {missed} notifications; re-checking every address");
                continue;
            }
        };
        let Some((address, script, before)) = watched.get_mut(&hash) else {
            continue;
        };
        let history = verified_history(&client, &mut chain, ScriptRef::Script(script)).await?;
        let after: BTreeMap<Txid, bool> = history
            .txs
            .iter()
            .map(|t| (t.txid, matches!(t.height, TxHeight::Confirmed(_))))
            .collect();
        for (txid, confirmed) in &after {
            match before.get(txid) {
                None => println!(
                    "{address}: {txid} appeared{}",
                    if *confirmed { " confirmed" } else { "" }
                ),
                Some(false) if *confirmed => println!("{address}: {txid} confirmed"),
                _ => {}
            }
        }
        for txid in before.keys().filter(|t| !after.contains_key(t)) {
            println!("{address}: {txid} vanished");
        }
        *before = after;
    }
    Err(Error::Closed)
}

fn script_of(address: &str, network: Network) -> Result<Vec<u8>, Error> {
    let net = match network {
        Network::Mainnet => bitcoin::Network::Bitcoin,
        Network::Testnet3 => bitcoin::Network::Testnet,
        Network::Testnet4 => bitcoin::Network::Testnet4,
        Network::Signet => bitcoin::Network::Signet,
        Network::Regtest => bitcoin::Network::Regtest,
    };
    let a = bitcoin::Address::from_str(address)
        .map_err(|e| Error::InvalidArgument(format!("{address}: {e}")))?
        .require_network(net)
        .map_err(|e| Error::InvalidArgument(format!("{address}: {e}")))?;
    Ok(a.script_pubkey().into_bytes())
}
