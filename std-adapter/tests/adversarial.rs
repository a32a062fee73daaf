//! The tokio client against a lying server: the test kit's [`LyingProxy`] sits in front of a
//! real ElectrumX and rewrites its answers, one scripted [`Attack`] per case. Every lie the
//! client can detect must end the call with its typed [`Error`], nothing may panic, no call
//! may hang, and where the connection survives the lie the client must stay usable (an
//! untampered call on the same connection succeeds). Lies that are harmless by design (stray
//! or repeated responses) must be ignored without disturbing the answers.
//!
//! One ElectrumX serves every case; each case gets its own proxy and connection.

use std::cell::RefCell;
use std::fmt::Debug;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use bitcoin::ScriptBuf;
use bitcoin::consensus::encode::{serialize, serialize_hex};
use electrum_spv::core::chain::HeaderErrorKind;
use electrum_spv::core::hash::Txid;
use electrum_spv::core::history::HistoryFault;
use electrum_spv::core::rpc::{Method, ProtocolVersion};
use electrum_spv::core::session::FatalError;
use electrum_spv::{
    Client, ClientConfig, Error, Fault, HeaderChain, Network, ScriptRef, ServerAddr, Transport,
    verified_history, verified_utxos,
};
use electrum_spv_testkit::chain::{ALICE, BOB};
use electrum_spv_testkit::liar::{Attack, LyingProxy, OVERSIZE_LINE, Times};
use electrum_spv_testkit::{Harness, ScriptKind};
use futures::future::BoxFuture;

/// Deadline of each call where no timeout is expected.
const PATIENT: Duration = Duration::from_secs(20);
/// Deadline of each call where the attack should make it time out.
const QUICK: Duration = Duration::from_secs(3);
/// A case that has not ended after this long hangs.
const HANG: Duration = Duration::from_secs(30);

/// Panics on any thread but a test's own, with the thread's name: a run counts those of its
/// runtime's threads, of the client's session builder and of the proxy.
static PANICS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

thread_local! {
    /// The errors the current case observed (cases run on their test's thread), for the
    /// report.
    static OBSERVED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn observed(what: &str, e: &Error) {
    OBSERVED.with_borrow_mut(|o| o.push(format!("{what}: {e:?}")));
}

fn count_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            PANICS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((name, info.to_string()));
            previous(info);
        }));
    });
}

fn panics_of(threads: &str) -> Vec<String> {
    PANICS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(name, _)| {
            [threads, "electrum-spv", "liar-"]
                .iter()
                .any(|p| name.starts_with(p))
        })
        .map(|(name, what)| format!("thread {name}: {what}"))
        .collect()
}

fn harness() -> Harness {
    Harness::start().unwrap_or_else(|e| panic!("cannot start the test kit's ElectrumX: {e}"))
}

