//! Requests awaiting their response, in a fixed-capacity table.

use core::fmt;

use crate::buffer::Buffer;
use crate::rpc::method::Method;
use crate::time::Instant;

/// A request in flight.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Pending {
    /// The JSON-RPC id it was sent with.
    pub id: u64,
    /// What was asked.
    pub method: Method,
    /// When it times out, on the caller's clock.
    pub deadline: Instant,
    /// A value the caller attached (e.g. which script or height the request is about).
    pub tag: u32,
}

/// Why the pending table refused an operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PendingError {
    /// Every slot holds a request in flight; the documented bound is the table's capacity.
    Full,
    /// A response for an id that is not in flight: never sent, already answered (a duplicate),
    /// or timed out.
    UnknownId(u64),
}

impl fmt::Display for PendingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PendingError::Full => f.write_str("too many requests in flight"),
            PendingError::UnknownId(id) => write!(f, "response to id {id}, which is not in flight"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PendingError {}

/// Room for one request in flight: caller memory for a session's pending table (one slot per
/// request the session may keep in flight; [`PendingSlot::SIZE`] bytes each).
#[derive(Clone, Copy, Default, Debug)]
pub struct PendingSlot(Option<Pending>);

impl PendingSlot {
    /// An empty slot, for initializing arrays: `[PendingSlot::EMPTY; 8]`.
    pub const EMPTY: PendingSlot = PendingSlot(None);
    /// Bytes of one slot.
    pub const SIZE: usize = core::mem::size_of::<PendingSlot>();
}

/// At most as many requests in flight as the table has slots. Ids are handed out in increasing
/// order and never reused, so a late or duplicated response can never be matched to a newer
/// request.
#[derive(Debug)]
pub struct PendingTable<'a> {
    slots: Buffer<'a, PendingSlot>,
    next_id: u64,
}

impl<'a> PendingTable<'a> {
    /// An empty table over `slots` (emptied); the first id is 0.
    pub fn new(slots: impl Into<Buffer<'a, PendingSlot>>) -> Self {
        let mut slots = slots.into();
        slots.fill(PendingSlot::EMPTY);
        PendingTable { slots, next_id: 0 }
    }

    /// A table with no slots (it refuses every request).
    pub(crate) const EMPTY: Self = PendingTable {
        slots: Buffer::empty(),
        next_id: 0,
    };

    /// Gives the slots back, leaving a table with none.
    pub(crate) fn take_slots(&mut self) -> Buffer<'a, PendingSlot> {
        core::mem::take(&mut self.slots)
    }

    /// Requests it can hold in flight.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Registers a request and returns its id.
    pub fn insert(
        &mut self,
        method: Method,
        deadline: Instant,
        tag: u32,
    ) -> Result<u64, PendingError> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.0.is_none())
            .ok_or(PendingError::Full)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        slot.0 = Some(Pending {
            id,
            method,
            deadline,
            tag,
        });
        Ok(id)
    }

    /// Removes and returns the request a response answers.
    pub fn take(&mut self, id: u64) -> Result<Pending, PendingError> {
        self.slots
            .iter_mut()
            .find(|s| s.0.is_some_and(|p| p.id == id))
            .and_then(|s| s.0.take())
            .ok_or(PendingError::UnknownId(id))
    }

    /// The request with this id, if in flight.
    pub fn get(&self, id: u64) -> Option<&Pending> {
        self.in_flight().find(|p| p.id == id)
    }

    /// Removes and returns one request whose deadline is at or before `now`.
    pub fn take_expired(&mut self, now: Instant) -> Option<Pending> {
        self.slots
            .iter_mut()
            .find(|s| s.0.is_some_and(|p| p.deadline <= now))
            .and_then(|s| s.0.take())
    }

    /// The earliest deadline in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.in_flight().map(|p| p.deadline).min()
    }

    /// Number of requests in flight.
    pub fn len(&self) -> usize {
        self.in_flight().count()
    }

    /// No request in flight.
    pub fn is_empty(&self) -> bool {
        self.in_flight().next().is_none()
    }

    fn in_flight(&self) -> impl Iterator<Item = &Pending> {
        self.slots.iter().filter_map(|s| s.0.as_ref())
    }

    /// Drops every request in flight (the connection is gone), calling `f` on each.
    pub fn drain(&mut self, mut f: impl FnMut(Pending)) {
        for slot in self.slots.iter_mut() {
            if let Some(p) = slot.0.take() {
                f(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn ids_are_unique_and_responses_match_once() {
        let mut slots = [PendingSlot::EMPTY; 2];
        let mut t = PendingTable::new(&mut slots);
        let a = t.insert(Method::ServerFeatures, at(100), 7).unwrap();
        let b = t.insert(Method::BlockHeader, at(50), 8).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            t.insert(Method::ServerPing, at(1), 0),
            Err(PendingError::Full)
        );
        assert_eq!(t.next_deadline(), Some(at(50)));
        assert_eq!(t.take(b).unwrap().tag, 8);
        assert_eq!(
            t.take(b),
            Err(PendingError::UnknownId(b)),
            "duplicate response"
        );
        assert_eq!(
            t.take(999),
            Err(PendingError::UnknownId(999)),
            "unsolicited response"
        );
        let c = t.insert(Method::ServerPing, at(10), 0).unwrap();
        assert!(c > b, "ids are never reused");
        assert_eq!(t.take_expired(at(9)), None);
        assert_eq!(t.take_expired(at(10)).map(|p| p.id), Some(c));
        let mut drained = 0;
        t.drain(|_| drained += 1);
        assert_eq!((drained, t.len(), t.is_empty()), (1, 0, true));
    }
}
