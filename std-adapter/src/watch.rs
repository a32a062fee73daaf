//! Watching scripts over a [`Pool`]: the one watch loop the CLI's `subscribe`, the app API's
//! subscriptions and `examples/watch.rs` share.
//!
//! A [`Watcher`] listens to every member's notifications (a change announced by any server is
//! seen), verifies the history of a script whose status changed through the pool (so it is
//! cross-checked, and a liar is dropped), and yields a [`WatchEvent`] when a verified status
//! differs from the last one reported, with what [`Changes`] since then. New headers refresh
//! every member's verified chain; the best verified tip is reported when it moves. Notices a
//! slow reader missed make it verify every script again, so nothing is lost.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;

use electrum_spv_core::hash::{BlockHash, ScriptHash, Status, Txid};
use electrum_spv_core::script::{TxHeight, script_hash};
use tokio::sync::Mutex;
use tokio_stream::{Stream, StreamExt, StreamMap};

use crate::connection::Notice;
use crate::error::Error;
use crate::pool::Pool;
use crate::verified::VerifiedHistory;

/// What a watcher reports.
#[derive(Debug)]
pub enum WatchEvent {
    /// The best verified tip (once at the start, then when it moves).
    Tip {
        /// Height.
        height: u32,
        /// Block hash.
        hash: BlockHash,
    },
    /// A script's verified history whose status is new (once at the start: `first`).
    History {
        /// The script, as given to [`Watcher::start`].
        script: Vec<u8>,
        /// Its verified history.
        history: VerifiedHistory,
        /// What changed since the last history reported (everything, the first time).
        changes: Changes,
        /// The first history reported for this script.
        first: bool,
    },
    /// The best member's connection was lost (`false`) or restored (`true`).
    Connection {
        /// Whether it is up.
        connected: bool,
    },
    /// Verifying a change failed; watching goes on (the next change is checked again).
    Error(Error),
}

/// Transactions that changed between two verified histories of a script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New in the history (confirmed or not).
    pub appeared: Vec<Txid>,
    /// In the mempool before, confirmed now.
    pub confirmed: Vec<Txid>,
    /// Confirmed before, in the mempool again now (its block was reorganised away).
    pub unconfirmed: Vec<Txid>,
    /// No longer in the history (reorged out, evicted, replaced).
    pub vanished: Vec<Txid>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.appeared.is_empty()
            && self.confirmed.is_empty()
            && self.unconfirmed.is_empty()
            && self.vanished.is_empty()
    }

    /// The changes from `before` to `after` (each txid's confirmation state).
    fn between(before: &BTreeMap<Txid, bool>, after: &BTreeMap<Txid, bool>) -> Changes {
        Changes {
            appeared: after
                .keys()
                .filter(|t| !before.contains_key(t))
                .copied()
                .collect(),
            confirmed: after
                .iter()
                .filter(|(t, c)| **c && before.get(t) == Some(&false))
                .map(|(t, _)| *t)
                .collect(),
            unconfirmed: after
                .iter()
                .filter(|(t, c)| !**c && before.get(t) == Some(&true))
                .map(|(t, _)| *t)
                .collect(),
            vanished: before
                .keys()
                .filter(|t| !after.contains_key(t))
                .copied()
                .collect(),
        }
    }
}

/// Each transaction of a history and whether it is confirmed.
fn confirmations(history: &VerifiedHistory) -> BTreeMap<Txid, bool> {
    history
        .txs
        .iter()
        .map(|t| (t.txid, matches!(t.height, TxHeight::Confirmed(_))))
        .collect()
}

type Notices = Pin<Box<dyn Stream<Item = Result<Notice, u64>> + Send>>;

/// A watched script and what was last reported of it.
struct Watched {
    script: Vec<u8>,
    status: Option<Option<Status>>,
    seen: BTreeMap<Txid, bool>,
}

/// Watches scripts over a pool; see the [module documentation](self).
pub struct Watcher {
    pool: Arc<Mutex<Pool>>,
    notices: StreamMap<usize, Notices>,
    watched: HashMap<ScriptHash, Watched>,
    order: Vec<ScriptHash>,
    tip: Option<(u32, BlockHash)>,
    queue: VecDeque<WatchEvent>,
}

