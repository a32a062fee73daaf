//! The core `Session` against a real ElectrumX 2.0 at protocols 1.4, 1.6 and 1.7: every method
//! is answered and decoded, and every result is checked against the kit's own records or by the
//! core's verifiers (headers, `cp_height` proofs, merkle branches, txids, statuses).

use std::time::Duration;

use bitcoin::consensus::encode::serialize;
use bitcoin::{Amount, ScriptBuf};
use electrum_spv_core::accumulator::{MerkleAccumulator, verify_header_proof};
use electrum_spv_core::chain::{Anchor, HeaderVerifier, REGTEST};
use electrum_spv_core::hash::{BlockHash, MerkleNode, Txid};
use electrum_spv_core::header::Header;
use electrum_spv_core::merkle::verify_tx_branch;
use electrum_spv_core::rpc::{ProtocolVersion, VersionRange};
use electrum_spv_core::script::{StatusHasher, TxHeight};
use electrum_spv_core::session::{
    Config, Event, FeeMode, Notification, Request, RequestError, response,
};
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::driver::{Driver, DriverError, OwnedEvent};
use electrum_spv_testkit::{Harness, ScriptKind, SendSpec};

const T: Duration = Duration::from_secs(20);

fn harness() -> Harness {
    Harness::start().unwrap_or_else(|e| panic!("cannot start the test kit's ElectrumX: {e}"))
}

fn connect(h: &Harness, versions: VersionRange) -> Driver {
    let config = Config {
        versions,
        ..Config::new(&REGTEST)
    };
    let mut d = Driver::connect(h.addr(), config).expect("connect");
    d.ready(T).expect("negotiated");
    d
}

/// Calls and returns the raw result; fails the test on a server error or timeout.
fn ok(d: &mut Driver, r: &Request<'_>) -> Vec<u8> {
    match d.call(r, T) {
        Ok(OwnedEvent::Response { result, .. }) => result,
        other => panic!("{:?}: {other:?}", r.method()),
    }
}

fn core_txid(t: bitcoin::Txid) -> Txid {
    Txid::from_byte_array(bitcoin::hashes::Hash::to_byte_array(t))
}

fn all_scripts(h: &Harness) -> Vec<ScriptBuf> {
    h.bitcoind
        .chain()
        .wallets()
        .iter()
        .flat_map(|w| w.scripts())
        .collect()
}

