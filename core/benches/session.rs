//! Whole responses through the sans-IO session against the bound a std client pays: serde_json
//! decoding the same line into owned structs, then hex-decoding each txid or header, as
//! rust-electrum-client does — without verification or status hashing.
//!
//! * `history_10000`: a 10,000-row `blockchain.scripthash.get_history` response (~1 MB line).
//!   `session_status`: bytes → `handle_input` → `Event::Response` → `response::history` → every
//!   row into a `StatusHasher` → the status.
//! * `headers_2016_list` (protocol 1.6 `headers` list) and `headers_2016_hex` (below 1.6, one
//!   `hex` string): the real mainnet period 822528..824543. `session_verify`: bytes → session →
//!   `response::block_headers` → every header into a `HeaderVerifier` anchored at the 822528
//!   checkpoint (links, proof of work, versions, MTP, retarget).
//! * `ours_decode_only`: the same session and decoders without the hasher or verifier.
//! * `bound_serde_json_owned`: `serde_json::from_slice` into owned structs plus hex decoding
//!   (with this crate's hex decoder, so only the JSON and allocation strategies differ): the
//!   strict bound.
//! * `rust_electrum_client_types`: `serde_json::from_slice` into rust-electrum-client's own
//!   result types (rust-bitcoin `Txid` from hex through serde; headers through
//!   `Vec<u8>::from_hex` and `consensus::deserialize`). The real client also builds a
//!   `serde_json::Value` of every line first, which is left out, so the real client is slower.
//!
//! Each timed iteration gets a fresh session that has negotiated and sent the request (built
//! outside the timed region, via `iter_custom`). Before measuring, a counting global allocator
//! checks that our path makes no heap allocation at all, and prints both counts.
//!
//! `cargo bench -p electrum-spv-core --bench session`; `scripts/bench-ratios.sh` reports
//! bound time / our time (target >= 2) and the same for the second bound.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, Throughput, criterion_group, criterion_main};
use electrum_spv_core::chain::{Anchor, HeaderVerifier, MAINNET};
use electrum_spv_core::hash::sha256d;
use electrum_spv_core::hex;
use electrum_spv_core::script::{CanonicalOrder, StatusHasher, TxHeight};
use electrum_spv_core::session::{Config, Event, Request, Session, SessionStorage, response};
use electrum_spv_core::{Status, Txid};
use serde::Deserialize;

// ----- counting allocator -----

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, count_allocations};

#[global_allocator]
static GLOBAL: Counting = Counting;

// ----- inputs -----

const HISTORY_LEN: u32 = 10_000;
const START: u32 = 822_528;
const PERIOD: usize = 2016;
/// Line buffer: the history line is ~1.0 MB.
const LINE: usize = 1_200_000;
type Client = Session<'static>;

/// A fresh session with a line buffer for the largest answer measured.
fn client() -> Client {
    Session::new(
        SessionStorage::owned(LINE, 1024, 4),
        Config::new(&MAINNET),
        at(0),
    )
}
/// `server.version` is id 0, `server.features` id 1, the measured request id 2.
const RESPONSE_ID: u64 = 2;
const NOW: u64 = 1_000;
const TAG: u32 = 7;

/// ElectrumX writes Python's `json.dumps` form: `", "` and `": "` separators, `result` first.
fn envelope(result: &str, id: u64) -> Vec<u8> {
    format!("{{\"jsonrpc\": \"2.0\", \"result\": {result}, \"id\": {id}}}\n").into_bytes()
}

fn version_reply(version: &str) -> Vec<u8> {
    envelope(&format!("[\"ElectrumX 1.18.0\", \"{version}\"]"), 0)
}

fn features_reply() -> Vec<u8> {
    let result = format!(
        "{{\"hosts\": {{}}, \"pruning\": null, \"server_version\": \"ElectrumX 1.18.0\", \
         \"protocol_min\": \"1.4\", \"protocol_max\": \"1.6\", \"genesis_hash\": \"{}\", \
         \"hash_function\": \"sha256\", \"services\": []}}",
        MAINNET.genesis_hash
    );
    envelope(&result, 1)
}

