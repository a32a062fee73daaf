//! The adapter's `tracing` events (feature `tracing`; `scripts/test.sh` runs this with it):
//! a pool of a liar (a forged merkle branch) and one of an honest ElectrumX report both
//! connections, with the version negotiated, and the liar dropped with its reason.

mod common;

use std::sync::{Arc, Mutex};

use electrum_spv::{ClientConfig, Network, Pool, PoolConfig};
use electrum_spv_testkit::Harness;
use electrum_spv_testkit::ScriptKind;
use electrum_spv_testkit::chain::ALICE;
use electrum_spv_testkit::liar::{Attack, LyingProxy, Times};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Every event as "target level message field=value ...".
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!(" {value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let m = event.metadata();
        let mut line = Line(format!("{} {}", m.target(), m.level()));
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn connections_and_a_dropped_liar_are_traced() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(recorder.clone()).expect("one subscriber");
    let h = Harness::start().expect("kit");
    let liar =
        LyingProxy::start_with(h.addr(), Attack::ForgedMerkleBranch, Times::Always).expect("proxy");
    let script = h.bitcoind.chain().wallets()[ALICE]
        .script(ScriptKind::P2wpkh)
        .to_bytes();
    let rt = common::runtime();
    let config = || PoolConfig::new(ClientConfig::new(Network::Regtest));
    let dropped = rt.block_on(async {
        let mut pool = Pool::connect(&[common::tcp(liar.addr())], config())
            .await
            .expect("pool");
        let refused = pool.verified_history(&script).await;
        assert!(refused.is_err(), "a forged proof accepted");
        let honest = Pool::connect(&[common::tcp(h.addr())], config())
            .await
            .expect("the honest pool");
        assert!(honest.dropped().is_empty());
        pool.dropped().to_vec()
    });
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let lines = recorder.0.lock().unwrap().clone();
    let connected: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"connected\"") || l.contains(" connected"))
        .collect();
    assert_eq!(connected.len(), 2, "{lines:#?}");
    assert!(
        connected
            .iter()
            .all(|l| l.starts_with("electrum_spv INFO") && l.contains("version=")),
        "{lines:#?}"
    );
    let liar_addr = format!("127.0.0.1:{}", liar.addr().port());
    assert!(
        lines.iter().any(|l| l.starts_with("electrum_spv WARN")
            && l.contains("dropped")
            && l.contains(&liar_addr)
            && l.contains("reason=")),
        "{lines:#?}"
    );
}
