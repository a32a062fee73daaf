//! Addresses peers gossip (`addr`, `addrv2`), kept as candidates to dial.
//!
//! Gossip is unverifiable and cheap to forge, so it is rate-limited per node as Bitcoin Core
//! does (`net_processing.cpp`: a token bucket filling at [`MAX_ADDR_RATE_PER_SECOND`], capped
//! at [`MAX_ADDR_TOKENS`], topped up by that cap when we ask with `getaddr`); addresses over
//! the rate are dropped and counted. At most [`MAX_KNOWN`] candidates are kept, oldest
//! forgotten first; an address is offered for dialing once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use electrum_spv_core::p2p::GossipAddr;

use super::addr::{NodeId, PeerAddr};

/// Addresses a node may gossip per second, on average (Core's `MAX_ADDR_RATE_PER_SECOND`).
pub const MAX_ADDR_RATE_PER_SECOND: f64 = 0.1;
/// Most addresses a node may send at once (Core's `MAX_ADDR_PROCESSING_TOKEN_BUCKET`).
pub const MAX_ADDR_TOKENS: f64 = 1_000.0;
/// Candidates kept.
pub const MAX_KNOWN: usize = 1_000;
/// Nodes whose rate is tracked at once.
pub const MAX_BUCKETS: usize = 4_096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + secs * MAX_ADDR_RATE_PER_SECOND).min(MAX_ADDR_TOKENS);
        self.at = now;
    }
}

/// Gossiped candidates and each node's rate limit.
#[derive(Debug, Default)]
pub(crate) struct AddrBook {
    candidates: VecDeque<PeerAddr>,
    seen: HashSet<NodeId>,
    buckets: HashMap<NodeId, Bucket>,
    rate_limited: u64,
}

/// The dialable address of a gossiped entry: not unspecified, not port 0, and publicly
/// routable unless `local` (Core's `IsRoutable`, for the ranges a dial could reach).
pub fn peer_addr(gossip: &GossipAddr, local: bool) -> Option<PeerAddr> {
    let v6 = Ipv6Addr::from(gossip.ip);
    let ip = match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    };
    let usable = !ip.is_unspecified() && !ip.is_multicast() && gossip.port != 0;
    (usable && (local || routable(ip))).then(|| PeerAddr::new(ip.to_string(), gossip.port))
}

fn routable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            // Loopback, unique local (fc00::/7), link-local (fe80::/10).
            !(v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80)
        }
    }
}

impl AddrBook {
    /// We asked `node` with `getaddr`: its answer (up to [`MAX_ADDR_TOKENS`]) is welcome.
    pub fn solicited(&mut self, node: &NodeId, now: Instant) {
        let bucket = self.bucket(node, now);
        bucket.tokens = (bucket.tokens + MAX_ADDR_TOKENS).min(MAX_ADDR_TOKENS);
    }

    fn bucket(&mut self, node: &NodeId, now: Instant) -> &mut Bucket {
        // One bucket per node that ever gossiped: forget them all past a bound (a forgotten
        // node starts again empty, so this only ever slows gossip down).
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(node) {
            self.buckets.clear();
        }
        let bucket = self.buckets.entry(node.clone()).or_insert(Bucket {
            tokens: 0.0,
            at: now,
        });
        bucket.refill(now);
        bucket
    }

    /// An address `node` gossiped; `true` if it became a new candidate (`local`: see
    /// [`peer_addr`]).
    pub fn offer(&mut self, node: &NodeId, gossip: &GossipAddr, local: bool, now: Instant) -> bool {
        let bucket = self.bucket(node, now);
        if bucket.tokens < 1.0 {
            self.rate_limited += 1;
            return false;
        }
        bucket.tokens -= 1.0;
        let Some(addr) = peer_addr(gossip, local) else {
            return false;
        };
        if !self.seen.insert(addr.node_id()) {
            return false;
        }
        if self.candidates.len() >= MAX_KNOWN {
            self.candidates.pop_front();
        }
        self.candidates.push_back(addr);
        // `seen` stays bounded too: forget ids beyond four times the candidates.
        if self.seen.len() > 4 * MAX_KNOWN {
            self.seen = self.candidates.iter().map(PeerAddr::node_id).collect();
        }
        true
    }

    /// The next candidate not rejected by `skip` (each is given once).
    pub fn next(&mut self, skip: impl Fn(&NodeId) -> bool) -> Option<PeerAddr> {
        while let Some(addr) = self.candidates.pop_front() {
            if !skip(&addr.node_id()) {
                return Some(addr);
            }
        }
        None
    }

    /// Candidates waiting to be dialed.
    pub fn candidates(&self) -> Vec<PeerAddr> {
        self.candidates.iter().cloned().collect()
    }

    /// Addresses dropped for exceeding their node's rate.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gossip(last: u8, port: u16) -> GossipAddr {
        let mut ip = [0u8; 16];
        ip[10] = 0xff;
        ip[11] = 0xff;
        ip[12..].copy_from_slice(&[10, 0, 0, last]);
        GossipAddr {
            time: 0,
            services: 1,
            ip,
            port,
        }
    }

    #[test]
    fn unsolicited_gossip_is_rate_limited_as_core_does() {
        let mut book = AddrBook::default();
        let node = NodeId("peer:1".into());
        let t0 = Instant::now();
        // Nothing asked: no tokens yet.
        assert!(!book.offer(&node, &gossip(1, 8333), true, t0));
        assert_eq!(book.rate_limited(), 1);
        // 10 s later: one token (0.1/s).
        let t1 = t0 + Duration::from_secs(10);
        assert!(book.offer(&node, &gossip(2, 8333), true, t1));
        assert!(!book.offer(&node, &gossip(3, 8333), true, t1));
        // After our getaddr, up to 1,000 at once.
        book.solicited(&node, t1);
        let accepted = (0..=255u8)
            .flat_map(|a| (1..=5u16).map(move |p| gossip(a, 9000 + p)))
            .filter(|g| book.offer(&node, g, true, t1))
            .count();
        assert_eq!(accepted, 1_000, "the bucket's cap");
        assert_eq!(book.rate_limited(), 2 + 280);
        assert_eq!(book.candidates().len(), MAX_KNOWN, "the oldest forgotten");
    }

    #[test]
    fn candidates_are_given_once_and_unusable_ones_never() {
        let mut book = AddrBook::default();
        let node = NodeId("peer:1".into());
        let now = Instant::now();
        book.solicited(&node, now);
        assert!(book.offer(&node, &gossip(7, 8333), true, now));
        assert!(
            !book.offer(&node, &gossip(7, 8333), true, now),
            "a duplicate"
        );
        assert!(!book.offer(&node, &gossip(8, 0), true, now), "port 0");
        assert!(!book.offer(&node, &gossip(0, 8333).with_ip([0; 16]), true, now));
        assert_eq!(book.next(|_| false), Some(PeerAddr::new("10.0.0.7", 8333)));
        // Not routable: refused unless local addresses are allowed.
        assert!(!book.offer(&node, &gossip(9, 8333), false, now));
        let mut public = gossip(9, 8333);
        public.ip[12..].copy_from_slice(&[8, 8, 4, 4]);
        assert!(book.offer(&node, &public, false, now));
        assert_eq!(book.next(|_| false), Some(PeerAddr::new("8.8.4.4", 8333)));
        assert_eq!(book.next(|_| false), None);
    }

    trait WithIp {
        fn with_ip(self, ip: [u8; 16]) -> Self;
    }

    impl WithIp for GossipAddr {
        fn with_ip(mut self, ip: [u8; 16]) -> Self {
            self.ip = ip;
            self
        }
    }
}
