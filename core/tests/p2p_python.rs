//! Differential test of `p2p` against Debian's `python3-bitcoinlib`, both ways.
//!
//! Frames written by core's [`encode`] (and [`WireTx::frame`] for `tx`, stripped and with
//! witness; and the `version` a [`Peer`] queues) are parsed by python-bitcoinlib
//! (`MsgSerializable.from_bytes`, which checks magic and checksum) field by field, and must be
//! byte-equal to the frames python-bitcoinlib builds from the same fields; python's frames are
//! decoded by core's [`MessageReader`] to the same fields. The python side is
//! `tests/p2p_python.py`, run with `/usr/bin/python3` (Debian's, where `apt-get install
//! python3-bitcoinlib` puts the module; `scripts/setup.sh` installs it). Without it the test
//! fails, it does not skip.
//!
//! python-bitcoinlib 0.11's `msg_headers` omits the transaction count after each header (its
//! frames are not valid `headers` messages); the script uses a corrected subclass for
//! `headers` and checks the stock class's reading of the first header only. Its `msg_reject`
//! has no hash field; the script checks the hash as the bytes after the fields.

mod common;

use std::io::Write;
use std::process::{Command as Process, Stdio};

use common::{headers, read};
use electrum_spv_core::hash::{BlockHash, sha256d};
use electrum_spv_core::p2p::*;
use serde_json::{Value, json};

const MAGIC: Magic = Magic::MAINNET;
const PYTHON: &str = "/usr/bin/python3";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    common::unhex(s)
}

/// Display order (reversed), as python-bitcoinlib's `b2lx` prints hashes.
fn display(hash: &[u8; 32]) -> String {
    let mut h = *hash;
    h.reverse();
    hex(&h)
}

fn frame(msg: &Outgoing<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 64 * 1024];
    let n = encode(MAGIC, msg, &mut out).expect("encodes");
    out.truncate(n);
    out
}

/// A case: what core wrote, the fields python must read from it, and what core's reader must
/// make of python's frame (the events as text, a `tx`'s bytes joined).
struct Case {
    name: String,
    kind: &'static str,
    fields: Value,
    frame: Vec<u8>,
    expect: Vec<String>,
}

/// Every event of one frame, decoded by core's reader, as text.
fn decode(bytes: &[u8]) -> Vec<String> {
    let mut reader = MessageReader::owned(MAGIC);
    let mut rest = bytes;
    let mut out = Vec::new();
    let mut tx = Vec::new();
    loop {
        let (n, msg) = reader.feed(rest);
        rest = &rest[n..];
        match msg {
            Ok(None) => break,
            Ok(Some(Message::TxBytes(b))) => tx.extend_from_slice(b),
            Ok(Some(m @ Message::Tx { .. })) => {
                out.push(format!("TxBytes({})", hex(&tx)));
                out.push(format!("{m:?}"));
            }
            Ok(Some(m)) => out.push(format!("{m:?}")),
            Err(e) => out.push(format!("error {e:?}")),
        }
    }
    assert!(rest.is_empty());
    out
}

fn texts(msgs: &[Message<'_>]) -> Vec<String> {
    msgs.iter().map(|m| format!("{m:?}")).collect()
}

fn ipv4(a: u8, b: u8, c: u8, d: u8) -> [u8; 16] {
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]
}

fn addr_json(a: &NetAddr, ip: &str) -> Value {
    json!({"nServices": a.services, "ip": ip, "port": a.port})
}

fn version_case(name: &str, v: Version<'_>, to_ip: &str, from_ip: &str, frame: Vec<u8>) -> Case {
    Case {
        name: name.into(),
        kind: "version",
        fields: json!({
            "nVersion": v.version,
            "nServices": v.services,
            "nTime": v.timestamp,
            "addrTo": addr_json(&v.receiver, to_ip),
            "addrFrom": addr_json(&v.sender, from_ip),
            "nNonce": v.nonce,
            "strSubVer": hex(v.user_agent),
            "nStartingHeight": v.start_height,
            "fRelay": v.relay.expect("python-bitcoinlib always writes the relay flag"),
        }),
        frame,
        expect: texts(&[Message::Version(v)]),
    }
}

fn list_case(name: &str, kind: &'static str, command: Command, items: &[InvVector]) -> Case {
    let msg = match command {
        Command::Inv => Outgoing::Inv(items),
        Command::GetData => Outgoing::GetData(items),
        _ => Outgoing::NotFound(items),
    };
    let mut expect = vec![Message::ListStart {
        command,
        count: items.len() as u32,
    }];
    expect.extend(items.iter().map(|i| Message::Inventory(*i)));
    expect.push(Message::ListEnd { command });
    Case {
        name: name.into(),
        kind,
        fields: json!({
            "items": items.iter().map(|i| json!([i.kind.0, hex(&i.hash)])).collect::<Vec<_>>(),
        }),
        frame: frame(&msg),
        expect: texts(&expect),
    }
}

