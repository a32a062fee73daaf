//! What real servers do that broke the client (INTEROP.md), each replayed by a small scripted
//! server on 127.0.0.1 that answers newline JSON-RPC as the named implementation does (read
//! from its source; the real servers cannot run here). After each quirk the client must still
//! be connected and usable, and no JSON-RPC array batch may appear on the wire.
//!
//! | test | INTEROP row |
//! |---|---|
//! | `electrs_0_9_refuses_the_version_range` | 1 |
//! | `esplora_without_server_features`, `..._and_a_wrong_genesis` | 2 |
//! | `electrs_indexing_is_transient` | 3 |
//! | `fulcrum_status_race_is_waited_out` | 5 |
//! | `esplora_history_limits_are_history_too_large` | 7 |
//! | `history_of_100k_rows_in_one_line`, `pipelined_histories_of_100k_rows_are_streamed_again`, `a_non_history_reply_too_long_ends_at_once` | 8 |
//! | `electrs_id_from_pos_needs_merkle_and_answers_an_object` | 11 |
//! | `optional_methods_degrade_and_no_batches_are_sent` | 12, 13, 14 |

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use electrum_spv::core::chain::{MAINNET, REGTEST};
use electrum_spv::core::hash::Txid;
use electrum_spv::core::history::HistoryFault;
use electrum_spv::core::rpc::{Method, ProtocolVersion};
use electrum_spv::core::script::TxHeight;
use electrum_spv::core::session::FatalError;
use electrum_spv::{
    Client, ClientConfig, Error, Fault, HeaderChain, Network, ScriptRef, verified_history,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use common::{runtime, tcp};

/// The regtest genesis header.
const REGTEST_GENESIS_HEADER: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f2002000000";
/// The mainnet genesis header.
const MAINNET_GENESIS_HEADER: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

// ----- the scripted server -----

/// What the script answers to one request.
enum Answer {
    /// What an electrs-like server answers by default (see [`default_answer`]).
    Default,
    /// `{"result": …}`.
    Result(Value),
    /// `{"error": …}` (an object, or a plain string as old esplora sends).
    Error(Value),
    /// This line as it is (a trailing newline is added).
    Raw(String),
}

/// The script: connection number (0 first) and request to an answer.
type Script = dyn Fn(usize, &Value) -> Answer + Send + Sync;

/// One request the server read.
#[derive(Clone, Debug)]
struct Received {
    conn: usize,
    line: String,
}

/// A scripted server; stops with the runtime.
struct Scripted {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Scripted {
    async fn start(script: impl Fn(usize, &Value) -> Answer + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let log = received.clone();
        tokio::spawn(async move {
            let mut conn = 0;
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, conn, script.clone(), log.clone()));
                conn += 1;
            }
        });
        Scripted { addr, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("log").clone()
    }

    /// The requests of `method`, parsed.
    fn requests(&self, method: &str) -> Vec<(usize, Value)> {
        self.received()
            .into_iter()
            .filter_map(|r| {
                let v: Value = serde_json::from_str(&r.line).ok()?;
                (v["method"] == method).then_some((r.conn, v))
            })
            .collect()
    }

    /// Every line on the wire was a single JSON object: no array batches (row 14).
    fn assert_no_batches(&self) {
        for r in self.received() {
            let v: Value = serde_json::from_str(&r.line).expect("the client sends JSON");
            assert!(v.is_object(), "not a single request: {}", r.line);
        }
    }
}

async fn serve(
    socket: tokio::net::TcpStream,
    conn: usize,
    script: Arc<Script>,
    log: Arc<Mutex<Vec<Received>>>,
) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.lock().expect("log").push(Received {
            conn,
            line: line.clone(),
        });
        let Ok(request) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let id = request["id"].clone();
        let answer = match script(conn, &request) {
            Answer::Default => default_answer(&request),
            other => other,
        };
        let out = match answer {
            Answer::Result(r) => json!({"jsonrpc": "2.0", "result": r, "id": id}).to_string(),
            Answer::Error(e) => json!({"jsonrpc": "2.0", "error": e, "id": id}).to_string(),
            Answer::Raw(line) => line,
            Answer::Default => unreachable!("resolved above"),
        };
        if write.write_all(out.as_bytes()).await.is_err() || write.write_all(b"\n").await.is_err() {
            return;
        }
    }
}

