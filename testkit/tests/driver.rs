//! The core's `embedded-io-async` driver (`electrum_spv_core::driver`) against a real ElectrumX,
//! over a tokio `TcpStream` wrapped by `embedded-io-adapters`, in a small firmware-shaped
//! session (4 KiB line buffer, 1 KiB receive and 256-byte transmit buffers): negotiate, verify
//! every header from genesis (streamed) up to the kit's tip, fetch a history and compare it
//! with the kit's records and recomputed status, get the server's error typed, then see the
//! notifications for a block mined and a payment made by the kit.

use std::time::{Duration, Instant};

use bitcoin::consensus::encode::serialize;
use bitcoin::{Amount, ScriptBuf};
use electrum_spv_core::chain::{Anchor, HeaderVerifier, REGTEST};
use electrum_spv_core::driver::{Driver, Error, Notice};
use electrum_spv_core::hash::{BlockHash, Txid};
use electrum_spv_core::header::Header;
use electrum_spv_core::rpc::{ProtocolVersion, VersionRange};
use electrum_spv_core::script::{StatusHasher, TxHeight};
use electrum_spv_core::session::{Config, Session, SessionStorage};
use electrum_spv_core::time;
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::{Harness, ScriptKind};
use embedded_io_adapters::tokio_1::FromTokio;
use tokio::net::TcpStream;

/// A session shaped like a device's: 4 KiB line, 1 KiB queue, 4 in flight.
type Small = Session<'static>;

/// A session of the size a small device would give it.
fn small(config: Config, now: time::Instant) -> Small {
    Session::new(SessionStorage::owned(4096, 1024, 4), config, now)
}
type Transport = FromTokio<TcpStream>;
type Dev<'a> = Driver<'a, 'static, Transport, Box<dyn Fn() -> time::Instant>>;

/// How long any one await may take before the test fails.
const T: Duration = Duration::from_secs(30);

fn harness() -> Harness {
    Harness::start().unwrap_or_else(|e| panic!("cannot start the test kit's ElectrumX: {e}"))
}

fn core_txid(t: bitcoin::Txid) -> Txid {
    Txid::from_byte_array(bitcoin::hashes::Hash::to_byte_array(t))
}

fn header_bytes(h: &bitcoin::block::Header) -> [u8; 80] {
    serialize(h).try_into().unwrap()
}

/// Awaits a driver call, failing the test after [`T`].
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(T, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {T:?}"))
}

async fn connect(h: &Harness) -> TcpStream {
    let stream = TcpStream::connect(h.addr()).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
}

fn clock() -> Box<dyn Fn() -> time::Instant> {
    let start = Instant::now();
    Box::new(move || time::Instant::ZERO + start.elapsed().into())
}

/// Negotiates, verifies every header from genesis against the kit's tip, checks Alice's
/// history and status against the kit's; returns the negotiated version and the verifier.
async fn negotiate_and_verify(
    h: &Harness,
    d: &mut Dev<'_>,
    alice: &ScriptBuf,
) -> (ProtocolVersion, HeaderVerifier) {
    let version = within("negotiate", d.negotiate())
        .await
        .expect("negotiated");

    // The tip: the kit's.
    let (kit_height, kit_tip) = h.bitcoind.tip();
    let (height, tip) = within("headers.subscribe", d.headers_subscribe())
        .await
        .expect("tip");
    assert_eq!((height, tip), (kit_height, header_bytes(&kit_tip)));

    // Every header from genesis, streamed through the 4 KiB session and verified.
    let mut verifier = HeaderVerifier::new(&REGTEST, Anchor::genesis(&REGTEST));
    let mut failed = None;
    let n = within(
        "block.headers",
        d.block_headers(0, height + 1, |at, header| {
            if failed.is_none()
                && let Err(e) = verifier.push(header)
            {
                failed = Some((at, e));
            }
        }),
    )
    .await
    .expect("headers");
    assert_eq!(failed, None, "the server's headers verify");
    assert_eq!(n, height + 1);
    assert!(
        (n as usize) * 160 > 4096,
        "the chain is longer than the line buffer: streaming is tested"
    );
    let verified = verifier.tip().expect("a verified tip");
    assert_eq!(verified.height, kit_height);
    assert_eq!(verified.hash, Header::from_bytes(&tip).block_hash());

    // One header by height.
    let h5 = within("block.header", d.block_header(5)).await.unwrap();
    assert_eq!(h5, header_bytes(&h.bitcoind.chain().blocks()[5].header));

    // Alice's history, streamed, equals the kit's; its status recomputed equals the server's
    // and the kit's.
    let mut got = Vec::new();
    let rows = within(
        "get_history",
        d.script_history(alice.as_bytes(), |row| {
            got.push((row.txid, row.height.to_i64()))
        }),
    )
    .await
    .expect("history");
    let kit: Vec<(Txid, i64)> = h
        .bitcoind
        .history(alice)
        .into_iter()
        .map(|(t, hgt)| (core_txid(t), hgt))
        .collect();
    assert!(kit.len() > 1, "Alice has a history in the kit's chain");
    assert_eq!(rows as usize, kit.len());
    assert_eq!(got, kit, "history of Alice");
    let mut hasher = StatusHasher::new();
    for (txid, height) in &got {
        hasher.push(txid, TxHeight::from_i64(*height).unwrap());
    }
    let recomputed = hasher.finish();
    let status = within("subscribe", d.script_subscribe(alice.as_bytes()))
        .await
        .expect("status");
    assert_eq!(status, recomputed);
    assert_eq!(status.map(|s| s.to_string()), h.bitcoind.status(alice));

    // The server's error, typed; the session carries on.
    match within(
        "block.header beyond the tip",
        d.block_header(kit_height + 1000),
    )
    .await
    {
        Err(Error::Server(e)) => assert!(e.code().is_some(), "{e}"),
        other => panic!("expected a server error, got {other:?}"),
    }
    assert_eq!(d.protocol_errors(), 0);
    (version, verifier)
}

