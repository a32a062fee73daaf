//! What each command does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use electrum_spv::checkpoints::network_params;
use electrum_spv::core::chain::{Anchor, HeaderVerifier};
use electrum_spv::core::hash::{BlockHash, Txid};
use electrum_spv::watch::{WatchEvent, Watcher};
use electrum_spv::{
    Error, Fault, HeaderChain, Network, Pool, ScriptRef, ServerList, VerifiedHistory,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::target::{Resolved, resolve};
use super::{Args, Command, connect};
use electrum_spv::address::address_script;

/// Prints one result: JSON or text.
fn emit(args: &Args, value: Value, text: impl FnOnce() -> String) {
    if args.json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

pub async fn run(args: Args) -> Result<(), Error> {
    let network = args.network.network();
    if let Command::VerifyHeaders { file, start_height } = &args.command {
        return verify_headers(&args, file, *start_height, network);
    }
    if let Command::Spider { max } = &args.command {
        return spider(&args, *max).await;
    }
    if let Command::P2p { command } = &args.command {
        return super::p2p::run(&args, command).await;
    }
    let mut pool = connect::pool(&args).await?;
    let client = pool.client().cloned().ok_or(Error::Disconnected)?;
    match &args.command {
        Command::Tip => {
            let (height, hash) = tip(&pool)?;
            emit(
                &args,
                json!({"height": height, "hash": hash.to_string()}),
                || format!("{height} {hash}"),
            );
        }
        Command::Headers => {
            let (height, hash) = tip(&pool)?;
            let first = pool.best_chain().map_or(0, HeaderChain::anchor_height);
            emit(
                &args,
                json!({"verified": height + 1 - first, "first": first, "tip": {"height": height, "hash": hash.to_string()}}),
                || format!("ok {} {first}..{height} {hash}", height + 1 - first),
            );
        }
        Command::Header { height } => {
            let header = pool.header_at(*height).await?;
            let hex = electrum_spv::to_hex(&header.to_bytes());
            let hash = header.block_hash();
            emit(
                &args,
                json!({"height": height, "hash": hash.to_string(), "hex": hex}),
                || format!("{height} {hash} {hex}"),
            );
        }
        Command::History(t) => {
            let targets = resolve(t, network)?;
            let refs: Vec<ScriptRef<'_>> = targets.iter().map(Resolved::as_ref).collect();
            let histories = pool.verified_histories_of(&refs).await;
            connect::report_dropped(&pool, 0);
            let tip = tip(&pool)?;
            for (target, history) in targets.iter().zip(histories?) {
                print_history(&args, target, &history, tip);
            }
        }
        Command::Balance(t) => {
            for target in resolve(t, network)? {
                let script = target.script("balance")?;
                let utxos = pool.verified_utxos(script).await;
                connect::report_dropped(&pool, 0);
                let utxos = utxos?;
                let confirmed: u64 = utxos.iter().filter(|u| u.height > 0).map(|u| u.value).sum();
                let unconfirmed: u64 = utxos
                    .iter()
                    .filter(|u| u.height == 0)
                    .map(|u| u.value)
                    .sum();
                emit(
                    &args,
                    json!({"address": target.label, "confirmed": confirmed, "unconfirmed": unconfirmed}),
                    || format!("confirmed {confirmed} sat, unconfirmed {unconfirmed} sat"),
                );
            }
        }
        Command::Utxos(t) => {
            for target in resolve(t, network)? {
                let script = target.script("utxos")?;
                let utxos = pool.verified_utxos(script).await;
                connect::report_dropped(&pool, 0);
                for u in utxos? {
                    let block = u.block_hash.map(|b| b.to_string());
                    emit(
                        &args,
                        json!({"address": target.label, "tx_hash": u.txid.to_string(), "tx_pos": u.vout, "value": u.value, "height": u.height, "block_hash": block}),
                        || format!("{}:{} {} sat height {}", u.txid, u.vout, u.value, u.height),
                    );
                }
            }
        }
        Command::Tx { txid } => {
            let txid = parse_txid(txid)?;
            let raw = client.transaction_get(&txid).await?;
            let hex = electrum_spv::to_hex(&raw);
            emit(&args, json!({"txid": txid.to_string(), "hex": hex}), || {
                hex.clone()
            });
        }
        Command::Broadcast { hex } => {
            let raw = super::hex_arg(hex)
                .map_err(|e| Error::InvalidArgument(format!("transaction hex: {e}")))?;
            let txid = client.transaction_broadcast(&raw).await?;
            emit(&args, json!({"txid": txid.to_string()}), || {
                txid.to_string()
            });
        }
        Command::Fee { blocks } => {
            let fee = pool.estimate_fee(*blocks).await?;
            let sat_vb = fee.map(|btc_kvb| btc_kvb * 1e8 / 1000.0);
            emit(
                &args,
                json!({"blocks": blocks, "btc_per_kvb": fee, "sat_per_vb": sat_vb}),
                || match (fee, sat_vb) {
                    (Some(f), Some(s)) => {
                        format!("{f} BTC/kvB ({s:.2} sat/vB) within {blocks} blocks")
                    }
                    _ => format!("no estimate for {blocks} blocks"),
                },
            );
        }
        Command::Peers => {
            let peers = client.server_peers().await?;
            for p in electrum_spv::server_list::parse_peers(&peers, network) {
                let value = serde_json::to_value(&p).unwrap_or(Value::Null);
                emit(&args, value, || {
                    p.preferred()
                        .map_or_else(|| p.host.clone(), |a| a.to_string())
                });
            }
        }
        Command::Subscribe { addresses } => return subscribe(&args, pool, addresses).await,
        Command::VerifyHeaders { .. } | Command::Spider { .. } | Command::P2p { .. } => {}
    }
    Ok(())
}

/// The pool's best verified tip.
fn tip(pool: &Pool) -> Result<(u32, BlockHash), Error> {
    pool.best_tip().ok_or(Error::Disconnected)
}

fn parse_txid(text: &str) -> Result<Txid, Error> {
    Txid::from_display_hex(text.trim().as_bytes())
        .map_err(|e| Error::InvalidArgument(format!("txid {text}: {e}")))
}

fn print_history(
    args: &Args,
    target: &Resolved,
    history: &VerifiedHistory,
    (height, hash): (u32, BlockHash),
) {
    let rows: Vec<Value> = history
        .txs
        .iter()
        .map(|t| {
            json!({
                "tx_hash": t.txid.to_string(),
                "height": t.height.to_i64(),
                "block_hash": t.block_hash.map(|b| b.to_string()),
            })
        })
        .collect();
    emit(
        args,
        json!({
            "address": target.label,
            "scripthash": target.hash.to_string(),
            "status": history.status.map(|s| s.to_string()),
            "history": rows,
            "tip": {"height": height, "hash": hash.to_string()},
        }),
        || {
            let mut out = format!(
                "{} status {}",
                target.label,
                history.status.map_or("none".into(), |s| s.to_string())
            );
            for t in &history.txs {
                out.push_str(&format!("\n  {} height {}", t.txid, t.height.to_i64()));
                if let Some(b) = t.block_hash {
                    out.push_str(&format!(" block {b}"));
                }
            }
            out
        },
    );
}

/// Watches the addresses ([`Watcher`]): one line when subscribed, then one per change.
async fn subscribe(args: &Args, pool: Pool, addresses: &[String]) -> Result<(), Error> {
    let network = args.network.network();
    let mut scripts = Vec::with_capacity(addresses.len());
    let mut by_script: HashMap<Vec<u8>, String> = HashMap::new();
    for address in addresses {
        let script = address_script(address, network)?;
        by_script.insert(script.clone(), address.clone());
        scripts.push(script);
    }
    let pool = Arc::new(Mutex::new(pool));
    let mut watcher = Watcher::start(pool.clone(), scripts).await?;
    let mut reported = connect::report_dropped(&*pool.lock().await, 0);
    while let Some(event) = watcher.next().await {
        match event {
            WatchEvent::History {
                script,
                history,
                changes,
                first,
            } => {
                let address = by_script.get(&script).map_or("", String::as_str);
                let status = history.status.map(|s| s.to_string());
                if first {
                    emit(
                        args,
                        json!({"address": address, "event": "subscribed", "status": status, "txs": history.txs.len()}),
                        || format!("{address} subscribed, {} transactions", history.txs.len()),
                    );
                } else if !changes.is_empty() {
                    let names = |t: &[Txid]| t.iter().map(Txid::to_string).collect::<Vec<_>>();
                    let (appeared, confirmed, unconfirmed, vanished) = (
                        names(&changes.appeared),
                        names(&changes.confirmed),
                        names(&changes.unconfirmed),
                        names(&changes.vanished),
                    );
                    emit(
                        args,
                        json!({"address": address, "event": "changed", "status": status, "appeared": appeared, "confirmed": confirmed, "unconfirmed": unconfirmed, "vanished": vanished}),
                        || {
                            format!(
                                "{address} appeared {appeared:?} confirmed {confirmed:?} unconfirmed {unconfirmed:?} vanished {vanished:?}"
                            )
                        },
                    );
                }
            }
            WatchEvent::Connection { connected: false } => {
                eprintln!("electrum-spv: connection lost, reconnecting");
            }
            WatchEvent::Error(e) => eprintln!("electrum-spv: {e}"),
            WatchEvent::Tip { .. } | WatchEvent::Connection { connected: true } => {}
        }
        reported = connect::report_dropped(&*pool.lock().await, reported);
    }
    Err(Error::Disconnected)
}

/// Recursive discovery from the servers given (or the bundled list), up to `max` servers;
/// prints the servers that answered as a server list.
async fn spider(args: &Args, max: usize) -> Result<(), Error> {
    let network = args.network.network();
    let mut config = connect::config(args)?;
    config.reconnect = None;
    let start: Vec<electrum_spv::ServerAddr> = if args.servers.is_empty() {
        ServerList::bundled()
            .servers(network, electrum_spv::Filter::default())
            .iter()
            .filter_map(|e| e.preferred())
            .collect()
    } else {
        args.servers.clone()
    };
    let list = electrum_spv::discovery::spider(start, &config, max, |_, _| {}).await;
    println!(
        "{}",
        serde_json::to_string_pretty(&list).map_err(|e| Error::InvalidArgument(e.to_string()))?
    );
    Ok(())
}

/// Verifies a header file offline: binary 80-byte headers, or their hex (whitespace ignored).
fn verify_headers(args: &Args, file: &Path, start: u32, network: Network) -> Result<(), Error> {
    let bytes = std::fs::read(file)?;
    let text: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = if !text.is_empty()
        && text.iter().all(u8::is_ascii_hexdigit)
        && text.len().is_multiple_of(160)
    {
        let mut raw = vec![0u8; text.len() / 2];
        electrum_spv::core::hex::decode_to_slice(&text, &mut raw)
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", file.display())))?;
        raw
    } else {
        bytes
    };
    if raw.is_empty() || !raw.len().is_multiple_of(80) {
        return Err(Error::InvalidArgument(format!(
            "{}: {} bytes is not a whole number of 80-byte headers",
            file.display(),
            raw.len()
        )));
    }
    let params = network_params(network, args.checkpoints.as_deref())?;
    let anchor = Anchor::at_height(params, start)
        .map_err(|e| Error::InvalidArgument(format!("--start-height {start}: {e}")))?;
    let mut verifier = HeaderVerifier::new(params, anchor);
    for chunk in raw.chunks_exact(80) {
        verifier.push_slice(chunk).map_err(Fault::Header)?;
    }
    let tip = verifier.tip().ok_or(Error::Disconnected)?;
    let n = raw.len() / 80;
    emit(
        args,
        json!({"verified": n, "first": start, "tip": {"height": tip.height, "hash": tip.hash.to_string()}}),
        || format!("ok {n} {start}..{} {}", tip.height, tip.hash),
    );
    Ok(())
}