/// An electrs 0.10 on regtest: version "1.4", features with the genesis, header 0, an empty
/// history for every script, -32601 for anything else.
fn default_answer(request: &Value) -> Answer {
    let params = &request["params"];
    match request["method"].as_str().unwrap_or("") {
        "server.version" => Answer::Result(json!(["electrs/0.10.9", "1.4"])),
        "server.features" => Answer::Result(json!({
            "genesis_hash": REGTEST.genesis_hash.to_string(),
            "hosts": {}, "protocol_min": "1.4", "protocol_max": "1.4",
            "server_version": "electrs/0.10.9", "hash_function": "sha256", "pruning": null,
        })),
        "server.ping" => Answer::Result(Value::Null),
        "blockchain.block.header" if params[0] == 0 => {
            Answer::Result(json!(REGTEST_GENESIS_HEADER))
        }
        "blockchain.headers.subscribe" => {
            Answer::Result(json!({"hex": REGTEST_GENESIS_HEADER, "height": 0}))
        }
        "blockchain.scripthash.get_history" | "blockchain.scripthash.listunspent" => {
            Answer::Result(json!([]))
        }
        "blockchain.scripthash.subscribe" => Answer::Result(Value::Null),
        "blockchain.estimatefee" => Answer::Result(json!(0.00012)),
        method => {
            Answer::Error(json!({"code": -32601, "message": format!("unknown method {method}")}))
        }
    }
}

fn config() -> ClientConfig {
    ClientConfig {
        reconnect: None,
        request_timeout: Duration::from_secs(30),
        ..ClientConfig::new(Network::Regtest)
    }
}

async fn connect(server: &Scripted) -> Result<Client, Error> {
    Client::connect(&tcp(server.addr), &config()).await
}

/// Still connected, and an ordinary call still works.
async fn assert_usable(client: &Client) {
    assert!(client.is_connected());
    let header = client
        .block_header(0)
        .await
        .expect("header 0 after the quirk");
    let mut want = [0u8; 80];
    electrum_spv::core::hex::decode_to_slice(REGTEST_GENESIS_HEADER.as_bytes(), &mut want)
        .expect("hex");
    assert_eq!(header, want);
    client.ping().await.expect("ping after the quirk");
}

fn script(n: u8) -> Vec<u8> {
    // A P2WPKH output script with a distinct key hash.
    let mut s = vec![0x00, 0x14];
    s.extend_from_slice(&[n; 20]);
    s
}

// ----- row 1 -----

#[test]
fn electrs_0_9_refuses_the_version_range() {
    runtime().block_on(async {
        // electrs 0.9.x before 0.9.14: only the plain string "1.4"; the `[min, max]` form is
        // refused with an error reply.
        let server = Scripted::start(|_, r| match &r["params"][1] {
            _ if r["method"] != "server.version" => Answer::Default,
            Value::String(v) if v == "1.4" => Answer::Result(json!(["electrs/0.9.10", "1.4"])),
            _ => Answer::Error(json!({"code": 1, "message": "unsupported request"})),
        })
        .await;
        let client = connect(&server).await.expect("connects with a plain 1.4");
        assert_eq!(client.protocol_version(), ProtocolVersion::V1_4);
        let versions = server.requests("server.version");
        assert_eq!(versions.len(), 2, "{versions:?}");
        assert_eq!(versions[0].0, 0);
        assert_eq!(versions[0].1["params"][1], json!(["1.4", "1.6"]));
        assert_eq!(versions[1].0, 1, "the retry is a new connection");
        assert_eq!(versions[1].1["params"], json!(["electrum-spv", "1.4"]));
        assert_usable(&client).await;
        server.assert_no_batches();
    });
}

// ----- row 2 -----

#[test]
fn esplora_without_server_features() {
    runtime().block_on(async {
        for refusal in [
            json!({"code": -32601, "message": "unknown method server.features"}),
            json!("unknown method server.features []"),
        ] {
            let error = refusal.clone();
            let server = Scripted::start(move |_, r| match r["method"].as_str() {
                Some("server.version") => Answer::Result(json!(["electrs-esplora 0.4.1", "1.4"])),
                Some("server.features") => Answer::Error(error.clone()),
                _ => Answer::Default,
            })
            .await;
            let client = connect(&server)
                .await
                .unwrap_or_else(|e| panic!("{refusal}: {e}"));
            assert_eq!(client.protocol_version(), ProtocolVersion::V1_4);
            let header0 = server.requests("blockchain.block.header");
            assert_eq!(
                header0[0].1["params"],
                json!([0]),
                "genesis checked by header 0"
            );
            assert_usable(&client).await;
            server.assert_no_batches();
        }
    });
}

