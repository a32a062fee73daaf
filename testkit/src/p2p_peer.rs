//! A scripted Bitcoin P2P peer on 127.0.0.1, written with core's `encode`: honest (completes
//! the handshake, answers pings after a chosen delay, announces inventory on demand) or
//! hostile in one chosen way ([`Behaviour`]). Tests point a client at [`ScriptedPeer::addr`]
//! as they would at any node's `host:port`.
//!
//! Beyond the handshake an honest peer can play a node's part in relay and header sync, as
//! [`PeerScript`] asks: request what is announced to it (`getdata` after an `inv`), serve the
//! transactions it holds (and `notfound` for the rest), and answer `getheaders` from a chain
//! (or with scripted replies first). It records what it received, item by item.
//!
//! One thread per connection (as the kit's other servers); the peer stops on drop, closing
//! every connection it holds.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use electrum_spv_core::hash::{BlockHash, Txid, sha256d};
use electrum_spv_core::p2p::{
    Command, EncodeError, InvType, InvVector, MAX_HEADERS, MAX_INV_ITEMS, MAX_INV_PAYLOAD, Magic,
    Message, MessageReader, NetAddr, Outgoing, TxForm, Version, WireTx, encode,
};

use crate::Error;

/// How the peer behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Handshake, pongs, announcements on demand.
    Honest,
    /// Its first frame carries another network's magic (fatal for the reader).
    BadMagic,
    /// Honest, but every announcement it sends has a corrupted checksum (the message is
    /// dropped, the connection kept, as bcoin and Core do).
    BadChecksum,
    /// Its first frame announces an `inv` longer than the command's cap (fatal, refused from
    /// the header).
    Oversize,
    /// Sends `verack` before its `version` (a protocol violation).
    VerackBeforeVersion,
    /// Honest, but every pong carries the wrong nonce (the ping then times out).
    WrongPongNonce,
    /// Sends the first bytes of a `version` one byte at a time, slowly, and never finishes the
    /// handshake.
    Slowloris,
    /// Once the handshake completed: a frame header announcing an `inv` of 2 items, then the
    /// first item whole and part of the second; then it closes the connection.
    TruncatedThenClose,
    /// As [`Behaviour::TruncatedThenClose`], but it then keeps the connection open and silent
    /// (no pong either).
    TruncatedThenStall,
    /// Honest handshake (send it with version 70016), then `wtxidrelay` after our `verack`.
    WtxidRelayAfterVerack,
    /// Once the handshake completed: an `inv` frame within the command's cap whose count says
    /// 50,001 items (the payload is just the count, the checksum right).
    InvCountOverCap,
    /// Once the handshake completed: a real 50,001-item `inv` (header with its honest length,
    /// then the payload).
    InvOverCap,
    /// Answers every `getheaders` with a `headers` frame within the cap whose count says 2,001
    /// (the payload is just the count, the checksum right).
    HeadersCountOverCap,
    /// Answers every `getheaders` with a real 2,001-header `headers` message (zero headers,
    /// the frame's honest length).
    HeadersOverCap,
    /// Once the handshake completed: [`FLOOD_PINGS`] pings each followed by a message of an
    /// unknown command, as fast as it can write (while it keeps reading).
    Flood,
}

/// Pings (and unknown messages) [`Behaviour::Flood`] sends.
pub const FLOOD_PINGS: usize = 20_000;

/// What the peer announces and how it behaves.
#[derive(Clone, Debug)]
pub struct PeerScript {
    /// Behaviour.
    pub behaviour: Behaviour,
    /// The network's magic.
    pub magic: Magic,
    /// Wait before each pong (an artificial latency).
    pub pong_delay: Duration,
    /// User agent.
    pub user_agent: String,
    /// Protocol version (bcoin's 70015 by default; from 70016 an honest peer sends
    /// `wtxidrelay` and `sendaddrv2` before its `verack`).
    pub version: i32,
    /// Service bits (NETWORK | WITNESS by default).
    pub services: u64,
    /// Start height.
    pub start_height: i32,
    /// Ask for every transaction announced to it (`getdata`, `MSG_WITNESS_TX` when it has
    /// the WITNESS service bit, else `MSG_TX`; `MSG_WTX` entries as they came).
    pub request_announced: bool,
    /// Raw transactions it serves on `getdata` (by txid, or by wtxid for `MSG_WTX`), in the
    /// form asked; anything else asked gets `notfound`.
    pub txs: Vec<Vec<u8>>,
    /// Replies to the first `getheaders` requests, in order (each a whole `headers` message,
    /// possibly empty); later requests are answered from [`PeerScript::chain`].
    pub headers_replies: Vec<Vec<[u8; 80]>>,
    /// The chain it answers `getheaders` from, genesis first: the headers after the first
    /// locator hash it holds (at most 2,000), or with an empty locator the header named by the
    /// stop hash. Nothing held: an empty `headers` (as Core answers at its tip).
    pub chain: Vec<[u8; 80]>,
}

