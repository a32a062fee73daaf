//! Replays real ElectrumX 2.0 exchanges (recorded by `testkit/tests/record_transcripts.rs`
//! into `tests/data/transcripts/`) through a fresh `Session`, offline.
//!
//! For each of protocols 1.4, 1.6 and 1.7, with the recorded `Config` and request sequence
//! (issued as soon as `Ready` is reported, tag = index):
//! * the bytes the session writes equal the recorded outgoing bytes, at the same points of
//!   the exchange;
//! * the events equal the ones of the live run when the incoming bytes are fed as they were
//!   read, unsplit, split in two at every byte boundary, and one byte at a time;
//! * the events agree with an independent reading of the incoming bytes (serde_json): one
//!   response or server error per request, with the same `result`/`error`, and the header and
//!   script-status notifications;
//! * every result decodes with the typed decoders and checks out with the core's verifiers
//!   (cp_height proofs, header links, the merkle branch, the txid, the recomputed status).

use electrum_spv_core::accumulator::verify_header_proof;
use electrum_spv_core::chain::REGTEST;
use electrum_spv_core::hash::{MerkleNode, Txid};
use electrum_spv_core::header::Header;
use electrum_spv_core::merkle::verify_tx_branch;
use electrum_spv_core::rpc::{ProtocolVersion, VersionRange};
use electrum_spv_core::script::{StatusHasher, script_hash};
use electrum_spv_core::session::{
    Config, Event, FeeMode, Notification, Request, Session, SessionStorage, response,
};
use serde_json::Value;

// The recorder's session type (buffer sizes do not change the bytes or events).
const LINE: usize = 64 * 1024;
const OUT: usize = 16 * 1024;
const PENDING: usize = 32;
type S = Session<'static>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The request a description stands for (same mapping as the recorder's).
fn request<'a>(d: &Value, spk: &'a [u8]) -> Request<'a> {
    let u = |k: &str| d[k].as_u64().unwrap_or_else(|| panic!("{k} in {d}")) as u32;
    let txid = || Txid::from_display_hex(d["txid"].as_str().expect("txid").as_bytes()).unwrap();
    match d["method"].as_str().expect("method") {
        "features" => Request::Features,
        "headers.subscribe" => Request::HeadersSubscribe,
        "ping" => Request::Ping {
            pong_len: u("pong_len"),
        },
        "block.header" => Request::BlockHeader {
            height: u("height"),
            cp_height: u("cp_height"),
        },
        "block.headers" => Request::BlockHeaders {
            start_height: u("start_height"),
            count: u("count"),
            cp_height: u("cp_height"),
        },
        "estimatefee" => Request::EstimateFee {
            blocks: u("blocks"),
            mode: match d["mode"].as_str() {
                Some("CONSERVATIVE") => Some(FeeMode::Conservative),
                Some("ECONOMICAL") => Some(FeeMode::Economical),
                _ => None,
            },
        },
        "relayfee" => Request::RelayFee,
        "mempool.get_info" => Request::MempoolInfo,
        "script.get_history" => Request::ScriptGetHistory(spk),
        "script.subscribe" => Request::ScriptSubscribe(spk),
        "script.listunspent" => Request::ScriptListUnspent(spk),
        "script.get_balance" => Request::ScriptGetBalance(spk),
        "script.get_mempool" => Request::ScriptGetMempool(spk),
        "transaction.get" => Request::TransactionGet(txid()),
        "transaction.get_merkle" => Request::TransactionGetMerkle {
            txid: txid(),
            height: u("height"),
        },
        other => panic!("unknown request description {other}"),
    }
}

/// An owned event: its normalized line (the recorder's format) plus what the checks need.
#[derive(Clone, Debug, PartialEq)]
enum Ev {
    Ready(ProtocolVersion),
    Response {
        id: u64,
        tag: u32,
        method: String,
        result: Vec<u8>,
    },
    ServerError {
        id: u64,
        tag: u32,
        method: String,
        code: Option<i64>,
        message: Vec<u8>,
    },
    Header {
        height: u32,
        header: [u8; 80],
    },
    Status {
        script_hash: String,
        status: Option<String>,
    },
    Other(String),
}