#[test]
fn esplora_without_server_features_and_a_wrong_genesis() {
    runtime().block_on(async {
        let server = Scripted::start(|_, r| match r["method"].as_str() {
            Some("server.features") => Answer::Error(json!("unknown method server.features []")),
            Some("blockchain.block.header") => Answer::Result(json!(MAINNET_GENESIS_HEADER)),
            _ => Answer::Default,
        })
        .await;
        let got = connect(&server).await;
        assert!(
            matches!(got, Err(Error::Session(FatalError::WrongGenesis))),
            "{got:?}"
        );
        assert_ne!(MAINNET.genesis_hash, REGTEST.genesis_hash);
    });
}

// ----- row 3 -----

#[test]
fn electrs_indexing_is_transient() {
    runtime().block_on(async {
        // Every method but version, features and headers fails while the index is built;
        // then it is ready.
        let refusals = Arc::new(AtomicUsize::new(2));
        let left = refusals.clone();
        let server = Scripted::start(move |_, r| match r["method"].as_str() {
            Some("blockchain.scripthash.get_history" | "blockchain.scripthash.subscribe")
                if left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok() =>
            {
                Answer::Error(json!({"code": -32603, "message": "unavailable index"}))
            }
            _ => Answer::Default,
        })
        .await;
        let client = connect(&server).await.expect("connects");
        let spk = script(1);
        for _ in 0..2 {
            let got = client.script_get_history(&spk).await;
            match got {
                Err(ref e @ Error::Unavailable(ref m)) => {
                    assert!(e.is_transient());
                    assert_eq!(m, "unavailable index");
                }
                other => panic!("not Unavailable: {other:?}"),
            }
            assert_usable(&client).await;
        }
        assert_eq!(refusals.load(Ordering::SeqCst), 0);
        assert_eq!(client.script_get_history(&spk).await.expect("ready"), []);
        // A plain internal error is not mistaken for it.
        assert!(
            !Error::Server {
                code: Some(-32603),
                message: "oops".into()
            }
            .is_transient()
        );
        server.assert_no_batches();
    });
}

// ----- row 5 -----

/// Fulcrum answers `subscribe` from a status cache refreshed every 500 ms while `get_history`
/// reads live storage: right after a block the two disagree. The history is asked again
/// (after the next status notification or 1 s) and verifies; an honest server is not called a
/// liar. A status that never matches is a proven fault after three tries.
#[test]
fn fulcrum_status_race_is_waited_out() {
    runtime().block_on(async {
        let stale = "aa".repeat(32);
        let subscribes = Arc::new(AtomicUsize::new(0));
        let seen = subscribes.clone();
        let racy = stale.clone();
        let server = Scripted::start(move |_, r| match r["method"].as_str() {
            // The cached status of before the block, once; then the live one (no history).
            Some("blockchain.scripthash.subscribe") if seen.fetch_add(1, Ordering::SeqCst) == 0 => {
                Answer::Result(json!(racy))
            }
            _ => Answer::Default,
        })
        .await;
        let client = connect(&server).await.expect("connects");
        let mut chain = HeaderChain::from_genesis(Network::Regtest);
        let spk = script(1);
        let started = std::time::Instant::now();
        let history = verified_history(&client, &mut chain, ScriptRef::Script(&spk))
            .await
            .expect("the race is not a lie");
        assert_eq!(history.status, None);
        assert!(history.txs.is_empty());
        assert_eq!(subscribes.load(Ordering::SeqCst), 2);
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "waited before asking again"
        );

        // A status that never matches its history: refused after three tries, typed.
        let server = Scripted::start(move |_, r| match r["method"].as_str() {
            Some("blockchain.scripthash.subscribe") => Answer::Result(json!(stale)),
            _ => Answer::Default,
        })
        .await;
        let client = connect(&server).await.expect("connects");
        let got = verified_history(&client, &mut chain, ScriptRef::Script(&spk)).await;
        assert!(
            matches!(
                got,
                Err(Error::Verification(Fault::History {
                    fault: HistoryFault::StatusMismatch,
                    ..
                }))
            ),
            "{got:?}"
        );
        assert_eq!(server.requests("blockchain.scripthash.subscribe").len(), 3);
        assert_usable(&client).await;
        server.assert_no_batches();
    });
}

