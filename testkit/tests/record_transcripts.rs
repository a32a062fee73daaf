//! Records real exchanges between the core `Session` and ElectrumX 2.0 at protocols 1.4, 1.6
//! and 1.7 into `core/tests/data/transcripts/electrumx_1_*.json`, which
//! `core/tests/session_transcripts.rs` replays offline.
//!
//! `RECORD_TRANSCRIPTS=1 cargo test -p electrum-spv-testkit --test record_transcripts` rewrites
//! them; without the variable the test checks that every transcript exists and parses (it
//! never silently does nothing).
//!
//! File format (one JSON object):
//! * `client_name`, `versions` (`[min, max]`): the session's `Config` (regtest, default
//!   timeouts);
//! * `requests`: the requests issued, in order, as soon as `Ready` is reported, each with its
//!   index as tag; described as `{"method": ..., arguments}` (`spk` as hex, `txid` in display
//!   order);
//! * `transcript`: the raw bytes in the order they crossed the socket, `{"dir": "out"|"in",
//!   "data": exact text}` (one entry per write or read; ElectrumX's padding spaces kept);
//! * `events`: the session's events during the live run, normalized to one line each.
//!
//! The session is driven with `now = 0` throughout and `handle_timeout` is never called, so a
//! replay makes exactly the same calls. After every response has arrived the kit mines one
//! block (its mempool touches the subscribed script), and recording stops once both the
//! header and the script-status notifications have arrived.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use electrum_spv_core::chain::REGTEST;
use electrum_spv_core::hash::Txid;
use electrum_spv_core::rpc::{ProtocolVersion, VersionRange};
use electrum_spv_core::session::{
    Config, Event, FeeMode, Notification, Request, Session, SessionStorage,
};
use electrum_spv_core::time;
use electrum_spv_testkit::chain::BOB;
use electrum_spv_testkit::{Harness, ScriptKind};
use serde_json::{Value, json};

const LINE: usize = 64 * 1024;
const OUT: usize = 16 * 1024;
const PENDING: usize = 32;
type S = Session<'static>;

const FILES: [(&str, &str, &str); 3] = [
    ("electrumx_1_4.json", "1.4", "1.4"),
    ("electrumx_1_6.json", "1.4", "1.6"),
    ("electrumx_1_7.json", "1.4", "1.7"),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data/transcripts")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The request a description stands for; `spk` holds the decoded `spk` argument.
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

/// One line per event; the replay compares these.
fn normalize(ev: &Event<'_>) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match *ev {
        Event::Ready { version } => format!("ready version={version}"),
        Event::Response {
            id,
            method,
            tag,
            result,
        } => format!(
            "response id={id} tag={tag} method={method:?} result={}",
            text(result)
        ),
        Event::ServerError {
            id,
            method,
            tag,
            error,
        } => format!(
            "server_error id={id} tag={tag} method={method:?} code={:?} message={}",
            error.code,
            text(error.message)
        ),
        Event::Notification(Notification::Header { height, header }) => {
            format!("header height={height} hex={}", hex(&header))
        }
        Event::Notification(Notification::ScriptStatus {
            script_hash,
            status,
        }) => format!(
            "script_status script_hash={script_hash} status={}",
            status.map_or("null".to_owned(), |s| s.to_string())
        ),
        Event::Notification(Notification::Outpoint { params }) => {
            format!("outpoint params={}", text(params))
        }
        // Timeouts, protocol errors, failures and streamed items: their Debug form.
        _ => format!("{ev:?}"),
    }
}

