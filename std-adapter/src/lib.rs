//! `electrum-spv`: the tokio client over [`electrum_spv_core`].
//!
//! Status: placeholder. The adapter (TCP, TLS, SOCKS5/Tor, reconnect, pool, CLI) is tracked as
//! its own issue; today this crate re-exports the verifying core so downstream code can already
//! depend on the final crate name.

pub use electrum_spv_core as core;
