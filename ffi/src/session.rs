//! The session in caller memory: size, initialization, and the caller-driven I/O calls.
//!
//! The caller chooses the session's capacities: a line buffer of `line_cap` bytes (the longest
//! reply buffered whole), an outgoing queue of `out_cap` bytes (the request bytes waiting to be
//! taken; the largest single request must fit, a broadcast's transaction hex included), and
//! `max_in_flight` requests in flight. `ESPV_LINE_CAPACITY`, `ESPV_OUTPUT_CAPACITY` and
//! `ESPV_MAX_IN_FLIGHT` are a good start: a `blockchain.block.headers` reply of up to 99
//! headers, a history of about 150 rows, a broadcast of about 2 KB. A 2016-header chunk or a
//! long history does not need the line: request it streamed
//! (`espv_request_block_headers_streamed`, `espv_request_script_history_streamed`), which
//! verifies it item by item in the same memory.
//!
//! All of it lives in the one block of caller memory given to `espv_session_init`: the
//! session's state first, then its buffers. The session keeps pointers into the block, so the
//! block must not be moved or copied while the session is used.

use core::ffi::{CStr, c_char, c_int, c_void};
use core::mem::{align_of, size_of};
use core::ptr;

use electrum_spv_core::rpc::{ProtocolVersion, VersionRange};
use electrum_spv_core::session::{Config, DEFAULT_PING_INTERVAL, DEFAULT_REQUEST_TIMEOUT};
use electrum_spv_core::session::{PendingSlot, Session, SessionStorage};
use electrum_spv_core::time::{Duration, Instant};

use crate::network;
use crate::ptr::{Out, bytes, bytes_mut, checked, read, try_status};
use crate::status::{
    ESPV_ERR_BUFFER_TOO_SMALL, ESPV_ERR_INVALID_ARGUMENT, ESPV_ERR_NOT_INITIALIZED, ESPV_ERR_NULL,
    ESPV_NONE, ESPV_OK, fatal_error,
};

/// A line buffer size to start from: the longest reply line buffered whole.
pub const ESPV_LINE_CAPACITY: usize = 16384;
/// An outgoing queue size to start from: the most request bytes waiting to be taken.
pub const ESPV_OUTPUT_CAPACITY: usize = 4096;
/// A number of requests in flight at once to start from.
pub const ESPV_MAX_IN_FLIGHT: usize = 8;
/// Bytes to reserve for a session with the capacities above on any target (an upper bound;
/// `espv_session_size(ESPV_LINE_CAPACITY, ESPV_OUTPUT_CAPACITY, ESPV_MAX_IN_FLIGHT)` is the
/// exact figure for the target the library was built for). For static allocation:
/// `static uint8_t mem[ESPV_SESSION_SIZE] __attribute__((aligned(ESPV_SESSION_ALIGN)));`
pub const ESPV_SESSION_SIZE: usize = 23552;
/// Alignment to give session memory on any target (an upper bound of `espv_session_align()`).
pub const ESPV_SESSION_ALIGN: usize = 8;
/// Bytes of session state beside its buffers on any target (an upper bound): a session needs
/// at most `ESPV_SESSION_STATE_SIZE + line_cap + out_cap + ESPV_PENDING_SLOT_SIZE *
/// max_in_flight` bytes.
pub const ESPV_SESSION_STATE_SIZE: usize = 2560;
/// Bytes per request in flight on any target (an upper bound).
pub const ESPV_PENDING_SLOT_SIZE: usize = 40;

/// The core session behind the ABI: its buffers are in the caller's block, after it.
pub(crate) type CoreSession = Session<'static>;

/// Marks memory initialized by `espv_session_init` ("espvsess").
const SESSION_MAGIC: u64 = 0x6573_7076_7365_7373;

/// An Electrum protocol session, living in memory the caller provides (opaque: reserve
/// `espv_session_size()` bytes aligned to `espv_session_align()`, initialize them with
/// `espv_session_init`, then use the memory's address as the `espv_session *`).
///
/// It owns nothing outside that memory and needs no teardown: forget it, or reuse the memory
/// for a new session. It is not thread-safe: use one session from one thread at a time.
pub struct EspvSession {
    magic: u64,
    pub(crate) core: CoreSession,
}

