//! A BDK wallet synced through electrum-spv-bdk: descriptors in, balance and transactions
//! out, every header, history and transaction verified on the way.
//!
//! ```text
//! cargo run -p electrum-spv-bdk --example bdk_wallet -- [--network N] [--stop-gap 20] \
//!     --server URL [--server URL...] DESCRIPTOR CHANGE_DESCRIPTOR
//! ```
//!
//! Prints one JSON line with the balance (`confirmed`, `trusted_pending`, `untrusted_pending`,
//! `immature`, in satoshis), then one per transaction (`txid`, and `height`, `block_hash`,
//! `time` when confirmed), oldest first.

use std::str::FromStr;

use bdk_wallet::Wallet;
use bdk_wallet::chain::ChainPosition;
use electrum_spv::{ClientConfig, Network, PoolConfig, ServerAddr};
use electrum_spv_bdk::{ChainSource, ScanOptions};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("bdk_wallet: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let mut network = Network::Mainnet;
    let mut stop_gap = 20usize;
    let mut servers = Vec::new();
    let mut descriptors = Vec::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "--network" => {
                let name = value("--network")?;
                network = Network::ALL
                    .into_iter()
                    .find(|n| n.name() == name)
                    .ok_or(format!("unknown network {name}"))?;
            }
            "--stop-gap" => {
                stop_gap = value("--stop-gap")?
                    .parse()
                    .map_err(|e| format!("--stop-gap: {e}"))?;
            }
            "--server" => {
                let url = value("--server")?;
                servers.push(ServerAddr::from_str(&url).map_err(|e| format!("{url}: {e}"))?);
            }
            _ => descriptors.push(a.clone()),
        }
    }
    let [external, internal] = <[String; 2]>::try_from(descriptors)
        .map_err(|_| "give a descriptor and a change descriptor".to_owned())?;
    if servers.is_empty() {
        return Err("give at least one --server".into());
    }
    let mut wallet = Wallet::create(external, internal)
        .network(network.into())
        .create_wallet_no_persist()
        .map_err(|e| format!("descriptors: {e}"))?;
    let source = ChainSource::connect(&servers, PoolConfig::new(ClientConfig::new(network)))
        .await
        .map_err(|e| e.to_string())?;
    let update = source
        .full_scan(
            wallet.start_full_scan().build(),
            stop_gap,
            &ScanOptions::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    wallet.apply_update(update).map_err(|e| e.to_string())?;

    let b = wallet.balance();
    println!(
        "{}",
        serde_json::json!({"balance": {
            "confirmed": b.confirmed.to_sat(),
            "trusted_pending": b.trusted_pending.to_sat(),
            "untrusted_pending": b.untrusted_pending.to_sat(),
            "immature": b.immature.to_sat(),
        }})
    );
    let mut txs: Vec<_> = wallet.transactions().collect();
    txs.sort_by_key(|t| t.chain_position);
    for t in txs {
        let line = match t.chain_position {
            ChainPosition::Confirmed { anchor, .. } => serde_json::json!({
                "txid": t.tx_node.txid.to_string(),
                "height": anchor.block_id.height,
                "block_hash": anchor.block_id.hash.to_string(),
                "time": anchor.confirmation_time,
            }),
            ChainPosition::Unconfirmed { .. } => {
                serde_json::json!({"txid": t.tx_node.txid.to_string()})
            }
        };
        println!("{line}");
    }
    Ok(())
}