// ----- row 7 -----

#[test]
fn esplora_history_limits_are_history_too_large() {
    runtime().block_on(async {
        // Three esplora deployments, one per script: Blockstream with code 1, Blockstream
        // with a plain string, mempool.space with a plain string.
        let server = Scripted::start(|_, r| {
            let refusal = match r["method"].as_str() {
                Some("blockchain.scripthash.get_history" | "blockchain.scripthash.listunspent") => {
                    r["params"][0].as_str().unwrap_or("").to_owned()
                }
                _ => return Answer::Default,
            };
            let [one, two, _] = [1u8, 2, 3].map(|n| Client::script_hash(&script(n)).to_string());
            if refusal == one {
                Answer::Error(json!({"code": 1, "message": "Too many history entries"}))
            } else if refusal == two {
                Answer::Error(json!("Too many history entries"))
            } else {
                Answer::Error(json!(
                    "Too many history transactions (>500). Contact support to raise limits."
                ))
            }
        })
        .await;
        let client = connect(&server).await.expect("connects");
        for n in 1..=3 {
            let got = client.script_get_history(&script(n)).await;
            assert!(
                matches!(got, Err(Error::HistoryTooLarge(_))),
                "{n}: {got:?}"
            );
            let got = client.script_list_unspent(&script(n)).await;
            assert!(
                matches!(got, Err(Error::HistoryTooLarge(_))),
                "{n}: {got:?}"
            );
            assert_usable(&client).await;
        }
        server.assert_no_batches();
    });
}

// ----- row 8 -----

#[test]
fn history_of_100k_rows_in_one_line() {
    const ROWS: usize = 100_000;
    let txid = |i: usize| format!("{:064x}", i + 1);
    runtime().block_on(async {
        let server = Scripted::start(move |_, r| match r["method"].as_str() {
            Some("blockchain.scripthash.get_history") => {
                // As ElectrumX writes it: id last, one line of ~95 bytes per row.
                let mut line = String::with_capacity(ROWS * 96);
                line.push_str("{\"jsonrpc\":\"2.0\",\"result\":[");
                for i in 0..ROWS {
                    if i > 0 {
                        line.push_str(", ");
                    }
                    let height = i / 4 + 1;
                    line.push_str(&format!(
                        "{{\"tx_hash\": \"{}\", \"height\": {height}}}",
                        txid(i)
                    ));
                }
                line.push_str(&format!("],\"id\":{}}}", r["id"]));
                Answer::Raw(line)
            }
            _ => Answer::Default,
        })
        .await;
        let client = connect(&server).await.expect("connects");
        let history = client
            .script_get_history(&script(1))
            .await
            .expect("100k rows accepted");
        assert_eq!(history.len(), ROWS);
        for (i, item) in history.iter().enumerate().step_by(997) {
            assert_eq!(item.txid, txid(i).parse::<Txid>().expect("txid"), "{i}");
            let height = i64::try_from(i / 4 + 1).expect("height");
            assert_eq!(
                item.height,
                TxHeight::from_i64(height).expect("height"),
                "{i}"
            );
        }
        // The same by script hash, then ordinary calls.
        let hash = Client::script_hash(&script(2));
        assert_eq!(
            client
                .scripthash_get_history(&hash)
                .await
                .expect("again")
                .len(),
            ROWS
        );
        assert_usable(&client).await;
        server.assert_no_batches();
    });
}

/// A history of `rows` rows as one line, ~96 bytes per row, with `id` last (ElectrumX) or
/// first (Fulcrum, electrs); ElectrumX also pads a large reply with spaces before its `}`.
fn history_line(id: &Value, rows: usize, id_first: bool, txid: impl Fn(usize) -> String) -> String {
    let mut line = String::with_capacity(rows * 96 + 4096);
    if id_first {
        line.push_str(&format!("{{\"id\":{id},\"jsonrpc\":\"2.0\",\"result\":["));
    } else {
        line.push_str("{\"jsonrpc\":\"2.0\",\"result\":[");
    }
    for i in 0..rows {
        if i > 0 {
            line.push_str(", ");
        }
        let height = i / 4 + 1;
        line.push_str(&format!(
            "{{\"tx_hash\": \"{}\", \"height\": {height}}}",
            txid(i)
        ));
    }
    line.push(']');
    if !id_first {
        line.push_str(&format!(",\"id\":{id}"));
        line.push_str(&" ".repeat(3000));
    }
    line.push('}');
    line
}