const _: () = assert!(size_of::<EspvSession>() <= ESPV_SESSION_STATE_SIZE);
const _: () = assert!(PendingSlot::SIZE <= ESPV_PENDING_SLOT_SIZE);
const _: () = assert!(align_of::<EspvSession>() <= ESPV_SESSION_ALIGN);
const _: () = assert!(align_of::<PendingSlot>() <= align_of::<EspvSession>());
const _: () = assert!(matches!(
    layout(ESPV_LINE_CAPACITY, ESPV_OUTPUT_CAPACITY, ESPV_MAX_IN_FLIGHT),
    Some(l) if l.total <= ESPV_SESSION_SIZE
));

/// Where a session's parts lie in its block, in bytes from its start.
#[derive(Clone, Copy)]
struct Layout {
    pending: usize,
    line: usize,
    out: usize,
    total: usize,
}

/// The block's layout for these capacities: the state, the pending slots (aligned as the
/// state is, so nothing is padded), the line buffer, the outgoing queue. `None` if a capacity
/// is unusable (no request in flight, no outgoing queue) or the total overflows.
const fn layout(line_cap: usize, out_cap: usize, max_in_flight: usize) -> Option<Layout> {
    if max_in_flight == 0 || out_cap == 0 {
        return None;
    }
    let pending = size_of::<EspvSession>();
    let Some(slots) = max_in_flight.checked_mul(PendingSlot::SIZE) else {
        return None;
    };
    let Some(line) = pending.checked_add(slots) else {
        return None;
    };
    let Some(out) = line.checked_add(line_cap) else {
        return None;
    };
    match out.checked_add(out_cap) {
        Some(total) => Some(Layout {
            pending,
            line,
            out,
            total,
        }),
        None => None,
    }
}

/// A protocol version as numbers: 1.4 is `{1, 4, 0}`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EspvVersion {
    /// First component.
    pub major: u16,
    /// Second component.
    pub minor: u16,
    /// Third component (0 if absent).
    pub revision: u16,
}

impl EspvVersion {
    pub(crate) const fn from_core(v: ProtocolVersion) -> EspvVersion {
        EspvVersion {
            major: v.major,
            minor: v.minor,
            revision: v.revision,
        }
    }

    const fn to_core(self) -> ProtocolVersion {
        ProtocolVersion::new(self.major, self.minor, self.revision)
    }

    const fn is_zero(self) -> bool {
        self.major == 0 && self.minor == 0 && self.revision == 0
    }
}

/// How a session is set up. Fill it with `espv_config_default`, then change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EspvConfig {
    /// `ESPV_NETWORK_*`: the network the server must be on (its genesis hash is checked).
    pub network: u32,
    /// Client name sent in `server.version` (NUL-terminated UTF-8, without a `/x.y` suffix),
    /// or NULL for `"electrum-spv"`. It must stay valid as long as the session is used (a
    /// string literal is simplest).
    pub client_name: *const c_char,
    /// Lowest protocol version accepted; all zero means 1.4.
    pub version_min: EspvVersion,
    /// Highest protocol version asked for; all zero means 1.6 (set `{1, 7, 0}` for 1.7).
    pub version_max: EspvVersion,
    /// Deadline of each request after it is queued, in ms; 0 means 40000.
    pub request_timeout_ms: u64,
    /// A keep-alive `server.ping` is sent after this long without sending, in ms; 0 means
    /// 240000.
    pub ping_interval_ms: u64,
}

/// Fills `*out` with the defaults for `network` (`ESPV_NETWORK_*`): client name
/// `"electrum-spv"`, protocol 1.4 to 1.6, 40 s request deadline, keep-alive every 240 s.
///
/// Returns `ESPV_OK`, `ESPV_ERR_NULL`, or `ESPV_ERR_INVALID_ARGUMENT` for an unknown network
/// (`*out` is filled all the same).
///
/// # Safety
/// `out` is NULL or points at a writable `espv_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_config_default(out: *mut EspvConfig, network: u32) -> c_int {
    let range = VersionRange::DEFAULT;
    let config = EspvConfig {
        network,
        client_name: ptr::null(),
        version_min: EspvVersion::from_core(range.min),
        version_max: EspvVersion::from_core(range.max),
        request_timeout_ms: DEFAULT_REQUEST_TIMEOUT.millis(),
        ping_interval_ms: DEFAULT_PING_INTERVAL.millis(),
    };
    let out = try_status!(Out::required(out));
    // SAFETY: the caller promises `out` points at a writable config.
    unsafe { out.put(config) };
    if network::params(network).is_none() {
        return ESPV_ERR_INVALID_ARGUMENT;
    }
    ESPV_OK
}

