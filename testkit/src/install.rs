//! Installing the kit's external servers once per machine: a step at a time, serialised across
//! test processes, with the tail of a failed command's output in the error.

use std::fs::OpenOptions;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

/// Runs `install` while holding an exclusive `flock` on `lock_path` (created if missing), so
/// test processes started side by side install once and wait for each other.
pub(crate) fn locked<T>(
    lock_path: &Path,
    install: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
        .map_err(|e| {
            Error::msg(format!(
                "cannot open lock file {}: {e}",
                lock_path.display()
            ))
        })?;
    // SAFETY: flock on a file descriptor we own for the duration of the call.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(Error::msg(format!("cannot lock {}", lock_path.display())));
    }
    let result = install();
    // SAFETY: as above; unlocking our own descriptor.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_UN) };
    result
}

/// Runs `cmd` with no input; a failure carries the last 2,000 bytes of its output.
pub(crate) fn run_quiet(cmd: &mut Command, what: &str) -> Result<(), Error> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::msg(format!("{what}: cannot run: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(Error::msg(format!(
        "{what} failed ({}): {}",
        out.status,
        tail(&text, 2000)
    )))
}

/// The last `n` bytes of `s` (from a character boundary).
pub(crate) fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s.get(start..).unwrap_or("")
}
