//! `electrum-spv p2p ...`: a [`PeerPool`] over the peers given, one JSON line per result.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use electrum_spv::header_chain::latest_anchor;
use electrum_spv::p2p::{
    BroadcastOptions, NodeId, PeerAddr, PeerPool, PeerPoolConfig, inv_type_name, read_seeds,
};
use electrum_spv::{Error, ReconnectPolicy};
use electrum_spv_core::chain::HeaderVerifier;
use electrum_spv_core::p2p::P2pHeaders;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{Args, connect};

/// Which peers to talk to.
#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// A peer (repeatable); a host without a port gets the network's default P2P port.
    #[arg(long = "peer", value_name = "HOST:PORT")]
    pub peers: Vec<String>,
    /// A seeds file: one HOST:PORT per line, `#` comments.
    #[arg(long, value_name = "FILE")]
    pub seeds: Option<PathBuf>,
    /// Seconds to wait for the handshakes (and first pings).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// P2P commands.
#[derive(clap::Subcommand, Debug)]
pub enum P2pCommand {
    /// Handshake and ping every peer; one line per ready peer, fastest first:
    /// {"peer","user_agent","version","services","height","ping_ms"}.
    Peers(PeerArgs),
    /// Print every announced item: {"peer","type","hash","time_ms"} (hash in display hex).
    Invs {
        /// Peers.
        #[command(flatten)]
        peers: PeerArgs,
        /// Stop after this many seconds (default: run until stopped).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Announce transactions to the first R peers and wait until K of the others announce
    /// each one back. One line per transaction {"txid","wtxid","recipients","requested_by",
    /// "announced_by","verified_by","rejected_by","elapsed_ms"}, then
    /// {"sent","accepted","confirmed","seconds"}. Exit status 1 unless every transaction
    /// reached K announcers.
    Broadcast(BroadcastArgs),
    /// Sync and verify headers over P2P from the network's anchor (after the last
    /// checkpoint); the last line is `ok N FIRST..LAST TIPHASH`, as `verify-headers` prints.
    Headers {
        /// The peer.
        #[arg(long = "peer", value_name = "HOST:PORT")]
        peer: String,
        /// Seconds to wait for the handshake and for each answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// `p2p broadcast`'s arguments.
#[derive(clap::Args, Debug)]
pub struct BroadcastArgs {
    /// A peer (repeatable): the first R receive, the others watch.
    #[arg(long = "peer", value_name = "HOST:PORT", required = true)]
    pub peers: Vec<String>,
    /// How many of the peers receive the transactions (default: half of them, at least 1).
    #[arg(long)]
    pub recipients: Option<usize>,
    /// Other nodes that must announce a transaction (K).
    #[arg(long, default_value_t = 1)]
    pub announcers: usize,
    /// Seconds to wait for the handshakes and then for the announcements.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// A file of raw transactions in hex, one per line.
    #[arg(long, value_name = "FILE", conflicts_with = "raw")]
    pub file: Option<PathBuf>,
    /// Raw transactions in hex.
    #[arg(value_name = "RAWTX_HEX")]
    pub raw: Vec<String>,
}

pub async fn run(args: &Args, command: &P2pCommand) -> Result<(), Error> {
    match command {
        P2pCommand::Peers(p) => peers(args, p).await,
        P2pCommand::Invs { peers, seconds } => invs(args, peers, *seconds).await,
        P2pCommand::Broadcast(b) => broadcast(args, b).await,
        P2pCommand::Headers { peer, timeout } => headers(args, peer, *timeout).await,
    }
}

fn parse_peers(args: &Args, texts: &[String]) -> Result<Vec<PeerAddr>, Error> {
    let network = args.network.network();
    texts
        .iter()
        .map(|t| {
            PeerAddr::parse_with_default(t, network)
                .map_err(|e| Error::InvalidArgument(e.to_string()))
        })
        .collect()
}

/// The raw transactions of `b`: its arguments or its file's lines (blank lines skipped).
fn raw_transactions(b: &BroadcastArgs) -> Result<Vec<Vec<u8>>, Error> {
    let text;
    let lines: Vec<&str> = match &b.file {
        Some(file) => {
            text = std::fs::read_to_string(file).map_err(|e| {
                Error::InvalidArgument(format!("cannot read {}: {e}", file.display()))
            })?;
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect()
        }
        None => b.raw.iter().map(|s| s.trim()).collect(),
    };
    if lines.is_empty() {
        return Err(Error::InvalidArgument(
            "no transaction given: RAWTX_HEX... or --file FILE".into(),
        ));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            super::hex_arg(l)
                .map_err(|e| Error::InvalidArgument(format!("transaction {}: {e}", i + 1)))
        })
        .collect()
}

fn names(nodes: &[NodeId]) -> Vec<String> {
    nodes.iter().map(ToString::to_string).collect()
}

async fn broadcast(args: &Args, b: &BroadcastArgs) -> Result<(), Error> {
    let txs = raw_transactions(b)?;
    let addrs = parse_peers(args, &b.peers)?;
    let r = b
        .recipients
        .unwrap_or(addrs.len() / 2)
        .clamp(1, addrs.len());
    let recipients: Vec<NodeId> = addrs.iter().take(r).map(PeerAddr::node_id).collect();
    let pool = PeerPool::start(&addrs, pool_config(args, Some(ReconnectPolicy::default()))?);
    let started = std::time::Instant::now();
    let options = BroadcastOptions {
        recipients,
        announcers: b.announcers,
        timeout: Duration::from_secs(b.timeout),
    };
    let reports = pool.broadcast(&txs, &options).await?;
    let (mut sent, mut accepted, mut confirmed) = (0, 0, 0);
    for t in &reports {
        sent += usize::from(!t.recipients.is_empty());
        accepted += usize::from(!t.requested_by.is_empty());
        confirmed += usize::from(t.confirmed);
        println!(
            "{}",
            json!({
                "txid": t.txid.to_string(),
                "wtxid": t.wtxid.to_string(),
                "recipients": names(&t.recipients),
                "requested_by": names(&t.requested_by),
                "announced_by": names(&t.announced_by),
                "verified_by": t.verified_by.as_ref().map(ToString::to_string),
                "rejected_by": names(&t.rejected_by),
                "elapsed_ms": t.elapsed_ms,
            })
        );
    }
    println!(
        "{}",
        json!({
            "sent": sent,
            "accepted": accepted,
            "confirmed": confirmed,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    for d in pool.dropped() {
        eprintln!("electrum-spv: dropped {}: {}", d.node, d.reason);
    }
    if confirmed < reports.len() {
        eprintln!(
            "electrum-spv: {} of {} transactions not announced by {} other node(s) in {} s",
            reports.len() - confirmed,
            reports.len(),
            b.announcers,
            b.timeout
        );
        std::process::exit(1);
    }
    Ok(())
}

async fn headers(args: &Args, peer: &str, timeout: u64) -> Result<(), Error> {
    let addr = parse_peers(args, &[peer.to_owned()])?.remove(0);
    let node = addr.node_id();
    let params = electrum_spv::checkpoints::network_params(
        args.network.network(),
        args.checkpoints.as_deref(),
    )?;
    let anchor = latest_anchor(params);
    let timeout = Duration::from_secs(timeout);
    let mut config = pool_config(args, None)?;
    // A node with nothing newer may not answer at all (bcoin at its tip): that silence must
    // end well before `--timeout`, which bounds an answer that does come.
    config.connection.request_timeout = (timeout / 4).min(Duration::from_secs(5));
    let pool = PeerPool::start(std::slice::from_ref(&addr), config);
    pool.wait_until(timeout, |pool| {
        pool.info(&node).is_some() || settled(pool, std::slice::from_ref(&node), false)
    })
    .await;
    if pool.info(&node).is_none() {
        return Err(none_ready(&pool));
    }
    let mut sync = P2pHeaders::new(HeaderVerifier::new(params, anchor));
    pool.sync_headers(&node, &mut sync, timeout).await?;
    match sync.tip() {
        Some(tip) => println!(
            "ok {} {}..{} {}",
            tip.height + 1 - anchor.height,
            anchor.height,
            tip.height,
            tip.hash
        ),
        None => println!("ok 0 {}..{} -", anchor.height, anchor.height),
    }
    Ok(())
}

fn addresses(args: &Args, p: &PeerArgs) -> Result<Vec<PeerAddr>, Error> {
    let network = args.network.network();
    let mut out = Vec::new();
    for text in &p.peers {
        let addr = PeerAddr::parse_with_default(text, network)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        out.push(addr);
    }
    if let Some(file) = &p.seeds {
        out.extend(read_seeds(file, network)?);
    }
    let mut seen = HashSet::new();
    out.retain(|a| seen.insert(a.node_id()));
    if out.is_empty() {
        return Err(Error::InvalidArgument(
            "no peer given: use --peer HOST:PORT or --seeds FILE".into(),
        ));
    }
    Ok(out)
}

fn pool_config(args: &Args, reconnect: Option<ReconnectPolicy>) -> Result<PeerPoolConfig, Error> {
    let mut config = PeerPoolConfig::new(args.network.network());
    config.proxy = connect::config(args)?.connect.proxy;
    config.reconnect = reconnect;
    Ok(config)
}

/// Every node has either completed its handshake (and, with `pinged`, a ping) or failed.
fn settled(pool: &PeerPool, nodes: &[NodeId], pinged: bool) -> bool {
    let ready: HashSet<NodeId> = pool
        .peers()
        .into_iter()
        .filter(|p| !pinged || p.ping_ms.is_some())
        .map(|p| p.node)
        .collect();
    let failed: HashSet<NodeId> = pool.dropped().into_iter().map(|d| d.node).collect();
    nodes
        .iter()
        .all(|n| ready.contains(n) || failed.contains(n))
}

/// The error when no peer completed its handshake, naming each one's reason.
fn none_ready(pool: &PeerPool) -> Error {
    Error::NoPeerReady(
        pool.dropped()
            .into_iter()
            .map(|d| (d.node.to_string(), d.reason.to_string()))
            .collect(),
    )
}

async fn peers(args: &Args, p: &PeerArgs) -> Result<(), Error> {
    let addrs = addresses(args, p)?;
    let nodes: Vec<NodeId> = addrs.iter().map(PeerAddr::node_id).collect();
    let pool = PeerPool::start(&addrs, pool_config(args, None)?);
    pool.wait_until(Duration::from_secs(p.timeout), |pool| {
        settled(pool, &nodes, true)
    })
    .await;
    let peers = pool.peers();
    if peers.is_empty() {
        return Err(none_ready(&pool));
    }
    for d in pool.dropped() {
        eprintln!("electrum-spv: dropped {}: {}", d.node, d.reason);
    }
    for s in peers {
        println!(
            "{}",
            json!({
                "peer": s.node.to_string(),
                "user_agent": s.user_agent,
                "version": s.version,
                "services": s.services,
                "height": s.start_height,
                "ping_ms": s.ping_ms,
            })
        );
    }
    Ok(())
}

async fn invs(args: &Args, p: &PeerArgs, seconds: Option<u64>) -> Result<(), Error> {
    let addrs = addresses(args, p)?;
    let nodes: Vec<NodeId> = addrs.iter().map(PeerAddr::node_id).collect();
    let pool = PeerPool::start(&addrs, pool_config(args, Some(ReconnectPolicy::default()))?);
    // Subscribed before any handshake, so nothing announced is missed.
    let mut items = pool.invs();
    pool.wait_until(Duration::from_secs(p.timeout), |pool| {
        !pool.peers().is_empty() || settled(pool, &nodes, false)
    })
    .await;
    if pool.peers().is_empty() {
        return Err(none_ready(&pool));
    }
    let end = seconds.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    loop {
        let next = async {
            match end {
                Some(end) => tokio::time::timeout_at(end, items.recv()).await.ok(),
                None => Some(items.recv().await),
            }
        };
        match next.await {
            None => return Ok(()),
            Some(Ok(item)) => println!(
                "{}",
                json!({
                    "peer": item.peer.to_string(),
                    "type": inv_type_name(item.kind),
                    "hash": item.hash_hex(),
                    "time_ms": item.time_ms,
                })
            ),
            Some(Err(RecvError::Lagged(n))) => {
                eprintln!("electrum-spv: {n} announcements skipped (output too slow)");
            }
            Some(Err(RecvError::Closed)) => return Ok(()),
        }
    }
}
