//! Hexadecimal encoding and decoding without allocation.
//!
//! Decoding is on the hot path of header sync (a 2016-header chunk is 322,560 hex digits), so
//! the decoder works on eight digits at a time in a `u64` (SWAR) and validates every digit
//! without branching per byte. It never panics: every failure is a [`HexError`] that names the
//! offending position.

use core::fmt;

/// Why a hex string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexError {
    /// The input length is not twice the output length.
    BadLength {
        /// Number of hex digits the output needs.
        expected: usize,
        /// Number of hex digits given.
        got: usize,
    },
    /// A byte that is not `0-9`, `a-f` or `A-F`.
    InvalidDigit {
        /// Offset of the bad byte in the input.
        position: usize,
        /// The bad byte.
        byte: u8,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HexError::BadLength { expected, got } => {
                write!(f, "expected {expected} hex digits, got {got}")
            }
            HexError::InvalidDigit { position, byte } => {
                write!(f, "invalid hex digit 0x{byte:02x} at offset {position}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HexError {}

const LOWER: &[u8; 16] = b"0123456789abcdef";

/// Writes the lowercase hex of `src` into `dst`, which must be exactly `2 * src.len()` long.
///
/// Returns [`HexError::BadLength`] when `dst` has the wrong size.
pub fn encode_to_slice(src: &[u8], dst: &mut [u8]) -> Result<(), HexError> {
    check_encode_len(src, dst)?;
    encode_unchecked_len(src.iter().copied(), src.chunks_exact(4), false, dst);
    Ok(())
}

/// Like [`encode_to_slice`] but writes the bytes of `src` in reverse order: the display form of
/// a hash held in internal byte order.
pub fn encode_reversed_to_slice(src: &[u8], dst: &mut [u8]) -> Result<(), HexError> {
    check_encode_len(src, dst)?;
    encode_unchecked_len(src.iter().rev().copied(), src.rchunks_exact(4), true, dst);
    Ok(())
}

fn check_encode_len(src: &[u8], dst: &[u8]) -> Result<(), HexError> {
    if dst.len() == src.len() * 2 {
        Ok(())
    } else {
        Err(HexError::BadLength {
            expected: src.len() * 2,
            got: dst.len(),
        })
    }
}

/// Encodes four bytes at a time (in `words`, reversed within each word when `reversed`), then
/// the remaining bytes of `bytes` one by one. `dst` is exactly twice the input length.
fn encode_unchecked_len<'a>(
    bytes: impl DoubleEndedIterator<Item = u8>,
    words: impl ExactSizeIterator<Item = &'a [u8]>,
    reversed: bool,
    dst: &mut [u8],
) {
    let whole = words.len() * 4;
    let (word_dst, tail_dst) = dst.split_at_mut(whole * 2);
    for (w, out) in words.zip(word_dst.chunks_exact_mut(8)) {
        let mut four = [w[0], w[1], w[2], w[3]];
        if reversed {
            four.reverse();
        }
        out.copy_from_slice(&swar_encode4(u32::from_le_bytes(four)).to_le_bytes());
    }
    for (byte, pair) in bytes.skip(whole).zip(tail_dst.chunks_exact_mut(2)) {
        pair[0] = LOWER[usize::from(byte >> 4)];
        pair[1] = LOWER[usize::from(byte & 0x0f)];
    }
}

/// Four bytes (first in the lowest lane) to eight lowercase hex digits (first in the lowest
/// lane), with no table lookups.
#[inline(always)]
fn swar_encode4(x: u32) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut v = u64::from(x);
    v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
    v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
    // Even lanes get the high nibble, odd lanes the low nibble.
    let nibbles = ((v >> 4) & 0x000f_000f_000f_000f) | ((v & 0x000f_000f_000f_000f) << 8);
    // Lanes holding 10..=15 get the top bit set by adding 0x76; those shift to 'a'..='f'.
    let letters = ((nibbles + ONES * 0x76) >> 7) & ONES;
    nibbles + ONES * u64::from(b'0') + letters * u64::from(b'a' - b'0' - 10)
}

/// Writes `bytes` as lowercase hex to a formatter, optionally reversed, without a buffer.
pub(crate) fn fmt_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8], reversed: bool) -> fmt::Result {
    let mut buf = [0u8; 64];
    let mut write = |chunk: &[u8], f: &mut fmt::Formatter<'_>| -> fmt::Result {
        let out = &mut buf[..chunk.len() * 2];
        if reversed {
            encode_unchecked_len(
                chunk.iter().rev().copied(),
                chunk.rchunks_exact(4),
                true,
                out,
            );
        } else {
            encode_unchecked_len(chunk.iter().copied(), chunk.chunks_exact(4), false, out);
        }
        // Only ASCII hex digits were written.
        f.write_str(core::str::from_utf8(out).map_err(|_| fmt::Error)?)
    };
    if reversed {
        bytes.rchunks(32).try_for_each(|c| write(c, f))
    } else {
        bytes.chunks(32).try_for_each(|c| write(c, f))
    }
}

