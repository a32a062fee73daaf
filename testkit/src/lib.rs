//! Test kit for electrum-spv: lets tests talk to a real ElectrumX on 127.0.0.1 over a
//! deterministic regtest chain.
//!
//! * [`chain`]: the chain builder (fixed keys, fixed timestamps, real signed transactions of
//!   four script kinds, mining, mempool, reorgs) and the Electrum records a server should
//!   report for any script (history, status, balance, utxos), computed independently of
//!   ElectrumX.
//! * [`StandInBitcoind`]: a bitcoind-compatible JSON-RPC server over that chain, with a
//!   control API for tests.
//! * [`ElectrumX`]: installs (once, into a cached venv) and runs ElectrumX 2.0 against the
//!   stand-in, or an older release of [`VERSIONS`] (each in its own venv).
//! * [`Harness`]: both, over [`Chain::funded`].
//! * [`p2p_peer::ScriptedPeer`]: a scripted Bitcoin P2P peer, honest or hostile in a chosen
//!   way, for the P2P pool's tests.
//! * [`socks::Socks5Proxy`]: a SOCKS5 proxy that records what it was asked to reach.
//! * [`liar::LyingProxy`]: a man-in-the-middle in front of ElectrumX that rewrites its
//!   answers by a scripted [`liar::Attack`] (forged proofs, wrong statuses, broken headers,
//!   malformed or hostile lines), for adversarial tests.
//! * [`replay::ReplayServer`]: an electrs-like server answering from real mainnet data only
//!   (headers, blocks 0..=438 and 830000), honest or telling a chosen [`replay::ReplayLie`].
//! * [`bcoin`]: installs (once) and runs bcoin 1.0.2 full nodes on regtest, real Bitcoin P2P
//!   peers: [`bcoin::BcoinNet`] (nodes in a line, a funded chain) and [`bcoin::Spender`]
//!   (signed P2PKH transactions in batches).
//!
//! Every server binds 127.0.0.1 only and is stopped on drop (also when a test panics).

pub mod bcoin;
pub mod chain;
mod daemon_p2p;
pub mod driver;
mod electrs;
mod electrum;
mod electrumx;
mod install;
pub mod liar;
pub mod p2p_peer;
mod process;
pub mod replay;
mod rpc;
pub mod socks;
pub mod tracker_run;

use std::fmt;

pub use chain::{
    Balance, Chain, CoinOrder, OutpointStatus, ReorgTxs, ScriptKind, SendSpec, Utxo, Wallet,
};
pub use electrs::{ELECTRS_START_TIMEOUT, ELECTRS_VERSION, Electrs, electrs_root, ensure_electrs};
pub use electrumx::{
    DEFAULT_VERSION, ElectrumX, START_TIMEOUT, VERSIONS, ensure_venv, ensure_venv_version,
    requirement, venv_dir, venv_dir_for,
};
pub use rpc::{DAEMON_VERSION, ESTIMATED_FEERATE, METHODS, RELAY_FEE, StandInBitcoind};

/// The kit's error: a message, and the bitcoind RPC error code when it is a rejection that
/// the stand-in reports over JSON-RPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// bitcoind RPC error code (e.g. -25, -26), if any.
    pub code: Option<i64>,
    /// What went wrong.
    pub message: String,
}

impl Error {
    /// An error with a message only.
    pub fn msg(message: impl Into<String>) -> Error {
        Error {
            code: None,
            message: message.into(),
        }
    }

    /// An error carrying a bitcoind RPC error code.
    pub fn rpc(code: i64, message: &str) -> Error {
        Error {
            code: Some(code),
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "{} (code {c})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::msg(format!("i/o: {e}"))
    }
}

/// A stand-in bitcoind over [`Chain::funded`] and a real ElectrumX indexing it.
///
/// Fields drop in order: ElectrumX is stopped before the stand-in.
pub struct Harness {
    /// The ElectrumX server.
    pub electrumx: ElectrumX,
    /// The stand-in bitcoind and the kit's chain.
    pub bitcoind: StandInBitcoind,
}

impl Harness {
    /// Starts the stand-in over [`Chain::funded`] and ElectrumX against it, and waits until
    /// ElectrumX has indexed the tip. Installs ElectrumX first if needed (see
    /// [`ensure_venv`]).
    pub fn start() -> Result<Harness, Error> {
        Harness::start_with(Chain::funded()?)
    }

    /// As [`Harness::start`], running ElectrumX release `version` (one of [`VERSIONS`]; see
    /// [`ElectrumX::start_version`]).
    pub fn start_version(version: &str) -> Result<Harness, Error> {
        let bitcoind = StandInBitcoind::start(Chain::funded()?)?;
        let electrumx = ElectrumX::start_version(version, &bitcoind)?;
        Ok(Harness {
            electrumx,
            bitcoind,
        })
    }

