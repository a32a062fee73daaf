//! The C ABI called from Rust exactly as C calls it: sizes, memory checks, and a real
//! ElectrumX 2.0 exchange (`core/tests/data/transcripts/electrumx_1_6.json`, recorded from the
//! test kit's regtest chain) replayed through a session in caller memory, each result decoded
//! with `espv_decode_*` and checked with the verifiers.
//!
//! The C programs under `bindings/c/` test the same ABI from C (and live, against ElectrumX):
//! `scripts/c-test.sh`.

use std::ffi::CStr;
use std::mem::MaybeUninit;

use electrum_spv_ffi::decode::*;
use electrum_spv_ffi::event::*;
use electrum_spv_ffi::headers::*;
use electrum_spv_ffi::hex::*;
use electrum_spv_ffi::network::*;
use electrum_spv_ffi::proofs::*;
use electrum_spv_ffi::request::*;
use electrum_spv_ffi::script::*;
use electrum_spv_ffi::session::*;
use electrum_spv_ffi::status::*;
use serde_json::Value;

/// Session memory with the alignment the ABI asks for.
#[repr(C, align(8))]
struct Memory([u8; ESPV_SESSION_SIZE]);

fn name(code: i32) -> &'static str {
    // SAFETY: espv_status_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(espv_status_name(code)) }
        .to_str()
        .unwrap()
}

#[track_caller]
fn ok(code: i32) {
    assert_eq!(name(code), "ESPV_OK");
}

#[test]
fn sizes_fit_the_published_bounds() {
    let size = espv_session_size(ESPV_LINE_CAPACITY, ESPV_OUTPUT_CAPACITY, ESPV_MAX_IN_FLIGHT);
    println!(
        "espv_session: {size} bytes, align {}; espv_event {} bytes; espv_verifier {}; espv_status_hasher {}",
        espv_session_align(),
        size_of::<EspvEvent>(),
        size_of::<EspvVerifier>(),
        size_of::<EspvStatusHasher>()
    );
    assert!(size <= ESPV_SESSION_SIZE);
    // The session is its buffers plus its state.
    let buffers = ESPV_LINE_CAPACITY + ESPV_OUTPUT_CAPACITY;
    assert!(size >= buffers + ESPV_MAX_IN_FLIGHT * 8);
    assert!(
        size <= buffers + ESPV_SESSION_STATE_SIZE + ESPV_MAX_IN_FLIGHT * ESPV_PENDING_SLOT_SIZE
    );
    // The buffers' sizes are the caller's: each byte more is a byte more, nothing else.
    assert_eq!(
        espv_session_size(100_000, 1, 1) - espv_session_size(0, 1, 1),
        100_000
    );
    assert_eq!(
        espv_session_size(0, 100_001, 1) - espv_session_size(0, 1, 1),
        100_000
    );
    let slot = espv_session_size(0, 1, 2) - espv_session_size(0, 1, 1);
    assert!(slot > 0 && slot <= ESPV_PENDING_SLOT_SIZE);
    // Unusable or overflowing capacities have no size.
    assert_eq!(espv_session_size(16, 0, 4), 0);
    assert_eq!(espv_session_size(16, 16, 0), 0);
    assert_eq!(espv_session_size(usize::MAX, 16, 4), 0);
    assert_eq!(espv_session_size(16, 16, usize::MAX), 0);
    assert!(espv_session_align() <= ESPV_SESSION_ALIGN);
    assert_eq!(size_of::<EspvVerifier>(), 448);
    assert_eq!(size_of::<EspvStatusHasher>(), 192);
}