impl PeerScript {
    /// An honest regtest peer like bcoin 1.0.2: version 70015, services 9,
    /// `/scripted:0.1/`, height 100, no pong delay.
    pub fn honest() -> PeerScript {
        PeerScript {
            behaviour: Behaviour::Honest,
            magic: Magic::REGTEST,
            pong_delay: Duration::ZERO,
            user_agent: "/scripted:0.1/".into(),
            version: 70015,
            services: 9,
            start_height: 100,
            request_announced: false,
            txs: Vec::new(),
            headers_replies: Vec::new(),
            chain: Vec::new(),
        }
    }

    /// A regtest peer behaving as `behaviour` (with version 70016 for
    /// [`Behaviour::WtxidRelayAfterVerack`], where `wtxidrelay` exists).
    pub fn hostile(behaviour: Behaviour) -> PeerScript {
        let version = match behaviour {
            Behaviour::WtxidRelayAfterVerack => 70016,
            _ => 70015,
        };
        PeerScript {
            behaviour,
            version,
            ..PeerScript::honest()
        }
    }
}

/// One connection's write side, shared by its thread and [`ScriptedPeer::announce`].
type Writer = Arc<Mutex<TcpStream>>;

struct Shared {
    script: PeerScript,
    stop: AtomicBool,
    accepted: AtomicUsize,
    /// Every connection (to close them on drop).
    all: Mutex<Vec<TcpStream>>,
    /// Connections whose handshake completed, for announcements.
    ready: Mutex<Vec<Writer>>,
    /// Pings answered.
    pongs: AtomicU64,
    /// Commands of every message read whole.
    received: Mutex<Vec<Command>>,
    /// Items of every `inv`, `getdata` and `notfound` read whole, with the command.
    items: Mutex<Vec<(Command, InvVector)>>,
    /// Txids of every `tx` read whole.
    txs: Mutex<Vec<Txid>>,
    /// `getheaders` answered so far (indexes [`PeerScript::headers_replies`]).
    headers_asked: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running scripted peer: a listener (or one dialed connection); stopped on drop.
pub struct ScriptedPeer {
    addr: SocketAddr,
    listening: bool,
    shared: Arc<Shared>,
}

impl ScriptedPeer {
    /// Listens on a free loopback port.
    pub fn start(script: PeerScript) -> Result<ScriptedPeer, Error> {
        ScriptedPeer::start_at(
            "127.0.0.1:0".parse().map_err(|_| Error::msg("addr"))?,
            script,
        )
    }

