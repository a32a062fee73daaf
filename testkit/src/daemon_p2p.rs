//! The stand-in bitcoind's P2P port, for servers that read blocks over P2P (electrs, see
//! INTEROP.md "What electrs 0.10 needs from its daemon"): the kit's chain served with core's
//! `p2p` codec.
//!
//! A connection gets a `version` and `verack` for its `version`, a `pong` for each `ping`,
//! the headers after the first locator hash it holds for a `getheaders` (at most 2,000; none
//! when the locator is already at the tip), a `block` (with witnesses) for each
//! `MSG_BLOCK`/`MSG_WITNESS_BLOCK` it asks for and a `notfound` for anything else, and an `inv`
//! of the new tip whenever the chain's tip changes (a mined block or a reorg), as Core
//! announces blocks to a peer that did not ask for `sendheaders`.
//!
//! One thread per connection and one watching the tip; all stop when the port is dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::Hash as _;
use electrum_spv_core::hash::BlockHash;
use electrum_spv_core::p2p::frame::write_header;
use electrum_spv_core::p2p::{
    COMMAND_SIZE, Command, HEADER_SIZE, InvType, InvVector, MAX_HEADERS, Magic, Message,
    MessageReader, NetAddr, Outgoing, Version,
};

use crate::Error;
use crate::chain::Chain;
use crate::p2p_peer::frame;

/// How often the tip watcher looks for a new tip.
const TIP_POLL: Duration = Duration::from_millis(50);

/// The stand-in's P2P listener on a free 127.0.0.1 port. Stopped on drop.
pub(crate) struct DaemonP2p {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    chain: Arc<Mutex<Chain>>,
    magic: Magic,
    stop: AtomicBool,
    /// Every connection (to shut them down on drop).
    conns: Mutex<Vec<TcpStream>>,
    /// Write halves of connections whose handshake completed (they receive tip `inv`s).
    ready: Mutex<Vec<Writer>>,
    /// `block` messages served (for tests of the port itself).
    blocks_served: AtomicU64,
}

type Writer = Arc<Mutex<TcpStream>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DaemonP2p {
    /// Starts serving `chain` with the network `magic`.
    pub(crate) fn start(chain: Arc<Mutex<Chain>>, magic: Magic) -> Result<DaemonP2p, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            chain,
            magic,
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            ready: Mutex::new(Vec::new()),
            blocks_served: AtomicU64::new(0),
        });
        let accept = {
            let s = shared.clone();
            thread::Builder::new()
                .name("standin-p2p-accept".into())
                .spawn(move || accept_loop(listener, s))?
        };
        let watch = {
            let s = shared.clone();
            thread::Builder::new()
                .name("standin-p2p-tip".into())
                .spawn(move || watch_tip(s))?
        };
        Ok(DaemonP2p {
            addr,
            shared,
            threads: vec![accept, watch],
        })
    }

    /// The P2P address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many `block` messages were served.
    pub(crate) fn blocks_served(&self) -> u64 {
        self.shared.blocks_served.load(Ordering::SeqCst)
    }
}