/// Bytes of memory a session with these capacities needs on this target: its state, then a
/// line buffer of `line_cap` bytes, an outgoing queue of `out_cap` bytes and room for
/// `max_in_flight` requests in flight. 0 if `out_cap` or `max_in_flight` is 0 or the size
/// overflows.
#[unsafe(no_mangle)]
pub extern "C" fn espv_session_size(
    line_cap: usize,
    out_cap: usize,
    max_in_flight: usize,
) -> usize {
    layout(line_cap, out_cap, max_in_flight).map_or(0, |l| l.total)
}

/// Alignment the session memory needs.
#[unsafe(no_mangle)]
pub extern "C" fn espv_session_align() -> usize {
    align_of::<EspvSession>()
}

/// The core configuration for a C one, or the status code saying why it is refused.
///
/// # Safety
/// `cfg.client_name` is NULL or a NUL-terminated string valid for as long as the session is.
unsafe fn core_config(cfg: &EspvConfig) -> Result<Config, c_int> {
    let params = network::params(cfg.network).ok_or(ESPV_ERR_INVALID_ARGUMENT)?;
    let mut config = Config::new(params);
    if !cfg.client_name.is_null() {
        // SAFETY: the caller promises a NUL-terminated string that outlives the session, so
        // treating it as `'static` for the session's lifetime is sound under that contract.
        let name: &'static CStr = unsafe { CStr::from_ptr(cfg.client_name) };
        config.client_name = name.to_str().map_err(|_| ESPV_ERR_INVALID_ARGUMENT)?;
    }
    let defaults = VersionRange::DEFAULT;
    let min = match cfg.version_min.is_zero() {
        true => defaults.min,
        false => cfg.version_min.to_core(),
    };
    let max = match cfg.version_max.is_zero() {
        true => defaults.max,
        false => cfg.version_max.to_core(),
    };
    config.versions = VersionRange::new(min, max).ok_or(ESPV_ERR_INVALID_ARGUMENT)?;
    if cfg.request_timeout_ms != 0 {
        config.request_timeout = Duration::from_millis(cfg.request_timeout_ms);
    }
    if cfg.ping_interval_ms != 0 {
        config.ping_interval = Duration::from_millis(cfg.ping_interval_ms);
    }
    Ok(config)
}

