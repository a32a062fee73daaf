//! The header file under a verified chain: reopened without downloading, a torn write cut
//! off, forks kept and the most-work branch chosen, a reorg resolved by work against a real
//! ElectrumX.

mod common;

use common::runtime;
use std::io::Write;
use std::time::Duration;

use bitcoin::consensus::encode::serialize;
use electrum_spv::header_store::{HeaderStore, RECORD};
use electrum_spv::{Client, ClientConfig, HeaderChain, Network};
use electrum_spv_testkit::{Chain, Harness, ReorgTxs};

fn headers(chain: &Chain) -> Vec<[u8; 80]> {
    chain
        .blocks()
        .iter()
        .map(|b| serialize(&b.header).try_into().expect("80 bytes"))
        .collect()
}

#[test]
fn reopen_torn_write_and_forks_by_work() {
    let mut chain = Chain::funded().expect("kit chain");
    let a = headers(&chain);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regtest.headers");

    let mut hc = HeaderChain::open(Network::Regtest, &path).expect("open");
    hc.extend(&a).expect("verified");
    let tip_a = hc.tip().unwrap();
    drop(hc);

    // Reopened: the same verified tip, nothing downloaded.
    let hc = HeaderChain::open(Network::Regtest, &path).expect("reopen");
    assert_eq!(hc.tip(), Some(tip_a));
    drop(hc);

    // A torn write at the end is cut off; the chain is intact.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&[0x42; RECORD / 2]).unwrap();
    drop(f);
    let hc = HeaderChain::open(Network::Regtest, &path).expect("torn write repaired");
    assert_eq!(hc.tip(), Some(tip_a));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        (a.len() * RECORD) as u64
    );
    drop(hc);

    // A fork (the last 2 blocks replaced by 3) appended: both branches stay on disk, the
    // most-work one is the chain.
    chain.reorg(2, ReorgTxs::Drop);
    let b = headers(&chain);
    let fork_at = a.len() - 2;
    assert_ne!(a[fork_at], b[fork_at]);
    let (mut store, _) = HeaderStore::open(&path).unwrap();
    let fork: Vec<(u32, [u8; 80])> = (fork_at as u32..)
        .zip(b[fork_at..].iter().copied())
        .collect();
    store.append(&fork).unwrap();
    assert_eq!(store.len() as usize, a.len() + 3);
    drop(store);
    let hc = HeaderChain::open(Network::Regtest, &path).expect("forks");
    let (height, hash) = hc.tip().unwrap();
    assert_eq!(height as usize, b.len() - 1);
    assert_eq!(hash.to_string(), chain.tip().block_hash().to_string());
}

#[test]
fn sync_into_the_file_and_resolve_a_reorg_by_work() {
    let mut h = Harness::start().expect("kit");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regtest.headers");
    let server = common::tcp(h.addr());
    let rt = runtime();
    rt.block_on(async {
        let c = Client::connect(&server, &ClientConfig::new(Network::Regtest))
            .await
            .expect("connect");
        let mut hc = HeaderChain::open(Network::Regtest, &path).expect("open");
        let tip = hc.sync(&c, |_, _| {}).await.expect("sync");
        assert_eq!(tip, h.bitcoind.tip().0);
        let (store, _) = HeaderStore::open(&path).unwrap();
        assert_eq!(store.len(), u64::from(tip) + 1);
        drop((store, hc));

        // A 2-block reorg with more work: the file ends up holding the new branch only.
        h.bitcoind.reorg(2);
        let (new_tip, header) = h.bitcoind.tip();
        h.electrumx
            .wait_for_height(new_tip, Duration::from_secs(60))
            .expect("ElectrumX follows the reorg");
        let mut hc = HeaderChain::open(Network::Regtest, &path).expect("reopen");
        assert_eq!(hc.tip().map(|t| t.0), Some(tip));
        let synced = hc.sync(&c, |_, _| {}).await.expect("sync across the reorg");
        assert_eq!(synced, new_tip);
        assert_eq!(
            hc.tip().unwrap().1.to_string(),
            header.block_hash().to_string()
        );
        drop(hc);
        let (store, _) = HeaderStore::open(&path).unwrap();
        assert_eq!(
            store.len(),
            u64::from(new_tip) + 1,
            "resolved: one branch kept"
        );
        drop(store);
        let hc = HeaderChain::open(Network::Regtest, &path).unwrap();
        assert_eq!(hc.tip().map(|t| t.0), Some(new_tip));
    });
}
