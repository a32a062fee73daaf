//! Decoding and encoding of the P2P messages a light client uses.
//!
//! [`MessageReader`] sits on a [`FrameReader`] and turns a byte stream into [`Message`]
//! events, one per call of [`feed`](MessageReader::feed):
//!
//! * small messages (version, verack, ping, pong, sendheaders, feefilter, wtxidrelay,
//!   sendaddrv2, getaddr, sendcmpct, reject) are gathered in a fixed buffer of
//!   [`BUFFER_SIZE`] bytes and reported whole, once their checksum matched;
//! * lists are reported item by item as their bytes arrive: [`Message::ListStart`], then an
//!   item event per entry ([`Message::Inventory`], [`Message::Header`], [`Message::Addr`],
//!   [`Message::AddrV2`]), then [`Message::ListEnd`] once the checksum matched. A count over
//!   the command's bound, or one that does not match a fixed-size list's length, is refused
//!   as soon as the count is read, before any item. `getheaders` is
//!   [`Message::GetHeadersStart`], [`Message::Locator`] per hash, [`Message::GetHeadersEnd`];
//! * a `tx` is [`Message::TxStart`], its bytes as they arrived ([`Message::TxBytes`], for a
//!   [`TxScan`](crate::tx::TxScan) or a store), and [`Message::Tx`] with its txid (hashed by a
//!   streaming [`TxidHasher`]) and wtxid (the frame's checksum hash): it is never held;
//! * any other command is skipped by its length ([`MAX_PROTOCOL_MESSAGE_LENGTH`] at most) and
//!   reported as [`Message::Unknown`].
//!
//! A malformed message is reported once ([`MessageError`]) and the rest of its frame is
//! skipped; the reader goes on with the next frame unless [`MessageError::is_fatal`].
//! Compact sizes must be canonical, as Bitcoin Core requires.
//!
//! [`encode`] writes an [`Outgoing`] message, frame header and checksum included, into a
//! caller's buffer, and refuses to write what the reader would refuse.

use core::fmt;

use super::frame::{FrameError, FrameEvent, FrameReader, HEADER_SIZE, write_header};
use super::*;
use crate::buffer::{Buffer, TooSmall};
use crate::hash::{BlockHash, Txid, Wtxid};
use crate::tx::{TxError, TxidHasher};

/// A node's address as `version` and `addr` carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetAddr {
    /// Service bits.
    pub services: u64,
    /// IPv6 address, or an IPv4 one mapped into `::ffff:0:0/96`.
    pub ip: [u8; 16],
    /// TCP port.
    pub port: u16,
}

/// An `addr` entry: a [`NetAddr`] with the time it was last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimedAddr {
    /// Unix time, seconds.
    pub time: u32,
    /// The address.
    pub addr: NetAddr,
}

/// An `addrv2` entry (BIP155).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrV2Entry<'a> {
    /// Unix time, seconds.
    pub time: u32,
    /// Service bits.
    pub services: u64,
    /// BIP155 network id: 1 IPv4, 2 IPv6, 3 TorV2, 4 TorV3, 5 I2P, 6 CJDNS, others unknown.
    pub network: u8,
    /// The address: of the network's length for a known network, at most
    /// [`MAX_ADDRV2_ADDR`] bytes otherwise.
    pub addr: &'a [u8],
    /// Port.
    pub port: u16,
}

/// The address length BIP155 fixes for a network id, if it is known.
pub const fn addrv2_len(network: u8) -> Option<usize> {
    match network {
        1 => Some(4),
        2 | 6 => Some(16),
        3 => Some(10),
        4 | 5 => Some(32),
        _ => None,
    }
}

/// The type of an inventory vector; values not named here are kept as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvType(pub u32);

impl InvType {
    /// `MSG_TX`: a transaction by txid (served without witness).
    pub const TX: InvType = InvType(1);
    /// `MSG_BLOCK`.
    pub const BLOCK: InvType = InvType(2);
    /// `MSG_FILTERED_BLOCK` (BIP37).
    pub const FILTERED_BLOCK: InvType = InvType(3);
    /// `MSG_CMPCT_BLOCK` (BIP152).
    pub const CMPCT_BLOCK: InvType = InvType(4);
    /// `MSG_WTX` (BIP339): a transaction by wtxid.
    pub const WTX: InvType = InvType(5);
    /// `MSG_WITNESS_TX`: a transaction by txid, served with witness.
    pub const WITNESS_TX: InvType = InvType(0x4000_0001);
    /// `MSG_WITNESS_BLOCK`.
    pub const WITNESS_BLOCK: InvType = InvType(0x4000_0002);
}

/// One entry of `inv`, `getdata` or `notfound`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvVector {
    /// What the hash names.
    pub kind: InvType,
    /// The hash, internal byte order.
    pub hash: [u8; 32],
}

/// A `version` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    /// Protocol version.
    pub version: i32,
    /// Service bits of the sender.
    pub services: u64,
    /// Sender's Unix time, seconds.
    pub timestamp: i64,
    /// The address of the receiver, as the sender sees it.
    pub receiver: NetAddr,
    /// The sender's address (usually meaningless).
    pub sender: NetAddr,
    /// Random nonce (detects connections to self).
    pub nonce: u64,
    /// User agent, at most [`MAX_USER_AGENT`] bytes (not checked to be UTF-8).
    pub user_agent: &'a [u8],
    /// Height of the sender's best chain.
    pub start_height: i32,
    /// BIP37 relay flag; absent in old versions (Core then assumes `true`).
    pub relay: Option<bool>,
    /// Bytes after the relay flag (fields defined later; Core ignores them), at most
    /// [`MAX_VERSION_EXTRA`]; written back only when `relay` is present.
    pub extra: &'a [u8],
}