impl Drop for DaemonP2p {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in lock(&self.shared.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        lock(&self.shared.ready).clear();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, s: Arc<Shared>) {
    for conn in listener.incoming() {
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        if let Ok(c) = conn.try_clone() {
            lock(&s.conns).push(c);
        }
        let s = s.clone();
        let _ = thread::Builder::new()
            .name("standin-p2p-conn".into())
            .spawn(move || serve(conn, &s));
    }
}

/// Announces each new tip to every connection whose handshake completed.
fn watch_tip(s: Arc<Shared>) {
    let mut last = tip_hash(&s);
    while !s.stop.load(Ordering::SeqCst) {
        thread::sleep(TIP_POLL);
        let tip = tip_hash(&s);
        if tip != last {
            last = tip;
            let inv = [InvVector {
                kind: InvType::BLOCK,
                hash: tip.to_byte_array(),
            }];
            let frame = frame(s.magic, &Outgoing::Inv(&inv));
            lock(&s.ready).retain(|w| lock(w).write_all(&frame).is_ok());
        }
    }
}

fn tip_hash(s: &Shared) -> BlockHash {
    BlockHash::from_byte_array(lock(&s.chain).tip().block_hash().to_byte_array())
}

/// A `block` frame: core's codec has no `block` message (the client never takes one), so the
/// header is written with core's `write_header` around the block's consensus encoding.
fn block_frame(magic: Magic, block: &bitcoin::Block) -> Vec<u8> {
    let payload = serialize(block);
    let mut field = [0u8; COMMAND_SIZE];
    field[..5].copy_from_slice(b"block");
    let mut header = [0u8; HEADER_SIZE];
    write_header(magic, &Command::Unknown(field), &payload, &mut header);
    let mut out = header.to_vec();
    out.extend_from_slice(&payload);
    out
}

fn version_frame(s: &Shared) -> Vec<u8> {
    let zero = NetAddr {
        services: 0,
        ip: [0; 16],
        port: 0,
    };
    let height = lock(&s.chain).height();
    frame(
        s.magic,
        &Outgoing::Version(Version {
            version: 70016,
            // NODE_NETWORK | NODE_WITNESS: it serves whole blocks with witnesses.
            services: 9,
            timestamp: 1_700_000_000,
            receiver: zero,
            sender: zero,
            nonce: 0x5d21_7ed0_0000_0001,
            user_agent: b"/Satoshi:31.0.0(electrum-spv-testkit stand-in)/",
            start_height: i32::try_from(height).unwrap_or(i32::MAX),
            relay: Some(false),
            extra: &[],
        }),
    )
}

/// The headers after the first hash of `locator` on the chain (at most [`MAX_HEADERS`]); an
/// empty locator names the header `stop`. A locator with no hash on the chain gets the
/// headers from genesis' successor, as Core answers a locator of unknown hashes.
fn headers_after(chain: &Chain, locator: &[BlockHash], stop: BlockHash) -> Vec<[u8; 80]> {
    let blocks = chain.blocks();
    let hash_of = |b: &bitcoin::Block| BlockHash::from_byte_array(b.block_hash().to_byte_array());
    let raw =
        |b: &bitcoin::Block| -> [u8; 80] { serialize(&b.header).try_into().unwrap_or([0u8; 80]) };
    if locator.is_empty() {
        return blocks
            .iter()
            .filter(|b| hash_of(b) == stop)
            .take(1)
            .map(raw)
            .collect();
    }
    let from = locator
        .iter()
        .find_map(|l| blocks.iter().position(|b| hash_of(b) == *l))
        .unwrap_or(0);
    let mut out = Vec::new();
    for b in blocks.iter().skip(from + 1).take(MAX_HEADERS as usize) {
        out.push(raw(b));
        if hash_of(b) == stop {
            break;
        }
    }
    out
}

/// The frames answering a `getdata` of `items`: each block asked for, then one `notfound`.
fn getdata_reply(s: &Shared, items: &[InvVector]) -> Vec<u8> {
    let chain = lock(&s.chain);
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for item in items {
        let block = matches!(item.kind, InvType::BLOCK | InvType::WITNESS_BLOCK)
            .then(|| {
                chain
                    .blocks()
                    .iter()
                    .find(|b| b.block_hash().to_byte_array() == item.hash)
            })
            .flatten();
        match block {
            // MSG_BLOCK asks for the block without witnesses; the kit's regtest chain is read
            // only by segwit-aware servers, which ask MSG_WITNESS_BLOCK.
            Some(b) if item.kind == InvType::WITNESS_BLOCK => {
                out.extend(block_frame(s.magic, b));
                s.blocks_served.fetch_add(1, Ordering::SeqCst);
            }
            Some(b) => {
                let mut stripped = b.clone();
                for tx in &mut stripped.txdata {
                    for input in &mut tx.input {
                        input.witness.clear();
                    }
                }
                out.extend(block_frame(s.magic, &stripped));
                s.blocks_served.fetch_add(1, Ordering::SeqCst);
            }
            None => missing.push(*item),
        }
    }
    if !missing.is_empty() {
        out.extend(frame(s.magic, &Outgoing::NotFound(&missing)));
    }
    out
}

/// A `getdata` list or `getheaders` locator being read item by item.
#[derive(Default)]
struct Pending {
    items: Vec<InvVector>,
    locator: Vec<BlockHash>,
}

fn serve(conn: TcpStream, s: &Shared) {
    let _ = conn.set_nodelay(true);
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let writer: Writer = Arc::new(Mutex::new(write_half));
    let send = |bytes: &[u8]| bytes.is_empty() || lock(&writer).write_all(bytes).is_ok();
    let mut reader = MessageReader::owned(s.magic);
    let mut pending = Pending::default();
    let mut read = conn;
    let mut buf = vec![0u8; 64 * 1024];
    'conn: loop {
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
            let reply = match msg {
                Ok(None) => break,
                Ok(Some(Message::Version(_))) => {
                    let mut out = version_frame(s);
                    out.extend(frame(s.magic, &Outgoing::Verack));
                    out
                }
                Ok(Some(Message::Verack)) => {
                    lock(&s.ready).push(writer.clone());
                    Vec::new()
                }
                Ok(Some(Message::Ping(nonce))) => frame(s.magic, &Outgoing::Pong(nonce)),
                Ok(Some(Message::ListStart { .. } | Message::GetHeadersStart { .. })) => {
                    pending = Pending::default();
                    Vec::new()
                }
                Ok(Some(Message::Inventory(item))) => {
                    pending.items.push(item);
                    Vec::new()
                }
                Ok(Some(Message::Locator(hash))) => {
                    pending.locator.push(hash);
                    Vec::new()
                }
                Ok(Some(Message::ListEnd {
                    command: Command::GetData,
                })) => getdata_reply(s, &std::mem::take(&mut pending.items)),
                Ok(Some(Message::GetHeadersEnd { stop })) => {
                    let locator = std::mem::take(&mut pending.locator);
                    let headers = headers_after(&lock(&s.chain), &locator, stop);
                    frame(s.magic, &Outgoing::Headers(&headers))
                }
                Ok(Some(_)) => Vec::new(),
                Err(e) if e.is_fatal() => break 'conn,
                Err(_) => Vec::new(),
            };
            if !send(&reply) {
                break 'conn;
            }
        }
    }
    lock(&s.ready).retain(|w| !Arc::ptr_eq(w, &writer));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_hash(b: &bitcoin::Block) -> BlockHash {
        BlockHash::from_byte_array(b.block_hash().to_byte_array())
    }

    #[test]
    fn headers_follow_the_locator_and_stop_at_the_stop_hash() {
        let chain = Chain::funded().unwrap();
        let blocks = chain.blocks();
        let tip = blocks.len() - 1;
        let zero = BlockHash::from_byte_array([0; 32]);
        // From genesis: everything after it.
        let all = headers_after(&chain, &[core_hash(&blocks[0])], zero);
        assert_eq!(all.len(), tip.min(MAX_HEADERS as usize));
        assert_eq!(all[0].to_vec(), serialize(&blocks[1].header));
        // At the tip: nothing (electrs' "up to date").
        assert!(headers_after(&chain, &[core_hash(&blocks[tip])], zero).is_empty());
        // The first hash known wins; unknown hashes before it are skipped.
        let unknown = BlockHash::from_byte_array([7; 32]);
        let after_5 = headers_after(&chain, &[unknown, core_hash(&blocks[5])], zero);
        assert_eq!(after_5[0].to_vec(), serialize(&blocks[6].header));
        // A stop hash ends the reply.
        let to_8 = headers_after(&chain, &[core_hash(&blocks[5])], core_hash(&blocks[8]));
        assert_eq!(to_8.len(), 3);
        // An empty locator names the stop header.
        let one = headers_after(&chain, &[], core_hash(&blocks[3]));
        assert_eq!(one, vec![all[2]]);
    }
}
