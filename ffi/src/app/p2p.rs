//! Broadcast over the Bitcoin P2P network, without an Electrum server: a free function that
//! opens its own connections (a `PeerPool` of the adapter) for the one call.

use std::collections::HashSet;
use std::time::Duration;

use electrum_spv::core::p2p::WireTx;
use electrum_spv::p2p::{BroadcastOptions, NodeId, PeerAddr, PeerPool, PeerPoolConfig, TxReport};

use super::{ElectrumError, Network};

/// What happened to a transaction sent with `broadcast_via_peers`. Nodes are named
/// `host:port` (host in lowercase, IPv6 in brackets).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct P2pBroadcastReport {
    /// Transaction id (display hex).
    pub txid: String,
    /// Witness transaction id (display hex; equal to the txid without witness data).
    pub wtxid: String,
    /// The peers it was announced to (those of the first half that completed their
    /// handshake).
    pub recipients: Vec<String>,
    /// Recipients that asked for it and were served. A node that already has the
    /// transaction does not ask.
    pub requested_by: Vec<String>,
    /// Watching peers that announced it back: the evidence that it spread. A recipient
    /// never counts, nor does a node that served other bytes.
    pub announced_by: Vec<String>,
    /// The announcer that sent the transaction back with bytes that hash to its wtxid.
    pub verified_by: Option<String>,
    /// Announcers that sent other bytes under its txid (not counted).
    pub mismatched_by: Vec<String>,
    /// Nodes that sent a `reject` message (bcoin does; Bitcoin Core stopped in 0.20, so its
    /// absence proves nothing).
    pub rejected_by: Vec<String>,
    /// Milliseconds from the announcement to the recipients until it was confirmed and
    /// verified, or until the wait ended.
    pub elapsed_ms: u64,
    /// At least `confirmations` watching peers announced it.
    pub confirmed: bool,
}

impl From<&TxReport> for P2pBroadcastReport {
    fn from(r: &TxReport) -> Self {
        let names = |nodes: &[NodeId]| nodes.iter().map(ToString::to_string).collect();
        P2pBroadcastReport {
            txid: r.txid.to_string(),
            wtxid: r.wtxid.to_string(),
            recipients: names(&r.recipients),
            requested_by: names(&r.requested_by),
            announced_by: names(&r.announced_by),
            verified_by: r.verified_by.as_ref().map(ToString::to_string),
            mismatched_by: names(&r.mismatched_by),
            rejected_by: names(&r.rejected_by),
            elapsed_ms: r.elapsed_ms,
            confirmed: r.confirmed,
        }
    }
}

/// Broadcasts a raw transaction over the Bitcoin P2P network and watches it spread, without an
/// Electrum server. It connects to every peer of `peers` (`host:port`, or a host alone for
/// the network's default port; at least two, no repeats). The first half of them (at least
/// one) receive the transaction: they are announced it and served it when they ask. The
/// others watch, and the transaction is confirmed once `confirmations` of them announce it
/// back; one announcer is then asked for it, and its bytes must hash to the transaction's
/// wtxid. Returns when it is confirmed and verified, or after `timeout_secs` (which also
/// bounds the wait for the recipients' handshakes), with a report either way: an unconfirmed
/// report is an answer, not an error. `proxy` is a SOCKS5 proxy `host:port` (Tor:
/// `127.0.0.1:9050`), needed for `.onion` peers.
///
/// Fails with `InvalidArgument` for bytes that are not one transaction, a malformed or repeated
/// peer, fewer than two peers, `confirmations` of 0 or more than the watching peers, a
/// `timeout_secs` of 0, or an empty proxy; `Connection` when no recipient completed its
/// handshake in time (naming why each peer failed: an unreachable proxy shows there).
#[uniffi::export(async_runtime = "tokio", default(timeout_secs = 60, proxy = None))]
pub async fn broadcast_via_peers(
    raw_tx: Vec<u8>,
    peers: Vec<String>,
    confirmations: u32,
    network: Network,
    timeout_secs: u32,
    proxy: Option<String>,
) -> Result<P2pBroadcastReport, ElectrumError> {
    let network = electrum_spv::Network::from(network);
    WireTx::parse(&raw_tx).map_err(|e| invalid(format!("not a transaction: {e}")))?;
    let addrs = peer_addrs(&peers, network)?;
    let recipients = (addrs.len() / 2).max(1);
    let watchers = addrs.len() - recipients;
    let announcers = usize::try_from(confirmations).unwrap_or(usize::MAX);
    if announcers == 0 || announcers > watchers {
        return Err(invalid(format!(
            "confirmations must be between 1 and the {watchers} watching peer(s), not \
             {confirmations}"
        )));
    }
    if timeout_secs == 0 {
        return Err(invalid("timeout_secs must be at least 1".into()));
    }
    if let Some(p) = &proxy
        && p.trim().is_empty()
    {
        return Err(invalid("empty proxy".into()));
    }
    let mut config = PeerPoolConfig::new(network);
    config.proxy = proxy;
    let pool = PeerPool::start(&addrs, config);
    let options = BroadcastOptions {
        recipients: addrs
            .iter()
            .take(recipients)
            .map(PeerAddr::node_id)
            .collect(),
        announcers,
        timeout: Duration::from_secs(u64::from(timeout_secs)),
    };
    let reports = pool.broadcast(&[raw_tx], &options).await;
    pool.shutdown();
    reports?
        .first()
        .map(P2pBroadcastReport::from)
        .ok_or_else(|| ElectrumError::Connection {
            detail: "the broadcast ended without a report".into(),
        })
}

