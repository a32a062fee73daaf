//! Network ids: which chain's rules and genesis a session or verifier uses.

use electrum_spv_core::chain::{MAINNET, Params, REGTEST, SIGNET, TESTNET3, TESTNET4};

/// Bitcoin mainnet.
pub const ESPV_NETWORK_MAINNET: u32 = 0;
/// testnet3 (20-minute minimum-difficulty rule).
pub const ESPV_NETWORK_TESTNET3: u32 = 1;
/// testnet4 (BIP94).
pub const ESPV_NETWORK_TESTNET4: u32 = 2;
/// The default signet.
pub const ESPV_NETWORK_SIGNET: u32 = 3;
/// regtest (no retargeting).
pub const ESPV_NETWORK_REGTEST: u32 = 4;

/// The parameters of a network id; `None` for an unknown id.
pub(crate) fn params(network: u32) -> Option<&'static Params> {
    Some(match network {
        ESPV_NETWORK_MAINNET => &MAINNET,
        ESPV_NETWORK_TESTNET3 => &TESTNET3,
        ESPV_NETWORK_TESTNET4 => &TESTNET4,
        ESPV_NETWORK_SIGNET => &SIGNET,
        ESPV_NETWORK_REGTEST => &REGTEST,
        _ => return None,
    })
}
