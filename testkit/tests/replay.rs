//! The replay server against electrum-spv-core's verifiers, over a plain TCP connection: every
//! example script's history proven (headers verified from a checkpoint, merkle branches,
//! transactions hashed, each transaction tied to the script), statuses recomputed, block hashes
//! equal to the real ones; the protocol's edges answered as electrs would; and each lie
//! actually served.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use bitcoin::consensus::encode::deserialize;
use bitcoin::{OutPoint, Transaction};
use electrum_spv_core::chain::{Anchor, HeaderVerifier, MAINNET};
use electrum_spv_core::hash::{MerkleNode, Txid};
use electrum_spv_core::header::Header;
use electrum_spv_core::merkle::verify_tx_branch;
use electrum_spv_core::script::{StatusHasher, TxHeight, script_hash};
use electrum_spv_testkit::replay::{
    self, CHECKPOINT_COUNT, Example, FORGED_HEIGHTS, ReplayLie, ReplayServer, TIP_HEIGHT,
};
use serde_json::{Value, json};

/// Real mainnet block hashes, as every explorer shows them. (`0000…0320283a…cda83a5`, sometimes
/// quoted for 830000, is block 840000, the fourth halving; 830000's is proven below from the
/// checkpoints and its coinbase's BIP34 height.)
const BLOCK_170: &str = "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee";
const BLOCK_830000: &str = "000000000000000000011d55599ed27d7efca05f5849b755319c89eb2cffbc1f";
/// BIP34: block 830000's coinbase script starts by pushing its height (0x0caa30, 3 bytes LE).
const BIP34_830000: [u8; 4] = [0x03, 0x30, 0xaa, 0x0c];
/// The block-9 coinbase (Satoshi) and the block-170 transaction paying Hal Finney from it.
const BLOCK_9_COINBASE: &str = "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9";
const FIRST_PAYMENT: &str = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16";

/// A newline-framed JSON-RPC connection.
struct Client {
    out: TcpStream,
    reader: BufReader<TcpStream>,
    next_id: u64,
}

impl Client {
    fn connect(server: &ReplayServer) -> Client {
        let out = TcpStream::connect(server.addr()).expect("connect");
        out.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let reader = BufReader::new(out.try_clone().unwrap());
        Client {
            out,
            reader,
            next_id: 0,
        }
    }

    fn send_line(&mut self, line: &str) {
        self.out.write_all(line.as_bytes()).unwrap();
        self.out.write_all(b"\n").unwrap();
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }

