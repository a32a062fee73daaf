//! Bitcoin P2P wire format: frames and the messages a light client exchanges with nodes.
//!
//! Sans-IO like the rest of core: bytes in, typed events out; bytes out into caller buffers.
//!
//! * [`frame`]: [`FrameReader`] splits a byte stream into frames (24-byte header, payload). It
//!   checks the network [`Magic`], the command name (printable ASCII, NUL padded, as Bitcoin
//!   Core checks it) and the payload length against a cap **per command** before a single
//!   payload byte is taken, and computes the SHA-256d checksum while the payload streams by.
//! * [`message`]: [`MessageReader`] decodes frames into [`Message`] events. Small messages
//!   (version, ping, reject, ...) are buffered in a fixed buffer and reported once their
//!   checksum is verified; long lists (inv, getdata, notfound, headers, addr, addrv2, a
//!   getheaders locator) are decoded item by item as bytes arrive; a `tx` streams through
//!   [`TxidHasher`](crate::tx::TxidHasher) and is never held. [`encode`] writes any supported
//!   message, frame header and checksum included, into a caller's buffer.
//! * [`peer`]: [`Peer`], a sans-IO state machine for one connection's handshake (as Bitcoin
//!   Core 0.21+ does it), ping/pong with deadlines, `feefilter` and `sendheaders`, with the five
//!   calls of the Electrum session.
//! * [`broadcast`]: [`BroadcastTable`], over caller-owned slots: what was announced to whom,
//!   served only on a `getdata` from a node it was announced to, and announced back by which
//!   other nodes; also the watch set.
//! * [`serve`]: [`WireTx`], a caller-held transaction and its `tx` frame in the form asked
//!   (stripped or with witness), written from the caller's bytes without a copy.
//! * [`headers`]: [`P2pHeaders`], header sync over `getheaders`/`headers` into the same
//!   [`HeaderVerifier`](crate::chain::HeaderVerifier) the Electrum side uses.
//!
//! ## Bounds
//! | what | bound |
//! |---|---|
//! | payload of a command | [`payload_cap`] (e.g. [`MAX_INV_PAYLOAD`], [`MAX_HEADERS_PAYLOAD`]); unknown commands [`MAX_PROTOCOL_MESSAGE_LENGTH`] |
//! | reader state | [`FRAME_READER_MAX_SIZE`], [`MESSAGE_READER_MAX_SIZE`] bytes (tested), and the caller's buffer of [`BUFFER_SIZE`] |
//! | peer state | [`PEER_MAX_SIZE`](peer::PEER_MAX_SIZE) bytes (tested), and the caller's [`PeerStorage`] |
//! | work | linear in the bytes fed; each byte is hashed once and copied at most once |
//!
//! Items of a list are reported before the frame's checksum can be checked (that is the point
//! of streaming them): they are provisional until the list's end event, and a
//! [`MessageError::Frame`]`(`[`FrameError::BadChecksum`]`)` instead means they must be
//! dropped. Headers need no such care when they go straight into a
//! [`HeaderVerifier`](crate::chain::HeaderVerifier): each one is checked on its own merits.

use core::fmt;

use crate::chain::Network;

pub mod broadcast;
pub mod frame;
pub mod headers;
pub mod message;
pub mod peer;
pub mod serve;
pub mod storage;

pub use broadcast::{
    BroadcastTable, GetData, InvSeen, MAX_NODES, NodeId, NodeSet, ServePermit, TableError,
    TxHandle, TxSeen, TxStatus,
};
pub use frame::{FrameError, FrameEvent, FrameReader, HEADER_SIZE};
pub use headers::{HeadersFault, HeadersStep, P2pHeaders};
pub use message::{
    AddrV2Entry, EncodeError, InvType, InvVector, Message, MessageError, MessageReader, NetAddr,
    Outgoing, Reject, TimedAddr, Version, encode,
};
pub use peer::{
    GossipAddr, Peer, PeerConfig, PeerError, PeerEvent, PeerInfo, PingError, SendError,
};
pub use serve::{TxForm, TxFrame, WireTx};
pub use storage::{PeerStorage, PeerStorageError};

/// Largest payload of any message, Bitcoin Core's `MAX_PROTOCOL_MESSAGE_LENGTH`: also the
/// byte budget of a message whose command is unknown here (it is skipped by its length).
pub const MAX_PROTOCOL_MESSAGE_LENGTH: u32 = 4_000_000;

/// Most items of an `inv`, `getdata` or `notfound` (Core's `MAX_INV_SZ`).
pub const MAX_INV_ITEMS: u32 = 50_000;
/// Size of one inventory vector: 4-byte type and 32-byte hash.
pub const INV_ITEM_SIZE: u32 = 36;
/// Payload cap of `inv`, `getdata`, `notfound`: a 9-byte count and [`MAX_INV_ITEMS`] items.
pub const MAX_INV_PAYLOAD: u32 = 9 + MAX_INV_ITEMS * INV_ITEM_SIZE;