/// A session of any capacities works in a block of exactly its size; an outgoing queue too
/// small for the version request is refused.
#[test]
fn capacities_are_the_callers() {
    let mut cfg = MaybeUninit::<EspvConfig>::uninit();
    // SAFETY: `cfg` is writable, then initialized; each block is as large as asked for and
    // 8-aligned (u64s).
    unsafe {
        ok(espv_config_default(cfg.as_mut_ptr(), ESPV_NETWORK_REGTEST));
        let cfg = cfg.assume_init();
        for (line, out, pending) in [(0, 256, 1), (64, 200, 2), (1 << 20, 1 << 16, 100)] {
            let size = espv_session_size(line, out, pending);
            let mut block = vec![0u64; size.div_ceil(8)];
            let mem = block.as_mut_ptr().cast::<std::ffi::c_void>();
            assert_eq!(
                name(espv_session_init(
                    mem,
                    size - 1,
                    line,
                    out,
                    pending,
                    &cfg,
                    0
                )),
                "ESPV_ERR_BUFFER_TOO_SMALL"
            );
            ok(espv_session_init(mem, size, line, out, pending, &cfg, 0));
            let s = mem.cast::<EspvSession>();
            let mut sent = [0u8; 256];
            let mut n = 0usize;
            ok(espv_session_take_output(
                s,
                sent.as_mut_ptr(),
                sent.len(),
                &mut n,
            ));
            assert!(
                sent[..n]
                    .starts_with(b"{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"server.version\"")
            );
        }
        // A queue too small for the version request; no request in flight allowed.
        let size = espv_session_size(64, 16, 1);
        let mut block = vec![0u64; size.div_ceil(8)];
        for in_flight in [1, 0] {
            let mem = block.as_mut_ptr().cast();
            let code = espv_session_init(mem, size, 64, 16, in_flight, &cfg, 0);
            assert_eq!(
                name(code),
                "ESPV_ERR_INVALID_ARGUMENT",
                "{in_flight} in flight"
            );
        }
    }
}

#[test]
fn init_refuses_bad_memory_and_config() {
    let mut mem = Box::new(Memory([0; ESPV_SESSION_SIZE]));
    let base = mem.0.as_mut_ptr().cast::<std::ffi::c_void>();
    let mut cfg = MaybeUninit::<EspvConfig>::uninit();
    // SAFETY: `cfg` is writable; the pointers below point into `mem`.
    unsafe {
        ok(espv_config_default(cfg.as_mut_ptr(), 4));
        let cfg = cfg.assume_init();
        assert_eq!(
            name(espv_session_init(
                base,
                100,
                ESPV_LINE_CAPACITY,
                ESPV_OUTPUT_CAPACITY,
                ESPV_MAX_IN_FLIGHT,
                &cfg,
                0
            )),
            "ESPV_ERR_BUFFER_TOO_SMALL"
        );
        let odd = base.cast::<u8>().add(1).cast();
        assert_eq!(
            name(espv_session_init(
                odd,
                ESPV_SESSION_SIZE - 1,
                ESPV_LINE_CAPACITY,
                ESPV_OUTPUT_CAPACITY,
                ESPV_MAX_IN_FLIGHT,
                &cfg,
                0
            )),
            "ESPV_ERR_MISALIGNED"
        );
        let s = base.cast::<EspvSession>();
        // Zeroed memory is not a session.
        assert_eq!(
            name(espv_session_handle_timeout(s, 0)),
            "ESPV_ERR_NOT_INITIALIZED"
        );
        let bad = EspvConfig {
            version_max: EspvVersion {
                major: 1,
                minor: 3,
                revision: 0,
            },
            ..cfg
        };
        assert_eq!(
            name(espv_session_init(
                base,
                ESPV_SESSION_SIZE,
                ESPV_LINE_CAPACITY,
                ESPV_OUTPUT_CAPACITY,
                ESPV_MAX_IN_FLIGHT,
                &bad,
                0
            )),
            "ESPV_ERR_INVALID_ARGUMENT"
        );
        ok(espv_session_init(
            base,
            ESPV_SESSION_SIZE,
            ESPV_LINE_CAPACITY,
            ESPV_OUTPUT_CAPACITY,
            ESPV_MAX_IN_FLIGHT,
            &cfg,
            0,
        ));
        assert_eq!(
            name(espv_session_state(s, std::ptr::null_mut())),
            "ESPV_NONE"
        );
    }
}

