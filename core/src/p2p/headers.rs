//! Block headers over P2P, verified by the same [`HeaderVerifier`] as the Electrum side.
//!
//! [`P2pHeaders`] owns a verifier started at an anchor (genesis or a checkpoint). It gives the
//! next `getheaders` ([`P2pHeaders::request`]) and takes the peer's events
//! ([`P2pHeaders::handle`]): every header of a `headers` message goes through the verifier as
//! it streams by, so no rule is re-implemented here. What this module adds is the message's own
//! rules, as Bitcoin Core applies them:
//! * headers of one message must each link to the one before ([`HeadersFault::NotContinuous`]);
//! * a message whose first header does not connect to our tip is not a fault by itself (a
//!   block announced by `sendheaders` whose parent we lack, or a peer on another branch): it
//!   is [`HeadersStep::Unconnecting`], and after [`MAX_UNCONNECTING`] such messages in a row
//!   [`HeadersFault::TooManyUnconnecting`] (Core's `MAX_NUM_UNCONNECTING_HEADERS_MSGS`);
//! * a `headers` message the reader refused (over [`MAX_HEADERS`] from its count, a
//!   transaction count other than 0, a length that does not match) is
//!   [`HeadersFault::Malformed`]; one with a bad checksum is only dropped (as Core does);
//! * a full message ([`MAX_HEADERS`]) means more follow
//!   ([`HeadersStep::More`]); a shorter one that connected means this peer has nothing newer
//!   ([`HeadersStep::Synced`]).
//!
//! The verifier keeps constant memory and cannot step back: a peer on another branch than ours
//! shows as unconnecting; the caller restarts from the anchor (a new `P2pHeaders`) to follow it.
//! A genesis-anchored sync first asks for the genesis header itself (`getheaders` with an empty
//! locator and the genesis hash as stop, which Core answers with that one header).

use core::fmt;

use super::{Command, FrameError, MAX_HEADERS, MessageError, Outgoing, PeerEvent};
use crate::chain::{AnchorHash, ChainTip, HeaderError, HeaderVerifier};
use crate::hash::{BlockHash, sha256d};
use crate::header::hash_at;

/// Upper bound on `size_of::<P2pHeaders>()` (tested): the verifier and a few counters.
pub const P2P_HEADERS_MAX_SIZE: usize = crate::chain::HEADER_VERIFIER_MAX_SIZE + 64;

/// Unconnecting `headers` messages accepted in a row (Core's
/// `MAX_NUM_UNCONNECTING_HEADERS_MSGS`).
pub const MAX_UNCONNECTING: u8 = 10;

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersStep {
    /// A full message was accepted: send the next [`P2pHeaders::request`].
    More,
    /// The peer has nothing newer than our tip.
    Synced,
    /// The message did not connect to our tip: send the next [`P2pHeaders::request`] (or,
    /// if this repeats, restart from the anchor to follow the peer's branch).
    Unconnecting,
    /// The message came with a bad checksum and was dropped (Core drops it too and keeps the
    /// peer): its headers already verified stay; send the next [`P2pHeaders::request`].
    Lost,
}

/// A peer's `headers` broke a rule: a proven fault of that peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersFault {
    /// A header broke a consensus rule (proof of work, target, time, checkpoint, ...).
    Invalid(HeaderError),
    /// A header does not link to the header before it in the same message.
    NotContinuous {
        /// Its position in the message.
        index: u32,
    },
    /// More than [`MAX_UNCONNECTING`] messages in a row did not connect.
    TooManyUnconnecting,
    /// A `headers` message was refused by the reader (more than [`MAX_HEADERS`] announced, a
    /// transaction count other than 0, a length that does not match its count): the peer
    /// answered with what no node sends.
    Malformed(MessageError),
}

impl fmt::Display for HeadersFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadersFault::Invalid(e) => {
                write!(f, "invalid header at height {}: {:?}", e.height, e.kind)
            }
            HeadersFault::NotContinuous { index } => {
                write!(
                    f,
                    "header {index} of a message does not link to the one before"
                )
            }
            HeadersFault::TooManyUnconnecting => {
                write!(
                    f,
                    "more than {MAX_UNCONNECTING} unconnecting headers messages"
                )
            }
            HeadersFault::Malformed(e) => write!(f, "headers message refused: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HeadersFault {}

/// A `getheaders` to send: [`GetHeaders::outgoing`] borrows it as a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetHeaders {
    locator: [BlockHash; 1],
    locator_len: usize,
    stop: BlockHash,
}

impl GetHeaders {
    /// The message (protocol version [`PROTOCOL_VERSION`](super::peer::PROTOCOL_VERSION)).
    pub fn outgoing(&self) -> Outgoing<'_> {
        Outgoing::GetHeaders {
            version: super::peer::PROTOCOL_VERSION as u32,
            locator: self.locator.get(..self.locator_len).unwrap_or(&[]),
            stop: self.stop,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct List {
    count: u32,
    seen: u32,
    prev: Option<BlockHash>,
    unconnecting: bool,
}

/// Header sync with one peer into a [`HeaderVerifier`]. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct P2pHeaders {
    verifier: HeaderVerifier,
    list: Option<List>,
    unconnecting: u8,
}

impl P2pHeaders {
    /// A sync continuing `verifier` (fresh at its anchor, or already synced some way).
    pub fn new(verifier: HeaderVerifier) -> P2pHeaders {
        P2pHeaders {
            verifier,
            list: None,
            unconnecting: 0,
        }
    }

