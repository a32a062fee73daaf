//! The script tracker through the C ABI, called from Rust exactly as C calls it: memory and
//! pointer checks, then a session and a tracker in caller memory over a real TCP connection to
//! the test kit's mainnet replay server (real blocks and headers of periods 0 and 411; no
//! `cp_height`, so the test gives the tracker headers it verified itself from
//! `core/tests/data/mainnet`). Honest: every example script's verified history equals the one
//! computed independently from the blocks. Lying: each lie the tracker can see is reported
//! with its `ESPV_LIE_*` code, and no transaction of a lie is reported as verified.

use std::ffi::{CStr, c_void};
use std::io::{ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use electrum_spv_core::Txid;
use electrum_spv_ffi::event::*;
use electrum_spv_ffi::headers::*;
use electrum_spv_ffi::network::*;
use electrum_spv_ffi::script::*;
use electrum_spv_ffi::session::*;
use electrum_spv_ffi::status::*;
use electrum_spv_ffi::tracker::*;
use electrum_spv_testkit::replay::{self, Example, ReplayLie, ReplayServer};

fn name(code: i32) -> &'static str {
    // SAFETY: espv_status_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(espv_status_name(code)) }
        .to_str()
        .unwrap()
}

fn lie_name(lie: u32) -> &'static str {
    // SAFETY: espv_tracker_lie_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(espv_tracker_lie_name(lie)) }
        .to_str()
        .unwrap()
}

#[track_caller]
fn ok(code: i32) {
    assert_eq!(name(code), "ESPV_OK");
}

#[track_caller]
fn is(code: i32, want: &str) {
    assert_eq!(name(code), want);
}

/// 8-aligned caller memory of at least `bytes` bytes.
fn memory(bytes: usize) -> Vec<u64> {
    vec![0u64; bytes.div_ceil(8)]
}

#[repr(C, align(8))]
struct SessionMem([u8; ESPV_SESSION_SIZE]);

#[repr(C, align(8))]
struct TrackerMem([u8; ESPV_TRACKER_SIZE]);

#[test]
fn sizes_fit_the_published_bounds() {
    println!(
        "espv_tracker {} bytes (align {}); script slot {} (align {}); tx slot {} (align {}); \
         espv_tracker_event {}",
        espv_tracker_size(),
        espv_tracker_align(),
        espv_tracker_script_slot_size(),
        espv_tracker_script_slot_align(),
        espv_tracker_tx_slot_size(),
        espv_tracker_tx_slot_align(),
        size_of::<EspvTrackerEvent>()
    );
    assert!(espv_tracker_size() <= ESPV_TRACKER_SIZE);
    assert!(espv_tracker_align() <= ESPV_TRACKER_ALIGN);
    assert!(espv_tracker_script_slot_size() <= ESPV_TRACKER_SCRIPT_SLOT_SIZE);
    assert!(espv_tracker_tx_slot_size() <= ESPV_TRACKER_TX_SLOT_SIZE);
    assert!(espv_tracker_script_slot_align() <= ESPV_TRACKER_SLOT_ALIGN);
    assert!(espv_tracker_tx_slot_align() <= ESPV_TRACKER_SLOT_ALIGN);
    // The bounds are not wildly above the real sizes (they are what C reserves statically).
    assert!(ESPV_TRACKER_SCRIPT_SLOT_SIZE - espv_tracker_script_slot_size() <= 64);
    assert!(ESPV_TRACKER_TX_SLOT_SIZE - espv_tracker_tx_slot_size() <= 64);
}