/// History rows: sha256d(index) txids, increasing heights, then a mempool tail in canonical
/// order (height 0 before -1, ascending txid within each) with fees.
fn history_rows() -> Vec<(Txid, TxHeight, Option<u64>)> {
    let txid = |i: u32| Txid::from_byte_array(sha256d(&i.to_le_bytes()));
    let mempool = 6;
    let confirmed = HISTORY_LEN - mempool;
    let mut rows: Vec<_> = (0..confirmed)
        .map(|i| (txid(i), TxHeight::Confirmed(650_000 + i * 17), None))
        .collect();
    let mut tail: Vec<_> = (confirmed..HISTORY_LEN)
        .map(|i| {
            let height = if i % 3 == 0 {
                TxHeight::MempoolUnconfirmedParent
            } else {
                TxHeight::Mempool
            };
            (txid(i), height, Some(u64::from(i % 7 + 1) * 141))
        })
        .collect();
    tail.sort_by_key(|(t, h, _)| (h.to_i64() == -1, t.to_display_hex()));
    rows.extend(tail);
    rows
}

fn history_line(rows: &[(Txid, TxHeight, Option<u64>)]) -> Vec<u8> {
    let items: Vec<String> = rows
        .iter()
        .map(|(txid, height, fee)| match fee {
            None => format!(
                "{{\"tx_hash\": \"{txid}\", \"height\": {}}}",
                height.to_i64()
            ),
            Some(fee) => format!(
                "{{\"tx_hash\": \"{txid}\", \"height\": {}, \"fee\": {fee}}}",
                height.to_i64()
            ),
        })
        .collect();
    envelope(&format!("[{}]", items.join(", ")), RESPONSE_ID)
}

fn period_headers() -> Vec<[u8; 80]> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mainnet/headers_822528_830592.bin"
    );
    let raw = std::fs::read(path).expect("bundled headers");
    raw.chunks_exact(80)
        .take(PERIOD)
        .map(|c| c.try_into().expect("80 bytes"))
        .collect()
}