fn runtime(threads: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(threads)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn config(request_timeout: Duration) -> ClientConfig {
    ClientConfig {
        reconnect: None,
        request_timeout,
        ..ClientConfig::new(Network::Regtest)
    }
}

fn core_txid(t: bitcoin::Txid) -> Txid {
    Txid::from_byte_array(bitcoin::hashes::Hash::to_byte_array(t))
}

/// What the cases need from the kit, read before any network traffic (the stand-in bitcoind
/// needs its chain's lock to answer ElectrumX).
struct Kit {
    tip: u32,
    headers: Vec<[u8; 80]>,
    alice: ScriptBuf,
    alice_history: usize,
    bob: ScriptBuf,
    /// A confirmed transaction of Alice's and the height of its block.
    confirmed: (Txid, u32),
    /// Another transaction's raw hex.
    other_tx_hex: String,
    /// A transaction already in the mempool: broadcasting it again changes nothing.
    mempool_tx: Vec<u8>,
    mempool_txid: Txid,
    /// Alice's unspent outputs: txid, index, value.
    alice_utxos: Vec<(Txid, u32, u64)>,
}

impl Kit {
    fn read(h: &Harness) -> Kit {
        let chain = h.bitcoind.chain();
        let headers = chain
            .blocks()
            .iter()
            .map(|b| {
                let mut out = [0u8; 80];
                out.copy_from_slice(&serialize(&b.header));
                out
            })
            .collect();
        let alice = chain.wallets()[ALICE].script(ScriptKind::P2wpkh).to_owned();
        let bob = chain.wallets()[BOB].script(ScriptKind::P2wpkh).to_owned();
        let alice_history = chain.history(&alice);
        let (txid, height) = *alice_history
            .iter()
            .find(|(_, height)| *height > 0)
            .expect("a confirmed payment to Alice");
        let other = chain
            .blocks()
            .iter()
            .flat_map(|b| &b.txdata)
            .find(|t| !t.is_coinbase() && t.compute_txid() != txid)
            .expect("another transaction");
        let mempool_tx = chain.mempool().first().expect("a mempool transaction");
        let bob_history = chain.history(&bob);
        assert!(
            bob_history.iter().rev().take(2).all(|(_, h)| *h <= 0),
            "Bob's P2WPKH history must end with two mempool entries"
        );
        let mut alice_utxos: Vec<(Txid, u32, u64)> = chain
            .listunspent(&alice)
            .iter()
            .map(|u| (core_txid(u.txid), u.vout, u.value))
            .collect();
        alice_utxos.sort();
        Kit {
            alice_utxos,
            tip: chain.height(),
            headers,
            alice_history: alice_history.len(),
            alice,
            bob,
            confirmed: (core_txid(txid), u32::try_from(height).unwrap()),
            other_tx_hex: serialize_hex(other),
            mempool_tx: serialize(mempool_tx),
            mempool_txid: core_txid(mempool_tx.compute_txid()),
        }
    }
}

type Outcome = Result<(), String>;
type Run = for<'a> fn(&'a Kit, &'a ServerAddr) -> BoxFuture<'a, Outcome>;

/// One attack and what the client must make of it.
struct Case {
    name: &'static str,
    attack: Attack,
    times: Times,
    run: Run,
}

macro_rules! case {
    ($name:literal, $attack:expr, $times:ident, |$kit:ident, $server:ident| $body:block) => {
        Case {
            name: $name,
            attack: $attack,
            times: Times::$times,
            run: |$kit, $server| Box::pin(async move $body),
        }
    };
}

/// `Ok` if `got` is an error `expected` accepts.
fn expect_err<T: Debug>(
    what: &str,
    got: Result<T, Error>,
    expected: impl FnOnce(&Error) -> bool,
) -> Outcome {
    match got {
        Err(e) if expected(&e) => {
            observed(what, &e);
            Ok(())
        }
        other => Err(format!("{what}: got {other:?}")),
    }
}

/// `Ok` if `got` is [`Error::Verification`] with a fault `fault` accepts (and a server fault).
fn expect_fault<T: Debug>(
    what: &str,
    got: Result<T, Error>,
    fault: impl FnOnce(&Fault) -> bool,
) -> Outcome {
    expect_err(what, got, |e| {
        e.is_server_fault() && matches!(e, Error::Verification(f) if fault(f))
    })
}

async fn connect(server: &ServerAddr, request_timeout: Duration) -> Result<Client, String> {
    Client::connect(server, &config(request_timeout))
        .await
        .map_err(|e| format!("connect: {e:?}"))
}

/// The connection still answers, and answers truly.
async fn usable(c: &Client, kit: &Kit) -> Outcome {
    match c.block_header(1).await {
        Ok(h) if h == kit.headers[1] => {}
        other => return Err(format!("afterwards, block_header(1): got {other:?}")),
    }
    c.ping()
        .await
        .map_err(|e| format!("afterwards, ping: {e:?}"))
}

/// The connection is gone and says so.
async fn closed(c: &Client) -> Outcome {
    expect_err("afterwards, ping", c.ping().await, |e| {
        matches!(e, Error::Closed | Error::Disconnected)
    })
}

async fn header_is(c: &Client, kit: &Kit, height: u32) -> Outcome {
    match c.block_header(height).await {
        Ok(h) if h == kit.headers[height as usize] => Ok(()),
        other => Err(format!("block_header({height}): got {other:?}")),
    }
}

async fn sync_headers(c: &Client) -> Result<u32, Error> {
    HeaderChain::from_genesis(Network::Regtest)
        .sync(c, |_, _| {})
        .await
}

async fn utxos_of(c: &Client, script: &ScriptBuf) -> Result<Vec<(Txid, u32, u64)>, Error> {
    let mut chain = HeaderChain::from_genesis(Network::Regtest);
    let mut utxos: Vec<(Txid, u32, u64)> = verified_utxos(c, &mut chain, script.as_bytes())
        .await?
        .iter()
        .map(|u| (u.txid, u.vout, u.value))
        .collect();
    utxos.sort();
    Ok(utxos)
}

async fn history_of(c: &Client, script: &ScriptBuf) -> Result<usize, Error> {
    let mut chain = HeaderChain::from_genesis(Network::Regtest);
    verified_history(c, &mut chain, ScriptRef::Script(script.as_bytes()))
        .await
        .map(|h| h.txs.len())
}

fn cases(kit: &Kit) -> Vec<Case> {
    vec![
        case!("honest relay (control)", Attack::Honest, Once, |k, s| {
            let c = connect(s, PATIENT).await?;
            if c.protocol_version() != ProtocolVersion::V1_6 {
                return Err(format!("negotiated {}", c.protocol_version()));
            }
            match sync_headers(&c).await {
                Ok(tip) if tip == k.tip => {}
                other => return Err(format!("header sync: got {other:?}")),
            }
            match history_of(&c, &k.alice).await {
                Ok(n) if n == k.alice_history => {}
                other => return Err(format!("verified history: got {other:?}")),
            }
            match utxos_of(&c, &k.alice).await {
                Ok(u) if u == k.alice_utxos => {}
                other => return Err(format!("verified utxos: got {other:?}")),
            }
            c.transaction_get(&k.confirmed.0)
                .await
                .map_err(|e| format!("transaction_get: {e:?}"))?;
            match c.transaction_broadcast(&k.mempool_tx).await {
                Ok(t) if t == k.mempool_txid => {}
                other => return Err(format!("broadcast: got {other:?}")),
            }
            match c.block_headers(0, 20).await {
                Ok(h) if h == k.headers[..20] => {}
                other => return Err(format!("block_headers: got {other:?}")),
            }
            match c.estimate_fee(2).await {
                Ok(Some(_)) => {}
                other => return Err(format!("estimate_fee: got {other:?}")),
            }
            usable(&c, k).await
        }),
        // ----- negotiation -----
        case!("wrong genesis", Attack::WrongGenesis, Once, |_k, s| {
            let got = Client::connect(s, &config(PATIENT)).await;
            expect_err("connect", got, |e| {
                matches!(e, Error::Session(FatalError::WrongGenesis))
            })
        }),
        case!(
            "features without genesis",
            Attack::FeaturesWithoutGenesis,
            Once,
            |_k, s| {
                let got = Client::connect(s, &config(PATIENT)).await;
                expect_err("connect", got, |e| {
                    matches!(e, Error::Session(FatalError::BadFeatures))
                })
            }
        ),
        case!(
            "version out of range",
            Attack::VersionOutOfRange,
            Once,
            |_k, s| {
                let got = Client::connect(s, &config(PATIENT)).await;
                expect_err("connect", got, |e| {
                    matches!(e, Error::Session(FatalError::VersionOutOfRange { got })
                        if *got == ProtocolVersion::new(1, 2, 0))
                })
            }
        ),
        // Refused every time: the retry with a plain "1.4" (for electrs 0.9) is refused too.
        case!(
            "version refused",
            Attack::VersionRefused,
            Always,
            |_k, s| {
                let got = Client::connect(s, &config(PATIENT)).await;
                expect_err("connect", got, |e| {
                    matches!(
                        e,
                        Error::Session(FatalError::VersionRefused { code: Some(1) })
                    )
                })
            }
        ),
        case!(
            "bad version reply",
            Attack::BadVersionReply,
            Once,
            |_k, s| {
                let got = Client::connect(s, &config(PATIENT)).await;
                expect_err("connect", got, |e| {
                    matches!(e, Error::Session(FatalError::BadVersionReply))
                })
            }
        ),
        // ----- merkle proofs -----
        case!(
            "forged merkle branch",
            Attack::ForgedMerkleBranch,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = history_of(&c, &k.alice).await;
                expect_fault("verified history", got, |f| {
                    matches!(f, Fault::Merkle { .. })
                })?;
                usable(&c, k).await
            }
        ),
        case!("wrong merkle pos", Attack::WrongMerklePos, Once, |k, s| {
            let c = connect(s, PATIENT).await?;
            let got = history_of(&c, &k.alice).await;
            expect_fault("verified history", got, |f| {
                matches!(f, Fault::Merkle { .. })
            })?;
            usable(&c, k).await
        }),
        case!(
            "wrong merkle height",
            Attack::WrongMerkleHeight,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = history_of(&c, &k.alice).await;
                expect_fault("verified history", got, |f| {
                    matches!(f, Fault::ProofHeight { .. })
                })?;
                usable(&c, k).await
            }
        ),
        // ----- statuses and histories -----
        case!("wrong status", Attack::WrongStatus, Always, |k, s| {
            let c = connect(s, PATIENT).await?;
            let got = history_of(&c, &k.bob).await;
            expect_fault("verified history", got, |f| {
                matches!(
                    f,
                    Fault::History {
                        fault: HistoryFault::StatusMismatch,
                        ..
                    }
                )
            })?;
            usable(&c, k).await
        }),
        case!(
            "history missing a transaction",
            Attack::HistoryMissingTx,
            Always,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = history_of(&c, &k.bob).await;
                expect_fault("verified history", got, |f| {
                    matches!(
                        f,
                        Fault::History {
                            fault: HistoryFault::StatusMismatch,
                            ..
                        }
                    )
                })?;
                usable(&c, k).await
            }
        ),
        case!(
            "history not in canonical order (1.6)",
            Attack::HistoryNonCanonicalOrder,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                if c.protocol_version() != ProtocolVersion::V1_6 {
                    return Err(format!("negotiated {}", c.protocol_version()));
                }
                let got = history_of(&c, &k.bob).await;
                expect_fault("verified history", got, |f| {
                    matches!(
                        f,
                        Fault::History {
                            fault: HistoryFault::NotCanonical(_),
                            ..
                        }
                    )
                })?;
                usable(&c, k).await
            }
        ),
        case!(
            "history height as a string",
            Attack::WrongTypes,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.script_get_history(k.alice.as_bytes()).await;
                expect_err("history", got, |e| {
                    matches!(e, Error::BadResult(Method::ScriptGetHistory))
                })?;
                usable(&c, k).await
            }
        ),
        case!("negative height", Attack::NegativeHeight, Once, |k, s| {
            let c = connect(s, PATIENT).await?;
            let got = c.script_get_history(k.alice.as_bytes()).await;
            expect_err("history", got, |e| {
                matches!(e, Error::BadResult(Method::ScriptGetHistory))
            })?;
            usable(&c, k).await
        }),
        case!("height of 2^70", Attack::HugeNumber, Once, |k, s| {
            let c = connect(s, PATIENT).await?;
            let got = c.script_get_history(k.alice.as_bytes()).await;
            expect_err("history", got, |e| {
                matches!(e, Error::BadResult(Method::ScriptGetHistory))
            })?;
            usable(&c, k).await
        }),
        case!("fee rate of 1e400", Attack::HugeFloat, Once, |k, s| {
            let c = connect(s, PATIENT).await?;
            let got = c.estimate_fee(2).await;
            expect_err("estimate_fee", got, |e| {
                matches!(e, Error::BadResult(Method::EstimateFee))
            })?;
            usable(&c, k).await
        }),
        // ----- transactions -----
        case!(
            "utxo value inflated (read from the tx instead)",
            Attack::UtxoWrongValue,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                match utxos_of(&c, &k.alice).await {
                    Ok(u) if u == k.alice_utxos => {}
                    other => return Err(format!("verified utxos: got {other:?}")),
                }
                usable(&c, k).await
            }
        ),
        case!(
            "utxo naming another output",
            Attack::UtxoWrongOutput,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = utxos_of(&c, &k.alice).await;
                expect_fault("verified utxos", got, |f| {
                    matches!(f, Fault::NotAnOutputOfScript { .. })
                })?;
                usable(&c, k).await
            }
        ),
        case!(
            "another transaction's bytes",
            Attack::WrongRawTx(kit.other_tx_hex.clone()),
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let txid = k.confirmed.0;
                let got = c.transaction_get(&txid).await;
                expect_fault(
                    "transaction_get",
                    got,
                    |f| matches!(f, Fault::TxidMismatch { asked, .. } if *asked == txid),
                )?;
                c.transaction_get(&txid)
                    .await
                    .map_err(|e| format!("transaction_get again: {e:?}"))?;
                usable(&c, k).await
            }
        ),
        case!(
            "broadcast answered with HTML",
            Attack::BroadcastHtml,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.transaction_broadcast(&k.mempool_tx).await;
                expect_err("broadcast", got, |e| {
                    matches!(e, Error::UnknownBroadcastOutcome(a) if a.contains("<html>"))
                        && !e.is_server_fault()
                })?;
                usable(&c, k).await
            }
        ),
        case!(
            "broadcast answered with another txid",
            Attack::BroadcastWrongTxid,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.transaction_broadcast(&k.mempool_tx).await;
                expect_fault(
                    "broadcast",
                    got,
                    |f| matches!(f, Fault::BroadcastTxid { sent, .. } if *sent == k.mempool_txid),
                )?;
                usable(&c, k).await
            }
        ),
        // ----- headers -----
        case!(
            "header without proof of work",
            Attack::BadHeaderPow,
            Always,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = sync_headers(&c).await;
                expect_fault("header sync", got, |f| {
                    matches!(f, Fault::Header(e) if e.height == 10
                        && e.kind == HeaderErrorKind::InsufficientProofOfWork)
                })?;
                usable(&c, k).await
            }
        ),
        case!(
            "header not linked",
            Attack::BadHeaderLink,
            Always,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = sync_headers(&c).await;
                expect_fault("header sync", got, |f| {
                    matches!(f, Fault::Header(e) if e.height == 10
                        && e.kind == HeaderErrorKind::PrevHashMismatch)
                })?;
                usable(&c, k).await
            }
        ),
        case!(
            "header with wrong bits",
            Attack::BadHeaderBits,
            Always,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = sync_headers(&c).await;
                expect_fault("header sync", got, |f| {
                    matches!(f, Fault::Header(e) if e.height == 10
                        && matches!(e.kind, HeaderErrorKind::BitsMismatch { .. }))
                })?;
                usable(&c, k).await
            }
        ),
        case!(
            "more headers than asked for",
            Attack::HeaderChunkTooLong,
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.block_headers(0, 20).await;
                expect_err("block_headers", got, |e| {
                    matches!(e, Error::BadResult(Method::BlockHeaders))
                })?;
                match c.block_headers(0, 20).await {
                    Ok(h) if h == k.headers[..20] => {}
                    other => return Err(format!("block_headers again: got {other:?}")),
                }
                usable(&c, k).await
            }
        ),
        // ----- server errors -----
        case!(
            "excessive resource usage (-101)",
            Attack::ServerError {
                method: "blockchain.block.header",
                code: -101,
                message: "excessive resource usage",
            },
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.block_header(5).await;
                expect_err(
                    "block_header",
                    got,
                    |e| matches!(e, Error::ExcessiveUsage(m) if m == "excessive resource usage"),
                )?;
                usable(&c, k).await
            }
        ),
        case!(
            "server busy (-102)",
            Attack::ServerError {
                method: "blockchain.block.header",
                code: -102,
                message: "server busy - request timed out",
            },
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.block_header(5).await;
                expect_err("block_header", got, |e| matches!(e, Error::ServerBusy(_)))?;
                usable(&c, k).await
            }
        ),
        case!(
            "history too large (10001)",
            Attack::ServerError {
                method: "blockchain.scripthash.get_history",
                code: 10001,
                message: "history too large",
            },
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.script_get_history(k.alice.as_bytes()).await;
                expect_err("history", got, |e| matches!(e, Error::HistoryTooLarge(_)))?;
                usable(&c, k).await
            }
        ),
        case!(
            "server error with hostile text",
            Attack::ServerError {
                method: "blockchain.transaction.get",
                code: 2,
                message: "daemon error:\n<script>\"x\"</script>\u{7}",
            },
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.transaction_get(&k.confirmed.0).await;
                expect_err("transaction_get", got, |e| {
                    matches!(e, Error::Server { code: Some(2), message }
                        if message == "daemon error:\n<script>\"x\"</script>\u{7}")
                })?;
                usable(&c, k).await
            }
        ),
        // ----- hostile lines -----
        case!(
            "garbage line",
            Attack::Garbage("blockchain.block.header"),
            Once,
            |k, s| {
                let c = connect(s, QUICK).await?;
                let got = c.block_header(5).await;
                expect_err("block_header", got, |e| matches!(e, Error::Timeout))?;
                usable(&c, k).await
            }
        ),
        case!(
            "invalid UTF-8",
            Attack::InvalidUtf8("blockchain.block.header"),
            Once,
            |k, s| {
                let c = connect(s, QUICK).await?;
                let got = c.block_header(5).await;
                expect_err("block_header", got, |e| matches!(e, Error::Timeout))?;
                usable(&c, k).await
            }
        ),
        case!(
            "oversize line (3 MiB)",
            Attack::OversizeLine("blockchain.block.header"),
            Once,
            |k, s| {
                let c = connect(s, QUICK).await?;
                let got = c.block_header(5).await;
                // Its id is read from the line's ends: over at once, not at the deadline.
                expect_err(
                    "block_header",
                    got,
                    |e| matches!(e, Error::ResponseTooLarge { method: Method::BlockHeader, len } if *len >= OVERSIZE_LINE),
                )?;
                usable(&c, k).await
            }
        ),
        case!(
            "result nested 10,000 deep",
            Attack::DeepNesting("blockchain.block.header"),
            Once,
            |k, s| {
                let c = connect(s, QUICK).await?;
                let got = c.block_header(5).await;
                expect_err("block_header", got, |e| matches!(e, Error::Timeout))?;
                usable(&c, k).await
            }
        ),
        case!(
            "slowloris",
            Attack::Slowloris {
                method: "blockchain.block.header",
                slow_for: Duration::from_secs(5),
            },
            Once,
            |k, s| {
                let c = connect(s, QUICK).await?;
                let got = c.block_header(5).await;
                expect_err("block_header", got, |e| matches!(e, Error::Timeout))?;
                // Let the dribble end: later answers wait behind it on the proxy.
                tokio::time::sleep(Duration::from_secs(4)).await;
                usable(&c, k).await
            }
        ),
        case!(
            "disconnect mid-response",
            Attack::DisconnectMidResponse("blockchain.block.header"),
            Once,
            |_k, s| {
                let c = connect(s, PATIENT).await?;
                let got = c.block_header(5).await;
                expect_err("block_header", got, |e| {
                    matches!(e, Error::Disconnected | Error::Io(_))
                })?;
                closed(&c).await
            }
        ),
        // ----- harmless lies: ignored, answers undisturbed -----
        case!(
            "responses to ids never sent",
            Attack::UnknownId("blockchain.block.header"),
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                header_is(&c, k, 5).await?;
                // The forged answer to the next id must not be taken for this call's.
                header_is(&c, k, 6).await?;
                usable(&c, k).await
            }
        ),
        case!(
            "duplicate response",
            Attack::DuplicateResponse("blockchain.block.header"),
            Once,
            |k, s| {
                let c = connect(s, PATIENT).await?;
                header_is(&c, k, 5).await?;
                header_is(&c, k, 6).await?;
                usable(&c, k).await
            }
        ),
    ]
}