#[test]
fn init_and_every_call_check_their_pointers() {
    let mut mem = Box::new(TrackerMem([0; ESPV_TRACKER_SIZE]));
    let base = mem.0.as_mut_ptr().cast::<c_void>();
    let t = base.cast::<EspvTracker>();
    let mut scripts = memory(2 * espv_tracker_script_slot_size());
    let mut txs = memory(4 * espv_tracker_tx_slot_size());
    let sp = scripts.as_mut_ptr().cast::<c_void>();
    let tp = txs.as_mut_ptr().cast::<c_void>();
    // SAFETY: every pointer points into the buffers above, sized as passed (or is NULL or
    // deliberately misaligned, which the functions must refuse before use).
    unsafe {
        // Not initialized yet.
        let mut synced = false;
        is(
            espv_tracker_is_synced(t, &mut synced),
            "ESPV_ERR_NOT_INITIALIZED",
        );
        is(
            espv_tracker_init(std::ptr::null_mut(), ESPV_TRACKER_SIZE, sp, 2, tp, 4),
            "ESPV_ERR_NULL",
        );
        is(
            espv_tracker_init(base, 8, sp, 2, tp, 4),
            "ESPV_ERR_BUFFER_TOO_SMALL",
        );
        let odd = base.cast::<u8>().add(1).cast::<c_void>();
        is(
            espv_tracker_init(odd, ESPV_TRACKER_SIZE - 1, sp, 2, tp, 4),
            "ESPV_ERR_MISALIGNED",
        );
        let odd_table = sp.cast::<u8>().add(4).cast::<c_void>();
        is(
            espv_tracker_init(base, ESPV_TRACKER_SIZE, odd_table, 1, tp, 4),
            "ESPV_ERR_MISALIGNED",
        );
        is(
            espv_tracker_init(base, ESPV_TRACKER_SIZE, std::ptr::null_mut(), 2, tp, 4),
            "ESPV_ERR_NULL",
        );
        is(
            espv_tracker_init(base, ESPV_TRACKER_SIZE, sp, usize::MAX / 2, tp, 4),
            "ESPV_ERR_INVALID_ARGUMENT",
        );
        // The two tables overlap, or a table overlaps the tracker.
        is(
            espv_tracker_init(base, ESPV_TRACKER_SIZE, sp, 2, sp, 1),
            "ESPV_ERR_INVALID_ARGUMENT",
        );
        is(
            espv_tracker_init(base, ESPV_TRACKER_SIZE, base, 1, tp, 4),
            "ESPV_ERR_INVALID_ARGUMENT",
        );
        is(
            espv_tracker_is_synced(t, &mut synced),
            "ESPV_ERR_NOT_INITIALIZED",
        );
        // Empty tables are allowed (NULL with 0).
        ok(espv_tracker_init(
            base,
            ESPV_TRACKER_SIZE,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            0,
        ));
        let mut index = 0u32;
        is(
            espv_tracker_add_script(t, [0x51].as_ptr(), 1, &mut index),
            "ESPV_ERR_TABLE_FULL",
        );

        ok(espv_tracker_init(base, ESPV_TRACKER_SIZE, sp, 2, tp, 4));
        ok(espv_tracker_is_synced(t, &mut synced));
        assert!(synced, "nothing tracked is synced");
        let long = [0x6a; ESPV_TRACKER_MAX_SCRIPT_LEN + 1];
        is(
            espv_tracker_add_script(t, long.as_ptr(), long.len(), &mut index),
            "ESPV_ERR_SCRIPT_TOO_LONG",
        );
        is(
            espv_tracker_add_script(t, std::ptr::null(), 3, &mut index),
            "ESPV_ERR_NULL",
        );
        let mut words = [0u32; 2];
        let bad_index = words.as_mut_ptr().cast::<u8>().add(1).cast::<u32>();
        is(
            espv_tracker_add_script(t, [0x51].as_ptr(), 1, bad_index),
            "ESPV_ERR_MISALIGNED",
        );
        // Nothing was added by the refused calls: the first script gets index 0.
        ok(espv_tracker_add_script(t, [0x51].as_ptr(), 1, &mut index));
        assert_eq!(index, 0);
        let mut hash = [0u8; 32];
        ok(espv_script_hash([0x51].as_ptr(), 1, hash.as_mut_ptr()));
        let mut got = [0u8; 32];
        ok(espv_tracker_script_hash(t, 0, got.as_mut_ptr()));
        assert_eq!(got, hash);
        is(
            espv_tracker_script_hash(t, 1, got.as_mut_ptr()),
            "ESPV_ERR_INVALID_ARGUMENT",
        );
        ok(espv_tracker_add_script_hash(t, hash.as_ptr(), &mut index));
        assert_eq!(index, 1);
        is(
            espv_tracker_add_script_hash(t, hash.as_ptr(), &mut index),
            "ESPV_ERR_TABLE_FULL",
        );
        ok(espv_tracker_is_synced(t, &mut synced));
        assert!(!synced, "a script not subscribed yet is not synced");

        // Queries on a script not verified yet, and on no script.
        let mut status = [0u8; 32];
        let mut has = true;
        is(
            espv_tracker_verified_status(t, 0, status.as_mut_ptr(), &mut has),
            "ESPV_NONE",
        );
        is(
            espv_tracker_verified_status(t, 7, status.as_mut_ptr(), &mut has),
            "ESPV_ERR_INVALID_ARGUMENT",
        );
        let mut tx = MaybeUninit::<EspvTrackerTx>::uninit();
        is(
            espv_tracker_history_get(t, 0, 0, tx.as_mut_ptr()),
            "ESPV_NONE",
        );
        is(
            espv_tracker_history_get(t, 9, 0, tx.as_mut_ptr()),
            "ESPV_ERR_INVALID_ARGUMENT",
        );
        let mut height = 0u32;
        is(espv_tracker_header_wanted(t, &mut height), "ESPV_NONE");
        is(
            espv_tracker_header_wanted(t, std::ptr::null_mut()),
            "ESPV_ERR_NULL",
        );
        let mut deadline = 0u64;
        is(espv_tracker_poll_timeout(t, &mut deadline), "ESPV_NONE");
        let mut stats = MaybeUninit::<EspvTrackerStats>::uninit();
        ok(espv_tracker_get_stats(t, stats.as_mut_ptr()));
        let stats = stats.assume_init();
        assert_eq!(stats.scripts_pending, 2);
        assert!(!stats.has_checkpoint);
        ok(espv_tracker_set_checkpoint(t, 100, [1; 32].as_ptr()));
        is(
            espv_tracker_set_checkpoint(t, 100, std::ptr::null()),
            "ESPV_ERR_NULL",
        );
        is(
            espv_tracker_provide_header(t, 5, std::ptr::null()),
            "ESPV_ERR_NULL",
        );
        let mut ev = MaybeUninit::<EspvTrackerEvent>::uninit();
        is(espv_tracker_poll_event(t, ev.as_mut_ptr()), "ESPV_NONE");
        let misaligned_ev = ev
            .as_mut_ptr()
            .cast::<u8>()
            .add(1)
            .cast::<EspvTrackerEvent>();
        is(
            espv_tracker_poll_event(t, misaligned_ev),
            "ESPV_ERR_MISALIGNED",
        );

        // With a session: polled before the session is ready queues nothing; a NULL or
        // misaligned out pointer consumes no event.
        let mut smem = Box::new(SessionMem([0; ESPV_SESSION_SIZE]));
        let s = smem.0.as_mut_ptr().cast::<EspvSession>();
        let mut cfg = MaybeUninit::<EspvConfig>::uninit();
        ok(espv_config_default(cfg.as_mut_ptr(), ESPV_NETWORK_MAINNET));
        ok(espv_session_init(
            s.cast(),
            ESPV_SESSION_SIZE,
            ESPV_LINE_CAPACITY,
            ESPV_OUTPUT_CAPACITY,
            ESPV_MAX_IN_FLIGHT,
            cfg.as_ptr(),
            0,
        ));
        let before = espv_session_in_flight(s);
        ok(espv_tracker_poll(t, s, 0));
        assert_eq!(
            espv_session_in_flight(s),
            before,
            "queued before negotiation"
        );
        is(
            espv_tracker_poll(t, t.cast(), 0),
            "ESPV_ERR_INVALID_ARGUMENT",
        );
        is(
            espv_tracker_poll(s.cast(), s, 0),
            "ESPV_ERR_INVALID_ARGUMENT",
        );
        // A session that overlaps the tracker without starting at the same byte.
        let inside = s.cast::<u8>().add(64).cast::<EspvTracker>();
        is(espv_tracker_poll(inside, s, 0), "ESPV_ERR_INVALID_ARGUMENT");
        is(
            espv_tracker_poll(std::ptr::null_mut(), s, 0),
            "ESPV_ERR_NULL",
        );
        let mut out = MaybeUninit::<EspvEvent>::uninit();
        is(
            espv_session_poll_event_tracked(s, t, out.as_mut_ptr(), misaligned_ev),
            "ESPV_ERR_MISALIGNED",
        );
        is(
            espv_session_poll_event_tracked(s, t, out.as_mut_ptr(), std::ptr::null_mut()),
            "ESPV_ERR_NULL",
        );
        is(
            espv_session_poll_event_tracked(s, t, out.as_mut_ptr(), ev.as_mut_ptr()),
            "ESPV_NONE",
        );
    }
}