fn tx_case(name: &str, wire: &WireTx<'_>, form: TxForm) -> Case {
    let f = wire.frame(MAGIC, form);
    let mut bytes = f.header.to_vec();
    for piece in f.payload {
        bytes.extend_from_slice(piece);
    }
    let payload = bytes[HEADER_SIZE..].to_vec();
    let txid = wire.txid().to_byte_array();
    // The stripped form's wtxid is its txid.
    let wtxid = match form {
        TxForm::Witness => wire.wtxid().to_byte_array(),
        TxForm::Stripped => txid,
    };
    let witness = form == TxForm::Witness && wire.wtxid().to_byte_array() != txid;
    Case {
        name: name.into(),
        kind: "tx",
        fields: json!({
            "raw": hex(&payload),
            "txid": display(&txid),
            "wtxid": display(&wtxid),
            "witness": witness,
        }),
        frame: bytes,
        expect: vec![
            format!(
                "{:?}",
                Message::TxStart {
                    len: payload.len() as u32
                }
            ),
            format!("TxBytes({})", hex(&payload)),
            format!(
                "{:?}",
                Message::Tx {
                    txid: wire.txid(),
                    wtxid: electrum_spv_core::hash::Wtxid::from_byte_array(wtxid),
                    len: payload.len() as u32,
                }
            ),
        ],
    }
}