impl Ev {
    fn of(ev: &Event<'_>) -> Ev {
        match *ev {
            Event::Ready { version } => Ev::Ready(version),
            Event::Response {
                id,
                method,
                tag,
                result,
            } => Ev::Response {
                id,
                tag,
                method: format!("{method:?}"),
                result: result.to_vec(),
            },
            Event::ServerError {
                id,
                method,
                tag,
                error,
            } => Ev::ServerError {
                id,
                tag,
                method: format!("{method:?}"),
                code: error.code,
                message: error.message.to_vec(),
            },
            Event::Notification(Notification::Header { height, header }) => {
                Ev::Header { height, header }
            }
            Event::Notification(Notification::ScriptStatus {
                script_hash,
                status,
            }) => Ev::Status {
                script_hash: script_hash.to_string(),
                status: status.map(|s| s.to_string()),
            },
            _ => Ev::Other(format!("{ev:?}")),
        }
    }

    /// The recorder's one-line form.
    fn line(&self) -> String {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Ev::Ready(v) => format!("ready version={v}"),
            Ev::Response {
                id,
                tag,
                method,
                result,
            } => format!(
                "response id={id} tag={tag} method={method} result={}",
                text(result)
            ),
            Ev::ServerError {
                id,
                tag,
                method,
                code,
                message,
            } => format!(
                "server_error id={id} tag={tag} method={method} code={code:?} message={}",
                text(message)
            ),
            Ev::Header { height, header } => format!("header height={height} hex={}", hex(header)),
            Ev::Status {
                script_hash,
                status,
            } => format!(
                "script_status script_hash={script_hash} status={}",
                status.as_deref().unwrap_or("null")
            ),
            Ev::Other(s) => s.clone(),
        }
    }
}

struct Transcript {
    name: String,
    config: Config,
    descriptions: Vec<Value>,
    spks: Vec<Vec<u8>>,
    /// `(outgoing, incoming)` entries in order.
    entries: Vec<(bool, Vec<u8>)>,
    events: Vec<String>,
}

impl Transcript {
    fn load(name: &str) -> Transcript {
        let path = format!(
            "{}/tests/data/transcripts/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let v = |i: usize| ProtocolVersion::parse(doc["versions"][i].as_str().unwrap().as_bytes());
        let mut config = Config::new(&REGTEST);
        assert_eq!(doc["client_name"], config.client_name);
        config.versions = VersionRange {
            min: v(0).unwrap(),
            max: v(1).unwrap(),
        };
        let descriptions = doc["requests"].as_array().unwrap().clone();
        let spks = descriptions
            .iter()
            .map(|d| d["spk"].as_str().map(unhex).unwrap_or_default())
            .collect();
        let entries = doc["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let out = match e["dir"].as_str() {
                    Some("out") => true,
                    Some("in") => false,
                    other => panic!("dir {other:?}"),
                };
                (out, e["data"].as_str().unwrap().as_bytes().to_vec())
            })
            .collect();
        let events = doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect();
        Transcript {
            name: name.to_owned(),
            config,
            descriptions,
            spks,
            entries,
            events,
        }
    }

    fn requests(&self) -> Vec<Request<'_>> {
        self.descriptions
            .iter()
            .zip(&self.spks)
            .map(|(d, spk)| request(d, spk))
            .collect()
    }

    fn incoming(&self) -> Vec<u8> {
        self.entries
            .iter()
            .filter(|(out, _)| !out)
            .flat_map(|(_, d)| d.iter().copied())
            .collect()
    }

    fn outgoing(&self) -> Vec<u8> {
        self.entries
            .iter()
            .filter(|(out, _)| *out)
            .flat_map(|(_, d)| d.iter().copied())
            .collect()
    }
}

/// A session being replayed: issues the requests when `Ready` is reported, as the recorder did.
struct Replay<'t> {
    s: Box<S>,
    requests: Vec<Request<'t>>,
    events: Vec<Ev>,
}

