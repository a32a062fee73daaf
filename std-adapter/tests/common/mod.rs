//! Helpers shared by the adapter's tests.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use electrum_spv::{ServerAddr, Transport};

/// A multi-threaded runtime with two workers, timers and I/O.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The plain-TCP server address of a socket address.
pub fn tcp(addr: std::net::SocketAddr) -> ServerAddr {
    ServerAddr::new(Transport::Tcp, addr.ip().to_string(), addr.port())
}

/// The `electrum-spv` CLI on regtest against the plain-TCP server at `addr`.
pub fn cli(addr: std::net::SocketAddr) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_electrum-spv"));
    c.args(["--network", "regtest", "--server", &format!("tcp://{addr}")]);
    c
}
