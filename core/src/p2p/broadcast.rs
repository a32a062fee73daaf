//! The broadcast table and the watch set: which node was sent what, asked for what, and who
//! announced it back.
//!
//! Bitcoin Core and bcoin relay a transaction by announcing it (`inv`) and serving it only to
//! a peer that asks (`getdata`); bcoin disconnects a peer that sends a `tx` it did not request.
//! A node never announces a transaction back to the connection it came from, so propagation is
//! shown only by announcements from **other** nodes (P2P.md). The table keeps, per
//! transaction, the nodes of each step:
//!
//! 1. [`BroadcastTable::broadcast`] adds a transaction to send to a set of `recipients`;
//!    [`BroadcastTable::announce`] gives the `inv` entry for one recipient, in the form it
//!    relays (`MSG_WTX` by wtxid for a BIP339 peer, `MSG_TX` by txid otherwise).
//! 2. A `getdata` goes to [`BroadcastTable::on_getdata`]: only a recipient the transaction was
//!    announced to gets a [`ServePermit`] (in the form it asked: `MSG_TX` stripped,
//!    `MSG_WITNESS_TX`/`MSG_WTX` with witness); anyone else gets [`GetData::NotFound`], as Core
//!    answers. [`Peer::serve_tx`](super::Peer::serve_tx) needs the permit: no `tx` is ever sent
//!    unsolicited.
//! 3. Every `inv` entry goes to [`BroadcastTable::on_inv`]: an announcement of one of ours by a
//!    node that is **not** a recipient counts ([`TxStatus::announced_by`]); a recipient's own
//!    announcement never does. Nodes, not connections: the caller gives every connection to the
//!    same node the same [`NodeId`].
//! 4. [`BroadcastTable::next_verification`] picks one announcer to ask for the bytes; the `tx`
//!    it sends goes to [`BroadcastTable::on_tx`] and must hash to our wtxid
//!    ([`TxStatus::verified_by`]). A node that serves other bytes for our txid is recorded
//!    ([`TxStatus::mismatched_by`]) and no longer counted as an announcer; a `notfound` or no
//!    answer within the deadline moves the question to the next announcer.
//!
//! [`BroadcastTable::watch`] adds a transaction we do not hold (a watch set entry): only step 3
//! applies.
//!
//! Success is the caller's rule over [`TxStatus::confirmations`] (announced by at least K other
//! nodes); "a node asked for it" and "no reject came" are never taken as an answer.
//!
//! ## Bounds
//! At most [`MAX_NODES`] node ids (a set is one `u64`); a slot is at most
//! [`TX_STATUS_MAX_SIZE`] bytes. The table lives in storage the caller
//! owns ([`Slots`]): a fixed array on a device, a growing `Vec` with `alloc`. Lookups scan the
//! table: linear in its size per inventory entry.

use core::fmt;

use super::serve::{TxForm, WireTx};
use super::{InvType, InvVector};
use crate::hash::{Txid, Wtxid};
use crate::sync::Slots;
use crate::time::{Duration, Instant};

/// Node ids are `0..MAX_NODES`.
pub const MAX_NODES: usize = 64;

/// Upper bound on `size_of::<TxStatus>()`, one slot of the table (tested): a table of 1,000
/// transactions needs under 200 KB.
pub const TX_STATUS_MAX_SIZE: usize = 192;

/// A node, as the caller numbers them: one id for every connection to the same node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct NodeId(u8);

impl NodeId {
    /// The id `n`, if under [`MAX_NODES`].
    pub const fn new(n: usize) -> Option<NodeId> {
        if n < MAX_NODES {
            Some(NodeId(n as u8))
        } else {
            None
        }
    }

    /// The number.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of [`NodeId`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct NodeSet(u64);

impl NodeSet {
    /// No node.
    pub const EMPTY: NodeSet = NodeSet(0);

    /// Whether `node` is in the set.
    pub const fn contains(self, node: NodeId) -> bool {
        self.0 & (1 << node.0) != 0
    }

