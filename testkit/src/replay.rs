//! A mainnet replay Electrum server: answers like electrs (protocol "1.4") from the real
//! mainnet data in `core/tests/data/mainnet/` only, so a client can be tested against the real
//! chain without any network beyond 127.0.0.1.
//!
//! What it knows: headers 0..=10236 and 822528..=830592 (the tip it reports is 830592), full
//! blocks 0..=438 and 830000. Every transaction of those blocks is indexed (genesis's coinbase
//! excepted, as Bitcoin Core never indexes it); a script's history is every transaction with an
//! output paying it or an input spending an output that paid it, where the spent output is
//! one of the known blocks'. Outputs count as unspent unless a known transaction spends them.
//! There is no mempool, and the chain never moves, so no notification is ever sent.
//!
//! Methods: `server.{version,features,ping,banner,donation_address,peers.subscribe}`,
//! `blockchain.headers.subscribe`, `blockchain.block.{header,headers}` (a non-zero `cp_height`
//! is refused with -32602, as electrs), `blockchain.scripthash.{subscribe,unsubscribe,
//! get_history,listunspent,get_balance}`, `blockchain.transaction.{get,get_merkle,id_from_pos}`
//! (`id_from_pos` answers the spec's forms: a txid string, or `{"tx_hash","merkle"}` when
//! `merkle` is true), `blockchain.estimatefee` (-1), `blockchain.relayfee` (0.00001). Any other
//! method, `blockchain.scripthash.get_mempool` included, is -32601; bad parameters are -32602;
//! unknown heights and transactions are error 1. Params must be positional arrays; batches are
//! answered.
//!
//! A server may lie ([`ReplayLie`]): the lie is applied to every script (and, for the header
//! lie, to both [`FORGED_HEIGHTS`]), in the documented method only;
//! [`ReplayServer::tampered`] counts the answers that differ from the honest ones.
//!
//! [`examples`] lists real scripts with independently computed expectations, and
//! [`checkpoints_file`] writes the checkpoint list a client anchors to.

mod checkpoints;
mod data;
mod examples;
mod methods;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

pub use checkpoints::{CHECKPOINT_COUNT, checkpoints_file};
pub use examples::{Example, ExpectedTx, ExpectedUtxo, examples};

use crate::Error;

/// The tip the server reports: the last header it knows.
pub const TIP_HEIGHT: u32 = 830_592;
/// The heights whose headers [`ReplayLie::ForgedOldHeader`] forges: one in period 0, one in
/// period 411.
pub const FORGED_HEIGHTS: [u32; 2] = [1000, 829_000];
/// The server's software name, as `server.version` and `server.features` report it.
pub const SERVER_VERSION: &str = "ReplayServer 1.0";
/// Longest request line read; a longer one gets -32600 and the connection is closed.
pub const MAX_LINE: usize = 1 << 20;

/// How a replay server lies. Each lie applies to every script it can apply to; an answer it
/// cannot change (e.g. an empty history) is served honestly and not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReplayLie {
    /// Tell the truth.
    #[default]
    None,
    /// `blockchain.block.header` and `blockchain.block.headers`: the headers at
    /// [`FORGED_HEIGHTS`] served with the lowest byte of their nonce changed.
    ForgedOldHeader,
    /// `blockchain.transaction.get_merkle`: the branch of another position of the same block
    /// (the sibling `pos ^ 1`, or position 0 when the tx is last of an odd level), claiming
    /// the tx's own `pos`.
    WrongPositionBranch,
    /// `blockchain.scripthash.get_history`: the first entry left out; the status from
    /// `subscribe` is still the full history's.
    HiddenEntryHonestStatus,
    /// The first entry hidden consistently: left out of `get_history`, `subscribe`'s status
    /// computed without it, and its outputs left out of `listunspent` (and so of
    /// `get_balance`). A self-consistent liar.
    HiddenEntryMatchingStatus,
    /// `blockchain.scripthash.get_history`: a real transaction that neither pays nor spends
    /// the script inserted in chain order (the first one of the first history block that has
    /// one); `subscribe`'s status recomputed to match.
    UnrelatedTxInserted,
    /// `blockchain.scripthash.get_history`: the first entry listed twice; `subscribe`'s
    /// status recomputed to match.
    DuplicateTxid,
    /// `blockchain.scripthash.listunspent`: the first output listed twice; `get_balance`
    /// counts it twice to match.
    DuplicateOutpoint,
}

