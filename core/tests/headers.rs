//! Header-chain verification against real mainnet and signet data.

mod common;

use common::{headers, json, unhex};
use electrum_spv_core::chain::{
    Anchor, Branch, HeaderErrorKind, HeaderVerifier, MAINNET, Network, REGTEST, SIGNET,
    choose_branch, next_period_bits,
};
use electrum_spv_core::header::{CompactTarget, Header};
use electrum_spv_core::u256::U256;
use electrum_spv_core::{BlockHash, hex};

const EARLY: &str = "mainnet/headers_0_10236.bin";
const RECENT: &str = "mainnet/headers_822528_830592.bin";
const RECENT_START: u32 = 822_528;

/// Real cumulative chain work at the heights the data carries it (period ends and starts).
fn chainwork_at(height: u32) -> Option<U256> {
    static TABLE: std::sync::OnceLock<std::collections::HashMap<u32, U256>> =
        std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let v = json("mainnet/retarget_boundary_headers.json");
        v["chainwork_raw32"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(h, w)| {
                let bytes: [u8; 32] = unhex(w.as_str().unwrap()).try_into().unwrap();
                (h.parse().unwrap(), U256::from_be_bytes(bytes))
            })
            .collect()
    });
    table.get(&height).copied()
}

fn verifier_at(height: u32) -> HeaderVerifier {
    HeaderVerifier::new(
        &MAINNET,
        Anchor::at_height(&MAINNET, height).expect("anchored height"),
    )
}

/// Feeds every header; returns the verifier. Fails with the verifier's own error.
fn verify_all(mut v: HeaderVerifier, hs: &[[u8; 80]]) -> HeaderVerifier {
    for h in hs {
        if let Err(e) = v.push(h) {
            panic!("real header rejected: {e}");
        }
    }
    v
}