impl Watcher {
    /// Listens to every member's notifications, then verifies every script's history (all
    /// together) and the tip: the first [`Watcher::next`] calls return them.
    ///
    /// # Errors
    /// As [`Pool::verified_histories`], and transport errors subscribing to headers.
    pub async fn start(pool: Arc<Mutex<Pool>>, scripts: Vec<Vec<u8>>) -> Result<Watcher, Error> {
        let mut notices: StreamMap<usize, Notices> = StreamMap::new();
        {
            // Listen before the first histories, so no change between them and the loop is
            // missed.
            let pool = pool.lock().await;
            for (i, client) in pool.clients().into_iter().enumerate() {
                notices.insert(i, Box::pin(client.notifications()));
                client.block_headers_subscribe().await?;
            }
        }
        let mut watcher = Watcher {
            pool,
            notices,
            order: scripts.iter().map(|s| script_hash(s)).collect(),
            watched: scripts
                .into_iter()
                .map(|script| {
                    let watched = Watched {
                        script,
                        status: None,
                        seen: BTreeMap::new(),
                    };
                    (script_hash(&watched.script), watched)
                })
                .collect(),
            tip: None,
            queue: VecDeque::new(),
        };
        watcher.check_all().await?;
        Ok(watcher)
    }

    /// The next event; `None` once every member's connection is closed for good.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            let (_, notice) = self.notices.next().await?;
            let outcome = match notice {
                Ok(Notice::Header { .. }) => self.check_tip().await,
                Ok(Notice::ScriptStatus { script_hash, .. }) => self.check(script_hash).await,
                Ok(Notice::Disconnected(_)) => {
                    return Some(WatchEvent::Connection { connected: false });
                }
                Ok(Notice::Reconnected { .. }) => {
                    return Some(WatchEvent::Connection { connected: true });
                }
                Ok(Notice::Outpoint(_)) => Ok(()),
                // Notices were missed: check everything again.
                Err(_missed) => self.check_all().await,
            };
            if let Err(e) = outcome {
                return Some(WatchEvent::Error(e));
            }
        }
    }

    /// Verifies every watched history (all together) and the tip.
    async fn check_all(&mut self) -> Result<(), Error> {
        let scripts: Vec<Vec<u8>> = self
            .order
            .iter()
            .filter_map(|h| self.watched.get(h).map(|w| w.script.clone()))
            .collect();
        let histories = self.pool.lock().await.verified_histories(&scripts).await?;
        for (hash, history) in self.order.clone().into_iter().zip(histories) {
            self.report(hash, history);
        }
        self.check_tip().await
    }

    /// Verifies the history of `hash`, if watched.
    async fn check(&mut self, hash: ScriptHash) -> Result<(), Error> {
        let Some(w) = self.watched.get(&hash) else {
            return Ok(());
        };
        let history = self.pool.lock().await.verified_history(&w.script).await?;
        self.report(hash, history);
        Ok(())
    }

    /// Queues the history of `hash` if its status is new (several servers may announce the
    /// same change).
    fn report(&mut self, hash: ScriptHash, history: VerifiedHistory) {
        let Some(w) = self.watched.get_mut(&hash) else {
            return;
        };
        if w.status == Some(history.status) {
            return;
        }
        let first = w.status.is_none();
        let seen = confirmations(&history);
        let changes = Changes::between(&w.seen, &seen);
        w.status = Some(history.status);
        w.seen = seen;
        self.queue.push_back(WatchEvent::History {
            script: w.script.clone(),
            history,
            changes,
            first,
        });
    }

    /// Verifies the members' new headers; queues the best tip when it moved.
    async fn check_tip(&mut self) -> Result<(), Error> {
        let tip = {
            let mut pool = self.pool.lock().await;
            pool.refresh().await?;
            pool.best_tip().ok_or(Error::Disconnected)?
        };
        if self.tip != Some(tip) {
            self.tip = Some(tip);
            self.queue.push_back(WatchEvent::Tip {
                height: tip.0,
                hash: tip.1,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(b: u8) -> Txid {
        Txid::from_byte_array([b; 32])
    }

    #[test]
    fn changes_name_what_appeared_confirmed_unconfirmed_and_vanished() {
        let before = BTreeMap::from([(t(1), false), (t(2), true), (t(3), false), (t(5), true)]);
        let after = BTreeMap::from([(t(1), true), (t(2), true), (t(4), false), (t(5), false)]);
        assert_eq!(
            Changes::between(&before, &after),
            Changes {
                appeared: vec![t(4)],
                confirmed: vec![t(1)],
                unconfirmed: vec![t(5)],
                vanished: vec![t(3)],
            }
        );
        assert!(Changes::between(&after, &after).is_empty());
    }
}
