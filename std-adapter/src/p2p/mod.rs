//! Bitcoin P2P over tokio: one task per connection drives a core [`Peer`], and a [`PeerPool`]
//! keeps several of them connected.
//!
//! * [`addr`]: peer addresses (`host:port`), the node id that counts distinct nodes, and seeds
//!   files.
//! * [`outgoing`]: an owned message the pool can hand to a connection ([`OwnedMessage`]).
//! * [`inv`]: collects an `inv`'s items until its checksum is verified (items are provisional
//!   until then) and names inventory types.
//! * [`connection`]: the task of one connection (the sans-IO loop, periodic pings with random
//!   nonces, a ping timeout) and why a connection ends ([`DropReason`]).
//! * [`pool`]: [`PeerPool`]: outbound peers with reconnect and backoff, an optional inbound
//!   listener, peers ranked by ping, dropped peers with their typed reason, and every
//!   announced item as a stream ([`PeerPool::invs`]).
//!
//! Not done yet: `addr` gossip (addresses peers send are ignored, as core's `Peer` ignores
//! them), the broadcast table and header sync (coming to core first).
//!
//! [`Peer`]: electrum_spv_core::p2p::Peer

pub mod addr;
pub mod broadcast;
pub mod connection;
pub mod gossip;
pub mod headers;
pub mod inv;
pub mod outgoing;
pub mod pool;
mod relay;
pub mod tip_check;

pub use addr::{BadPeerAddr, NodeId, PeerAddr, parse_seeds, read_seeds};
pub use broadcast::{BroadcastOptions, MAX_BROADCAST, TxReport};
pub use connection::{
    ConnEvent, Connection, ConnectionConfig, DropReason, FrameSender, ProxyFailure,
};
pub use inv::{InvItem, inv_type_name};
pub use outgoing::{OwnedMessage, SendError};
pub use pool::{Direction, DroppedPeer, PeerPool, PeerPoolConfig, PeerStatus};
pub use tip_check::{P2pChain, TipCheck, compare as compare_tips};

use std::hash::BuildHasher;

/// A random 64-bit value (ping and version nonces), from the standard library's per-process
/// random hash keys: unpredictable enough for nonces, which only need to differ.
pub(crate) fn random_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