/// The recorded exchange: incoming lines by id, and the recorded outgoing bytes.
struct Transcript {
    incoming: Vec<Value>,
    outgoing: String,
}

impl Transcript {
    fn load() -> Transcript {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../core/tests/data/transcripts/electrumx_1_6.json"
        );
        let t: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let chunks = t["transcript"].as_array().unwrap();
        let text = |dir: &str| -> String {
            chunks
                .iter()
                .filter(|c| c["dir"] == dir)
                .map(|c| c["data"].as_str().unwrap())
                .collect()
        };
        let incoming = text("in")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        Transcript {
            incoming,
            outgoing: text("out"),
        }
    }

    /// The recorded reply to the request with recorded id `id`, re-addressed to `new_id`.
    fn reply(&self, id: u64, new_id: u64) -> String {
        let mut v = self
            .incoming
            .iter()
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("no reply to id {id}"))
            .clone();
        v["id"] = new_id.into();
        format!("{v}\n")
    }
}

/// A session in caller memory, driven through the C ABI.
struct Driver {
    mem: Box<Memory>,
    now: u64,
}

/// An event with its data copied out.
struct Seen {
    ev: EspvEvent,
    data: Vec<u8>,
}

impl Driver {
    fn s(&mut self) -> *mut EspvSession {
        self.mem.0.as_mut_ptr().cast()
    }

    fn take(&mut self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let mut n = 0;
            // SAFETY: an initialized session; `buf` has 1000 writable bytes.
            ok(unsafe { espv_session_take_output(self.s(), buf.as_mut_ptr(), buf.len(), &mut n) });
            if n == 0 {
                return String::from_utf8(out).unwrap();
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Vec<Seen> {
        let mut seen = Vec::new();
        let mut off = 0;
        while off < bytes.len() {
            let mut used = 0;
            let now = self.now;
            // SAFETY: an initialized session; `bytes[off..]` is readable.
            ok(unsafe {
                espv_session_feed(
                    self.s(),
                    bytes[off..].as_ptr(),
                    bytes.len() - off,
                    now,
                    &mut used,
                )
            });
            assert!(used > 0);
            off += used;
            let mut ev = MaybeUninit::<EspvEvent>::uninit();
            // SAFETY: `ev` is writable; on ESPV_OK it was written, and its data is read before
            // the next call on the session.
            while unsafe { espv_session_poll_event(self.s(), ev.as_mut_ptr()) } == ESPV_OK {
                // SAFETY: ESPV_OK means the event was written.
                let ev = unsafe { ev.assume_init() };
                let data = match ev.data_len {
                    0 => Vec::new(),
                    // SAFETY: `data` points at `data_len` bytes in the session until the next
                    // call on it; they are copied now.
                    n => unsafe { std::slice::from_raw_parts(ev.data, n) }.to_vec(),
                };
                seen.push(Seen { ev, data });
            }
        }
        seen
    }

    /// Feeds the recorded reply to recorded id `recorded` as the answer to `id`; returns the
    /// result's raw JSON.
    fn answer(&mut self, t: &Transcript, recorded: u64, id: u64, tag: u32) -> Vec<u8> {
        let _ = self.take();
        let seen = self.feed(t.reply(recorded, id).as_bytes());
        assert_eq!(seen.len(), 1);
        let ev = &seen[0].ev;
        assert_eq!((ev.kind, ev.id, ev.tag), (ESPV_EVENT_RESPONSE, id, tag));
        seen.into_iter().next().unwrap().data
    }
}

fn display(hash: &[u8; 32]) -> String {
    let mut text = [0u8; 65];
    // SAFETY: 32 readable and 65 writable bytes.
    ok(unsafe { espv_hash_to_hex(hash.as_ptr(), text.as_mut_ptr().cast()) });
    String::from_utf8(text[..64].to_vec()).unwrap()
}

fn internal(display_hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: `display_hex` is readable; `out` has 32 writable bytes.
    ok(unsafe {
        espv_hash_from_hex(
            display_hex.as_ptr().cast(),
            display_hex.len(),
            out.as_mut_ptr(),
        )
    });
    out
}

#[test]
fn a_recorded_electrumx_exchange_replays_and_verifies() {
    let t = Transcript::load();
    let mut d = Driver {
        mem: Box::new(Memory([0xa5; ESPV_SESSION_SIZE])),
        now: 1_000,
    };
    let mut cfg = MaybeUninit::<EspvConfig>::uninit();
    // SAFETY: `cfg` is writable, then initialized; `mem` holds a session-sized buffer.
    let s = unsafe {
        ok(espv_config_default(cfg.as_mut_ptr(), ESPV_NETWORK_REGTEST));
        let cfg = cfg.assume_init();
        ok(espv_session_init(
            d.s().cast(),
            ESPV_SESSION_SIZE,
            ESPV_LINE_CAPACITY,
            ESPV_OUTPUT_CAPACITY,
            ESPV_MAX_IN_FLIGHT,
            &cfg,
            d.now,
        ));
        d.s()
    };
    // The first bytes on the wire are the recorded ones, byte for byte.
    let version = d.take();
    assert!(t.outgoing.starts_with(&version), "{version}");
    assert!(d.feed(t.reply(0, 0).as_bytes()).is_empty());
    let features = d.take();
    assert!(features.contains("\"server.features\""));
    let seen = d.feed(t.reply(1, 1).as_bytes());
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].ev.kind, ESPV_EVENT_READY);
    assert_eq!((seen[0].ev.version.major, seen[0].ev.version.minor), (1, 6));

