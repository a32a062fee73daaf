//! Drives core's [`ScriptTracker`], the one definition of a verified history, over a
//! [`Client`]: the tracker decides what to ask and checks every answer; this module only sends
//! its requests (a window of [`PROOFS_AT_ONCE`], paced by the chain's proof bucket), hands
//! the answers and status notifications back, sleeps until the tracker's retry time, and
//! gives it the verified headers it wants from the [`HeaderChain`] (synced further, or the
//! old period fetched and checked between its checkpoints).
//!
//! What the tracker proves false becomes [`Error::Verification`] with the [`Fault`]; a
//! server's error, a timeout or a response over the line cap is returned as the call's own
//! error, never as a lie (a refusal proves nothing).

use std::collections::BTreeSet;

use tokio::task::JoinSet;
use tokio_stream::StreamExt;

use electrum_spv_core::hash::{ScriptHash, Status, Txid};
use electrum_spv_core::history::ChainPosition;
use electrum_spv_core::rpc::{Method, ProtocolVersion};
use electrum_spv_core::script::{TxHeight, script_hash};
use electrum_spv_core::session::response::{self, HistoryItem};
use electrum_spv_core::session::{Event, Notification, Request, RequestError};
use electrum_spv_core::sync::RequestSink;
use electrum_spv_core::sync::tracker::{
    self, ScriptSlot, ScriptTracker, TrackerEvent, TrackerLie, TxSlot,
};

use crate::client::Client;
use crate::clock::Clock;
use crate::connection::Notice;
use crate::error::Error;
use crate::fault::Fault;
use crate::header_chain::HeaderChain;
use crate::pacing::{MERKLE_COST_MILLI, TX_COST_MILLI};
use crate::verified::{PROOFS_AT_ONCE, RawTxs, ScriptRef, VerifiedTx, status_of};

/// The tracker with tables that grow as histories arrive.
pub(crate) type Tracker = ScriptTracker<Vec<ScriptSlot>, Vec<TxSlot>>;

/// What the tracker asked, in a form that can be sent from another task.
#[derive(Clone, Debug)]
enum Ask {
    /// Subscribe to a script (through the client, which keeps the subscription).
    Subscribe(OwnedScript),
    /// A history (through the client, which streams one too long for a line).
    History(OwnedScript),
    /// Any other request, answered with the raw JSON result.
    Plain(Request<'static>),
}

#[derive(Clone, Debug)]
enum OwnedScript {
    Script(Vec<u8>),
    Hash(ScriptHash),
}

impl OwnedScript {
    fn as_ref(&self) -> ScriptRef<'_> {
        match self {
            OwnedScript::Script(s) => ScriptRef::Script(s),
            OwnedScript::Hash(h) => ScriptRef::Hash(*h),
        }
    }
}

impl Ask {
    /// The owned form of what the tracker asks (it asks nothing else).
    fn of(request: &Request<'_>) -> Option<Ask> {
        Some(match *request {
            Request::ScriptSubscribe(s) => Ask::Subscribe(OwnedScript::Script(s.to_vec())),
            Request::ScriptHashSubscribe(h) => Ask::Subscribe(OwnedScript::Hash(h)),
            Request::ScriptGetHistory(s) => Ask::History(OwnedScript::Script(s.to_vec())),
            Request::ScriptHashGetHistory(h) => Ask::History(OwnedScript::Hash(h)),
            Request::BlockHeader { height, cp_height } => {
                Ask::Plain(Request::BlockHeader { height, cp_height })
            }
            Request::TransactionGetMerkle { txid, height } => {
                Ask::Plain(Request::TransactionGetMerkle { txid, height })
            }
            Request::TransactionGet(txid) => Ask::Plain(Request::TransactionGet(txid)),
            _ => return None,
        })
    }

    fn method(&self) -> Method {
        match self {
            Ask::Subscribe(_) => Method::ScriptSubscribe,
            Ask::History(_) => Method::ScriptGetHistory,
            Ask::Plain(r) => r.method(),
        }
    }