    /// The whole response to one request.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let request =
            json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        self.send_line(&request.to_string());
        let response = self.read();
        assert_eq!(response["id"], json!(self.next_id), "{response}");
        response
    }

    fn result(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params);
        assert!(r.get("error").is_none(), "{method}: {r}");
        r["result"].clone()
    }

    fn error_code(&mut self, method: &str, params: Value) -> i64 {
        let r = self.call(method, params);
        r["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("{method}: expected an error, got {r}"))
    }

    fn history(&mut self, scripthash: &str) -> Vec<(String, u32)> {
        let rows = self.result("blockchain.scripthash.get_history", json!([scripthash]));
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let height = r["height"].as_u64().unwrap() as u32;
                (r["tx_hash"].as_str().unwrap().to_owned(), height)
            })
            .collect()
    }

    fn status(&mut self, scripthash: &str) -> Option<String> {
        let s = self.result("blockchain.scripthash.subscribe", json!([scripthash]));
        s.as_str().map(str::to_owned)
    }

    fn utxos(&mut self, scripthash: &str) -> Vec<(String, u32, u64)> {
        let rows = self.result("blockchain.scripthash.listunspent", json!([scripthash]));
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let txid = r["tx_hash"].as_str().unwrap().to_owned();
                (
                    txid,
                    r["tx_pos"].as_u64().unwrap() as u32,
                    r["value"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    fn headers_hex(&mut self, start: u32, count: u32) -> String {
        let r = self.result("blockchain.block.headers", json!([start, count]));
        r["hex"].as_str().unwrap().to_owned()
    }

    fn raw_tx(&mut self, txid: &str) -> Vec<u8> {
        let hex = self.result("blockchain.transaction.get", json!([txid]));
        unhex(hex.as_str().unwrap())
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn start(lie: ReplayLie) -> ReplayServer {
    ReplayServer::start(lie).expect("replay server")
}

fn examples() -> Vec<Example> {
    replay::examples().expect("examples")
}

fn example(name: &str) -> Example {
    examples().into_iter().find(|e| e.name == name).unwrap()
}

/// The checkpoint file's hashes (targets are 256-bit: not read through `f64` here).
fn checkpoint_hashes() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = replay::checkpoints_file(dir.path()).expect("checkpoints file");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap().to_owned())
        .collect()
}

/// Verifies the 2016 headers of `period` as served (anchored at checkpoint `period - 1`, or at
/// genesis) and that the last one is checkpoint `period`; returns them.
fn verify_period(hex: &str, period: u32) -> Result<Vec<[u8; 80]>, String> {
    let start = period * 2016;
    let anchor = Anchor::at_height(&MAINNET, start).map_err(|e| e.to_string())?;
    let mut verifier = HeaderVerifier::new(&MAINNET, anchor);
    let bytes = unhex(hex);
    if bytes.len() != 2016 * 80 {
        return Err(format!("{} bytes of headers", bytes.len()));
    }
    let mut last = None;
    for chunk in bytes.chunks_exact(80) {
        last = Some(verifier.push_slice(chunk).map_err(|e| format!("{e:?}"))?);
    }
    let want = &checkpoint_hashes()[period as usize];
    if last.map(|h| h.to_string()).as_ref() != Some(want) {
        return Err(format!(
            "period {period} ends on {last:?}, not checkpoint {want}"
        ));
    }
    Ok(bytes
        .chunks_exact(80)
        .map(|c| c.try_into().unwrap())
        .collect())
}

/// The verified header at `height` (its whole period verified first).
fn verified_header(c: &mut Client, height: u32) -> Header {
    let period = height / 2016;
    let hex = c.headers_hex(period * 2016, 2016);
    let headers = verify_period(&hex, period).unwrap_or_else(|e| panic!("period {period}: {e}"));
    let served = c.result("blockchain.block.header", json!([height]));
    let header = headers[(height % 2016) as usize];
    assert_eq!(
        unhex(served.as_str().unwrap()),
        header,
        "block.header({height})"
    );
    Header::from_bytes(&header)
}

fn status_of(rows: &[(String, u32)]) -> Option<String> {
    let mut hasher = StatusHasher::new();
    for (txid, height) in rows {
        let txid: Txid = txid.parse().unwrap();
        hasher.push(&txid, TxHeight::from_i64(i64::from(*height)).unwrap());
    }
    hasher.finish().map(|s| s.to_string())
}

#[test]
fn examples_are_the_documented_scripts() {
    let ex = examples();
    let names: Vec<&str> = ex.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "satoshi-block9-p2pk",
            "early-coinbase-p2pk",
            "block830000-p2wpkh",
            "block830000-p2tr",
            "block830000-p2pkh"
        ]
    );
    let satoshi = &ex[0];
    assert!(satoshi.script.is_p2pk());
    assert_eq!(satoshi.history[0].txid.to_string(), BLOCK_9_COINBASE);
    assert_eq!(
        (
            satoshi.history[1].txid.to_string(),
            satoshi.history[1].height
        ),
        (FIRST_PAYMENT.to_owned(), 170)
    );
    assert_eq!(satoshi.history[1].block_hash.to_string(), BLOCK_170);
    let early = &ex[1];
    assert!(early.script.is_p2pk() && !early.utxos.is_empty());
    assert!(ex[2].script.is_p2wpkh() && ex[3].script.is_p2tr() && ex[4].script.is_p2pkh());
    assert!(ex[2..].iter().any(|e| e.history.len() > 1));
    for e in &ex {
        assert_eq!(
            script_hash(e.script.as_bytes()).to_string(),
            e.scripthash,
            "{}",
            e.name
        );
        assert!(!e.history.is_empty(), "{}", e.name);
    }
    for e in &ex[2..] {
        assert!(
            e.history
                .iter()
                .all(|t| t.height == 830_000 && t.block_hash.to_string() == BLOCK_830000)
        );
    }
}