/// Initializes a session in `mem` (`len` bytes, at least `espv_session_size(line_cap,
/// out_cap, max_in_flight)`, aligned to `espv_session_align()`) with those capacities, for a
/// fresh connection; `now_ms` is the caller's monotonic clock in milliseconds (any origin; the
/// same clock for every later call). The session queues `server.version` at once: take it with
/// `espv_session_take_output` and send it. Afterwards use `(espv_session *)mem`, and neither
/// move nor copy the block while the session is used (it points into itself).
///
/// Stack: the buffers are never on the stack, whatever their sizes; the session's state is
/// built and moved into place (measured by `bindings/c/tests/test_stack.c`; README). The other
/// calls need about 2 KiB (measured: `espv_session_poll_event` 2.1 KB, `espv_verify_headers`
/// 1.7 KB).
///
/// Returns `ESPV_OK`; `ESPV_ERR_NULL` (`mem` or `cfg`), `ESPV_ERR_BUFFER_TOO_SMALL`,
/// `ESPV_ERR_MISALIGNED`, or `ESPV_ERR_INVALID_ARGUMENT` (a capacity `espv_session_size`
/// refuses, an outgoing queue too small for the version request, unknown network, empty
/// version range or one below 1.4, client name not UTF-8); then `mem` holds no session.
///
/// # Safety
/// `mem` is NULL or points at `len` writable bytes that nothing else uses while the session
/// lives; `cfg` is NULL or points at a valid `espv_config` whose `client_name` obeys its
/// documentation.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_init(
    mem: *mut c_void,
    len: usize,
    line_cap: usize,
    out_cap: usize,
    max_in_flight: usize,
    cfg: *const EspvConfig,
    now_ms: u64,
) -> c_int {
    if mem.is_null() || cfg.is_null() {
        return ESPV_ERR_NULL;
    }
    let Some(layout) = layout(line_cap, out_cap, max_in_flight) else {
        return ESPV_ERR_INVALID_ARGUMENT;
    };
    if len < layout.total {
        return ESPV_ERR_BUFFER_TOO_SMALL;
    }
    let target = mem.cast::<EspvSession>();
    try_status!(checked(target));
    // SAFETY: the caller promises `cfg` points at a valid config.
    let cfg = try_status!(unsafe { read(cfg) });
    // SAFETY: `client_name` follows the documented contract.
    let config = match unsafe { core_config(&cfg) } {
        Ok(c) => c,
        Err(code) => return code,
    };
    let base = mem.cast::<u8>();
    // SAFETY: the layout's parts lie inside the caller's `len` bytes (checked above), do not
    // overlap each other or the state, and the slots' offset is aligned for them (the state's
    // size is a multiple of its alignment, which is at least theirs). The caller lends the
    // block for as long as the session is used, which is what `'static` stands for here.
    let storage = unsafe {
        let pending = core::slice::from_raw_parts_mut(
            base.add(layout.pending).cast::<PendingSlot>(),
            max_in_flight,
        );
        // Any bytes are valid slots' contents only once written: fill them before use.
        for i in 0..max_in_flight {
            pending.as_mut_ptr().add(i).write(PendingSlot::EMPTY);
        }
        let line = core::slice::from_raw_parts_mut(base.add(layout.line), line_cap);
        let out = core::slice::from_raw_parts_mut(base.add(layout.out), out_cap);
        SessionStorage::new(line, out, pending)
    };
    // The state is put in place as the constant it starts from and started there: no session
    // is built on the stack.
    // SAFETY: `target` is non-NULL, aligned, and points at at least `size_of::<EspvSession>()`
    // writable bytes owned by the caller; `write` does not read or drop the old contents, and
    // the magic saying the session is initialized is written last, only for a live session.
    unsafe {
        ptr::addr_of_mut!((*target).magic).write(0);
        let core = ptr::addr_of_mut!((*target).core);
        core.write(Session::EMPTY);
        (*core).start(storage, config, Instant::from_millis(now_ms));
        if (*core).failure().is_some() {
            // Only an outgoing queue too small for the version request fails at once.
            return ESPV_ERR_INVALID_ARGUMENT;
        }
        ptr::addr_of_mut!((*target).magic).write(SESSION_MAGIC);
    }
    ESPV_OK
}

/// The session behind a C pointer, or the status code saying why there is none.
///
/// # Safety
/// `s` is NULL or points at memory given to `espv_session_init` (or at least at
/// `sizeof` a session's state, readable and aligned for it), not used elsewhere during
/// `'a`.
pub(crate) unsafe fn session<'a>(s: *mut EspvSession) -> Result<&'a mut EspvSession, c_int> {
    crate::ptr::checked_non_null(s)?;
    // SAFETY: non-NULL and aligned (checked); the caller promises session-sized memory. Reading the
    // magic first catches memory that `espv_session_init` never initialized.
    let magic = unsafe { ptr::addr_of!((*s).magic).read() };
    if magic != SESSION_MAGIC {
        return Err(ESPV_ERR_NOT_INITIALIZED);
    }
    // SAFETY: initialized by `espv_session_init` (magic checked) and not aliased (contract).
    Ok(unsafe { &mut *s })
}

/// Unwraps a session or returns its status code from the enclosing function.
macro_rules! session_or_return {
    ($s:expr) => {
        // SAFETY: every caller forwards its own `# Safety` contract for `s`.
        match unsafe { $crate::session::session($s) } {
            Ok(s) => s,
            Err(code) => return code,
        }
    };
}
pub(crate) use session_or_return;

/// Feeds bytes read from the connection. The session stops after each complete line, so
/// `*consumed` may be less than `len`: drain `espv_session_poll_event` until `ESPV_NONE`,
/// then feed the rest (`bytes + *consumed`). A response's result borrows the line: feed again
/// only after handling the events. Once the events are drained, `*consumed` is at least 1 for
/// any non-empty input; fed while events wait, it is 0 and nothing is lost (drain, then feed
/// again).
///
/// Returns `ESPV_OK` (also when the session has failed: input is then discarded) or
/// `ESPV_ERR_NULL` / `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `s` is an initialized session; `bytes` is NULL with `len` 0 or points at `len` readable
/// bytes; `consumed` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_feed(
    s: *mut EspvSession,
    bytes_in: *const u8,
    len: usize,
    now_ms: u64,
    consumed: *mut usize,
) -> c_int {
    let s = session_or_return!(s);
    // SAFETY: the caller promises `len` readable bytes at `bytes_in`.
    let Some(input) = (unsafe { bytes(bytes_in, len) }) else {
        return ESPV_ERR_NULL;
    };
    let consumed = try_status!(Out::optional(consumed));
    let used = s.core.handle_input(Instant::from_millis(now_ms), input);
    // SAFETY: the caller promises `consumed` is NULL or writable.
    unsafe { consumed.put(used) };
    ESPV_OK
}