    // The recording's requests, as ids 2.. (request i had id i + 2); ours count from 2 too.
    let spk = {
        let hex = "0014c5df7876a0e5de88b9882f827ed6b19c37287e1c";
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    let mut id = 0u64;
    // SAFETY: for every call below, `s` is the initialized session and every pointer points
    // at as many readable or writable bytes as the call documents.
    unsafe {
        // headers.subscribe (recorded id 3)
        ok(espv_request_headers_subscribe(s, d.now, 1, &mut id));
        let r = d.answer(&t, 3, id, 1);
        let (mut tip_height, mut tip) = (0u32, [0u8; 80]);
        ok(espv_decode_headers_subscribe(
            r.as_ptr(),
            r.len(),
            &mut tip_height,
            tip.as_mut_ptr(),
        ));
        assert_eq!(tip_height, 113);

        // block.header(111, cp_height 113) (recorded id 5): header, branch, root.
        ok(espv_request_block_header(s, d.now, 111, 113, 2, &mut id));
        let r = d.answer(&t, 5, id, 2);
        let (mut h111, mut branch, mut n, mut root) =
            ([0u8; 80], [0u8; 32 * 16], 0usize, [0u8; 32]);
        ok(espv_decode_block_header_proof(
            r.as_ptr(),
            r.len(),
            h111.as_mut_ptr(),
            branch.as_mut_ptr(),
            16,
            &mut n,
            root.as_mut_ptr(),
        ));
        assert_eq!(n, 7);
        let mut hash111 = [0u8; 32];
        ok(espv_header_hash(h111.as_ptr(), hash111.as_mut_ptr()));
        ok(espv_verify_header_proof(
            hash111.as_ptr(),
            111,
            113,
            branch.as_ptr(),
            n,
            root.as_ptr(),
        ));
        // At another height the same branch proves nothing.
        for height in [110, 112, 113] {
            let code = espv_verify_header_proof(
                hash111.as_ptr(),
                height,
                113,
                branch.as_ptr(),
                n,
                root.as_ptr(),
            );
            assert!(code < 0, "height {height}: {}", name(code));
        }

        // block.headers(100, 14, cp 113) (recorded id 6): 14 linked headers ending at the tip.
        ok(espv_request_block_headers(
            s, d.now, 100, 14, 113, 3, &mut id,
        ));
        let r = d.answer(&t, 6, id, 3);
        let (mut chunk, mut count) = ([0u8; 80 * 14], 0usize);
        ok(espv_decode_block_headers(
            r.as_ptr(),
            r.len(),
            chunk.as_mut_ptr(),
            14,
            &mut count,
        ));
        assert_eq!(count, 14);
        for i in 1..14 {
            let mut prev = [0u8; 32];
            ok(espv_header_hash(
                chunk[80 * (i - 1)..].as_ptr(),
                prev.as_mut_ptr(),
            ));
            assert_eq!(&chunk[80 * i + 4..80 * i + 36], &prev, "header {}", 100 + i);
        }
        assert_eq!(&chunk[80 * 11..80 * 12], &h111);
        assert_eq!(&chunk[80 * 13..], &tip);
        // Not anchored (regtest has no checkpoints): refused as a segment start.
        assert_eq!(
            name(espv_verify_headers(
                ESPV_NETWORK_REGTEST,
                100,
                chunk.as_ptr(),
                14,
                std::ptr::null_mut(),
                std::ptr::null_mut()
            )),
            "ESPV_ERR_NO_ANCHOR"
        );

        // block.header(100000) (recorded id 7): a server error with code and message.
        ok(espv_request_block_header(s, d.now, 100_000, 0, 4, &mut id));
        let _ = d.take();
        let seen = d.feed(t.reply(7, id).as_bytes());
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].ev.kind, ESPV_EVENT_SERVER_ERROR);
        assert!(seen[0].ev.has_code && seen[0].ev.code == 1);
        assert_eq!(seen[0].data, b"height 100,000 out of range");

