//! `tracing` events of the adapter (feature `tracing`, off by default): one macro per level
//! that expands to `tracing`'s with the feature and to nothing without it, so the call sites
//! need no `cfg` of their own and a build without the feature carries no trace of them.
//!
//! Events (target `electrum_spv`): `connected` (server, negotiated version), `plain version`
//! (a server that refused a version range, asked again as "1.4"), `reorg` (a chain replaced by
//! one with more work), `paced` (a request held back by a pacing bucket, and for how long),
//! `dropped` (a server the pool stopped using, and why).

/// An info-level event.
macro_rules! event_info {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::info!(target: "electrum_spv", $($arg)*);
    };
}

/// A warn-level event.
macro_rules! event_warn {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::warn!(target: "electrum_spv", $($arg)*);
    };
}

/// A debug-level event.
macro_rules! event_debug {
    ($($arg:tt)*) => {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "electrum_spv", $($arg)*);
    };
}

pub(crate) use {event_debug, event_info, event_warn};