/// A `reject` message (BIP61; Core no longer sends it, bcoin does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject<'a> {
    /// The command rejected, at most [`MAX_REJECT_MESSAGE`] bytes.
    pub message: &'a [u8],
    /// Reject code (0x01 malformed, 0x10 invalid, 0x40 nonstandard, ...).
    pub code: u8,
    /// Reason, at most [`MAX_REJECT_REASON`] bytes.
    pub reason: &'a [u8],
    /// The hash of the rejected object, when one was sent.
    pub hash: Option<[u8; 32]>,
}

/// What [`MessageReader::feed`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `version`.
    Version(Version<'a>),
    /// `verack`.
    Verack,
    /// `ping` with its nonce.
    Ping(u64),
    /// `pong` with its nonce.
    Pong(u64),
    /// `sendheaders`.
    SendHeaders,
    /// `feefilter`: satoshis per 1000 virtual bytes, as sent. Core ignores a value outside
    /// `0..=21e14` (its money range); rust-bitcoin refuses the message; bcoin bans for it.
    FeeFilter(i64),
    /// `wtxidrelay`.
    WtxidRelay,
    /// `sendaddrv2`.
    SendAddrV2,
    /// `getaddr`.
    GetAddr,
    /// `sendcmpct`.
    SendCmpct {
        /// High-bandwidth mode requested.
        announce: bool,
        /// Compact block version.
        version: u64,
    },
    /// `reject`.
    Reject(Reject<'a>),
    /// A list starts: `inv`, `getdata`, `notfound`, `headers`, `addr` or `addrv2`.
    ListStart {
        /// Which list.
        command: Command,
        /// How many items follow (at most the command's bound).
        count: u32,
    },
    /// An entry of `inv`, `getdata` or `notfound` (provisional until [`Message::ListEnd`]).
    Inventory(InvVector),
    /// A header of `headers` (its transaction count was 0).
    Header(&'a [u8; 80]),
    /// An `addr` entry.
    Addr(TimedAddr),
    /// An `addrv2` entry.
    AddrV2(AddrV2Entry<'a>),
    /// A list ended and its checksum matched.
    ListEnd {
        /// Which list.
        command: Command,
    },
    /// A `getheaders` starts.
    GetHeadersStart {
        /// The requester's protocol version.
        version: u32,
        /// Locator hashes that follow (at most [`MAX_LOCATOR`]).
        count: u32,
    },
    /// A locator hash of `getheaders`.
    Locator(BlockHash),
    /// A `getheaders` ended and its checksum matched.
    GetHeadersEnd {
        /// The stop hash (all zero: as many as allowed).
        stop: BlockHash,
    },
    /// A `tx` starts.
    TxStart {
        /// Its size in bytes.
        len: u32,
    },
    /// The next bytes of the transaction, as they arrived (never empty).
    TxBytes(&'a [u8]),
    /// A `tx` ended, was one whole transaction, and its checksum matched.
    Tx {
        /// Its txid.
        txid: Txid,
        /// Its wtxid.
        wtxid: Wtxid,
        /// Its size in bytes.
        len: u32,
    },
    /// A message of a command not decoded here was skipped (its checksum matched).
    Unknown {
        /// The command.
        command: Command,
        /// Payload length.
        len: u32,
    },
}

/// How a message is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The payload ended before the message did.
    Truncated,
    /// Bytes follow the end of the message.
    TrailingBytes,
    /// A compact size used a longer encoding than its value needs.
    NonCanonicalVarint,
    /// A fixed-size list's count does not match the payload length.
    LengthMismatch,
    /// A `headers` entry's transaction count is not 0.
    NonZeroTxCount,
    /// An `addrv2` address whose length is wrong for its network, or over
    /// [`MAX_ADDRV2_ADDR`].
    BadAddrLen {
        /// The network id.
        network: u8,
        /// The length sent.
        len: u64,
    },
    /// A string longer than its bound.
    StringTooLong,
    /// A boolean byte other than 0 or 1.
    BadBool(u8),
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageError {
    /// The frame was refused.
    Frame(FrameError),
    /// The payload does not decode as its command.
    Malformed {
        /// The command.
        command: Command,
        /// What is wrong.
        why: Malformed,
    },
    /// A list announces more items than its bound (read from the count, before any item).
    TooManyItems {
        /// The command.
        command: Command,
        /// The count sent.
        count: u64,
        /// The bound.
        cap: u32,
    },
    /// A `tx` payload is not one transaction.
    Tx(TxError),
}

impl MessageError {
    /// The stream cannot go on (a fatal [`FrameError`]); other errors drop one message.
    pub fn is_fatal(&self) -> bool {
        matches!(self, MessageError::Frame(e) if e.is_fatal())
    }
}

impl From<FrameError> for MessageError {
    fn from(e: FrameError) -> Self {
        MessageError::Frame(e)
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Frame(e) => e.fmt(f),
            MessageError::Malformed { command, why } => write!(f, "malformed {command}: {why:?}"),
            MessageError::TooManyItems {
                command,
                count,
                cap,
            } => write!(f, "{command} with {count} items (at most {cap})"),
            MessageError::Tx(e) => write!(f, "tx: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MessageError {}

/// A reader over a byte slice for the buffered messages; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.bytes.len() {
            return Err(Malformed::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.array::<1>()?[0])
    }
    fn bool(&mut self) -> Result<bool, Malformed> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Malformed::BadBool(b)),
        }
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn port(&mut self) -> Result<u16, Malformed> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn varint(&mut self) -> Result<u64, Malformed> {
        let first = self.u8()?;
        let width = varint_width(first);
        let rest = self.take(width - 1)?;
        read_varint(first, rest)
    }
    fn string(&mut self, max: u32) -> Result<&'a [u8], Malformed> {
        let len = self.varint()?;
        if len > u64::from(max) {
            return Err(Malformed::StringTooLong);
        }
        self.take(usize::try_from(len).map_err(|_| Malformed::StringTooLong)?)
    }
    fn net_addr(&mut self) -> Result<NetAddr, Malformed> {
        Ok(NetAddr {
            services: self.u64()?,
            ip: self.array()?,
            port: self.port()?,
        })
    }
    fn end(&self) -> Result<(), Malformed> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Malformed::TrailingBytes)
        }
    }
}