    /// Adds `node`; `true` if it was not there.
    pub fn insert(&mut self, node: NodeId) -> bool {
        let new = !self.contains(node);
        self.0 |= 1 << node.0;
        new
    }

    /// Removes `node`.
    pub fn remove(&mut self, node: NodeId) {
        self.0 &= !(1 << node.0);
    }

    /// How many nodes.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The nodes in `self` and not in `other`.
    pub const fn without(self, other: NodeSet) -> NodeSet {
        NodeSet(self.0 & !other.0)
    }

    /// The nodes, lowest id first.
    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        (0..MAX_NODES as u8)
            .filter(move |&n| self.0 & (1 << n) != 0)
            .map(NodeId)
    }
}

impl FromIterator<NodeId> for NodeSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> NodeSet {
        let mut set = NodeSet::EMPTY;
        for node in iter {
            set.insert(node);
        }
        set
    }
}

/// Why an entry was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// Every slot is used and the storage cannot grow.
    Full,
    /// The transaction is already in the table, at this handle.
    Duplicate(TxHandle),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Full => f.write_str("broadcast table full"),
            TableError::Duplicate(h) => write!(f, "transaction already in the table (#{})", h.0),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TableError {}

/// An entry of the table (its slot index).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TxHandle(usize);

impl TxHandle {
    /// The slot index.
    pub const fn index(self) -> usize {
        self.0
    }
}

/// What an entry is for.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub enum Role {
    /// A free slot.
    #[default]
    Free,
    /// Ours to announce and serve.
    Broadcast,
    /// Only looked for in announcements.
    Watch,
}

#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
enum Verify {
    #[default]
    Waiting,
    Asked {
        node: NodeId,
        deadline: Instant,
    },
    Verified(NodeId),
}

/// One transaction's slot and what happened to it so far.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct TxStatus {
    role: Role,
    txid: Txid,
    /// `None` for a watched transaction known only by its txid.
    wtxid: Option<Wtxid>,
    recipients: NodeSet,
    announced_to: NodeSet,
    requested_by: NodeSet,
    announced_by: NodeSet,
    asked: NodeSet,
    mismatched_by: NodeSet,
    rejected_by: NodeSet,
    verify: Verify,
    added_at: Instant,
    first_announcement_at: Option<Instant>,
}

impl TxStatus {
    /// What the slot is for.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The txid.
    pub fn txid(&self) -> Txid {
        self.txid
    }
    /// The wtxid, when known (always for a broadcast).
    pub fn wtxid(&self) -> Option<Wtxid> {
        self.wtxid
    }
    /// The nodes it is to be sent to.
    pub fn recipients(&self) -> NodeSet {
        self.recipients
    }
    /// Recipients it was announced to.
    pub fn announced_to(&self) -> NodeSet {
        self.announced_to
    }
    /// Recipients that asked for it (and were served).
    pub fn requested_by(&self) -> NodeSet {
        self.requested_by
    }
    /// Non-recipient nodes that announced it, without those that served other bytes.
    pub fn announced_by(&self) -> NodeSet {
        self.announced_by.without(self.mismatched_by)
    }
    /// How many other nodes announced it: [`TxStatus::announced_by`]'s size.
    pub fn confirmations(&self) -> usize {
        self.announced_by().len()
    }
    /// The announcer whose bytes hashed to our wtxid.
    pub fn verified_by(&self) -> Option<NodeId> {
        match self.verify {
            Verify::Verified(node) => Some(node),
            _ => None,
        }
    }
    /// Announcers that served other bytes under our txid (a Sybil, or a witness malleated
    /// on the way).
    pub fn mismatched_by(&self) -> NodeSet {
        self.mismatched_by
    }
    /// Nodes that sent a `reject` for it (informational: Core sends none since 0.20).
    pub fn rejected_by(&self) -> NodeSet {
        self.rejected_by
    }
    /// Caller time it was added.
    pub fn added_at(&self) -> Instant {
        self.added_at
    }
    /// Caller time of the first announcement by a non-recipient.
    pub fn first_announcement_at(&self) -> Option<Instant> {
        self.first_announcement_at
    }