fn header_hex(h: &[u8; 80]) -> String {
    let mut out = [0u8; 160];
    hex::encode_to_slice(h, &mut out).expect("sized");
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// ElectrumX's `block_headers`: `count`, `max`, then `headers` (1.6) or `hex` (below).
fn headers_list_line(headers: &[[u8; 80]]) -> Vec<u8> {
    let list: Vec<String> = headers
        .iter()
        .map(|h| format!("\"{}\"", header_hex(h)))
        .collect();
    let result = format!(
        "{{\"count\": {}, \"max\": 2016, \"headers\": [{}]}}",
        headers.len(),
        list.join(", ")
    );
    envelope(&result, RESPONSE_ID)
}

fn headers_hex_line(headers: &[[u8; 80]]) -> Vec<u8> {
    let hex: String = headers.iter().map(header_hex).collect();
    let result = format!(
        "{{\"count\": {}, \"max\": 2016, \"hex\": \"{hex}\"}}",
        headers.len()
    );
    envelope(&result, RESPONSE_ID)
}

/// The line as serde_json sees it: without the newline framing.
fn json(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").expect("framed line")
}

// ----- our path -----

/// Canned negotiation and the request whose answer is measured.
struct Script {
    version: Vec<u8>,
    features: Vec<u8>,
    request: Request<'static>,
}

impl Script {
    /// Resets `s` to a fresh session that negotiated and has the request in flight (untimed).
    fn prepare(&self, s: &mut Client) {
        *s = client();
        drain_transmit(s);
        for line in [&self.version, &self.features] {
            feed(s, line, |_| ());
            drain_transmit(s);
        }
        assert!(s.is_ready(), "negotiation failed: {:?}", s.failure());
        let id = s
            .request(at(NOW), &self.request, TAG)
            .expect("request queued");
        assert_eq!(id, RESPONSE_ID);
        drain_transmit(s);
    }
}

fn drain_transmit(s: &mut Client) {
    let mut sink = [0u8; 1024];
    while s.poll_transmit(&mut sink) > 0 {}
}

/// Feeds `line` as read from the socket; calls `on_result` with the response's `result`.
fn feed<R>(s: &mut Client, line: &[u8], mut on_result: impl FnMut(&[u8]) -> R) -> Option<R> {
    let mut out = None;
    let mut rest = line;
    while !rest.is_empty() {
        let n = s.handle_input(at(NOW), rest);
        rest = &rest[n..];
        while let Some(event) = s.poll_event() {
            match event {
                Event::Response {
                    id, tag, result, ..
                } => {
                    assert_eq!((id, tag), (RESPONSE_ID, TAG));
                    out = Some(on_result(result));
                }
                Event::Ready { .. } => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    out
}

fn ours_status(s: &mut Client, line: &[u8]) -> Option<Status> {
    feed(s, line, |result| {
        let mut hasher = StatusHasher::new();
        for item in response::history(result).expect("history list") {
            let item = item.expect("history item");
            hasher.push(&item.txid, item.height);
        }
        hasher.finish()
    })
    .expect("a response")
}

fn ours_history_decode(s: &mut Client, line: &[u8]) -> u64 {
    feed(s, line, |result| {
        let mut acc = 0u64;
        for item in response::history(result).expect("history list") {
            let item = item.expect("history item");
            acc ^= u64::from(item.txid.as_byte_array()[0])
                ^ item.height.to_i64() as u64
                ^ item.fee.unwrap_or(0);
        }
        acc
    })
    .expect("a response")
}

fn ours_verify(s: &mut Client, line: &[u8], anchor: Anchor) -> Option<u32> {
    feed(s, line, |result| {
        let headers = response::block_headers(result).expect("headers result");
        let mut v = HeaderVerifier::new(&MAINNET, anchor);
        for h in headers.headers() {
            v.push(&h.expect("header hex")).expect("valid header");
        }
        v.tip().map(|t| t.height)
    })
    .expect("a response")
}

fn ours_headers_decode(s: &mut Client, line: &[u8]) -> u8 {
    feed(s, line, |result| {
        let headers = response::block_headers(result).expect("headers result");
        let mut acc = 0u8;
        for h in headers.headers() {
            acc ^= h.expect("header hex")[0];
        }
        acc
    })
    .expect("a response")
}

// ----- the bound: serde_json into owned structs -----

#[derive(Deserialize)]
struct HistoryResponse {
    id: u64,
    result: Vec<HistoryRow>,
}

#[derive(Deserialize)]
struct HistoryRow {
    tx_hash: String,
    height: i64,
    fee: Option<u64>,
}

#[derive(Deserialize)]
struct HeadersListResponse {
    id: u64,
    result: HeadersList,
}

#[derive(Deserialize)]
struct HeadersList {
    count: u32,
    max: u32,
    headers: Vec<String>,
}

#[derive(Deserialize)]
struct HeadersHexResponse {
    id: u64,
    result: HeadersHex,
}

#[derive(Deserialize)]
struct HeadersHex {
    count: u32,
    max: u32,
    hex: String,
}

fn serde_history(json: &[u8]) -> u64 {
    let r: HistoryResponse = serde_json::from_slice(json).expect("serde_json");
    assert_eq!(r.id, RESPONSE_ID);
    let mut acc = 0u64;
    for row in &r.result {
        let mut txid = [0u8; 32];
        hex::decode_reversed_to_slice(row.tx_hash.as_bytes(), &mut txid).expect("txid hex");
        acc ^= u64::from(txid[0]) ^ row.height as u64 ^ row.fee.unwrap_or(0);
    }
    acc
}

fn serde_headers_list(json: &[u8]) -> u8 {
    let r: HeadersListResponse = serde_json::from_slice(json).expect("serde_json");
    assert_eq!(r.id, RESPONSE_ID);
    assert!(r.result.count as usize == r.result.headers.len() && r.result.max >= r.result.count);
    let mut acc = 0u8;
    for h in &r.result.headers {
        let mut header = [0u8; 80];
        hex::decode_to_slice(h.as_bytes(), &mut header).expect("header hex");
        acc ^= header[0];
    }
    acc
}

fn serde_headers_hex(json: &[u8]) -> u8 {
    let r: HeadersHexResponse = serde_json::from_slice(json).expect("serde_json");
    assert_eq!(r.id, RESPONSE_ID);
    assert!(r.result.hex.len() == r.result.count as usize * 160 && r.result.max >= r.result.count);
    // rust-electrum-client: `Vec::<u8>::from_hex(hex)`, then one header per 80 bytes.
    let mut raw = vec![0u8; r.result.hex.len() / 2];
    hex::decode_to_slice(r.result.hex.as_bytes(), &mut raw).expect("headers hex");
    let mut acc = 0u8;
    for chunk in raw.chunks_exact(80) {
        let header: [u8; 80] = chunk.try_into().expect("80 bytes");
        acc ^= black_box(header)[0];
    }
    acc
}

// ----- the second bound: rust-electrum-client's own types -----
//
// rust-electrum-client deserializes results into rust-bitcoin types: `Txid` from hex through
// serde, header chunks through `Vec<u8>::from_hex` and `consensus::deserialize`. It also parses
// every line into a `serde_json::Value` first and then converts; that step is left out here, so
// this bound is faster than the real client.

#[derive(Deserialize)]
struct RecHistoryResponse {
    id: u64,
    result: Vec<RecHistoryRow>,
}

#[derive(Deserialize)]
struct RecHistoryRow {
    height: i32,
    tx_hash: bitcoin::Txid,
    fee: Option<u64>,
}

fn rec_from_hex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    use bitcoin::hex::FromHex;
    let s = String::deserialize(d)?;
    Vec::<u8>::from_hex(&s).map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
struct RecHeadersHexResponse {
    id: u64,
    result: RecHeadersHex,
}

#[derive(Deserialize)]
struct RecHeadersHex {
    count: usize,
    max: usize,
    #[serde(rename = "hex", deserialize_with = "rec_from_hex")]
    raw_headers: Vec<u8>,
}

#[derive(Deserialize)]
struct RecHeadersListResponse {
    id: u64,
    result: RecHeadersList,
}

#[derive(Deserialize)]
struct RecHeadersList {
    count: usize,
    max: usize,
    headers: Vec<String>,
}

fn rec_history(json: &[u8]) -> u64 {
    use bitcoin::hashes::Hash;
    let r: RecHistoryResponse = serde_json::from_slice(json).expect("serde_json");
    assert_eq!(r.id, RESPONSE_ID);
    let mut acc = 0u64;
    for row in &r.result {
        acc ^= u64::from(row.tx_hash.as_byte_array()[0])
            ^ i64::from(row.height) as u64
            ^ row.fee.unwrap_or(0);
    }
    acc
}

fn rec_header(bytes: &[u8]) -> u8 {
    let header: bitcoin::block::Header = bitcoin::consensus::deserialize(bytes).expect("header");
    header.version.to_consensus().to_le_bytes()[0]
}

fn rec_headers_hex(json: &[u8]) -> u8 {
    let r: RecHeadersHexResponse = serde_json::from_slice(json).expect("serde_json");
    assert_eq!(r.id, RESPONSE_ID);
    assert!(r.result.raw_headers.len() == r.result.count * 80 && r.result.max >= r.result.count);
    r.result
        .raw_headers
        .chunks_exact(80)
        .fold(0, |acc, h| acc ^ rec_header(h))
}

fn rec_headers_list(json: &[u8]) -> u8 {
    use bitcoin::hex::FromHex;
    let r: RecHeadersListResponse = serde_json::from_slice(json).expect("serde_json");
    assert_eq!(r.id, RESPONSE_ID);
    assert!(r.result.headers.len() == r.result.count && r.result.max >= r.result.count);
    r.result.headers.iter().fold(0, |acc, h| {
        acc ^ rec_header(&Vec::<u8>::from_hex(h).expect("header hex"))
    })
}

// ----- measurement -----

/// Times only `run`, on a freshly prepared session each iteration.
fn bench_ours<R>(
    b: &mut Bencher<'_>,
    s: &mut Client,
    script: &Script,
    mut run: impl FnMut(&mut Client) -> R,
) {
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            script.prepare(s);
            let start = Instant::now();
            black_box(run(s));
            total += start.elapsed();
        }
        total
    });
}

/// Asserts that `ours` allocates nothing (after an untimed prepare); returns the count printed.
fn assert_no_allocations<R>(
    what: &str,
    s: &mut Client,
    script: &Script,
    ours: impl FnOnce(&mut Client) -> R,
) -> usize {
    script.prepare(s);
    let (_, count) = count_allocations(|| ours(s));
    assert_eq!(count, 0, "{what}: our path allocated {count} times");
    count
}

/// Checks our full path and decode-only path for allocations and prints them next to the
/// bound's count.
fn check_allocations<R, D, Q>(
    group: &str,
    s: &mut Client,
    script: &Script,
    ours: impl FnOnce(&mut Client) -> R,
    decode_only: impl FnOnce(&mut Client) -> D,
    serde: impl FnOnce() -> Q,
) {
    let full = assert_no_allocations(group, s, script, ours);
    let decode = assert_no_allocations(group, s, script, decode_only);
    let (_, serde_count) = count_allocations(serde);
    println!("{group}: allocations: ours {full} (decode only {decode}), serde_json {serde_count}");
}

fn session(c: &mut Criterion) {
    let mut s: Box<Client> = Box::new(client());

    // History.
    let rows = history_rows();
    let mut order = CanonicalOrder::new();
    let mut expected = StatusHasher::new();
    for (txid, height, _) in &rows {
        order.push(txid, *height).expect("canonical order");
        expected.push(txid, *height);
    }
    let expected = expected.finish();
    let line = history_line(&rows);
    assert!(line.len() < LINE, "line {} > LINE", line.len());
    let script = Script {
        version: version_reply("1.4"),
        features: features_reply(),
        request: Request::ScriptGetHistory(b"\x00\x14\x75\x1e\x76\xe8\x19\x91\x96\xd4\x54\x94\x1c\x45\xd1\xb3\xa3\x23\xf1\x43\x3b\xd6"),
    };
    script.prepare(&mut s);
    assert_eq!(ours_status(&mut s, &line), expected);
    script.prepare(&mut s);
    assert_eq!(
        ours_history_decode(&mut s, &line),
        serde_history(json(&line))
    );
    assert_eq!(rec_history(json(&line)), serde_history(json(&line)));
    check_allocations(
        "history_10000",
        &mut s,
        &script,
        |s| ours_status(s, &line),
        |s| ours_history_decode(s, &line),
        || serde_history(json(&line)),
    );
    println!("history line: {} bytes", line.len());

    let mut g = c.benchmark_group("history_10000");
    g.throughput(Throughput::Elements(u64::from(HISTORY_LEN)));
    g.sample_size(30);
    g.bench_function("bound_serde_json_owned", |b| {
        b.iter(|| serde_history(black_box(json(&line))))
    });
    g.bench_function("rust_electrum_client_types", |b| {
        b.iter(|| rec_history(black_box(json(&line))))
    });
    g.bench_function("session_status", |b| {
        bench_ours(b, &mut s, &script, |s| ours_status(s, black_box(&line)))
    });
    g.bench_function("ours_decode_only", |b| {
        bench_ours(b, &mut s, &script, |s| {
            ours_history_decode(s, black_box(&line))
        })
    });
    g.finish();

    // Headers, both forms.
    let headers = period_headers();
    assert_eq!(headers.len(), PERIOD);
    let anchor = Anchor::at_height(&MAINNET, START).expect("checkpointed");
    let request = Request::BlockHeaders {
        start_height: START,
        count: PERIOD as u32,
        cp_height: 0,
    };
    type Bound = fn(&[u8]) -> u8;
    let forms: [(&str, &str, Vec<u8>, Bound, Bound); 2] = [
        (
            "headers_2016_list",
            "1.6",
            headers_list_line(&headers),
            serde_headers_list,
            rec_headers_list,
        ),
        (
            "headers_2016_hex",
            "1.4",
            headers_hex_line(&headers),
            serde_headers_hex,
            rec_headers_hex,
        ),
    ];
    for (name, version, line, bound, rec) in &forms {
        let script = Script {
            version: version_reply(version),
            features: features_reply(),
            request,
        };
        script.prepare(&mut s);
        assert_eq!(
            ours_verify(&mut s, line, anchor),
            Some(START + PERIOD as u32 - 1)
        );
        script.prepare(&mut s);
        assert_eq!(ours_headers_decode(&mut s, line), bound(json(line)));
        check_allocations(
            name,
            &mut s,
            &script,
            |s| ours_verify(s, line, anchor),
            |s| ours_headers_decode(s, line),
            || bound(json(line)),
        );
        println!("{name} line: {} bytes", line.len());

        let mut g = c.benchmark_group(*name);
        g.throughput(Throughput::Elements(PERIOD as u64));
        g.sample_size(30);
        g.bench_function("bound_serde_json_owned", |b| {
            b.iter(|| bound(black_box(json(line))))
        });
        g.bench_function("rust_electrum_client_types", |b| {
            b.iter(|| rec(black_box(json(line))))
        });
        g.bench_function("session_verify", |b| {
            bench_ours(b, &mut s, &script, |s| {
                ours_verify(s, black_box(line), anchor)
            })
        });
        g.bench_function("ours_decode_only", |b| {
            bench_ours(b, &mut s, &script, |s| {
                ours_headers_decode(s, black_box(line))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, session);
criterion_main!(benches);

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
