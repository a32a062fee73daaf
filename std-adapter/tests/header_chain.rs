//! The header chain's safety on reorgs and hostile tips (issue 10, point 4), against a
//! scripted server whose chain the test replaces: a resync runs in a copy and replaces the
//! chain only with strictly more work; the header file grows only with what is kept; a tip of
//! `u32::MAX` neither overflows nor loops.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use bitcoin::block::{Header as BtcHeader, Version};
use bitcoin::consensus::encode::serialize;
use bitcoin::hashes::Hash;
use bitcoin::{BlockHash as BtcBlockHash, CompactTarget, TxMerkleNode};
use electrum_spv::core::sync::headers::Pacing;
use electrum_spv::{Client, ClientConfig, Error, Fault, HeaderChain, Network, ServerAddr};
use electrum_spv_testkit::Chain;
use serde_json::{Value, json};

/// What the scripted server serves: its headers from genesis, and the tip it announces.
#[derive(Clone, Default)]
struct Served {
    headers: Vec<[u8; 80]>,
    claimed_tip: Option<u32>,
    /// Served instead of `headers` after the next `blockchain.block.headers` answer.
    then: Option<Vec<[u8; 80]>>,
}

/// A scripted Electrum server over a header list the test can swap.
struct Scripted {
    addr: ServerAddr,
    served: Arc<Mutex<Served>>,
}

impl Scripted {
    fn start(headers: Vec<[u8; 80]>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: ServerAddr = format!("tcp://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let served = Arc::new(Mutex::new(Served {
            headers,
            ..Served::default()
        }));
        let shared = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Scripted { addr, served }
    }

    fn set(&self, headers: Vec<[u8; 80]>, claimed_tip: Option<u32>) {
        self.set_then(headers, claimed_tip, None);
    }

    fn set_then(
        &self,
        headers: Vec<[u8; 80]>,
        claimed_tip: Option<u32>,
        then: Option<Vec<[u8; 80]>>,
    ) {
        *self.served.lock().unwrap() = Served {
            headers,
            claimed_tip,
            then,
        };
    }
}

fn serve(stream: std::net::TcpStream, served: &Mutex<Served>) {
    let mut out = stream.try_clone().unwrap();
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let Ok(req) = serde_json::from_str::<Value>(&line) else {
            return;
        };
        let s = served.lock().unwrap().clone();
        let hex = |h: &[u8; 80]| electrum_spv::to_hex(h);
        let param = |i: usize| req["params"][i].as_u64().unwrap_or(0) as usize;
        let result = match req["method"].as_str().unwrap_or("") {
            "server.version" => json!(["scripted", "1.4"]),
            "server.features" => json!({
                "genesis_hash": Network::Regtest.params().genesis_hash.to_string(),
                "hash_function": "sha256", "protocol_min": "1.4", "protocol_max": "1.4",
                "server_version": "scripted", "hosts": {}, "pruning": null
            }),
            "server.ping" => Value::Null,
            "blockchain.headers.subscribe" => {
                let tip = s.headers.len() - 1;
                json!({"height": s.claimed_tip.unwrap_or(tip as u32), "hex": hex(&s.headers[tip])})
            }
            "blockchain.block.headers" => {
                let mut shared = served.lock().unwrap();
                if let Some(next) = shared.then.take() {
                    shared.headers = next;
                }
                drop(shared);
                let (start, count) = (param(0), param(1).min(2016));
                let end = (start + count).min(s.headers.len());
                let chunk: String = s
                    .headers
                    .get(start..end)
                    .unwrap_or(&[])
                    .iter()
                    .map(hex)
                    .collect();
                json!({"hex": chunk, "count": end.saturating_sub(start), "max": 2016})
            }
            _ => {
                let reply = json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": "unknown"}});
                writeln!(out, "{reply}").unwrap();
                continue;
            }
        };
        let reply = json!({"jsonrpc": "2.0", "id": req["id"], "result": result});
        if writeln!(out, "{reply}").is_err() {
            return;
        }
    }
}

