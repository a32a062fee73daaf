//! [`BlockingChainSource`]: the chain source for callers without an async runtime (it runs
//! its own).

use bdk_core::spk_client::{FullScanRequest, FullScanResponse, SyncRequest, SyncResponse};
use bitcoin::{Transaction, Txid};
use electrum_spv::{PoolConfig, ServerAddr};

use crate::error::Error;
use crate::source::{ChainSource, ScanOptions};

/// [`ChainSource`] behind blocking calls, on a runtime of its own (two worker threads).
/// Do not call it from inside an async runtime: use [`ChainSource`] there.
pub struct BlockingChainSource {
    runtime: tokio::runtime::Runtime,
    inner: ChainSource,
}

impl BlockingChainSource {
    /// Connects a pool to `servers` (see [`ChainSource::connect`]).
    ///
    /// # Errors
    /// As [`ChainSource::connect`]; [`Error::Client`] with an I/O error when the runtime
    /// cannot start.
    pub fn connect(servers: &[ServerAddr], config: PoolConfig) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Client(electrum_spv::Error::Io(e)))?;
        let inner = runtime.block_on(ChainSource::connect(servers, config))?;
        Ok(BlockingChainSource { runtime, inner })
    }

    /// The async chain source (its pool, to inspect members and dropped servers).
    pub fn inner(&self) -> &ChainSource {
        &self.inner
    }

    /// See [`ChainSource::full_scan`].
    ///
    /// # Errors
    /// As [`ChainSource::full_scan`].
    pub fn full_scan<K: Ord + Clone>(
        &self,
        request: impl Into<FullScanRequest<K>>,
        stop_gap: usize,
        options: &ScanOptions,
    ) -> Result<FullScanResponse<K>, Error> {
        self.runtime
            .block_on(self.inner.full_scan(request, stop_gap, options))
    }

    /// See [`ChainSource::sync`].
    ///
    /// # Errors
    /// As [`ChainSource::sync`].
    pub fn sync<I: 'static>(
        &self,
        request: impl Into<SyncRequest<I>>,
        options: &ScanOptions,
    ) -> Result<SyncResponse, Error> {
        self.runtime.block_on(self.inner.sync(request, options))
    }

    /// See [`ChainSource::broadcast`].
    ///
    /// # Errors
    /// As [`ChainSource::broadcast`].
    pub fn broadcast(&self, tx: &Transaction) -> Result<Txid, Error> {
        self.runtime.block_on(self.inner.broadcast(tx))
    }
}