    /// Listens on `addr` (e.g. the address of a peer stopped before, to play its restart).
    pub fn start_at(addr: SocketAddr, script: PeerScript) -> Result<ScriptedPeer, Error> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = new_shared(script);
        let s = shared.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    s.accepted.fetch_add(1, Ordering::SeqCst);
                    let s = s.clone();
                    thread::spawn(move || serve(conn, &s));
                }
            }
        });
        Ok(ScriptedPeer {
            addr,
            listening: true,
            shared,
        })
    }

    /// Dials `target` (a client's listener) and plays the script on that one connection.
    pub fn dial(target: SocketAddr, script: PeerScript) -> Result<ScriptedPeer, Error> {
        let conn = TcpStream::connect(target)?;
        let addr = conn.local_addr()?;
        let shared = new_shared(script);
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let s = shared.clone();
        thread::spawn(move || serve(conn, &s));
        Ok(ScriptedPeer {
            addr,
            listening: false,
            shared,
        })
    }

    /// The listening address (for a dialed peer: its local address, as the client sees it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted (or dialed) so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections whose handshake completed and that are still open.
    pub fn ready_connections(&self) -> usize {
        lock(&self.shared.ready).len()
    }

    /// Pings answered so far.
    pub fn pongs(&self) -> u64 {
        self.shared.pongs.load(Ordering::SeqCst)
    }

    /// How many messages of `command` were read whole (lists count once, at their end).
    pub fn received(&self, command: Command) -> usize {
        lock(&self.shared.received)
            .iter()
            .filter(|&&c| c == command)
            .count()
    }

    /// Items of every `command` list (`inv`, `getdata`, `notfound`) read whole, in order.
    pub fn received_items(&self, command: Command) -> Vec<InvVector> {
        lock(&self.shared.items)
            .iter()
            .filter(|(c, _)| *c == command)
            .map(|(_, i)| *i)
            .collect()
    }

    /// Txids of every `tx` read whole, in order.
    pub fn received_txs(&self) -> Vec<Txid> {
        lock(&self.shared.txs).clone()
    }

    /// `getheaders` requests answered so far.
    pub fn headers_requests(&self) -> usize {
        self.shared.headers_asked.load(Ordering::SeqCst)
    }

    /// Sends an `inv` of `items` on every connection whose handshake completed; returns on how
    /// many it was written.
    pub fn announce(&self, items: &[InvVector]) -> usize {
        let mut frame = frame(self.shared.script.magic, &Outgoing::Inv(items));
        if self.shared.script.behaviour == Behaviour::BadChecksum
            && let Some(b) = frame.get_mut(20)
        {
            *b ^= 0xff;
        }
        self.write_ready(&frame)
    }

    /// Sends an `inv` of `items` after `delay`, from another thread (the call returns at
    /// once), on every connection whose handshake completed by then.
    pub fn announce_after(&self, delay: Duration, items: Vec<InvVector>) {
        let shared = self.shared.clone();
        thread::spawn(move || {
            thread::sleep(delay);
            if !shared.stop.load(Ordering::SeqCst) {
                let frame = frame(shared.script.magic, &Outgoing::Inv(&items));
                lock(&shared.ready).retain(|w| lock(w).write_all(&frame).is_ok());
            }
        });
    }

    /// Sends `msg` on every connection whose handshake completed; returns on how many it was
    /// written.
    pub fn send(&self, msg: &Outgoing<'_>) -> usize {
        self.write_ready(&frame(self.shared.script.magic, msg))
    }

    fn write_ready(&self, bytes: &[u8]) -> usize {
        let mut ready = lock(&self.shared.ready);
        ready.retain(|w| lock(w).write_all(bytes).is_ok());
        ready.len()
    }
}

impl Drop for ScriptedPeer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for conn in lock(&self.shared.all).drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
        lock(&self.shared.ready).clear();
        if self.listening {
            // Wake the accept loop so it sees the flag.
            let _ = TcpStream::connect(self.addr);
        }
    }
}

fn new_shared(script: PeerScript) -> Arc<Shared> {
    Arc::new(Shared {
        script,
        stop: AtomicBool::new(false),
        accepted: AtomicUsize::new(0),
        all: Mutex::new(Vec::new()),
        ready: Mutex::new(Vec::new()),
        pongs: AtomicU64::new(0),
        received: Mutex::new(Vec::new()),
        items: Mutex::new(Vec::new()),
        txs: Mutex::new(Vec::new()),
        headers_asked: AtomicUsize::new(0),
    })
}

/// `msg` as a whole frame (empty if it does not encode: every message the kit sends is within
/// its cap).
pub(crate) fn frame(magic: Magic, msg: &Outgoing<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = match encode(magic, msg, &mut buf) {
        Ok(n) => n,
        Err(EncodeError::BufferTooSmall { needed }) => {
            buf.resize(needed, 0);
            encode(magic, msg, &mut buf).unwrap_or(0)
        }
        Err(_) => 0,
    };
    buf.truncate(n);
    buf
}

/// A frame of `command` with `payload` as given (any length, any content), checksum right.
fn raw_frame(magic: Magic, command: Command, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + payload.len());
    out.extend_from_slice(&magic.0);
    out.extend_from_slice(&command.field());
    out.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(sha256d(payload).get(..4).unwrap_or(&[]));
    out.extend_from_slice(payload);
    out
}

/// A compact size.
fn varint(n: u64) -> Vec<u8> {
    match n {
        0..=0xfc => vec![n as u8],
        0xfd..=0xffff => {
            let mut v = vec![0xfd];
            v.extend_from_slice(&(n as u16).to_le_bytes());
            v
        }
        _ => {
            let mut v = vec![0xfe];
            v.extend_from_slice(&(n as u32).to_le_bytes());
            v
        }
    }
}