/// Bytes of a compact size whose first byte is `first` (1, 3, 5 or 9).
const fn varint_width(first: u8) -> usize {
    match first {
        0xfd => 3,
        0xfe => 5,
        0xff => 9,
        _ => 1,
    }
}

/// The value of a compact size from its first byte and the `varint_width - 1` bytes after it;
/// a non-canonical encoding is refused.
fn read_varint(first: u8, rest: &[u8]) -> Result<u64, Malformed> {
    let mut le = [0u8; 8];
    if let Some(dst) = le.get_mut(..rest.len()) {
        dst.copy_from_slice(rest);
    }
    let (value, min) = match first {
        0xfd => (u64::from_le_bytes(le), 0xfd),
        0xfe => (u64::from_le_bytes(le), 0x1_0000),
        0xff => (u64::from_le_bytes(le), 0x1_0000_0000),
        small => return Ok(u64::from(small)),
    };
    if value < min {
        return Err(Malformed::NonCanonicalVarint);
    }
    Ok(value)
}

/// The compact-size encoding of `n`: bytes and length.
fn varint_bytes(n: u64) -> ([u8; 9], usize) {
    let mut out = [0u8; 9];
    let le = n.to_le_bytes();
    let (tag, width) = match n {
        0..=0xfc => {
            out[0] = le[0];
            return (out, 1);
        }
        0xfd..=0xffff => (0xfd, 2),
        0x1_0000..=0xffff_ffff => (0xfe, 4),
        _ => (0xff, 8),
    };
    out[0] = tag;
    if let (Some(dst), Some(src)) = (out.get_mut(1..=width), le.get(..width)) {
        dst.copy_from_slice(src);
    }
    (out, 1 + width)
}

/// Where a list's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Count (and, for `getheaders`, the version before it).
    Prefix,
    /// Items: this many are left.
    Items(u32),
    /// The `getheaders` stop hash.
    Tail,
    /// Everything read: no payload byte may follow.
    Done,
}

/// What the reader does with the current frame's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Between frames.
    Idle,
    /// Gathering a small message in the buffer.
    Small,
    /// Decoding a list.
    List(Phase),
    /// Streaming a transaction.
    Tx,
    /// An unknown command, reported at its end.
    Skip,
    /// The rest of a malformed message, dropped silently.
    Discard,
}

/// What a step produced, before it is turned into a [`Message`] borrowing the reader.
#[derive(Debug, Clone, Copy)]
enum Ready {
    ListStart(u32),
    GetHeadersStart(u32, u32),
    Inventory(InvVector),
    Header,
    Addr(TimedAddr),
    AddrV2 {
        time: u32,
        services: u64,
        network: u8,
        addr_at: usize,
        addr_len: usize,
        port: u16,
    },
    Locator,
    TxStart(u32),
    TxBytes,
    None,
}

/// Decodes a stream of frames into [`Message`]s.
///
/// Memory: the caller's buffer of at least [`BUFFER_SIZE`] bytes (bytes past it are not used),
/// and `size_of::<MessageReader>()` at most [`MESSAGE_READER_MAX_SIZE`] (tested): a
/// [`FrameReader`], the buffer's pointer and a [`TxidHasher`]. Work: linear in the
/// bytes fed; a payload byte is hashed once for the checksum, once more if it is part of a
/// transaction's txid, and copied at most once (into the buffer, except transaction bytes).
#[derive(Debug)]
pub struct MessageReader<'b> {
    frame: FrameReader,
    body: Body,
    command: Command,
    len: u32,
    buf: Buffer<'b, u8>,
    have: usize,
    tx: TxidHasher,
}

impl<'b> MessageReader<'b> {
    /// A reader at the start of a stream of `magic`'s network, holding small messages and list
    /// items in `buf`.
    ///
    /// # Errors
    /// [`TooSmall`] if `buf` has fewer than [`BUFFER_SIZE`] bytes.
    pub fn new(magic: Magic, buf: impl Into<Buffer<'b, u8>>) -> Result<Self, TooSmall> {
        Ok(Self::over(magic, buf.into().at_least(BUFFER_SIZE)?))
    }

