//! Verified sync against an Electrum server: headers from genesis, then the verified history of
//! each script hash given, one JSON line per script.
//!
//! ```text
//! cargo run -p electrum-spv-core --example verified_sync -- \
//!     --server 127.0.0.1:50001 --network regtest SCRIPTHASH...
//! ```
//!
//! Every header is checked (links, proof of work, retargets) and accumulated into a merkle root
//! of block hashes; every transaction printed has its block header proven against that root,
//! its merkle branch checked and its raw bytes hashed to its txid; each status is recomputed
//! from the history. Exit 1 with the reason on any verification failure.
//!
//! This program is also a complete example of the sans-IO loop over a blocking `TcpStream`.
//! Script hashes select the `blockchain.scripthash.*` methods, so protocol 1.4 to 1.6 is used.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use electrum_spv_core::accumulator::MerkleAccumulator;
use electrum_spv_core::chain::{Anchor, HeaderVerifier, Network};
use electrum_spv_core::hash::ScriptHash;
use electrum_spv_core::session::{
    Config, Event, MAX_HEADERS_PER_REQUEST, Request, Session, SessionStorage, response,
};
use electrum_spv_core::sync::Slots;
use electrum_spv_core::sync::tracker::{
    ScriptRef, ScriptSlot, ScriptTracker, TrackerEvent, TxSlot,
};
use electrum_spv_core::time;

/// Line buffer: a buffered 2016-header result fits, padded by ElectrumX to 524,287 bytes.
type Client = Session<'static>;
type Tracker = ScriptTracker<Table<ScriptSlot>, Table<TxSlot>>;

/// A table that grows one slot at a time as the tracker needs. (Core lends a `Vec` itself with
/// its `alloc` feature, which `cargo run -p electrum-spv-core --example` does not turn on.)
struct Table<X>(Vec<X>);

impl<X: Default> Slots<X> for Table<X> {
    fn slots(&self) -> &[X] {
        &self.0
    }
    fn slots_mut(&mut self) -> &mut [X] {
        &mut self.0
    }
    fn grow(&mut self) -> bool {
        self.0.push(X::default());
        true
    }
}
const TIMEOUT: Duration = Duration::from_secs(120);

struct Args {
    server: String,
    network: Network,
    scripts: Vec<ScriptHash>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut server, mut network, mut scripts) = (None, Network::Regtest, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--server" => server = Some(args.next().ok_or("--server needs HOST:PORT")?),
            "--network" => {
                network = args
                    .next()
                    .ok_or("--network needs a value")?
                    .parse()
                    .map_err(|e| format!("{e}"))?;
            }
            h => scripts.push(
                h.parse()
                    .map_err(|e| format!("bad script hash {h:?}: {e}"))?,
            ),
        }
    }
    let server =
        server.ok_or("usage: verified_sync --server HOST:PORT [--network N] SCRIPTHASH...")?;
    Ok(Args {
        server,
        network,
        scripts,
    })
}

/// The caller's loop of the sans-IO contract over a blocking socket.
struct Driver {
    stream: TcpStream,
    session: Box<Client>,
    start: Instant,
    unfed: Vec<u8>,
}

impl Driver {
    /// Core's time: milliseconds since the driver started.
    fn now(&self) -> time::Instant {
        time::Instant::ZERO + time::Duration::from(self.start.elapsed())
    }