/// Moves queued request bytes into `buf` (at most `cap`); `*written` says how many. Send
/// them all, in order, before taking more. Call it after `espv_session_init`, after each
/// request and after `espv_session_handle_timeout`; `*written` is 0 when nothing is queued.
///
/// Returns `ESPV_OK`, or `ESPV_ERR_NULL` / `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `s` is an initialized session; `buf` is NULL with `cap` 0 or points at `cap` writable
/// bytes; `written` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_take_output(
    s: *mut EspvSession,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> c_int {
    let s = session_or_return!(s);
    // SAFETY: the caller promises `cap` writable bytes at `buf`.
    let Some(out) = (unsafe { bytes_mut(buf, cap) }) else {
        return ESPV_ERR_NULL;
    };
    let written = try_status!(Out::optional(written));
    let n = s.core.poll_transmit(out);
    // SAFETY: the caller promises `written` is NULL or writable.
    unsafe { written.put(n) };
    ESPV_OK
}

/// When `espv_session_handle_timeout` should next be called: writes the deadline (caller's
/// ms clock) to `*deadline_ms` and returns `ESPV_OK`, or returns `ESPV_NONE` when nothing is
/// due (nothing in flight, negotiation not started). Wait for input until then.
///
/// # Safety
/// `s` is an initialized session; `deadline_ms` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_timeout(s: *mut EspvSession, deadline_ms: *mut u64) -> c_int {
    let s = session_or_return!(s);
    let deadline_ms = try_status!(Out::optional(deadline_ms));
    match s.core.poll_timeout() {
        Some(at) => {
            // SAFETY: the caller promises `deadline_ms` is NULL or writable.
            unsafe { deadline_ms.put(at.millis()) };
            ESPV_OK
        }
        None => ESPV_NONE,
    }
}

/// Expires requests past their deadline (each reported as `ESPV_EVENT_TIMED_OUT`) and queues
/// a keep-alive ping when one is due. Then drain events and take the output.
///
/// Returns `ESPV_OK`, or `ESPV_ERR_NULL` / `ESPV_ERR_NOT_INITIALIZED`.
///
/// # Safety
/// `s` is an initialized session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_handle_timeout(s: *mut EspvSession, now_ms: u64) -> c_int {
    let s = session_or_return!(s);
    s.core.handle_timeout(Instant::from_millis(now_ms));
    ESPV_OK
}

/// Where the session stands: `ESPV_OK` once negotiated (ready for requests; `*version`, if
/// not NULL, gets the negotiated version), `ESPV_NONE` while negotiating, or the negative
/// `ESPV_ERR_*` code saying why it failed (e.g. `ESPV_ERR_WRONG_GENESIS`).
///
/// # Safety
/// `s` is an initialized session; `version` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_state(
    s: *mut EspvSession,
    version: *mut EspvVersion,
) -> c_int {
    let s = session_or_return!(s);
    let version = try_status!(Out::optional(version));
    if let Some(v) = s.core.version() {
        // SAFETY: the caller promises `version` is NULL or writable.
        unsafe { version.put(EspvVersion::from_core(v)) };
        return ESPV_OK;
    }
    match s.core.failure() {
        Some(e) => fatal_error(e),
        None => ESPV_NONE,
    }
}

/// Requests in flight (sent or queued, not yet answered or expired); 0 for a NULL or
/// uninitialized session.
///
/// # Safety
/// `s` is NULL or an initialized session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_in_flight(s: *mut EspvSession) -> usize {
    // SAFETY: forwarded contract.
    match unsafe { session(s) } {
        Ok(s) => s.core.in_flight(),
        Err(_) => 0,
    }
}

/// Events dropped: always 0 (the session takes input and expires requests only while it has
/// room to report them); 0 for a NULL or uninitialized session too.
///
/// # Safety
/// `s` is NULL or an initialized session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_dropped_events(s: *mut EspvSession) -> u32 {
    // SAFETY: forwarded contract.
    match unsafe { session(s) } {
        Ok(s) => s.core.dropped_events(),
        Err(_) => 0,
    }
}