fn check_every_method(h: &Harness, d: &mut Driver, v: ProtocolVersion) {
    let (tip_height, tip_header) = h.bitcoind.tip();
    let tip_bytes: [u8; 80] = serialize(&tip_header).try_into().unwrap();

    // server.*
    let f = ok(d, &Request::Features);
    assert_eq!(
        response::features_genesis(&f).unwrap(),
        REGTEST.genesis_hash
    );
    for r in [
        Request::Banner,
        Request::DonationAddress,
        Request::PeersSubscribe,
        Request::FeeHistogram,
    ] {
        let result = ok(d, &r);
        assert!(!result.is_empty(), "{:?}", r.method());
    }
    let pong = ok(d, &Request::Ping { pong_len: 4 });
    if v >= ProtocolVersion::V1_7 {
        assert_eq!(
            pong, br#"{"data":"0000"}"#,
            "1.7 ping returns pong_len digits"
        );
    } else {
        assert_eq!(pong, b"null");
    }

    // Headers: the tip, one header, a proof, and the whole chain verified from genesis.
    let (height, header) = response::headers_subscribe(&ok(d, &Request::HeadersSubscribe)).unwrap();
    assert_eq!((height, header), (tip_height, tip_bytes));
    let blocks: Vec<[u8; 80]> = h
        .bitcoind
        .chain()
        .blocks()
        .iter()
        .map(|b| serialize(&b.header).try_into().unwrap())
        .collect();
    let h5 = response::block_header(&ok(
        d,
        &Request::BlockHeader {
            height: 5,
            cp_height: 0,
        },
    ))
    .unwrap();
    assert_eq!(h5, blocks[5]);
    let mut acc = MerkleAccumulator::new();
    for b in &blocks {
        acc.push_block_hash(&Header::from_bytes(b).block_hash())
            .unwrap();
    }
    let cp = tip_height;
    let proof_raw = ok(
        d,
        &Request::BlockHeader {
            height: 5,
            cp_height: cp,
        },
    );
    let proof = response::block_header_proof(&proof_raw).unwrap();
    assert_eq!(
        Some(proof.root),
        acc.root(),
        "cp root equals the accumulator over verified headers"
    );
    let branch: Vec<MerkleNode> = proof.branch.iter().map(Result::unwrap).collect();
    let header = proof.header.unwrap();
    verify_header_proof(
        &Header::from_bytes(&header).block_hash(),
        5,
        cp,
        &branch,
        &proof.root,
    )
    .expect("cp_height proof verifies");
    let count = tip_height + 1;
    let raw = ok(
        d,
        &Request::BlockHeaders {
            start_height: 0,
            count,
            cp_height: cp,
        },
    );
    let chunk = response::block_headers(&raw).unwrap();
    assert_eq!((chunk.count, chunk.max), (count, 2016));
    let mut verifier = HeaderVerifier::new(&REGTEST, Anchor::genesis(&REGTEST));
    for hdr in chunk.headers() {
        verifier
            .push(&hdr.unwrap())
            .expect("server's headers verify");
    }
    assert_eq!(
        verifier.tip().unwrap().hash,
        Header::from_bytes(&tip_bytes).block_hash()
    );
    assert!(chunk.proof.is_some(), "cp_height proof of the last header");

    // Fees.
    let fee = ok(
        d,
        &Request::EstimateFee {
            blocks: 2,
            mode: Some(FeeMode::Conservative),
        },
    );
    assert!(response::fee_rate(&fee).unwrap().is_some());
    if v < ProtocolVersion::V1_6 {
        assert!(
            response::fee_rate(&ok(d, &Request::RelayFee))
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            d.request(&Request::MempoolInfo, 0),
            Err(DriverError::Request(RequestError::NotAvailable { .. }))
        ));
    } else {
        assert!(ok(d, &Request::MempoolInfo).starts_with(b"{"));
        assert!(matches!(
            d.request(&Request::RelayFee, 0),
            Err(DriverError::Request(RequestError::NotAvailable { .. }))
        ));
    }

    // Scripts: history, status, balance, utxos, mempool of every script equal the kit's.
    let scripts = all_scripts(h);
    let unsubscribe = v >= ProtocolVersion::V1_4_2;
    let mut reqs = Vec::new();
    for script in &scripts {
        let spk = script.as_bytes();
        reqs.extend([
            Request::ScriptGetHistory(spk),
            Request::ScriptSubscribe(spk),
            Request::ScriptGetBalance(spk),
            Request::ScriptListUnspent(spk),
            Request::ScriptGetMempool(spk),
        ]);
        if unsubscribe {
            reqs.push(Request::ScriptUnsubscribe(spk));
        } else {
            assert!(matches!(
                d.request(&Request::ScriptUnsubscribe(spk), 0),
                Err(DriverError::Request(RequestError::NotAvailable { .. }))
            ));
        }
    }
    let answers: Vec<Vec<u8>> = d
        .call_many(&reqs, T)
        .expect("pipelined script requests")
        .into_iter()
        .map(|e| match e {
            OwnedEvent::Response { result, .. } => result,
            other => panic!("{other:?}"),
        })
        .collect();
    let per_script = if unsubscribe { 6 } else { 5 };
    let mut confirmed_seen = Vec::new();
    for (script, a) in scripts.iter().zip(answers.chunks(per_script)) {
        let kit: Vec<(Txid, i64)> = h
            .bitcoind
            .history(script)
            .into_iter()
            .map(|(t, hgt)| (core_txid(t), hgt))
            .collect();
        let got: Vec<(Txid, i64)> = response::history(&a[0])
            .unwrap()
            .map(|i| i.map(|i| (i.txid, i.height.to_i64())).unwrap())
            .collect();
        assert_eq!(got, kit, "history of {script:?}");
        let mut hasher = StatusHasher::new();
        for (txid, height) in &got {
            hasher.push(txid, TxHeight::from_i64(*height).unwrap());
        }
        let status = response::subscribe_status(&a[1]).unwrap();
        assert_eq!(status, hasher.finish(), "recomputed status of {script:?}");
        assert_eq!(status.map(|s| s.to_string()), h.bitcoind.status(script));
        let bal = response::balance(&a[2]).unwrap();
        let kit_bal = h.bitcoind.balance(script);
        assert_eq!(
            (bal.confirmed as i64, bal.unconfirmed),
            (kit_bal.confirmed as i64, kit_bal.unconfirmed)
        );
        let mut utxos: Vec<(Txid, u32, u64)> = response::utxos(&a[3])
            .unwrap()
            .map(|u| u.map(|u| (u.txid, u.vout, u.value)).unwrap())
            .collect();
        let mut kit_utxos: Vec<(Txid, u32, u64)> = h
            .bitcoind
            .listunspent(script)
            .iter()
            .map(|u| (core_txid(u.txid), u.vout, u.value))
            .collect();
        utxos.sort();
        kit_utxos.sort();
        assert_eq!(utxos, kit_utxos, "utxos of {script:?}");
        let mempool: Vec<Txid> = response::history(&a[4])
            .unwrap()
            .map(|i| i.unwrap().txid)
            .collect();
        let kit_mempool: Vec<Txid> = kit
            .iter()
            .filter(|(_, hgt)| *hgt <= 0)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(mempool, kit_mempool);
        if unsubscribe {
            assert_eq!(a[5], b"true");
        }
        confirmed_seen.extend(got.into_iter().filter(|(_, hgt)| *hgt > 0));
    }
    assert!(
        confirmed_seen.len() > 4,
        "the kit's chain has confirmed history"
    );

    // Transactions: raw bytes hash to the txid; merkle branches verify against the header.
    for (txid, height) in confirmed_seen.iter().take(6) {
        let hex = ok(d, &Request::TransactionGet(*txid));
        let raw = response::transaction_hex(&hex).unwrap();
        let mut bytes = vec![0u8; raw.len() / 2];
        electrum_spv_core::hex::decode_to_slice(raw, &mut bytes).unwrap();
        assert_eq!(electrum_spv_core::tx::txid(&bytes).unwrap(), *txid);
        let height = *height as u32;
        let m = ok(
            d,
            &Request::TransactionGetMerkle {
                txid: *txid,
                height,
            },
        );
        let proof = response::merkle_proof(&m).unwrap();
        assert_eq!(proof.block_height, height);
        let branch: Vec<MerkleNode> = proof.branch.iter().map(Result::unwrap).collect();
        let root = Header::from_bytes(&blocks[height as usize]).merkle_root;
        verify_tx_branch(txid, proof.pos, &branch, &root).expect("merkle branch verifies");
        let by_pos = ok(
            d,
            &Request::TransactionIdFromPos {
                height,
                pos: proof.pos,
                merkle: false,
            },
        );
        assert_eq!(response::txid(&by_pos).unwrap(), *txid);
    }

    // 1.7 only.
    let (fund_txid, _) = confirmed_seen[0];
    let spk = all_scripts(h)[0].clone();
    let outpoint = Request::OutpointGetStatus {
        txid: fund_txid,
        vout: 0,
        script_pubkey: spk.as_bytes(),
    };
    if v >= ProtocolVersion::V1_7 {
        assert!(ok(d, &outpoint).starts_with(b"{"));
        assert!(ok(d, &Request::MempoolRecent).starts_with(b"["));
        let sub = Request::OutpointSubscribe {
            txid: fund_txid,
            vout: 0,
            script_pubkey: spk.as_bytes(),
        };
        assert!(ok(d, &sub).starts_with(b"{"));
        assert_eq!(
            ok(
                d,
                &Request::OutpointUnsubscribe {
                    txid: fund_txid,
                    vout: 0
                }
            ),
            b"true"
        );
    } else {
        assert!(matches!(
            d.request(&outpoint, 0),
            Err(DriverError::Request(RequestError::NotAvailable { .. }))
        ));
    }
}

