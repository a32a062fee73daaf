//! A scripted Bitcoin P2P peer on 127.0.0.1, written with core's `encode`: honest (completes
//! the handshake, answers pings after a chosen delay, announces inventory on demand) or
//! hostile in one chosen way ([`Behaviour`]). Tests point a client at [`ScriptedPeer::addr`]
//! as they would at any node's `host:port`.
//!
//! One thread per connection (as the kit's other servers); the peer stops on drop, closing
//! every connection it holds.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use electrum_spv_core::p2p::{
    Command, EncodeError, InvVector, MAX_INV_PAYLOAD, Magic, Message, MessageReader, NetAddr,
    Outgoing, Version, encode,
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
}

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
    /// Protocol version (bcoin's 70015 by default).
    pub version: i32,
    /// Service bits (NETWORK | WITNESS by default).
    pub services: u64,
    /// Start height.
    pub start_height: i32,
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
        }
    }

    /// A regtest peer behaving as `behaviour`.
    pub fn hostile(behaviour: Behaviour) -> PeerScript {
        PeerScript {
            behaviour,
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

    /// Sends `msg` on every connection whose handshake completed; returns on how many it was
    /// written.
    pub fn send(&self, msg: &Outgoing<'_>) -> usize {
        let frame = frame(self.shared.script.magic, msg);
        let mut ready = lock(&self.shared.ready);
        ready.retain(|w| lock(w).write_all(&frame).is_ok());
        ready.len()
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
        let mut ready = lock(&self.shared.ready);
        ready.retain(|w| lock(w).write_all(&frame).is_ok());
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
    })
}

/// `msg` as a whole frame.
fn frame(magic: Magic, msg: &Outgoing<'_>) -> Vec<u8> {
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
    Nothing,
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
        Behaviour::Honest | Behaviour::BadChecksum | Behaviour::WrongPongNonce => None,
    };
    if let Some(bytes) = opening {
        // Then read until the client hangs up, so it sees the bytes before any reset.
        send(&bytes);
    }
    let mut reader = MessageReader::new(magic);
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
                Ok(Some(msg)) => {
                    if let Some(command) = command_of(&msg) {
                        lock(&s.received).push(command);
                    }
                    Action::Nothing
                }
                Ok(None) => break,
                Err(e) if e.is_fatal() => return,
                Err(_) => Action::Nothing,
            };
            if opening_sent(script.behaviour) {
                continue;
            }
            let ok = match action {
                Action::Handshake => {
                    send(&version_frame(script, magic)) && send(&frame(magic, &Outgoing::Verack))
                }
                Action::Ready => {
                    lock(&s.ready).push(writer.clone());
                    true
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
                Action::Nothing => true,
            };
            if !ok {
                return;
            }
        }
    }
    lock(&s.ready).retain(|w| !Arc::ptr_eq(w, &writer));
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