/// Regtest headers: genesis, then `n` mined on `base`'s last header, tagged by `salt` so two
/// branches differ.
fn mine(base: &[[u8; 80]], n: usize, salt: u8) -> Vec<[u8; 80]> {
    let mut out = base.to_vec();
    for _ in 0..n {
        let prev: BtcHeader = bitcoin::consensus::deserialize(out.last().unwrap()).unwrap();
        let mut h = BtcHeader {
            version: Version::from_consensus(4),
            prev_blockhash: prev.block_hash(),
            merkle_root: TxMerkleNode::from_byte_array([salt; 32]),
            time: prev.time + 1,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        };
        while h.validate_pow(h.target()).is_err() {
            h.nonce += 1;
        }
        out.push(serialize(&h).try_into().unwrap());
    }
    out
}

fn genesis() -> Vec<[u8; 80]> {
    let chain = Chain::new(&["miner"]);
    let g = serialize(&chain.blocks()[0].header);
    assert_eq!(
        BtcBlockHash::from_byte_array(Network::Regtest.params().genesis_hash.to_byte_array()),
        chain.blocks()[0].block_hash()
    );
    vec![g.try_into().unwrap()]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(addr: &ServerAddr) -> Client {
    let mut config = ClientConfig::new(Network::Regtest);
    config.reconnect = None;
    Client::connect(addr, &config).await.expect("connect")
}

const RECORD: u64 = 88;

#[test]
fn a_resync_replaces_the_chain_only_with_more_work() {
    let main = mine(&genesis(), 10, 1); // heights 0..=10
    let server = Scripted::start(main.clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regtest.headers");
    runtime().block_on(async {
        let c = client(&server.addr).await;
        let mut chain = HeaderChain::open(Network::Regtest, &path).unwrap();
        assert_eq!(chain.sync(&c, |_, _| {}).await.unwrap(), 10);
        let tip = chain.tip();
        let work = chain.chainwork();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 11 * RECORD);

        // A fork from height 6 announced at 11 whose chain, fetched from the anchor, ends at
        // 8: less work, refused; chain and file unchanged, also when it happens again (each
        // refusal used to append the whole chain to the file).
        let fork = mine(&main[..=6], 5, 2);
        for _ in 0..2 {
            server.set_then(fork.clone(), None, Some(fork[..=8].to_vec()));
            let err = chain.sync(&c, |_, _| {}).await.unwrap_err();
            assert!(
                matches!(err, Error::Verification(Fault::LessWork { tip: 8 })),
                "{err}"
            );
            assert_eq!((chain.tip(), chain.chainwork()), (tip, work));
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 11 * RECORD);
        }

        // A fork with an invalid header: refused by its rule, the verified chain kept.
        let mut broken = mine(&main[..=6], 8, 3); // tip 14
        broken[12][72] = 0x1d; // bits no longer regtest's
        server.set(broken, None);
        let err = chain.sync(&c, |_, _| {}).await.unwrap_err();
        assert!(
            matches!(err, Error::Verification(Fault::Header(_))),
            "{err}"
        );
        assert_eq!((chain.tip(), chain.chainwork()), (tip, work));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 11 * RECORD);

        // A fork with more work (tip 12): it replaces the chain, and the file holds it alone.
        let longer = mine(&main[..=6], 6, 4);
        server.set(longer.clone(), None);
        assert_eq!(chain.sync(&c, |_, _| {}).await.unwrap(), 12);
        assert!(chain.chainwork() > work);
        assert_eq!(
            chain.header(12).unwrap().to_bytes(),
            longer[12],
            "the new branch is held"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 13 * RECORD);
    });
    let reopened = HeaderChain::open(Network::Regtest, &path).unwrap();
    assert_eq!(reopened.tip().map(|t| t.0), Some(12));
}

#[test]
fn a_tip_of_u32_max_neither_overflows_nor_loops() {
    let main = mine(&genesis(), 5, 1);
    let server = Scripted::start(main.clone());
    server.set(main, Some(u32::MAX));
    runtime().block_on(async {
        let c = client(&server.addr).await;
        // Unpaced: the pacing of a default ElectrumX would only slow the test down.
        let mut chain = HeaderChain::from_genesis(Network::Regtest).with_pacing(Pacing::UNLIMITED);
        let synced = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            chain.sync(&c, |_, _| {}),
        )
        .await
        .expect("sync ends");
        assert_eq!(synced.unwrap(), 5);
    });
}
