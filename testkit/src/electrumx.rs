//! Installs and runs a real ElectrumX against a stand-in bitcoind: 2.0 (PyPI package `e-x`)
//! by default, or an older release by version ([`ElectrumX::start_version`], [`VERSIONS`]),
//! each in its own venv.

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

/// How long [`ElectrumX::start`] waits for ElectrumX to index the stand-in's tip.
pub const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The venv holding ElectrumX: `$ELECTRUMX_VENV` if set, else `target/testkit-venv` under
/// the workspace root.
pub fn venv_dir() -> PathBuf {
    if let Some(v) = std::env::var_os("ELECTRUMX_VENV") {
        return PathBuf::from(v);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("target")
        .join("testkit-venv")
}

/// Makes sure the venv holds ElectrumX (`e-x`) and `plyvel`: creates it with
/// `python3 -m venv` and runs `pip install -q e-x plyvel` if `bin/electrumx_server` is
/// missing. Serialised across processes by an `flock` on `<venv>.lock`. Returns the path of
/// the `electrumx_server` entry point.
pub fn ensure_venv() -> Result<PathBuf, Error> {
    install_into(&venv_dir(), "e-x")
}

/// The ElectrumX releases [`ElectrumX::start_version`] knows, oldest first: spesmilo's `e-x`
/// 1.16.0, 1.18.0, 1.20.0 and 2.0.0, and kyuupichan's last release, `electrumx` 1.15.0,
/// named `kyuupichan-1.15.0`.
pub const VERSIONS: &[&str] = &["kyuupichan-1.15.0", "1.16.0", "1.18.0", "1.20.0", "2.0.0"];

/// The default release ([`ElectrumX::start`]), whose venv is [`venv_dir`].
pub const DEFAULT_VERSION: &str = "2.0.0";

/// The pip requirement installing `version` (one of [`VERSIONS`]): `e-x==X` for spesmilo's
/// releases, `electrumx==X` for `kyuupichan-X`; `e-x` for [`DEFAULT_VERSION`], as
/// [`ensure_venv`] installs it.
pub fn requirement(version: &str) -> Result<String, Error> {
    if !VERSIONS.contains(&version) {
        return Err(Error::msg(format!(
            "unknown ElectrumX version {version} (known: {})",
            VERSIONS.join(", ")
        )));
    }
    Ok(if version == DEFAULT_VERSION {
        "e-x".to_owned()
    } else if let Some(v) = version.strip_prefix("kyuupichan-") {
        format!("electrumx=={v}")
    } else {
        format!("e-x=={version}")
    })
}

/// The venv of `version`: [`venv_dir`] for [`DEFAULT_VERSION`], else
/// `target/testkit-venv-<version>` under the workspace root (`$ELECTRUMX_VENV-<version>` if
/// that is set).
pub fn venv_dir_for(version: &str) -> PathBuf {
    let base = venv_dir();
    if version == DEFAULT_VERSION {
        return base;
    }
    let mut name = base.file_name().unwrap_or_default().to_owned();
    name.push(format!("-{version}"));
    base.with_file_name(name)
}

/// As [`ensure_venv`], for `version` (one of [`VERSIONS`]) in [`venv_dir_for`]`(version)`.
pub fn ensure_venv_version(version: &str) -> Result<PathBuf, Error> {
    let req = requirement(version)?;
    install_into(&venv_dir_for(version), &req)
}

/// Creates `venv` and pip-installs `requirement` and `plyvel` into it unless
/// `bin/electrumx_server` exists, under an `flock` on `<venv>.lock`.
fn install_into(venv: &Path, requirement: &str) -> Result<PathBuf, Error> {
    let server = venv.join("bin").join("electrumx_server");
    if server.exists() {
        return Ok(server);
    }
    let ctx = |what: &str, p: &Path, e: std::io::Error| {
        Error::msg(format!(
            "cannot install ElectrumX into {}: {what} {}: {e}",
            venv.display(),
            p.display()
        ))
    };
    if let Some(parent) = venv.parent() {
        fs::create_dir_all(parent).map_err(|e| ctx("create", parent, e))?;
    }
    locked(&venv.with_extension("lock"), || {
        if server.exists() {
            return Ok(server.clone());
        }
        let python = venv.join("bin").join("python3");
        if !python.exists() {
            run_quiet(
                Command::new("python3").arg("-m").arg("venv").arg(venv),
                "python3 -m venv (is python3 with the venv module installed? on Debian: apt-get install python3-venv)",
            )?;
        }
        run_quiet(
            Command::new(venv.join("bin").join("pip")).args([
                "install",
                "-q",
                "--disable-pip-version-check",
                requirement,
                "plyvel",
            ]),
            &format!("pip install {requirement} plyvel (needs PyPI)"),
        )?;
        if !server.exists() {
            return Err(Error::msg(format!(
                "pip installed {requirement} but {} does not exist",
                server.display()
            )));
        }
        Ok(server.clone())
    })
}

fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A running ElectrumX (its own process group, fresh DB in a temporary directory) serving
/// plain TCP and TLS (a certificate from a test CA made for it) on 127.0.0.1. Dropping it kills
/// the process group and removes the directory.
pub struct ElectrumX {
    server: PathBuf,
    coin: &'static str,
    child: GroupChild,
    addr: SocketAddr,
    ssl_addr: SocketAddr,
    certificate: Vec<u8>,
    dir: TempDir,
}

/// A test CA and a server certificate it issued for `localhost` and `127.0.0.1`.
struct Certificates {
    /// The server certificate, DER.
    der: Vec<u8>,
    /// The server certificate, PEM.
    pem: String,
    /// The server's private key, PEM.
    key_pem: String,
    /// The issuing CA's certificate, PEM.
    ca_pem: String,
}

fn certificates() -> Result<Certificates, Error> {
    let e = |e: rcgen::Error| Error::msg(format!("cannot make a certificate: {e}"));
    let ca_key = rcgen::KeyPair::generate().map_err(e)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "electrum-spv test CA");
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    let key = rcgen::KeyPair::generate().map_err(e)?;
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(e)?;
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(e)?;
    Ok(Certificates {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: ca.pem(),
    })
}

