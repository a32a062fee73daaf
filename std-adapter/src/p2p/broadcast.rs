//! [`PeerPool::broadcast`]: send transactions to some nodes and see other nodes announce them.
//!
//! The recipients get an `inv` (by wtxid to a BIP339 node, else by txid) and the transaction
//! when they ask for it, in the form they ask; nothing is sent unsolicited. Every other node of
//! the pool watches: its announcements are the evidence that the transaction spread, counted
//! by node, never by connection, and never from a recipient (core's
//! [`BroadcastTable`](electrum_spv_core::p2p::BroadcastTable) decides all of this). One
//! announcer is then asked for the bytes, which must hash to our wtxid; one that serves other
//! bytes stops counting and the next is asked.
//!
//! A transaction is **confirmed** when at least [`BroadcastOptions::announcers`] other nodes
//! announced it within [`BroadcastOptions::timeout`] and one of them served bytes that hash to
//! our wtxid. "A recipient asked for it" and "no reject came" are reported, never taken as an
//! answer.
//!
//! Bound: only one announcer's bytes are checked; K-1 Sybils next to one honest node would be
//! counted. Choose watchers you would not expect to be one operator.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use electrum_spv_core::hash::{Txid, Wtxid};
use electrum_spv_core::p2p::{InvVector, NodeSet, TxHandle, TxStatus, WireTx};

use super::addr::NodeId;
use super::outgoing::OwnedMessage;
use super::pool::PeerPool;
use crate::clock::unix_instant;
use crate::error::Error;

/// Most transactions one call broadcasts (the table holds them all while it runs).
pub const MAX_BROADCAST: usize = 10_000;

/// How often the wait re-checks deadlines when no event arrives.
const TICK: Duration = Duration::from_millis(200);

/// What [`PeerPool::broadcast`] does.
#[derive(Clone, Debug)]
pub struct BroadcastOptions {
    /// The nodes that receive the transactions; every other node of the pool watches.
    pub recipients: Vec<NodeId>,
    /// Other nodes that must announce a transaction for it to count as confirmed (K).
    pub announcers: usize,
    /// How long to wait for the recipients to be ready and then for the announcements.
    pub timeout: Duration,
}

/// What happened to one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxReport {
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid.
    pub wtxid: Wtxid,
    /// The recipients it was announced to.
    pub recipients: Vec<NodeId>,
    /// Recipients that asked for it (and were served).
    pub requested_by: Vec<NodeId>,
    /// Other nodes that announced it (without any that served other bytes).
    pub announced_by: Vec<NodeId>,
    /// The announcer whose bytes hashed to our wtxid.
    pub verified_by: Option<NodeId>,
    /// Announcers that served other bytes under our txid.
    pub mismatched_by: Vec<NodeId>,
    /// Nodes that sent a `reject` (informational: Core sends none since 0.20).
    pub rejected_by: Vec<NodeId>,
    /// Milliseconds from the announcement to the recipients until it was confirmed (and
    /// verified, when an announcer served it), or until the wait ended.
    pub elapsed_ms: u64,
    /// Milliseconds from the announcement until a recipient's `getdata` was first answered
    /// with it (the connection task writes the `tx` frame right after, before reading on):
    /// when sending was done. `None` if no recipient asked.
    pub served_ms: Option<u64>,
    /// Milliseconds from the announcement to the first announcement by another node.
    pub first_announcement_ms: Option<u64>,
    /// At least [`BroadcastOptions::announcers`] other nodes announced it, and one of them
    /// served bytes that hash to our wtxid.
    pub confirmed: bool,
}

