//! Installs and runs a real electrs (romanz, crates.io) against the stand-in bitcoind: its
//! JSON-RPC, and its P2P port ([`StandInBitcoind::serve_p2p`]), over which electrs reads every
//! block.

use std::fs::{self, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::electrum::wait_for_tip;
use crate::install::{locked, run_quiet, tail};
use crate::process::GroupChild;
use crate::{Error, StandInBitcoind};

/// The electrs release the kit builds.
pub const ELECTRS_VERSION: &str = "0.10.10";

/// How long [`Electrs::start`] waits for electrs to index the stand-in's tip.
pub const ELECTRS_START_TIMEOUT: Duration = Duration::from_secs(90);

/// Where the kit installs electrs: `$ELECTRS_ROOT` if set, else `target/testkit-electrs` under
/// the workspace root (the binary is `bin/electrs` below it).
pub fn electrs_root() -> PathBuf {
    if let Some(v) = std::env::var_os("ELECTRS_ROOT") {
        return PathBuf::from(v);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("target")
        .join("testkit-electrs")
}

/// Makes sure electrs [`ELECTRS_VERSION`] is built: `cargo install electrs --locked` into
/// [`electrs_root`], linking Debian's `librocksdb-dev` instead of compiling RocksDB (needs
/// `librocksdb-dev`, `clang` and `libclang-dev`; `scripts/setup.sh` installs them). About 3
/// minutes on 2 cores the first time; the build directory is removed afterwards. Serialised
/// across processes by an `flock` on `<root>.lock`. Returns the binary's path.
pub fn ensure_electrs() -> Result<PathBuf, Error> {
    let root = electrs_root();
    let bin = root.join("bin").join("electrs");
    let lock = root.with_extension("lock");
    locked(&lock, || {
        if installed_version(&bin).as_deref() == Some(ELECTRS_VERSION) {
            return Ok(bin.clone());
        }
        let build = root.join("build");
        run_quiet(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "install",
                    "electrs",
                    "--version",
                    ELECTRS_VERSION,
                    "--locked",
                ])
                .arg("--root")
                .arg(&root)
                .env("CARGO_TARGET_DIR", &build)
                .env("ROCKSDB_INCLUDE_DIR", "/usr/include")
                .env("ROCKSDB_LIB_DIR", "/usr/lib/x86_64-linux-gnu"),
            "cargo install electrs (needs Debian's librocksdb-dev, clang, libclang-dev)",
        )?;
        let _ = fs::remove_dir_all(&build);
        match installed_version(&bin) {
            Some(v) if v == ELECTRS_VERSION => Ok(bin.clone()),
            other => Err(Error::msg(format!(
                "{} reports version {other:?} after the install, not {ELECTRS_VERSION}",
                bin.display()
            ))),
        }
    })
}

/// The version `electrs --version` prints (`v0.10.10` → `0.10.10`), if it runs.
fn installed_version(bin: &Path) -> Option<String> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.trim().trim_start_matches('v').to_owned())
}

fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A running electrs (its own process group, fresh index in a temporary directory) serving
/// Electrum over plain TCP on 127.0.0.1. Dropping it kills the process group and removes the
/// directory.
pub struct Electrs {
    child: GroupChild,
    addr: SocketAddr,
    dir: TempDir,
}

impl Electrs {
    /// Builds electrs if needed ([`ensure_electrs`]), opens the stand-in's P2P port, starts
    /// electrs against both on a free port and waits (up to [`ELECTRS_START_TIMEOUT`]) until
    /// it reports the stand-in's tip. Retries (up to 3 times) if a chosen port was taken
    /// meanwhile.
    pub fn start(bitcoind: &StandInBitcoind) -> Result<Electrs, Error> {
        let bin = ensure_electrs()?;
        let p2p = bitcoind.serve_p2p()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut e = Electrs::spawn(&bin, bitcoind, p2p)?;
            let (height, _) = bitcoind.tip();
            match e.wait_for_height(height, ELECTRS_START_TIMEOUT) {
                Ok(()) => return Ok(e),
                Err(err) => {
                    let port_taken = e.log_tail(20_000).contains("Address already in use");
                    if !(port_taken && attempt < 3) {
                        return Err(err);
                    }
                }
            }
        }
    }

    fn spawn(bin: &Path, bitcoind: &StandInBitcoind, p2p: SocketAddr) -> Result<Electrs, Error> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-electrs-")
            .tempdir()?;
        fs::create_dir_all(dir.path().join("db"))?;
        // The stand-in accepts any credentials; electrs 0.10 takes them only from a cookie
        // file (or a config file).
        let cookie = dir.path().join("cookie");
        fs::write(&cookie, "user:pass")?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let monitoring: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("electrs.log"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("--skip-default-conf-files")
            .args(["--network", "regtest"])
            .arg("--db-dir")
            .arg(dir.path().join("db"))
            .arg("--daemon-dir")
            .arg(dir.path())
            .arg("--cookie-file")
            .arg(&cookie)
            .args(["--daemon-rpc-addr", &bitcoind.addr().to_string()])
            .args(["--daemon-p2p-addr", &p2p.to_string()])
            .args(["--electrum-rpc-addr", &addr.to_string()])
            .args(["--monitoring-addr", &monitoring.to_string()])
            // Poll the daemon often: a test mines and waits for the notification.
            .args(["--wait-duration-secs", "1"])
            .args(["--jsonrpc-timeout-secs", "10"])
            .args(["--log-filters", "INFO"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = GroupChild::spawn(&mut cmd)
            .map_err(|e| Error::msg(format!("cannot run {}: {e}", bin.display())))?;
        Ok(Electrs { child, addr, dir })
    }

    /// The Electrum TCP address (newline-framed JSON-RPC, no TLS).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// electrs' log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("electrs.log")
    }

    /// The last `n` bytes of electrs' log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        tail(&text, n).to_owned()
    }

    /// Waits until `blockchain.headers.subscribe` reports `height` (polling a fresh
    /// connection), failing if electrs exits or `timeout` passes.
    pub fn wait_for_height(&mut self, height: u32, timeout: Duration) -> Result<(), Error> {
        let log = self.log_path();
        wait_for_tip("electrs", &mut self.child, self.addr, &log, height, timeout)
    }
}
