//! The pool's side of core's [`BroadcastTable`]: node names to core node ids, the bytes of
//! the transactions being broadcast, and what each connection's events mean to the table.
//!
//! Every rule (who may be served, which announcements count, which bytes verify) is core's;
//! this module only routes, and only what names one of its entries: an index, so a flood of
//! other inventory costs a hash lookup per item, never a table scan.
//!
//! Node ids are given to nodes that announce or receive one of its transactions, in the order
//! they are first seen, at most [`MAX_NODES`] at once; they are given afresh once no broadcast
//! runs. A node beyond the bound is not tracked (its announcements do not count and it is
//! never served).
//!
//! It also remembers the last [`RECENT_INVS`] transaction announcements, so a broadcast of a
//! transaction the network already has counts the nodes that announced it before the
//! broadcast began (a node never announces it to us twice).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use electrum_spv_core::hash::{Txid, Wtxid};
use electrum_spv_core::p2p::{
    BroadcastTable, GetData, InvVector, MAX_NODES, NodeId as CoreNodeId, NodeSet, ServePermit,
    TableError, TxForm, TxHandle, TxSeen, TxStatus, WireTx,
};

use electrum_spv_core::time::Duration;

use super::addr::NodeId;
use crate::clock::unix_instant;

/// How long an announcer asked for a broadcast's bytes has to send them before the next is
/// asked.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Transaction announcements remembered (about 100 bytes each).
pub const RECENT_INVS: usize = 20_000;

/// The table, the bytes it serves, and the node ids.
#[derive(Debug)]
pub(crate) struct Relay {
    table: BroadcastTable<Vec<TxStatus>>,
    raw: HashMap<TxHandle, Arc<[u8]>>,
    /// Broadcasts holding each entry (two calls may broadcast the same transaction).
    owners: HashMap<TxHandle, usize>,
    /// Txids and wtxids of the entries: items naming nothing here never reach the table, so
    /// a 50,000-item `inv` costs 50,000 lookups, not a table scan each.
    index: HashMap<[u8; 32], TxHandle>,
    /// Unix milliseconds of the first `getdata` that got a transaction served.
    served_at: HashMap<TxHandle, u64>,
    ids: Vec<NodeId>,
    recent: VecDeque<(NodeId, InvVector, u64)>,
}

impl Default for Relay {
    fn default() -> Relay {
        Relay {
            table: BroadcastTable::new(Vec::new(), VERIFY_TIMEOUT),
            raw: HashMap::new(),
            owners: HashMap::new(),
            index: HashMap::new(),
            served_at: HashMap::new(),
            ids: Vec::new(),
            recent: VecDeque::new(),
        }
    }
}

/// What to do for a `getdata`: transactions to serve and items to answer `notfound`.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    pub serve: Vec<(ServePermit, Arc<[u8]>)>,
    pub not_found: Vec<InvVector>,
}

impl Relay {
    /// The core id of `node`, given on first sight; `None` past [`MAX_NODES`] nodes.
    pub fn id(&mut self, node: &NodeId) -> Option<CoreNodeId> {
        if let Some(i) = self.ids.iter().position(|n| n == node) {
            return CoreNodeId::new(i);
        }
        let id = CoreNodeId::new(self.ids.len())?;
        self.ids.push(node.clone());
        Some(id)
    }

    /// The core id of `node` if it has one.
    pub fn known(&self, node: &NodeId) -> Option<CoreNodeId> {
        self.ids
            .iter()
            .position(|n| n == node)
            .and_then(CoreNodeId::new)
    }

    /// The node of a core id.
    pub fn node(&self, id: CoreNodeId) -> Option<&NodeId> {
        self.ids.get(id.index())
    }

    /// The nodes of a set.
    pub fn nodes(&self, set: NodeSet) -> Vec<NodeId> {
        set.iter().filter_map(|id| self.node(id).cloned()).collect()
    }

    /// Adds a transaction to broadcast to `recipients`, or takes one more hold on the entry
    /// already there (keeping its recipients); [`Relay::release`] once per call.
    pub fn add(
        &mut self,
        raw: Arc<[u8]>,
        recipients: NodeSet,
        now: u64,
    ) -> Result<TxHandle, TableError> {
        // The caller parsed it already; a failure here would be a broken invariant.
        let Ok(wire) = WireTx::parse(&raw) else {
            return Err(TableError::Full);
        };
        let handle = match self.table.broadcast(&wire, recipients, unix_instant(now)) {
            Ok(h) | Err(TableError::Duplicate(h)) => h,
            Err(e) => return Err(e),
        };
        let earlier: Vec<_> = self
            .recent
            .iter()
            .filter(|(_, inv, _)| wire.is_named_by(inv))
            .cloned()
            .collect();
        self.raw.insert(handle, raw.clone());
        *self.owners.entry(handle).or_default() += 1;
        self.index.insert(wire.txid().to_byte_array(), handle);
        self.index.insert(wire.wtxid().to_byte_array(), handle);
        for (node, inv, time) in earlier {
            if let Some(id) = self.id(&node) {
                self.table.on_inv(id, &inv, unix_instant(time));
            }
        }
        Ok(handle)
    }

