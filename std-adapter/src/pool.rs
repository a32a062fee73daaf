//! Several servers at once: answers come from the server with the best verified tip, tips and
//! statuses are cross-checked, and a server caught lying is dropped with the reason.
//!
//! Each member has its own [`HeaderChain`], verified from the same anchor, so "best tip" means
//! most cumulative verified work (then lowest latency), never a height a server merely claims.
//! A member is dropped when:
//!
//! * it is on another network (wrong genesis) or negotiation fails;
//! * its headers break a consensus rule;
//! * a verified history from it fails: a forged merkle proof, a status that does not match its
//!   own history, a history in non-canonical order;
//! * its verified tip is more than [`PoolConfig::max_lag`] blocks behind the best (stale).
//!
//! A member that merely disconnects is failed over (the next best answers) and comes back when
//! its own reconnect succeeds.

use std::time::{Duration, Instant};

use electrum_spv_core::hash::{BlockHash, Status};
use electrum_spv_core::header::Work;

use crate::client::{Client, ClientConfig};
use crate::error::Error;
use crate::server::ServerAddr;
use crate::verified::{
    HeaderChain, ScriptRef, VerifiedHistory, VerifiedUtxo, verified_histories, verified_history,
    verified_utxos,
};

/// Added to an unreachable member's latency so the others answer first.
const UNREACHABLE_PENALTY: Duration = Duration::from_secs(3600);

/// How a pool behaves.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// How each member connects.
    pub client: ClientConfig,
    /// A member whose verified tip is more than this many blocks behind the best is dropped as
    /// stale (default 2).
    pub max_lag: u32,
}

impl PoolConfig {
    /// Defaults over `client`.
    pub fn new(client: ClientConfig) -> PoolConfig {
        PoolConfig { client, max_lag: 2 }
    }
}

/// Why a server was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The server.
    pub server: ServerAddr,
    /// Why, in one line.
    pub reason: String,
}

/// A connected member.
#[derive(Debug)]
struct Member {
    server: ServerAddr,
    client: Client,
    chain: HeaderChain,
    latency: Duration,
}

impl Member {
    fn tip(&self) -> Option<(u32, BlockHash)> {
        self.chain.tip()
    }
}

/// What the pool knows of a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The server.
    pub server: ServerAddr,
    /// Its verified tip.
    pub tip: Option<(u32, BlockHash)>,
    /// Cumulative verified work.
    pub work: Work,
    /// Round-trip time of its last ping.
    pub latency: Duration,
}

/// A pool of servers. See the [module documentation](self).
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    members: Vec<Member>,
    dropped: Vec<Dropped>,
}

impl Pool {
    /// Connects to every server (concurrently) and verifies each one's headers. Servers that
    /// fail are reported in [`Pool::dropped`]; it is an error only if none is left.
    ///
    /// # Errors
    /// When no server could be used: the last server's own error (so a single server's
    /// certificate mismatch or wrong network is reported as such), or [`Error::Disconnected`].
    pub async fn connect(servers: &[ServerAddr], config: PoolConfig) -> Result<Pool, Error> {
        let attempts: Vec<_> = servers
            .iter()
            .map(|s| {
                let (server, client_config) = (s.clone(), config.client.clone());
                tokio::spawn(async move {
                    let r = join_member(&server, &client_config).await;
                    (server, r)
                })
            })
            .collect();
        let mut pool = Pool {
            config,
            members: Vec::new(),
            dropped: Vec::new(),
        };
        let mut last_error = None;
        for a in attempts {
            let (server, r) = a.await.map_err(|e| Error::Io(std::io::Error::other(e)))?;
            match r {
                Ok(m) => pool.members.push(m),
                Err(e) => {
                    pool.drop_server(server, e.to_string());
                    last_error = Some(e);
                }
            }
        }
        pool.drop_stale();
        if pool.members.is_empty() {
            return Err(last_error.unwrap_or(Error::Disconnected));
        }
        Ok(pool)
    }

    /// Servers dropped so far, with the reason.
    pub fn dropped(&self) -> &[Dropped] {
        &self.dropped
    }

    /// The members, best first.
    pub fn members(&self) -> Vec<MemberStatus> {
        let mut order: Vec<&Member> = self.members.iter().collect();
        order.sort_by_key(|m| rank(m));
        order
            .into_iter()
            .map(|m| MemberStatus {
                server: m.server.clone(),
                tip: m.tip(),
                work: m.chain.chainwork(),
                latency: m.latency,
            })
            .collect()
    }

    /// The best verified tip: most work, then lowest latency.
    pub fn best_tip(&self) -> Option<(u32, BlockHash)> {
        self.best().and_then(Member::tip)
    }

    fn best(&self) -> Option<&Member> {
        self.members.iter().min_by_key(|m| rank(m))
    }