    /// A reader over `buf`, which holds at least [`BUFFER_SIZE`] bytes.
    pub(super) fn over(magic: Magic, buf: Buffer<'b, u8>) -> Self {
        MessageReader {
            frame: FrameReader::new(magic),
            body: Body::Idle,
            command: Command::Verack,
            len: 0,
            buf,
            have: 0,
            tx: TxidHasher::new(),
        }
    }

    /// A reader like [`MessageReader::new`] over a heap buffer of [`BUFFER_SIZE`] bytes.
    #[cfg(feature = "alloc")]
    pub fn owned(magic: Magic) -> MessageReader<'static> {
        MessageReader::over(magic, Buffer::filled(0, BUFFER_SIZE))
    }

    /// The frame reader underneath (what frame is being read, how much of it is left).
    pub fn frame(&self) -> &FrameReader {
        &self.frame
    }

    /// Consumes a prefix of `input` and reports at most one message event, with how many bytes
    /// were consumed. `Ok(None)` means all of `input` was consumed and more is needed: call
    /// again with the rest of the input until then. After a fatal error every call returns it.
    pub fn feed<'a>(
        &'a mut self,
        input: &'a [u8],
    ) -> (usize, Result<Option<Message<'a>>, MessageError>) {
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or(&[]);
            let limited = match self.want() {
                Some(n) => rest.get(..n.min(rest.len())).unwrap_or(rest),
                None => rest,
            };
            let (n, event) = self.frame.feed(limited);
            used += n;
            let step = match event {
                Err(e) => {
                    self.body = Body::Idle;
                    return (used, Err(MessageError::Frame(e)));
                }
                Ok(None) => return (used, Ok(None)),
                Ok(Some(FrameEvent::Start { command, len })) => Ok(self.start(command, len)),
                Ok(Some(FrameEvent::Payload(chunk))) => self.payload(chunk),
                Ok(Some(FrameEvent::End { hash })) => {
                    let body = self.body;
                    self.body = Body::Idle;
                    match self.end(body, hash) {
                        Ok(false) => continue,
                        Ok(true) => return (used, Ok(Some(self.end_message(body, hash)))),
                        Err(why) => Err(why),
                    }
                }
            };
            match step {
                Ok(Ready::None) => {}
                Ok(ready) => {
                    let chunk = limited.get(..n).unwrap_or(&[]);
                    return (used, Ok(Some(self.message(ready, chunk))));
                }
                Err(e) => {
                    self.body = Body::Discard;
                    return (used, Err(e));
                }
            }
        }
    }

    /// At most how many payload bytes the next step may take (lists take one unit at a time).
    fn want(&self) -> Option<usize> {
        match self.body {
            Body::List(Phase::Prefix | Phase::Items(_) | Phase::Tail) => match self.unit_need() {
                Ok(need) => Some(need.saturating_sub(self.have).max(1)),
                Err(_) => Some(1),
            },
            _ => None,
        }
    }

    fn start(&mut self, command: Command, len: u32) -> Ready {
        self.command = command;
        self.len = len;
        self.have = 0;
        self.body = match command {
            Command::Inv
            | Command::GetData
            | Command::NotFound
            | Command::Headers
            | Command::Addr
            | Command::AddrV2
            | Command::GetHeaders => Body::List(Phase::Prefix),
            Command::Tx => {
                self.tx = TxidHasher::new();
                self.body = Body::Tx;
                return Ready::TxStart(len);
            }
            Command::Unknown(_) => Body::Skip,
            _ => Body::Small,
        };
        Ready::None
    }

    fn malformed(&self, why: Malformed) -> MessageError {
        MessageError::Malformed {
            command: self.command,
            why,
        }
    }

    fn payload(&mut self, chunk: &[u8]) -> Result<Ready, MessageError> {
        match self.body {
            Body::Idle | Body::Skip | Body::Discard => Ok(Ready::None),
            Body::Small => {
                // The command's cap is at most BUFFER_SIZE, so this always fits.
                let end = self.have.saturating_add(chunk.len());
                let dst = self
                    .buf
                    .get_mut(self.have..end)
                    .ok_or(MessageError::Malformed {
                        command: self.command,
                        why: Malformed::TrailingBytes,
                    })?;
                dst.copy_from_slice(chunk);
                self.have = end;
                Ok(Ready::None)
            }
            Body::Tx => {
                let used = self.tx.feed(chunk).map_err(MessageError::Tx)?;
                if used < chunk.len() {
                    return Err(self.malformed(Malformed::TrailingBytes));
                }
                Ok(Ready::TxBytes)
            }
            Body::List(Phase::Done) => Err(self.malformed(Malformed::TrailingBytes)),
            Body::List(phase) => {
                let end = self.have.saturating_add(chunk.len());
                let truncated = self.malformed(Malformed::Truncated);
                // A unit longer than BUFFER_SIZE is refused whatever the buffer's length.
                let dst = (end <= BUFFER_SIZE)
                    .then(|| self.buf.get_mut(self.have..end))
                    .flatten()
                    .ok_or(truncated)?;
                dst.copy_from_slice(chunk);
                self.have = end;
                let need = self.unit_need().map_err(|why| self.malformed(why))?;
                if self.have < need {
                    return Ok(Ready::None);
                }
                let ready = self.unit(phase)?;
                self.have = 0;
                Ok(ready)
            }
        }
    }

    /// Bytes the current list unit needs, as far as the bytes held tell: the exact total once
    /// every length inside the unit is known, else a lower bound above `have`.
    fn unit_need(&self) -> Result<usize, Malformed> {
        let Body::List(phase) = self.body else {
            return Ok(0);
        };
        let b = self.buf.get(..self.have).unwrap_or(&[]);
        // A compact size starting at `at`: Err(lower bound) while incomplete.
        let varint_end = |at: usize| -> Result<usize, usize> {
            match b.get(at) {
                None => Err(at + 1),
                Some(&first) => Ok(at + varint_width(first)),
            }
        };
        Ok(match phase {
            Phase::Prefix => {
                let at = if self.command == Command::GetHeaders {
                    4
                } else {
                    0
                };
                varint_end(at).unwrap_or_else(|need| need)
            }
            Phase::Tail => 32,
            Phase::Done => 0,
            Phase::Items(_) => match self.command {
                Command::Inv | Command::GetData | Command::NotFound => INV_ITEM_SIZE as usize,
                Command::Headers => HEADERS_ITEM_SIZE as usize,
                Command::Addr => ADDR_ITEM_SIZE as usize,
                Command::GetHeaders => 32,
                _ => {
                    // addrv2: time, services (compact size), network, length, address, port.
                    let services_end = match varint_end(4) {
                        Ok(end) => end,
                        Err(need) => return Ok(need),
                    };
                    let len_at = services_end + 1;
                    let len_end = match varint_end(len_at) {
                        Ok(end) => end,
                        Err(need) => return Ok(need),
                    };
                    if b.len() < len_end {
                        return Ok(len_end);
                    }
                    let mut cur = Cursor {
                        bytes: b.get(len_at..).unwrap_or(&[]),
                    };
                    let len = cur.varint()?;
                    let network = b.get(services_end).copied().unwrap_or(0);
                    let ok = match addrv2_len(network) {
                        Some(fixed) => len == fixed as u64,
                        None => len <= u64::from(MAX_ADDRV2_ADDR),
                    };
                    if !ok {
                        return Err(Malformed::BadAddrLen { network, len });
                    }
                    // len <= MAX_ADDRV2_ADDR, so this stays within MAX_ADDRV2_ITEM.
                    len_end + len as usize + 2
                }
            },
        })
    }

    /// Decodes a complete list unit held in the buffer.
    fn unit(&mut self, phase: Phase) -> Result<Ready, MessageError> {
        let command = self.command;
        let mut cur = Cursor {
            bytes: self.buf.get(..self.have).unwrap_or(&[]),
        };
        let malformed = |why| MessageError::Malformed { command, why };
        match phase {
            Phase::Prefix => {
                let version = if command == Command::GetHeaders {
                    cur.u32().map_err(malformed)?
                } else {
                    0
                };
                let count = cur.varint().map_err(malformed)?;
                let (cap, item) = match command {
                    Command::Inv | Command::GetData | Command::NotFound => {
                        (MAX_INV_ITEMS, INV_ITEM_SIZE)
                    }
                    Command::Headers => (MAX_HEADERS, HEADERS_ITEM_SIZE),
                    Command::Addr => (MAX_ADDR, ADDR_ITEM_SIZE),
                    Command::GetHeaders => (MAX_LOCATOR, 32),
                    _ => (MAX_ADDR, 0),
                };
                if count > u64::from(cap) {
                    return Err(MessageError::TooManyItems {
                        command,
                        count,
                        cap,
                    });
                }
                // count <= cap, so it fits and the products below cannot overflow a u64.
                let count = count as u32;
                if item != 0 {
                    let tail = if command == Command::GetHeaders {
                        32
                    } else {
                        0
                    };
                    let total = self.have as u64 + u64::from(count) * u64::from(item) + tail;
                    if total != u64::from(self.len) {
                        return Err(malformed(Malformed::LengthMismatch));
                    }
                }
                self.body = Body::List(match (count, command) {
                    (0, Command::GetHeaders) => Phase::Tail,
                    (0, _) => Phase::Done,
                    (n, _) => Phase::Items(n),
                });
                Ok(if command == Command::GetHeaders {
                    Ready::GetHeadersStart(version, count)
                } else {
                    Ready::ListStart(count)
                })
            }
            Phase::Items(left) => {
                let left = left.saturating_sub(1);
                self.body = Body::List(match (left, command) {
                    (0, Command::GetHeaders) => Phase::Tail,
                    (0, _) => Phase::Done,
                    (n, _) => Phase::Items(n),
                });
                match command {
                    Command::Inv | Command::GetData | Command::NotFound => {
                        let kind = InvType(cur.u32().map_err(malformed)?);
                        let hash = cur.array().map_err(malformed)?;
                        Ok(Ready::Inventory(InvVector { kind, hash }))
                    }
                    Command::Headers => {
                        if self.buf.get(80) != Some(&0) {
                            return Err(malformed(Malformed::NonZeroTxCount));
                        }
                        Ok(Ready::Header)
                    }
                    Command::Addr => Ok(Ready::Addr(TimedAddr {
                        time: cur.u32().map_err(malformed)?,
                        addr: cur.net_addr().map_err(malformed)?,
                    })),
                    Command::GetHeaders => Ok(Ready::Locator),
                    _ => {
                        let time = cur.u32().map_err(malformed)?;
                        let services = cur.varint().map_err(malformed)?;
                        let network = cur.u8().map_err(malformed)?;
                        let addr_len = cur.varint().map_err(malformed)? as usize;
                        let addr_at = self.have - cur.bytes.len();
                        cur.take(addr_len).map_err(malformed)?;
                        let port = cur.port().map_err(malformed)?;
                        Ok(Ready::AddrV2 {
                            time,
                            services,
                            network,
                            addr_at,
                            addr_len,
                            port,
                        })
                    }
                }
            }
            Phase::Tail => {
                self.body = Body::List(Phase::Done);
                // The stop hash stays in the buffer for the end event.
                self.have = 0;
                Ok(Ready::None)
            }
            Phase::Done => Err(malformed(Malformed::TrailingBytes)),
        }
    }

    /// Checks a frame's end: `Ok(true)` when it has a message to report.
    fn end(&mut self, body: Body, _hash: [u8; 32]) -> Result<bool, MessageError> {
        match body {
            Body::Idle | Body::Discard => Ok(false),
            Body::Skip => Ok(true),
            Body::List(Phase::Done) => Ok(true),
            Body::List(_) => Err(self.malformed(Malformed::Truncated)),
            Body::Tx => {
                if !self.tx.is_complete() {
                    return Err(self.malformed(Malformed::Truncated));
                }
                Ok(true)
            }
            Body::Small => {
                self.decode_small()?;
                Ok(true)
            }
        }
    }

    fn end_message(&mut self, body: Body, hash: [u8; 32]) -> Message<'_> {
        let command = self.command;
        match body {
            Body::Tx => {
                let tx = core::mem::take(&mut self.tx);
                // Checked complete in `end`; a failed hasher never completes.
                let txid = tx.finish().unwrap_or_default();
                Message::Tx {
                    txid,
                    wtxid: Wtxid::from_byte_array(hash),
                    len: self.len,
                }
            }
            Body::List(_) if command == Command::GetHeaders => {
                let stop = self.buf.first_chunk::<32>().copied().unwrap_or_default();
                Message::GetHeadersEnd {
                    stop: BlockHash::from_byte_array(stop),
                }
            }
            Body::List(_) => Message::ListEnd { command },
            Body::Small => self.decode_small().unwrap_or(Message::Verack),
            _ => Message::Unknown {
                command,
                len: self.len,
            },
        }
    }

    /// Decodes the small message held in the buffer.
    fn decode_small(&self) -> Result<Message<'_>, MessageError> {
        let mut cur = Cursor {
            bytes: self.buf.get(..self.have).unwrap_or(&[]),
        };
        let malformed = |why| self.malformed(why);
        let msg = match self.command {
            Command::Version => {
                let version = cur.array().map(i32::from_le_bytes).map_err(malformed)?;
                let services = cur.u64().map_err(malformed)?;
                let timestamp = cur.array().map(i64::from_le_bytes).map_err(malformed)?;
                let receiver = cur.net_addr().map_err(malformed)?;
                let sender = cur.net_addr().map_err(malformed)?;
                let nonce = cur.u64().map_err(malformed)?;
                let user_agent = cur.string(MAX_USER_AGENT).map_err(malformed)?;
                let start_height = cur.array().map(i32::from_le_bytes).map_err(malformed)?;
                let relay = if cur.bytes.is_empty() {
                    None
                } else {
                    Some(cur.bool().map_err(malformed)?)
                };
                if cur.bytes.len() > MAX_VERSION_EXTRA as usize {
                    return Err(malformed(Malformed::TrailingBytes));
                }
                Message::Version(Version {
                    version,
                    services,
                    timestamp,
                    receiver,
                    sender,
                    nonce,
                    user_agent,
                    start_height,
                    relay,
                    extra: cur.take(cur.bytes.len()).map_err(malformed)?,
                })
            }
            Command::Ping => Message::Ping(cur.u64().map_err(malformed)?),
            Command::Pong => Message::Pong(cur.u64().map_err(malformed)?),
            Command::FeeFilter => {
                Message::FeeFilter(cur.array().map(i64::from_le_bytes).map_err(malformed)?)
            }
            Command::SendCmpct => Message::SendCmpct {
                announce: cur.bool().map_err(malformed)?,
                version: cur.u64().map_err(malformed)?,
            },
            Command::Reject => {
                let message = cur.string(MAX_REJECT_MESSAGE).map_err(malformed)?;
                let code = cur.u8().map_err(malformed)?;
                let reason = cur.string(MAX_REJECT_REASON).map_err(malformed)?;
                let hash = if cur.bytes.is_empty() {
                    None
                } else {
                    Some(cur.array().map_err(malformed)?)
                };
                Message::Reject(Reject {
                    message,
                    code,
                    reason,
                    hash,
                })
            }
            Command::SendHeaders => Message::SendHeaders,
            Command::WtxidRelay => Message::WtxidRelay,
            Command::SendAddrV2 => Message::SendAddrV2,
            Command::GetAddr => Message::GetAddr,
            _ => Message::Verack,
        };
        cur.end().map_err(malformed)?;
        Ok(msg)
    }

    fn message<'a>(&'a self, ready: Ready, chunk: &'a [u8]) -> Message<'a> {
        match ready {
            Ready::ListStart(count) => Message::ListStart {
                command: self.command,
                count,
            },
            Ready::GetHeadersStart(version, count) => Message::GetHeadersStart { version, count },
            Ready::Inventory(item) => Message::Inventory(item),
            Ready::Header => match self.buf.first_chunk::<80>() {
                Some(header) => Message::Header(header),
                None => Message::Verack,
            },
            Ready::Addr(addr) => Message::Addr(addr),
            Ready::AddrV2 {
                time,
                services,
                network,
                addr_at,
                addr_len,
                port,
            } => Message::AddrV2(AddrV2Entry {
                time,
                services,
                network,
                addr: self
                    .buf
                    .get(addr_at..addr_at.saturating_add(addr_len))
                    .unwrap_or(&[]),
                port,
            }),
            Ready::Locator => Message::Locator(BlockHash::from_byte_array(
                self.buf.first_chunk::<32>().copied().unwrap_or_default(),
            )),
            Ready::TxStart(len) => Message::TxStart { len },
            Ready::TxBytes => Message::TxBytes(chunk),
            Ready::None => Message::Verack,
        }
    }
}