#[test]
fn every_method_at_1_4_1_6_and_1_7() {
    let h = harness();
    let v = |a, b, c| ProtocolVersion::new(a, b, c);
    for (range, want) in [
        (
            VersionRange {
                min: v(1, 4, 0),
                max: v(1, 4, 0),
            },
            v(1, 4, 0),
        ),
        (VersionRange::DEFAULT, v(1, 6, 0)),
        (VersionRange::WITH_1_7, v(1, 7, 0)),
    ] {
        let mut d = connect(&h, range);
        assert_eq!(d.session.version(), Some(want));
        check_every_method(&h, &mut d, want);
    }
}

#[test]
fn broadcasts_return_the_locally_computed_txid() {
    let h = harness();
    let bob_spk = h.bitcoind.chain().wallets()[BOB]
        .script(ScriptKind::P2wpkh)
        .to_owned();
    for (range, kind) in [
        (VersionRange::DEFAULT, ScriptKind::P2pkh),
        (VersionRange::WITH_1_7, ScriptKind::P2tr),
    ] {
        let mut d = connect(&h, range);
        let tx = h
            .bitcoind
            .build_tx(SendSpec::new(ALICE, &bob_spk, Amount::from_sat(12_345)).from_kind(kind))
            .expect("kit builds a tx");
        let raw = serialize(&tx);
        let local = electrum_spv_core::tx::txid(&raw).unwrap();
        if range == VersionRange::WITH_1_7 {
            let accepted = ok(&mut d, &Request::TestMempoolAccept(&[&raw]));
            assert!(
                String::from_utf8_lossy(&accepted).contains("\"allowed\":true"),
                "{}",
                String::from_utf8_lossy(&accepted)
            );
        }
        let got = response::broadcast_txid(&ok(&mut d, &Request::Broadcast(&raw))).unwrap();
        assert_eq!(got, local);
        // A truncated copy is refused with the server's error, kept typed.
        let bad = &raw[..raw.len() - 1];
        match d.call(&Request::Broadcast(bad), T).unwrap() {
            OwnedEvent::ServerError { code, message, .. } => {
                assert_eq!(code, Some(1), "{}", String::from_utf8_lossy(&message));
            }
            other => panic!("tampered tx accepted: {other:?}"),
        }
    }
}