    /// Releases one hold on an entry; the last forgets it. With no entry left, node ids are
    /// given afresh (so ids never run out over a long life).
    pub fn release(&mut self, handle: TxHandle) {
        let Some(owners) = self.owners.get_mut(&handle) else {
            return;
        };
        *owners -= 1;
        if *owners > 0 {
            return;
        }
        self.owners.remove(&handle);
        self.table.remove(handle);
        self.raw.remove(&handle);
        self.index.retain(|_, h| *h != handle);
        self.served_at.remove(&handle);
        if self.owners.is_empty() {
            self.ids.clear();
        }
    }

    /// Unix milliseconds when a recipient's `getdata` was first answered with `handle`'s
    /// transaction (the connection task writes the `tx` frame right after).
    pub fn served_at(&self, handle: TxHandle) -> Option<u64> {
        self.served_at.get(&handle).copied()
    }

    /// Whether `item` names an entry.
    fn names_entry(&self, item: &InvVector) -> bool {
        TxForm::of(item.kind).is_some() && self.index.contains_key(&item.hash)
    }

    /// The table, to read.
    pub fn table(&self) -> &BroadcastTable<Vec<TxStatus>> {
        &self.table
    }

    /// The table, for calls that need no routing (announce, verification, timeouts).
    pub fn table_mut(&mut self) -> &mut BroadcastTable<Vec<TxStatus>> {
        &mut self.table
    }

    /// An `inv` from `node`.
    pub fn on_inv(&mut self, node: &NodeId, items: &[InvVector], now: u64) {
        for item in items.iter().filter(|i| TxForm::of(i.kind).is_some()) {
            if self.recent.len() >= RECENT_INVS {
                self.recent.pop_front();
            }
            self.recent.push_back((node.clone(), *item, now));
        }
        let ours: Vec<&InvVector> = items.iter().filter(|i| self.names_entry(i)).collect();
        if ours.is_empty() {
            return;
        }
        let Some(id) = self.id(node) else {
            return;
        };
        for item in ours {
            self.table.on_inv(id, item, unix_instant(now));
        }
    }

    /// A `getdata` from `node`: what to serve and what to answer `notfound`.
    pub fn on_getdata(&mut self, node: &NodeId, items: &[InvVector]) -> Answers {
        let mut answers = Answers::default();
        let id = self.known(node);
        for item in items {
            let answer = match id {
                Some(id) if self.names_entry(item) => self.table.on_getdata(id, item),
                _ => GetData::NotFound,
            };
            match answer {
                GetData::Serve(permit) => match self.raw.get(&permit.handle()) {
                    Some(raw) => {
                        self.served_at
                            .entry(permit.handle())
                            .or_insert_with(super::unix_ms);
                        answers.serve.push((permit, raw.clone()));
                    }
                    None => answers.not_found.push(*item),
                },
                // A light client has no blocks either: Core answers `notfound` for both.
                GetData::NotFound | GetData::Ignore => answers.not_found.push(*item),
            }
        }
        answers
    }

    /// A `notfound` from `node`.
    pub fn on_notfound(&mut self, node: &NodeId, items: &[InvVector]) {
        if let Some(id) = self.known(node) {
            let ours: Vec<InvVector> = items
                .iter()
                .filter(|i| self.names_entry(i))
                .copied()
                .collect();
            for item in &ours {
                self.table.on_notfound(id, item);
            }
        }
    }

    /// A whole `tx` from `node`.
    pub fn on_tx(&mut self, node: &NodeId, txid: &Txid, wtxid: &Wtxid) -> TxSeen {
        match self.known(node) {
            Some(id) if self.index.contains_key(&txid.to_byte_array()) => {
                self.table.on_tx(id, txid, wtxid)
            }
            _ => TxSeen::Other,
        }
    }

    /// A `reject` naming `hash` from `node`.
    pub fn on_reject(&mut self, node: &NodeId, hash: &[u8; 32]) {
        if let Some(id) = self.known(node).filter(|_| self.index.contains_key(hash)) {
            self.table.on_reject(id, hash);
        }
    }

    /// `node` has no connection left.
    pub fn node_gone(&mut self, node: &NodeId) {
        if let Some(id) = self.known(node) {
            self.table.node_gone(id);
        }
    }
}

/// Bound documented in the module docs.
const _: () = assert!(MAX_NODES == 64);