impl PeerPool {
    /// Announces each of `txs` (raw serializations) to `options.recipients`, serves them on
    /// request, and waits until every one is announced by `options.announcers` other nodes and
    /// verified, or until `options.timeout`. One report per transaction, in order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for bytes that are not one transaction, more than
    /// [`MAX_BROADCAST`] transactions, no recipient, or a recipient beyond the table's node
    /// bound; [`Error::NoPeerReady`] if no recipient completed its handshake in time.
    pub async fn broadcast(
        &self,
        txs: &[Vec<u8>],
        options: &BroadcastOptions,
    ) -> Result<Vec<TxReport>, Error> {
        if txs.len() > MAX_BROADCAST {
            return Err(Error::InvalidArgument(format!(
                "{} transactions; at most {MAX_BROADCAST} per broadcast",
                txs.len()
            )));
        }
        if options.recipients.is_empty() {
            return Err(Error::InvalidArgument("no recipient".into()));
        }
        for (i, raw) in txs.iter().enumerate() {
            WireTx::parse(raw).map_err(|e| {
                Error::InvalidArgument(format!("transaction {i} is not a transaction: {e}"))
            })?;
        }
        // Recipients settle first (ready, or dropped since we began), within the timeout;
        // the announcements then get the whole timeout of their own.
        let began = super::unix_ms();
        let settled = |pool: &PeerPool| {
            let dropped: Vec<NodeId> = pool
                .dropped()
                .into_iter()
                .filter(|d| d.time_ms >= began)
                .map(|d| d.node)
                .collect();
            options
                .recipients
                .iter()
                .all(|node| pool.info(node).is_some() || dropped.contains(node))
        };
        self.wait_until(options.timeout, settled).await;
        let ready: Vec<NodeId> = options
            .recipients
            .iter()
            .filter(|node| self.info(node).is_some())
            .cloned()
            .collect();
        if ready.is_empty() {
            let dropped = self
                .dropped()
                .into_iter()
                .map(|d| (d.node.0, d.reason.to_string()))
                .collect();
            return Err(Error::NoPeerReady(dropped));
        }

        let announced_at = super::unix_ms();
        let deadline = Instant::now() + options.timeout;
        // One entry per distinct transaction; a transaction given twice gets its report twice.
        let mut distinct: Vec<Vec<u8>> = Vec::new();
        let slots: Vec<usize> = txs
            .iter()
            .map(|raw| match distinct.iter().position(|d| d == raw) {
                Some(i) => i,
                None => {
                    distinct.push(raw.clone());
                    distinct.len() - 1
                }
            })
            .collect();
        let (handles, invs) =
            self.add_entries(&distinct, &options.recipients, &ready, announced_at)?;
        let held = Held {
            pool: self,
            handles,
        };
        for (node, items) in invs {
            // Waits for room in the connection's queue; a closed connection: the other
            // recipients still get it, and the report says who asked.
            let _ = self.send_wait(&node, &OwnedMessage::Inv(items)).await;
        }
        let handles = &held.handles;
        let ids: Vec<(Txid, Wtxid)> = distinct
            .iter()
            .filter_map(|raw| WireTx::parse(raw).ok())
            .map(|w| (w.txid(), w.wtxid()))
            .collect();
        let mut done_at: Vec<Option<u64>> = vec![None; handles.len()];
        let mut changes = self.changes();
        loop {
            let now = super::unix_ms();
            self.ask_for_verification(now);
            {
                let relay = self.shared().relay();
                for (handle, done) in handles.iter().zip(done_at.iter_mut()) {
                    let finished = relay
                        .table()
                        .get(*handle)
                        .is_some_and(|s| is_confirmed(s, options.announcers));
                    if finished && done.is_none() {
                        *done = Some(now.saturating_sub(announced_at));
                    }
                }
            }
            if done_at.iter().all(Option::is_some) || Instant::now() >= deadline {
                break;
            }
            let next = (Instant::now() + TICK).min(deadline);
            // Woken by the next event, or by the tick for the verification deadlines.
            let _ = tokio::time::timeout_at(next.into(), changes.changed()).await;
        }

        let waited = super::unix_ms().saturating_sub(announced_at);
        let relay = self.shared().relay();
        let mut reports = Vec::with_capacity(handles.len());
        for ((handle, (txid, wtxid)), done) in handles.iter().zip(&ids).zip(&done_at) {
            let Some(s) = relay.table().get(*handle) else {
                continue;
            };
            reports.push(TxReport {
                txid: *txid,
                wtxid: *wtxid,
                recipients: relay.nodes(s.announced_to()),
                requested_by: relay.nodes(s.requested_by()),
                announced_by: relay.nodes(s.announced_by()),
                verified_by: s.verified_by().and_then(|n| relay.node(n).cloned()),
                mismatched_by: relay.nodes(s.mismatched_by()),
                rejected_by: relay.nodes(s.rejected_by()),
                elapsed_ms: done.unwrap_or(waited),
                served_ms: relay
                    .served_at(*handle)
                    .map(|t| t.saturating_sub(announced_at)),
                first_announcement_ms: s
                    .first_announcement_at()
                    .map(|t| t.millis().saturating_sub(announced_at)),
                confirmed: is_confirmed(s, options.announcers),
            });
        }
        drop(relay);
        drop(held);
        Ok(slots
            .into_iter()
            .filter_map(|i| reports.get(i).cloned())
            .collect())
    }