/// The verified headers of the two mainnet files, by height.
struct Headers {
    low: Vec<u8>,
    high: Vec<u8>,
}

const HIGH_START: u32 = 822_528;

impl Headers {
    /// Both files, each verified with `espv_verify_headers` (genesis, and the checkpoint at
    /// 822528) before anything is taken from them.
    fn load() -> Headers {
        let dir = format!("{}/../core/tests/data/mainnet", env!("CARGO_MANIFEST_DIR"));
        let low = std::fs::read(format!("{dir}/headers_0_10236.bin")).unwrap();
        let high = std::fs::read(format!("{dir}/headers_822528_830592.bin")).unwrap();
        for (start, file) in [(0, &low), (HIGH_START, &high)] {
            let mut bad = 0u32;
            // SAFETY: `file` holds `len / 80` headers.
            let code = unsafe {
                espv_verify_headers(
                    ESPV_NETWORK_MAINNET,
                    start,
                    file.as_ptr(),
                    file.len() / 80,
                    std::ptr::null_mut(),
                    &mut bad,
                )
            };
            assert_eq!(name(code), "ESPV_OK", "headers from {start}: bad at {bad}");
        }
        Headers { low, high }
    }

    fn at(&self, height: u32) -> Option<&[u8]> {
        let (file, i) = match height.checked_sub(HIGH_START) {
            Some(i) => (&self.high, i),
            None => (&self.low, height),
        };
        file.get(i as usize * 80..i as usize * 80 + 80)
    }
}