/// Waits for a notice the way a device would: each wait lasts until the session's next
/// deadline at most (then the next call sends the keep-alive ping), the whole at most [`T`].
async fn next_notice(d: &mut Dev<'_>) -> Notice {
    let give_up = Instant::now() + T;
    loop {
        let left = give_up.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no notification within {T:?}");
        let wake = d.until_timeout().map_or(left, Duration::from);
        if let Ok(r) = tokio::time::timeout(wake.min(left), d.next_notice()).await {
            return r.expect("notification");
        }
    }
}

#[tokio::test]
async fn driver_against_a_real_electrumx() {
    let h = harness();
    let alice = h.bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2wpkh)
        .to_owned();

    // At the default range (1.4 to 1.6) and at 1.7 (scriptpubkey methods, `{"history": [...]}`).
    for versions in [
        VersionRange::DEFAULT,
        VersionRange {
            min: ProtocolVersion::V1_7,
            max: ProtocolVersion::V1_7,
        },
    ] {
        let config = Config {
            versions,
            ..Config::new(&REGTEST)
        };
        let clock = clock();
        let mut session = small(config, clock());
        let (mut rx, mut tx) = ([0u8; 1024], [0u8; 256]);
        let transport = FromTokio::new(connect(&h).await);
        let mut d = Driver::new(&mut session, transport, clock, &mut rx, &mut tx);
        let (version, _) = negotiate_and_verify(&h, &mut d, &alice).await;
        assert!(versions.contains(version), "{version}");
    }

    // Notifications: subscribed to headers and Alice, the kit mines a block, then pays Alice.
    let clock = clock();
    let mut session = small(Config::new(&REGTEST), clock());
    let (mut rx, mut tx) = ([0u8; 1024], [0u8; 256]);
    let transport = FromTokio::new(connect(&h).await);
    let mut d = Driver::new(&mut session, transport, clock, &mut rx, &mut tx);
    let (_, mut verifier) = negotiate_and_verify(&h, &mut d, &alice).await;
    let (tip_height, _) = h.bitcoind.tip();

    h.bitcoind.mine(1);
    let (kit_height, kit_tip) = h.bitcoind.tip();
    assert_eq!(kit_height, tip_height + 1);
    let header = loop {
        match next_notice(&mut d).await {
            Notice::Header { height, header } => {
                assert_eq!(height, kit_height);
                break header;
            }
            // Mining may confirm a payment to Alice: her status changes too.
            Notice::ScriptStatus { .. } => {}
        }
    };
    assert_eq!(header, header_bytes(&kit_tip));
    let hash = verifier
        .push(&header)
        .expect("the new tip extends the verified chain");
    assert_eq!(
        hash,
        BlockHash::from_byte_array(bitcoin::hashes::Hash::to_byte_array(kit_tip.block_hash()))
    );

    h.bitcoind
        .send(BOB, &alice, Amount::from_sat(50_000))
        .expect("kit pays Alice");
    let kit_status = h.bitcoind.status(&alice);
    loop {
        match next_notice(&mut d).await {
            Notice::ScriptStatus {
                script_hash,
                status,
            } => {
                assert_eq!(
                    script_hash,
                    electrum_spv_core::script_hash(alice.as_bytes())
                );
                if status.map(|s| s.to_string()) == kit_status {
                    break;
                }
            }
            Notice::Header { height, .. } => panic!("no block was mined, got tip {height}"),
        }
    }
    assert_eq!(d.dropped_notices(), 0);
}