    /// Adds the transactions to the table and gives the `inv` each ready recipient gets.
    fn add_entries(
        &self,
        txs: &[Vec<u8>],
        recipients: &[NodeId],
        ready: &[NodeId],
        now: u64,
    ) -> Result<(Vec<TxHandle>, Announcements), Error> {
        let wtxid_relay = self.wtxid_relay_nodes();
        let mut relay = self.shared().relay();
        let mut set = NodeSet::EMPTY;
        for node in recipients {
            let id = relay.id(node).ok_or_else(|| {
                Error::InvalidArgument(format!("{}: more nodes than a broadcast tracks", node.0))
            })?;
            set.insert(id);
        }
        let mut handles = Vec::with_capacity(txs.len());
        for raw in txs {
            match relay.add(Arc::from(raw.as_slice()), set, now) {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // Nothing was announced yet: give back what this call took.
                    for handle in handles {
                        relay.release(handle);
                    }
                    return Err(Error::InvalidArgument(e.to_string()));
                }
            }
        }
        let mut invs = Vec::new();
        for node in ready {
            let Some(id) = relay.known(node) else {
                continue;
            };
            let by_wtxid = wtxid_relay.contains(node);
            let items: Vec<_> = handles
                .iter()
                .filter_map(|h| relay.table_mut().announce(*h, id, by_wtxid))
                .collect();
            invs.push((node.clone(), items));
        }
        Ok((handles, invs))
    }

    /// The ready nodes that relay by wtxid (BIP339).
    fn wtxid_relay_nodes(&self) -> HashSet<NodeId> {
        self.peers()
            .into_iter()
            .filter(|p| p.wtxid_relay)
            .map(|p| p.node)
            .collect()
    }

    /// Asks the next announcers for the bytes of what is not verified yet.
    fn ask_for_verification(&self, now: u64) {
        let now = unix_instant(now);
        let wtxid_relay = self.wtxid_relay_nodes();
        let mut asks = Vec::new();
        {
            let mut relay = self.shared().relay();
            relay.table_mut().handle_timeout(now);
            let by_wtxid: NodeSet = wtxid_relay.iter().filter_map(|n| relay.known(n)).collect();
            while let Some((_, id, inv)) = relay
                .table_mut()
                .next_verification(now, |n| by_wtxid.contains(n))
            {
                if let Some(node) = relay.node(id) {
                    asks.push((node.clone(), inv));
                }
            }
        }
        // One `getdata` per node: a batch of thousands must not overflow a connection's queue.
        let mut per_node: Vec<(NodeId, Vec<_>)> = Vec::new();
        for (node, inv) in asks {
            match per_node.iter_mut().find(|(n, _)| *n == node) {
                Some((_, items)) => items.push(inv),
                None => per_node.push((node, vec![inv])),
            }
        }
        for (node, items) in per_node {
            // A node that cannot be asked: the next announcer is asked after the verification
            // timeout.
            let _ = self.send(&node, &OwnedMessage::GetData(items));
        }
    }
}

/// The `inv` items each recipient is sent.
type Announcements = Vec<(NodeId, Vec<InvVector>)>;

/// Announced by `k` other nodes, and verified.
fn is_confirmed(status: &TxStatus, k: usize) -> bool {
    status.confirmations() >= k && status.verified_by().is_some()
}

/// The broadcast's holds on its table entries, released when the call ends or is cancelled
/// (an entry never outlives every call that holds it, nor is served after).
struct Held<'a> {
    pool: &'a PeerPool,
    handles: Vec<TxHandle>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut relay = self.pool.shared().relay();
        for handle in &self.handles {
            relay.release(*handle);
        }
    }
}
