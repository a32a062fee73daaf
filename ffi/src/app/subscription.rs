//! Watching addresses: verified histories and tips pushed to a foreign listener (Kotlin wraps
//! it as a `Flow`, Swift as an `AsyncSequence`).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use electrum_spv::core::hash::{ScriptHash, Status};
use electrum_spv::{Notice, Pool, VerifiedHistory};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_stream::{Stream, StreamExt, StreamMap};

use super::{ElectrumError, History, Tip, best_tip};

/// Receives what a subscription sees. Called from a library thread, one call at a time and in
/// order; return quickly (hand the value to your own queue or coroutine).
#[uniffi::export(with_foreign)]
pub trait WalletListener: Send + Sync {
    /// A new verified tip (also once at the start).
    fn on_tip(&self, tip: Tip);
    /// The verified history of a watched address (once at the start, then on each change).
    fn on_history(&self, address: String, history: History);
    /// The connection to the best server was lost (`false`) or restored (`true`).
    fn on_connection_changed(&self, connected: bool);
    /// Checking a change failed (the subscription goes on; the next change is checked again).
    fn on_error(&self, error: ElectrumError);
    /// The subscription ended by itself: every server connection is closed. Nothing follows.
    fn on_closed(&self);
}

/// A running subscription. Stops when cancelled or dropped: keep a reference as long as events
/// are wanted (in Kotlin, Swift and Python, a subscription that is garbage collected stops).
#[derive(uniffi::Object)]
pub struct Subscription {
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[uniffi::export]
impl Subscription {
    /// Stops delivering; no listener call starts after this returns.
    pub fn cancel(&self) {
        if let Some(task) = self.task.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }

    /// Whether it is still delivering (not cancelled, and its servers not all gone).
    pub fn is_active(&self) -> bool {
        self.task
            .lock()
            .ok()
            .is_some_and(|t| t.as_ref().is_some_and(|t| !t.is_finished()))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

type Notices = Pin<Box<dyn Stream<Item = Result<Notice, u64>> + Send>>;

/// What is watched and what the listener was last told.
struct Watch {
    pool: Arc<Mutex<Pool>>,
    listener: Arc<dyn WalletListener>,
    addresses: HashMap<ScriptHash, (String, Vec<u8>)>,
    statuses: HashMap<ScriptHash, Option<Status>>,
    tip: Option<Tip>,
}

/// Reports every address's verified history and the tip, then keeps watching.
pub(crate) async fn start(
    pool: Arc<Mutex<Pool>>,
    scripts: Vec<(String, Vec<u8>)>,
    listener: Arc<dyn WalletListener>,
) -> Result<Arc<Subscription>, ElectrumError> {
    let mut notices: StreamMap<usize, Notices> = StreamMap::new();
    {
        // Listen before the first histories, so no change between them and the loop is missed.
        let pool = pool.lock().await;
        for (i, client) in pool.clients().into_iter().enumerate() {
            notices.insert(i, Box::pin(client.notifications()));
            client.block_headers_subscribe().await?;
        }
    }
    let mut watch = Watch {
        pool,
        listener,
        addresses: scripts
            .into_iter()
            .map(|(address, script)| (electrum_spv::core::script_hash(&script), (address, script)))
            .collect(),
        statuses: HashMap::new(),
        tip: None,
    };
    watch.check_all().await?;
    let task = tokio::spawn(async move {
        while let Some((_, notice)) = notices.next().await {
            watch.handle(notice).await;
        }
        watch.listener.on_closed();
    });
    Ok(Arc::new(Subscription {
        task: std::sync::Mutex::new(Some(task)),
    }))
}

impl Watch {
    async fn handle(&mut self, notice: Result<Notice, u64>) {
        let outcome = match notice {
            Ok(Notice::Header { .. }) => self.check_tip().await,
            Ok(Notice::ScriptStatus { script_hash, .. }) => self.check(script_hash).await,
            Ok(Notice::Disconnected(_)) => {
                self.listener.on_connection_changed(false);
                Ok(())
            }
            Ok(Notice::Reconnected { .. }) => {
                self.listener.on_connection_changed(true);
                Ok(())
            }
            Ok(Notice::Outpoint(_)) => Ok(()),
            // Notices were missed: check everything again.
            Err(_lagged) => self.check_all().await,
        };
        if let Err(e) = outcome {
            self.listener.on_error(e);
        }
    }

    /// Verifies every watched history (all together) and the tip; reports what changed.
    async fn check_all(&mut self) -> Result<(), ElectrumError> {
        let (hashes, scripts): (Vec<ScriptHash>, Vec<Vec<u8>>) = self
            .addresses
            .iter()
            .map(|(hash, (_, script))| (*hash, script.clone()))
            .unzip();
        let histories = self.pool.lock().await.verified_histories(&scripts).await?;
        for (hash, history) in hashes.into_iter().zip(histories) {
            self.report(hash, &history);
        }
        self.check_tip().await
    }

    /// Verifies the history of `hash` (if watched) and reports it when its status changed:
    /// several servers may announce the same change.
    async fn check(&mut self, hash: ScriptHash) -> Result<(), ElectrumError> {
        let Some((_, script)) = self.addresses.get(&hash) else {
            return Ok(());
        };
        let history = self.pool.lock().await.verified_history(script).await?;
        self.report(hash, &history);
        Ok(())
    }

    /// Tells the listener the history of `hash` if its status is new.
    fn report(&mut self, hash: ScriptHash, history: &VerifiedHistory) {
        let Some((address, _)) = self.addresses.get(&hash) else {
            return;
        };
        if self.statuses.get(&hash) != Some(&history.status) {
            self.statuses.insert(hash, history.status);
            self.listener
                .on_history(address.clone(), History::from(history));
        }
    }

    /// Verifies the servers' new headers and reports the best tip when it changed.
    async fn check_tip(&mut self) -> Result<(), ElectrumError> {
        let tip = {
            let mut pool = self.pool.lock().await;
            pool.refresh().await?;
            best_tip(&pool)?
        };
        if self.tip.as_ref() != Some(&tip) {
            self.tip = Some(tip.clone());
            self.listener.on_tip(tip);
        }
        Ok(())
    }
}
