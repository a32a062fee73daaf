//! A minimal line-based Electrum client for the tests (std TcpStream + serde_json), and
//! comparisons between what ElectrumX says and the kit's own records.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bitcoin::ScriptBuf;
use electrum_spv_testkit::chain::scripthash;
use electrum_spv_testkit::{Harness, ScriptKind, StandInBitcoind};
use serde_json::{Value, json};

/// How long a test waits for ElectrumX to catch up with a change of the kit's chain.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// One Electrum connection. Requests are pipelined; responses are matched by id (ElectrumX
/// may hold small replies ~1 s and pads them with spaces); notifications are queued.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
    responses: HashMap<u64, Value>,
    notifications: VecDeque<Value>,
    /// Bytes of a line not yet terminated (a read may time out mid-line).
    partial: String,
    /// The negotiated protocol version.
    pub version: String,
}

impl Client {
    /// Connects and negotiates `server.version` with `["electrum-spv-testkit", [min, max]]`.
    pub fn connect(addr: SocketAddr, min: &str, max: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to ElectrumX");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let writer = stream.try_clone().expect("clone");
        let mut c = Client {
            reader: BufReader::new(stream),
            writer,
            next_id: 0,
            responses: HashMap::new(),
            notifications: VecDeque::new(),
            partial: String::new(),
            version: String::new(),
        };
        let v = c.call(
            "server.version",
            json!(["electrum-spv-testkit", [min, max]]),
        );
        c.version = v[1].as_str().expect("version string").to_owned();
        c
    }

    /// Sends a request without waiting; returns its id.
    pub fn send(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let mut line =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).expect("write");
        id
    }

    /// Reads one line if one arrives before the short socket timeout.
    fn read_one(&mut self) -> bool {
        match self.reader.read_line(&mut self.partial) {
            Ok(0) => panic!("ElectrumX closed the connection"),
            Ok(_) if !self.partial.ends_with('\n') => return false,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Whatever arrived stays in `partial` until the rest of the line comes.
                return false;
            }
            Err(e) => panic!("read: {e}"),
        }
        let line = std::mem::take(&mut self.partial);
        let v: Value =
            serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("bad JSON {e}: {line}"));
        let items = match v {
            Value::Array(a) => a,
            v => vec![v],
        };
        for item in items {
            match item.get("id").and_then(Value::as_u64) {
                Some(id) => {
                    self.responses.insert(id, item);
                }
                None => self.notifications.push_back(item),
            }
        }
        true
    }

    /// Waits for the response to `id`; returns `Ok(result)` or `Err(error)`.
    pub fn wait(&mut self, id: u64) -> Result<Value, Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self.responses.remove(&id) {
                return match r.get("error") {
                    Some(e) if !e.is_null() => Err(e.clone()),
                    _ => Ok(r["result"].clone()),
                };
            }
            assert!(Instant::now() < deadline, "no response to request {id}");
            self.read_one();
        }
    }

    /// One request, waited for; panics on an error reply.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params.clone());
        self.wait(id)
            .unwrap_or_else(|e| panic!("{method} {params} failed: {e}"))
    }

    /// Pipelines all requests, then collects the results in request order.
    pub fn call_many(&mut self, reqs: &[(&str, Value)]) -> Vec<Value> {
        let ids: Vec<u64> = reqs.iter().map(|(m, p)| self.send(m, p.clone())).collect();
        ids.iter()
            .zip(reqs)
            .map(|(id, (m, p))| {
                self.wait(*id)
                    .unwrap_or_else(|e| panic!("{m} {p} failed: {e}"))
            })
            .collect()
    }

    /// Waits up to `timeout` for a notification of `method` whose params satisfy `pred`;
    /// earlier non-matching notifications of other kinds are kept.
    pub fn wait_notification(
        &mut self,
        method: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self
                .notifications
                .iter()
                .position(|n| n["method"] == method && pred(&n["params"]))
            {
                return self.notifications.remove(pos).map(|n| n["params"].clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            self.read_one();
        }
    }

    /// Drops queued notifications.
    pub fn clear_notifications(&mut self) {
        self.notifications.clear();
    }
}

/// Every script of every wallet, with a label.
pub fn all_scripts(b: &StandInBitcoind) -> Vec<(String, ScriptBuf)> {
    let chain = b.chain();
    chain
        .wallets()
        .iter()
        .flat_map(|w| {
            ScriptKind::ALL
                .iter()
                .map(|k| (format!("{}/{}", w.name, k.name()), w.script(*k).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The kit's history as Electrum JSON pairs.
pub fn kit_history(b: &StandInBitcoind, script: &ScriptBuf) -> Vec<(String, i64)> {
    b.history(script)
        .into_iter()
        .map(|(t, h)| (t.to_string(), h))
        .collect()
}

/// (tx_hash, height) pairs of an Electrum history list.
pub fn server_history(v: &Value) -> Vec<(String, i64)> {
    v.as_array()
        .unwrap_or_else(|| panic!("history is not a list: {v}"))
        .iter()
        .map(|i| {
            (
                i["tx_hash"].as_str().expect("tx_hash").to_owned(),
                i["height"].as_i64().expect("height"),
            )
        })
        .collect()
}

/// Compares every script's history (order included) between ElectrumX and the kit;
/// returns the mismatches.
pub fn history_mismatches(c: &mut Client, b: &StandInBitcoind) -> Vec<String> {
    let scripts = all_scripts(b);
    let reqs: Vec<(&str, Value)> = scripts
        .iter()
        .map(|(_, s)| ("blockchain.scripthash.get_history", json!([scripthash(s)])))
        .collect();
    let results = c.call_many(&reqs);
    let mut bad = Vec::new();
    for ((label, s), r) in scripts.iter().zip(results) {
        let want = kit_history(b, s);
        let got = server_history(&r);
        if got != want {
            bad.push(format!("{label}: electrumx {got:?} != kit {want:?}"));
        }
    }
    bad
}

/// Polls until every history matches the kit's records; panics with the mismatches after
/// [`SYNC_TIMEOUT`].
pub fn wait_histories_match(c: &mut Client, h: &Harness) {
    let deadline = Instant::now() + SYNC_TIMEOUT;
    loop {
        let bad = history_mismatches(c, &h.bitcoind);
        if bad.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "histories still differ after {SYNC_TIMEOUT:?}:\n{}\nElectrumX log:\n{}",
                bad.join("\n"),
                h.electrumx.log_tail(2000)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts the harness; a failure to install or start ElectrumX fails the test with why.
pub fn harness() -> Harness {
    match Harness::start() {
        Ok(h) => h,
        Err(e) => panic!("cannot start the test harness: {e}"),
    }
}