#[test]
fn checkpoint_file_holds_periods_0_to_411_as_compiled_in() {
    let hashes = checkpoint_hashes();
    assert_eq!(hashes.len(), CHECKPOINT_COUNT);
    assert_eq!(CHECKPOINT_COUNT, 412);
    for (i, hash) in hashes.iter().enumerate() {
        let compiled = MAINNET.checkpoint(i as u32).unwrap().hash;
        assert_eq!(compiled.to_string(), *hash, "checkpoint {i}");
    }
    // The targets are copied digit for digit (no f64 rounding): period 0's is 0x1d00ffff's.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(replay::checkpoints_file(dir.path()).unwrap()).unwrap();
    assert!(text.contains("26959535291011309493156476344723991336010898738574164086137773096960"));
}

#[test]
fn honest_histories_are_proven_and_statuses_recomputed() {
    let server = start(ReplayLie::None);
    let mut c = Client::connect(&server);
    for e in examples() {
        let status = c.status(&e.scripthash);
        let history = c.history(&e.scripthash);
        let expected: Vec<(String, u32)> = e
            .history
            .iter()
            .map(|t| (t.txid.to_string(), t.height))
            .collect();
        assert_eq!(history, expected, "{}", e.name);
        assert_eq!(status_of(&history), status, "{}", e.name);
        assert_eq!(e.status, status, "{}", e.name);
        prove_history(&mut c, &e);
        let utxos = c.utxos(&e.scripthash);
        let want: Vec<_> = e
            .utxos
            .iter()
            .map(|u| (u.txid.to_string(), u.vout, u.value))
            .collect();
        assert_eq!(utxos, want, "{}", e.name);
        let balance = c.result("blockchain.scripthash.get_balance", json!([e.scripthash]));
        let total: u64 = want.iter().map(|u| u.2).sum();
        assert_eq!(
            balance,
            json!({"confirmed": total, "unconfirmed": 0}),
            "{}",
            e.name
        );
    }
    assert_eq!(server.tampered(), 0);
}

/// Each history entry: header verified, block hash the expected one, merkle branch folds to
/// its root, raw tx hashes to the txid, and the tx pays the script or spends an output of an
/// earlier entry that paid it.
fn prove_history(c: &mut Client, e: &Example) {
    let mut paid: Vec<OutPoint> = Vec::new();
    for t in &e.history {
        let header = verified_header(c, t.height);
        assert_eq!(
            header.block_hash().to_string(),
            t.block_hash.to_string(),
            "{}",
            e.name
        );
        let txid = t.txid.to_string();
        let proof = c.result("blockchain.transaction.get_merkle", json!([txid, t.height]));
        assert_eq!(proof["block_height"], json!(t.height));
        let branch: Vec<MerkleNode> = proof["merkle"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().parse().unwrap())
            .collect();
        let pos = proof["pos"].as_u64().unwrap() as u32;
        let core_txid: Txid = txid.parse().unwrap();
        verify_tx_branch(&core_txid, pos, &branch, &header.merkle_root)
            .unwrap_or_else(|err| panic!("{}: {txid}: {err}", e.name));
        let raw = c.raw_tx(&txid);
        assert_eq!(electrum_spv_core::tx::txid(&raw).unwrap(), core_txid);
        let tx: Transaction = deserialize(&raw).unwrap();
        let spends = tx.input.iter().any(|i| paid.contains(&i.previous_output));
        let mut pays = false;
        for (vout, out) in tx.output.iter().enumerate() {
            if out.script_pubkey == e.script {
                pays = true;
                paid.push(OutPoint::new(t.txid, vout as u32));
            }
        }
        assert!(
            pays || spends,
            "{}: {txid} neither pays nor spends the script",
            e.name
        );
    }
}

