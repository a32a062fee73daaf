//! Fuzz target `header`: header parsing and the header-chain verifier on arbitrary bytes.
//!
//! The input is read three ways: as one header for [`Header::from_slice`]; as consecutive
//! 80-byte headers pushed into a verifier anchored at genesis (mainnet and regtest); and as
//! consecutive 160-digit hex headers for `push_hex`, checked against a twin verifier fed the
//! same headers decoded by a naive reference decoder.
//!
//! Properties beyond "does not panic": a rejected header changes nothing (checked against a
//! twin that never saw it), an accepted header becomes the tip and adds work, errors name the
//! height they were raised at, and hex and raw input give the same verdicts.

#![no_main]

use electrum_spv_core::chain::{
    Anchor, ChainTip, HeaderError, HeaderErrorKind, HeaderVerifier, MAINNET, Params, REGTEST,
};
use electrum_spv_core::header::{HEADER_SIZE, Header, HeaderParseError};
use electrum_spv_core::{BlockHash, hex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    parse(data);
    for params in [&MAINNET, &REGTEST] {
        raw_chain(params, data);
        hex_chain(params, data);
    }
});

/// `Header::from_slice` accepts exactly 80 bytes and round-trips them.
fn parse(data: &[u8]) {
    match Header::from_slice(data) {
        Ok(header) => {
            assert_eq!(data.len(), HEADER_SIZE);
            assert_eq!(header.to_bytes().as_slice(), data);
            let mut digits = [0u8; 2 * HEADER_SIZE];
            hex::encode_to_slice(data, &mut digits).expect("sized for a header");
            assert_eq!(Header::from_hex(&digits), Ok(header));
            // Target arithmetic on arbitrary bits must not panic either.
            if let Ok(target) = header.bits.to_target() {
                let _ = (
                    target.work(),
                    target.to_compact(),
                    target.is_met_by(&header.block_hash()),
                );
            }
        }
        Err(HeaderParseError::BadLength(n)) => assert!(n == data.len() && n != HEADER_SIZE),
        Err(e) => panic!("from_slice can only fail on length, got {e:?}"),
    }
    if let Ok(header) = Header::from_hex(data) {
        assert_eq!(data.len(), 2 * HEADER_SIZE);
        assert_eq!(Header::from_bytes(&header.to_bytes()), header);
    }
}

/// A verifier and a twin that sees only the real headers, never the junk.
struct Pair {
    verifier: HeaderVerifier,
    twin: HeaderVerifier,
}

impl Pair {
    fn new(params: &'static Params) -> Pair {
        let verifier = HeaderVerifier::new(params, Anchor::genesis(params));
        Pair {
            twin: verifier.clone(),
            verifier,
        }
    }

    /// Pushes a one-bit corruption of `header` into the verifier only, then `header` into both.
    /// When the junk is rejected the two must stay indistinguishable.
    fn push(&mut self, header: &[u8; HEADER_SIZE]) -> Result<BlockHash, HeaderError> {
        let mut junk = *header;
        // Which bit: taken from the header itself, so the fuzzer steers it.
        let bit = usize::from(header[0] ^ header[79]) % (8 * HEADER_SIZE);
        junk[bit / 8] ^= 1 << (bit % 8);
        if checked_push(&mut self.verifier, &junk).is_ok() {
            // Accepted junk (easy on regtest) is a different chain: follow it.
            self.twin = self.verifier.clone();
        }
        let result = checked_push(&mut self.verifier, header);
        assert_eq!(
            checked_push(&mut self.twin, header),
            result,
            "rejected junk changed state"
        );
        result
    }
}

/// Pushes one header and checks what the verifier promises about its state.
fn checked_push(
    v: &mut HeaderVerifier,
    header: &[u8; HEADER_SIZE],
) -> Result<BlockHash, HeaderError> {
    let before: Option<ChainTip> = v.tip().copied();
    let height = v.next_height();
    let result = v.push(header);
    match &result {
        Ok(hash) => {
            assert_eq!(*hash, Header::from_bytes(header).block_hash());
            let tip = v.tip().expect("an accepted header is the tip");
            assert_eq!((tip.height, tip.hash), (height, *hash));
            if let Some(before) = before {
                assert!(tip.chainwork > before.chainwork, "every header adds work");
            }
            assert_eq!(v.next_height(), height + 1);
        }
        Err(e) => {
            assert_eq!(
                v.tip().copied(),
                before,
                "a rejected header changes nothing"
            );
            assert_eq!(v.next_height(), height);
            assert_eq!(e.height, height);
            assert!(
                !matches!(e.kind, HeaderErrorKind::Parse(_)),
                "80 bytes always parse"
            );
        }
    }
    result
}

/// The input as raw headers; a partial last header must be a length error.
fn raw_chain(params: &'static Params, data: &[u8]) {
    let mut pair = Pair::new(params);
    let mut chunks = data.chunks_exact(HEADER_SIZE);
    for chunk in &mut chunks {
        let header: &[u8; HEADER_SIZE] = chunk.try_into().expect("exact chunk");
        let _ = pair.push(header);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let err = pair
            .verifier
            .push_slice(rest)
            .expect_err("short header accepted");
        assert_eq!(
            err.kind,
            HeaderErrorKind::Parse(HeaderParseError::BadLength(rest.len()))
        );
    }
}

/// The input as hex headers, against raw pushes of the same headers decoded by [`naive_hex`].
fn hex_chain(params: &'static Params, data: &[u8]) {
    let mut by_hex = HeaderVerifier::new(params, Anchor::genesis(params));
    let mut by_raw = by_hex.clone();
    for digits in data.chunks(2 * HEADER_SIZE) {
        let before = by_hex.tip().copied();
        let result = by_hex.push_hex(digits);
        match naive_hex(digits) {
            Some(header) => assert_eq!(result, by_raw.push(&header)),
            None => {
                let err = result.expect_err("bad hex accepted");
                assert!(matches!(
                    err.kind,
                    HeaderErrorKind::Parse(HeaderParseError::Hex(_))
                ));
                assert_eq!(by_hex.tip().copied(), before);
            }
        }
    }
}

/// Exactly 160 hex digits of either case, decoded one digit at a time.
fn naive_hex(digits: &[u8]) -> Option<[u8; HEADER_SIZE]> {
    if digits.len() != 2 * HEADER_SIZE {
        return None;
    }
    let value = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; HEADER_SIZE];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (value(pair[0])? << 4) | value(pair[1])?;
    }
    Some(out)
}