        // get_history (id 8) and subscribe (id 9): the recomputed status is the server's.
        ok(espv_request_script_history(
            s,
            d.now,
            spk.as_ptr(),
            spk.len(),
            5,
            &mut id,
        ));
        let r = d.answer(&t, 8, id, 5);
        let mut rows = [EspvHistoryItem::default(); 16];
        ok(espv_decode_history(
            r.as_ptr(),
            r.len(),
            rows.as_mut_ptr(),
            16,
            &mut count,
        ));
        assert!(count >= 2, "{count} rows");
        let mut status = [0u8; 32];
        ok(espv_status_hash(rows.as_ptr(), count, status.as_mut_ptr()));
        ok(espv_request_script_subscribe(
            s,
            d.now,
            spk.as_ptr(),
            spk.len(),
            6,
            &mut id,
        ));
        let r = d.answer(&t, 9, id, 6);
        let mut server_status = [0u8; 32];
        ok(espv_decode_status(
            r.as_ptr(),
            r.len(),
            server_status.as_mut_ptr(),
        ));
        assert_eq!(status, server_status);

        // transaction.get (id 13): the bytes hash to the txid asked for.
        let txid = internal("1f591459419b5b3134ec5f557888c468532b146e747030fd40e42c2600ede262");
        ok(espv_request_transaction(
            s,
            d.now,
            txid.as_ptr(),
            7,
            &mut id,
        ));
        let r = d.answer(&t, 13, id, 7);
        let (mut raw, mut len, mut got) = (vec![0u8; 4096], 0usize, [0u8; 32]);
        ok(espv_decode_transaction(
            r.as_ptr(),
            r.len(),
            raw.as_mut_ptr(),
            raw.len(),
            &mut len,
        ));
        ok(espv_txid(raw.as_ptr(), len, got.as_mut_ptr()));
        assert_eq!(display(&got), display(&txid));