impl<'t> Replay<'t> {
    fn new(t: &'t Transcript) -> Replay<'t> {
        Replay {
            s: Box::new(S::new(
                SessionStorage::owned(LINE, OUT, PENDING),
                t.config,
                at(0),
            )),
            requests: t.requests(),
            events: Vec::new(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        loop {
            let n = self.s.handle_input(at(0), rest);
            assert!(n <= rest.len());
            rest = &rest[n..];
            while let Some(ev) = self.s.poll_event() {
                let ev = Ev::of(&ev);
                let ready = matches!(ev, Ev::Ready(_));
                self.events.push(ev);
                if ready {
                    for (tag, r) in self.requests.iter().enumerate() {
                        self.s
                            .request(at(0), r, tag as u32)
                            .expect("request queued");
                    }
                }
            }
            if rest.is_empty() {
                return;
            }
            assert!(n > 0, "handle_input made no progress");
        }
    }

    fn transmit(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        // A small buffer: transmission in pieces must not change the bytes.
        let mut buf = [0u8; 100];
        loop {
            let n = self.s.poll_transmit(&mut buf);
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn lines(&self) -> Vec<String> {
        self.events.iter().map(Ev::line).collect()
    }
}

/// Feeds the incoming bytes in the given pieces; returns the events and everything written.
fn replay_pieces(t: &Transcript, pieces: &[&[u8]]) -> (Vec<String>, Vec<u8>) {
    let mut r = Replay::new(t);
    let mut out = r.transmit();
    for p in pieces {
        r.feed(p);
        out.extend(r.transmit());
    }
    (r.lines(), out)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fed as recorded: the session writes exactly the recorded bytes between the same reads,
/// and produces the live run's events.
fn as_recorded(t: &Transcript) -> Vec<Ev> {
    let mut r = Replay::new(t);
    let mut expected_out = Vec::new();
    for (i, (out, data)) in t.entries.iter().enumerate() {
        if *out {
            expected_out.extend_from_slice(data);
        } else {
            assert_eq!(
                text(&r.transmit()),
                text(&expected_out),
                "{}: bytes written before entry {i}",
                t.name
            );
            expected_out.clear();
            r.feed(data);
        }
    }
    assert_eq!(text(&r.transmit()), text(&expected_out), "{}: last", t.name);
    assert_eq!(r.lines(), t.events, "{}: events as recorded", t.name);
    assert_eq!(r.s.in_flight(), 0, "{}: every request answered", t.name);
    r.events
}

/// Every way of splitting the incoming bytes gives the same events and the same output.
fn splits(t: &Transcript) {
    let incoming = t.incoming();
    let outgoing = t.outgoing();
    let check = |what: &str, (events, out): (Vec<String>, Vec<u8>)| {
        assert_eq!(events, t.events, "{}: events, {what}", t.name);
        assert_eq!(
            text(&out),
            text(&outgoing),
            "{}: bytes written, {what}",
            t.name
        );
    };
    check("unsplit", replay_pieces(t, &[&incoming]));
    for k in 1..incoming.len() {
        let (a, b) = incoming.split_at(k);
        check(&format!("split at {k}"), replay_pieces(t, &[a, b]));
    }
    let bytes: Vec<&[u8]> = incoming.chunks(1).collect();
    check("one byte at a time", replay_pieces(t, &bytes));
}

/// The events agree with serde_json's reading of the incoming bytes.
fn oracle(t: &Transcript, events: &[Ev]) {
    let incoming = t.incoming();
    let requests = t.requests();
    let mut expected = Vec::new();
    let mut msgs = Vec::new();
    for line in incoming.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(line).expect("ElectrumX sends JSON") {
            Value::Array(items) => msgs.extend(items),
            v => msgs.push(v),
        }
    }
    // ids of the requests, in the order the session handed them out.
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Ev::Response { id, tag, .. } | Ev::ServerError { id, tag, .. } => Some((*tag, *id)),
            _ => None,
        })
        .fold(vec![u64::MAX; requests.len()], |mut ids, (tag, id)| {
            ids[tag as usize] = id;
            ids
        });
    assert!(
        ids.iter().all(|&id| id != u64::MAX),
        "{}: every request has a reply",
        t.name
    );
    let mut ready = false;
    for m in &msgs {
        if let Some(id) = m.get("id").and_then(Value::as_u64) {
            let Some(tag) = ids.iter().position(|&i| i == id) else {
                // server.version and server.features: negotiation, then Ready.
                if m["result"].get("genesis_hash").is_some() {
                    expected.push(format!("ready {}", t.config.versions.max));
                    ready = true;
                }
                continue;
            };
            let method = format!("{:?}", requests[tag].method());
            match m.get("error").filter(|e| !e.is_null()) {
                Some(e) => expected.push(format!(
                    "error {id} {tag} {method} {:?} {}",
                    e["code"].as_i64(),
                    e["message"].as_str().unwrap()
                )),
                None => expected.push(format!("response {id} {tag} {method} {}", m["result"])),
            }
        } else {
            let params = &m["params"];
            match m["method"].as_str().unwrap() {
                "blockchain.headers.subscribe" => expected.push(format!(
                    "header {} {}",
                    params[0]["height"], params[0]["hex"]
                )),
                "blockchain.scripthash.subscribe" | "blockchain.scriptpubkey.subscribe" => {
                    expected.push(format!("status {} {}", params[0], params[1]))
                }
                "server.ping" => {}
                other => panic!("unexpected notification {other}"),
            }
        }
    }
    assert!(ready, "{}: features reply seen", t.name);
    let got: Vec<String> = events
        .iter()
        .map(|e| match e {
            Ev::Ready(v) => format!("ready {v}"),
            Ev::Response {
                id,
                tag,
                method,
                result,
            } => {
                let v: Value = serde_json::from_slice(result).expect("result span is JSON");
                format!("response {id} {tag} {method} {v}")
            }
            Ev::ServerError {
                id,
                tag,
                method,
                code,
                message,
            } => format!("error {id} {tag} {method} {code:?} {}", text(message)),
            Ev::Header { height, header } => format!("header {height} \"{}\"", hex(header)),
            Ev::Status {
                script_hash,
                status,
            } => format!(
                "status \"{script_hash}\" {}",
                status
                    .as_ref()
                    .map_or("null".to_owned(), |s| format!("\"{s}\""))
            ),
            Ev::Other(s) => panic!("{}: unexpected event {s}", t.name),
        })
        .collect();
    assert_eq!(got, expected, "{}: events vs serde_json", t.name);
}

/// Every result decodes with the typed decoders, and what can be verified verifies.
fn decoded(t: &Transcript, events: &[Ev]) {
    let requests = t.requests();
    let result = |tag: usize| -> &[u8] {
        events
            .iter()
            .find_map(|e| match e {
                Ev::Response { tag: t, result, .. } if *t as usize == tag => Some(&result[..]),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{}: no response for {:?}", t.name, requests[tag]))
    };
    let v = t.config.versions.max;
    let mut tip = None;
    let mut roots = Vec::new();
    let mut header_at = std::collections::BTreeMap::new();
    let mut history = Vec::new();
    let mut status = None;
    let mut spk: &[u8] = &[];
    for (tag, r) in requests.iter().enumerate() {
        if let Request::BlockHeader {
            height: 100_000, ..
        } = r
        {
            assert!(
                events.iter().any(|e| matches!(e,
                    Ev::ServerError { tag: g, code: Some(1), .. } if *g as usize == tag)),
                "{}: out-of-range height refused",
                t.name
            );
            continue;
        }
        let res = result(tag);
        match *r {
            Request::Features => {
                assert_eq!(
                    response::features_genesis(res).unwrap(),
                    REGTEST.genesis_hash
                )
            }
            Request::HeadersSubscribe => {
                let (h, header) = response::headers_subscribe(res).unwrap();
                header_at.insert(h, header);
                tip = Some((h, header));
            }
            Request::BlockHeader {
                height,
                cp_height: 0,
            } => {
                header_at.insert(height, response::block_header(res).unwrap());
            }
            Request::BlockHeader { height, cp_height } => {
                let p = response::block_header_proof(res).unwrap();
                let header = p.header.unwrap();
                let branch: Vec<MerkleNode> = p.branch.iter().map(Result::unwrap).collect();
                verify_header_proof(
                    &Header::from_bytes(&header).block_hash(),
                    height,
                    cp_height,
                    &branch,
                    &p.root,
                )
                .expect("cp_height proof verifies");
                header_at.insert(height, header);
                roots.push(p.root);
            }
            Request::BlockHeaders {
                start_height,
                count,
                cp_height,
            } => {
                let hs = response::block_headers(res).unwrap();
                assert_eq!((hs.count, hs.max), (count, 2016));
                let headers: Vec<[u8; 80]> = hs.headers().map(Result::unwrap).collect();
                assert_eq!(headers.len(), count as usize);
                for (i, w) in headers.windows(2).enumerate() {
                    assert_eq!(
                        Header::from_bytes(&w[1]).prev_blockhash,
                        Header::from_bytes(&w[0]).block_hash(),
                        "link at {}",
                        start_height + i as u32 + 1
                    );
                }
                for (i, h) in headers.iter().enumerate() {
                    header_at.insert(start_height + i as u32, *h);
                }
                let (branch, root) = hs.proof.expect("proof with cp_height");
                let branch: Vec<MerkleNode> = branch.iter().map(Result::unwrap).collect();
                let last = start_height + count - 1;
                verify_header_proof(
                    &Header::from_bytes(&headers[headers.len() - 1]).block_hash(),
                    last,
                    cp_height,
                    &branch,
                    &root,
                )
                .expect("proof of the last header verifies");
                roots.push(root);
            }
            Request::ScriptGetHistory(s) => {
                spk = s;
                history = response::history(res)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect::<Vec<_>>();
                assert!(!history.is_empty());
            }
            Request::ScriptSubscribe(_) => status = response::subscribe_status(res).unwrap(),
            Request::ScriptListUnspent(_) => {
                assert!(response::utxos(res).unwrap().all(|u| u.is_ok()));
            }
            Request::ScriptGetBalance(_) => {
                response::balance(res).unwrap();
            }
            Request::ScriptGetMempool(_) => {
                let mempool: Vec<_> = response::history(res)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                assert!(!mempool.is_empty() && mempool.iter().all(|i| i.fee.is_some()));
            }
            Request::TransactionGet(txid) => {
                let raw = unhex(text(response::transaction_hex(res).unwrap()).as_str());
                assert_eq!(electrum_spv_core::tx::txid(&raw).unwrap(), txid);
            }
            Request::EstimateFee { .. } | Request::RelayFee => {
                assert!(response::fee_rate(res).unwrap().is_some());
            }
            Request::MempoolInfo => assert!(res.starts_with(b"{\"mempoolminfee\"")),
            Request::Ping { pong_len } => {
                let want = if v >= ProtocolVersion::V1_7 {
                    format!("{{\"data\":\"{}\"}}", "0".repeat(pong_len as usize))
                } else {
                    "null".to_owned()
                };
                assert_eq!(text(res), want);
            }
            Request::TransactionGetMerkle { .. } => {} // below, once every header is known
            ref other => panic!("not in the transcripts: {other:?}"),
        }
    }
    // Both cp_height proofs are against the same root.
    assert_eq!(roots.len(), 2);
    assert_eq!(roots[0], roots[1]);
    // The merkle branch verifies against the merkle root of the header at its height.
    for (tag, r) in requests.iter().enumerate() {
        if let Request::TransactionGetMerkle { txid, height } = *r {
            let p = response::merkle_proof(result(tag)).unwrap();
            assert_eq!(p.block_height, height);
            let branch: Vec<MerkleNode> = p.branch.iter().map(Result::unwrap).collect();
            let root = Header::from_bytes(&header_at[&height]).merkle_root;
            verify_tx_branch(&txid, p.pos, &branch, &root).expect("merkle branch verifies");
        }
    }
    // The status is the one recomputed from the history.
    let mut hasher = StatusHasher::new();
    for i in &history {
        hasher.push(&i.txid, i.height);
    }
    assert_eq!(status, hasher.finish());
    // Notifications: the next block on the tip, and the subscribed script's new status.
    let (tip_height, tip_header) = tip.expect("tip");
    let mut notified = 0;
    for e in events {
        match e {
            Ev::Header { height, header } => {
                assert_eq!(*height, tip_height + 1);
                assert_eq!(
                    Header::from_bytes(header).prev_blockhash,
                    Header::from_bytes(&tip_header).block_hash()
                );
                notified += 1;
            }
            Ev::Status {
                script_hash: h,
                status: s,
            } => {
                assert_eq!(*h, script_hash(spk).to_string());
                assert_ne!(s.as_deref(), status.map(|s| s.to_string()).as_deref());
                notified += 1;
            }
            _ => {}
        }
    }
    assert_eq!(notified, 2);
}

fn check(name: &str, version: ProtocolVersion) {
    let t = Transcript::load(name);
    let events = as_recorded(&t);
    assert_eq!(events.first(), Some(&Ev::Ready(version)));
    oracle(&t, &events);
    decoded(&t, &events);
    splits(&t);
}

#[test]
fn electrumx_1_4() {
    check("electrumx_1_4.json", ProtocolVersion::V1_4);
}

#[test]
fn electrumx_1_6() {
    check("electrumx_1_6.json", ProtocolVersion::V1_6);
}

#[test]
fn electrumx_1_7() {
    check("electrumx_1_7.json", ProtocolVersion::V1_7);
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
