//! What the tracker does with each answer: a subscription's status, a history (checked, then
//! merged into the table or rolled back), a header proof, a merkle branch, and a transaction's
//! bytes (hashed and read for the script's funding outputs and spends as they stream by).

use crate::accumulator::{HeaderProofError, verify_header_proof};
use crate::hash::{MerkleNode, ScriptHash, Txid};
use crate::header::Header;
use crate::history::{HistoryCheck, HistoryFault};
use crate::merkle::verify_tx_branch;
use crate::rpc::ProtocolVersion;
use crate::script::TxHeight;
use crate::session::response;
use crate::sync::Slots;
use crate::tx::{TxError, TxItem, TxScan};
use crate::tx_parts::OutPoint;

use super::slots::{ScriptState, Slot, TxEntry, TxState, entry, entry_mut, fresh};
use super::{
    MAX_BRANCH, STATUS_ATTEMPTS, STATUS_RACES, ScriptSlot, ScriptTracker, TrackerEvent, TrackerLie,
    TxSlot, lied,
};

impl<S: Slots<ScriptSlot>, T: Slots<TxSlot>> ScriptTracker<S, T> {
    pub(super) fn on_subscribed(&mut self, slot: usize, result: &[u8]) -> Option<TrackerEvent> {
        let s = self.tracked_mut(slot)?;
        if s.state != ScriptState::Subscribing {
            return None;
        }
        match response::subscribe_status(result) {
            Ok(status) => {
                s.announced = Some(status);
                s.state = if s.verified == Some(status) {
                    ScriptState::Idle
                } else {
                    ScriptState::NeedHistory
                };
                None
            }
            Err(_) => lied(slot, None, TrackerLie::Malformed),
        }
    }

    /// A history answered for script `slot`; `items` gives its rows, as often as asked (the
    /// rows are read three times: checked first, then merged into the table, then, once the
    /// merge found no duplicate and room for every row, their heights applied).
    pub(super) fn on_history<I>(
        &mut self,
        version: ProtocolVersion,
        slot: usize,
        items: impl Fn() -> I,
    ) -> Option<TrackerEvent>
    where
        I: Iterator<Item = Result<(Txid, TxHeight), ()>>,
    {
        let s = *self.tracked(slot)?;
        if s.state != ScriptState::FetchingHistory {
            return None;
        }
        let lie = |lie| lied(slot, None, lie);
        let mut check = HistoryCheck::new(version >= ProtocolVersion::V1_6);
        for item in items() {
            // An order is false whatever the status: no race explains it.
            let fault = match item {
                Ok((txid, height)) => match check.push(&txid, height) {
                    Ok(()) => continue,
                    Err(fault) => TrackerLie::History(fault),
                },
                Err(()) => TrackerLie::Malformed,
            };
            self.tracked_mut(slot)?.state = ScriptState::Idle;
            return lie(fault);
        }
        let Some(status) = s.announced.and_then(|a| check.finish(a).ok()) else {
            let s = self.tracked_mut(slot)?;
            // The status changed while this history was fetched: the newer one is asked for.
            if s.raced && s.races < STATUS_RACES {
                s.races += 1;
                s.state = ScriptState::NeedHistory;
                return None;
            }
            s.mismatches += 1;
            if s.mismatches >= STATUS_ATTEMPTS {
                s.mismatches = 0;
                s.state = ScriptState::Idle;
                return lie(TrackerLie::History(HistoryFault::StatusMismatch));
            }
            s.state = ScriptState::Backoff { since: None };
            return None;
        };
        let (old, new) = (s.generation, s.generation.wrapping_add(1));
        for item in items().flatten() {
            if let Err(found) = self.merge(slot, new, item) {
                self.roll_back(slot, old, new);
                self.tracked_mut(slot)?.state = ScriptState::Idle;
                return found;
            }
        }
        // Accepted: only now do the rows change what the previous generation verified.
        for item in items().flatten() {
            self.apply(slot, item);
        }
        let s = self.tracked_mut(slot)?;
        s.mismatches = 0;
        s.races = 0;
        s.verified = Some(status);
        s.state = ScriptState::Idle;
        s.generation = new;
        self.removals_due = true;
        Some(TrackerEvent::StatusVerified {
            script: slot,
            status,
        })
    }