/// Most headers in a `headers` message (Core's `MAX_HEADERS_RESULTS`).
pub const MAX_HEADERS: u32 = 2_000;
/// Size of one entry of `headers`: the 80-byte header and a transaction count that must be 0.
pub const HEADERS_ITEM_SIZE: u32 = 81;
/// Payload cap of `headers`.
pub const MAX_HEADERS_PAYLOAD: u32 = 9 + MAX_HEADERS * HEADERS_ITEM_SIZE;

/// Most addresses in an `addr` or `addrv2` message (Core's `MAX_ADDR_TO_SEND`).
pub const MAX_ADDR: u32 = 1_000;
/// Size of one `addr` entry: time, services, 16-byte address, port.
pub const ADDR_ITEM_SIZE: u32 = 30;
/// Payload cap of `addr`.
pub const MAX_ADDR_PAYLOAD: u32 = 9 + MAX_ADDR * ADDR_ITEM_SIZE;
/// Longest address in an `addrv2` entry (BIP155 `MAX_ADDRV2_SIZE`).
pub const MAX_ADDRV2_ADDR: u32 = 512;
/// Largest `addrv2` entry: time 4, services up to 9, network 1, length up to 3, address, port 2.
pub const MAX_ADDRV2_ITEM: u32 = 4 + 9 + 1 + 3 + MAX_ADDRV2_ADDR + 2;
/// Payload cap of `addrv2`.
pub const MAX_ADDRV2_PAYLOAD: u32 = 9 + MAX_ADDR * MAX_ADDRV2_ITEM;

/// Most locator hashes in a `getheaders` (Core's `MAX_LOCATOR_SZ`).
pub const MAX_LOCATOR: u32 = 101;
/// Payload cap of `getheaders`: version, count, locator, stop hash.
pub const MAX_GETHEADERS_PAYLOAD: u32 = 4 + 9 + MAX_LOCATOR * 32 + 32;

/// Longest user agent in a `version` (Core's `MAX_SUBVERSION_LENGTH`).
pub const MAX_USER_AGENT: u32 = 256;
/// Fixed fields of a `version` before the user agent: version, services, time, two addresses
/// (26 bytes each), nonce.
pub const VERSION_FIXED: u32 = 4 + 8 + 8 + 26 + 26 + 8;
/// Payload cap of `version`: the fixed fields, a user agent of [`MAX_USER_AGENT`], start
/// height, relay flag, and [`MAX_VERSION_EXTRA`] bytes of fields defined later.
pub const MAX_VERSION_PAYLOAD: u32 = VERSION_FIXED + 3 + MAX_USER_AGENT + 4 + 1 + MAX_VERSION_EXTRA;
/// Bytes after the relay flag of a `version` that are kept (Core ignores fields it does not
/// know; they are reported and re-encoded as they came).
pub const MAX_VERSION_EXTRA: u32 = 32;

/// Longest command name in a `reject` (a command is at most 12 bytes).
pub const MAX_REJECT_MESSAGE: u32 = 12;
/// Longest reason in a `reject` (Core's `MAX_REJECT_MESSAGE_LENGTH`).
pub const MAX_REJECT_REASON: u32 = 111;
/// Payload cap of `reject`: message, code, reason, 32-byte hash.
pub const MAX_REJECT_PAYLOAD: u32 = 1 + MAX_REJECT_MESSAGE + 1 + 1 + MAX_REJECT_REASON + 32;

/// Bytes of the reader's buffer: the largest buffered message or list item.
pub const BUFFER_SIZE: usize = {
    let a = MAX_VERSION_PAYLOAD as usize;
    let b = MAX_ADDRV2_ITEM as usize;
    if a > b { a } else { b }
};

/// Upper bound of `size_of::<FrameReader>()` (tested).
pub const FRAME_READER_MAX_SIZE: usize = 192;
/// Upper bound of `size_of::<MessageReader>()` (tested): a frame reader, a streaming txid
/// hasher and the pointer to the caller's [`BUFFER_SIZE`]-byte buffer.
pub const MESSAGE_READER_MAX_SIZE: usize = 384;

/// The four bytes that open every frame of a network.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Magic(pub [u8; 4]);

impl Magic {
    /// Bitcoin mainnet.
    pub const MAINNET: Magic = Magic([0xf9, 0xbe, 0xb4, 0xd9]);
    /// testnet3.
    pub const TESTNET3: Magic = Magic([0x0b, 0x11, 0x09, 0x07]);
    /// testnet4.
    pub const TESTNET4: Magic = Magic([0x1c, 0x16, 0x3f, 0x28]);
    /// The default signet.
    pub const SIGNET: Magic = Magic([0x0a, 0x03, 0xcf, 0x40]);
    /// regtest.
    pub const REGTEST: Magic = Magic([0xfa, 0xbf, 0xb5, 0xda]);

