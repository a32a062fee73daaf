//! `electrum-spv-ffi`: the C ABI for firmware and the uniffi API for apps.
//!
//! Status: placeholder. The C ABI (`espv_*`, caller-owned memory, no allocation) and the uniffi
//! bindings are tracked as their own issue.

pub use electrum_spv_core as core;