/// Feeds `bytes` the documented way, draining events after each line; issues `requests` (tag =
/// index) as soon as `Ready` is seen. The replay in core/tests/session_transcripts.rs does the
/// same.
fn feed(s: &mut S, bytes: &[u8], requests: &[Request<'_>], events: &mut Vec<String>) {
    let mut rest = bytes;
    loop {
        let n = s.handle_input(time::Instant::ZERO, rest);
        rest = &rest[n..];
        while let Some(ev) = s.poll_event() {
            let ready = matches!(ev, Event::Ready { .. });
            events.push(normalize(&ev));
            if ready {
                for (tag, r) in requests.iter().enumerate() {
                    s.request(time::Instant::ZERO, r, tag as u32)
                        .expect("request queued");
                }
            }
        }
        if rest.is_empty() {
            return;
        }
    }
}

fn describe_requests(h: &Harness, v: ProtocolVersion) -> Vec<Value> {
    let spk = h.bitcoind.chain().wallets()[BOB]
        .script(ScriptKind::P2wpkh)
        .to_owned();
    let history = h.bitcoind.history(&spk);
    assert!(
        history.iter().any(|(_, hgt)| *hgt <= 0),
        "the subscribed script has mempool txs, so mining changes its status"
    );
    let (txid, tx_height) = *history
        .iter()
        .find(|(_, hgt)| *hgt > 0)
        .expect("a confirmed tx");
    let (tip, _) = h.bitcoind.tip();
    let spk = hex(spk.as_bytes());
    let txid = txid.to_string();
    let mut d = vec![
        json!({"method": "features"}),
        json!({"method": "headers.subscribe"}),
        json!({"method": "block.header", "height": 5, "cp_height": 0}),
        json!({"method": "block.header", "height": tx_height, "cp_height": tip}),
        json!({"method": "block.headers", "start_height": tip - 13, "count": 14, "cp_height": tip}),
        json!({"method": "block.header", "height": 100_000, "cp_height": 0}),
        json!({"method": "script.get_history", "spk": spk}),
        json!({"method": "script.subscribe", "spk": spk}),
        json!({"method": "script.listunspent", "spk": spk}),
        json!({"method": "script.get_balance", "spk": spk}),
        json!({"method": "script.get_mempool", "spk": spk}),
        json!({"method": "transaction.get", "txid": txid}),
        json!({"method": "transaction.get_merkle", "txid": txid, "height": tx_height}),
        json!({"method": "estimatefee", "blocks": 2, "mode": "CONSERVATIVE"}),
    ];
    d.push(if v < ProtocolVersion::V1_6 {
        json!({"method": "relayfee"})
    } else {
        json!({"method": "mempool.get_info"})
    });
    d.push(json!({"method": "ping", "pong_len": 4}));
    d
}

fn record(h: &Harness, file: &str, min: &str, max: &str) {
    let versions = VersionRange {
        min: ProtocolVersion::parse(min.as_bytes()).unwrap(),
        max: ProtocolVersion::parse(max.as_bytes()).unwrap(),
    };
    let config = Config {
        versions,
        ..Config::new(&REGTEST)
    };
    let descriptions = describe_requests(h, versions.max);
    let spks: Vec<Vec<u8>> = descriptions
        .iter()
        .map(|d| d["spk"].as_str().map(unhex).unwrap_or_default())
        .collect();
    let requests: Vec<Request<'_>> = descriptions
        .iter()
        .zip(&spks)
        .map(|(d, spk)| request(d, spk))
        .collect();

    let mut stream = TcpStream::connect(h.addr()).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut s = Box::new(S::new(
        SessionStorage::owned(LINE, OUT, PENDING),
        config,
        time::Instant::ZERO,
    ));
    let mut transcript: Vec<(&str, String)> = Vec::new();
    let mut events: Vec<String> = Vec::new();
    let mut tx = vec![0u8; OUT];
    let mut rx = vec![0u8; 1 << 16];
    let flush =
        |s: &mut S, stream: &mut TcpStream, transcript: &mut Vec<(&str, String)>, tx: &mut [u8]| {
            let mut out = Vec::new();
            loop {
                let n = s.poll_transmit(tx);
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&tx[..n]);
            }
            if !out.is_empty() {
                stream.write_all(&out).expect("write");
                let data = String::from_utf8(out).expect("the session writes UTF-8");
                transcript.push(("out", data));
            }
        };
    flush(&mut s, &mut stream, &mut transcript, &mut tx);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut mined = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "{file}: recording did not finish; events so far: {events:#?}"
        );
        match stream.read(&mut rx) {
            Ok(0) => panic!("{file}: ElectrumX closed the connection; events: {events:#?}"),
            Ok(n) => {
                let chunk = &rx[..n];
                let data = String::from_utf8(chunk.to_vec()).expect("ElectrumX writes ASCII");
                transcript.push(("in", data));
                feed(&mut s, chunk, &requests, &mut events);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        assert!(s.failure().is_none(), "{file}: session failed: {events:#?}");
        flush(&mut s, &mut stream, &mut transcript, &mut tx);
        let answered = events
            .iter()
            .filter(|e| e.starts_with("response ") || e.starts_with("server_error "))
            .count();
        if !mined && answered == requests.len() {
            h.bitcoind.mine(1);
            mined = true;
        }
        let header = events.iter().any(|e| e.starts_with("header "));
        let status = events.iter().any(|e| e.starts_with("script_status "));
        if header && status {
            break;
        }
    }
    assert_eq!(s.version(), Some(versions.max), "{file}");
    // Written by hand for a stable, readable layout: one entry per line, `dir` before `data`.
    let list = |items: Vec<String>| format!("[\n    {}\n  ]", items.join(",\n    "));
    let string = |s: &str| serde_json::to_string(s).unwrap();
    let text = format!(
        "{{\n  \"about\": {},\n  \"client_name\": {},\n  \"versions\": {},\n  \
         \"requests\": {},\n  \"transcript\": {},\n  \"events\": {}\n}}\n",
        string(
            "Recorded by testkit/tests/record_transcripts.rs from ElectrumX 2.0 over the \
             testkit's regtest chain; replayed by core/tests/session_transcripts.rs."
        ),
        string(config.client_name),
        json!([min, max]),
        list(descriptions.iter().map(Value::to_string).collect()),
        list(
            transcript
                .iter()
                .map(|(dir, data)| format!("{{\"dir\": \"{dir}\", \"data\": {}}}", string(data)))
                .collect()
        ),
        list(events.iter().map(|e| string(e)).collect()),
    );
    serde_json::from_str::<Value>(&text).expect("valid JSON");
    std::fs::create_dir_all(dir()).unwrap();
    std::fs::write(dir().join(file), text).unwrap();
}