/// Responses whose envelope is malformed: the call must end (a typed error, at the latest by
/// its deadline), not wait for ever.
fn malformed_envelope_cases() -> Vec<Case> {
    vec![
        // ----- malformed envelopes -----
        case!(
            "response without result or error",
            Attack::MissingResult("blockchain.block.header"),
            Once,
            |k, s| {
                let c = connect(s, QUICK).await?;
                let got = c.block_header(5).await;
                expect_err("block_header", got, |e| {
                    matches!(e, Error::BadResult(Method::BlockHeader) | Error::Timeout)
                })?;
                usable(&c, k).await
            }
        ),
        case!(
            "response with result and error",
            Attack::ResultAndError("blockchain.block.header"),
            Once,
            |k, s| {
                let c = connect(s, QUICK).await?;
                let got = c.block_header(5).await;
                expect_err("block_header", got, |e| {
                    matches!(e, Error::BadResult(Method::BlockHeader) | Error::Timeout)
                })?;
                usable(&c, k).await
            }
        ),
    ]
}

#[test]
fn every_lie_is_caught() {
    let h = harness();
    let kit = Kit::read(&h);
    run("adv-lies", &h, &kit, cases(&kit));
}

#[test]
fn malformed_envelopes_end_the_call() {
    let h = harness();
    let kit = Kit::read(&h);
    run("adv-envelopes", &h, &kit, malformed_envelope_cases());
}