        // get_merkle (id 14): the branch reaches header 111's merkle root.
        ok(espv_request_merkle(
            s,
            d.now,
            txid.as_ptr(),
            111,
            8,
            &mut id,
        ));
        let r = d.answer(&t, 14, id, 8);
        let (mut height, mut pos) = (0u32, 0u32);
        ok(espv_decode_merkle(
            r.as_ptr(),
            r.len(),
            &mut height,
            &mut pos,
            branch.as_mut_ptr(),
            16,
            &mut n,
        ));
        assert_eq!(height, 111);
        let mut merkle_root = [0u8; 32];
        ok(espv_header_merkle_root(
            h111.as_ptr(),
            merkle_root.as_mut_ptr(),
        ));
        ok(espv_verify_merkle(
            txid.as_ptr(),
            pos,
            branch.as_ptr(),
            n,
            merkle_root.as_ptr(),
        ));
        assert_eq!(
            name(espv_verify_merkle(
                txid.as_ptr(),
                pos ^ 1,
                branch.as_ptr(),
                n,
                merkle_root.as_ptr()
            )),
            "ESPV_ERR_MERKLE_ROOT_MISMATCH"
        );

        // estimatefee (id 15): a rate.
        ok(espv_request_estimate_fee(s, d.now, 2, 9, &mut id));
        let r = d.answer(&t, 15, id, 9);
        let mut rate = 0f64;
        ok(espv_decode_fee_rate(r.as_ptr(), r.len(), &mut rate));
        assert_eq!(rate, 2e-05);

        // The recorded notifications: a new tip and a script status.
        let notes: String = t
            .incoming
            .iter()
            .filter(|v| v.get("method").is_some())
            .map(|v| format!("{v}\n"))
            .collect();
        let seen = d.feed(notes.as_bytes());
        let kinds: Vec<u32> = seen.iter().map(|s| s.ev.kind).collect();
        assert!(kinds.contains(&ESPV_EVENT_HEADER_NOTIFICATION), "{kinds:?}");
        assert!(kinds.contains(&ESPV_EVENT_SCRIPT_NOTIFICATION), "{kinds:?}");
        assert_eq!(espv_session_in_flight(s), 0);
        assert_eq!(espv_session_dropped_events(s), 0);
    }
}

/// Room for a value one byte past an 8-aligned address.
#[repr(C, align(8))]
struct Room([u8; 512]);

impl Room {
    /// A pointer one byte into the room: misaligned for every type wider than a byte.
    fn odd<T>(&mut self) -> *mut T {
        assert!(size_of::<T>() < 511);
        self.0[1..].as_mut_ptr().cast()
    }
}