// Every small message fits the buffer whole.
const _: () = assert!(MAX_VERSION_PAYLOAD as usize <= BUFFER_SIZE);
const _: () = assert!(MAX_REJECT_PAYLOAD as usize <= BUFFER_SIZE);
const _: () = assert!(MAX_ADDRV2_ITEM as usize <= BUFFER_SIZE);

/// A message to write with [`encode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing<'a> {
    /// `version` (its `extra` bytes are written only when `relay` is present).
    Version(Version<'a>),
    /// `verack`.
    Verack,
    /// `ping`.
    Ping(u64),
    /// `pong`.
    Pong(u64),
    /// `inv`, at most [`MAX_INV_ITEMS`] entries.
    Inv(&'a [InvVector]),
    /// `getdata`, at most [`MAX_INV_ITEMS`] entries.
    GetData(&'a [InvVector]),
    /// `notfound`, at most [`MAX_INV_ITEMS`] entries.
    NotFound(&'a [InvVector]),
    /// `tx`: a serialized transaction, written as given.
    Tx(&'a [u8]),
    /// `headers`, at most [`MAX_HEADERS`] (each written with a transaction count of 0).
    Headers(&'a [[u8; 80]]),
    /// `getheaders`.
    GetHeaders {
        /// Protocol version.
        version: u32,
        /// Locator, at most [`MAX_LOCATOR`] hashes, newest first.
        locator: &'a [BlockHash],
        /// Stop hash (all zero: as many as allowed).
        stop: BlockHash,
    },
    /// `sendheaders`.
    SendHeaders,
    /// `addr`, at most [`MAX_ADDR`] entries.
    Addr(&'a [TimedAddr]),
    /// `addrv2`, at most [`MAX_ADDR`] entries.
    AddrV2(&'a [AddrV2Entry<'a>]),
    /// `getaddr`.
    GetAddr,
    /// `feefilter`.
    FeeFilter(i64),
    /// `wtxidrelay`.
    WtxidRelay,
    /// `sendaddrv2`.
    SendAddrV2,
    /// `sendcmpct`.
    SendCmpct {
        /// High-bandwidth mode.
        announce: bool,
        /// Compact block version.
        version: u64,
    },
    /// `reject`.
    Reject(Reject<'a>),
}

impl Outgoing<'_> {
    /// The message's command.
    pub fn command(&self) -> Command {
        match self {
            Outgoing::Version(_) => Command::Version,
            Outgoing::Verack => Command::Verack,
            Outgoing::Ping(_) => Command::Ping,
            Outgoing::Pong(_) => Command::Pong,
            Outgoing::Inv(_) => Command::Inv,
            Outgoing::GetData(_) => Command::GetData,
            Outgoing::NotFound(_) => Command::NotFound,
            Outgoing::Tx(_) => Command::Tx,
            Outgoing::Headers(_) => Command::Headers,
            Outgoing::GetHeaders { .. } => Command::GetHeaders,
            Outgoing::SendHeaders => Command::SendHeaders,
            Outgoing::Addr(_) => Command::Addr,
            Outgoing::AddrV2(_) => Command::AddrV2,
            Outgoing::GetAddr => Command::GetAddr,
            Outgoing::FeeFilter(_) => Command::FeeFilter,
            Outgoing::WtxidRelay => Command::WtxidRelay,
            Outgoing::SendAddrV2 => Command::SendAddrV2,
            Outgoing::SendCmpct { .. } => Command::SendCmpct,
            Outgoing::Reject(_) => Command::Reject,
        }
    }
}

/// Why [`encode`] wrote nothing usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small; `needed` bytes would do.
    BufferTooSmall {
        /// The frame's full size.
        needed: usize,
    },
    /// More items than the command allows.
    TooManyItems {
        /// The command.
        command: Command,
        /// Items given.
        count: usize,
        /// The bound.
        cap: u32,
    },
    /// A field out of its bounds (a string too long, an `addrv2` address of the wrong
    /// length, a payload over the command's cap): the reader would refuse the message.
    Invalid {
        /// The command.
        command: Command,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small ({needed} bytes needed)")
            }
            EncodeError::TooManyItems {
                command,
                count,
                cap,
            } => write!(f, "{command} with {count} items (at most {cap})"),
            EncodeError::Invalid { command } => write!(f, "{command} with a field out of bounds"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// Writes into a buffer, counting bytes past its end so the size needed is known.
struct Writer<'b> {
    out: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }
    fn varint(&mut self, n: u64) {
        let (bytes, len) = varint_bytes(n);
        self.put(bytes.get(..len).unwrap_or(&[]));
    }
    fn string(&mut self, s: &[u8]) {
        self.varint(s.len() as u64);
        self.put(s);
    }
    fn net_addr(&mut self, a: &NetAddr) {
        self.put(&a.services.to_le_bytes());
        self.put(&a.ip);
        self.put(&a.port.to_be_bytes());
    }
}

/// Writes `msg` as a frame of `magic`'s network (header with checksum, then payload) at the
/// start of `out` and returns its length.
pub fn encode(magic: Magic, msg: &Outgoing<'_>, out: &mut [u8]) -> Result<usize, EncodeError> {
    let command = msg.command();
    let too_many = |count: usize, cap: u32| {
        if count > cap as usize {
            Err(EncodeError::TooManyItems {
                command,
                count,
                cap,
            })
        } else {
            Ok(())
        }
    };
    let invalid = EncodeError::Invalid { command };
    let mut w = Writer {
        out,
        at: HEADER_SIZE,
    };
    match msg {
        Outgoing::Version(v) => {
            if v.user_agent.len() > MAX_USER_AGENT as usize
                || v.extra.len() > MAX_VERSION_EXTRA as usize
            {
                return Err(invalid);
            }
            w.put(&v.version.to_le_bytes());
            w.put(&v.services.to_le_bytes());
            w.put(&v.timestamp.to_le_bytes());
            w.net_addr(&v.receiver);
            w.net_addr(&v.sender);
            w.put(&v.nonce.to_le_bytes());
            w.string(v.user_agent);
            w.put(&v.start_height.to_le_bytes());
            if let Some(relay) = v.relay {
                w.put(&[u8::from(relay)]);
                w.put(v.extra);
            }
        }
        Outgoing::Verack
        | Outgoing::SendHeaders
        | Outgoing::GetAddr
        | Outgoing::WtxidRelay
        | Outgoing::SendAddrV2 => {}
        Outgoing::Ping(nonce) | Outgoing::Pong(nonce) => w.put(&nonce.to_le_bytes()),
        Outgoing::FeeFilter(rate) => w.put(&rate.to_le_bytes()),
        Outgoing::SendCmpct { announce, version } => {
            w.put(&[u8::from(*announce)]);
            w.put(&version.to_le_bytes());
        }
        Outgoing::Inv(items) | Outgoing::GetData(items) | Outgoing::NotFound(items) => {
            too_many(items.len(), MAX_INV_ITEMS)?;
            w.varint(items.len() as u64);
            for item in *items {
                w.put(&item.kind.0.to_le_bytes());
                w.put(&item.hash);
            }
        }
        Outgoing::Tx(raw) => w.put(raw),
        Outgoing::Headers(headers) => {
            too_many(headers.len(), MAX_HEADERS)?;
            w.varint(headers.len() as u64);
            for header in *headers {
                w.put(header);
                w.put(&[0]);
            }
        }
        Outgoing::GetHeaders {
            version,
            locator,
            stop,
        } => {
            too_many(locator.len(), MAX_LOCATOR)?;
            w.put(&version.to_le_bytes());
            w.varint(locator.len() as u64);
            for hash in *locator {
                w.put(hash.as_byte_array());
            }
            w.put(stop.as_byte_array());
        }
        Outgoing::Addr(addrs) => {
            too_many(addrs.len(), MAX_ADDR)?;
            w.varint(addrs.len() as u64);
            for a in *addrs {
                w.put(&a.time.to_le_bytes());
                w.net_addr(&a.addr);
            }
        }
        Outgoing::AddrV2(addrs) => {
            too_many(addrs.len(), MAX_ADDR)?;
            w.varint(addrs.len() as u64);
            for a in *addrs {
                let ok = match addrv2_len(a.network) {
                    Some(len) => a.addr.len() == len,
                    None => a.addr.len() <= MAX_ADDRV2_ADDR as usize,
                };
                if !ok {
                    return Err(invalid);
                }
                w.put(&a.time.to_le_bytes());
                w.varint(a.services);
                w.put(&[a.network]);
                w.string(a.addr);
                w.put(&a.port.to_be_bytes());
            }
        }
        Outgoing::Reject(r) => {
            if r.message.len() > MAX_REJECT_MESSAGE as usize
                || r.reason.len() > MAX_REJECT_REASON as usize
            {
                return Err(invalid);
            }
            w.string(r.message);
            w.put(&[r.code]);
            w.string(r.reason);
            if let Some(hash) = &r.hash {
                w.put(hash);
            }
        }
    }
    let end = w.at;
    let payload_len = end.saturating_sub(HEADER_SIZE);
    if payload_len > payload_cap(&command) as usize {
        return Err(invalid);
    }
    if end > w.out.len() {
        return Err(EncodeError::BufferTooSmall { needed: end });
    }
    let (header, rest) = w.out.split_at_mut(HEADER_SIZE);
    let payload = rest.get(..payload_len).unwrap_or(&[]);
    if let Ok(header) = <&mut [u8; HEADER_SIZE]>::try_from(header) {
        write_header(magic, &command, payload, header);
    }
    Ok(end)
}
