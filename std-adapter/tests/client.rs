//! The tokio client against a real ElectrumX 2.0 (test kit): every client method at protocols
//! 1.4, 1.6 and 1.7 checked against the kit's own records, notifications, TLS (pin, TOFU,
//! custom CA, web PKI refusal), SOCKS5 with remote name resolution, and in-flight calls failing cleanly when
//! the server dies.

mod common;

use common::runtime;
use std::time::Duration;

use bitcoin::consensus::encode::serialize;
use bitcoin::{Amount, ScriptBuf};
use electrum_spv::core::hash::Txid;
use electrum_spv::core::header::Header;
use electrum_spv::core::merkle::verify_tx_branch;
use electrum_spv::core::rpc::{ProtocolVersion, VersionRange};
use electrum_spv::core::script::{StatusHasher, TxHeight};
use electrum_spv::{
    Client, ClientConfig, ConnectOptions, Error, Network, Notice, ReconnectPolicy, ServerAddr,
    TlsTrust, Transport,
};
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::socks::{Destination, Socks5Proxy};
use electrum_spv_testkit::{ESTIMATED_FEERATE, Harness, RELAY_FEE, ScriptKind, SendSpec};
use tokio_stream::StreamExt;

const T: Duration = Duration::from_secs(20);

fn harness() -> Harness {
    Harness::start().unwrap_or_else(|e| panic!("cannot start the test kit's ElectrumX: {e}"))
}

fn tcp(h: &Harness) -> ServerAddr {
    common::tcp(h.addr())
}

fn ssl(h: &Harness) -> ServerAddr {
    let a = h.electrumx.ssl_addr();
    ServerAddr::new(Transport::Ssl, a.ip().to_string(), a.port())
}

fn config(versions: VersionRange) -> ClientConfig {
    ClientConfig {
        versions,
        ..ClientConfig::new(Network::Regtest)
    }
}

