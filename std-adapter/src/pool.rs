//! Several servers at once: answers come from the server with the best verified tip, tips and
//! histories are cross-checked, and a server proven to lie is dropped with the reason.
//!
//! Each member has its own [`HeaderChain`], verified from the same anchor, so "best tip" means
//! most cumulative verified work (then lowest latency), never a height a server merely claims.
//! A member is dropped only for a proven fault ([`Error::is_server_fault`]):
//!
//! * it is on another network (wrong genesis) or negotiation fails (it never joins);
//! * its headers break a consensus rule or a checkpoint;
//! * a history or proof from it fails verification (a forged merkle proof, a status that does
//!   not match its own history, an unrelated or duplicated transaction, ...);
//! * it leaves out a confirmed transaction that another member proved, at a height it has
//!   reached (the answer is then the union of the proven histories: which member is fastest
//!   never decides what is true);
//!
//! Timeouts, refusals of optional methods, lag, mempool differences and heights below the
//! anchor are not faults. A member more than [`PoolConfig::max_lag`] blocks behind the best
//! is lagging: kept, it answers only when no better member can, and is not asked to
//! cross-check until it catches up. A member that merely disconnects is failed over (the next
//! best answers) and comes back when its own reconnect succeeds.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use electrum_spv_core::hash::{BlockHash, ScriptHash, Txid};
use electrum_spv_core::header::{Header, Work};
use electrum_spv_core::history::ChainPosition;
use electrum_spv_core::rpc::ProtocolVersion;
use electrum_spv_core::script::{StatusHasher, TxHeight};

use crate::checkpoints::network_params;
use crate::client::{Client, ClientConfig};
use crate::error::Error;
use crate::fault::Fault;
use crate::server::ServerAddr;
use crate::socks5::Credentials;
use crate::verified::{
    HeaderChain, PROOFS_AT_ONCE, RawTxs, ScriptRef, VerifiedHistory, VerifiedTx, VerifiedUtxo,
    status_of, verified_histories, verified_histories_keeping, verified_history, verified_utxos,
};

/// Added to an unreachable member's latency so the others answer first.
const UNREACHABLE_PENALTY: Duration = Duration::from_secs(3600);

/// How a pool behaves.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// How each member connects.
    pub client: ClientConfig,
    /// A member whose verified tip is more than this many blocks behind the best is lagging:
    /// it answers only when no other member can, and does not cross-check (default 2).
    pub max_lag: u32,
    /// A checkpoint file in Electrum's `checkpoints.json` format replacing the network's
    /// compiled-in list ([`crate::checkpoints`]); `None` (the default) keeps the compiled-in
    /// one.
    pub checkpoints_file: Option<PathBuf>,
    /// With a proxy and no [`socks_auth`](crate::ConnectOptions::socks_auth) of the caller's
    /// own: each server gets its own random username/password for the proxy, so over Tor
    /// (`IsolateSOCKSAuth`, on by default) no two servers share a circuit and cannot link our
    /// queries by exit. A server's reconnects reuse its pair. On by default; without a proxy
    /// it has no effect.
    pub isolate_streams: bool,
    /// A header file ([`crate::header_store`]) keeping verified headers between runs: at
    /// connect every member starts from the headers found there (verified again), and the
    /// best member's chain is kept there from then on. `None` (the default): headers are
    /// synced from the latest checkpoint at every connect.
    pub headers_file: Option<PathBuf>,
    /// Called as headers are verified, at connect and at each [`Pool::refresh`]: the server,
    /// the height verified so far and the server's tip height.
    pub progress: Option<SyncProgress>,
}

/// A header-sync progress callback ([`PoolConfig::progress`]): `(server, height, tip)`.
#[derive(Clone)]
pub struct SyncProgress(pub Arc<ProgressFn>);

/// The function a [`SyncProgress`] calls.
pub type ProgressFn = dyn Fn(&ServerAddr, u32, u32) + Send + Sync;

impl std::fmt::Debug for SyncProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncProgress(..)")
    }
}

impl SyncProgress {
    /// The callback for `server`, as the header sync takes it.
    fn for_server<'a>(
        progress: Option<&'a SyncProgress>,
        server: &'a ServerAddr,
    ) -> impl FnMut(u32, u32) + 'a {
        move |height, tip| {
            if let Some(p) = progress {
                (p.0)(server, height, tip);
            }
        }
    }
}