    /// Brings every member's verified chain to its server's tip, then drops stale members.
    ///
    /// # Errors
    /// [`Error::Disconnected`] when no member is left.
    pub async fn refresh(&mut self) -> Result<(), Error> {
        let mut keep = Vec::new();
        for mut m in std::mem::take(&mut self.members) {
            let started = Instant::now();
            match m.chain.sync(&m.client, |_, _| {}).await {
                Ok(_) => {
                    m.latency = started.elapsed();
                    keep.push(m);
                }
                Err(e @ Error::Verification(_)) => {
                    self.drop_server(m.server, format!("invalid headers: {e}"));
                }
                // Unreachable for now: keep it; its client reconnects by itself.
                Err(_) => keep.push(m),
            }
        }
        self.members = keep;
        self.drop_stale();
        if self.members.is_empty() {
            return Err(Error::Disconnected);
        }
        Ok(())
    }

    /// The verified history of `script` from the best member, cross-checked: every other
    /// member at the same tip must report the same status, and a member that disagrees must
    /// prove its own history or be dropped. A member that fails verification is dropped and
    /// the next best answers.
    ///
    /// # Errors
    /// [`Error::Disconnected`] when no member can answer; [`Error::Verification`] when honest
    /// members at the same tip disagree (the history changed while asking: try again).
    pub async fn verified_history(&mut self, script: &[u8]) -> Result<VerifiedHistory, Error> {
        let mut one = self.verified_histories(&[script.to_vec()]).await?;
        one.pop().ok_or(Error::Disconnected)
    }

    /// The verified histories of several scripts, in order: as [`Pool::verified_history`] for
    /// each, asked of the best member all together ([`verified_histories`]), then each status
    /// cross-checked.
    ///
    /// # Errors
    /// As [`Pool::verified_history`].
    pub async fn verified_histories(
        &mut self,
        scripts: &[Vec<u8>],
    ) -> Result<Vec<VerifiedHistory>, Error> {
        let (server, histories) = self.ask_best(HistoriesOf(scripts)).await?;
        for (script, history) in scripts.iter().zip(&histories) {
            self.cross_check(&server, script, history.status).await;
        }
        Ok(histories)
    }

    /// The verified unspent outputs of `script` (see [`verified_utxos`]) from the best member,
    /// failing over and dropping members as [`Pool::verified_history`] does.
    ///
    /// # Errors
    /// As [`Pool::verified_history`].
    pub async fn verified_utxos(&mut self, script: &[u8]) -> Result<Vec<VerifiedUtxo>, Error> {
        let (_, utxos) = self.ask_best(UtxosOf(script)).await?;
        Ok(utxos)
    }

    /// The fee rate (BTC per kvB) for confirmation within `blocks`: the median of the members'
    /// estimates (fees cannot be proven, so no single server decides). `None` when no member
    /// has an estimate.
    ///
    /// # Errors
    /// [`Error::Disconnected`] when no member answers.
    pub async fn estimate_fee(&self, blocks: u32) -> Result<Option<f64>, Error> {
        let asks: Vec<_> = self
            .members
            .iter()
            .map(|m| {
                let c = m.client.clone();
                tokio::spawn(async move { c.estimate_fee(blocks).await })
            })
            .collect();
        let mut rates = Vec::new();
        let mut answered = false;
        for ask in asks {
            if let Ok(Ok(rate)) = ask.await {
                answered = true;
                rates.extend(rate.filter(|r| r.is_finite() && *r > 0.0));
            }
        }
        if !answered {
            return Err(Error::Disconnected);
        }
        rates.sort_by(f64::total_cmp);
        Ok(rates.get(rates.len() / 2).copied())
    }