fn only(v: ProtocolVersion) -> VersionRange {
    VersionRange { min: v, max: v }
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

/// ElectrumX holds small replies for up to a second to pad them, so calls are made
/// concurrently (pipelined on the one connection), as an application would.
async fn check_every_method(h: &Harness, c: &Client, v: ProtocolVersion) {
    assert_eq!(c.protocol_version(), v);
    let (tip, tip_header) = h.bitcoind.tip();
    let (ping, features, banner, peers, subscribed, single, chunk, fee, relay) = tokio::join!(
        c.ping(),
        c.server_features(),
        c.server_banner(),
        c.server_peers(),
        c.block_headers_subscribe(),
        c.block_header(5),
        c.block_headers(3, 40),
        c.estimate_fee(2),
        c.relay_fee(),
    );
    ping.expect("ping");
    assert_eq!(
        features.expect("features")["genesis_hash"].as_str(),
        Some(Network::Regtest.params().genesis_hash.to_string().as_str())
    );
    banner.expect("banner");
    assert!(peers.expect("peers").is_array());

    // Headers: the tip, single headers and a chunk, byte for byte the kit's.
    let (height, header) = subscribed.expect("headers.subscribe");
    assert_eq!((height, &header[..]), (tip, &serialize(&tip_header)[..]));
    let kit_headers: Vec<[u8; 80]> = h
        .bitcoind
        .chain()
        .blocks()
        .iter()
        .map(|b| {
            let mut out = [0u8; 80];
            out.copy_from_slice(&serialize(&b.header));
            out
        })
        .collect();
    assert_eq!(single.expect("header"), kit_headers[5]);
    assert_eq!(chunk.expect("headers"), kit_headers[3..43]);

    // Fees.
    let fee = fee.expect("estimatefee").expect("an estimate");
    assert!((fee - ESTIMATED_FEERATE).abs() < 1e-12, "{fee}");
    let relay = relay.expect("relay fee");
    assert!((relay - RELAY_FEE).abs() < 1e-12, "{relay}");

    // Every script: history, status (recomputed), balance, utxos, mempool, batch.
    let scripts = all_scripts(h);
    let refs: Vec<&[u8]> = scripts.iter().map(|s| s.as_bytes()).collect();
    let batch = c
        .batch_script_get_history(&refs)
        .await
        .expect("batch history");
    let checks = scripts
        .iter()
        .zip(&batch)
        .map(|(script, batched)| check_script(h, c, v, script, batched));
    futures::future::join_all(checks).await;

    // The other batch calls agree with the kit.
    let (balances, unspent, headers, fees) = tokio::join!(
        c.batch_script_get_balance(&refs),
        c.batch_script_list_unspent(&refs),
        c.batch_block_header(&[0, 7, 42]),
        c.batch_estimate_fee(&[1, 2, 6]),
    );
    for ((script, balance), utxos) in scripts
        .iter()
        .zip(balances.expect("batch balances"))
        .zip(unspent.expect("batch utxos"))
    {
        let kit = h.bitcoind.balance(script);
        assert_eq!(
            (balance.confirmed as i64, balance.unconfirmed),
            (kit.confirmed as i64, kit.unconfirmed)
        );
        assert_eq!(utxos.len(), h.bitcoind.listunspent(script).len());
    }
    let headers = headers.expect("batch headers");
    assert_eq!(headers, [kit_headers[0], kit_headers[7], kit_headers[42]]);
    assert!(fees.expect("batch fees").iter().all(|f| f.is_some()));
    let txids: Vec<Txid> = h
        .bitcoind
        .chain()
        .blocks()
        .iter()
        .rev()
        .take(3)
        .map(|b| core_txid(b.txdata[0].compute_txid()))
        .collect();
    let raws = c
        .batch_transaction_get(&txids)
        .await
        .expect("batch transactions");
    for (txid, raw) in txids.iter().zip(raws) {
        assert_eq!(electrum_spv::core::txid(&raw).unwrap(), *txid);
    }

    // A confirmed transaction: raw bytes (txid checked by the client) and a merkle proof that
    // verifies against the kit's header.
    let (txid, height) = {
        let script = h.bitcoind.chain().wallets()[ALICE]
            .script(ScriptKind::P2wpkh)
            .to_owned();
        let (t, hgt) = h
            .bitcoind
            .history(&script)
            .into_iter()
            .find(|(_, hgt)| *hgt > 0)
            .expect("a confirmed payment to Alice");
        (core_txid(t), u32::try_from(hgt).unwrap())
    };
    let raw = c.transaction_get(&txid).await.expect("transaction");
    assert_eq!(electrum_spv::core::txid(&raw).unwrap(), txid);
    let proof = c
        .transaction_get_merkle(&txid, height)
        .await
        .expect("merkle");
    assert_eq!(proof.block_height, height);
    let header = Header::from_bytes(&kit_headers[height as usize]);
    verify_tx_branch(&txid, proof.pos, &proof.branch, &header.merkle_root).expect("valid proof");

    // Broadcast: the server's txid is the locally computed one, and the kit's mempool has it.
    let bob = h.bitcoind.chain().wallets()[BOB]
        .script(ScriptKind::P2tr)
        .to_owned();
    let tx = h
        .bitcoind
        .build_tx(SendSpec::new(
            ALICE,
            &bob,
            Amount::from_sat(10_000 + u64::from(v.minor)),
        ))
        .expect("a spend");
    let sent = c
        .transaction_broadcast(&serialize(&tx))
        .await
        .expect("broadcast");
    assert_eq!(sent, core_txid(tx.compute_txid()));
    assert!(
        h.bitcoind
            .chain()
            .mempool()
            .iter()
            .any(|t| t.compute_txid() == tx.compute_txid())
    );

    // Version gates are typed errors, not server errors.
    let pkg = c.transaction_test_mempool_accept(&[&serialize(&tx)]).await;
    if v < ProtocolVersion::V1_7 {
        assert!(matches!(pkg, Err(Error::NotAvailable(_))), "{pkg:?}");
    }
}

async fn check_script(
    h: &Harness,
    c: &Client,
    v: ProtocolVersion,
    script: &ScriptBuf,
    batched: &[electrum_spv::core::session::response::HistoryItem],
) {
    let kit: Vec<(Txid, i64)> = h
        .bitcoind
        .history(script)
        .into_iter()
        .map(|(t, hgt)| (core_txid(t), hgt))
        .collect();
    let got: Vec<(Txid, i64)> = c
        .script_get_history(script.as_bytes())
        .await
        .expect("history")
        .iter()
        .map(|i| (i.txid, i.height.to_i64()))
        .collect();
    assert_eq!(got, kit, "history of {script:?}");
    let batched: Vec<(Txid, i64)> = batched
        .iter()
        .map(|i| (i.txid, i.height.to_i64()))
        .collect();
    assert_eq!(batched, kit, "batched history of {script:?}");
    let mut hasher = StatusHasher::new();
    for (txid, height) in &got {
        hasher.push(txid, TxHeight::from_i64(*height).unwrap());
    }
    let status = c
        .script_subscribe(script.as_bytes())
        .await
        .expect("subscribe");
    assert_eq!(status, hasher.finish(), "recomputed status of {script:?}");
    assert_eq!(status.map(|s| s.to_string()), h.bitcoind.status(script));
    let balance = c
        .script_get_balance(script.as_bytes())
        .await
        .expect("balance");
    let kit_balance = h.bitcoind.balance(script);
    assert_eq!(
        (balance.confirmed as i64, balance.unconfirmed),
        (kit_balance.confirmed as i64, kit_balance.unconfirmed)
    );
    let mut utxos: Vec<(Txid, u32, u64)> = c
        .script_list_unspent(script.as_bytes())
        .await
        .expect("utxos")
        .iter()
        .map(|u| (u.txid, u.vout, u.value))
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
    let mempool: Vec<Txid> = c
        .script_get_mempool(script.as_bytes())
        .await
        .expect("mempool")
        .iter()
        .map(|i| i.txid)
        .collect();
    let kit_mempool: Vec<Txid> = kit
        .iter()
        .filter(|(_, hgt)| *hgt <= 0)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(mempool, kit_mempool, "mempool of {script:?}");
    let unsubscribed = c.script_unsubscribe(script.as_bytes()).await;
    if v >= ProtocolVersion::new(1, 4, 2) {
        assert!(unsubscribed.expect("unsubscribe"));
    } else {
        assert!(matches!(unsubscribed, Err(Error::NotAvailable(_))));
    }
}

#[test]
fn every_method_at_1_4_1_6_and_1_7() {
    let h = harness();
    let rt = runtime();
    for v in [
        ProtocolVersion::V1_4,
        ProtocolVersion::V1_6,
        ProtocolVersion::V1_7,
    ] {
        rt.block_on(async {
            let c = Client::connect(&tcp(&h), &config(only(v)))
                .await
                .unwrap_or_else(|e| panic!("connect at {v}: {e}"));
            check_every_method(&h, &c, v).await;
        });
    }
}

#[test]
fn notifications_after_mining_and_a_payment() {
    let h = harness();
    let rt = runtime();
    rt.block_on(async {
        let c = Client::connect(&tcp(&h), &config(VersionRange::DEFAULT))
            .await
            .expect("connect");
        let mut notices = c.notifications();
        let bob = h.bitcoind.chain().wallets()[BOB]
            .script(ScriptKind::P2pkh)
            .to_owned();
        let before = c.script_subscribe(bob.as_bytes()).await.expect("subscribe");
        let (tip, _) = c.block_headers_subscribe().await.expect("headers");

        h.bitcoind
            .send(ALICE, &bob, Amount::from_sat(25_000))
            .expect("payment");
        let status = next_status(&mut notices).await;
        assert_ne!(status, before);
        assert_eq!(status.map(|s| s.to_string()), h.bitcoind.status(&bob));

        h.bitcoind.mine(1);
        let mut saw_header = false;
        let mut saw_status = false;
        while !(saw_header && saw_status) {
            match tokio::time::timeout(T, notices.next()).await {
                Ok(Some(Ok(Notice::Header { height, .. }))) => {
                    assert_eq!(height, tip + 1);
                    saw_header = true;
                }
                Ok(Some(Ok(Notice::ScriptStatus { status, .. }))) => {
                    assert_eq!(status.map(|s| s.to_string()), h.bitcoind.status(&bob));
                    saw_status = true;
                }
                other => panic!("waiting for notifications after mining: {other:?}"),
            }
        }
    });
}

async fn next_status(
    notices: &mut (impl tokio_stream::Stream<Item = Result<Notice, u64>> + Unpin),
) -> Option<electrum_spv::core::hash::Status> {
    loop {
        match tokio::time::timeout(T, notices.next()).await {
            Ok(Some(Ok(Notice::ScriptStatus { status, .. }))) => return status,
            Ok(Some(Ok(_))) => {}
            other => panic!("waiting for a script notification: {other:?}"),
        }
    }
}

#[test]
fn tls_pin_tofu_and_refusals() {
    let h = harness();
    let rt = runtime();
    let pin = electrum_spv::tls::fingerprint(h.electrumx.certificate());
    let with = |trust: TlsTrust| ClientConfig {
        connect: ConnectOptions {
            tls: trust,
            ..ConnectOptions::default()
        },
        ..ClientConfig::new(Network::Regtest)
    };
    rt.block_on(async {
        // The right pin: a working session over TLS.
        let c = Client::connect(&ssl(&h), &with(TlsTrust::Pin(pin)))
            .await
            .expect("pinned TLS");
        assert_eq!(
            c.block_headers_subscribe().await.unwrap().0,
            h.bitcoind.tip().0
        );

        // A wrong pin: refused with the certificate presented named.
        let mut wrong = pin;
        wrong[0] ^= 1;
        match Client::connect(&ssl(&h), &with(TlsTrust::Pin(wrong))).await {
            Err(Error::CertificatePinMismatch { presented }) => assert_eq!(presented, pin),
            other => panic!("wrong pin accepted: {other:?}"),
        }

        // A custom CA: the test CA that issued the certificate is accepted for the server's
        // address; the web PKI (which does not know that CA) refuses it, with no fallback to
        // plaintext.
        let ca = TlsTrust::ca_file(&h.electrumx.ca_file()).expect("CA file");
        let c = Client::connect(&ssl(&h), &with(ca))
            .await
            .expect("custom CA");
        c.ping().await.expect("ping over TLS");
        match Client::connect(&ssl(&h), &with(TlsTrust::WebPki)).await {
            Err(Error::Tls(_)) => {}
            other => panic!("a certificate of an unknown CA accepted by the web PKI: {other:?}"),
        }

        // Trust on first use: recorded, accepted again, refused once it changes.
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tofu");
        let tofu = || with(TlsTrust::Tofu(store.clone()));
        Client::connect(&ssl(&h), &tofu()).await.expect("first use");
        let text = std::fs::read_to_string(&store).unwrap();
        let pin_hex: String = pin.iter().map(|b| format!("{b:02x}")).collect();
        assert!(text.contains(&pin_hex), "{text}");
        Client::connect(&ssl(&h), &tofu())
            .await
            .expect("second use");
        let other = "00".repeat(32);
        std::fs::write(&store, format!("{} {other}\n", ssl(&h).authority())).unwrap();
        match Client::connect(&ssl(&h), &tofu()).await {
            Err(Error::CertificateChanged {
                stored, presented, ..
            }) => {
                assert_eq!((stored, presented), ([0; 32], pin));
            }
            other => panic!("changed certificate accepted: {other:?}"),
        }
    });
}

#[test]
fn socks5_proxy_resolves_names_and_onion_needs_a_proxy() {
    let h = harness();
    let proxy = Socks5Proxy::start().expect("proxy");
    let rt = runtime();
    rt.block_on(async {
        let server = ServerAddr::new(Transport::Tcp, "localhost", h.addr().port());
        let config = ClientConfig {
            connect: ConnectOptions {
                proxy: Some(proxy.addr().to_string()),
                ..ConnectOptions::default()
            },
            ..ClientConfig::new(Network::Regtest)
        };
        let c = Client::connect(&server, &config)
            .await
            .expect("through the proxy");
        assert_eq!(
            c.block_headers_subscribe().await.unwrap().0,
            h.bitcoind.tip().0
        );
        assert_eq!(
            proxy.requests(),
            [Destination::Name("localhost".into(), h.addr().port())],
            "the name reaches the proxy unresolved"
        );

        let onion = ServerAddr::new(Transport::Tcp, "abcdefghij.onion", 50001);
        let direct = ClientConfig::new(Network::Regtest);
        assert!(matches!(
            Client::connect(&onion, &direct).await,
            Err(Error::OnionNeedsProxy)
        ));
    });
}

#[test]
fn in_flight_calls_fail_cleanly_when_the_server_dies() {
    let mut h = harness();
    let rt = runtime();
    rt.block_on(async {
        let no_reconnect = ClientConfig {
            reconnect: None,
            ..config(VersionRange::DEFAULT)
        };
        let c = Client::connect(&tcp(&h), &no_reconnect)
            .await
            .expect("connect");
        let scripts = all_scripts(&h);
        let refs: Vec<&[u8]> = scripts.iter().map(|s| s.as_bytes()).collect();
        // Many calls in flight, then the server goes away.
        let batch = {
            let c = c.clone();
            let owned: Vec<Vec<u8>> = refs.iter().map(|s| s.to_vec()).collect();
            tokio::spawn(async move {
                let mut results = Vec::new();
                for _ in 0..50 {
                    let refs: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
                    results.push(c.batch_script_get_history(&refs).await.map(|_| ()));
                }
                results
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        h.electrumx.kill();
        let results = tokio::time::timeout(T, batch)
            .await
            .expect("calls end")
            .unwrap();
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::Disconnected | Error::Io(_)))),
            "no call saw the disconnect: {results:?}"
        );
        assert!(matches!(
            c.ping().await,
            Err(Error::Closed | Error::Disconnected)
        ));
    });
}

