//! `electrum-spv p2p ...`: a [`PeerPool`] over the peers given, one JSON line per result.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use electrum_spv::p2p::{NodeId, PeerAddr, PeerPool, PeerPoolConfig, inv_type_name, read_seeds};
use electrum_spv::{Error, ReconnectPolicy};
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
}

pub async fn run(args: &Args, command: &P2pCommand) -> Result<(), Error> {
    match command {
        P2pCommand::Peers(p) => peers(args, p).await,
        P2pCommand::Invs { peers, seconds } => invs(args, peers, *seconds).await,
    }
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