#[test]
fn real_block_hashes_and_the_tip() {
    let server = start(ReplayLie::None);
    let mut c = Client::connect(&server);
    assert_eq!(
        verified_header(&mut c, 170).block_hash().to_string(),
        BLOCK_170
    );
    assert_eq!(
        verified_header(&mut c, 830_000).block_hash().to_string(),
        BLOCK_830000
    );
    let coinbase = c.result("blockchain.transaction.id_from_pos", json!([830_000, 0]));
    let coinbase: Transaction = deserialize(&c.raw_tx(coinbase.as_str().unwrap())).unwrap();
    assert!(coinbase.is_coinbase());
    assert_eq!(coinbase.input[0].script_sig.as_bytes()[..4], BIP34_830000);
    // Block 170's second tx is the first payment between people.
    let second = c.result("blockchain.transaction.id_from_pos", json!([170, 1]));
    assert_eq!(second, json!(FIRST_PAYMENT));
    let tip = c.result("blockchain.headers.subscribe", json!([]));
    assert_eq!(tip["height"], json!(TIP_HEIGHT));
    // The tip starts period 412: its parent is checkpoint 411, the last of the file.
    let tip_header = Header::from_bytes(&unhex(tip["hex"].as_str().unwrap()).try_into().unwrap());
    assert_eq!(
        tip_header.prev_blockhash.to_string(),
        checkpoint_hashes()[411]
    );
    let genesis = c.result("blockchain.block.header", json!([0]));
    let genesis = Header::from_bytes(&unhex(genesis.as_str().unwrap()).try_into().unwrap());
    assert_eq!(genesis.block_hash(), MAINNET.genesis_hash);
}