    /// What the request is about, to name it in a fault.
    fn subject(&self) -> (Option<Txid>, Option<u32>) {
        match self {
            Ask::Plain(Request::TransactionGetMerkle { txid, height }) => {
                (Some(*txid), Some(*height))
            }
            Ask::Plain(Request::TransactionGet(txid)) => (Some(*txid), None),
            Ask::Plain(Request::BlockHeader { height, .. }) => (None, Some(*height)),
            _ => (None, None),
        }
    }

    /// The cost of the request in the proof bucket (histories and subscriptions are not
    /// paced: there is one of each per script).
    fn cost(&self) -> u64 {
        match self {
            Ask::Plain(Request::TransactionGet(_)) => TX_COST_MILLI,
            Ask::Plain(_) => MERKLE_COST_MILLI,
            _ => 0,
        }
    }

    async fn send(self, client: Client) -> Result<Answer, Error> {
        Ok(match self {
            Ask::Subscribe(s) => Answer::Status(status_of(&client, s.as_ref()).await?),
            Ask::History(s) => Answer::History(match s.as_ref() {
                ScriptRef::Script(s) => client.script_get_history(s).await?,
                ScriptRef::Hash(h) => client.scripthash_get_history(&h).await?,
            }),
            Ask::Plain(r) => Answer::Raw(client.raw_call(r).await?),
        })
    }
}

/// An answer to hand back to the tracker.
enum Answer {
    Status(Option<Status>),
    History(Vec<HistoryItem>),
    Raw(Vec<u8>),
}

/// The tracker's requests of one poll, to be sent by [`run`].
#[derive(Default)]
struct Outbox(Vec<(Ask, u32)>);

impl RequestSink for Outbox {
    fn is_ready(&self) -> bool {
        true
    }

    fn request(
        &mut self,
        _now: electrum_spv_core::time::Instant,
        request: &Request<'_>,
        tag: u32,
    ) -> Result<u64, RequestError> {
        // The tracker asks only what `Ask` knows.
        let ask = Ask::of(request).ok_or(RequestError::InvalidArgument)?;
        self.0.push((ask, tag));
        Ok(0)
    }
}