/// What a hostile behaviour sends once the handshake completed (or `None`).
fn after_handshake(b: Behaviour, magic: Magic) -> Option<Vec<u8>> {
    Some(match b {
        Behaviour::TruncatedThenClose | Behaviour::TruncatedThenStall => {
            let items = [InvVector {
                kind: InvType::TX,
                hash: [0x77; 32],
            }; 2];
            let mut f = frame(magic, &Outgoing::Inv(&items));
            // Header, count, the first item and 10 bytes of the second.
            f.truncate(24 + 1 + 36 + 10);
            f
        }
        Behaviour::WtxidRelayAfterVerack => frame(magic, &Outgoing::WtxidRelay),
        Behaviour::InvCountOverCap => {
            raw_frame(magic, Command::Inv, &varint(u64::from(MAX_INV_ITEMS) + 1))
        }
        Behaviour::InvOverCap => {
            let n = MAX_INV_ITEMS as usize + 1;
            let mut payload = varint(n as u64);
            for i in 0..n {
                payload.extend_from_slice(&InvType::TX.0.to_le_bytes());
                let mut hash = [0u8; 32];
                hash[..8].copy_from_slice(&(i as u64).to_le_bytes());
                payload.extend_from_slice(&hash);
            }
            raw_frame(magic, Command::Inv, &payload)
        }
        _ => return None,
    })
}

/// What [`Behaviour::HeadersCountOverCap`] and [`Behaviour::HeadersOverCap`] answer a
/// `getheaders` with (`None` for other behaviours).
fn headers_over_cap(b: Behaviour, magic: Magic) -> Option<Vec<u8>> {
    Some(match b {
        Behaviour::HeadersCountOverCap => {
            raw_frame(magic, Command::Headers, &varint(u64::from(MAX_HEADERS) + 1))
        }
        Behaviour::HeadersOverCap => {
            let n = MAX_HEADERS as usize + 1;
            let mut payload = varint(n as u64);
            for _ in 0..n {
                payload.extend_from_slice(&[0u8; 81]);
            }
            raw_frame(magic, Command::Headers, &payload)
        }
        _ => return None,
    })
}

/// The `headers` reply to a `getheaders` of `locator` and `stop`.
fn headers_reply(s: &Shared, locator: &[BlockHash], stop: BlockHash) -> Vec<[u8; 80]> {
    let asked = s.headers_asked.fetch_add(1, Ordering::SeqCst);
    if let Some(reply) = s.script.headers_replies.get(asked) {
        return reply.clone();
    }
    let chain = &s.script.chain;
    let hash_of = |h: &[u8; 80]| BlockHash::from_byte_array(sha256d(h));
    if locator.is_empty() {
        return chain
            .iter()
            .filter(|h| hash_of(h) == stop)
            .take(1)
            .copied()
            .collect();
    }
    let Some(at) = locator
        .iter()
        .find_map(|l| chain.iter().position(|h| hash_of(h) == *l))
    else {
        return Vec::new();
    };
    chain
        .iter()
        .skip(at + 1)
        .take(MAX_HEADERS as usize)
        .copied()
        .collect()
}

/// The frames answering a `getdata` of `items`: the transactions held, then one `notfound`.
fn getdata_reply(script: &PeerScript, items: &[InvVector]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for item in items {
        let served = script.txs.iter().find_map(|raw| {
            let wire = WireTx::parse(raw).ok()?;
            let form = TxForm::of(item.kind)?;
            wire.is_named_by(item)
                .then(|| wire.frame(script.magic, form))
        });
        match served {
            Some(f) => {
                out.extend_from_slice(&f.header);
                for piece in f.payload {
                    out.extend_from_slice(piece);
                }
            }
            None => missing.push(*item),
        }
    }
    if !missing.is_empty() {
        out.extend_from_slice(&frame(script.magic, &Outgoing::NotFound(&missing)));
    }
    out
}

