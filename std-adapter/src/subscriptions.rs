//! The subscriptions a connection holds, so that a new connection can restore them and report
//! what changed while the old one was down.

use std::collections::HashMap;

use electrum_spv_core::hash::{ScriptHash, Status};
use electrum_spv_core::script_hash;
use electrum_spv_core::session::{Request, response};

use crate::connection::{Call, Notice, OwnedRequest, Reply, ScriptOp};
use crate::error::Error;

/// Scripts (with their last known status) and whether headers are subscribed.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    scripts: HashMap<ScriptHash, (Vec<u8>, Option<Status>)>,
    headers: bool,
    /// The last tip the server announced.
    pub tip: Option<(u32, [u8; 80])>,
}

impl Subscriptions {
    /// Whether subscribing to `script` stays within `max` scripts.
    pub fn has_room(&self, script: &[u8], max: usize) -> bool {
        self.scripts.len() < max || self.scripts.contains_key(&script_hash(script))
    }

    /// Records what a caller's successful call means for the subscriptions.
    pub fn record(&mut self, request: &OwnedRequest, raw: &[u8]) {
        match request {
            OwnedRequest::Script(ScriptOp::Subscribe, script) => {
                if let Ok(status) = response::subscribe_status(raw) {
                    self.scripts
                        .insert(script_hash(script), (script.clone(), status));
                }
            }
            OwnedRequest::Script(ScriptOp::Unsubscribe, script) => {
                self.scripts.remove(&script_hash(script));
            }
            OwnedRequest::Plain(Request::HeadersSubscribe) => {
                self.headers = true;
                if let Ok(tip) = response::headers_subscribe(raw) {
                    self.tip = Some(tip);
                }
            }
            _ => {}
        }
    }

    /// A status notification arrived.
    pub fn status_changed(&mut self, hash: &ScriptHash, status: Option<Status>) {
        if let Some(entry) = self.scripts.get_mut(hash) {
            entry.1 = status;
        }
    }

    /// The calls that restore every subscription on a new connection (headers first).
    pub fn restore_calls(&self) -> Vec<Call> {
        let headers = self.headers.then(|| {
            Call::new(
                OwnedRequest::Plain(Request::HeadersSubscribe),
                Reply::ResubscribeHeaders,
            )
        });
        headers
            .into_iter()
            .chain(self.scripts.iter().map(|(hash, (script, _))| {
                Call::new(
                    OwnedRequest::Script(ScriptOp::Subscribe, script.clone()),
                    Reply::Resubscribe(*hash),
                )
            }))
            .collect()
    }

    /// The answer to a restoring call: a notice for what changed while disconnected.
    pub fn restored(&mut self, reply: Reply, result: Result<Vec<u8>, Error>) -> Option<Notice> {
        let raw = result.ok()?;
        match reply {
            Reply::Resubscribe(hash) => {
                let status = response::subscribe_status(&raw).ok()?;
                let entry = self.scripts.get_mut(&hash)?;
                (entry.1 != status).then(|| {
                    entry.1 = status;
                    Notice::ScriptStatus {
                        script_hash: hash,
                        status,
                    }
                })
            }
            Reply::ResubscribeHeaders => {
                let (height, header) = response::headers_subscribe(&raw).ok()?;
                (self.tip != Some((height, header))).then(|| {
                    self.tip = Some((height, header));
                    Notice::Header { height, header }
                })
            }
            Reply::Caller(_) | Reply::History(_) => None,
        }
    }
}