/// Runs `electrumx_server` in `dir` (database in `dir/db`, log appended to
/// `dir/electrumx.log`, certificate `dir/server.crt`) serving TCP on `addr` and TLS on
/// `ssl_addr`.
fn launch(
    server: &Path,
    coin: &str,
    bitcoind: &StandInBitcoind,
    dir: &Path,
    addr: SocketAddr,
    ssl_addr: SocketAddr,
) -> Result<GroupChild, Error> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("electrumx.log"))?;
    // Run by the venv's interpreter: releases before 2.0 install `electrumx_server` as a plain
    // script (mode 0644, `#!/usr/bin/env python3`), not as an entry point.
    let python = server.with_file_name("python3");
    let mut cmd = Command::new(&python);
    cmd.arg(server)
        .env("COIN", coin)
        .env("NET", "regtest")
        .env("DB_ENGINE", "leveldb")
        .env("DB_DIRECTORY", dir.join("db"))
        .env("DAEMON_URL", bitcoind.url())
        .env("SERVICES", format!("tcp://{addr},ssl://{ssl_addr}"))
        .env("SSL_CERTFILE", dir.join("server.crt"))
        .env("SSL_KEYFILE", dir.join("server.key"))
        .env("ALLOW_ROOT", "1")
        .env("PEER_DISCOVERY", "off")
        .env("PEER_ANNOUNCE", "")
        .env("CACHE_MB", "50")
        .env("LOG_LEVEL", "info")
        .env("DAEMON_POLL_INTERVAL_BLOCKS", "100")
        .env("DAEMON_POLL_INTERVAL_MEMPOOL", "100")
        .env("COST_SOFT_LIMIT", "0")
        .env("COST_HARD_LIMIT", "0")
        .env("INITIAL_CONCURRENT", "1000")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    GroupChild::spawn(&mut cmd)
        .map_err(|e| Error::msg(format!("cannot run {}: {e}", server.display())))
}