/// Parses `peers`: at least two, each once.
fn peer_addrs(
    peers: &[String],
    network: electrum_spv::Network,
) -> Result<Vec<PeerAddr>, ElectrumError> {
    if peers.len() < 2 {
        return Err(invalid(format!(
            "{} peer(s): at least two are needed (one receives, one watches)",
            peers.len()
        )));
    }
    let mut seen = HashSet::new();
    peers
        .iter()
        .map(|text| {
            let addr = PeerAddr::parse_with_default(text, network)
                .map_err(|e| invalid(format!("peer {text}: {e}")))?;
            if !seen.insert(addr.node_id()) {
                return Err(invalid(format!("peer {text} given twice")));
            }
            Ok(addr)
        })
        .collect()
}

fn invalid(detail: String) -> ElectrumError {
    ElectrumError::InvalidArgument { detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A minimal valid legacy transaction: one input, one output.
    fn tx() -> Vec<u8> {
        let mut t = vec![2, 0, 0, 0, 1];
        t.extend([0u8; 36]);
        t.extend([0, 0xff, 0xff, 0xff, 0xff, 1]);
        t.extend(1000u64.to_le_bytes());
        t.extend([0, 0, 0, 0, 0]);
        t
    }

    fn run(
        raw: Vec<u8>,
        list: &[&str],
        k: u32,
        timeout: u32,
    ) -> Result<P2pBroadcastReport, ElectrumError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(broadcast_via_peers(
            raw,
            peers(list),
            k,
            Network::Regtest,
            timeout,
            None,
        ))
    }

    #[test]
    fn arguments_are_refused_before_connecting() {
        let two = ["127.0.0.1:1", "127.0.0.1:2"];
        let refused = |r: Result<P2pBroadcastReport, ElectrumError>, what: &str| match r {
            Err(ElectrumError::InvalidArgument { detail }) => {
                assert!(detail.contains(what), "{detail:?} lacks {what:?}")
            }
            other => panic!("{other:?}"),
        };
        refused(run(vec![1, 2, 3], &two, 1, 5), "not a transaction");
        refused(run(tx(), &["127.0.0.1:1"], 1, 5), "at least two");
        refused(run(tx(), &["127.0.0.1:1", "127.0.0.1:1"], 1, 5), "twice");
        refused(run(tx(), &["127.0.0.1:1", "no:port:x"], 1, 5), "no:port:x");
        refused(run(tx(), &two, 0, 5), "between 1 and the 1");
        refused(run(tx(), &two, 2, 5), "between 1 and the 1");
        refused(run(tx(), &two, 1, 0), "timeout_secs");
    }

    #[test]
    fn no_recipient_ready_is_a_connection_error() {
        // Port 1 on loopback refuses at once; the wait ends at the timeout.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap().to_string();
        drop(listener);
        match run(tx(), &[&closed, "127.0.0.1:1"], 1, 2) {
            Err(ElectrumError::Connection { detail }) => {
                assert!(detail.contains(&closed), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }
}
