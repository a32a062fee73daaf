//! The session in caller memory: size, initialization, and the caller-driven I/O calls.
//!
//! One fixed session shape for the ABI: a line buffer of `ESPV_LINE_CAPACITY` bytes (the
//! largest buffered reply: a `blockchain.block.headers` reply of up to 99 headers, a history of
//! about 150 rows), an outgoing queue of `ESPV_OUTPUT_CAPACITY` bytes (the largest single
//! request: a broadcast of a transaction of up to about 2 KB), and `ESPV_MAX_IN_FLIGHT`
//! requests in flight. A 2016-header chunk or a long history does not fit the line: request it
//! streamed (`espv_request_block_headers_streamed`, `espv_request_script_history_streamed`),
//! which verifies it item by item in the same memory.

use core::ffi::{CStr, c_char, c_int, c_void};
use core::mem::{align_of, size_of};
use core::ptr;

use electrum_spv_core::rpc::{ProtocolVersion, VersionRange};
use electrum_spv_core::session::Session;
use electrum_spv_core::session::{Config, DEFAULT_PING_INTERVAL, DEFAULT_REQUEST_TIMEOUT};
use electrum_spv_core::time::{Duration, Instant};

use crate::network;
use crate::ptr::{Out, bytes, bytes_mut, checked, read, try_status};
use crate::status::{
    ESPV_ERR_BUFFER_TOO_SMALL, ESPV_ERR_INVALID_ARGUMENT, ESPV_ERR_NOT_INITIALIZED, ESPV_ERR_NULL,
    ESPV_NONE, ESPV_OK, fatal_error,
};

/// Bytes of the session's line buffer: the longest reply line it buffers whole.
pub const ESPV_LINE_CAPACITY: usize = 16384;
/// Bytes of the session's outgoing queue: the most request bytes waiting to be taken.
pub const ESPV_OUTPUT_CAPACITY: usize = 4096;
/// Requests the session keeps in flight at once.
pub const ESPV_MAX_IN_FLIGHT: usize = 8;
/// Bytes to reserve for a session on any target (an upper bound; `espv_session_size()` is the
/// exact figure for the target the library was built for). For static allocation:
/// `static uint8_t mem[ESPV_SESSION_SIZE] __attribute__((aligned(ESPV_SESSION_ALIGN)));`
pub const ESPV_SESSION_SIZE: usize = 23552;
/// Alignment to give session memory on any target (an upper bound of `espv_session_align()`).
pub const ESPV_SESSION_ALIGN: usize = 8;

/// The core session behind the ABI.
pub(crate) type CoreSession = Session<ESPV_LINE_CAPACITY, ESPV_OUTPUT_CAPACITY, ESPV_MAX_IN_FLIGHT>;

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

const _: () = assert!(size_of::<EspvSession>() <= ESPV_SESSION_SIZE);
const _: () = assert!(align_of::<EspvSession>() <= ESPV_SESSION_ALIGN);

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

/// Bytes of memory a session needs (`sizeof` the session state on this target).
#[unsafe(no_mangle)]
pub extern "C" fn espv_session_size() -> usize {
    size_of::<EspvSession>()
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

/// Initializes a session in `mem` (`len` bytes, at least `espv_session_size()`, aligned to
/// `espv_session_align()`), for a fresh connection; `now_ms` is the caller's monotonic clock
/// in milliseconds (any origin; the same clock for every later call). The session queues
/// `server.version` at once: take it with `espv_session_take_output` and send it. Afterwards
/// use `(espv_session *)mem`.
///
/// Stack: the core session is built by value and then moved into `mem`, so this call uses
/// about `espv_session_size()` plus 6 KiB of stack (28 KB measured on x86-64, release); call
/// it where the stack has that room (e.g. from `main` at start-up). The other calls need about
/// 2 KiB (measured: `espv_session_poll_event` 2.1 KB, `espv_verify_headers` 1.7 KB).
///
/// Returns `ESPV_OK`; `ESPV_ERR_NULL` (`mem` or `cfg`), `ESPV_ERR_BUFFER_TOO_SMALL`,
/// `ESPV_ERR_MISALIGNED`, or `ESPV_ERR_INVALID_ARGUMENT` (unknown network, empty version
/// range or one below 1.4, client name not UTF-8), leaving `mem` untouched.
///
/// # Safety
/// `mem` is NULL or points at `len` writable bytes that nothing else uses while the session
/// lives; `cfg` is NULL or points at a valid `espv_config` whose `client_name` obeys its
/// documentation.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn espv_session_init(
    mem: *mut c_void,
    len: usize,
    cfg: *const EspvConfig,
    now_ms: u64,
) -> c_int {
    if mem.is_null() || cfg.is_null() {
        return ESPV_ERR_NULL;
    }
    if len < size_of::<EspvSession>() {
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
    // Field by field, the session straight into its place: building a whole `EspvSession`
    // first would put one more copy of it on the stack.
    // SAFETY: `target` is non-NULL, aligned, and points at at least `size_of::<EspvSession>()`
    // writable bytes owned by the caller; `write` does not read or drop the old contents, and
    // both fields are written before the magic says the session is initialized.
    unsafe {
        ptr::addr_of_mut!((*target).core).write(Session::new(config, Instant::from_millis(now_ms)));
        ptr::addr_of_mut!((*target).magic).write(SESSION_MAGIC);
    }
    ESPV_OK
}

/// The session behind a C pointer, or the status code saying why there is none.
///
/// # Safety
/// `s` is NULL or points at memory given to `espv_session_init` (or at least at
/// `espv_session_size()` readable bytes aligned for a session), not used elsewhere during
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
/// only after handling the events. `*consumed` may be 0 for a streamed request's item that
/// was completed by the byte after it: that call queued the item's event, and feeding the same
/// bytes again goes on (it is not stuck).
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

/// Events dropped because more than 8 queued up between two drains of
/// `espv_session_poll_event` (or because input was fed before draining); 0 for a NULL or
/// uninitialized session.
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