#[test]
fn reconnects_resubscribes_and_reports_what_changed_while_down() {
    let mut h = harness();
    let rt = runtime();
    rt.block_on(async {
        let quick = ClientConfig {
            reconnect: Some(ReconnectPolicy {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                max_attempts: None,
            }),
            ..config(VersionRange::DEFAULT)
        };
        let c = Client::connect(&tcp(&h), &quick).await.expect("connect");
        let mut notices = c.notifications();
        let bob = h.bitcoind.chain().wallets()[BOB]
            .script(ScriptKind::P2wpkh)
            .to_owned();
        let before = c.script_subscribe(bob.as_bytes()).await.expect("subscribe");
        let (tip, _) = c.block_headers_subscribe().await.expect("headers");

        h.electrumx.kill();
        match tokio::time::timeout(T, notices.next()).await {
            Ok(Some(Ok(Notice::Disconnected(_)))) => {}
            other => panic!("expected a disconnect notice: {other:?}"),
        }
        // While the server is down: a payment to Bob and a block. A call made now waits for
        // the new connection instead of failing.
        h.bitcoind
            .send(ALICE, &bob, Amount::from_sat(40_000))
            .expect("payment");
        h.bitcoind.mine(1);
        let waiting = {
            let c = c.clone();
            tokio::spawn(async move { c.block_header(1).await })
        };
        tokio::task::block_in_place(|| h.electrumx.restart(&h.bitcoind)).expect("restart");

        let mut reconnected = false;
        let mut new_tip = None;
        let mut new_status = None;
        while !(reconnected && new_tip.is_some() && new_status.is_some()) {
            match tokio::time::timeout(T, notices.next()).await {
                Ok(Some(Ok(Notice::Reconnected { .. }))) => reconnected = true,
                Ok(Some(Ok(Notice::Header { height, .. }))) => new_tip = Some(height),
                Ok(Some(Ok(Notice::ScriptStatus { status, .. }))) => new_status = Some(status),
                other => panic!("waiting for the reconnect and its notices: {other:?}"),
            }
        }
        assert_eq!(new_tip, Some(tip + 1));
        let status = new_status.unwrap();
        assert_ne!(status, before);
        assert_eq!(status.map(|s| s.to_string()), h.bitcoind.status(&bob));
        let header = tokio::time::timeout(T, waiting)
            .await
            .expect("call ends")
            .unwrap();
        let kit = serialize(&h.bitcoind.chain().blocks()[1].header);
        assert_eq!(&header.expect("answered after the reconnect")[..], &kit[..]);
    });
}