#[test]
fn mainnet_from_genesis_verifies_with_exact_chainwork() {
    let hs = headers(EARLY);
    let mut v = verifier_at(0);
    let mut checked = 0;
    for (height, h) in hs.iter().enumerate() {
        v.push(h).unwrap_or_else(|e| panic!("{e}"));
        if let Some(expected) = chainwork_at(height as u32) {
            assert_eq!(
                v.tip().unwrap().chainwork.0,
                expected,
                "chainwork at {height}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "chainwork compared at {checked} heights");
    let tip = v.tip().unwrap();
    assert_eq!(tip.height, 10_236);
    assert_eq!(tip.hash, Header::from_bytes(&hs[10_236]).block_hash());
    assert!(v.work_is_absolute());
}

#[test]
fn mainnet_recent_segment_verifies_from_its_checkpoint_through_four_retargets() {
    let hs = headers(RECENT);
    assert_eq!(hs.len(), 8_065);
    let mut v = verifier_at(RECENT_START);
    let mut checked = 0;
    let mut bits_seen = std::collections::BTreeSet::new();
    for (i, h) in hs.iter().enumerate() {
        let height = RECENT_START + i as u32;
        v.push(h).unwrap_or_else(|e| panic!("{e}"));
        bits_seen.insert(v.tip().unwrap().bits.0);
        if let Some(expected) = chainwork_at(height) {
            assert_eq!(
                v.tip().unwrap().chainwork.0,
                expected,
                "chainwork at {height}"
            );
            checked += 1;
        }
    }
    assert_eq!(bits_seen.len(), 5, "four real difficulty changes");
    assert!(checked >= 4, "chainwork compared at {checked} heights");
    assert_eq!(v.tip().unwrap().height, 830_592);
}

#[test]
fn hex_input_gives_the_same_chain_as_bytes() {
    let hs = headers(RECENT);
    let mut from_bytes = verifier_at(RECENT_START);
    let mut from_hex = verifier_at(RECENT_START);
    let mut buf = [0u8; 160];
    for h in &hs[..3000] {
        hex::encode_to_slice(h, &mut buf).unwrap();
        assert_eq!(
            from_hex.push_hex(&buf).unwrap(),
            from_bytes.push(h).unwrap()
        );
    }
    assert_eq!(from_hex.tip(), from_bytes.tip());
}

#[test]
fn every_real_retarget_is_recomputed_exactly() {
    let v = json("mainnet/retarget_boundary_headers.json");
    let at = |h: u32| -> Header {
        Header::from_hex(
            v["headers"][h.to_string()]
                .as_str()
                .expect("header present")
                .as_bytes(),
        )
        .unwrap()
    };
    let mut recomputed = 0;
    let mut changed = 0;
    let mut works = 0;
    for k in 1..=413u32 {
        let (first, last, next) = (at(2016 * (k - 1)), at(2016 * k - 1), at(2016 * k));
        let base = last.bits.to_target().unwrap();
        let bits = next_period_bits(&MAINNET, base, first.time, last.time);
        assert_eq!(bits, next.bits, "retarget at height {}", 2016 * k);
        assert_eq!(
            next.prev_blockhash,
            last.block_hash(),
            "link at {}",
            2016 * k
        );
        // The same boundary through the verifier: trusted last block, then the first of the
        // new period, whose target is bounded (period start unknown) and proof of work checked.
        let mut verifier = HeaderVerifier::trusting_first(&MAINNET, 2016 * k - 1, &last.to_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        verifier
            .push(&next.to_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        // Chain work below each checkpointed boundary, derived from the checkpoint targets.
        if let Some(expected) = chainwork_at(2016 * k - 1)
            && let Ok(anchor) = Anchor::at_height(&MAINNET, 2016 * k)
        {
            assert_eq!(anchor.work_below.0, expected, "work below {}", 2016 * k);
            works += 1;
        }
        changed += usize::from(bits != last.bits);
        recomputed += 1;
    }
    assert_eq!(recomputed, 413);
    assert_eq!(works, 413, "chain work below every boundary compared");
    assert!(changed > 300, "only {changed} retargets changed difficulty");
}

#[test]
fn first_signet_period_verifies_from_genesis() {
    let hs = headers("signet/headers_0_2015.bin");
    let v = verify_all(HeaderVerifier::new(&SIGNET, Anchor::genesis(&SIGNET)), &hs);
    assert_eq!(v.tip().unwrap().height, 2015);
    assert_eq!(v.tip().unwrap().hash, SIGNET.checkpoints[0].hash);
}

/// Applies `corrupt` to header `index` of the recent segment and returns the first error.
fn first_error(
    index: usize,
    corrupt: impl FnOnce(&mut [u8; 80], &HeaderVerifier),
) -> electrum_spv_core::chain::HeaderError {
    let mut hs = headers(RECENT);
    let mut v = verifier_at(RECENT_START);
    for h in &hs[..index] {
        v.push(h).unwrap();
    }
    let good = hs[index];
    corrupt(&mut hs[index], &v);
    let before = v.tip().copied();
    let err = v.push(&hs[index]).expect_err("corrupted header accepted");
    // The verifier is unchanged and still takes the real header.
    assert_eq!(v.tip().copied(), before);
    v.push(&good)
        .expect("real header accepted after a rejection");
    err
}

#[test]
fn nonce_bit_flip_fails_proof_of_work_at_its_height() {
    let e = first_error(1234, |h, _| h[76] ^= 1);
    assert_eq!(e.height, RECENT_START + 1234);
    assert_eq!(e.kind, HeaderErrorKind::InsufficientProofOfWork);
}

#[test]
fn wrong_bits_fail_within_a_period_and_at_a_retarget() {
    let e = first_error(10, |h, _| h[72] ^= 1);
    assert_eq!(e.height, RECENT_START + 10);
    assert!(
        matches!(e.kind, HeaderErrorKind::BitsMismatch { .. }),
        "{e}"
    );
    // 824544 is a real difficulty change: keeping the old bits is wrong.
    let e = first_error(2016, |h, v| {
        h[72..76].copy_from_slice(&v.tip().unwrap().bits.0.to_le_bytes())
    });
    assert_eq!(e.height, 824_544);
    match e.kind {
        HeaderErrorKind::BitsMismatch { expected, got } => {
            assert_ne!(expected, got);
            assert_eq!(
                expected,
                CompactTarget(u32::from_le_bytes(
                    headers(RECENT)[2016][72..76].try_into().unwrap()
                ))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn broken_link_fails_at_its_height() {
    let e = first_error(500, |h, _| h[4] ^= 0x80);
    assert_eq!(
        (e.height, e.kind),
        (RECENT_START + 500, HeaderErrorKind::PrevHashMismatch)
    );
}

#[test]
fn timestamp_at_median_time_past_fails() {
    let hs = headers(RECENT);
    let index = 700;
    let mut times: Vec<u32> = hs[index - 11..index]
        .iter()
        .map(|h| u32::from_le_bytes(h[68..72].try_into().unwrap()))
        .collect();
    times.sort_unstable();
    let median = times[5];
    let e = first_error(index, |h, _| {
        h[68..72].copy_from_slice(&median.to_le_bytes())
    });
    assert_eq!(e.height, RECENT_START + index as u32);
    assert_eq!(
        e.kind,
        HeaderErrorKind::TimeNotAfterMedian {
            time: median,
            median
        }
    );
    // One second later passes the time rule (and then fails proof of work, as the hash changed).
    let e = first_error(index, |h, _| {
        h[68..72].copy_from_slice(&(median + 1).to_le_bytes())
    });
    assert_eq!(e.kind, HeaderErrorKind::InsufficientProofOfWork);
}

#[test]
fn segment_not_matching_its_checkpoint_is_refused() {
    let hs = headers(RECENT);
    // Real headers fed as if they started one period later.
    let mut v = verifier_at(RECENT_START + 2016);
    let e = v.push(&hs[0]).unwrap_err();
    assert_eq!(
        (e.height, e.kind),
        (RECENT_START + 2016, HeaderErrorKind::CheckpointMismatch)
    );
    // Block 0 is not block 2016.
    let early = headers(EARLY);
    let e = verifier_at(2016).push(&early[0]).unwrap_err();
    assert_eq!(e.kind, HeaderErrorKind::CheckpointMismatch);
    // The wrong genesis.
    let e = HeaderVerifier::new(&SIGNET, Anchor::genesis(&SIGNET))
        .push(&early[0])
        .unwrap_err();
    assert_eq!((e.height, e.kind), (0, HeaderErrorKind::GenesisMismatch));
    // Anchors exist only at genesis and checkpointed boundaries.
    assert!(Anchor::at_height(&MAINNET, 1000).is_err());
    assert!(Anchor::at_height(&MAINNET, 2016 * 1000).is_err());
    assert!(Anchor::at_height(&REGTEST, 2016).is_err());
}

#[test]
fn bad_input_lengths_and_hex_are_typed() {
    let mut v = verifier_at(0);
    let e = v.push_slice(&[0u8; 79]).unwrap_err();
    assert!(matches!(e.kind, HeaderErrorKind::Parse(_)) && e.height == 0);
    let e = v.push_hex(&[b'z'; 160]).unwrap_err();
    assert!(matches!(e.kind, HeaderErrorKind::Parse(_)));
    assert!(v.tip().is_none());
}

#[test]
fn regtest_fork_tree_picks_the_most_work_branch() {
    let v = json("vectors/electrum_test_vectors.json");
    let tree = v["regtest_fork_headers"]["headers"].as_object().unwrap();
    let header = |name: &str| -> [u8; 80] {
        unhex(tree[name]["hex"].as_str().unwrap())
            .try_into()
            .unwrap()
    };
    let parent = |name: &str| tree[name]["parent"].as_str().map(str::to_owned);
    // Walk a branch from its tip back to genesis, then verify it forward.
    let branch = |tip: &str| -> Vec<String> {
        let mut names = vec![tip.to_owned()];
        while let Some(p) = parent(names.last().unwrap()) {
            names.push(p);
        }
        names.reverse();
        names
    };
    let verify = |names: &[String]| -> HeaderVerifier {
        let mut ver = HeaderVerifier::new(&REGTEST, Anchor::genesis(&REGTEST));
        for n in names {
            let hash = ver.push(&header(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(
                hash,
                tree[n.as_str()]["hash"]
                    .as_str()
                    .unwrap()
                    .parse::<BlockHash>()
                    .unwrap()
            );
        }
        ver
    };
    let tips: Vec<&str> = tree
        .keys()
        .map(String::as_str)
        .filter(|n| !tree.values().any(|h| h["parent"].as_str() == Some(n)))
        .collect();
    assert_eq!(tips.len(), 3, "main chain and two forks");
    let branches: Vec<(usize, HeaderVerifier)> = tips
        .iter()
        .map(|t| {
            let b = branch(t);
            (b.len(), verify(&b))
        })
        .collect();
    let longest = branches.iter().max_by_key(|(len, _)| *len).unwrap();
    for (len, b) in &branches {
        let choice = choose_branch(b, &longest.1).unwrap();
        if len < &longest.0 {
            assert_eq!(
                choice,
                Branch::Candidate,
                "longer branch has more work on regtest"
            );
            assert_eq!(choose_branch(&longest.1, b).unwrap(), Branch::Current);
        } else {
            assert_eq!(
                choice,
                Branch::Current,
                "equal work keeps the current branch"
            );
        }
    }
    // A header from another branch does not extend this one.
    let main = &branches
        .iter()
        .find(|(len, _)| *len == longest.0)
        .unwrap()
        .1;
    let mut m = main.clone();
    let other_tip = tips
        .iter()
        .find(|t| !branch(t).contains(&"U".to_owned()))
        .unwrap();
    let e = m.push(&header(other_tip)).unwrap_err();
    assert_eq!(e.kind, HeaderErrorKind::PrevHashMismatch);
    assert_eq!(
        Network::Regtest.params().genesis_hash,
        tree["A"]["hash"].as_str().unwrap().parse().unwrap()
    );
}