impl ReplayLie {
    /// Every lie, `None` first.
    pub const ALL: [ReplayLie; 8] = [
        ReplayLie::None,
        ReplayLie::ForgedOldHeader,
        ReplayLie::WrongPositionBranch,
        ReplayLie::HiddenEntryHonestStatus,
        ReplayLie::HiddenEntryMatchingStatus,
        ReplayLie::UnrelatedTxInserted,
        ReplayLie::DuplicateTxid,
        ReplayLie::DuplicateOutpoint,
    ];

    /// The lie's name in kebab case (`"forged-old-header"`), as `replay-serve --lie` takes it.
    pub fn name(self) -> &'static str {
        match self {
            ReplayLie::None => "none",
            ReplayLie::ForgedOldHeader => "forged-old-header",
            ReplayLie::WrongPositionBranch => "wrong-position-branch",
            ReplayLie::HiddenEntryHonestStatus => "hidden-entry-honest-status",
            ReplayLie::HiddenEntryMatchingStatus => "hidden-entry-matching-status",
            ReplayLie::UnrelatedTxInserted => "unrelated-tx-inserted",
            ReplayLie::DuplicateTxid => "duplicate-txid",
            ReplayLie::DuplicateOutpoint => "duplicate-outpoint",
        }
    }

    /// The lie named `name` (see [`ReplayLie::name`]).
    pub fn from_name(name: &str) -> Option<ReplayLie> {
        ReplayLie::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The replay server, listening on a free 127.0.0.1 port; stopped (every connection closed)
/// on drop.
pub struct ReplayServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    lie: ReplayLie,
    tampered: AtomicUsize,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ReplayServer {
    /// Loads the data (once per process; an error if a file is missing or inconsistent) and
    /// starts a server telling `lie`.
    pub fn start(lie: ReplayLie) -> Result<ReplayServer, Error> {
        let data = data::data()?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            lie,
            tampered: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let accept = shared.clone();
        thread::Builder::new()
            .name("replay-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if accept.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    if let Ok(copy) = conn.try_clone() {
                        lock(&accept.conns).push(copy);
                    }
                    let shared = accept.clone();
                    let _ = thread::Builder::new()
                        .name("replay-conn".into())
                        .spawn(move || serve(conn, data, &shared));
                }
            })?;
        Ok(ReplayServer { addr, shared })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `tcp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// The lie it tells.
    pub fn lie(&self) -> ReplayLie {
        self.shared.lie
    }

    /// How many answers it has served that differ from the honest ones.
    pub fn tampered(&self) -> usize {
        self.shared.tampered.load(Ordering::SeqCst)
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in lock(&self.shared.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One connection: each request line answered in order, until the client closes or the
/// server stops.
fn serve(conn: TcpStream, data: &'static data::Data, shared: &Shared) {
    let _ = conn.set_nodelay(true);
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut session = methods::Session {
        data,
        lie: shared.lie,
        tampered: &shared.tampered,
        subscribed: HashSet::new(),
    };
    let mut line = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        line.clear();
        // Bounded, so a client cannot make the server buffer without limit.
        match reader
            .by_ref()
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE {
            let _ = out.write_all(methods::too_long().as_bytes());
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(answer) = session.handle_line(&line) {
            let mut bytes = answer.to_string().into_bytes();
            bytes.push(b'\n');
            if out.write_all(&bytes).is_err() {
                break;
            }
        }
    }
    let _ = out.shutdown(Shutdown::Both);
}
