//! What each command does.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use electrum_spv::core::chain::{Anchor, HeaderVerifier};
use electrum_spv::core::hash::{ScriptHash, Txid};
use electrum_spv::core::script::TxHeight;
use electrum_spv::{
    Client, Error, HeaderChain, Network, Notice, ServerList, VerifiedHistory, verified_history,
    verified_utxos,
};
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
    let client = connect::connect(&args).await?;
    match &args.command {
        Command::Tip => {
            let chain = synced(&client, network, false).await?;
            let (height, hash) = tip(&chain)?;
            emit(
                &args,
                json!({"height": height, "hash": hash.to_string()}),
                || format!("{height} {hash}"),
            );
        }
        Command::Headers => {
            let chain = synced(&client, network, true).await?;
            let (height, hash) = tip(&chain)?;
            let first = chain.anchor_height();
            emit(
                &args,
                json!({"verified": height + 1 - first, "first": first, "tip": {"height": height, "hash": hash.to_string()}}),
                || format!("ok {} {first}..{height} {hash}", height + 1 - first),
            );
        }
        Command::Header { height } => {
            let chain = synced(&client, network, false).await?;
            let header = chain.header(*height).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "height {height} is outside the verified headers {}..{}",
                    chain.anchor_height(),
                    tip(&chain).map_or(0, |t| t.0)
                ))
            })?;
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
            let mut chain = synced(&client, network, false).await?;
            let history = verified_history(&client, &mut chain, target.as_ref()).await?;
            print_history(&args, &target, &history, &chain)?;
        }
        Command::Balance(t) => {
            let target = resolve(t, network)?;
            let script = target.script("balance")?;
            let mut chain = synced(&client, network, false).await?;
            let utxos = verified_utxos(&client, &mut chain, script).await?;
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
            let mut chain = synced(&client, network, false).await?;
            for u in verified_utxos(&client, &mut chain, script).await? {
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
            let fee = client.estimate_fee(*blocks).await?;
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
        Command::Subscribe { addresses } => subscribe(&args, &client, addresses).await?,
        Command::VerifyHeaders { .. } | Command::Spider { .. } => {}
    }
    Ok(())
}

async fn synced(client: &Client, network: Network, progress: bool) -> Result<HeaderChain, Error> {
    let mut chain = HeaderChain::from_latest_checkpoint(network);
    chain
        .sync(client, |height, tip| {
            if progress {
                eprint!("\rheaders {height}/{tip}");
            }
        })
        .await?;
    if progress {
        eprintln!();
    }
    Ok(chain)
}

fn tip(chain: &HeaderChain) -> Result<(u32, electrum_spv::core::hash::BlockHash), Error> {
    chain
        .tip()
        .ok_or_else(|| Error::Verification("the server sent no headers".into()))
}

fn parse_txid(text: &str) -> Result<Txid, Error> {
    Txid::from_display_hex(text.trim().as_bytes())
        .map_err(|e| Error::InvalidArgument(format!("txid {text}: {e}")))
}

fn print_history(
    args: &Args,
    target: &Resolved,
    history: &VerifiedHistory,
    chain: &HeaderChain,
) -> Result<(), Error> {
    let (height, hash) = tip(chain)?;
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
    Ok(())
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

async fn subscribe(args: &Args, client: &Client, addresses: &[String]) -> Result<(), Error> {
    let network = args.network.network();
    let mut notices = client.notifications();
    let mut chain = synced(client, network, false).await?;
    let mut watched: HashMap<ScriptHash, (String, Vec<u8>, Seen)> = HashMap::new();
    for address in addresses {
        let script = address_script(address, network)?;
        let history =
            verified_history(client, &mut chain, electrum_spv::ScriptRef::Script(&script)).await?;
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
                chain.sync(client, |_, _| {}).await?;
                continue;
            }
            Ok(Notice::Disconnected(why)) => {
                eprintln!("electrum-spv: connection lost ({why}), reconnecting");
                continue;
            }
            Ok(Notice::Outpoint(_) | Notice::Reconnected { .. }) => continue,
            Err(missed) => {
                return Err(Error::Verification(format!(
                    "fell {missed} notifications behind"
                )));
            }
        };
        let Some((address, script, before)) = watched.get_mut(&hash) else {
            continue;
        };
        let history =
            verified_history(client, &mut chain, electrum_spv::ScriptRef::Script(script)).await?;
        let after = seen(&history);
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
            continue;
        }
        emit(
            args,
            json!({"address": address, "event": "changed", "status": history.status.map(|s| s.to_string()), "appeared": appeared, "confirmed": confirmed, "vanished": vanished}),
            || {
                format!(
                    "{address} appeared {appeared:?} confirmed {confirmed:?} vanished {vanished:?}"
                )
            },
        );
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
    let params = network.params();
    let anchor = Anchor::at_height(params, start)
        .map_err(|e| Error::InvalidArgument(format!("--start-height {start}: {e}")))?;
    let mut verifier = HeaderVerifier::new(params, anchor);
    for chunk in raw.chunks_exact(80) {
        verifier
            .push_slice(chunk)
            .map_err(|e| Error::Verification(format!("header {e}")))?;
    }
    let tip = verifier
        .tip()
        .ok_or_else(|| Error::Verification("no headers".into()))?;
    let n = raw.len() / 80;
    emit(
        args,
        json!({"verified": n, "first": start, "tip": {"height": tip.height, "hash": tip.hash.to_string()}}),
        || format!("ok {n} {start}..{} {}", tip.height, tip.hash),
    );
    Ok(())
}