    /// Asks the best member; a member whose answer fails verification is dropped and the next
    /// best asked; an unreachable one is ranked last and the next asked. Returns who answered.
    async fn ask_best<Q: Question>(
        &mut self,
        question: Q,
    ) -> Result<(ServerAddr, Q::Answer), Error> {
        let mut unreachable = 0;
        loop {
            let Some(best) = self.best_index() else {
                return Err(Error::Disconnected);
            };
            let answer = {
                let m = &mut self.members[best];
                question.ask(&m.client, &mut m.chain).await
            };
            match answer {
                Ok(answer) => return Ok((self.members[best].server.clone(), answer)),
                Err(e @ Error::Verification(_)) => {
                    let server = self.members.remove(best).server;
                    self.drop_server(server, e.to_string());
                }
                Err(e) if is_transport(&e) => {
                    // Fail over: the next best answers; this member stays and reconnects by
                    // itself, ranked last until it answers again.
                    unreachable += 1;
                    if unreachable >= self.members.len() {
                        return Err(e);
                    }
                    let m = &mut self.members[best];
                    m.latency = m.latency.saturating_add(UNREACHABLE_PENALTY);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// An audit: verifies the script's history with every member, drops each one whose
    /// proofs, status or order fail (with the reason), then answers as
    /// [`Pool::verified_history`].
    ///
    /// # Errors
    /// As [`Pool::verified_history`].
    pub async fn audit(&mut self, script: &[u8]) -> Result<VerifiedHistory, Error> {
        let mut i = 0;
        while i < self.members.len() {
            let m = &mut self.members[i];
            match verified_history(&m.client, &mut m.chain, ScriptRef::Script(script)).await {
                Err(e @ Error::Verification(_)) => {
                    let m = self.members.remove(i);
                    self.drop_server(m.server, e.to_string());
                }
                _ => i += 1,
            }
        }
        self.verified_history(script).await
    }

    /// Asks every other member at the same tip as `verified_by` for the script's status; a
    /// member whose status differs from the verified one must prove its own history, or is
    /// dropped.
    async fn cross_check(
        &mut self,
        verified_by: &ServerAddr,
        script: &[u8],
        verified: Option<Status>,
    ) {
        let tip = self
            .members
            .iter()
            .find(|m| m.server == *verified_by)
            .and_then(Member::tip);
        let mut i = 0;
        while i < self.members.len() {
            if self.members[i].server == *verified_by || self.members[i].tip() != tip {
                i += 1;
                continue;
            }
            let status = self.members[i].client.script_subscribe(script).await;
            if matches!(status, Ok(s) if s != verified) {
                let m = &mut self.members[i];
                let own =
                    verified_history(&m.client, &mut m.chain, ScriptRef::Script(script)).await;
                if let Err(e) = own {
                    let m = self.members.remove(i);
                    self.drop_server(
                        m.server,
                        format!(
                            "its status disagrees with the verified one and its history fails: {e}"
                        ),
                    );
                    continue;
                }
            }
            i += 1;
        }
    }

    fn best_index(&self) -> Option<usize> {
        (0..self.members.len()).min_by_key(|&i| rank(&self.members[i]))
    }

    fn drop_stale(&mut self) {
        let Some(best) = self.best_tip() else { return };
        let max_lag = self.config.max_lag;
        let (keep, stale): (Vec<_>, Vec<_>) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(|m| m.tip().is_some_and(|(h, _)| h + max_lag >= best.0));
        self.members = keep;
        for m in stale {
            let behind = m.tip().map_or(best.0, |(h, _)| best.0 - h.min(best.0));
            self.drop_server(
                m.server,
                format!("stale tip: {behind} blocks behind the best verified tip"),
            );
        }
    }

    fn drop_server(&mut self, server: ServerAddr, reason: String) {
        self.dropped.push(Dropped { server, reason });
    }

    /// Every member's client, best first (for listening to all their notifications).
    pub fn clients(&self) -> Vec<Client> {
        let mut order: Vec<&Member> = self.members.iter().collect();
        order.sort_by_key(|m| rank(m));
        order.into_iter().map(|m| m.client.clone()).collect()
    }

    /// The client of the best member, for calls that need no cross-checking.
    pub fn client(&self) -> Option<&Client> {
        self.best().map(|m| &m.client)
    }
}

/// What a member answers from its own verified chain. (A trait rather than an async closure:
/// the futures of async closures over borrowed arguments are not provably `Send`.)
trait Question {
    type Answer;
    fn ask<'a>(
        &'a self,
        client: &'a Client,
        chain: &'a mut HeaderChain,
    ) -> impl Future<Output = Result<Self::Answer, Error>> + Send + 'a;
}

/// Several scripts' verified histories.
struct HistoriesOf<'s>(&'s [Vec<u8>]);

impl Question for HistoriesOf<'_> {
    type Answer = Vec<VerifiedHistory>;
    async fn ask<'a>(
        &'a self,
        client: &'a Client,
        chain: &'a mut HeaderChain,
    ) -> Result<Vec<VerifiedHistory>, Error> {
        let scripts: Vec<ScriptRef<'_>> = self.0.iter().map(|s| ScriptRef::Script(s)).collect();
        verified_histories(client, chain, &scripts).await
    }
}

/// A script's verified unspent outputs.
struct UtxosOf<'s>(&'s [u8]);

impl Question for UtxosOf<'_> {
    type Answer = Vec<VerifiedUtxo>;
    fn ask<'a>(
        &'a self,
        client: &'a Client,
        chain: &'a mut HeaderChain,
    ) -> impl Future<Output = Result<Vec<VerifiedUtxo>, Error>> + Send + 'a {
        verified_utxos(client, chain, self.0)
    }
}

/// Best first: connected, then most work, then lowest latency.
fn rank(m: &Member) -> (bool, std::cmp::Reverse<Work>, Duration) {
    (
        !m.client.is_connected(),
        std::cmp::Reverse(m.chain.chainwork()),
        m.latency,
    )
}

fn is_transport(e: &Error) -> bool {
    matches!(
        e,
        Error::Io(_) | Error::Disconnected | Error::Timeout | Error::ConnectTimeout | Error::Closed
    )
}

async fn join_member(server: &ServerAddr, config: &ClientConfig) -> Result<Member, Error> {
    let client = Client::connect(server, config).await?;
    let started = Instant::now();
    client.ping().await?;
    let latency = started.elapsed();
    let mut chain = HeaderChain::from_latest_checkpoint(config.network);
    chain.sync(&client, |_, _| {}).await.map_err(|e| match e {
        Error::Verification(why) => Error::Verification(format!("invalid headers: {why}")),
        other => other,
    })?;
    Ok(Member {
        server: server.clone(),
        client,
        chain,
        latency,
    })
}
