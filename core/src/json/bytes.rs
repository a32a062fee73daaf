//! Byte-class scans eight bytes at a time in a `u64` (SWAR), without `unsafe` or intrinsics,
//! so they run as well on a Cortex-M as on a server.
//!
//! Electrum lines are mostly long runs of "nothing to see here": hex inside strings and, since
//! ElectrumX 1.18, padding spaces. Finding the end of such a run a word at a time is what makes
//! the complete-line [cursor](super::cursor) several times faster than a byte-at-a-time state
//! machine.
//!
//! The masks below flag lanes with their top bit. The usual zero-byte trick can also flag a
//! lane *above* a flagged one (a borrow runs upward), never below it, so the lowest flag, the
//! only one used, is always exact; an OR of such masks keeps that property.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Flags lanes of `x` that are below `n` (`n <= 0x80`); lowest flag exact.
#[inline(always)]
const fn lanes_below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGH
}

/// Flags lanes of `x` equal to `b`; lowest flag exact.
#[inline(always)]
const fn lanes_equal(x: u64, b: u8) -> u64 {
    lanes_below(x ^ (ONES * b as u64), 1)
}

#[inline(always)]
fn word(bytes: &[u8], at: usize) -> Option<u64> {
    let w: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

/// Bytes that may appear inside a JSON string without ending it or needing a closer look:
/// printable ASCII other than `"` and `\`.
#[inline(always)]
const fn is_plain(c: u8) -> bool {
    c >= 0x20 && c < 0x80 && c != b'"' && c != b'\\'
}

/// Length of the longest prefix of `bytes` made of plain string bytes (see [`is_plain`]).
///
/// The first word is tested inline (object keys end there); longer runs go to
/// [`plain_run`].
#[inline(always)]
pub(crate) fn plain_prefix(bytes: &[u8]) -> usize {
    match word(bytes, 0).map(plain_stops) {
        Some(0) => 8 + plain_run(bytes.get(8..).unwrap_or(&[])),
        Some(stops) => (stops.trailing_zeros() / 8) as usize,
        None => bytes
            .iter()
            .position(|&c| !is_plain(c))
            .unwrap_or(bytes.len()),
    }
}

/// [`plain_prefix`] for runs that may be long (hex): one more word, then whole 32-byte blocks
/// tested with no early exit (vector compares), then words in the block that stops.
#[inline(never)]
fn plain_run(bytes: &[u8]) -> usize {
    let mut i = 0;
    match word(bytes, 0).map(plain_stops) {
        Some(0) => i = 8,
        Some(stops) => return (stops.trailing_zeros() / 8) as usize,
        None => {}
    }
    for block in bytes.get(i..).unwrap_or(&[]).chunks_exact(32) {
        if !block.iter().fold(true, |all, &c| all & is_plain(c)) {
            break;
        }
        i += 32;
    }
    while let Some(x) = word(bytes, i) {
        let stops = plain_stops(x);
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let rest = bytes.get(i..).unwrap_or(&[]);
    i + rest
        .iter()
        .position(|&c| !is_plain(c))
        .unwrap_or(rest.len())
}

/// Flags the lanes of `x` that are not plain string bytes; lowest flag exact.
#[inline(always)]
fn plain_stops(x: u64) -> u64 {
    lanes_equal(x, b'"') | lanes_equal(x, b'\\') | lanes_below(x, 0x20) | (x & HIGH)
}

/// Whether every byte of `bytes` is a plain string byte: whole 32-byte blocks with no early
/// exit (vector compares). For checking a string of a guessed length (64 hex digits of a txid)
/// in one go.
#[inline]
pub(crate) fn all_plain(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |all, &c| all & is_plain(c))
}

/// Position of the first `needle` in `bytes` (the newline that ends a line).
#[inline]
pub(crate) fn find_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    // Whole 32-byte blocks without early exit (vector compares), then words in the block that
    // has it.
    let mut i = 0;
    for block in bytes.chunks_exact(32) {
        if block.iter().fold(false, |any, &c| any | (c == needle)) {
            break;
        }
        i += 32;
    }
    while let Some(x) = word(bytes, i) {
        let hits = lanes_equal(x, needle);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = bytes.get(i..).unwrap_or(&[]);
    rest.iter().position(|&c| c == needle).map(|p| i + p)
}

/// Length of the longest prefix of `bytes` made of JSON whitespace. Runs of spaces (padding)
/// go eight at a time.
#[inline]
pub(crate) fn whitespace_prefix(bytes: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match bytes.get(i) {
            Some(b' ') => {
                if word(bytes, i) == Some(ONES * u64::from(b' ')) {
                    i += 8;
                } else {
                    i += 1;
                }
            }
            Some(b'\t' | b'\n' | b'\r') => i += 1,
            _ => return i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_the_byte_by_byte_definition() {
        let mut text = std::vec::Vec::new();
        for len in 0..100usize {
            for stop in [b'"', b'\\', 0x1f, 0x80, 0xff, b'x'] {
                text.clear();
                text.extend(core::iter::repeat_n(b'a', len));
                text.push(stop);
                text.extend_from_slice(b"aaaa");
                let plain = text
                    .iter()
                    .position(|&c| !is_plain(c))
                    .unwrap_or(text.len());
                assert_eq!(plain_prefix(&text), plain, "len {len} stop {stop:#x}");
                for b in text.iter_mut().take(len) {
                    *b = b' ';
                }
                let ws = text
                    .iter()
                    .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(text.len());
                assert_eq!(whitespace_prefix(&text), ws, "len {len} stop {stop:#x}");
            }
        }
        for at in 0..100 {
            let mut text = std::vec![b'x'; 100];
            text[at] = b'\n';
            assert_eq!(find_byte(&text, b'\n'), Some(at));
            assert_eq!(find_byte(&text[..at], b'\n'), None);
        }
        assert_eq!(plain_prefix(b""), 0);
        assert_eq!(whitespace_prefix(b""), 0);
        assert_eq!(whitespace_prefix(b" "), 1);
    }
}
