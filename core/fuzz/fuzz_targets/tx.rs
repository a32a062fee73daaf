//! Fuzz target `tx`: streaming txid and the 64-byte-transaction check on arbitrary bytes.
//!
//! [`TxidHasher`] must give the same verdict however the bytes are split: one shot
//! ([`tx::txid`]), two pieces cut at a position the first input byte chooses, and (for small
//! inputs) one byte at a time. On legacy (witness-free) transactions it must agree with a naive
//! reference parser, and the txid must be the double SHA-256 of the bytes.
//! [`tx::is_transaction_shaped`] must hold exactly for 64 bytes that the reference parser reads
//! as a whole legacy transaction with at least one output.
//! [`TxScan`] must reach the hasher's verdict (one shot, and cut where the hasher was), and
//! when a transaction comes out, report exactly the spends and paying outputs of
//! [`TxParts`].

#![no_main]

use electrum_spv_core::Txid;
use electrum_spv_core::hash::sha256d;
use electrum_spv_core::script::script_hash;
use electrum_spv_core::tx::{self, TxError, TxItem, TxScan, TxidHasher};
use electrum_spv_core::tx_parts::TxParts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = tx::txid(data);
    if let Some(&first) = data.first() {
        // Scale the byte to the input, so every cut position is reachable for any length.
        let cut = data.len() * usize::from(first) / 255;
        assert_eq!(in_pieces(data, &[cut]), whole, "split at {cut}");
        scan(data, &[cut], whole);
    }
    scan(data, &[], whole);
    if data.len() <= 1024 {
        let every: Vec<usize> = (1..data.len()).collect();
        assert_eq!(in_pieces(data, &every), whole, "byte at a time");
    }
    match reference_legacy(data) {
        Some(shape) if shape.len == data.len() => {
            assert_eq!(whole, Ok(Txid::from_byte_array(sha256d(data))), "{shape:?}");
        }
        _ if whole.is_ok() => {
            let mut hasher = TxidHasher::new();
            let _ = hasher.feed(data);
            assert!(
                hasher.has_witness(),
                "accepted a legacy tx the reference refuses"
            );
        }
        _ => {}
    }
    for window in [data.get(..64), data.last_chunk::<64>().map(|w| &w[..])]
        .into_iter()
        .flatten()
    {
        sixty_four(window.try_into().expect("64 bytes"));
    }
});

/// `tx::txid` rebuilt from streaming calls with the input cut at `cuts` (ascending).
fn in_pieces(data: &[u8], cuts: &[usize]) -> Result<Txid, TxError> {
    let mut hasher = TxidHasher::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([data.len()]) {
        let piece = &data[start..end];
        let used = match hasher.feed(piece) {
            Ok(used) => used,
            Err(e) => {
                // Errors are sticky: more bytes and `finish` report the same one.
                assert_eq!(hasher.feed(&[1, 0, 0, 0]), Err(e));
                assert_eq!(hasher.finish(), Err(e));
                return Err(e);
            }
        };
        assert!(used <= piece.len());
        if used < piece.len() {
            // The transaction ended inside this piece; the rest is not part of it.
            assert!(hasher.is_complete());
            assert_eq!(hasher.bytes_consumed(), start + used);
            return Err(TxError::TrailingBytes);
        }
        start = end;
    }
    assert_eq!(hasher.bytes_consumed(), data.len());
    hasher.finish()
}

/// A scan of `data` cut at `cuts` ends as the hasher did (`whole`) and, on success, reports
/// what [`TxParts`] reads, for the script of the last output.
fn scan(data: &[u8], cuts: &[usize], whole: Result<Txid, TxError>) {
    let script = TxParts::parse(data)
        .ok()
        .and_then(|tx| tx.outputs().last())
        .map_or(script_hash(&[]), |o| script_hash(o.script_pubkey));
    let mut scan = TxScan::new(&script);
    let (mut spends, mut pays) = (Vec::new(), Vec::new());
    let mut start = 0;
    let mut verdict = None;
    for end in cuts.iter().copied().chain([data.len()]) {
        let piece = &data[start..end];
        let fed = scan.feed(piece, &mut |item| match item {
            TxItem::Spends(o) => spends.push(o),
            TxItem::Pays { vout } => pays.push(vout),
        });
        match fed {
            Err(e) => verdict = Some(Err(e)),
            Ok(used) if used < piece.len() => verdict = Some(Err(TxError::TrailingBytes)),
            Ok(_) => {}
        }
        if verdict.is_some() {
            break;
        }
        start = end;
    }
    let verdict = verdict.unwrap_or_else(|| scan.finish());
    assert_eq!(verdict, whole, "scan cut at {cuts:?}");
    if let Ok(tx) = TxParts::parse(data) {
        assert_eq!(spends, tx.inputs().collect::<Vec<_>>());
        let paying: Vec<u32> = (0u32..)
            .zip(tx.outputs())
            .filter(|(_, o)| script_hash(o.script_pubkey) == script)
            .map(|(vout, _)| vout)
            .collect();
        assert_eq!(pays, paying);
    }
}

/// A 64-byte preimage "is a transaction" exactly when it is a whole legacy transaction with an
/// output (consensus requires one; the input is implied by the legacy form).
fn sixty_four(bytes: &[u8; 64]) {
    let expected = matches!(reference_legacy(bytes), Some(s) if s.len == 64 && s.outputs > 0);
    assert_eq!(tx::is_transaction_shaped(bytes), expected);
}

/// What [`reference_legacy`] read.
#[derive(Debug)]
struct LegacyShape {
    outputs: u64,
    /// Bytes from the start of the input to the end of the lock time.
    len: usize,
}

/// Reads a legacy transaction from the start of `b` the obvious way, or `None` if it is not one
/// (or the bytes end first). An input count of zero is the segwit marker, so it is not legacy;
/// compact sizes must be canonical, as in Bitcoin Core.
fn reference_legacy(b: &[u8]) -> Option<LegacyShape> {
    let mut at = 0usize;
    let skip = |n: u64, at: &mut usize| -> Option<()> {
        *at = at.checked_add(usize::try_from(n).ok()?)?;
        (*at <= b.len()).then_some(())
    };
    let varint = |at: &mut usize| -> Option<u64> {
        let first = *b.get(*at)?;
        let (width, min) = match first {
            0xfd => (2, 0xfd),
            0xfe => (4, 0x1_0000),
            0xff => (8, 0x1_0000_0000),
            small => {
                *at += 1;
                return Some(u64::from(small));
            }
        };
        let bytes = b.get(*at + 1..*at + 1 + width)?;
        let mut le = [0u8; 8];
        le[..width].copy_from_slice(bytes);
        let value = u64::from_le_bytes(le);
        *at += 1 + width;
        (value >= min).then_some(value)
    };
    skip(4, &mut at)?; // version
    let inputs = varint(&mut at)?;
    if inputs == 0 {
        return None;
    }
    // Each pass consumes at least 41 bytes or fails, so a huge count ends quickly.
    for _ in 0..inputs {
        skip(36, &mut at)?; // outpoint
        let script = varint(&mut at)?;
        skip(script, &mut at)?;
        skip(4, &mut at)?; // sequence
    }
    let outputs = varint(&mut at)?;
    for _ in 0..outputs {
        skip(8, &mut at)?; // value
        let script = varint(&mut at)?;
        skip(script, &mut at)?;
    }
    skip(4, &mut at)?; // lock time
    Some(LegacyShape { outputs, len: at })
}