/// A tracker over `scripts` (indices in order), with the adapter's window, for a server at
/// protocol `version`.
///
/// # Errors
/// [`Error::InvalidArgument`] for a script longer than [`tracker::MAX_SCRIPT_LEN`] at
/// protocol 1.7: the tracker keeps such a script by its hash, which 1.7 no longer serves.
pub(crate) fn tracker_for(
    scripts: &[ScriptRef<'_>],
    version: ProtocolVersion,
) -> Result<Tracker, Error> {
    let mut tracker = Tracker::new(Vec::new(), Vec::new());
    tracker.set_max_in_flight(PROOFS_AT_ONCE);
    for script in scripts {
        let added = match *script {
            ScriptRef::Script(s) if s.len() > tracker::MAX_SCRIPT_LEN => {
                if version >= ProtocolVersion::V1_7 {
                    return Err(Error::InvalidArgument(format!(
                        "a script of {} bytes (over {}) is tracked by its hash, which protocol \
                         {version} does not serve",
                        s.len(),
                        tracker::MAX_SCRIPT_LEN
                    )));
                }
                tracker.add(tracker::ScriptRef::Hash(script_hash(s)))
            }
            ScriptRef::Script(s) => tracker.add(tracker::ScriptRef::Script(s)),
            ScriptRef::Hash(h) => tracker.add(tracker::ScriptRef::Hash(h)),
        };
        added.map_err(|e| Error::InvalidArgument(e.to_string()))?;
    }
    Ok(tracker)
}

/// Runs `tracker` against `client` until every script's history is verified at the status
/// the server announces. With `keep`, the raw bytes of every transaction the tracker reports
/// verified are kept there: the very bytes it hashed to the txid and read for the script.
///
/// # Errors
/// Transport and server errors of any request; [`Error::Verification`] for what the tracker
/// proves false; [`Error::Lagging`] when a history names a block above the server's own
/// verified tip; [`Error::HistoryTooLarge`] past the tracker's table bound
/// ([`tracker::MAX_SLOTS`]).
pub(crate) async fn run(
    client: &Client,
    chain: &mut HeaderChain,
    tracker: &mut Tracker,
    mut keep: Option<&mut RawTxs>,
) -> Result<(), Error> {
    let version = client.protocol_version();
    let clock = Clock::start();
    let now = || clock.now();
    // Listening before asking: a status announced while a history is checked is not missed.
    let notices = client.notifications();
    tokio::pin!(notices);
    let mut tasks: JoinSet<(Ask, u32, Result<Answer, Error>)> = JoinSet::new();
    // Headers are wanted only after a history is accepted: the table is not scanned for them
    // after every answer.
    let mut new_history = true;
    loop {
        let mut outbox = Outbox::default();
        // The outbox refuses only a request the adapter does not know how to send.
        tracker.poll(now(), &mut outbox).map_err(|e| {
            Error::InvalidArgument(format!(
                "the tracker asked what the adapter cannot send: {e}"
            ))
        })?;
        for (ask, tag) in outbox.0 {
            chain.proof_bucket().take(ask.cost()).await;
            let c = client.clone();
            tasks.spawn(async move {
                let answer = ask.clone().send(c).await;
                (ask, tag, answer)
            });
        }
        let wanted: BTreeSet<u32> = if new_history {
            new_history = false;
            tracker.headers_wanted().collect()
        } else {
            BTreeSet::new()
        };
        if !wanted.is_empty() {
            let heights: Vec<u32> = wanted.into_iter().collect();
            chain.ensure(client, &heights).await?;
            for height in heights {
                let header = chain.header_at(client, height).await?;
                tracker.provide_header(height, &header.to_bytes());
            }
            continue;
        }
        if tasks.is_empty() && tracker.is_synced() {
            return Ok(());
        }
        let retry = tracker.poll_timeout();
        if tasks.is_empty() && retry.is_none() {
            // Nothing asked, nothing to wait for: only a table bound stops a tracker so.
            return Err(table_full());
        }
        let sleep = match retry {
            Some(at) => tokio::time::sleep_until(clock.deadline(at)),
            None => tokio::time::sleep(std::time::Duration::from_millis(u64::MAX / 4)),
        };
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                let (ask, tag, answer) = done.map_err(|e| Error::Io(std::io::Error::other(e)))?;
                let answer = answer?;
                let event = hand_back(tracker, version, &ask, tag, &answer);
                new_history |= matches!(event, Some(TrackerEvent::StatusVerified { .. }));
                if let Some(keep) = keep.as_deref_mut() {
                    keep_verified(keep, &ask, &answer, event.as_ref());
                }
                check(tracker, &ask, event)?;
            }
            Some(notice) = notices.next() => match notice {
                Ok(Notice::ScriptStatus { script_hash, status }) => {
                    let event = Event::Notification(Notification::ScriptStatus {
                        script_hash,
                        status,
                    });
                    tracker.handle_event(version, &event);
                }
                // Some were lost: every status is asked again.
                Err(_missed) => tracker.statuses_missed(),
                Ok(_) => {}
            },
            () = sleep => {}
        }
        while tracker.poll_event().is_some() {}
    }
}

/// Keeps the bytes of a transaction answer when the tracker reports the transaction verified
/// by it: the event names the asked txid only once these bytes hashed to it and involve the
/// script (an answer the tracker ignored or found lying is never kept).
fn keep_verified(keep: &mut RawTxs, ask: &Ask, answer: &Answer, event: Option<&TrackerEvent>) {
    let (Ask::Plain(Request::TransactionGet(asked)), Answer::Raw(result)) = (ask, answer) else {
        return;
    };
    let verified = match event {
        Some(TrackerEvent::Confirmed { txid, .. } | TrackerEvent::Unconfirmed { txid, .. }) => {
            txid == asked
        }
        _ => false,
    };
    if !verified || keep.contains_key(asked) {
        return;
    }
    // The tracker decoded the same hex: it cannot fail here.
    if let Ok(hex) = response::transaction_hex(result) {
        let mut raw = vec![0u8; hex.len() / 2];
        if electrum_spv_core::hex::decode_to_slice(hex, &mut raw).is_ok() {
            keep.insert(*asked, raw);
        }
    }
}