impl ElectrumX {
    /// Installs ElectrumX if needed ([`ensure_venv`]), starts it against `bitcoind` on a
    /// free port and waits (up to [`START_TIMEOUT`]) until it reports the stand-in's tip.
    /// Retries (up to 3 times) if the chosen port was taken meanwhile.
    pub fn start(bitcoind: &StandInBitcoind) -> Result<ElectrumX, Error> {
        ElectrumX::start_server(ensure_venv()?, "Bitcoin", bitcoind)
    }

    /// As [`ElectrumX::start`], running release `version` (one of [`VERSIONS`]), installed
    /// first if needed into its own venv ([`ensure_venv_version`]).
    pub fn start_version(version: &str, bitcoind: &StandInBitcoind) -> Result<ElectrumX, Error> {
        // kyuupichan's releases call BTC "BitcoinSegwit" ("Bitcoin" is not a coin there).
        let coin = if version.starts_with("kyuupichan-") {
            "BitcoinSegwit"
        } else {
            "Bitcoin"
        };
        ElectrumX::start_server(ensure_venv_version(version)?, coin, bitcoind)
    }

    fn start_server(
        server: PathBuf,
        coin: &'static str,
        bitcoind: &StandInBitcoind,
    ) -> Result<ElectrumX, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut ex = ElectrumX::spawn(&server, coin, bitcoind)?;
            let (height, _) = bitcoind.tip();
            match ex.wait_for_height(height, START_TIMEOUT) {
                Ok(()) => return Ok(ex),
                Err(e) => {
                    let port_taken = ex.log_tail(20_000).contains("already in use");
                    if !(port_taken && attempt < 3) {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn spawn(
        server: &Path,
        coin: &'static str,
        bitcoind: &StandInBitcoind,
    ) -> Result<ElectrumX, Error> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-electrumx-")
            .tempdir()?;
        fs::create_dir_all(dir.path().join("db"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let ssl_addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
        let certs = certificates()?;
        fs::write(dir.path().join("server.crt"), &certs.pem)?;
        fs::write(dir.path().join("server.key"), &certs.key_pem)?;
        fs::write(dir.path().join("ca.crt"), &certs.ca_pem)?;
        let certificate = certs.der;
        let child = launch(server, coin, bitcoind, dir.path(), addr, ssl_addr)?;
        Ok(ElectrumX {
            server: server.to_owned(),
            coin,
            child,
            addr,
            ssl_addr,
            certificate,
            dir,
        })
    }

    /// Starts ElectrumX again after [`ElectrumX::kill`] (or a crash): same ports, same
    /// database, same certificate; waits until it serves the stand-in's tip.
    pub fn restart(&mut self, bitcoind: &StandInBitcoind) -> Result<(), Error> {
        self.kill();
        self.child = launch(
            &self.server,
            self.coin,
            bitcoind,
            self.dir.path(),
            self.addr,
            self.ssl_addr,
        )?;
        let (height, _) = bitcoind.tip();
        self.wait_for_height(height, START_TIMEOUT)
    }

    /// The Electrum TCP address (newline-framed JSON-RPC, no TLS).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Electrum TLS address (self-signed certificate, see [`ElectrumX::certificate`]).
    pub fn ssl_addr(&self) -> SocketAddr {
        self.ssl_addr
    }

    /// The PEM file of the test CA that issued ElectrumX's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The DER encoding of the TLS certificate ElectrumX presents.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// ElectrumX's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("electrumx.log")
    }

    /// The last `n` bytes of ElectrumX's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        tail(&text, n).to_owned()
    }

    /// Waits until `blockchain.headers.subscribe` reports `height` (polling a fresh
    /// connection), failing if ElectrumX exits or `timeout` passes.
    pub fn wait_for_height(&mut self, height: u32, timeout: Duration) -> Result<(), Error> {
        let log = self.log_path();
        wait_for_tip(
            "ElectrumX",
            &mut self.child,
            self.addr,
            &log,
            height,
            timeout,
        )
    }
}

impl ElectrumX {
    /// Kills ElectrumX now (SIGKILL to its process group), as a crash would.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}
