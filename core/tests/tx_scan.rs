//! `TxScan` against `TxParts` on every transaction of the bundled real blocks: the streaming
//! scan must report exactly the outpoints `TxParts::inputs` lists (in order) and exactly the
//! outputs whose script hash matches, and the txid `tx::txid` computes, however the bytes are
//! cut (pieces of 1, 7 and 64 bytes straddling transaction boundaries, and whole blocks).

mod common;

use common::{read, read_varint};
use electrum_spv_core::ScriptHash;
use electrum_spv_core::script::script_hash;
use electrum_spv_core::tx::{TxError, TxItem, TxScan, TxidHasher, txid};
use electrum_spv_core::tx_parts::{OutPoint, TxParts};

/// What one transaction says about one script.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    txid: electrum_spv_core::Txid,
    spends: Vec<OutPoint>,
    pays: Vec<u32>,
}

/// The transactions of a raw block, back to back, and how many there are.
fn block_txs(block: &[u8]) -> (&[u8], usize) {
    let (count, len) = read_varint(&block[80..]);
    (&block[80 + len..], count as usize)
}

/// Every raw block bundled: blocks 0..438 of the blk file, the mainnet blocks (legacy and
/// segwit eras) and one block of each test network.
fn blocks() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let blk = read("mainnet/blocks_0_438.blk");
    let mut rest = &blk[..];
    let mut height = 0;
    while !rest.is_empty() {
        assert_eq!(rest[..4], [0xf9, 0xbe, 0xb4, 0xd9]);
        let len = u32::from_le_bytes(rest[4..8].try_into().unwrap()) as usize;
        out.push((format!("mainnet {height}"), rest[8..8 + len].to_vec()));
        rest = &rest[8 + len..];
        height += 1;
    }
    for height in [
        169482, 227835, 227836, 277647, 363703, 367891, 370661, 383616, 481815, 481829, 702861,
        830000, 866342, 951658,
    ] {
        out.push((
            format!("mainnet {height}"),
            read(&format!("mainnet/blocks/{height}.bin")),
        ));
    }
    for (net, height) in [("signet", 31500), ("testnet", 924634), ("testnet4", 40000)] {
        out.push((
            format!("{net} {height}"),
            read(&format!("{net}/blocks/{height}.bin")),
        ));
    }
    out
}

/// Splits transactions serialized back to back (the walker is tested on its own elsewhere).
fn split(mut rest: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut hasher = TxidHasher::new();
        let used = hasher.feed(rest).unwrap();
        assert!(hasher.is_complete());
        out.push(&rest[..used]);
        rest = &rest[used..];
    }
    out
}

/// The scripts each transaction is scanned for: its first output's, its last output's, and
/// one that pays nothing in these blocks.
fn scripts(raw: &[u8]) -> [ScriptHash; 3] {
    let tx = TxParts::parse(raw).unwrap();
    let first = tx.outputs().next().map_or(&[][..], |o| o.script_pubkey);
    let last = tx.outputs().last().map_or(&[][..], |o| o.script_pubkey);
    [
        script_hash(first),
        script_hash(last),
        script_hash(b"\x6a\x0cnot a script"),
    ]
}

/// What `TxParts` and `tx::txid` say of one transaction for one script.
fn expected(raw: &[u8], script: &ScriptHash) -> Seen {
    let tx = TxParts::parse(raw).unwrap();
    assert_eq!(Ok(tx.txid()), txid(raw));
    Seen {
        txid: tx.txid(),
        spends: tx.inputs().collect(),
        pays: (0u32..)
            .zip(tx.outputs())
            .filter(|(_, o)| script_hash(o.script_pubkey) == *script)
            .map(|(vout, _)| vout)
            .collect(),
    }
}

/// Scans transactions serialized back to back, fed in pieces of `piece` bytes, transaction
/// `i` for `script_of(i)` (asked one past the last transaction too).
fn scan_stream(txs: &[u8], piece: usize, script_of: &dyn Fn(usize) -> ScriptHash) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut scan = TxScan::new(&script_of(0));
    let (mut spends, mut pays) = (Vec::new(), Vec::new());
    for chunk in txs.chunks(piece) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let used = scan
                .feed(rest, &mut |item| match item {
                    TxItem::Spends(o) => spends.push(o),
                    TxItem::Pays { vout } => pays.push(vout),
                })
                .unwrap();
            rest = &rest[used..];
            if scan.is_complete() {
                let done = std::mem::replace(&mut scan, TxScan::new(&script_of(out.len() + 1)));
                out.push(Seen {
                    txid: done.finish().unwrap(),
                    spends: std::mem::take(&mut spends),
                    pays: std::mem::take(&mut pays),
                });
            }
        }
    }
    assert!(
        spends.is_empty() && pays.is_empty(),
        "a transaction was left unfinished"
    );
    out
}