/// Gives `answer` to the tracker as the session would have; what it found.
fn hand_back(
    tracker: &mut Tracker,
    version: ProtocolVersion,
    ask: &Ask,
    tag: u32,
    answer: &Answer,
) -> Option<TrackerEvent> {
    let raw;
    let result: &[u8] = match answer {
        Answer::History(items) => return tracker.handle_history(version, tag, items),
        Answer::Status(status) => {
            raw = status.map_or_else(|| "null".to_owned(), |s| format!("\"{s}\""));
            raw.as_bytes()
        }
        Answer::Raw(bytes) => bytes,
    };
    let event = Event::Response {
        id: 0,
        method: ask.method(),
        tag,
        result,
    };
    tracker.handle_event(version, &event)
}

/// What the tracker found, as the adapter's error.
fn check(tracker: &Tracker, ask: &Ask, event: Option<TrackerEvent>) -> Result<(), Error> {
    match event {
        Some(TrackerEvent::ServerLied { script, txid, lie }) => {
            let script = tracker
                .script_hash(script)
                .unwrap_or(ScriptHash::from_byte_array([0; 32]));
            Err(fault_of(script, txid, ask, lie))
        }
        Some(TrackerEvent::Full { .. }) => Err(table_full()),
        _ => Ok(()),
    }
}

/// The tracker's tables reached [`tracker::MAX_SLOTS`].
fn table_full() -> Error {
    Error::HistoryTooLarge(format!(
        "more than the tracker's {} transaction slots",
        tracker::MAX_SLOTS
    ))
}

/// The adapter's error for a lie the tracker caught.
fn fault_of(script: ScriptHash, txid: Option<Txid>, ask: &Ask, lie: TrackerLie) -> Error {
    let (asked_txid, asked_height) = ask.subject();
    let txid = txid
        .or(asked_txid)
        .unwrap_or(Txid::from_byte_array([0; 32]));
    let height = asked_height.unwrap_or(0);
    let fault = match lie {
        TrackerLie::History(fault) => Fault::History { script, fault },
        TrackerLie::HeaderProof(error) => Fault::HeaderProof { height, error },
        TrackerLie::Merkle(error) => Fault::Merkle {
            txid,
            height,
            error,
        },
        TrackerLie::ProofHeight { claimed } => Fault::ProofHeight {
            txid,
            asked: height,
            claimed,
        },
        TrackerLie::Tx(error) => Fault::MalformedTx { txid, error },
        TrackerLie::TxidMismatch { got } => Fault::TxidMismatch { asked: txid, got },
        TrackerLie::Unrelated => Fault::Unrelated { script, txid },
        // Undecodable answers and refusals are not proof of a lie.
        TrackerLie::Malformed | TrackerLie::Refused => return Error::BadResult(ask.method()),
    };
    Error::Verification(fault)
}

/// The verified history of script `i` as the tracker holds it, in chain order
/// ([`ChainPosition`]): confirmed entries by height and position in the block, then the
/// mempool in the server's order (the order of the tracker's table, which a fresh tracker
/// fills in the server's order).
pub(crate) fn history_in_chain_order(tracker: &Tracker, i: usize) -> Vec<VerifiedTx> {
    let mut txs: Vec<(ChainPosition, VerifiedTx)> = tracker
        .history(i)
        .enumerate()
        .map(|(index, entry)| {
            let position = match (entry.height, entry.block) {
                (TxHeight::Confirmed(height), Some(block)) => ChainPosition::Confirmed {
                    height,
                    pos: block.pos,
                },
                _ => ChainPosition::Mempool { index },
            };
            let tx = VerifiedTx {
                txid: entry.txid,
                height: entry.height,
                block_hash: entry.block.map(|b| b.hash),
                pos: entry.block.map(|b| b.pos),
                block_time: entry.block.map(|b| b.time),
            };
            (position, tx)
        })
        .collect();
    txs.sort_by_key(|(position, _)| *position);
    txs.into_iter().map(|(_, tx)| tx).collect()
}