    /// Marks one row of a history as part of generation `new`, adding an entry for a new
    /// transaction. An entry already in the table is only marked (its height, if changed, is
    /// [`Self::apply`]'d once the whole history is accepted), so a rolled-back merge leaves the
    /// previous generation as it was.
    fn merge(
        &mut self,
        slot: usize,
        new: u32,
        (txid, height): (Txid, TxHeight),
    ) -> Result<(), Option<TrackerEvent>> {
        let script = slot as u16;
        let existing = self
            .entries_mut()
            .find(|t| t.script == script && t.txid == txid);
        match existing {
            // Seen already in this very history: listed twice.
            Some(t) if t.generation == new => {
                let duplicate = TrackerLie::History(HistoryFault::DuplicateTxid(txid));
                return Err(lied(slot, Some(txid), duplicate));
            }
            Some(t) => t.generation = new,
            None => {
                let j = self
                    .free_tx_slot()
                    .ok_or(Some(TrackerEvent::Full { script: slot }))?;
                let free = self
                    .tx_table_mut()
                    .get_mut(j)
                    .ok_or(Some(TrackerEvent::Full { script: slot }))?;
                free.0 = Slot::Tx(TxEntry {
                    script,
                    txid,
                    height,
                    state: fresh(height),
                    generation: new,
                    reported: false,
                    added: true,
                    read_before: false,
                    stale_answer: false,
                    pos: 0,
                    block_time: 0,
                });
            }
        }
        Ok(())
    }

    /// One row of an accepted history: an entry whose height is unchanged keeps its
    /// verification, any other is (re)verified.
    fn apply(&mut self, slot: usize, (txid, height): (Txid, TxHeight)) {
        let script = slot as u16;
        let mut unproven = self.unproven;
        let entry = self
            .entries_mut()
            .find(|t| t.script == script && t.txid == txid);
        if let Some(t) = entry {
            if t.added {
                t.added = false;
            } else if t.height != height || t.state == TxState::Parked {
                if matches!(t.state, TxState::Unproven { .. }) {
                    unproven -= 1;
                }
                t.height = height;
                t.reset(fresh(height));
            }
        }
        self.unproven = unproven;
    }

    /// Undoes a merge that failed half way: the entries it added are freed, the ones it kept
    /// go back to the previous generation.
    fn roll_back(&mut self, slot: usize, old: u32, new: u32) {
        let script = slot as u16;
        let n = self.tx_table().len();
        for j in 0..n {
            let Some(t) = self.tx_table_mut().get_mut(j).and_then(entry_mut) else {
                continue;
            };
            if t.script != script || t.generation != new {
                continue;
            }
            if t.added {
                self.remove(j);
            } else {
                t.generation = old;
            }
        }
    }

    pub(super) fn on_header(&mut self, slot: usize, result: &[u8]) -> Option<TrackerEvent> {
        let t = self.tx_table_mut().get_mut(slot).and_then(entry_mut)?;
        // A response to a request made before a reorg reset the entry is stale: ignored.
        let TxState::FetchingHeader {
            cp_height: cp,
            root,
        } = t.state
        else {
            return None;
        };
        let TxHeight::Confirmed(height) = t.height else {
            return None;
        };
        let lie = |lie| lied(usize::from(t.script), Some(t.txid), lie);
        let Ok(proof) = response::block_header_proof(result) else {
            return lie(TrackerLie::Malformed);
        };
        let Some(header) = proof.header else {
            return lie(TrackerLie::Malformed);
        };
        let Some((branch, n)) = copied::<{ MAX_BRANCH + 2 }, _>(proof.branch.iter()) else {
            return lie(TrackerLie::Malformed);
        };
        let parsed = Header::from_bytes(&header);
        let block_hash = parsed.block_hash();
        if proof.root != root {
            return lie(TrackerLie::HeaderProof(HeaderProofError::RootMismatch));
        }
        if let Err(e) = verify_header_proof(&block_hash, height, cp, &branch[..n], &root) {
            return lie(TrackerLie::HeaderProof(e));
        }
        t.state = TxState::NeedMerkle {
            merkle_root: parsed.merkle_root,
            block_hash,
        };
        t.block_time = parsed.time;
        None
    }

    pub(super) fn on_merkle(&mut self, slot: usize, result: &[u8]) -> Option<TrackerEvent> {
        let t = self.tx_table_mut().get_mut(slot).and_then(entry_mut)?;
        let TxState::FetchingMerkle {
            merkle_root,
            block_hash,
        } = t.state
        else {
            return None;
        };
        let lie = |lie| lied(usize::from(t.script), Some(t.txid), lie);
        let Ok(proof) = response::merkle_proof(result) else {
            return lie(TrackerLie::Malformed);
        };
        let Some((branch, n)) = copied::<{ MAX_BRANCH + 1 }, _>(proof.branch.iter()) else {
            return lie(TrackerLie::Malformed);
        };
        if TxHeight::Confirmed(proof.block_height) != t.height {
            return lie(TrackerLie::ProofHeight {
                claimed: proof.block_height,
            });
        }
        if let Err(e) = verify_tx_branch(&t.txid, proof.pos, &branch[..n], &merkle_root) {
            return lie(TrackerLie::Merkle(e));
        }
        t.pos = proof.pos;
        t.state = TxState::NeedTx {
            block_hash: Some(block_hash),
            last_look: false,
        };
        None
    }

