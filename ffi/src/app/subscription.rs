//! Watching addresses: verified histories and tips pushed to a foreign listener (Kotlin wraps
//! it as a `Flow`, Swift as an `AsyncSequence`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use electrum_spv::Pool;
use electrum_spv::core::hash::Txid;
use electrum_spv::verified::RawTxs;
use electrum_spv::watch::{WatchEvent, Watcher};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::{ElectrumError, History, Tip};

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

/// Reports every address's verified history and the tip, then keeps watching (the adapter's
/// [`Watcher`]: every server's notifications, histories cross-checked by the pool).
pub(crate) async fn start(
    pool: Arc<Mutex<Pool>>,
    scripts: Vec<(String, Vec<u8>)>,
    listener: Arc<dyn WalletListener>,
) -> Result<Arc<Subscription>, ElectrumError> {
    let addresses: HashMap<Vec<u8>, String> = scripts
        .iter()
        .map(|(address, script)| (script.clone(), address.clone()))
        .collect();
    let mut watcher = Watcher::start(
        pool.clone(),
        scripts.into_iter().map(|(_, script)| script).collect(),
    )
    .await?;
    let task = tokio::spawn(async move {
        // The transactions of the latest history of each address, to read what each does to
        // it: only those a new history adds are fetched.
        let mut raws = RawTxs::new();
        let mut latest: HashMap<Vec<u8>, Vec<Txid>> = HashMap::new();
        while let Some(event) = watcher.next().await {
            match event {
                WatchEvent::Tip { height, hash } => listener.on_tip(Tip {
                    height,
                    hash: hash.to_string(),
                }),
                WatchEvent::History {
                    script, history, ..
                } => {
                    let Some(address) = addresses.get(&script) else {
                        continue;
                    };
                    let txids: Vec<Txid> = history.txs.iter().map(|t| t.txid).collect();
                    let fetched = pool
                        .lock()
                        .await
                        .fetch_transactions(&txids, &mut raws)
                        .await;
                    match fetched
                        .map_err(ElectrumError::from)
                        .and_then(|()| History::of(&script, &history, &raws))
                    {
                        Ok(h) => listener.on_history(address.clone(), h),
                        Err(e) => listener.on_error(e),
                    }
                    latest.insert(script, txids);
                    let held: HashSet<&Txid> = latest.values().flatten().collect();
                    raws.retain(|t, _| held.contains(t));
                }
                WatchEvent::Connection { connected } => listener.on_connection_changed(connected),
                WatchEvent::Error(e) => listener.on_error(e.into()),
            }
        }
        listener.on_closed();
    });
    Ok(Arc::new(Subscription {
        task: std::sync::Mutex::new(Some(task)),
    }))
}