/// Decodes `src` (exactly `2 * dst.len()` hex digits, either case) into `dst`.
///
/// On error `dst` may be partly written; its contents are then unspecified.
pub fn decode_to_slice(src: &[u8], dst: &mut [u8]) -> Result<(), HexError> {
    if src.len() != dst.len() * 2 {
        return Err(HexError::BadLength {
            expected: dst.len() * 2,
            got: src.len(),
        });
    }
    let mut wide_src = src.chunks_exact(32);
    let mut wide_dst = dst.chunks_exact_mut(16);
    let mut offset = 0;
    for (s, d) in (&mut wide_src).zip(&mut wide_dst) {
        let Some(bytes) = decode_block(s) else {
            return Err(first_invalid(s, offset));
        };
        d.copy_from_slice(&bytes);
        offset += 32;
    }
    let mut src_chunks = wide_src.remainder().chunks_exact(16);
    let mut dst_chunks = wide_dst.into_remainder().chunks_exact_mut(8);
    for (s, d) in (&mut src_chunks).zip(&mut dst_chunks) {
        let (first, second) = s.split_at(8);
        match (swar_nibbles(le_u64(first)), swar_nibbles(le_u64(second))) {
            (Some(a), Some(b)) => {
                d[..4].copy_from_slice(&pack_nibble_pairs(a).to_le_bytes());
                d[4..].copy_from_slice(&pack_nibble_pairs(b).to_le_bytes());
            }
            _ => return Err(first_invalid(s, offset)),
        }
        offset += 16;
    }
    for (pair, d) in src_chunks
        .remainder()
        .chunks_exact(2)
        .zip(dst_chunks.into_remainder())
    {
        let hi = nibble(pair[0]).ok_or(HexError::InvalidDigit {
            position: offset,
            byte: pair[0],
        })?;
        let lo = nibble(pair[1]).ok_or(HexError::InvalidDigit {
            position: offset + 1,
            byte: pair[1],
        })?;
        *d = (hi << 4) | lo;
        offset += 2;
    }
    Ok(())
}

/// Decodes `src` into `dst` and reverses the bytes: display-order hex to internal order.
pub fn decode_reversed_to_slice(src: &[u8], dst: &mut [u8]) -> Result<(), HexError> {
    decode_to_slice(src, dst)?;
    dst.reverse();
    Ok(())
}

/// Decodes exactly `N` bytes from `2 * N` hex digits.
pub fn decode_array<const N: usize>(src: &[u8]) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    decode_to_slice(src, &mut out)?;
    Ok(out)
}

/// Decodes 32 hex digits, or `None` if any is not one. Written lane by lane with no early
/// exit so that the compiler turns it into vector code (16 digits per SSE2 or NEON register).
#[inline(always)]
fn decode_block(src: &[u8]) -> Option<[u8; 16]> {
    let mut nibbles = [0u8; 32];
    let mut bad = 0u8;
    for (n, &c) in nibbles.iter_mut().zip(src) {
        let digit = c.wrapping_sub(b'0');
        // Folds 'A'-'F' onto 'a'-'f'; digits keep their value (0x20 is already set).
        let letter = (c | 0x20).wrapping_sub(b'a');
        let is_digit = digit < 10;
        bad |= u8::from(!is_digit & (letter >= 6));
        *n = if is_digit {
            digit
        } else {
            letter.wrapping_add(10)
        };
    }
    let mut out = [0u8; 16];
    for (o, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        *o = (pair[0] << 4) | (pair[1] & 0x0f);
    }
    (bad == 0).then_some(out)
}

fn first_invalid(chunk: &[u8], offset: usize) -> HexError {
    let (i, &byte) = chunk
        .iter()
        .enumerate()
        .find(|(_, b)| nibble(**b).is_none())
        .unwrap_or((0, &chunk[0]));
    HexError::InvalidDigit {
        position: offset + i,
        byte,
    }
}

/// The value of one hex digit.
#[inline]
pub(crate) const fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[inline(always)]
fn le_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    u64::from_le_bytes(w)
}