    fn names(&self, inv: &InvVector) -> bool {
        match inv.kind {
            InvType::TX | InvType::WITNESS_TX => inv.hash == self.txid.to_byte_array(),
            InvType::WTX => self.wtxid.is_some_and(|w| inv.hash == w.to_byte_array()),
            _ => false,
        }
    }
}

/// Leave to serve one transaction to one node, given by [`BroadcastTable::on_getdata`] and
/// taken by [`Peer::serve_tx`](super::Peer::serve_tx).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ServePermit {
    handle: TxHandle,
    inv: InvVector,
    form: TxForm,
}

impl ServePermit {
    /// The entry.
    pub fn handle(&self) -> TxHandle {
        self.handle
    }
    /// The `getdata` entry it answers.
    pub fn inv(&self) -> InvVector {
        self.inv
    }
    /// The form asked for.
    pub fn form(&self) -> TxForm {
        self.form
    }
}

/// The answer to one `getdata` entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GetData {
    /// Serve it: pass the permit and the transaction to [`Peer::serve_tx`](super::Peer::serve_tx).
    Serve(ServePermit),
    /// Answer `notfound`: not ours, or not announced to that node.
    NotFound,
    /// Not a transaction request (a block, ...): not the table's business.
    Ignore,
}

/// What an `inv` entry was to the table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InvSeen {
    /// One of ours, announced by a non-recipient; `first` for that node's first announcement.
    Announced {
        /// The entry.
        handle: TxHandle,
        /// This node had not announced it before.
        first: bool,
    },
    /// One of ours, announced by one of its recipients: not counted.
    FromRecipient(TxHandle),
    /// Not in the table.
    Other,
}

/// What a received `tx` was to the table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TxSeen {
    /// The node asked to verify sent bytes that hash to our wtxid.
    Verified(TxHandle),
    /// The node asked to verify sent other bytes under our txid: it no longer counts.
    Mismatch(TxHandle),
    /// Not a transaction we asked this node for.
    Other,
}

/// The broadcast table over caller-owned storage. See the [module docs](self).
#[derive(Debug)]
pub struct BroadcastTable<S: Slots<TxStatus>> {
    slots: S,
    verify_timeout: Duration,
}

impl<S: Slots<TxStatus>> BroadcastTable<S> {
    /// A table over `slots` (every slot must be free, e.g. `TxStatus::default()`); a verifying
    /// announcer gets `verify_timeout` to send the transaction before the next is asked.
    pub fn new(slots: S, verify_timeout: Duration) -> BroadcastTable<S> {
        BroadcastTable {
            slots,
            verify_timeout,
        }
    }

    /// The entry at `handle`, if used.
    pub fn get(&self, handle: TxHandle) -> Option<&TxStatus> {
        self.slots
            .slots()
            .get(handle.0)
            .filter(|s| s.role != Role::Free)
    }