#[test]
fn scan_matches_tx_parts_on_every_transaction_of_real_blocks() {
    let (mut txs_seen, mut segwit, mut spends_seen) = (0, 0, 0);
    let mut pays_seen = [0; 3];
    for (name, block) in blocks() {
        let (txs, count) = block_txs(&block);
        let raws = split(txs);
        assert_eq!(raws.len(), count, "{name}");
        txs_seen += count;
        segwit += raws.iter().filter(|raw| raw[4] == 0).count();
        let scripts: Vec<[ScriptHash; 3]> = raws.iter().map(|raw| scripts(raw)).collect();
        for which in 0..3 {
            let want: Vec<Seen> = raws
                .iter()
                .zip(&scripts)
                .map(|(raw, s)| expected(raw, &s[which]))
                .collect();
            for piece in [1, 7, 64, txs.len()] {
                let got = scan_stream(txs, piece, &|i| {
                    scripts.get(i).map_or(ScriptHash::default(), |s| s[which])
                });
                assert_eq!(got.len(), want.len(), "{name}, pieces of {piece}");
                for (i, (got, want)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        got, want,
                        "{name}, tx {i}, script {which}, pieces of {piece}"
                    );
                }
            }
            if which == 0 {
                spends_seen += want.iter().map(|s| s.spends.len()).sum::<usize>();
            }
            pays_seen[which] += want.iter().map(|s| s.pays.len()).sum::<usize>();
        }
    }
    // The data covers what it should: both serializations by the thousand; every transaction
    // pays its first and last output's script at least once, and the third script never.
    assert!(txs_seen > 18_000, "{txs_seen} transactions");
    assert!(segwit > 8_000, "{segwit} segwit transactions");
    assert!(spends_seen > 60_000, "{spends_seen} spends");
    assert!(
        pays_seen[0] >= txs_seen && pays_seen[1] >= txs_seen && pays_seen[2] == 0,
        "{pays_seen:?} paying outputs of {txs_seen} transactions"
    );
}

#[test]
fn scan_fails_as_the_txid_hasher_does_on_damaged_real_transactions() {
    let block = read("mainnet/blocks/481829.bin");
    let (txs, _) = block_txs(&block);
    let script = script_hash(&[]);
    let mut checked = 0;
    // The first few transactions, each damaged at every tenth byte and cut at every tenth.
    for raw in split(txs).into_iter().take(8) {
        for at in (0..raw.len()).step_by(10) {
            let mut damaged = raw.to_vec();
            damaged[at] ^= 0xff;
            for candidate in [&damaged[..], &raw[..at]] {
                let mut scan = TxScan::new(&script);
                let scanned = scan.feed(candidate, &mut |_| {});
                let mut hasher = TxidHasher::new();
                let hashed = hasher.feed(candidate);
                assert_eq!(scanned, hashed, "byte {at}");
                assert_eq!(scan.is_complete(), hasher.is_complete());
                let (s, h) = (scan.finish(), hasher.finish());
                assert_eq!(s, h, "byte {at}");
                checked += usize::from(s.is_err());
            }
        }
    }
    assert!(checked > 100, "{checked} refusals");
    assert_eq!(
        TxScan::new(&script).finish(),
        Err(TxError::Incomplete),
        "nothing fed"
    );
}

#[test]
fn scan_reads_the_64_byte_transaction_of_the_merkle_vectors() {
    let vectors = common::json("vectors/electrum_test_vectors.json");
    let raw = common::unhex(
        vectors["merkle_attack_vectors"]["CVE_2017_12842"]["valid_64_byte_tx"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(raw.len(), 64);
    for script in scripts(&raw) {
        let want = expected(&raw, &script);
        for piece in [1, 7, 64] {
            assert_eq!(
                scan_stream(&raw, piece, &|_| script),
                std::slice::from_ref(&want),
                "{piece}"
            );
        }
    }
}