fn reject_case(name: &str, r: Reject<'_>) -> Case {
    Case {
        name: name.into(),
        kind: "reject",
        fields: json!({
            "message": hex(r.message),
            "ccode": r.code,
            "reason": hex(r.reason),
            "hash": r.hash.map(|h| hex(&h)),
        }),
        frame: frame(&Outgoing::Reject(r)),
        expect: texts(&[Message::Reject(r)]),
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();

    // version, relay on and off; and the version a Peer queues.
    let receiver = NetAddr {
        services: 9,
        ip: ipv4(203, 0, 113, 7),
        port: 8333,
    };
    let sender = NetAddr {
        services: 0,
        ip: ipv4(0, 0, 0, 0),
        port: 0,
    };
    for relay in [true, false] {
        let v = Version {
            version: 70016,
            services: 1 | 8 | 1024,
            timestamp: 1_700_000_123,
            receiver,
            sender,
            nonce: 0x0123_4567_89ab_cdef,
            user_agent: b"/Satoshi:27.0.0/",
            start_height: 830_592,
            relay: Some(relay),
            extra: &[],
        };
        let name = format!("version relay={relay}");
        cases.push(version_case(
            &name,
            v,
            "203.0.113.7",
            "0.0.0.0",
            frame(&Outgoing::Version(v)),
        ));
    }
    let config = PeerConfig {
        magic: MAGIC,
        services: 8,
        receiver,
        user_agent: b"/electrum-spv:0.1/",
        start_height: 123,
        relay: false,
        unix_time: electrum_spv_core::time::UnixTime::from_secs(1_700_000_456),
        handshake_timeout: electrum_spv_core::time::Duration::from_millis(1_000),
        ping_timeout: electrum_spv_core::time::Duration::from_millis(1_000),
        request_timeout: electrum_spv_core::time::Duration::from_millis(1_000),
    };
    let mut peer = Peer::new(PeerStorage::owned(), config, at(0), 0xfeed_beef_0000_0001);
    let mut queued = vec![0u8; 1024];
    let n = peer.poll_transmit(&mut queued);
    queued.truncate(n);
    let v = Version {
        version: peer::PROTOCOL_VERSION,
        services: 8,
        timestamp: 1_700_000_456,
        receiver,
        sender: NetAddr {
            services: 8,
            ip: [0; 16],
            port: 0,
        },
        nonce: 0xfeed_beef_0000_0001,
        user_agent: b"/electrum-spv:0.1/",
        start_height: 123,
        relay: Some(false),
        extra: &[],
    };
    cases.push(version_case(
        "version queued by Peer::new",
        v,
        "203.0.113.7",
        "::",
        queued,
    ));

    cases.push(Case {
        name: "verack".into(),
        kind: "verack",
        fields: json!({}),
        frame: frame(&Outgoing::Verack),
        expect: texts(&[Message::Verack]),
    });
    cases.push(Case {
        name: "getaddr".into(),
        kind: "getaddr",
        fields: json!({}),
        frame: frame(&Outgoing::GetAddr),
        expect: texts(&[Message::GetAddr]),
    });
    for nonce in [0, 0x8000_0000_0000_0001, u64::MAX] {
        cases.push(Case {
            name: format!("ping {nonce:#x}"),
            kind: "ping",
            fields: json!({ "nonce": nonce }),
            frame: frame(&Outgoing::Ping(nonce)),
            expect: texts(&[Message::Ping(nonce)]),
        });
        cases.push(Case {
            name: format!("pong {nonce:#x}"),
            kind: "pong",
            fields: json!({ "nonce": nonce }),
            frame: frame(&Outgoing::Pong(nonce)),
            expect: texts(&[Message::Pong(nonce)]),
        });
    }

    // inv / getdata / notfound with types 1, 2, 0x40000001 (and BIP339's 5).
    let items = [
        InvVector {
            kind: InvType::TX,
            hash: sha256d(b"a"),
        },
        InvVector {
            kind: InvType::BLOCK,
            hash: sha256d(b"b"),
        },
        InvVector {
            kind: InvType::WITNESS_TX,
            hash: sha256d(b"c"),
        },
        InvVector {
            kind: InvType::WTX,
            hash: sha256d(b"d"),
        },
    ];
    cases.push(list_case("inv", "inv", Command::Inv, &items));
    cases.push(list_case(
        "getdata",
        "getdata",
        Command::GetData,
        &items[..3],
    ));
    cases.push(list_case("notfound", "notfound", Command::NotFound, &items));
    cases.push(list_case("inv empty", "inv", Command::Inv, &[]));

    // getheaders: a two-hash locator and a stop hash; an empty locator with genesis as stop.
    let early = headers("mainnet/headers_0_10236.bin");
    let hash_of = |h: &[u8; 80]| BlockHash::from_byte_array(sha256d(h));
    for (name, locator, stop) in [
        (
            "getheaders",
            vec![hash_of(&early[10]), hash_of(&early[0])],
            BlockHash::from_byte_array([0; 32]),
        ),
        ("getheaders genesis", vec![], hash_of(&early[0])),
    ] {
        let msg = Outgoing::GetHeaders {
            version: 70016,
            locator: &locator,
            stop,
        };
        let mut expect = vec![Message::GetHeadersStart {
            version: 70016,
            count: locator.len() as u32,
        }];
        expect.extend(locator.iter().map(|h| Message::Locator(*h)));
        expect.push(Message::GetHeadersEnd { stop });
        cases.push(Case {
            name: name.into(),
            kind: "getheaders",
            fields: json!({
                "nVersion": 70016,
                "locator": locator.iter().map(|h| hex(h.as_byte_array())).collect::<Vec<_>>(),
                "hashstop": hex(stop.as_byte_array()),
            }),
            frame: frame(&msg),
            expect: texts(&expect),
        });
    }

    // headers: real mainnet headers (1 and 3; blocks 0.. and 10000..).
    for (name, hs) in [
        ("headers 1", &early[..1]),
        ("headers 3", &early[..3]),
        ("headers 10000-10002", &early[10_000..10_003]),
    ] {
        let mut expect = vec![Message::ListStart {
            command: Command::Headers,
            count: hs.len() as u32,
        }];
        expect.extend(hs.iter().map(Message::Header));
        expect.push(Message::ListEnd {
            command: Command::Headers,
        });
        cases.push(Case {
            name: name.into(),
            kind: "headers",
            fields: json!({
                "headers": hs.iter().map(|h| hex(h)).collect::<Vec<_>>(),
                "hashes": hs.iter().map(|h| display(&sha256d(h))).collect::<Vec<_>>(),
            }),
            frame: frame(&Outgoing::Headers(hs)),
            expect: texts(&expect),
        });
    }

    // tx: a legacy one (mainnet block 169482) and a segwit one (signet block 31500), framed by
    // WireTx in both forms, and the legacy one by `encode`.
    let legacy_block = read("mainnet/blocks/169482.bin");
    let legacy = legacy_block[7237..7237 + 225].to_vec();
    let segwit_block = read("signet/blocks/31500.bin");
    let segwit = segwit_block[330..330 + 99].to_vec();
    let legacy_wire = WireTx::parse(&legacy).unwrap();
    let segwit_wire = WireTx::parse(&segwit).unwrap();
    assert_ne!(
        segwit_wire.txid().to_byte_array(),
        segwit_wire.wtxid().to_byte_array()
    );
    cases.push(tx_case(
        "tx legacy witness form",
        &legacy_wire,
        TxForm::Witness,
    ));
    cases.push(tx_case(
        "tx legacy stripped form",
        &legacy_wire,
        TxForm::Stripped,
    ));
    cases.push(tx_case(
        "tx segwit witness form",
        &segwit_wire,
        TxForm::Witness,
    ));
    cases.push(tx_case(
        "tx segwit stripped form",
        &segwit_wire,
        TxForm::Stripped,
    ));
    let mut encoded = tx_case("tx legacy by encode", &legacy_wire, TxForm::Witness);
    encoded.frame = frame(&Outgoing::Tx(&legacy));
    cases.push(encoded);

    // addr: IPv4 and IPv6 entries.
    let addrs = [
        TimedAddr {
            time: 1_700_000_000,
            addr: NetAddr {
                services: 1 | 8,
                ip: ipv4(198, 51, 100, 1),
                port: 8333,
            },
        },
        TimedAddr {
            time: 1_600_000_000,
            addr: NetAddr {
                services: 1033,
                ip: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                port: 18333,
            },
        },
    ];
    let mut expect = vec![Message::ListStart {
        command: Command::Addr,
        count: 2,
    }];
    expect.extend(addrs.iter().map(|a| Message::Addr(*a)));
    expect.push(Message::ListEnd {
        command: Command::Addr,
    });
    cases.push(Case {
        name: "addr".into(),
        kind: "addr",
        fields: json!({"addrs": [
            {"nTime": 1_700_000_000u32, "nServices": 9, "ip": "198.51.100.1", "port": 8333},
            {"nTime": 1_600_000_000u32, "nServices": 1033, "ip": "2001:db8::1", "port": 18333},
        ]}),
        frame: frame(&Outgoing::Addr(&addrs)),
        expect: texts(&expect),
    });

    // reject: bcoin's for a tx (with its hash) and one without a hash.
    cases.push(reject_case(
        "reject tx with hash",
        Reject {
            message: b"tx",
            code: 0x40,
            reason: b"non-mandatory-script-verify-flag",
            hash: Some(segwit_wire.txid().to_byte_array()),
        },
    ));
    cases.push(reject_case(
        "reject version without hash",
        Reject {
            message: b"version",
            code: 0x11,
            reason: b"obsolete",
            hash: None,
        },
    ));
    cases
}

/// Runs the python side on `cases`; its parsed JSON answer.
fn run_python(cases: &[Case]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/p2p_python.py");
    let input = Value::Array(
        cases
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "kind": c.kind,
                    "fields": c.fields,
                    "frame": hex(&c.frame),
                })
            })
            .collect(),
    );
    let missing = "python3-bitcoinlib is required by this test (Debian's module for \
                   /usr/bin/python3): `apt-get install -y python3-bitcoinlib`, which \
                   scripts/setup.sh does";
    let mut child = Process::new(PYTHON)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} ({e}); {missing}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => panic!("{stderr}{missing}"),
        _ => panic!("{script} failed ({}): {stderr}", out.status),
    }
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {stderr}"))
}