    /// Every used entry.
    pub fn entries(&self) -> impl Iterator<Item = (TxHandle, &TxStatus)> {
        self.slots
            .slots()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.role != Role::Free)
            .map(|(i, s)| (TxHandle(i), s))
    }

    /// The entry whose txid is `txid`.
    pub fn find(&self, txid: &Txid) -> Option<TxHandle> {
        self.entries()
            .find(|(_, s)| s.txid == *txid)
            .map(|(h, _)| h)
    }

    fn add(&mut self, status: TxStatus) -> Result<TxHandle, TableError> {
        if let Some(h) = self.find(&status.txid) {
            return Err(TableError::Duplicate(h));
        }
        let free = self.slots.slots().iter().position(|s| s.role == Role::Free);
        let index = match free {
            Some(i) => i,
            None if self.slots.grow() => self.slots.slots().len().saturating_sub(1),
            None => return Err(TableError::Full),
        };
        let slot = self
            .slots
            .slots_mut()
            .get_mut(index)
            .ok_or(TableError::Full)?;
        *slot = status;
        Ok(TxHandle(index))
    }

    /// Adds `tx` to announce to `recipients` at caller time `now`.
    ///
    /// # Errors
    /// [`TableError::Full`], or [`TableError::Duplicate`] for a txid already in the table.
    pub fn broadcast(
        &mut self,
        tx: &WireTx<'_>,
        recipients: NodeSet,
        now: Instant,
    ) -> Result<TxHandle, TableError> {
        self.add(TxStatus {
            role: Role::Broadcast,
            txid: tx.txid(),
            wtxid: Some(tx.wtxid()),
            recipients,
            added_at: now,
            ..TxStatus::default()
        })
    }

    /// Adds a transaction to look for in announcements (a `wtxid` lets `MSG_WTX`
    /// announcements match too).
    ///
    /// # Errors
    /// As [`BroadcastTable::broadcast`].
    pub fn watch(
        &mut self,
        txid: Txid,
        wtxid: Option<Wtxid>,
        now: Instant,
    ) -> Result<TxHandle, TableError> {
        self.add(TxStatus {
            role: Role::Watch,
            txid,
            wtxid,
            added_at: now,
            ..TxStatus::default()
        })
    }

    /// Frees the entry.
    pub fn remove(&mut self, handle: TxHandle) {
        if let Some(slot) = self.slots.slots_mut().get_mut(handle.0) {
            *slot = TxStatus::default();
        }
    }

    fn slot_mut(&mut self, handle: TxHandle) -> Option<&mut TxStatus> {
        self.slots
            .slots_mut()
            .get_mut(handle.0)
            .filter(|s| s.role != Role::Free)
    }

    /// The `inv` entry announcing `handle` to `node`, recorded as announced; `None` if the
    /// entry is not a broadcast or `node` is not one of its recipients. `wtxid_relay`: the node
    /// negotiated BIP339 ([`PeerInfo::wtxid_relay`](super::PeerInfo::wtxid_relay)).
    pub fn announce(
        &mut self,
        handle: TxHandle,
        node: NodeId,
        wtxid_relay: bool,
    ) -> Option<InvVector> {
        let slot = self.slot_mut(handle)?;
        if slot.role != Role::Broadcast || !slot.recipients.contains(node) {
            return None;
        }
        slot.announced_to.insert(node);
        Some(match (wtxid_relay, slot.wtxid) {
            (true, Some(wtxid)) => InvVector {
                kind: InvType::WTX,
                hash: wtxid.to_byte_array(),
            },
            _ => InvVector {
                kind: InvType::TX,
                hash: slot.txid.to_byte_array(),
            },
        })
    }

    /// A `getdata` entry from `node`.
    pub fn on_getdata(&mut self, node: NodeId, inv: &InvVector) -> GetData {
        let Some(form) = TxForm::of(inv.kind) else {
            return GetData::Ignore;
        };
        let found = self
            .slots
            .slots_mut()
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.role == Role::Broadcast && s.names(inv));
        match found {
            Some((index, slot)) if slot.announced_to.contains(node) => {
                slot.requested_by.insert(node);
                GetData::Serve(ServePermit {
                    handle: TxHandle(index),
                    inv: *inv,
                    form,
                })
            }
            _ => GetData::NotFound,
        }
    }

    /// An `inv` entry from `node` at caller time `now`.
    pub fn on_inv(&mut self, node: NodeId, inv: &InvVector, now: Instant) -> InvSeen {
        if TxForm::of(inv.kind).is_none() {
            return InvSeen::Other;
        }
        let found = self
            .slots
            .slots_mut()
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.role != Role::Free && s.names(inv));
        let Some((index, slot)) = found else {
            return InvSeen::Other;
        };
        let handle = TxHandle(index);
        if slot.recipients.contains(node) {
            return InvSeen::FromRecipient(handle);
        }
        let first = slot.announced_by.insert(node);
        if slot.first_announcement_at.is_none() {
            slot.first_announcement_at = Some(now);
        }
        InvSeen::Announced { handle, first }
    }

    /// A `reject` naming `hash` (a txid) from `node`; the entry, if ours.
    pub fn on_reject(&mut self, node: NodeId, hash: &[u8; 32]) -> Option<TxHandle> {
        let handle = self.find(&Txid::from_byte_array(*hash))?;
        self.slot_mut(handle)?.rejected_by.insert(node);
        Some(handle)
    }

    /// The next announcer to ask for a broadcast's bytes, at caller time `now`: the entry,
    /// the node, and the `getdata` entry to send it (by wtxid to a BIP339 node, else
    /// `MSG_WITNESS_TX` by txid). `wtxid_relay` tells which nodes negotiated BIP339.
    pub fn next_verification(
        &mut self,
        now: Instant,
        wtxid_relay: impl Fn(NodeId) -> bool,
    ) -> Option<(TxHandle, NodeId, InvVector)> {
        let timeout = self.verify_timeout;
        self.slots
            .slots_mut()
            .iter_mut()
            .enumerate()
            .filter(|(_, s)| s.role == Role::Broadcast && s.verify == Verify::Waiting)
            .find_map(|(index, slot)| {
                let node = slot
                    .announced_by
                    .without(slot.asked)
                    .without(slot.mismatched_by)
                    .iter()
                    .next()?;
                slot.asked.insert(node);
                slot.verify = Verify::Asked {
                    node,
                    deadline: now + timeout,
                };
                let inv = match (wtxid_relay(node), slot.wtxid) {
                    (true, Some(wtxid)) => InvVector {
                        kind: InvType::WTX,
                        hash: wtxid.to_byte_array(),
                    },
                    _ => InvVector {
                        kind: InvType::WITNESS_TX,
                        hash: slot.txid.to_byte_array(),
                    },
                };
                Some((TxHandle(index), node, inv))
            })
    }

    /// A whole `tx` from `node` with these ids.
    pub fn on_tx(&mut self, node: NodeId, txid: &Txid, wtxid: &Wtxid) -> TxSeen {
        let Some(handle) = self.find(txid) else {
            return TxSeen::Other;
        };
        let Some(slot) = self.slot_mut(handle) else {
            return TxSeen::Other;
        };
        match slot.verify {
            Verify::Asked { node: asked, .. } if asked == node => {
                if slot.wtxid == Some(*wtxid) {
                    slot.verify = Verify::Verified(node);
                    TxSeen::Verified(handle)
                } else {
                    slot.mismatched_by.insert(node);
                    slot.verify = Verify::Waiting;
                    TxSeen::Mismatch(handle)
                }
            }
            _ => TxSeen::Other,
        }
    }

    /// A `notfound` entry from `node`: if it was asked to verify, the next announcer is.
    pub fn on_notfound(&mut self, node: NodeId, inv: &InvVector) {
        for slot in self.slots.slots_mut() {
            if matches!(slot.verify, Verify::Asked { node: asked, .. } if asked == node)
                && slot.names(inv)
            {
                slot.verify = Verify::Waiting;
            }
        }
    }

    /// `node` disconnected: a verification it owed goes to the next announcer. What it did
    /// (announced, requested) stays recorded.
    pub fn node_gone(&mut self, node: NodeId) {
        for slot in self.slots.slots_mut() {
            if matches!(slot.verify, Verify::Asked { node: asked, .. } if asked == node) {
                slot.verify = Verify::Waiting;
            }
        }
    }

    /// When [`BroadcastTable::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .slots()
            .iter()
            .filter_map(|s| match s.verify {
                Verify::Asked { deadline, .. } if s.role == Role::Broadcast => Some(deadline),
                _ => None,
            })
            .min()
    }

    /// Caller time `now` came: a verification past its deadline goes to the next announcer.
    pub fn handle_timeout(&mut self, now: Instant) {
        for slot in self.slots.slots_mut() {
            if matches!(slot.verify, Verify::Asked { deadline, .. } if deadline <= now) {
                slot.verify = Verify::Waiting;
            }
        }
    }
}