    fn flush(&mut self) -> Result<(), String> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = self.session.poll_transmit(&mut buf);
            if n == 0 {
                return Ok(());
            }
            self.stream
                .write_all(&buf[..n])
                .map_err(|e| format!("write: {e}"))?;
        }
    }

    /// One turn of the loop: transmit, expire timers, read once (at most a second), feed the
    /// bytes line by line, and hand every event to `f` until it returns `Some`.
    fn turn<T>(
        &mut self,
        f: &mut impl FnMut(&Event<'_>) -> Result<Option<T>, String>,
    ) -> Result<Option<T>, String> {
        self.flush()?;
        self.session.handle_timeout(self.now());
        if let Some(t) = self.drain(f)? {
            return Ok(Some(t));
        }
        while !self.unfed.is_empty() {
            let used = self.session.handle_input(self.now(), &self.unfed);
            self.unfed.drain(..used);
            if let Some(t) = self.drain(f)? {
                return Ok(Some(t));
            }
        }
        self.flush()?;
        let now = self.now();
        let wait = self
            .session
            .poll_timeout()
            .map_or(1000, |t| (t - now).millis().clamp(1, 1000));
        self.stream
            .set_read_timeout(Some(Duration::from_millis(wait)))
            .map_err(|e| e.to_string())?;
        let mut rx = vec![0u8; 64 * 1024];
        match self.stream.read(&mut rx) {
            Ok(0) => Err("server closed the connection".into()),
            Ok(n) => {
                self.unfed.extend_from_slice(&rx[..n]);
                Ok(None)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    fn drain<T>(
        &mut self,
        f: &mut impl FnMut(&Event<'_>) -> Result<Option<T>, String>,
    ) -> Result<Option<T>, String> {
        while let Some(ev) = self.session.poll_event() {
            if let Event::Failed(e) = ev {
                return Err(format!("session failed: {e}"));
            }
            if let Some(t) = f(&ev)? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }

    /// Turns until `f` returns `Some`, or fails after [`TIMEOUT`].
    fn until<T>(
        &mut self,
        mut f: impl FnMut(&Event<'_>) -> Result<Option<T>, String>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if let Some(t) = self.turn(&mut f)? {
                return Ok(t);
            }
        }
        Err("timed out".into())
    }

    /// Sends a request and returns its raw result.
    fn call(&mut self, request: &Request<'_>) -> Result<Vec<u8>, String> {
        let id = self
            .session
            .request(self.now(), request, 0)
            .map_err(|e| e.to_string())?;
        self.until(|ev| match *ev {
            Event::Response { id: i, result, .. } if i == id => Ok(Some(result.to_vec())),
            Event::ServerError { id: i, error, .. } if i == id => Err(format!(
                "server error {:?}: {}",
                error.code,
                String::from_utf8_lossy(error.message)
            )),
            Event::TimedOut { id: i, .. } if i == id => Err("request timed out".into()),
            _ => Ok(None),
        })
    }
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let params = args.network.params();
    let stream = TcpStream::connect(&args.server).map_err(|e| format!("{}: {e}", args.server))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut d = Driver {
        stream,
        session: Box::new(Client::new(
            SessionStorage::owned(576 * 1024, 64 * 1024, 64),
            Config::new(params),
            time::Instant::ZERO,
        )),
        start: Instant::now(),
        unfed: Vec::new(),
    };
    let version = d.until(|ev| {
        Ok(if let Event::Ready { version } = ev {
            Some(*version)
        } else {
            None
        })
    })?;

    // Headers from genesis, verified and accumulated, in chunks of at most 2016.
    let (tip, _) = response::headers_subscribe(&d.call(&Request::HeadersSubscribe)?)
        .map_err(|e| e.to_string())?;
    let mut verifier = HeaderVerifier::new(params, Anchor::genesis(params));
    let mut acc = MerkleAccumulator::new();
    let mut start = 0;
    while start <= tip {
        let count = (tip - start + 1).min(MAX_HEADERS_PER_REQUEST);
        let raw = d.call(&Request::BlockHeaders {
            start_height: start,
            count,
            cp_height: 0,
        })?;
        let chunk =
            response::block_headers(&raw).map_err(|e| format!("headers at {start}: {e}"))?;
        if chunk.count != count {
            return Err(format!(
                "server returned {} headers at {start}, asked {count}",
                chunk.count
            ));
        }
        for header in chunk.headers() {
            let header = header.map_err(|e| format!("headers at {start}: {e}"))?;
            let hash = verifier.push(&header).map_err(|e| format!("header {e}"))?;
            acc.push_block_hash(&hash).map_err(|e| format!("{e:?}"))?;
        }
        start += count;
    }
    let tip_hash = verifier.tip().ok_or("no headers")?.hash;
    let root = acc.root().ok_or("no headers")?;

    // Every script: verified history.
    let mut tracker = Tracker::new(Table(Vec::new()), Table(Vec::new()));
    tracker.set_max_in_flight(48);
    for hash in &args.scripts {
        tracker
            .add(ScriptRef::Hash(*hash))
            .map_err(|e| e.to_string())?;
    }
    tracker.set_checkpoint(tip, root);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = d.now();
        tracker
            .poll(now, &mut *d.session)
            .map_err(|e| e.to_string())?;
        if tracker.is_synced() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "history not verified in time: {:?}",
                tracker.stats()
            ));
        }
        let mut lie = None;
        d.turn(&mut |ev: &Event<'_>| {
            let found = tracker.handle_event(version, ev);
            if let Some(TrackerEvent::ServerLied {
                script, lie: what, ..
            }) = found
            {
                lie = Some(format!(
                    "script {}: server lied: {what:?}",
                    args.scripts[script]
                ));
            }
            if let Some(TrackerEvent::Full { .. }) = found {
                lie = Some("history larger than the tracker's table".into());
            }
            while tracker.poll_event().is_some() {}
            Ok(found.map(|_| ()))
        })?;
        if let Some(l) = lie {
            return Err(l);
        }
    }

    for (i, hash) in args.scripts.iter().enumerate() {
        let mut history: Vec<_> = tracker.history(i).collect();
        // Chain order: confirmed by height and position in the block (the merkle proof fixes
        // it), then the mempool in the protocol's canonical order: height 0 before -1,
        // ascending display-order txid.
        history.sort_by_key(|e| {
            let position = tracker.chain_position(i, &e.txid);
            (
                position.is_none(),
                position,
                -e.height.to_i64(),
                e.txid.to_string(),
            )
        });
        let items: Vec<serde_json::Value> = history
            .iter()
            .map(|e| {
                serde_json::json!({
                    "tx_hash": e.txid.to_string(),
                    "height": e.height.to_i64(),
                    "block_hash": e.block.map(|b| b.hash.to_string()),
                    "block_time": e.block.map(|b| b.time),
                })
            })
            .collect();
        let status = tracker.verified_status(i).flatten().map(|s| s.to_string());
        let line = serde_json::json!({
            "scripthash": hash.to_string(),
            "status": status,
            "history": items,
            "tip": {"height": tip, "hash": tip_hash.to_string()},
        });
        println!("{line}");
    }
    Ok(())
}
