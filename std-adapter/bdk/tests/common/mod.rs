//! Wallets and what a user sees of them, shared by the BDK tests.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;

use bdk_wallet::chain::ChainPosition;
use bdk_wallet::{KeychainKind, Wallet};
use bitcoin::{Amount, Network, ScriptBuf, Txid};

/// The stop gap both chain sources are given.
pub const STOP_GAP: usize = 20;

/// BDK's example regtest key (bdk `example-crates`), with BIP84 and BIP86 paths.
const TPRV: &str = "tprv8ZgxMBicQKsPdy6LMhUtFHAgpocR8GC6QmwMSFpZs7h6Eziw3SpThFfczTDh5rW2krkqffa11UpX3XkeTTB2FvzZKWXqPY54Y6Rq4AQ5R8L";

pub fn descriptors(kind: &str) -> (String, String) {
    let (f, purpose) = match kind {
        "wpkh" => ("wpkh", 84),
        _ => ("tr", 86),
    };
    (
        format!("{f}({TPRV}/{purpose}'/1'/0'/0/*)"),
        format!("{f}({TPRV}/{purpose}'/1'/0'/1/*)"),
    )
}

pub fn wallet(kind: &str) -> Wallet {
    let (external, internal) = descriptors(kind);
    Wallet::create(external, internal)
        .network(Network::Regtest)
        .create_wallet_no_persist()
        .expect("descriptors")
}

pub fn script(w: &Wallet, keychain: KeychainKind, index: u32) -> ScriptBuf {
    w.peek_address(keychain, index).script_pubkey()
}

/// Where a transaction is: its anchor (height, block, time), or `None` in the mempool.
pub type Position = Option<(u32, bitcoin::BlockHash, u64)>;

/// What a user sees of a wallet, in comparable form.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub balance: [Amount; 4],
    /// Each transaction's position and fee.
    pub txs: BTreeMap<Txid, (Position, Option<Amount>)>,
    pub unspent: Vec<(bitcoin::OutPoint, Amount, KeychainKind, u32)>,
    pub indices: [Option<u32>; 2],
}

pub fn seen(w: &Wallet) -> Seen {
    let b = w.balance();
    let txs = w
        .transactions()
        .map(|t| {
            let position = match t.chain_position {
                ChainPosition::Confirmed { anchor, .. } => Some((
                    anchor.block_id.height,
                    anchor.block_id.hash,
                    anchor.confirmation_time,
                )),
                ChainPosition::Unconfirmed { .. } => None,
            };
            let fee = w.calculate_fee(&t.tx_node.tx).ok();
            (t.tx_node.txid, (position, fee))
        })
        .collect();
    let mut unspent: Vec<_> = w
        .list_unspent()
        .map(|u| (u.outpoint, u.txout.value, u.keychain, u.derivation_index))
        .collect();
    unspent.sort();
    Seen {
        balance: [
            b.confirmed,
            b.trusted_pending,
            b.untrusted_pending,
            b.immature,
        ],
        txs,
        unspent,
        indices: [
            w.derivation_index(KeychainKind::External),
            w.derivation_index(KeychainKind::Internal),
        ],
    }
}