    pub(super) fn on_tx(&mut self, slot: usize, result: &[u8]) -> Option<TrackerEvent> {
        let t = *self.tx_table().get(slot).and_then(entry)?;
        let TxState::FetchingTx {
            block_hash,
            last_look,
        } = t.state
        else {
            return None;
        };
        let script = usize::from(t.script);
        let hash = self.tracked(script)?.hash;
        let lie = |lie| lied(script, Some(t.txid), lie);
        let Ok(hex) = response::transaction_hex(result) else {
            return lie(TrackerLie::Malformed);
        };
        let read = self.read_tx(&t, &hash, hex);
        if let Some(t) = self.tx_table_mut().get_mut(slot).and_then(entry_mut) {
            t.read_before = true;
        }
        if let Err(lie_found) = read {
            // What the bytes claimed to fund is not a funding output.
            self.forget_funding(t.script, &t.txid);
            return lie(lie_found);
        }
        let t = self.tx_table_mut().get_mut(slot).and_then(entry_mut)?;
        let involved = match read {
            Ok(Read::Involved) => true,
            Ok(Read::Full) => {
                t.state = TxState::Parked;
                return Some(TrackerEvent::Full { script });
            }
            _ => false,
        };
        if !involved {
            if last_look {
                return lie(TrackerLie::Unrelated);
            }
            t.state = TxState::Unproven { block_hash };
            self.unproven += 1;
            return None;
        }
        t.state = TxState::Done { block_hash };
        t.reported = true;
        Some(match (t.height, block_hash) {
            (TxHeight::Confirmed(height), Some(block_hash)) => TrackerEvent::Confirmed {
                script,
                txid: t.txid,
                height,
                block_hash,
            },
            (height, _) => TrackerEvent::Unconfirmed {
                script,
                txid: t.txid,
                height,
            },
        })
    }

    /// Reads a transaction's hex as it is decoded, 64 bytes at a time (no buffer of its
    /// size): hashes it, records the outputs paying the script as funding outputs, and says
    /// whether it pays the script or spends a funding output known now.
    fn read_tx(
        &mut self,
        t: &TxEntry,
        script: &ScriptHash,
        hex: &[u8],
    ) -> Result<Read, TrackerLie> {
        let mut scan = TxScan::new(script);
        let mut involved = false;
        let mut full = false;
        let mut buf = [0u8; 64];
        for chunk in hex.chunks(128) {
            let out = &mut buf[..chunk.len() / 2];
            if crate::hex::decode_to_slice(chunk, out).is_err() {
                return Err(TrackerLie::Malformed);
            }
            let mut on = |item| match item {
                TxItem::Pays { vout } => {
                    involved = true;
                    let outpoint = OutPoint { txid: t.txid, vout };
                    full |= !self.record_funding(t.script, outpoint, t.read_before);
                }
                TxItem::Spends(outpoint) => {
                    involved |= self.is_funding(t.script, &outpoint);
                }
            };
            match scan.feed(out, &mut on) {
                Ok(n) if n == out.len() => {}
                Ok(_) => return Err(TrackerLie::Tx(TxError::TrailingBytes)),
                Err(e) => return Err(TrackerLie::Tx(e)),
            }
        }
        match scan.finish() {
            Ok(txid) if txid == t.txid => {}
            Ok(got) => return Err(TrackerLie::TxidMismatch { got }),
            Err(e) => return Err(TrackerLie::Tx(e)),
        }
        // A funding output that did not fit would leave the transaction spending it looking
        // unrelated: the table's bound is reported instead.
        Ok(if full {
            Read::Full
        } else if involved {
            Read::Involved
        } else {
            Read::NotYet
        })
    }

    fn is_funding(&self, script: u16, outpoint: &OutPoint) -> bool {
        self.tx_table().iter().any(|s| {
            matches!(s.0, Slot::Funded { script: f, outpoint: o } if f == script && o == *outpoint)
        })
    }

    /// Records a funding output (once: `maybe_known` when its transaction was read before);
    /// `false` if the table is full.
    fn record_funding(&mut self, script: u16, outpoint: OutPoint, maybe_known: bool) -> bool {
        if maybe_known && self.is_funding(script, &outpoint) {
            return true;
        }
        let Some(j) = self.free_tx_slot() else {
            return false;
        };
        match self.tx_table_mut().get_mut(j) {
            Some(slot) => {
                slot.0 = Slot::Funded { script, outpoint };
                true
            }
            None => false,
        }
    }
}

/// What reading a transaction showed.
enum Read {
    /// It pays the script or spends a funding output of it.
    Involved,
    /// Neither, as far as the funding outputs known now show.
    NotYet,
    /// A funding output it pays found no free slot.
    Full,
}

/// A branch's nodes copied out of the answer (the answer's bytes are the session's and are
/// reused), with their count; `None` if one does not decode or there are more than `N`.
fn copied<const N: usize, E>(
    nodes: impl Iterator<Item = Result<MerkleNode, E>>,
) -> Option<([MerkleNode; N], usize)> {
    let mut branch = [MerkleNode::default(); N];
    let mut n = 0;
    for node in nodes {
        *branch.get_mut(n)? = node.ok()?;
        n += 1;
    }
    Some((branch, n))
}
