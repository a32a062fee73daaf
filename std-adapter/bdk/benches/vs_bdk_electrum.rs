//! A BDK full scan of a wallet with 200 used addresses and 1,000 transactions on the test
//! kit's real ElectrumX: `bdk_electrum` 0.24 on rust-electrum-client (the bound: it verifies
//! little) against electrum-spv-bdk (every header from genesis, every status, merkle proof
//! and transaction verified), timed by criterion in the same run; then each side once in a
//! child process of this binary, which prints its peak RSS (`VmHWM`).
//!
//! The server is ElectrumX 1.16 (`ELECTRUM_SPV_BDK_BENCH_SERVER` names another of the interop
//! matrix): ElectrumX from 1.18 holds every small reply up to a second, and `bdk_electrum`
//! fetches each transaction with its own call, one after another, so against 2.0 one of its
//! scans of this wallet takes about a second per transaction; that is measured once, not by
//! criterion.
//!
//! Run by `scripts/bench-bdk.sh` (prints the ratio); `cargo bench -p electrum-spv-bdk`.

use std::process::Command;
use std::time::{Duration, Instant};

use bdk_electrum::BdkElectrumClient;
use bdk_wallet::{KeychainKind, Wallet};
use bitcoin::{Amount, Network};
use criterion::Criterion;
use electrum_spv::{ClientConfig, PoolConfig, ServerAddr, Transport};
use electrum_spv_bdk::ScanOptions;
use electrum_spv_bdk::blocking::BlockingChainSource;
use electrum_spv_testkit::chain::ALICE;
use electrum_spv_testkit::{Chain, Implementation, Server, StandInBitcoind};

/// Used addresses, and transactions paying them (spread evenly).
const ADDRESSES: u32 = 200;
const TXS: u32 = 1_000;
/// Transactions per block.
const PER_BLOCK: u32 = 100;
const STOP_GAP: usize = 20;
const TPRV: &str = "tprv8ZgxMBicQKsPdy6LMhUtFHAgpocR8GC6QmwMSFpZs7h6Eziw3SpThFfczTDh5rW2krkqffa11UpX3XkeTTB2FvzZKWXqPY54Y6Rq4AQ5R8L";
/// Set in a child: the side to run once (`theirs` or `ours`).
const SIDE_ENV: &str = "ELECTRUM_SPV_BDK_BENCH_SIDE";
/// Set in a child: the ElectrumX address.
const ADDR_ENV: &str = "ELECTRUM_SPV_BDK_BENCH_ADDR";
/// The server implementation (an interop matrix name); default ElectrumX 1.16.
const SERVER_ENV: &str = "ELECTRUM_SPV_BDK_BENCH_SERVER";

fn wallet() -> Wallet {
    Wallet::create(
        format!("wpkh({TPRV}/84'/1'/0'/0/*)"),
        format!("wpkh({TPRV}/84'/1'/0'/1/*)"),
    )
    .network(Network::Regtest)
    .create_wallet_no_persist()
    .expect("descriptors")
}

/// The kit's chain with the wallet's 200 addresses paid 1,000 times, served by `server`
/// (dropped in order: the server before the stand-in).
fn funded_kit(server: &Implementation) -> (Server, StandInBitcoind) {
    let mut chain = Chain::funded().expect("chain");
    let w = wallet();
    for i in 0..TXS {
        let script = w
            .peek_address(KeychainKind::External, i % ADDRESSES)
            .script_pubkey();
        chain
            .send(electrum_spv_testkit::SendSpec::new(
                ALICE,
                &script,
                Amount::from_sat(10_000),
            ))
            .expect("the kit pays the wallet");
        if (i + 1) % PER_BLOCK == 0 {
            chain.mine(1);
        }
    }
    let bitcoind = StandInBitcoind::start(chain).expect("stand-in");
    let server = Server::start(server, &bitcoind).expect("server");
    (server, bitcoind)
}

/// One full scan by `side`; returns the wallet's transaction count.
fn scan(side: &str, addr: std::net::SocketAddr) -> usize {
    let mut w = wallet();
    let request = w.start_full_scan().build();
    match side {
        "theirs" => {
            let client = electrum_client::Client::new(&format!("tcp://{addr}")).expect("connect");
            let update = BdkElectrumClient::new(client)
                .full_scan(request, STOP_GAP, 10, false)
                .expect("bdk_electrum full scan");
            w.apply_update(update).expect("update");
        }
        "ours" => {
            let source = BlockingChainSource::connect(
                &[ServerAddr::new(
                    Transport::Tcp,
                    "127.0.0.1".to_owned(),
                    addr.port(),
                )],
                PoolConfig::new(ClientConfig::new(electrum_spv::Network::Regtest)),
            )
            .expect("connect");
            let update = source
                .full_scan(request, STOP_GAP, &ScanOptions::default())
                .expect("electrum-spv-bdk full scan");
            w.apply_update(update).expect("update");
        }
        other => panic!("unknown side {other}"),
    }
    w.transactions().count()
}

/// Runs `side` once in a child; returns its peak RSS in KiB and its wall time.
fn child(side: &str, addr: std::net::SocketAddr) -> (u64, Duration) {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .env(SIDE_ENV, side)
        .env(ADDR_ENV, addr.to_string())
        .output()
        .expect("spawn");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {side}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kib = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("vmhwm_kib="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("child {side} printed no vmhwm: {stdout}"));
    (kib, elapsed)
}

fn main() {
    if let Ok(side) = std::env::var(SIDE_ENV) {
        let addr = std::env::var(ADDR_ENV)
            .expect("address")
            .parse()
            .expect("socket address");
        let txs = scan(&side, addr);
        println!(
            "txs={txs} vmhwm_kib={}",
            electrum_spv_testkit::peak_rss_kib()
        );
        return;
    }
    let implementation = match std::env::var(SERVER_ENV) {
        Ok(name) => Implementation::parse(&name).expect("a server of the interop matrix"),
        Err(_) => Implementation::ElectrumX("1.16.0".into()),
    };
    println!("server: {}", implementation.name());
    let (server, _bitcoind) = funded_kit(&implementation);
    let addr = server.addr();
    // Both must see the same wallet before either is timed.
    let (theirs, ours) = (scan("theirs", addr), scan("ours", addr));
    assert_eq!(theirs, ours, "the two scans disagree");
    assert!(ours >= TXS as usize, "{ours} transactions");
    println!("check: both scans see {ours} transactions");

    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .configure_from_args();
    let mut group = c.benchmark_group("bdk_full_scan");
    group.bench_function("bound_bdk_electrum", |b| b.iter(|| scan("theirs", addr)));
    group.bench_function("electrum_spv_bdk", |b| b.iter(|| scan("ours", addr)));
    group.finish();
    c.final_summary();

    let (theirs_kib, theirs_wall) = child("theirs", addr);
    let (ours_kib, ours_wall) = child("ours", addr);
    println!(
        "rss bdk_full_scan: bdk_electrum {:.1} MiB ({:.2} s), electrum-spv-bdk {:.1} MiB ({:.2} s)",
        theirs_kib as f64 / 1024.0,
        theirs_wall.as_secs_f64(),
        ours_kib as f64 / 1024.0,
        ours_wall.as_secs_f64()
    );
}
