//! `electrum-spv`: an async (tokio) Electrum client over the sans-IO [`electrum_spv_core`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), electrum_spv::Error> {
//! use electrum_spv::{Client, ClientConfig, Network, ServerAddr};
//! let server: ServerAddr = "ssl://electrum.example:50002".parse().unwrap();
//! let client = Client::connect(&server, &ClientConfig::new(Network::Mainnet)).await?;
//! let (height, _header) = client.block_headers_subscribe().await?;
//! println!("tip {height}, protocol {}", client.protocol_version());
//! # Ok(()) }
//! ```
//!
//! * [`transport`]: TCP, TLS ([`tls`]: web PKI, custom CA, pinned certificate, trust on first
//!   use) and SOCKS5 ([`socks5`], names resolved by the proxy, so `.onion` works over Tor;
//!   optional username/password, which the pools use as Tor stream isolation keys).
//! * [`Client`]: one tokio task per connection drives a core `Session`; the handle is cheap to
//!   clone; calls are pipelined; notifications are a `Stream`.
//! * [`p2p`]: Bitcoin P2P connections ([`p2p::PeerPool`]): handshake, pings, announcements.
//! * [`verified`]: a header chain checked by the core verifier, and script histories whose
//!   every confirmed transaction is proven into it.
//!
//! Bounds: lines up to [`connection::MAX_LINE`] bytes, requests up to
//! [`connection::MAX_REQUEST`], [`connection::MAX_IN_FLIGHT`] requests in flight per
//! connection and [`ClientConfig::max_queued`] more waiting.

pub mod activity;
pub mod address;
pub mod checkpoints;
pub mod client;
mod clock;
pub mod connection;
pub mod discovery;
mod engine;
pub mod error;
pub mod fault;
pub mod header_chain;
pub mod header_store;
pub mod p2p;
pub mod pacing;
pub mod pool;
pub mod reconnect;
pub mod server;
pub mod server_list;
pub mod socks5;
mod subscriptions;
pub mod tls;
mod trace;
pub mod transport;
pub mod verified;
pub mod watch;

pub use client::{Client, ClientConfig, MerkleProof};
pub use connection::Notice;
pub use electrum_spv_core as core;
pub use electrum_spv_core::chain::Network;
pub use error::{Error, to_hex};
pub use fault::Fault;
pub use pool::{Dropped, MemberStatus, Pool, PoolConfig, SyncProgress};
pub use reconnect::ReconnectPolicy;
pub use server::{ServerAddr, Transport};
pub use server_list::{Filter, ServerEntry, ServerList};
pub use tls::TlsTrust;
pub use transport::ConnectOptions;
pub use verified::{
    HeaderChain, ScriptRef, VerifiedHistory, VerifiedTx, VerifiedUtxo, verified_histories,
    verified_history, verified_utxos,
};