    /// The verifier.
    pub fn verifier(&self) -> &HeaderVerifier {
        &self.verifier
    }

    /// The last verified header.
    pub fn tip(&self) -> Option<&ChainTip> {
        self.verifier.tip()
    }

    /// The `getheaders` for what follows our tip.
    pub fn request(&self) -> GetHeaders {
        let zero = BlockHash::from_byte_array([0; 32]);
        match (self.verifier.tip(), self.verifier.anchor().expected) {
            (Some(tip), _) => GetHeaders {
                locator: [tip.hash],
                locator_len: 1,
                stop: zero,
            },
            (None, AnchorHash::Checkpoint(parent)) => GetHeaders {
                locator: [parent],
                locator_len: 1,
                stop: zero,
            },
            (None, AnchorHash::Genesis(genesis)) => GetHeaders {
                locator: [zero],
                locator_len: 0,
                stop: genesis,
            },
        }
    }

    /// Drops the `headers` message being read, if any (its remaining events are ignored):
    /// for a caller that lost some of its events and will ask again. Headers of it already
    /// verified stay.
    pub fn abandon_message(&mut self) {
        self.list = None;
    }

    /// The hash a message's first header must point back to, if known.
    fn expected_parent(&self) -> Option<BlockHash> {
        match (self.verifier.tip(), self.verifier.anchor().expected) {
            (Some(tip), _) => Some(tip.hash),
            (None, AnchorHash::Checkpoint(parent)) => Some(parent),
            // Genesis has no parent; the verifier checks its hash.
            (None, AnchorHash::Genesis(_)) => None,
        }
    }

    /// Takes one of the peer's events; `Ok(Some(step))` at the end of a `headers` message,
    /// `Ok(None)` for anything else (other events are not this module's).
    ///
    /// # Errors
    /// A [`HeadersFault`]: drop the peer (headers accepted before the fault stay verified).
    pub fn handle(&mut self, event: &PeerEvent) -> Result<Option<HeadersStep>, HeadersFault> {
        match event {
            PeerEvent::ListStart {
                command: Command::Headers,
                count,
            } => {
                self.list = Some(List {
                    count: *count,
                    seen: 0,
                    prev: None,
                    unconnecting: false,
                });
                Ok(None)
            }
            PeerEvent::Header(header) => {
                self.header(header)?;
                Ok(None)
            }
            PeerEvent::ListEnd {
                command: Command::Headers,
            } => self.end(),
            // Refused from its count or its layout: the node sent what no node sends (without
            // this, the request's timeout would read as "nothing newer").
            PeerEvent::Dropped(
                e @ (MessageError::TooManyItems {
                    command: Command::Headers,
                    ..
                }
                | MessageError::Malformed {
                    command: Command::Headers,
                    ..
                }),
            ) => {
                self.list = None;
                Err(HeadersFault::Malformed(*e))
            }
            PeerEvent::Dropped(MessageError::Frame(FrameError::BadChecksum {
                command: Command::Headers,
            })) => {
                self.list = None;
                Ok(Some(HeadersStep::Lost))
            }
            _ => Ok(None),
        }
    }

    fn header(&mut self, header: &[u8; 80]) -> Result<(), HeadersFault> {
        let expected = self.expected_parent();
        let Some(list) = &mut self.list else {
            return Ok(());
        };
        let index = list.seen;
        list.seen = list.seen.saturating_add(1);
        let hash = BlockHash::from_byte_array(sha256d(header));
        let parent = BlockHash::from_byte_array(hash_at(header, 4));
        if let Some(prev) = list.prev {
            if parent != prev {
                return Err(HeadersFault::NotContinuous { index });
            }
        } else if let Some(e) = expected {
            // A header we already hold (announced again) is neither new nor unconnecting.
            if e != parent && self.verifier.tip().is_none_or(|t| t.hash != hash) {
                list.unconnecting = true;
            }
        } else if let AnchorHash::Genesis(genesis) = self.verifier.anchor().expected {
            // Waiting for genesis itself: any other first header (a late answer to an earlier
            // request, a block announced meanwhile) does not connect yet; it is no fault.
            list.unconnecting = hash != genesis;
        }
        list.prev = Some(hash);
        if list.unconnecting || self.verifier.tip().is_some_and(|t| t.hash == hash) {
            return Ok(());
        }
        self.verifier.push(header).map_err(HeadersFault::Invalid)?;
        Ok(())
    }

    fn end(&mut self) -> Result<Option<HeadersStep>, HeadersFault> {
        let Some(list) = self.list.take() else {
            return Ok(None);
        };
        if list.unconnecting {
            self.unconnecting = self.unconnecting.saturating_add(1);
            if self.unconnecting > MAX_UNCONNECTING {
                return Err(HeadersFault::TooManyUnconnecting);
            }
            return Ok(Some(HeadersStep::Unconnecting));
        }
        self.unconnecting = 0;
        let genesis_only = list.count == 1
            && self.verifier.tip().is_some_and(|t| t.height == 0)
            && matches!(self.verifier.anchor().expected, AnchorHash::Genesis(_));
        if list.count >= MAX_HEADERS || genesis_only {
            Ok(Some(HeadersStep::More))
        } else {
            Ok(Some(HeadersStep::Synced))
        }
    }
}