#[test]
fn frames_agree_with_python_bitcoinlib_both_ways() {
    let cases = cases();
    // Core's own reader reads core's frames as expected (else the comparison is moot).
    for case in &cases {
        assert_eq!(
            decode(&case.frame),
            case.expect,
            "{}: core reads back",
            case.name
        );
    }
    let answer = run_python(&cases);
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), cases.len());
    let mut failures = Vec::new();
    for (case, result) in cases.iter().zip(results) {
        assert_eq!(result["name"], case.name.as_str());
        for e in result["errors"].as_array().unwrap() {
            failures.push(format!("{}: {}", case.name, e.as_str().unwrap()));
        }
        // Python's own frame, through core's reader.
        let theirs = unhex(result["frame"].as_str().unwrap());
        let decoded = decode(&theirs);
        if decoded != case.expect {
            failures.push(format!(
                "{}: core reads python-bitcoinlib's frame {} as {decoded:?}, expected {:?}",
                case.name,
                hex(&theirs),
                case.expect
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "python-bitcoinlib {} disagrees:\n{}",
        answer["bitcoinlib"],
        failures.join("\n")
    );
}

/// python-bitcoinlib's stock `msg_headers` writes no transaction count after a header: core
/// refuses such a frame (it is not a valid `headers` message), and the python side must keep
/// working around it rather than the test passing on a broken frame.
#[test]
fn stock_python_headers_frames_are_refused() {
    let early = headers("mainnet/headers_0_10236.bin");
    let mut payload = vec![2u8];
    payload.extend_from_slice(&early[0]);
    payload.extend_from_slice(&early[1]);
    let mut frame = MAGIC.0.to_vec();
    frame.extend_from_slice(&Command::Headers.field());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&sha256d(&payload)[..4]);
    frame.extend_from_slice(&payload);
    let events = decode(&frame);
    assert!(
        events.last().is_some_and(|e| e.starts_with("error")),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| e.starts_with("ListEnd")));
}

/// Caller time `ms` milliseconds after the origin.
fn at(ms: u64) -> electrum_spv_core::time::Instant {
    electrum_spv_core::time::Instant::from_millis(ms)
}