/// Packs eight nibble lanes (first digit in the lowest lane) into four bytes, each the high
/// nibble from the even lane and the low nibble from the odd lane.
#[inline(always)]
fn pack_nibble_pairs(n: u64) -> u32 {
    const LOW_BYTES: u64 = 0x00ff_00ff_00ff_00ff;
    // Each 16-bit lane becomes (even << 4) | odd in its low byte.
    let pairs = (((n & LOW_BYTES) << 4) | (n >> 8)) & LOW_BYTES;
    let quads = (pairs | (pairs >> 8)) & 0x0000_ffff_0000_ffff;
    (quads | (quads >> 16)) as u32
}

/// Converts eight ASCII hex digits (one per byte lane) into their nibble values, or `None` if
/// any lane is not a hex digit. Branch-free apart from the final validity test.
#[inline(always)]
fn swar_nibbles(x: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Lanes with the top bit set are never valid; excluding them keeps the adds below from
    // carrying across lanes.
    let ascii = !x & HIGH;
    // Lane-wise `x >= lo` for 7-bit lanes: (x + (0x80 - lo)) has the top bit set.
    // A lane with its top bit set may carry into its neighbour, but such a lane already fails
    // `ascii`, so the result is `None` whatever the neighbour reads as.
    let ge = |lo: u64| x.wrapping_add(ONES * (0x80 - lo)) & HIGH;
    let le = |hi: u64| !x.wrapping_add(ONES * (0x7f - hi)) & HIGH;
    let digit = ge(b'0' as u64) & le(b'9' as u64);
    let lower = x | (ONES * 0x20); // folds 'A'-'F' onto 'a'-'f'
    let ge_l = lower.wrapping_add(ONES * (0x80 - b'a' as u64)) & HIGH;
    let le_l = !lower.wrapping_add(ONES * (0x7f - b'f' as u64)) & HIGH;
    let alpha = ge_l & le_l;
    let valid = ascii & (digit | alpha);
    if valid != HIGH {
        return None;
    }
    // Digits: low nibble is the value. Letters: low nibble + 9.
    let alpha_mask = (alpha >> 7) * 9;
    Some(((x & (ONES * 0x0f)) + alpha_mask) & (ONES * 0x0f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_bytes() {
        let src: [u8; 256] = core::array::from_fn(|i| i as u8);
        let mut hex = [0u8; 512];
        encode_to_slice(&src, &mut hex).unwrap();
        let mut back = [0u8; 256];
        decode_to_slice(&hex, &mut back).unwrap();
        assert_eq!(src, back);
        hex.make_ascii_uppercase();
        decode_to_slice(&hex, &mut back).unwrap();
        assert_eq!(src, back);
    }

    #[test]
    fn every_byte_value_is_classified_like_the_scalar_decoder() {
        for b in 0..=255u8 {
            for pos in 0..16 {
                let mut s = *b"0123456789abcdef";
                s[pos] = b;
                let mut out = [0u8; 8];
                let r = decode_to_slice(&s, &mut out);
                if nibble(b).is_some() {
                    assert!(r.is_ok(), "byte {b:#x} at {pos}");
                } else {
                    assert_eq!(
                        r,
                        Err(HexError::InvalidDigit {
                            position: pos,
                            byte: b
                        })
                    );
                }
            }
        }
    }

    #[test]
    fn encoders_match_a_naive_one_at_every_length() {
        let src: [u8; 40] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        for len in 0..=src.len() {
            let s = &src[..len];
            let naive: std::string::String = s.iter().map(|b| std::format!("{b:02x}")).collect();
            let naive_rev: std::string::String =
                s.iter().rev().map(|b| std::format!("{b:02x}")).collect();
            let mut out = [0u8; 80];
            encode_to_slice(s, &mut out[..2 * len]).unwrap();
            assert_eq!(&out[..2 * len], naive.as_bytes());
            encode_reversed_to_slice(s, &mut out[..2 * len]).unwrap();
            assert_eq!(&out[..2 * len], naive_rev.as_bytes());
        }
    }

    #[test]
    fn wrong_lengths_are_typed_errors() {
        let mut out = [0u8; 2];
        assert_eq!(
            decode_to_slice(b"abc", &mut out),
            Err(HexError::BadLength {
                expected: 4,
                got: 3
            })
        );
        assert_eq!(
            encode_to_slice(&[1, 2], &mut [0u8; 3]),
            Err(HexError::BadLength {
                expected: 4,
                got: 3
            })
        );
    }

    #[test]
    fn reversed_forms() {
        let mut out = [0u8; 3];
        decode_reversed_to_slice(b"010203", &mut out).unwrap();
        assert_eq!(out, [3, 2, 1]);
        let mut hex = [0u8; 6];
        encode_reversed_to_slice(&out, &mut hex).unwrap();
        assert_eq!(&hex, b"010203");
    }
}