/// Every transcript exists, parses and has the documented shape.
fn check(file: &str, min: &str, max: &str) {
    let path = dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (record with RECORD_TRANSCRIPTS=1 cargo test -p electrum-spv-testkit \
             --test record_transcripts)",
            path.display()
        )
    });
    let doc: Value = serde_json::from_str(&text).expect("transcript is JSON");
    assert_eq!(doc["versions"], json!([min, max]), "{file}");
    assert_eq!(
        doc["client_name"],
        Config::new(&REGTEST).client_name,
        "{file}"
    );
    let descriptions = doc["requests"].as_array().expect("requests");
    for d in descriptions {
        let spk = d["spk"].as_str().map(unhex).unwrap_or_default();
        request(d, &spk);
    }
    let entries = doc["transcript"].as_array().expect("transcript");
    assert_eq!(entries[0]["dir"], "out", "{file}: the client speaks first");
    for e in entries {
        assert!(matches!(e["dir"].as_str(), Some("out" | "in")), "{e}");
        assert!(e["data"].is_string(), "{e}");
    }
    assert!(entries.iter().any(|e| e["dir"] == "in"), "{file}");
    let events = doc["events"].as_array().expect("events");
    assert!(
        events
            .first()
            .and_then(Value::as_str)
            .is_some_and(|e| e.starts_with("ready ")),
        "{file}"
    );
}

#[test]
fn transcripts() {
    if std::env::var_os("RECORD_TRANSCRIPTS").is_some_and(|v| v == "1") {
        // Mining changes the chain: one harness per transcript keeps every file over the same
        // starting chain.
        for (file, min, max) in FILES {
            let h = Harness::start().unwrap_or_else(|e| panic!("cannot start the kit: {e}"));
            record(&h, file, min, max);
        }
    }
    for (file, min, max) in FILES {
        check(file, min, max);
    }
}