impl PoolConfig {
    /// Defaults over `client`.
    pub fn new(client: ClientConfig) -> PoolConfig {
        PoolConfig {
            client,
            max_lag: 2,
            checkpoints_file: None,
            isolate_streams: true,
            headers_file: None,
            progress: None,
        }
    }
}

/// Why a server was dropped (or never joined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The server.
    pub server: ServerAddr,
    /// Why, in one line.
    pub reason: String,
    /// The proven fault, when it was dropped for one (`None`: it could not join: unreachable,
    /// another network, no common protocol version).
    pub fault: Option<Fault>,
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
    /// The protocol version negotiated when it connected.
    pub protocol: ProtocolVersion,
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
        let params = network_params(config.client.network, config.checkpoints_file.as_deref())?;
        let seed = match &config.headers_file {
            Some(path) => HeaderChain::open_with(params, path)?.clone(),
            None => HeaderChain::after_checkpoints(params),
        };
        let attempts: Vec<_> = servers
            .iter()
            .map(|s| {
                let (server, mut client_config) = (s.clone(), config.client.clone());
                let (chain, progress) = (seed.clone(), config.progress.clone());
                let seeded = config.headers_file.is_some();
                let connect = &mut client_config.connect;
                if config.isolate_streams && connect.proxy.is_some() && connect.socks_auth.is_none()
                {
                    connect.socks_auth = Some(Credentials::random());
                }
                tokio::spawn(async move {
                    let progress = SyncProgress::for_server(progress.as_ref(), &server);
                    let r = join_member(&server, &client_config, chain, seeded, progress).await;
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
                    pool.drop_server(server, &e);
                    last_error = Some(e);
                }
            }
        }
        if pool.members.is_empty() {
            return Err(last_error.unwrap_or(Error::Disconnected));
        }
        if let Some(path) = pool.config.headers_file.clone()
            && let Some(best) = pool.best_index()
        {
            pool.members[best].chain.keep_in(&path)?;
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
                protocol: m.client.protocol_version(),
            })
            .collect()
    }

    /// The best verified tip: most work, then lowest latency.
    pub fn best_tip(&self) -> Option<(u32, BlockHash)> {
        self.best().and_then(Member::tip)
    }

    fn best(&self) -> Option<&Member> {
        self.best_index().map(|i| &self.members[i])
    }

    fn best_index(&self) -> Option<usize> {
        (0..self.members.len()).min_by_key(|&i| rank(&self.members[i]))
    }

    /// Brings every member's verified chain to its server's tip; a member proven to lie on
    /// the way is dropped.
    ///
    /// # Errors
    /// [`Error::Disconnected`] when no member is left.
    pub async fn refresh(&mut self) -> Result<(), Error> {
        let mut keep = Vec::new();
        for mut m in std::mem::take(&mut self.members) {
            let started = Instant::now();
            let progress = SyncProgress::for_server(self.config.progress.as_ref(), &m.server);
            match m.chain.sync(&m.client, progress).await {
                Ok(_) => {
                    m.latency = started.elapsed();
                    keep.push(m);
                }
                Err(e) if e.is_server_fault() => self.drop_server(m.server, &e),
                // Unreachable for now: keep it; its client reconnects by itself.
                Err(_) => keep.push(m),
            }
        }
        self.members = keep;
        if self.members.is_empty() {
            return Err(Error::Disconnected);
        }
        Ok(())
    }

    /// The verified history of `script`, cross-checked across members (see
    /// [`Pool::verified_histories`]).
    ///
    /// # Errors
    /// [`Error::Disconnected`] when no member can answer; the best member's own error when
    /// it is not a proven fault (a timeout, [`Error::Lagging`], ...).
    pub async fn verified_history(&mut self, script: &[u8]) -> Result<VerifiedHistory, Error> {
        let mut one = self.verified_histories(&[script.to_vec()]).await?;
        one.pop().ok_or(Error::Disconnected)
    }

    /// The verified histories of several scripts, in order. The best member answers (all
    /// together, [`verified_histories`]); a member whose answer fails verification is dropped
    /// and the next asked. Then every other member is asked each script's status; one that
    /// differs must prove its own history. A confirmed transaction one member proves and
    /// another leaves out, at a height both have reached, exposes the one that left it out:
    /// it is dropped ([`Fault::Omission`]) and the answer is the union of the proven
    /// histories. Mempool differences are not lies.
    ///
    /// # Errors
    /// As [`Pool::verified_history`].
    pub async fn verified_histories(
        &mut self,
        scripts: &[Vec<u8>],
    ) -> Result<Vec<VerifiedHistory>, Error> {
        let scripts: Vec<ScriptRef<'_>> = scripts.iter().map(|s| ScriptRef::Script(s)).collect();
        self.verified_histories_of(&scripts).await
    }

    /// As [`Pool::verified_histories`], for scripts or only their hashes (below 1.7).
    ///
    /// # Errors
    /// As [`Pool::verified_history`].
    pub async fn verified_histories_of(
        &mut self,
        scripts: &[ScriptRef<'_>],
    ) -> Result<Vec<VerifiedHistory>, Error> {
        let (histories, _) = self.cross_checked(scripts, false).await?;
        Ok(histories)
    }

    /// As [`Pool::verified_histories`], with the raw bytes of every transaction of the
    /// histories ([`RawTxs`]): those the answering member's tracker verified are kept as it
    /// read them, only those a cross-check added are fetched (each hashed to its txid), so a
    /// wallet never fetches a transaction twice. Memory: the transactions' size.
    ///
    /// # Errors
    /// As [`Pool::verified_history`].
    pub async fn verified_histories_keeping(
        &mut self,
        scripts: &[Vec<u8>],
    ) -> Result<(Vec<VerifiedHistory>, RawTxs), Error> {
        let scripts: Vec<ScriptRef<'_>> = scripts.iter().map(|s| ScriptRef::Script(s)).collect();
        let (histories, mut raws) = self.cross_checked(&scripts, true).await?;
        let txids: Vec<Txid> = histories
            .iter()
            .flat_map(|h| h.txs.iter().map(|t| t.txid))
            .collect();
        self.fetch_transactions(&txids, &mut raws).await?;
        Ok((histories, raws))
    }

    /// Adds to `raws` those of `txids` it lacks, fetched from the best member (pipelined,
    /// each hashed to its txid).
    ///
    /// # Errors
    /// [`Error::Disconnected`] with no member; the first transaction's error
    /// ([`Error::Verification`] for bytes that do not hash to their txid).
    pub async fn fetch_transactions(&self, txids: &[Txid], raws: &mut RawTxs) -> Result<(), Error> {
        let mut missing: Vec<Txid> = txids
            .iter()
            .filter(|t| !raws.contains_key(*t))
            .copied()
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let client = self.client().cloned().ok_or(Error::Disconnected)?;
        // In windows the client's table of pending requests holds.
        for chunk in missing.chunks(PROOFS_AT_ONCE) {
            let fetched = client.batch_transaction_get(chunk).await?;
            raws.extend(chunk.iter().copied().zip(fetched));
        }
        Ok(())
    }

    async fn cross_checked(
        &mut self,
        scripts: &[ScriptRef<'_>],
        keep_txs: bool,
    ) -> Result<(Vec<VerifiedHistory>, RawTxs), Error> {
        let (mut answered_by, (mut histories, txs)) =
            self.ask_best(HistoriesOf { scripts, keep_txs }).await?;
        for (script, history) in scripts.iter().zip(histories.iter_mut()) {
            answered_by = self.cross_check(answered_by, *script, history).await;
        }
        Ok((histories, txs))
    }

    /// The verified header at `height` from the best member's chain: held, synced, or (below
    /// the anchor) from the period holding it, verified between its checkpoints.
    ///
    /// # Errors
    /// As [`HeaderChain::header_at`]; a member proven to lie is dropped and the next asked.
    pub async fn header_at(&mut self, height: u32) -> Result<Header, Error> {
        let (_, header) = self.ask_best(HeaderAt(height)).await?;
        Ok(header)
    }

    /// The best member's verified header chain.
    pub fn best_chain(&self) -> Option<&HeaderChain> {
        self.best().map(|m| &m.chain)
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
        let mut tried: Vec<ServerAddr> = Vec::new();
        let mut last = None;
        loop {
            let Some(best) = (0..self.members.len())
                .filter(|&i| !tried.contains(&self.members[i].server))
                .min_by_key(|&i| rank(&self.members[i]))
            else {
                return Err(last.unwrap_or(Error::Disconnected));
            };
            let answer = {
                let m = &mut self.members[best];
                question.ask(&m.client, &mut m.chain).await
            };
            match answer {
                Ok(answer) => return Ok((self.members[best].server.clone(), answer)),
                Err(e) if e.is_server_fault() => {
                    let server = self.members.remove(best).server;
                    self.drop_server(server, &e);
                }
                Err(e) if another_may_answer(&e) => {
                    // Fail over: the next best answers. An unreachable member stays and
                    // reconnects by itself, ranked last until it answers again.
                    let m = &mut self.members[best];
                    if e.is_transport() {
                        m.latency = m.latency.saturating_add(UNREACHABLE_PENALTY);
                    }
                    tried.push(m.server.clone());
                    last = Some(e);
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
                Err(e) if e.is_server_fault() => {
                    let m = self.members.remove(i);
                    self.drop_server(m.server, &e);
                }
                _ => i += 1,
            }
        }
        self.verified_history(script).await
    }

    /// Asks every member but `answered_by` for the script's status; one whose status differs
    /// must prove its own history, which is then compared with `verified` (see
    /// [`Pool::verified_histories`]). `verified` becomes the union of the proven histories.
    /// Returns the member whose history the answer still rests on (`answered_by`, unless it
    /// was shown to leave a transaction out).
    async fn cross_check(
        &mut self,
        mut answered_by: ServerAddr,
        script: ScriptRef<'_>,
        verified: &mut VerifiedHistory,
    ) -> ServerAddr {
        let mut i = 0;
        while i < self.members.len() {
            if self.members[i].server == answered_by || self.is_lagging(&self.members[i]) {
                i += 1;
                continue;
            }
            let status = status_of(&self.members[i].client, script).await;
            if !matches!(status, Ok(s) if s != verified.status) {
                // Same status, or no answer (not a fault).
                i += 1;
                continue;
            }
            let m = &mut self.members[i];
            let own = verified_history(&m.client, &mut m.chain, script).await;
            let theirs = match own {
                Ok(theirs) => theirs,
                Err(e) if e.is_server_fault() => {
                    let m = self.members.remove(i);
                    self.drop_server(m.server, &e);
                    continue;
                }
                Err(_) => {
                    i += 1;
                    continue;
                }
            };
            let their_tip = self.members[i].tip().map_or(0, |(h, _)| h);
            let our_tip = self
                .members
                .iter()
                .find(|m| m.server == answered_by)
                .and_then(Member::tip)
                .map_or(0, |(h, _)| h);
            let hash = script.script_hash();
            if let Some(fault) = omission(hash, verified, &theirs, their_tip) {
                let m = self.members.remove(i);
                self.drop_server(m.server, &fault.into());
                merge(verified, &theirs);
                continue;
            }
            if let Some(fault) = omission(hash, &theirs, verified, our_tip) {
                let at = self.members.iter().position(|m| m.server == answered_by);
                if let Some(at) = at {
                    let m = self.members.remove(at);
                    self.drop_server(m.server, &fault.into());
                    if at < i {
                        i -= 1;
                    }
                }
                merge(verified, &theirs);
                answered_by = self.members[i].server.clone();
            }
            i += 1;
        }
        answered_by
    }

    /// Whether `m`'s verified tip is more than [`PoolConfig::max_lag`] blocks behind the
    /// best: it answers only when no other member can, and is not asked to cross-check.
    fn is_lagging(&self, m: &Member) -> bool {
        let best = self.best_tip().map_or(0, |(h, _)| h);
        m.tip()
            .is_none_or(|(h, _)| h.saturating_add(self.config.max_lag) < best)
    }

    fn drop_server(&mut self, server: ServerAddr, error: &Error) {
        crate::trace::event_warn!(%server, reason = %error, "dropped");
        self.dropped.push(Dropped {
            server,
            reason: error.to_string(),
            fault: match error {
                Error::Verification(f) => Some(f.clone()),
                _ => None,
            },
        });
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
struct HistoriesOf<'s, 'b> {
    scripts: &'s [ScriptRef<'b>],
    /// Keep the verified transactions' bytes.
    keep_txs: bool,
}

impl Question for HistoriesOf<'_, '_> {
    type Answer = (Vec<VerifiedHistory>, RawTxs);
    async fn ask(&self, client: &Client, chain: &mut HeaderChain) -> Result<Self::Answer, Error> {
        let mut txs = RawTxs::new();
        let histories = if self.keep_txs {
            verified_histories_keeping(client, chain, self.scripts, &mut txs).await?
        } else {
            verified_histories(client, chain, self.scripts).await?
        };
        Ok((histories, txs))
    }
}

/// The verified header at a height.
struct HeaderAt(u32);

impl Question for HeaderAt {
    type Answer = Header;
    fn ask<'a>(
        &'a self,
        client: &'a Client,
        chain: &'a mut HeaderChain,
    ) -> impl Future<Output = Result<Header, Error>> + Send + 'a {
        chain.header_at(client, self.0)
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

/// Whether another member may answer what this error kept one from answering: the
/// connection's errors, a server busy or still indexing, lag, a history too large for this
/// server, a method it lacks, an error it answered. Not our own limits or arguments.
fn another_may_answer(e: &Error) -> bool {
    e.is_transport()
        || e.is_transient()
        || matches!(
            e,
            Error::Lagging { .. }
                | Error::HistoryTooLarge(_)
                | Error::NotAvailable(_)
                | Error::Server { .. }
                | Error::ExcessiveUsage(_)
                | Error::BadResult(_)
        )
}

/// Best first: connected, then most work, then lowest latency.
fn rank(m: &Member) -> (bool, std::cmp::Reverse<Work>, Duration) {
    (
        !m.client.is_connected(),
        std::cmp::Reverse(m.chain.chainwork()),
        m.latency,
    )
}

/// Above this many rows Fulcrum answers a history as empty with a null status, by design
/// (its `max_history`, INTEROP.md row 6): that is its limit, not an omission.
pub const FULCRUM_MAX_HISTORY: usize = 125_000;

/// The omission of the first confirmed transaction of `proven` that `other` leaves out at a
/// height up to `other_tip` (which `other`'s server has reached).
fn omission(
    script: ScriptHash,
    proven: &VerifiedHistory,
    other: &VerifiedHistory,
    other_tip: u32,
) -> Option<Fault> {
    if other.txs.is_empty() && other.status.is_none() && proven.txs.len() > FULCRUM_MAX_HISTORY {
        return None;
    }
    let theirs: HashSet<Txid> = other.txs.iter().map(|t| t.txid).collect();
    proven.txs.iter().find_map(|t| match t.height {
        TxHeight::Confirmed(height) if height <= other_tip && !theirs.contains(&t.txid) => {
            Some(Fault::Omission {
                script,
                txid: t.txid,
                height,
            })
        }
        _ => None,
    })
}

/// Adds to `into` what `other` proved and it lacks, keeps chain order, and recomputes the
/// status of the union (in chain order, as a server that indexes blocks in order reports it).
fn merge(into: &mut VerifiedHistory, other: &VerifiedHistory) {
    let have: HashSet<Txid> = into.txs.iter().map(|t| t.txid).collect();
    let added: Vec<VerifiedTx> = other
        .txs
        .iter()
        .filter(|t| !have.contains(&t.txid))
        .cloned()
        .collect();
    if added.is_empty() {
        return;
    }
    into.txs.extend(added);
    // Stable: mempool entries keep their order, ours first.
    into.txs.sort_by_key(|t| match (t.height, t.pos) {
        (TxHeight::Confirmed(height), Some(pos)) => ChainPosition::Confirmed { height, pos },
        _ => ChainPosition::Mempool { index: 0 },
    });
    let mut hasher = StatusHasher::new();
    for t in &into.txs {
        hasher.push(&t.txid, t.height);
    }
    into.status = hasher.finish();
}

async fn join_member(
    server: &ServerAddr,
    config: &ClientConfig,
    mut chain: HeaderChain,
    seeded: bool,
    progress: impl FnMut(u32, u32),
) -> Result<Member, Error> {
    let client = Client::connect(server, config).await?;
    if seeded {
        chain = agreed_start(&client, &chain).await?;
    }
    // The ping goes out with the sync's first request: ElectrumX >= 1.18 holds small replies up
    // to 1 s to pad them (PROTOCOL.md §1.1), so each sequential round trip would cost that.
    let timed_ping = async {
        let started = Instant::now();
        client.ping().await.map(|()| started.elapsed())
    };
    let (latency, synced) = tokio::join!(timed_ping, chain.sync(&client, progress));
    let latency = latency?;
    synced?;
    Ok(Member {
        server: server.clone(),
        client,
        chain,
        latency,
    })
}

/// Where a member whose chain was seeded from the header file starts: the stored headers
/// up to the server's tip (a server behind the file must not look caught up, or a history it
/// cannot have yet would look like an omission), if the server has the same block there;
/// from the checkpoint otherwise (the stored tip was reorganised away: its block would make
/// the server's honest proofs fail).
async fn agreed_start(client: &Client, seeded: &HeaderChain) -> Result<HeaderChain, Error> {
    let (server_tip, _) = client.block_headers_subscribe().await?;
    let Some((stored_tip, _)) = seeded.tip() else {
        return Ok(seeded.clone());
    };
    let height = stored_tip.min(server_tip);
    let ours = seeded.header(height).map(|h| h.block_hash());
    let theirs = Header::from_bytes(&client.block_header(height).await?).block_hash();
    if ours == Some(theirs) {
        seeded.truncated(height)
    } else {
        Ok(HeaderChain::after_checkpoints(seeded.params()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(b: u8, height: Option<u32>, pos: u32) -> VerifiedTx {
        VerifiedTx {
            txid: Txid::from_byte_array([b; 32]),
            height: height.map_or(TxHeight::Mempool, TxHeight::Confirmed),
            block_hash: height.map(|_| BlockHash::from_byte_array([b; 32])),
            pos: height.map(|_| pos),
            block_time: height.map(|_| 1_231_006_505),
        }
    }

    fn history(txs: Vec<VerifiedTx>) -> VerifiedHistory {
        let mut hasher = StatusHasher::new();
        for t in &txs {
            hasher.push(&t.txid, t.height);
        }
        VerifiedHistory {
            status: hasher.finish(),
            txs,
        }
    }

    const S: ScriptHash = ScriptHash::from_byte_array([7; 32]);

    #[test]
    fn an_omission_counts_only_at_heights_the_other_reached_and_not_in_the_mempool() {
        let full = history(vec![tx(1, Some(10), 0), tx(2, Some(12), 3), tx(3, None, 0)]);
        let short = history(vec![tx(1, Some(10), 0)]);
        assert_eq!(
            omission(S, &full, &short, 12),
            Some(Fault::Omission {
                script: S,
                txid: Txid::from_byte_array([2; 32]),
                height: 12
            })
        );
        // Block 12 is above the other's tip: lag, not omission; the mempool never counts.
        assert_eq!(omission(S, &full, &short, 11), None);
        assert_eq!(omission(S, &short, &full, 12), None);
    }

    #[test]
    fn fulcrums_empty_answer_above_its_limit_is_not_an_omission() {
        let huge = history(
            (0..=FULCRUM_MAX_HISTORY)
                .map(|i| VerifiedTx {
                    txid: Txid::from_byte_array({
                        let mut b = [0u8; 32];
                        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
                        b
                    }),
                    height: TxHeight::Confirmed(1),
                    block_hash: None,
                    pos: Some(i as u32),
                    block_time: None,
                })
                .collect(),
        );
        let empty = history(Vec::new());
        assert_eq!(omission(S, &huge, &empty, 5), None);
        let small = history(huge.txs[..3].to_vec());
        assert_eq!(omission(S, &small, &empty, 5).map(|_| ()), Some(()));
    }

    #[test]
    fn the_union_is_in_chain_order_with_a_recomputed_status() {
        let mut ours = history(vec![tx(1, Some(10), 5), tx(3, None, 0)]);
        let theirs = history(vec![tx(2, Some(10), 1), tx(1, Some(10), 5)]);
        merge(&mut ours, &theirs);
        let order: Vec<u8> = ours.txs.iter().map(|t| t.txid.as_byte_array()[0]).collect();
        assert_eq!(order, [2, 1, 3]);
        assert_eq!(ours.status, history(ours.txs.clone()).status);
    }
}