#[test]
fn protocol_edges_answer_like_electrs() {
    let server = start(ReplayLie::None);
    let mut c = Client::connect(&server);
    let v = c.result("server.version", json!(["test", ["1.4", "1.6"]]));
    assert_eq!(v, json!(["ReplayServer 1.0", "1.4"]));
    assert_eq!(
        c.result("server.version", json!(["test", "1.4"]))[1],
        json!("1.4")
    );
    assert_eq!(
        c.error_code("server.version", json!(["test", ["1.5", "1.6"]])),
        1
    );
    assert_eq!(c.error_code("server.version", json!(["test", 1.4])), -32602);
    let f = c.result("server.features", json!([]));
    assert_eq!(f["genesis_hash"], json!(MAINNET.genesis_hash.to_string()));
    assert_eq!(
        (f["protocol_min"].clone(), f["protocol_max"].clone()),
        (json!("1.4"), json!("1.4"))
    );
    assert_eq!(f["hash_function"], json!("sha256"));
    assert_eq!(c.result("server.ping", json!([])), Value::Null);
    assert_eq!(c.result("server.peers.subscribe", json!([])), json!([]));
    assert!(c.result("server.banner", json!([])).is_string());
    // Headers: truncated at the end of a known range, capped at 2016, unknown heights refused.
    let r = c.result("blockchain.block.headers", json!([10_230, 100]));
    assert_eq!(
        (r["count"].clone(), r["max"].clone()),
        (json!(7), json!(2016))
    );
    assert_eq!(r["hex"].as_str().unwrap().len(), 7 * 160);
    assert_eq!(
        c.result("blockchain.block.headers", json!([0, 5000]))["count"],
        json!(2016)
    );
    assert_eq!(
        c.error_code("blockchain.block.headers", json!([20_000, 10])),
        1
    );
    assert_eq!(
        c.error_code("blockchain.block.header", json!([TIP_HEIGHT + 1])),
        1
    );
    assert_eq!(
        c.error_code("blockchain.block.header", json!([5, 8])),
        -32602
    );
    assert!(
        c.result("blockchain.block.header", json!([5, 0]))
            .is_string()
    );
    assert_eq!(
        c.error_code("blockchain.block.headers", json!([0, 10, 2015])),
        -32602
    );
    // Scripts: unknown ones have no history; get_mempool is not an electrs method.
    let nobody = "00".repeat(32);
    assert_eq!(c.status(&nobody), None);
    assert!(c.history(&nobody).is_empty());
    assert_eq!(
        c.error_code("blockchain.scripthash.get_mempool", json!([nobody])),
        -32601
    );
    assert_eq!(
        c.result("blockchain.scripthash.unsubscribe", json!([nobody])),
        json!(true)
    );
    assert_eq!(
        c.result("blockchain.scripthash.unsubscribe", json!([nobody])),
        json!(false)
    );
    assert_eq!(
        c.error_code("blockchain.scripthash.get_history", json!(["xyz"])),
        -32602
    );
    assert_eq!(
        c.error_code("blockchain.scripthash.get_history", json!(["é".repeat(32)])),
        -32602
    );
    // Transactions and fees.
    assert_eq!(
        c.error_code("blockchain.transaction.get", json!([nobody])),
        1
    );
    assert_eq!(
        c.error_code("blockchain.transaction.get", json!([FIRST_PAYMENT, true])),
        -32602
    );
    assert_eq!(
        c.error_code(
            "blockchain.transaction.get_merkle",
            json!([FIRST_PAYMENT, 171])
        ),
        1
    );
    let with_branch = c.result("blockchain.transaction.id_from_pos", json!([170, 1, true]));
    assert_eq!(with_branch["tx_hash"], json!(FIRST_PAYMENT));
    assert_eq!(
        c.error_code("blockchain.transaction.id_from_pos", json!([170, 2])),
        1
    );
    assert_eq!(c.result("blockchain.estimatefee", json!([2])), json!(-1));
    assert_eq!(c.result("blockchain.relayfee", json!([])), json!(0.00001));
    assert_eq!(c.error_code("no.such.method", json!([])), -32601);
    assert_eq!(c.error_code("blockchain.block.header", json!([-1])), -32602);
    assert_eq!(c.error_code("blockchain.block.header", json!([])), -32602);
    // Bad lines get errors, notifications nothing, batches one array; the connection lives on.
    c.send_line("this is not json");
    assert_eq!(c.read()["error"]["code"], json!(-32700));
    c.send_line(r#"{"jsonrpc":"2.0","method":"server.ping","params":[]}"#);
    c.send_line(r#"[{"jsonrpc":"2.0","id":"a","method":"server.ping"},{"jsonrpc":"2.0","id":"b","method":"nope"}]"#);
    let batch = c.read();
    assert_eq!(batch[0]["id"], json!("a"));
    assert_eq!(batch[1]["error"]["code"], json!(-32601));
    c.send_line("[]");
    assert_eq!(c.read()["error"]["code"], json!(-32600));
    c.send_line(r#"{"jsonrpc":"2.0","id":7,"method":"server.ping","params":{"x":1}}"#);
    assert_eq!(c.read()["error"]["code"], json!(-32602));
    assert_eq!(c.result("server.ping", json!([])), Value::Null);
}

#[test]
fn forged_old_header_is_served_in_both_methods_and_fails_verification() {
    let (honest, liar) = (start(ReplayLie::None), start(ReplayLie::ForgedOldHeader));
    let (mut h, mut l) = (Client::connect(&honest), Client::connect(&liar));
    for height in FORGED_HEIGHTS {
        let period = height / 2016;
        let (good, bad) = (
            h.headers_hex(period * 2016, 2016),
            l.headers_hex(period * 2016, 2016),
        );
        let (good, bad) = (unhex(&good), unhex(&bad));
        let differing: Vec<usize> = (0..good.len()).filter(|&i| good[i] != bad[i]).collect();
        let offset = (height % 2016) as usize * 80;
        assert_eq!(differing.len(), 1, "one byte changed at {height}");
        assert!(
            (offset + 68..offset + 80).contains(&differing[0]),
            "in the time or nonce"
        );
        verify_period(&hex(&good), period).unwrap();
        assert!(
            verify_period(&hex(&bad), period).is_err(),
            "forged period {period} verified"
        );
        let one = |c: &mut Client| {
            unhex(
                c.result("blockchain.block.header", json!([height]))
                    .as_str()
                    .unwrap(),
            )
        };
        assert_ne!(one(&mut h), one(&mut l));
        assert_eq!(one(&mut l), bad[offset..offset + 80]);
        // The neighbours are untouched.
        let next = |c: &mut Client| c.result("blockchain.block.header", json!([height + 1]));
        assert_eq!(next(&mut h), next(&mut l));
    }
    assert!(liar.tampered() >= 4);
    assert_eq!(honest.tampered(), 0);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn wrong_position_branch_claims_the_true_pos_and_fails() {
    let (honest, liar) = (
        start(ReplayLie::None),
        start(ReplayLie::WrongPositionBranch),
    );
    let (mut h, mut l) = (Client::connect(&honest), Client::connect(&liar));
    let e = example("block830000-p2wpkh");
    let t = &e.history[0];
    let header = verified_header(&mut h, t.height);
    let args = json!([t.txid.to_string(), t.height]);
    let (good, bad) = (
        h.result("blockchain.transaction.get_merkle", args.clone()),
        l.result("blockchain.transaction.get_merkle", args),
    );
    assert_eq!(good["pos"], bad["pos"]);
    assert_ne!(good["merkle"], bad["merkle"]);
    let fold = |proof: &Value| {
        let branch: Vec<MerkleNode> = proof["merkle"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().parse().unwrap())
            .collect();
        let txid: Txid = t.txid.to_string().parse().unwrap();
        verify_tx_branch(
            &txid,
            proof["pos"].as_u64().unwrap() as u32,
            &branch,
            &header.merkle_root,
        )
    };
    assert!(fold(&good).is_ok());
    assert!(fold(&bad).is_err());
    assert_eq!(liar.tampered(), 1);
}

/// The honest and the lying answers for one script.
struct Both {
    honest: ReplayServer,
    liar: ReplayServer,
    h: Client,
    l: Client,
}

fn both(lie: ReplayLie) -> Both {
    let (honest, liar) = (start(ReplayLie::None), start(lie));
    let (h, l) = (Client::connect(&honest), Client::connect(&liar));
    Both { honest, liar, h, l }
}

#[test]
fn hidden_entry_with_honest_status_betrays_itself() {
    let mut b = both(ReplayLie::HiddenEntryHonestStatus);
    let e = example("satoshi-block9-p2pk");
    let (full, served) = (b.h.history(&e.scripthash), b.l.history(&e.scripthash));
    assert_eq!(served, full[1..]);
    let status = b.l.status(&e.scripthash);
    assert_eq!(status, b.h.status(&e.scripthash));
    assert_ne!(status_of(&served), status);
    assert_eq!(b.l.utxos(&e.scripthash), b.h.utxos(&e.scripthash));
    assert!(b.liar.tampered() >= 1);
    assert_eq!(b.honest.tampered(), 0);
}

#[test]
fn hidden_entry_with_matching_status_is_self_consistent() {
    let mut b = both(ReplayLie::HiddenEntryMatchingStatus);
    for name in ["satoshi-block9-p2pk", "early-coinbase-p2pk"] {
        let e = example(name);
        let (full, served) = (b.h.history(&e.scripthash), b.l.history(&e.scripthash));
        assert_eq!(served, full[1..]);
        let status = b.l.status(&e.scripthash);
        assert_eq!(
            status_of(&served),
            status,
            "{name}: the liar's status matches its history"
        );
        assert_ne!(status, b.h.status(&e.scripthash));
    }
    // The early coinbase's only coin is hidden with its transaction: nothing at all remains.
    let e = example("early-coinbase-p2pk");
    assert_eq!(b.l.status(&e.scripthash), None);
    assert!(b.l.utxos(&e.scripthash).is_empty());
    assert!(!b.h.utxos(&e.scripthash).is_empty());
    let balance =
        b.l.result("blockchain.scripthash.get_balance", json!([e.scripthash]));
    assert_eq!(balance["confirmed"], json!(0));
    assert!(b.liar.tampered() >= 1);
}

#[test]
fn unrelated_tx_is_inserted_with_a_matching_status() {
    let mut b = both(ReplayLie::UnrelatedTxInserted);
    let e = example("satoshi-block9-p2pk");
    let (full, served) = (b.h.history(&e.scripthash), b.l.history(&e.scripthash));
    assert_eq!(served.len(), full.len() + 1);
    let extra: Vec<_> = served.iter().filter(|r| !full.contains(r)).collect();
    assert_eq!(extra.len(), 1);
    let (txid, height) = extra[0].clone();
    assert!(
        full.iter().any(|(_, h)| *h == height),
        "from a block of the history"
    );
    assert_eq!(status_of(&served), b.l.status(&e.scripthash));
    // It is real (proven in its block) but touches the script in no way.
    let header = verified_header(&mut b.h, height);
    let proof =
        b.l.result("blockchain.transaction.get_merkle", json!([txid, height]));
    let branch: Vec<MerkleNode> = proof["merkle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().parse().unwrap())
        .collect();
    let core_txid: Txid = txid.parse().unwrap();
    let pos = proof["pos"].as_u64().unwrap() as u32;
    verify_tx_branch(&core_txid, pos, &branch, &header.merkle_root).unwrap();
    let tx: Transaction = deserialize(&b.l.raw_tx(&txid)).unwrap();
    assert!(tx.output.iter().all(|o| o.script_pubkey != e.script));
    let ours: Vec<String> = e.history.iter().map(|t| t.txid.to_string()).collect();
    assert!(
        tx.input
            .iter()
            .all(|i| !ours.contains(&i.previous_output.txid.to_string()))
    );
    assert!(b.liar.tampered() >= 1);
}

#[test]
fn duplicate_txid_is_listed_twice_with_a_matching_status() {
    let mut b = both(ReplayLie::DuplicateTxid);
    let e = example("block830000-p2tr");
    let (full, served) = (b.h.history(&e.scripthash), b.l.history(&e.scripthash));
    assert_eq!(served.len(), full.len() + 1);
    assert_eq!(served[0], served[1]);
    assert_eq!(served[1..], full[..]);
    assert_eq!(status_of(&served), b.l.status(&e.scripthash));
    assert!(b.liar.tampered() >= 1);
}

#[test]
fn duplicate_outpoint_is_listed_twice_and_counted_twice() {
    let mut b = both(ReplayLie::DuplicateOutpoint);
    let e = example("early-coinbase-p2pk");
    let (full, served) = (b.h.utxos(&e.scripthash), b.l.utxos(&e.scripthash));
    assert_eq!(served.len(), full.len() + 1);
    assert_eq!(served[0], served[1]);
    let balance = |c: &mut Client| {
        let r = c.result("blockchain.scripthash.get_balance", json!([e.scripthash]));
        r["confirmed"].as_u64().unwrap()
    };
    assert_eq!(balance(&mut b.l), balance(&mut b.h) + full[0].2);
    // History and status are untouched.
    assert_eq!(b.l.history(&e.scripthash), b.h.history(&e.scripthash));
    assert_eq!(b.l.status(&e.scripthash), b.h.status(&e.scripthash));
    assert!(b.liar.tampered() >= 1);
}

#[test]
fn lie_names_round_trip() {
    for lie in ReplayLie::ALL {
        assert_eq!(ReplayLie::from_name(lie.name()), Some(lie));
    }
    assert_eq!(ReplayLie::from_name("honest"), None);
    assert_eq!(ReplayLie::default(), ReplayLie::None);
}

#[test]
fn stops_on_drop() {
    let server = start(ReplayLie::None);
    let addr = server.addr();
    assert_eq!(server.url(), format!("tcp://{addr}"));
    let mut c = Client::connect(&server);
    assert_eq!(c.result("server.ping", json!([])), Value::Null);
    drop(server);
    let mut line = String::new();
    let n = c.reader.read_line(&mut line).unwrap_or(0);
    assert_eq!(n, 0, "connection closed on drop");
}