/// Runs each case against its own proxy; fails listing every case that failed. `threads`
/// names the runtime's threads (their panics are attributed to this run).
fn run(threads: &'static str, h: &Harness, kit: &Kit, cases: Vec<Case>) {
    count_panics();
    let rt = runtime(threads);
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for case in cases {
        let proxy = LyingProxy::start_with(h.addr(), case.attack.clone(), case.times)
            .unwrap_or_else(|e| panic!("{}: proxy: {e}", case.name));
        let server = ServerAddr::new(Transport::Tcp, "127.0.0.1", proxy.addr().port());
        let panics_before = panics_of(threads).len();
        OBSERVED.with_borrow_mut(Vec::clear);
        let started = Instant::now();
        let outcome = rt.block_on(async {
            tokio::time::timeout(HANG, (case.run)(kit, &server))
                .await
                .unwrap_or_else(|_| Err(format!("hung: no outcome after {HANG:?}")))
        });
        let elapsed = started.elapsed();
        let outcome = outcome.and_then(|()| match (&case.attack, proxy.tampered()) {
            (Attack::Honest, 0) => Ok(()),
            (Attack::Honest, n) => Err(format!("the honest proxy tampered {n} times")),
            (_, 0) => Err("the attack never fired".to_owned()),
            _ => Ok(()),
        });
        let panics = panics_of(threads)[panics_before..].to_vec();
        let outcome = if panics.is_empty() {
            outcome
        } else {
            Err(format!("panicked: {panics:?}"))
        };
        let seen = OBSERVED.with_borrow(|o| o.join("; "));
        report.push(format!(
            "{:>5.1}s {:<48} {}",
            elapsed.as_secs_f64(),
            case.name,
            match &outcome {
                Ok(()) if seen.is_empty() => "ok".to_owned(),
                Ok(()) => format!("ok, {seen}"),
                Err(e) => format!("FAILED: {e}"),
            }
        ));
        if let Err(e) = outcome {
            failures.push(format!("{}: {e}", case.name));
        }
        drop(proxy);
    }
    println!("{}", report.join("\n"));
    assert!(
        failures.is_empty(),
        "{} of {} attacks not handled:\n{}",
        failures.len(),
        report.len(),
        failures.join("\n")
    );
}