/// A session and a tracker in caller memory, over a TCP connection to a replay server.
struct Run {
    _session_mem: Box<SessionMem>,
    _tracker_mem: Box<TrackerMem>,
    _scripts: Vec<u64>,
    _txs: Vec<u64>,
    s: *mut EspvSession,
    t: *mut EspvTracker,
    sock: TcpStream,
    start: Instant,
    /// Every tracker event, in order.
    events: Vec<EspvTrackerEvent>,
    headers_given: usize,
}

impl Run {
    fn new(server: &ReplayServer, n_scripts: usize, n_txs: usize) -> Run {
        let mut session_mem = Box::new(SessionMem([0; ESPV_SESSION_SIZE]));
        let mut tracker_mem = Box::new(TrackerMem([0; ESPV_TRACKER_SIZE]));
        let mut scripts = memory(n_scripts * espv_tracker_script_slot_size());
        let mut txs = memory(n_txs * espv_tracker_tx_slot_size());
        let s = session_mem.0.as_mut_ptr().cast::<EspvSession>();
        let t = tracker_mem.0.as_mut_ptr().cast::<EspvTracker>();
        let mut cfg = MaybeUninit::<EspvConfig>::uninit();
        // SAFETY: all memory above is sized and aligned as passed and lives in `Run`.
        unsafe {
            ok(espv_config_default(cfg.as_mut_ptr(), ESPV_NETWORK_MAINNET));
            ok(espv_session_init(
                s.cast(),
                ESPV_SESSION_SIZE,
                ESPV_LINE_CAPACITY,
                ESPV_OUTPUT_CAPACITY,
                ESPV_MAX_IN_FLIGHT,
                cfg.as_ptr(),
                0,
            ));
            ok(espv_tracker_init(
                t.cast(),
                ESPV_TRACKER_SIZE,
                scripts.as_mut_ptr().cast(),
                n_scripts,
                txs.as_mut_ptr().cast(),
                n_txs,
            ));
        }
        let sock = TcpStream::connect(server.addr()).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Run {
            _session_mem: session_mem,
            _tracker_mem: tracker_mem,
            _scripts: scripts,
            _txs: txs,
            s,
            t,
            sock,
            start: Instant::now(),
            events: Vec::new(),
            headers_given: 0,
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn add(&mut self, script: &[u8]) -> u32 {
        let mut index = u32::MAX;
        // SAFETY: `t` is initialized; `script` is readable.
        ok(unsafe { espv_tracker_add_script(self.t, script.as_ptr(), script.len(), &mut index) });
        index
    }

    fn drain(&mut self) {
        let mut ev = MaybeUninit::<EspvEvent>::uninit();
        let mut tev = MaybeUninit::<EspvTrackerEvent>::uninit();
        loop {
            // SAFETY: both states are initialized; both out pointers are writable.
            let code = unsafe {
                espv_session_poll_event_tracked(self.s, self.t, ev.as_mut_ptr(), tev.as_mut_ptr())
            };
            if code == ESPV_NONE {
                break;
            }
            ok(code);
            // SAFETY: written on ESPV_OK.
            let (ev, tev) = unsafe { (ev.assume_init(), tev.assume_init()) };
            assert_ne!(
                ev.kind,
                ESPV_EVENT_FAILED,
                "session failed: {}",
                name(ev.reason)
            );
            if tev.kind != ESPV_TRACKER_EVENT_NONE {
                self.events.push(tev);
            }
        }
        let mut tev = MaybeUninit::<EspvTrackerEvent>::uninit();
        // SAFETY: as above.
        while unsafe { espv_tracker_poll_event(self.t, tev.as_mut_ptr()) } == ESPV_OK {
            // SAFETY: written on ESPV_OK.
            self.events.push(unsafe { tev.assume_init() });
        }
    }

    /// One turn of the caller's loop: poll, send, read, feed and drain, headers.
    fn turn(&mut self, headers: &Headers) {
        let now = self.now();
        // SAFETY: both states are initialized; buffers are sized as passed.
        unsafe {
            ok(espv_tracker_poll(self.t, self.s, now));
            let mut buf = [0u8; 4096];
            let mut n = 0usize;
            while espv_session_take_output(self.s, buf.as_mut_ptr(), buf.len(), &mut n) == ESPV_OK
                && n > 0
            {
                self.sock.write_all(&buf[..n]).unwrap();
            }
            let got = match self.sock.read(&mut buf) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(got) => got,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
                Err(e) => panic!("read: {e}"),
            };
            let mut off = 0;
            while off < got {
                let mut used = 0usize;
                ok(espv_session_feed(
                    self.s,
                    buf[off..].as_ptr(),
                    got - off,
                    self.now(),
                    &mut used,
                ));
                off += used;
                self.drain();
            }
            ok(espv_session_handle_timeout(self.s, self.now()));
            self.drain();
            let mut height = 0u32;
            while espv_tracker_header_wanted(self.t, &mut height) == ESPV_OK {
                let header = headers
                    .at(height)
                    .unwrap_or_else(|| panic!("header {height} wanted, not in the data"));
                ok(espv_tracker_provide_header(self.t, height, header.as_ptr()));
                self.headers_given += 1;
            }
        }
    }

    fn synced(&self) -> bool {
        let mut synced = false;
        // SAFETY: `t` is initialized.
        ok(unsafe { espv_tracker_is_synced(self.t, &mut synced) });
        synced
    }

    /// Runs the loop until `done` or 60 s.
    fn until(&mut self, headers: &Headers, what: &str, done: impl Fn(&Run) -> bool) {
        while !done(self) {
            assert!(
                self.start.elapsed() < Duration::from_secs(60),
                "{what}: not done after 60 s; events {:?}",
                self.events
            );
            self.turn(headers);
        }
    }

    /// Script `i`'s verified history in chain order: (display txid, height, display block
    /// hash).
    fn history(&self, i: u32) -> Vec<(String, i64, String)> {
        let mut rows = Vec::new();
        for n in 0.. {
            let mut tx = MaybeUninit::<EspvTrackerTx>::uninit();
            // SAFETY: `t` is initialized; `tx` is writable.
            let code = unsafe { espv_tracker_history_get(self.t, i, n, tx.as_mut_ptr()) };
            if code == ESPV_NONE {
                break;
            }
            ok(code);
            // SAFETY: written on ESPV_OK.
            let tx = unsafe { tx.assume_init() };
            assert!(tx.confirmed);
            rows.push((tx.height, tx.pos, tx.txid, tx.block_hash));
        }
        rows.sort();
        rows.into_iter()
            .map(|(h, _, txid, block)| (display(&txid), h, display(&block)))
            .collect()
    }
}

fn display(hash: &[u8; 32]) -> String {
    let mut rev = *hash;
    rev.reverse();
    rev.iter().map(|b| format!("{b:02x}")).collect()
}

fn expected(e: &Example) -> Vec<(String, i64, String)> {
    e.history
        .iter()
        .map(|t| {
            (
                t.txid.to_string(),
                i64::from(t.height),
                t.block_hash.to_string(),
            )
        })
        .collect()
}

#[test]
fn real_mainnet_histories_are_verified_through_the_c_abi() {
    let headers = Headers::load();
    let examples = replay::examples().unwrap();
    let server = ReplayServer::start(ReplayLie::None).unwrap();
    let mut run = Run::new(&server, 8, 64);
    let indices: Vec<u32> = examples
        .iter()
        .map(|e| run.add(e.script.as_bytes()))
        .collect();
    assert_eq!(indices, (0..examples.len() as u32).collect::<Vec<_>>());
    run.until(&headers, "honest", |r| r.synced());

    let mut confirmed = 0;
    for (e, &i) in examples.iter().zip(&indices) {
        assert_eq!(run.history(i), expected(e), "{}", e.name);
        let mut status = [0u8; 32];
        let mut has = false;
        // SAFETY: `t` is initialized; `status` and `has` are writable.
        ok(unsafe { espv_tracker_verified_status(run.t, i, status.as_mut_ptr(), &mut has) });
        assert_eq!(has, e.status.is_some(), "{}", e.name);
        if let Some(want) = &e.status {
            let got: String = status.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(&got, want, "{}", e.name);
        }
        // Each transaction was reported once, as confirmed, with its block and position.
        let reported: Vec<&EspvTrackerEvent> = run
            .events
            .iter()
            .filter(|ev| ev.kind == ESPV_TRACKER_EVENT_CONFIRMED && ev.script == i)
            .collect();
        assert_eq!(reported.len(), e.history.len(), "{}", e.name);
        confirmed += reported.len();
    }
    let lies: Vec<_> = run
        .events
        .iter()
        .filter(|e| e.kind == ESPV_TRACKER_EVENT_SERVER_LIED)
        .collect();
    assert!(
        lies.is_empty(),
        "an honest server was caught lying: {lies:?}"
    );
    let verified = run
        .events
        .iter()
        .filter(|e| e.kind == ESPV_TRACKER_EVENT_STATUS_VERIFIED)
        .count();
    assert_eq!(verified, examples.len());
    assert!(run.headers_given > 0 && confirmed >= examples.len());
    let mut stats = MaybeUninit::<EspvTrackerStats>::uninit();
    // SAFETY: `t` is initialized; `stats` is writable.
    ok(unsafe { espv_tracker_get_stats(run.t, stats.as_mut_ptr()) });
    // SAFETY: written on ESPV_OK.
    let stats = unsafe { stats.assume_init() };
    assert_eq!(stats.txs_done as usize, confirmed);
    assert_eq!(
        (stats.scripts_pending, stats.txs_pending, stats.in_flight),
        (0, 0, 0)
    );
    println!(
        "{} scripts, {confirmed} transactions verified, {} headers given, {} ms",
        examples.len(),
        run.headers_given,
        run.now()
    );
}

/// Runs every example against a server telling `lie` until the tracker reports `want`
/// (an `ESPV_LIE_*`); returns the run.
fn caught(lie: ReplayLie, want: u32) -> (Run, Vec<Example>) {
    let headers = Headers::load();
    let examples = replay::examples().unwrap();
    let server = ReplayServer::start(lie).unwrap();
    let mut run = Run::new(&server, 8, 64);
    for e in &examples {
        run.add(e.script.as_bytes());
    }
    run.until(&headers, lie.name(), |r| {
        r.events
            .iter()
            .any(|e| e.kind == ESPV_TRACKER_EVENT_SERVER_LIED && e.lie == want)
    });
    for e in &run.events {
        if e.kind == ESPV_TRACKER_EVENT_SERVER_LIED {
            assert_eq!(
                lie_name(e.lie),
                lie_name(want),
                "{}: another lie reported: {e:?}",
                lie.name()
            );
        }
    }
    assert!(server.tampered() > 0, "{} never fired", lie.name());
    // Nothing the server made up was reported as verified.
    for e in &run.events {
        if e.kind == ESPV_TRACKER_EVENT_CONFIRMED {
            let ex = &examples[e.script as usize];
            let txid = Txid::from_byte_array(e.txid).to_string();
            assert!(
                ex.history.iter().any(|t| t.txid.to_string() == txid),
                "{}: {txid} reported for {} but not in its history",
                lie.name(),
                ex.name
            );
        }
    }
    (run, examples)
}

#[test]
fn an_unrelated_transaction_is_a_lie_naming_it() {
    let (run, examples) = caught(ReplayLie::UnrelatedTxInserted, ESPV_LIE_UNRELATED);
    for e in run.events.iter().filter(|e| e.lie == ESPV_LIE_UNRELATED) {
        assert!(e.has_txid);
        let txid = Txid::from_byte_array(e.txid).to_string();
        let ex = &examples[e.script as usize];
        assert!(
            !ex.history.iter().any(|t| t.txid.to_string() == txid),
            "{txid} is in {}'s real history",
            ex.name
        );
    }
}

#[test]
fn a_txid_listed_twice_is_a_lie_naming_it() {
    let (run, examples) = caught(ReplayLie::DuplicateTxid, ESPV_LIE_DUPLICATE_TXID);
    for e in run
        .events
        .iter()
        .filter(|e| e.lie == ESPV_LIE_DUPLICATE_TXID)
    {
        // The first entry of the history is the one listed twice.
        let first = examples[e.script as usize].history[0].txid.to_string();
        assert!(e.has_txid);
        assert_eq!(Txid::from_byte_array(e.txid).to_string(), first);
    }
}

#[test]
fn a_branch_of_another_position_is_a_merkle_lie() {
    let (run, _) = caught(ReplayLie::WrongPositionBranch, ESPV_LIE_MERKLE);
    let merkle = run
        .events
        .iter()
        .find(|e| e.lie == ESPV_LIE_MERKLE)
        .unwrap();
    assert!(merkle.has_txid);
    assert!(name(merkle.reason).starts_with("ESPV_ERR_MERKLE_"));
}

#[test]
fn a_hidden_entry_under_the_honest_status_is_a_status_lie() {
    // Asked three times, STATUS_RETRY_MS apart, before it is a lie: a few seconds.
    let (run, _) = caught(ReplayLie::HiddenEntryHonestStatus, ESPV_LIE_STATUS_MISMATCH);
    let lie = run
        .events
        .iter()
        .find(|e| e.lie == ESPV_LIE_STATUS_MISMATCH)
        .unwrap();
    assert!(!lie.has_txid);
}
