//! What each command does.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use electrum_spv::checkpoints::network_params;
use electrum_spv::core::chain::{Anchor, HeaderVerifier};
use electrum_spv::core::hash::{BlockHash, ScriptHash, Txid};
use electrum_spv::core::script::TxHeight;
use electrum_spv::{Error, Fault, HeaderChain, Network, Notice, Pool, ServerList, VerifiedHistory};
use serde_json::{Value, json};
use tokio_stream::StreamExt;

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
            let target = resolve(t, network)?;
            let history = pool.verified_histories_of(&[target.as_ref()]).await;
            connect::report_dropped(&pool, 0);
            let history = history?.pop().ok_or(Error::Disconnected)?;
            print_history(&args, &target, &history, tip(&pool)?);
        }
        Command::Balance(t) => {
            let target = resolve(t, network)?;
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
        Command::Utxos(t) => {
            let target = resolve(t, network)?;
            let script = target.script("utxos")?;
            let utxos = pool.verified_utxos(script).await;
            connect::report_dropped(&pool, 0);
            for u in utxos? {
                let block = u.block_hash.map(|b| b.to_string());
                emit(
                    &args,
                    json!({"tx_hash": u.txid.to_string(), "tx_pos": u.vout, "value": u.value, "height": u.height, "block_hash": block}),
                    || format!("{}:{} {} sat height {}", u.txid, u.vout, u.value, u.height),
                );
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
            let hex = hex.trim();
            let mut raw = vec![0u8; hex.len() / 2];
            electrum_spv::core::hex::decode_to_slice(hex.as_bytes(), &mut raw)
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
        Command::Subscribe { addresses } => subscribe(&args, &mut pool, addresses).await?,
        Command::VerifyHeaders { .. } | Command::Spider { .. } => {}
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

/// Heights of each txid: `None` in the mempool.
type Seen = BTreeMap<Txid, Option<u32>>;

fn seen(history: &VerifiedHistory) -> Seen {
    history
        .txs
        .iter()
        .map(|t| {
            let h = match t.height {
                TxHeight::Confirmed(h) => Some(h),
                _ => None,
            };
            (t.txid, h)
        })
        .collect()
}

async fn subscribe(args: &Args, pool: &mut Pool, addresses: &[String]) -> Result<(), Error> {
    let network = args.network.network();
    let client = pool.client().cloned().ok_or(Error::Disconnected)?;
    let mut notices = client.notifications();
    let mut watched: HashMap<ScriptHash, (String, Vec<u8>, Seen)> = HashMap::new();
    let mut reported = pool.dropped().len();
    for address in addresses {
        let script = address_script(address, network)?;
        let history = pool.verified_history(&script).await?;
        reported = connect::report_dropped(pool, reported);
        emit(
            args,
            json!({"address": address, "event": "subscribed", "status": history.status.map(|s| s.to_string()), "txs": history.txs.len()}),
            || format!("{address} subscribed, {} transactions", history.txs.len()),
        );
        watched.insert(
            electrum_spv::core::script_hash(&script),
            (address.clone(), script, seen(&history)),
        );
    }
    client.block_headers_subscribe().await?;
    while let Some(notice) = notices.next().await {
        let hash = match notice {
            Ok(Notice::ScriptStatus { script_hash, .. }) => script_hash,
            Ok(Notice::Header { .. }) => {
                pool.refresh().await?;
                reported = connect::report_dropped(pool, reported);
                continue;
            }
            Ok(Notice::Disconnected(why)) => {
                eprintln!("electrum-spv: connection lost ({why}), reconnecting");
                continue;
            }
            Ok(Notice::Outpoint(_) | Notice::Reconnected { .. }) => continue,
            Err(missed) => {
                // Notices were lost: every watched history is asked again.
                eprintln!("electrum-spv: fell {missed} notifications behind, checking all");
                for (address, script, before) in watched.values_mut() {
                    let history = pool.verified_history(script).await?;
                    report_changes(args, address, before, &history);
                }
                reported = connect::report_dropped(pool, reported);
                continue;
            }
        };
        let Some((address, script, before)) = watched.get_mut(&hash) else {
            continue;
        };
        let history = pool.verified_history(script).await?;
        reported = connect::report_dropped(pool, reported);
        report_changes(args, address, before, &history);
    }
    Err(Error::Disconnected)
}

/// Prints the txids that appeared, confirmed or vanished since `before`, which becomes the
/// history's.
fn report_changes(args: &Args, address: &str, before: &mut Seen, history: &VerifiedHistory) {
    let after = seen(history);
    let appeared: Vec<String> = after
        .keys()
        .filter(|t| !before.contains_key(t))
        .map(Txid::to_string)
        .collect();
    let vanished: Vec<String> = before
        .keys()
        .filter(|t| !after.contains_key(t))
        .map(Txid::to_string)
        .collect();
    let confirmed: Vec<String> = after
        .iter()
        .filter(|(t, h)| h.is_some() && before.get(t).is_some_and(Option::is_none))
        .map(|(t, _)| t.to_string())
        .collect();
    *before = after;
    if appeared.is_empty() && vanished.is_empty() && confirmed.is_empty() {
        return;
    }
    emit(
        args,
        json!({"address": address, "event": "changed", "status": history.status.map(|s| s.to_string()), "appeared": appeared, "confirmed": confirmed, "vanished": vanished}),
        || format!("{address} appeared {appeared:?} confirmed {confirmed:?} vanished {vanished:?}"),
    );
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