    /// The magic of `network`.
    pub const fn of(network: Network) -> Magic {
        match network {
            Network::Mainnet => Magic::MAINNET,
            Network::Testnet3 => Magic::TESTNET3,
            Network::Testnet4 => Magic::TESTNET4,
            Network::Signet => Magic::SIGNET,
            Network::Regtest => Magic::REGTEST,
        }
    }
}

impl From<Network> for Magic {
    fn from(network: Network) -> Magic {
        Magic::of(network)
    }
}

/// Size of the command field of a frame header.
pub const COMMAND_SIZE: usize = 12;

macro_rules! commands {
    ($($variant:ident => $name:literal, $cap:expr, $doc:literal;)*) => {
        /// A frame's command. Names not listed here are [`Command::Unknown`].
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum Command {
            $(#[doc = $doc] $variant,)*
            /// Any other valid name, NUL padded as sent.
            Unknown([u8; COMMAND_SIZE]),
        }

        impl Command {
            /// Every command named here (not [`Command::Unknown`]), in declaration order.
            pub const ALL: &'static [Command] = &[$(Command::$variant,)*];

            /// The command of a frame header's 12-byte field, or `None` if the field is not
            /// printable ASCII followed only by NUL padding (Core's `IsMessageTypeValid`).
            pub fn parse(field: &[u8; COMMAND_SIZE]) -> Option<Command> {
                let name_len = field.iter().position(|&b| b == 0).unwrap_or(COMMAND_SIZE);
                let (name, pad) = field.split_at(name_len);
                if !name.iter().all(|b| (0x20..=0x7e).contains(b)) || pad.iter().any(|&b| b != 0) {
                    return None;
                }
                Some(match name {
                    $($name => Command::$variant,)*
                    _ => Command::Unknown(*field),
                })
            }

            /// The name, without padding.
            pub fn name(&self) -> &[u8] {
                match self {
                    $(Command::$variant => $name,)*
                    Command::Unknown(field) => {
                        let len = field.iter().position(|&b| b == 0).unwrap_or(COMMAND_SIZE);
                        field.get(..len).unwrap_or(&[])
                    }
                }
            }

            /// The 12-byte command field of a frame header.
            pub fn field(&self) -> [u8; COMMAND_SIZE] {
                let mut field = [0u8; COMMAND_SIZE];
                let name = self.name();
                if let Some(dst) = field.get_mut(..name.len()) {
                    dst.copy_from_slice(name);
                }
                field
            }
        }

        /// The largest payload accepted for `command`; a longer frame is refused from its
        /// header, before any payload byte is taken.
        pub const fn payload_cap(command: &Command) -> u32 {
            match command {
                $(Command::$variant => $cap,)*
                Command::Unknown(_) => MAX_PROTOCOL_MESSAGE_LENGTH,
            }
        }
    };
}

commands! {
    Version => b"version", MAX_VERSION_PAYLOAD, "`version`: the first message of a handshake.";
    Verack => b"verack", 0, "`verack`: the handshake's acknowledgement.";
    Ping => b"ping", 8, "`ping` with a nonce.";
    Pong => b"pong", 8, "`pong` with the nonce of a ping.";
    Inv => b"inv", MAX_INV_PAYLOAD, "`inv`: announcements.";
    GetData => b"getdata", MAX_INV_PAYLOAD, "`getdata`: requests for announced objects.";
    NotFound => b"notfound", MAX_INV_PAYLOAD, "`notfound`: objects a peer does not have.";
    Tx => b"tx", crate::tx::MAX_TX_SIZE as u32, "`tx`: one transaction.";
    Headers => b"headers", MAX_HEADERS_PAYLOAD, "`headers`: block headers.";
    GetHeaders => b"getheaders", MAX_GETHEADERS_PAYLOAD, "`getheaders`: a locator and a stop hash.";
    SendHeaders => b"sendheaders", 0, "`sendheaders` (BIP130): announce blocks with headers.";
    Addr => b"addr", MAX_ADDR_PAYLOAD, "`addr`: peer addresses.";
    AddrV2 => b"addrv2", MAX_ADDRV2_PAYLOAD, "`addrv2` (BIP155): peer addresses of any network.";
    GetAddr => b"getaddr", 0, "`getaddr`: asks for addresses.";
    FeeFilter => b"feefilter", 8, "`feefilter` (BIP133): minimum fee rate to announce.";
    WtxidRelay => b"wtxidrelay", 0, "`wtxidrelay` (BIP339): announce transactions by wtxid.";
    SendAddrV2 => b"sendaddrv2", 0, "`sendaddrv2` (BIP155): send `addrv2`.";
    SendCmpct => b"sendcmpct", 9, "`sendcmpct` (BIP152).";
    Reject => b"reject", MAX_REJECT_PAYLOAD, "`reject` (BIP61, deprecated; still parsed).";
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.name() {
            write!(f, "{}", char::from(b))?;
        }
        Ok(())
    }
}