#[test]
fn pipelined_histories_of_100k_rows_are_streamed_again() {
    // 32 scripts asked at once as `verified_histories` asks them (each status subscription
    // joined with its history): script 1's history is 100k rows with `id` last, script 2's
    // with `id` first, the others `n` rows each. The two long lines exceed the 2 MiB line
    // limit while other requests are in flight; each must be asked again streamed and come
    // back whole, long before the 30 s request timeout.
    const ROWS: usize = 100_000;
    const SCRIPTS: u8 = 32;
    let txid = |n: u8, i: usize| format!("{:064x}", usize::from(n) * 1_000_000 + i + 1);
    runtime().block_on(async {
        let hashes: Vec<String> = (1..=SCRIPTS)
            .map(|n| Client::script_hash(&script(n)).to_string())
            .collect();
        let server = Scripted::start(move |_, r| match r["method"].as_str() {
            Some("blockchain.scripthash.get_history") => {
                let hash = r["params"][0].as_str().unwrap_or("");
                let Some(n) = hashes.iter().position(|h| h == hash) else {
                    return Answer::Default;
                };
                let n = u8::try_from(n + 1).expect("script number");
                match n {
                    1 | 2 => Answer::Raw(history_line(&r["id"], ROWS, n == 2, |i| txid(n, i))),
                    _ => Answer::Raw(history_line(&r["id"], usize::from(n), false, |i| {
                        txid(n, i)
                    })),
                }
            }
            _ => Answer::Default,
        })
        .await;
        let client = connect(&server).await.expect("connects");
        let started = Instant::now();
        let asks: Vec<_> = (1..=SCRIPTS)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move {
                    let s = script(n);
                    let (status, history) =
                        tokio::join!(client.script_subscribe(&s), client.script_get_history(&s));
                    (n, status, history)
                })
            })
            .collect();
        for ask in asks {
            let (n, status, history) = ask.await.expect("task");
            status.unwrap_or_else(|e| panic!("status of {n}: {e}"));
            let history = history.unwrap_or_else(|e| panic!("history of {n}: {e}"));
            let want = if n <= 2 { ROWS } else { usize::from(n) };
            assert_eq!(history.len(), want, "script {n}");
            for (i, item) in history.iter().enumerate().step_by(997) {
                assert_eq!(
                    item.txid,
                    txid(n, i).parse::<Txid>().expect("txid"),
                    "{n} {i}"
                );
            }
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(15), "took {took:?}");
        // Each long history was asked at most twice (pipelined, then streamed alone); each is
        // sent right behind its own status subscription, so at least one of them went out
        // pipelined and was asked again.
        let asked: Vec<usize> = [1u8, 2]
            .map(|n| {
                let hash = Client::script_hash(&script(n)).to_string();
                server
                    .requests("blockchain.scripthash.get_history")
                    .iter()
                    .filter(|(_, r)| r["params"][0] == hash.as_str())
                    .count()
            })
            .to_vec();
        assert!(asked.iter().all(|a| (1..=2).contains(a)), "{asked:?}");
        assert!(asked.iter().sum::<usize>() >= 3, "{asked:?}");
        assert_usable(&client).await;
        assert_eq!(
            client
                .script_get_history(&script(1))
                .await
                .expect("again, alone")
                .len(),
            ROWS
        );
        server.assert_no_batches();
    });
}