    /// As [`Harness::start`], over the given chain.
    pub fn start_with(chain: Chain) -> Result<Harness, Error> {
        let bitcoind = StandInBitcoind::start(chain)?;
        let electrumx = ElectrumX::start(&bitcoind)?;
        Ok(Harness {
            electrumx,
            bitcoind,
        })
    }

    /// The ElectrumX TCP address (newline-framed JSON-RPC, no TLS).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.electrumx.addr()
    }
}

/// A server implementation the interop matrix runs: an ElectrumX release of [`VERSIONS`], or
/// electrs [`ELECTRS_VERSION`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Implementation {
    /// ElectrumX at this version (one of [`VERSIONS`]).
    ElectrumX(String),
    /// electrs (romanz) [`ELECTRS_VERSION`].
    Electrs,
}

impl Implementation {
    /// Every implementation the kit runs: each ElectrumX of [`VERSIONS`], then electrs.
    pub fn all() -> Vec<Implementation> {
        VERSIONS
            .iter()
            .map(|v| Implementation::ElectrumX((*v).to_owned()))
            .chain([Implementation::Electrs])
            .collect()
    }

    /// Its name, as [`Implementation::parse`] reads it: `electrumx-<version>` or
    /// `electrs-<version>`.
    pub fn name(&self) -> String {
        match self {
            Implementation::ElectrumX(v) => format!("electrumx-{v}"),
            Implementation::Electrs => format!("electrs-{ELECTRS_VERSION}"),
        }
    }

    /// The implementation named `name` (see [`Implementation::name`]).
    pub fn parse(name: &str) -> Result<Implementation, Error> {
        Implementation::all()
            .into_iter()
            .find(|i| i.name() == name)
            .ok_or_else(|| {
                let known: Vec<String> = Implementation::all().iter().map(|i| i.name()).collect();
                Error::msg(format!(
                    "unknown server {name} (known: {})",
                    known.join(", ")
                ))
            })
    }
}

/// A running server of any [`Implementation`].
pub enum Server {
    /// An ElectrumX.
    ElectrumX(ElectrumX),
    /// An electrs.
    Electrs(Electrs),
}

impl Server {
    /// Installs `implementation` if needed and starts it against `bitcoind`, waiting until it
    /// serves the stand-in's tip.
    pub fn start(
        implementation: &Implementation,
        bitcoind: &StandInBitcoind,
    ) -> Result<Server, Error> {
        Ok(match implementation {
            Implementation::ElectrumX(v) => {
                Server::ElectrumX(ElectrumX::start_version(v, bitcoind)?)
            }
            Implementation::Electrs => Server::Electrs(Electrs::start(bitcoind)?),
        })
    }

    /// The Electrum TCP address (newline-framed JSON-RPC, no TLS).
    pub fn addr(&self) -> std::net::SocketAddr {
        match self {
            Server::ElectrumX(s) => s.addr(),
            Server::Electrs(s) => s.addr(),
        }
    }

    /// Waits until the server reports `height`.
    pub fn wait_for_height(
        &mut self,
        height: u32,
        timeout: std::time::Duration,
    ) -> Result<(), Error> {
        match self {
            Server::ElectrumX(s) => s.wait_for_height(height, timeout),
            Server::Electrs(s) => s.wait_for_height(height, timeout),
        }
    }
}

/// A stand-in bitcoind over [`Chain::funded`] and a server of any [`Implementation`] indexing
/// it (what [`Harness`] is for ElectrumX 2.0).
///
/// Fields drop in order: the server is stopped before the stand-in.
pub struct ServerHarness {
    /// What runs.
    pub implementation: Implementation,
    /// The server.
    pub server: Server,
    /// The stand-in bitcoind and the kit's chain.
    pub bitcoind: StandInBitcoind,
}

impl ServerHarness {
    /// Starts the stand-in over [`Chain::funded`] and `implementation` against it.
    pub fn start(implementation: &Implementation) -> Result<ServerHarness, Error> {
        let bitcoind = StandInBitcoind::start(Chain::funded()?)?;
        let server = Server::start(implementation, &bitcoind)?;
        Ok(ServerHarness {
            implementation: implementation.clone(),
            server,
            bitcoind,
        })
    }

    /// The server's Electrum TCP address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }
}

/// The path of example `name` of the package under test: `cargo test` builds a package's
/// examples before its tests, into `target/<profile>/examples`, next to the test binary's
/// `deps` directory. Panics, naming the path, when it is missing.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run through `cargo test`, which builds the examples",
        path.display()
    );
    path
}

/// The peak resident set (`VmHWM`) of this process so far, in KiB (Linux `/proc`): what the
/// benchmarks report for each side, each measured in a child process of its own.
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// This process's resident set now, split into private anonymous memory (`RssAnon`: heap,
/// stacks) and file-backed pages (`RssFile`: the code and read-only data it has touched,
/// shared with any other process mapping the same file), in KiB.
pub fn rss_split_kib() -> (u64, u64) {
    (proc_status_kib("RssAnon:"), proc_status_kib("RssFile:"))
}

/// A `kB` field of `/proc/self/status`.
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}