fn version_frame(script: &PeerScript, magic: Magic) -> Vec<u8> {
    static NONCE: AtomicU64 = AtomicU64::new(0x5c21_7ed0_0000_0000);
    let zero = NetAddr {
        services: 0,
        ip: [0; 16],
        port: 0,
    };
    frame(
        magic,
        &Outgoing::Version(Version {
            version: script.version,
            services: script.services,
            timestamp: 1_700_000_000,
            receiver: zero,
            sender: zero,
            nonce: NONCE.fetch_add(1, Ordering::Relaxed),
            user_agent: script.user_agent.as_bytes(),
            start_height: script.start_height,
            relay: Some(true),
            extra: &[],
        }),
    )
}

/// What a connection does with a message it read.
enum Action {
    Handshake,
    Ready,
    Pong(u64),
    /// Bytes to write (a reply).
    Reply(Vec<u8>),
    Nothing,
}

/// A list or `getheaders` being read.
#[derive(Default)]
struct Pending {
    items: Vec<InvVector>,
    locator: Vec<BlockHash>,
}

fn serve(conn: TcpStream, s: &Shared) {
    let _ = conn.set_nodelay(true);
    if let Ok(c) = conn.try_clone() {
        lock(&s.all).push(c);
    }
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let writer: Writer = Arc::new(Mutex::new(write_half));
    let send = |bytes: &[u8]| lock(&writer).write_all(bytes).is_ok();
    let script = &s.script;
    let magic = script.magic;
    let opening: Option<Vec<u8>> = match script.behaviour {
        Behaviour::BadMagic => {
            let mut other = magic.0;
            other[0] ^= 0xff;
            Some(version_frame(script, Magic(other)))
        }
        Behaviour::Oversize => {
            let mut header = Vec::with_capacity(24);
            header.extend_from_slice(&magic.0);
            header.extend_from_slice(&Command::Inv.field());
            header.extend_from_slice(&(MAX_INV_PAYLOAD + 1).to_le_bytes());
            header.extend_from_slice(&[0; 4]);
            Some(header)
        }
        Behaviour::VerackBeforeVersion => Some(frame(magic, &Outgoing::Verack)),
        Behaviour::Slowloris => {
            let version = version_frame(script, magic);
            for b in version.iter().take(version.len().saturating_sub(1)) {
                if s.stop.load(Ordering::SeqCst) || !send(&[*b]) {
                    return;
                }
                thread::sleep(Duration::from_millis(500));
            }
            return;
        }
        _ => None,
    };
    if let Some(bytes) = opening {
        // Then read until the client hangs up, so it sees the bytes before any reset.
        send(&bytes);
    }
    // Silent once a cut frame is out: no pong, no reply.
    let mut silent = false;
    let mut pending = Pending::default();
    let mut reader = MessageReader::owned(magic);
    let mut read = conn;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if s.stop.load(Ordering::SeqCst) {
            break;
        }
        let mut rest = buf.get(..n).unwrap_or(&[]);
        loop {
            let (used, msg) = reader.feed(rest);
            rest = rest.get(used..).unwrap_or(&[]);
            let action = match msg {
                Ok(Some(Message::Version(_))) => Action::Handshake,
                Ok(Some(Message::Verack)) => Action::Ready,
                Ok(Some(Message::Ping(n))) => Action::Pong(n),
                Ok(Some(Message::ListStart { .. } | Message::GetHeadersStart { .. })) => {
                    pending = Pending::default();
                    Action::Nothing
                }
                Ok(Some(Message::Inventory(item))) => {
                    pending.items.push(item);
                    Action::Nothing
                }
                Ok(Some(Message::Locator(hash))) => {
                    pending.locator.push(hash);
                    Action::Nothing
                }
                Ok(Some(msg)) => {
                    if let Some(command) = command_of(&msg) {
                        lock(&s.received).push(command);
                    }
                    match msg {
                        Message::ListEnd { command } => {
                            let items = std::mem::take(&mut pending.items);
                            lock(&s.items).extend(items.iter().map(|i| (command, *i)));
                            match command {
                                Command::GetData => Action::Reply(getdata_reply(script, &items)),
                                Command::Inv if script.request_announced => {
                                    Action::Reply(request(script, &items))
                                }
                                _ => Action::Nothing,
                            }
                        }
                        Message::GetHeadersEnd { stop } => {
                            let locator = std::mem::take(&mut pending.locator);
                            let headers = headers_reply(s, &locator, stop);
                            Action::Reply(
                                headers_over_cap(script.behaviour, magic)
                                    .unwrap_or_else(|| frame(magic, &Outgoing::Headers(&headers))),
                            )
                        }
                        Message::Tx { txid, .. } => {
                            lock(&s.txs).push(txid);
                            Action::Nothing
                        }
                        _ => Action::Nothing,
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_fatal() => return,
                Err(_) => Action::Nothing,
            };
            if opening_sent(script.behaviour) || silent {
                continue;
            }
            let ok = match action {
                Action::Handshake => {
                    let mut out = version_frame(script, magic);
                    if script.behaviour == Behaviour::Honest && script.version >= 70016 {
                        out.extend(frame(magic, &Outgoing::WtxidRelay));
                        out.extend(frame(magic, &Outgoing::SendAddrV2));
                    }
                    out.extend(frame(magic, &Outgoing::Verack));
                    send(&out)
                }
                Action::Ready => {
                    lock(&s.ready).push(writer.clone());
                    match script.behaviour {
                        Behaviour::Flood => {
                            flood(writer.clone(), magic, s);
                            true
                        }
                        b => match after_handshake(b, magic) {
                            Some(bytes) => {
                                // The peer may hang up at once (an oversize header): ignore.
                                send(&bytes);
                                // Whatever it sends next would complete the cut frame.
                                silent = matches!(
                                    b,
                                    Behaviour::TruncatedThenClose | Behaviour::TruncatedThenStall
                                );
                                if b == Behaviour::TruncatedThenClose {
                                    let _ = read.shutdown(Shutdown::Both);
                                    break;
                                }
                                true
                            }
                            None => true,
                        },
                    }
                }
                Action::Pong(nonce) => {
                    thread::sleep(script.pong_delay);
                    let nonce = match script.behaviour {
                        Behaviour::WrongPongNonce => nonce ^ 1,
                        _ => nonce,
                    };
                    s.pongs.fetch_add(1, Ordering::SeqCst);
                    send(&frame(magic, &Outgoing::Pong(nonce)))
                }
                Action::Reply(bytes) => bytes.is_empty() || send(&bytes),
                Action::Nothing => true,
            };
            if !ok {
                return;
            }
        }
    }
    lock(&s.ready).retain(|w| !Arc::ptr_eq(w, &writer));
}

/// The `getdata` asking for the transactions among announced `items` (empty if none).
fn request(script: &PeerScript, items: &[InvVector]) -> Vec<u8> {
    let wanted: Vec<InvVector> = items
        .iter()
        .filter(|i| TxForm::of(i.kind).is_some())
        .map(|i| match i.kind {
            InvType::TX if script.services & 8 != 0 => InvVector {
                kind: InvType::WITNESS_TX,
                hash: i.hash,
            },
            _ => *i,
        })
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    frame(script.magic, &Outgoing::GetData(&wanted))
}

/// [`Behaviour::Flood`]: pings and unknown messages from another thread.
fn flood(writer: Writer, magic: Magic, s: &Shared) {
    let mut unknown = [0u8; 12];
    unknown[..7].copy_from_slice(b"garbage");
    let junk = raw_frame(magic, Command::Unknown(unknown), &[0xab; 100]);
    let stop = s.stop.load(Ordering::SeqCst);
    thread::spawn(move || {
        if stop {
            return;
        }
        for i in 0..FLOOD_PINGS {
            let mut bytes = frame(magic, &Outgoing::Ping(i as u64));
            bytes.extend_from_slice(&junk);
            if lock(&writer).write_all(&bytes).is_err() {
                return;
            }
        }
    });
}

/// Behaviours that only send their opening and then merely read.
fn opening_sent(b: Behaviour) -> bool {
    matches!(
        b,
        Behaviour::BadMagic | Behaviour::Oversize | Behaviour::VerackBeforeVersion
    )
}

/// The command of a message that is whole once reported (a list's end, a single message).
fn command_of(msg: &Message<'_>) -> Option<Command> {
    Some(match msg {
        Message::ListEnd { command } => *command,
        Message::SendHeaders => Command::SendHeaders,
        Message::FeeFilter(_) => Command::FeeFilter,
        Message::GetAddr => Command::GetAddr,
        Message::WtxidRelay => Command::WtxidRelay,
        Message::SendAddrV2 => Command::SendAddrV2,
        Message::Pong(_) => Command::Pong,
        Message::GetHeadersEnd { .. } => Command::GetHeaders,
        Message::Tx { .. } => Command::Tx,
        Message::Unknown { command, .. } => *command,
        _ => return None,
    })
}