#[test]
fn a_non_history_reply_too_long_ends_at_once() {
    // A 3 MiB `blockchain.transaction.get` answer, `id` at either end: no streaming for it,
    // but a typed error at once instead of a timeout, and the client carries on.
    let raw = "00".repeat(3 << 19);
    runtime().block_on(async {
        let server = Scripted::start(move |_, r| match r["method"].as_str() {
            Some("blockchain.transaction.get")
                if r["params"][0].as_str() == Some(&"11".repeat(32)) =>
            {
                Answer::Raw(format!(
                    "{{\"jsonrpc\":\"2.0\",\"result\":\"{raw}\",\"id\":{}}}",
                    r["id"]
                ))
            }
            Some("blockchain.transaction.get") => Answer::Raw(format!(
                "{{\"id\":{},\"jsonrpc\":\"2.0\",\"result\":\"{raw}\"}}",
                r["id"]
            )),
            _ => Answer::Default,
        })
        .await;
        let client = connect(&server).await.expect("connects");
        for byte in ["11", "22"] {
            let txid: Txid = byte.repeat(32).parse().expect("txid");
            let started = Instant::now();
            // Pipelined with other calls, so nothing is streamed.
            let (got, ping) = tokio::join!(client.transaction_get(&txid), client.ping());
            ping.expect("ping alongside");
            assert!(
                matches!(
                    got,
                    Err(Error::ResponseTooLarge {
                        method: Method::TransactionGet,
                        len,
                    }) if len > 3 << 20
                ),
                "{byte}: {got:?}"
            );
            let took = started.elapsed();
            assert!(took < Duration::from_secs(5), "took {took:?}");
            assert_usable(&client).await;
        }
        server.assert_no_batches();
    });
}

// ----- row 11 -----

#[test]
fn electrs_id_from_pos_needs_merkle_and_answers_an_object() {
    let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
    runtime().block_on(async {
        let server = Scripted::start(move |_, r| match r["method"].as_str() {
            Some("blockchain.transaction.id_from_pos") => {
                match r["params"].as_array().map(Vec::len) {
                    Some(3) => Answer::Result(json!({"tx_hash": txid})),
                    _ => Answer::Error(json!({"code": -32602, "message": "invalid params"})),
                }
            }
            _ => Answer::Default,
        })
        .await;
        let client = connect(&server).await.expect("connects");
        let got = client.transaction_id_from_pos(0, 0).await.expect("txid");
        assert_eq!(got, txid.parse::<Txid>().expect("txid"));
        let sent = server.requests("blockchain.transaction.id_from_pos");
        assert_eq!(sent[0].1["params"], json!([0, 0, false]));
        assert_usable(&client).await;
        server.assert_no_batches();
    });
}

// ----- rows 12 to 14 -----

#[test]
fn optional_methods_degrade_and_no_batches_are_sent() {
    runtime().block_on(async {
        // electrs: no get_mempool; esplora: estimatefee errors outside its targets.
        let server = Scripted::start(|_, r| match r["method"].as_str() {
            Some("blockchain.estimatefee") if r["params"] != json!([2]) => Answer::Error(json!(
                {"code": 1, "message": "fee estimation not available for target"}
            )),
            _ => Answer::Default,
        })
        .await;
        let client = connect(&server).await.expect("connects");
        let spk = script(1);

        let got = client.script_get_mempool(&spk).await;
        assert!(
            matches!(got, Err(Error::NotAvailable(Method::ScriptGetMempool))),
            "{got:?}"
        );
        assert_usable(&client).await;

        // At 1.4 `unsubscribe` does not exist: refused before sending, typed.
        let got = client.script_unsubscribe(&spk).await;
        assert!(
            matches!(got, Err(Error::NotAvailable(Method::ScriptUnsubscribe))),
            "{got:?}"
        );
        assert_usable(&client).await;

        let got = client.estimate_fee(7).await;
        assert!(
            matches!(got, Err(Error::Server { code: Some(1), .. })),
            "{got:?}"
        );
        assert_eq!(
            client.estimate_fee(2).await.expect("estimate"),
            Some(0.00012)
        );
        // The mode argument electrs refuses is never sent at 1.4.
        for (_, r) in server.requests("blockchain.estimatefee") {
            assert_eq!(r["params"].as_array().map(Vec::len), Some(1), "{r}");
        }
        assert_usable(&client).await;

        // The batch_* calls pipeline single requests: no JSON array on the wire.
        let scripts = [script(1), script(2), script(3)];
        let refs: Vec<&[u8]> = scripts.iter().map(Vec::as_slice).collect();
        let histories = client.batch_script_get_history(&refs).await.expect("batch");
        assert_eq!(histories.len(), 3);
        let fees = client.batch_estimate_fee(&[2, 2]).await.expect("batch");
        assert_eq!(fees, [Some(0.00012), Some(0.00012)]);
        let headers = client.batch_block_header(&[0, 0]).await.expect("batch");
        assert_eq!(headers.len(), 2);
        assert_usable(&client).await;
        server.assert_no_batches();
    });
}
