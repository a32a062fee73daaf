//! A subscription watcher on the `electrum-spv` adapter: subscribes to addresses on one or
//! more servers (a pool: histories cross-checked, liars dropped) and prints each verified
//! change (transactions that appeared, confirmed, went back to the mempool or vanished) until
//! stopped. It survives server restarts: each client reconnects, resubscribes, and reports
//! what changed while it was away. The loop is the library's `watch::Watcher`, as the CLI's `subscribe` uses it.
//!
//! ```text
//! cargo run -p electrum-spv --example watch -- --network regtest --server tcp://127.0.0.1:PORT ADDRESS...
//! ```

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use electrum_spv::core::script::TxHeight;
use electrum_spv::watch::{WatchEvent, Watcher};
use electrum_spv::{ClientConfig, Error, Network, Pool, PoolConfig, ServerAddr};
use tokio::sync::Mutex;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("watch: {e}");
        std::process::exit(1);
    }
}

fn usage() -> Error {
    Error::InvalidArgument(
        "usage: watch --network mainnet|testnet|testnet4|signet|regtest --server URL... ADDRESS..."
            .into(),
    )
}

async fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut network, mut servers, mut addresses) = (Network::Mainnet, Vec::new(), Vec::new());
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
                servers.push(
                    ServerAddr::from_str(s).map_err(|e| Error::InvalidArgument(e.to_string()))?,
                );
            }
            other => addresses.push(other.to_owned()),
        }
    }
    if servers.is_empty() || addresses.is_empty() {
        return Err(usage());
    }
    let pool = Pool::connect(&servers, PoolConfig::new(ClientConfig::new(network))).await?;
    let mut names = HashMap::new();
    let mut scripts = Vec::new();
    for address in addresses {
        let script = script_of(&address, network)?;
        names.insert(script.clone(), address);
        scripts.push(script);
    }
    let mut watcher = Watcher::start(Arc::new(Mutex::new(pool)), scripts).await?;
    let mut tips = 0;
    while let Some(event) = watcher.next().await {
        match event {
            WatchEvent::History {
                script,
                history,
                changes,
                first,
            } => {
                let address = names.get(&script).map_or("", String::as_str);
                if first {
                    let n = history.txs.len();
                    println!("{address}: {n} transactions, status verified");
                    continue;
                }
                for txid in &changes.appeared {
                    let confirmed = history
                        .txs
                        .iter()
                        .any(|t| t.txid == *txid && matches!(t.height, TxHeight::Confirmed(_)));
                    let state = if confirmed { " confirmed" } else { "" };
                    println!("{address}: {txid} appeared{state}");
                }
                for txid in &changes.confirmed {
                    println!("{address}: {txid} confirmed");
                }
                for txid in &changes.unconfirmed {
                    println!("{address}: {txid} unconfirmed (its block was reorganised away)");
                }
                for txid in &changes.vanished {
                    println!("{address}: {txid} vanished");
                }
            }
            // The first tip comes with the first histories; later ones are new blocks.
            WatchEvent::Tip { height, .. } => {
                tips += 1;
                if tips > 1 {
                    println!("tip {height} (verified)");
                }
            }
            WatchEvent::Connection { connected } => println!(
                "{}",
                if connected {
                    "reconnected"
                } else {
                    "connection lost; reconnecting"
                }
            ),
            WatchEvent::Error(e) => println!("checking a change failed: {e}"),
        }
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
