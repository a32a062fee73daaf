//! Header sync over P2P: [`PeerPool::sync_headers`] drives core's [`P2pHeaders`] with one
//! node's `headers` messages, so the headers are checked by the same
//! [`HeaderVerifier`] rules as the Electrum side.
//!
//! The node is asked with `getheaders` until it answers a message shorter than 2,000 headers
//! (it has nothing newer). A `getheaders` left unanswered until the connection's request
//! timeout counts as "nothing newer" too: bcoin does not answer one at its tip, where Core
//! answers an empty `headers`. A message lost because this reader fell behind the pool's event
//! channel is not the node's fault: the partial message is dropped and asked for again.

use std::time::Duration;

use electrum_spv_core::chain::HeaderVerifier;
use tokio::time::Instant;

use electrum_spv_core::chain::ChainTip;
use electrum_spv_core::p2p::{Command, HeadersStep, P2pHeaders, PeerEvent};
use tokio::sync::broadcast::error::RecvError;

use super::addr::NodeId;
use super::outgoing::OwnedMessage;
use super::pool::PeerPool;
use crate::error::Error;

/// Answers in a row that bring no new header before the sync stops with what it has (a node
/// that keeps sending what we cannot connect, or losing messages to bad checksums).
const MAX_IDLE_ROUNDS: u32 = 16;

impl PeerPool {
    /// Syncs `sync` with `node` until the node has nothing newer. Each message must come
    /// within `timeout`.
    ///
    /// # Errors
    /// [`Error::P2pHeaders`] for a header or message that breaks a rule (a proven fault of the
    /// node: a bad header, a `headers` message the reader refused, too many that do not
    /// connect), [`Error::Timeout`] if the node stops answering, [`Error::Disconnected`] as
    /// soon as it has no ready connection (at the start, or dropped during the sync).
    pub async fn sync_headers(
        &self,
        node: &NodeId,
        sync: &mut P2pHeaders,
        timeout: Duration,
    ) -> Result<(), Error> {
        self.sync_headers_with(node, sync, timeout, |_| {}).await
    }

    /// As [`PeerPool::sync_headers`], calling `on_header` with every header verified (the new
    /// tip), in order: to keep the hashes of the chain the node showed.
    ///
    /// # Errors
    /// As [`PeerPool::sync_headers`].
    pub async fn sync_headers_with(
        &self,
        node: &NodeId,
        sync: &mut P2pHeaders,
        timeout: Duration,
        mut on_header: impl FnMut(&ChainTip),
    ) -> Result<(), Error> {
        let mut events = self.events();
        let mut changes = self.changes();
        let mut idle = 0u32;
        let mut restarted = false;
        let mut asked_at = sync.tip().map(|t| t.height);
        let mut deadline = Instant::now() + timeout;
        self.request_headers(node, sync)?;
        loop {
            let received = tokio::select! {
                biased;
                received = tokio::time::timeout_at(deadline, events.recv()) => received,
                () = self.gone(node, &mut changes) => return Err(Error::Disconnected),
            };
            let event = match received {
                Err(_) => return Err(Error::Timeout),
                Ok(Err(RecvError::Closed)) => return Err(Error::Disconnected),
                Ok(Err(RecvError::Lagged(_))) => {
                    sync.abandon_message();
                    self.request_headers(node, sync)?;
                    deadline = Instant::now() + timeout;
                    continue;
                }
                Ok(Ok((from, event))) if &from == node => event,
                Ok(Ok(_)) => continue,
            };
            if let PeerEvent::RequestTimeout {
                command: Command::GetHeaders,
            } = event
            {
                return Ok(());
            }
            let tip_before = sync.tip().map(|t| t.hash);
            let step = sync.handle(&event).map_err(|fault| Error::P2pHeaders {
                peer: node.to_string(),
                fault,
            })?;
            if let Some(tip) = sync.tip().filter(|t| Some(t.hash) != tip_before) {
                on_header(tip);
                // A long message streaming in is progress, not silence.
                deadline = Instant::now() + timeout;
            }
            let step = match step {
                None => continue,
                Some(HeadersStep::Synced) => return Ok(()),
                Some(step) => step,
            };
            if step == HeadersStep::Unconnecting && !restarted {
                // Our tip is not on the node's chain (a reorg, or a stale branch): follow the
                // node's chain from the anchor, once.
                restarted = true;
                let verifier =
                    HeaderVerifier::new(sync.verifier().params(), *sync.verifier().anchor());
                *sync = P2pHeaders::new(verifier);
            }
            let now_at = sync.tip().map(|t| t.height);
            idle = if now_at == asked_at { idle + 1 } else { 0 };
            if idle >= MAX_IDLE_ROUNDS {
                return Ok(());
            }
            asked_at = now_at;
            self.request_headers(node, sync)?;
            deadline = Instant::now() + timeout;
        }
    }

    /// Returns once `node` has no ready connection (never while it has one).
    async fn gone(&self, node: &NodeId, changes: &mut tokio::sync::watch::Receiver<u64>) {
        while self.info(node).is_some() {
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    fn request_headers(&self, node: &NodeId, sync: &P2pHeaders) -> Result<(), Error> {
        let request = sync.request();
        let electrum_spv_core::p2p::Outgoing::GetHeaders {
            version,
            locator,
            stop,
        } = request.outgoing()
        else {
            return Ok(());
        };
        let msg = OwnedMessage::GetHeaders {
            version,
            locator: locator.to_vec(),
            stop,
        };
        self.send(node, &msg).map_err(|_| Error::Disconnected)
    }
}
