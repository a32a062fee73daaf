//! Helpers shared by the adapter's tests.

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