#[test]
fn misaligned_pointers_are_refused_before_the_session_changes() {
    let t = Transcript::load();
    let mut d = Driver {
        mem: Box::new(Memory([0; ESPV_SESSION_SIZE])),
        now: 1_000,
    };
    let mut room = Box::new(Room([0x5a; 512]));
    let mut cfg = MaybeUninit::<EspvConfig>::uninit();
    // SAFETY: aligned pointers point at memory of their type; misaligned ones into `room`,
    // which the functions refuse before touching.
    unsafe {
        assert_eq!(
            name(espv_config_default(room.odd(), ESPV_NETWORK_REGTEST)),
            "ESPV_ERR_MISALIGNED"
        );
        ok(espv_config_default(cfg.as_mut_ptr(), ESPV_NETWORK_REGTEST));
        let cfg = cfg.assume_init();
        // A config read from a misaligned address.
        room.odd::<EspvConfig>().write_unaligned(cfg);
        assert_eq!(
            name(espv_session_init(
                d.s().cast(),
                ESPV_SESSION_SIZE,
                ESPV_LINE_CAPACITY,
                ESPV_OUTPUT_CAPACITY,
                ESPV_MAX_IN_FLIGHT,
                room.odd(),
                d.now
            )),
            "ESPV_ERR_MISALIGNED"
        );
        ok(espv_session_init(
            d.s().cast(),
            ESPV_SESSION_SIZE,
            ESPV_LINE_CAPACITY,
            ESPV_OUTPUT_CAPACITY,
            ESPV_MAX_IN_FLIGHT,
            &cfg,
            d.now,
        ));
        let s = d.s();
        let mut n = 0usize;
        let mut buf = [0u8; 1000];
        // take_output: nothing taken.
        assert_eq!(
            name(espv_session_take_output(
                s,
                buf.as_mut_ptr(),
                buf.len(),
                room.odd()
            )),
            "ESPV_ERR_MISALIGNED"
        );
        let version = d.take();
        assert!(t.outgoing.starts_with(&version), "{version}");
        // feed: nothing consumed (the features request is not queued).
        let reply = t.reply(0, 0);
        assert_eq!(
            name(espv_session_feed(
                s,
                reply.as_ptr(),
                reply.len(),
                d.now,
                room.odd()
            )),
            "ESPV_ERR_MISALIGNED"
        );
        assert_eq!(d.take(), "");
        assert!(d.feed(reply.as_bytes()).is_empty());
        assert!(d.take().contains("\"server.features\""));
        // poll_event: the READY event stays queued.
        let features = t.reply(1, 1);
        ok(espv_session_feed(
            s,
            features.as_ptr(),
            features.len(),
            d.now,
            &mut n,
        ));
        assert_eq!(n, features.len());
        assert_eq!(
            name(espv_session_poll_event(s, room.odd())),
            "ESPV_ERR_MISALIGNED"
        );
        let mut ev = MaybeUninit::<EspvEvent>::uninit();
        ok(espv_session_poll_event(s, ev.as_mut_ptr()));
        assert_eq!(ev.assume_init().kind, ESPV_EVENT_READY);
        // state, timeout.
        assert_eq!(
            name(espv_session_state(s, room.odd())),
            "ESPV_ERR_MISALIGNED"
        );
        assert_eq!(
            name(espv_session_timeout(s, room.odd())),
            "ESPV_ERR_MISALIGNED"
        );
        // Requests: nothing queued, nothing in flight.
        let txid = [1u8; 32];
        let script = [0x51u8];
        let codes = [
            espv_request_headers_subscribe(s, d.now, 1, room.odd()),
            espv_request_block_header(s, d.now, 1, 0, 1, room.odd()),
            espv_request_block_headers(s, d.now, 0, 2, 0, 1, room.odd()),
            espv_request_block_headers_streamed(s, d.now, 0, 2, 1, room.odd()),
            espv_request_script_history(s, d.now, script.as_ptr(), 1, 1, room.odd()),
            espv_request_script_history_streamed(s, d.now, script.as_ptr(), 1, 1, room.odd()),
            espv_request_script_subscribe(s, d.now, script.as_ptr(), 1, 1, room.odd()),
            espv_request_merkle(s, d.now, txid.as_ptr(), 1, 1, room.odd()),
            espv_request_transaction(s, d.now, txid.as_ptr(), 1, room.odd()),
            espv_request_broadcast(s, d.now, script.as_ptr(), 1, 1, room.odd()),
            espv_request_estimate_fee(s, d.now, 2, 1, room.odd()),
        ];
        for code in codes {
            assert_eq!(name(code), "ESPV_ERR_MISALIGNED");
        }
        assert_eq!(espv_session_in_flight(s), 0);
        assert_eq!(d.take(), "");
        // With an aligned id the same request goes out.
        let mut id = 0u64;
        ok(espv_request_headers_subscribe(s, d.now, 1, &mut id));
        assert_eq!(espv_session_in_flight(s), 1);
        // Session memory itself.
        let odd_session = d.mem.0[1..].as_mut_ptr().cast::<EspvSession>();
        assert_eq!(
            name(espv_session_handle_timeout(odd_session, d.now)),
            "ESPV_ERR_MISALIGNED"
        );
    }
    assert!(
        room.0
            .iter()
            .skip(1 + size_of::<EspvConfig>())
            .all(|b| *b == 0x5a)
    );
    assert_eq!(room.0[0], 0x5a);
}