#[test]
fn notifications_after_mining_a_mempool_tx_and_a_reorg() {
    let h = harness();
    let mut d = connect(&h, VersionRange::DEFAULT);
    let alice_spk = h.bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2wpkh)
        .to_owned();
    let (tip_height, _) = h.bitcoind.tip();
    ok(&mut d, &Request::HeadersSubscribe);
    ok(&mut d, &Request::ScriptSubscribe(alice_spk.as_bytes()));

    let wait_header = |d: &mut Driver| {
        d.run_until(T, |ev| match ev {
            Event::Notification(Notification::Header { height, header }) => {
                Some((*height, *header))
            }
            _ => None,
        })
        .expect("header notification")
    };
    h.bitcoind.mine(1);
    let (height, header) = wait_header(&mut d);
    assert_eq!(height, tip_height + 1);
    assert_eq!(Header::from_bytes(&header).block_hash(), {
        let (_, t) = h.bitcoind.tip();
        BlockHash::from_byte_array(bitcoin::hashes::Hash::to_byte_array(t.block_hash()))
    });

    // A mempool payment to Alice changes her status to exactly the kit's.
    h.bitcoind
        .send(BOB, &alice_spk, Amount::from_sat(50_000))
        .expect("kit pays Alice");
    let status = d
        .run_until(T, |ev| match ev {
            Event::Notification(Notification::ScriptStatus { status, .. }) => Some(*status),
            _ => None,
        })
        .expect("status notification");
    assert_eq!(status.map(|s| s.to_string()), h.bitcoind.status(&alice_spk));

    // A 2-block reorg announces the new tip.
    h.bitcoind.reorg(2);
    let (height, header) = wait_header(&mut d);
    let (kit_height, kit_tip) = h.bitcoind.tip();
    assert_eq!(height, kit_height);
    assert_eq!(header.to_vec(), serialize(&kit_tip));
}
