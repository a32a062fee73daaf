//! The async client handle. Method names follow rust-electrum-client's `ElectrumApi` so users
//! can switch; results are this crate's types, and methods that can check what the server says
//! (raw transactions, broadcasts) do before they return.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use electrum_spv_core::chain::{Network, Params};
use electrum_spv_core::hash::{MerkleNode, ScriptHash, Status, Txid};
use electrum_spv_core::rpc::{Method, ProtocolVersion, VersionRange};
use electrum_spv_core::session::response::{self, Balance, HistoryItem, Utxo};
use electrum_spv_core::session::{Config, FatalError, Request};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::connection::{
    self, Call, Endpoint, Limits, Links, Notice, OwnedRequest, Reply, ScriptOp,
};
use crate::error::Error;
use crate::fault::Fault;
use crate::reconnect::ReconnectPolicy;
use crate::server::ServerAddr;
use crate::transport::{self, ConnectOptions};

/// Default bound on calls waiting for a slot on the connection (beyond the 64 in flight).
pub const DEFAULT_MAX_QUEUED: usize = 4096;
/// Default notifications buffered per subscriber before it is told it lagged.
pub const DEFAULT_NOTICE_CAPACITY: usize = 1024;
/// Default bound on scripts subscribed on one connection.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 20_000;

/// How a [`Client`] connects and behaves.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The network the server must be on (checked against its genesis hash).
    pub network: Network,
    /// Protocol versions asked for (default 1.4 to 1.6; 1.7 opt-in).
    pub versions: VersionRange,
    /// Transport options: proxy, TLS trust, connect timeout.
    pub connect: ConnectOptions,
    /// Deadline of every request.
    pub request_timeout: Duration,
    /// Keep-alive: a `server.ping` after this long without sending.
    pub ping_interval: Duration,
    /// Calls allowed to wait for a slot on the connection; more fail with
    /// [`Error::TooManyPending`].
    pub max_queued: usize,
    /// Notifications buffered per subscriber.
    pub notice_capacity: usize,
    /// Scripts subscribed at once; more fail with [`Error::TooManySubscriptions`].
    pub max_subscriptions: usize,
    /// Reconnect after a lost connection (`None`: fail every call instead).
    pub reconnect: Option<ReconnectPolicy>,
    /// Name sent in `server.version` (no `/x.y` suffix: PROTOCOL.md §2.4).
    pub client_name: &'static str,
}

impl ClientConfig {
    /// Defaults for `network`.
    pub fn new(network: Network) -> ClientConfig {
        ClientConfig {
            network,
            versions: VersionRange::DEFAULT,
            connect: ConnectOptions::default(),
            request_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(240),
            max_queued: DEFAULT_MAX_QUEUED,
            notice_capacity: DEFAULT_NOTICE_CAPACITY,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            reconnect: Some(ReconnectPolicy::default()),
            client_name: "electrum-spv",
        }
    }

    fn session_config(&self) -> Config {
        let mut c = Config::new(self.params());
        c.client_name = self.client_name;
        c.versions = self.versions;
        c.request_timeout = self.request_timeout.into();
        c.ping_interval = self.ping_interval.into();
        c
    }

    /// The network's consensus parameters.
    pub fn params(&self) -> &'static Params {
        self.network.params()
    }
}

/// A connection to one server. Cheap to clone; the connection closes when the last clone is
/// dropped (after the calls in flight end).
#[derive(Clone, Debug)]
pub struct Client {
    calls: mpsc::Sender<Call>,
    connected: Arc<AtomicBool>,
    notices: broadcast::Sender<Notice>,
    version: ProtocolVersion,
    server: ServerAddr,
}

/// A merkle proof as the server sent it, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleProof {
    /// Height of the block the server used.
    pub block_height: u32,
    /// Position of the transaction in the block.
    pub pos: u32,
    /// Sibling hashes, deepest first.
    pub branch: Vec<MerkleNode>,
}

impl Client {
    /// Connects, negotiates the protocol version and checks the server's network.
    ///
    /// A server that refuses the `[min, max]` version range (electrs 0.8 to 0.9.13: INTEROP
    /// row 1) is connected to once more, asking for the range's lowest version as a plain
    /// string; reconnections then ask the same way. A server without `server.features`
    /// (esplora) has its network checked by the hash of header 0 instead (in the session).
    ///
    /// # Errors
    /// Transport errors ([`Error::Io`], [`Error::ConnectTimeout`], TLS and proxy errors) and
    /// [`Error::Session`] when negotiation fails (wrong network, no common version).
    pub async fn connect(server: &ServerAddr, config: &ClientConfig) -> Result<Client, Error> {
        let session_config = config.session_config();
        match Client::connect_with(server, config, session_config).await {
            Err(Error::Session(FatalError::VersionRefused { .. }))
                if !session_config.plain_version =>
            {
                crate::trace::event_info!(%server, "plain version: a version range refused, asking \"1.4\"");
                let plain = Config {
                    plain_version: true,
                    ..session_config
                };
                Client::connect_with(server, config, plain).await
            }
            other => other,
        }
    }

    async fn connect_with(
        server: &ServerAddr,
        config: &ClientConfig,
        session_config: Config,
    ) -> Result<Client, Error> {
        let stream = transport::connect(server, &config.connect).await?;
        let session = connection::new_session(session_config);
        let endpoint = Endpoint {
            server: server.clone(),
            options: config.connect.clone(),
            config: session_config,
            policy: config.reconnect,
        };
        let (calls, calls_rx) = mpsc::channel(256);
        let (notices, _) = broadcast::channel(config.notice_capacity.max(1));
        let (ready_tx, ready) = oneshot::channel();
        let limits = Limits {
            max_queued: config.max_queued,
            max_subscriptions: config.max_subscriptions,
        };
        let connected = Arc::new(AtomicBool::new(true));
        tokio::spawn(connection::run(
            stream,
            session,
            endpoint,
            Links {
                calls: calls_rx,
                notices: notices.clone(),
                ready: ready_tx,
                connected: connected.clone(),
                limits,
            },
        ));
        let version = tokio::time::timeout(config.connect.connect_timeout, ready)
            .await
            .map_err(|_| Error::ConnectTimeout)?
            .map_err(|_| Error::Disconnected)??;
        crate::trace::event_info!(%server, %version, "connected");
        Ok(Client {
            calls,
            connected,
            notices,
            version,
            server: server.clone(),
        })
    }

    /// Whether the connection is up now (false while reconnecting or after it gave up).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// The server this client talks to.
    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    /// Every notification from now on (headers, script statuses, outpoints), as a stream. A
    /// subscriber that falls more than the configured capacity behind gets one `Err` with the
    /// number of notices it missed, then continues.
    pub fn notifications(&self) -> impl Stream<Item = Result<Notice, u64>> + Send + 'static {
        BroadcastStream::new(self.notices.subscribe()).map(|r| {
            r.map_err(|tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)| n)
        })
    }

    // ----- raw calls -----

    /// Sends a request and returns a handle to await its raw `result` JSON: calls sent one
    /// after another are pipelined on the connection.
    fn send(&self, request: OwnedRequest) -> Pending {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .calls
            .try_send(Call::new(request, Reply::Caller(reply)));
        Pending {
            rx,
            refused: sent.err().map(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::TooManyPending,
                mpsc::error::TrySendError::Closed(_) => Error::Closed,
            }),
        }
    }

    async fn call(&self, request: OwnedRequest) -> Result<Vec<u8>, Error> {
        let (reply, rx) = oneshot::channel();
        self.calls
            .send(Call::new(request, Reply::Caller(reply)))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Disconnected)?
    }

    async fn plain(&self, request: Request<'static>) -> Result<Vec<u8>, Error> {
        self.call(OwnedRequest::Plain(request)).await
    }

    /// The raw JSON `result` of any request without borrowed arguments.
    ///
    /// # Errors
    /// As every call: transport, server and timeout errors.
    pub async fn raw_call(&self, request: Request<'static>) -> Result<Vec<u8>, Error> {
        self.plain(request).await
    }

    // ----- server -----

    /// `server.features` as JSON (the genesis hash has already been checked).
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`] if it is not JSON.
    pub async fn server_features(&self) -> Result<serde_json::Value, Error> {
        let raw = self.plain(Request::Features).await?;
        serde_json::from_slice(&raw).map_err(|_| Error::BadResult(Method::ServerFeatures))
    }

    /// `server.banner`.
    ///
    /// # Errors
    /// As every call.
    pub async fn server_banner(&self) -> Result<String, Error> {
        let raw = self.plain(Request::Banner).await?;
        serde_json::from_slice(&raw).map_err(|_| Error::BadResult(Method::ServerBanner))
    }

    /// `server.peers.subscribe`: the peers the server knows, as JSON.
    ///
    /// # Errors
    /// As every call.
    pub async fn server_peers(&self) -> Result<serde_json::Value, Error> {
        let raw = self.plain(Request::PeersSubscribe).await?;
        serde_json::from_slice(&raw).map_err(|_| Error::BadResult(Method::ServerPeersSubscribe))
    }

    /// `server.ping`.
    ///
    /// # Errors
    /// As every call.
    pub async fn ping(&self) -> Result<(), Error> {
        self.plain(Request::Ping { pong_len: 0 }).await.map(drop)
    }

    // ----- headers -----

    /// `blockchain.block.header`: the raw 80-byte header at `height`.
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn block_header(&self, height: u32) -> Result<[u8; 80], Error> {
        let raw = self
            .plain(Request::BlockHeader {
                height,
                cp_height: 0,
            })
            .await?;
        response::block_header(&raw).map_err(|_| Error::BadResult(Method::BlockHeader))
    }

    /// `blockchain.block.headers`: up to `count` (at most 2016) headers from `start_height`.
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn block_headers(
        &self,
        start_height: u32,
        count: u32,
    ) -> Result<Vec<[u8; 80]>, Error> {
        let raw = self
            .plain(Request::BlockHeaders {
                start_height,
                count,
                cp_height: 0,
            })
            .await?;
        let bad = || Error::BadResult(Method::BlockHeaders);
        let chunk = response::block_headers(&raw).map_err(|_| bad())?;
        if chunk.count > count {
            return Err(bad());
        }
        chunk.headers().map(|h| h.map_err(|_| bad())).collect()
    }

    /// `blockchain.headers.subscribe`: the server's tip now (`height`, header); later tips
    /// arrive as [`Notice::Header`] on [`Client::notifications`].
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn block_headers_subscribe(&self) -> Result<(u32, [u8; 80]), Error> {
        let raw = self.plain(Request::HeadersSubscribe).await?;
        response::headers_subscribe(&raw).map_err(|_| Error::BadResult(Method::HeadersSubscribe))
    }

    // ----- fees -----

    /// `blockchain.estimatefee`: BTC/kvB to confirm within `blocks`; `None` when the server has
    /// no estimate.
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn estimate_fee(&self, blocks: u32) -> Result<Option<f64>, Error> {
        let raw = self
            .plain(Request::EstimateFee { blocks, mode: None })
            .await?;
        response::fee_rate(&raw).map_err(|_| Error::BadResult(Method::EstimateFee))
    }

    /// `blockchain.relayfee` (below 1.6) or `mempool.get_info`'s `minrelaytxfee` (1.6+), BTC/kvB.
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn relay_fee(&self) -> Result<f64, Error> {
        if self.version >= ProtocolVersion::V1_6 {
            let info = self.plain(Request::MempoolInfo).await?;
            let v: serde_json::Value = serde_json::from_slice(&info)
                .map_err(|_| Error::BadResult(Method::MempoolGetInfo))?;
            return v["minrelaytxfee"]
                .as_f64()
                .ok_or(Error::BadResult(Method::MempoolGetInfo));
        }
        let raw = self.plain(Request::RelayFee).await?;
        response::fee_rate(&raw)
            .ok()
            .flatten()
            .ok_or(Error::BadResult(Method::RelayFee))
    }

    // ----- scripts -----

    /// History of the script with output script `script` (confirmed, then mempool).
    ///
    /// Pipelined with other calls; an answer longer than a
    /// [`MAX_LINE`](crate::connection::MAX_LINE) line is asked again streamed row by row, so a
    /// history of any length is accepted (ElectrumX and electrs send 100,000 rows as one
    /// ~10 MB line).
    ///
    /// # Errors
    /// As every call; [`Error::HistoryTooLarge`]; [`Error::BadResult`].
    pub async fn script_get_history(&self, script: &[u8]) -> Result<Vec<HistoryItem>, Error> {
        self.history_call(OwnedRequest::Script(ScriptOp::History, script.to_vec()))
            .await
    }

    async fn history_call(&self, request: OwnedRequest) -> Result<Vec<HistoryItem>, Error> {
        let (reply, rx) = oneshot::channel();
        self.calls
            .send(Call::new(request, Reply::History(reply)))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Disconnected)?
    }

    /// Histories of several scripts, requests pipelined on the connection.
    ///
    /// # Errors
    /// The first error of any of them.
    pub async fn batch_script_get_history(
        &self,
        scripts: &[&[u8]],
    ) -> Result<Vec<Vec<HistoryItem>>, Error> {
        self.batch(
            scripts
                .iter()
                .map(|s| OwnedRequest::Script(ScriptOp::History, s.to_vec())),
        )
        .await?
        .iter()
        .map(|raw| history(raw, Method::ScriptGetHistory))
        .collect()
    }

    /// Balances of several scripts, pipelined.
    ///
    /// # Errors
    /// The first error of any of them.
    pub async fn batch_script_get_balance(&self, scripts: &[&[u8]]) -> Result<Vec<Balance>, Error> {
        let bad = || Error::BadResult(Method::ScriptGetBalance);
        self.batch(
            scripts
                .iter()
                .map(|s| OwnedRequest::Script(ScriptOp::Balance, s.to_vec())),
        )
        .await?
        .iter()
        .map(|raw| response::balance(raw).map_err(|_| bad()))
        .collect()
    }

    /// Unspent outputs of several scripts, pipelined.
    ///
    /// # Errors
    /// The first error of any of them.
    pub async fn batch_script_list_unspent(
        &self,
        scripts: &[&[u8]],
    ) -> Result<Vec<Vec<Utxo>>, Error> {
        let bad = || Error::BadResult(Method::ScriptListUnspent);
        self.batch(
            scripts
                .iter()
                .map(|s| OwnedRequest::Script(ScriptOp::ListUnspent, s.to_vec())),
        )
        .await?
        .iter()
        .map(|raw| {
            response::utxos(raw)
                .map_err(|_| bad())?
                .map(|u| u.map_err(|_| bad()))
                .collect()
        })
        .collect()
    }

    /// Headers at several heights, pipelined.
    ///
    /// # Errors
    /// The first error of any of them.
    pub async fn batch_block_header(&self, heights: &[u32]) -> Result<Vec<[u8; 80]>, Error> {
        let bad = || Error::BadResult(Method::BlockHeader);
        self.batch(heights.iter().map(|&height| {
            OwnedRequest::Plain(Request::BlockHeader {
                height,
                cp_height: 0,
            })
        }))
        .await?
        .iter()
        .map(|raw| response::block_header(raw).map_err(|_| bad()))
        .collect()
    }

    /// Several raw transactions, pipelined, each checked to hash to its txid.
    ///
    /// # Errors
    /// The first error of any of them; [`Error::Verification`] for a wrong transaction.
    pub async fn batch_transaction_get(&self, txids: &[Txid]) -> Result<Vec<Vec<u8>>, Error> {
        let raws = self
            .batch(
                txids
                    .iter()
                    .map(|t| OwnedRequest::Plain(Request::TransactionGet(*t))),
            )
            .await?;
        txids
            .iter()
            .zip(raws)
            .map(|(txid, raw)| checked_transaction(txid, &raw))
            .collect()
    }

    /// Fee estimates for several targets, pipelined.
    ///
    /// # Errors
    /// The first error of any of them.
    pub async fn batch_estimate_fee(&self, targets: &[u32]) -> Result<Vec<Option<f64>>, Error> {
        let bad = || Error::BadResult(Method::EstimateFee);
        self.batch(
            targets
                .iter()
                .map(|&blocks| OwnedRequest::Plain(Request::EstimateFee { blocks, mode: None })),
        )
        .await?
        .iter()
        .map(|raw| response::fee_rate(raw).map_err(|_| bad()))
        .collect()
    }

    /// Sends every request at once, then collects the raw results in order.
    async fn batch(
        &self,
        requests: impl Iterator<Item = OwnedRequest>,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let pending: Vec<Pending> = requests.map(|r| self.send(r)).collect();
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(p.wait().await?);
        }
        Ok(out)
    }

    /// Mempool transactions of the script.
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn script_get_mempool(&self, script: &[u8]) -> Result<Vec<HistoryItem>, Error> {
        let raw = self.script(ScriptOp::Mempool, script).await?;
        history(&raw, Method::ScriptGetMempool)
    }

    /// Unspent outputs of the script.
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn script_list_unspent(&self, script: &[u8]) -> Result<Vec<Utxo>, Error> {
        let raw = self.script(ScriptOp::ListUnspent, script).await?;
        let bad = || Error::BadResult(Method::ScriptListUnspent);
        response::utxos(&raw)
            .map_err(|_| bad())?
            .map(|u| u.map_err(|_| bad()))
            .collect()
    }

    /// Confirmed and unconfirmed balance of the script (what the server says).
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn script_get_balance(&self, script: &[u8]) -> Result<Balance, Error> {
        let raw = self.script(ScriptOp::Balance, script).await?;
        response::balance(&raw).map_err(|_| Error::BadResult(Method::ScriptGetBalance))
    }

    /// Subscribes to the script: its status now (`None`: no history); changes arrive as
    /// [`Notice::ScriptStatus`] on [`Client::notifications`].
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn script_subscribe(&self, script: &[u8]) -> Result<Option<Status>, Error> {
        let raw = self.script(ScriptOp::Subscribe, script).await?;
        response::subscribe_status(&raw).map_err(|_| Error::BadResult(Method::ScriptSubscribe))
    }

    /// Ends a script subscription; `true` if the server had one.
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn script_unsubscribe(&self, script: &[u8]) -> Result<bool, Error> {
        let raw = self.script(ScriptOp::Unsubscribe, script).await?;
        serde_json::from_slice(&raw).map_err(|_| Error::BadResult(Method::ScriptUnsubscribe))
    }

    /// Subscribes by script hash (below 1.7, where servers take hashes).
    ///
    /// # Errors
    /// As every call; [`Error::NotAvailable`] at 1.7.
    pub async fn scripthash_subscribe(&self, hash: &ScriptHash) -> Result<Option<Status>, Error> {
        let raw = self.plain(Request::ScriptHashSubscribe(*hash)).await?;
        response::subscribe_status(&raw).map_err(|_| Error::BadResult(Method::ScriptSubscribe))
    }

    /// History by script hash (below 1.7); streamed like [`Client::script_get_history`].
    ///
    /// # Errors
    /// As every call; [`Error::NotAvailable`] at 1.7.
    pub async fn scripthash_get_history(
        &self,
        hash: &ScriptHash,
    ) -> Result<Vec<HistoryItem>, Error> {
        self.history_call(OwnedRequest::Plain(Request::ScriptHashGetHistory(*hash)))
            .await
    }

    async fn script(&self, op: ScriptOp, script: &[u8]) -> Result<Vec<u8>, Error> {
        self.call(OwnedRequest::Script(op, script.to_vec())).await
    }

    // ----- transactions -----

    /// `blockchain.transaction.get`: the raw transaction, checked to hash to `txid`.
    ///
    /// # Errors
    /// As every call; [`Error::Verification`] if the bytes are another transaction.
    pub async fn transaction_get(&self, txid: &Txid) -> Result<Vec<u8>, Error> {
        let raw = self.plain(Request::TransactionGet(*txid)).await?;
        checked_transaction(txid, &raw)
    }

    /// `blockchain.transaction.get_merkle`: the proof that `txid` is in the block at `height`
    /// (unverified here: check it against a verified header).
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn transaction_get_merkle(
        &self,
        txid: &Txid,
        height: u32,
    ) -> Result<MerkleProof, Error> {
        let raw = self
            .plain(Request::TransactionGetMerkle {
                txid: *txid,
                height,
            })
            .await?;
        let bad = || Error::BadResult(Method::TransactionGetMerkle);
        let proof = response::merkle_proof(&raw).map_err(|_| bad())?;
        Ok(MerkleProof {
            block_height: proof.block_height,
            pos: proof.pos,
            branch: proof
                .branch
                .iter()
                .collect::<Result<_, _>>()
                .map_err(|_| bad())?,
        })
    }

    /// `blockchain.transaction.id_from_pos(height, pos, false)`: the txid at position `pos` of
    /// the block at `height`, as the server says (unverified: prove it with
    /// [`Client::transaction_get_merkle`]). `merkle=false` is sent explicitly and the object
    /// answer `{"tx_hash": …}` accepted, as electrs <= 0.11.1 needs (INTEROP row 11).
    ///
    /// # Errors
    /// As every call; [`Error::BadResult`].
    pub async fn transaction_id_from_pos(&self, height: u32, pos: u32) -> Result<Txid, Error> {
        let raw = self
            .plain(Request::TransactionIdFromPos {
                height,
                pos,
                merkle: false,
            })
            .await?;
        response::txid(&raw).map_err(|_| Error::BadResult(Method::TransactionIdFromPos))
    }

    /// `blockchain.transaction.broadcast`: returns the txid, checked against the one computed
    /// from `raw_tx` (servers may answer a warning instead of a txid).
    ///
    /// # Errors
    /// As every call; [`Error::Verification`] when the server answers another txid,
    /// [`Error::UnknownBroadcastOutcome`] when its answer is not a txid.
    pub async fn transaction_broadcast(&self, raw_tx: &[u8]) -> Result<Txid, Error> {
        let ours = electrum_spv_core::txid(raw_tx)
            .map_err(|e| Error::InvalidArgument(format!("not a transaction: {e:?}")))?;
        let raw = self.call(OwnedRequest::Broadcast(raw_tx.to_vec())).await?;
        match response::broadcast_txid(&raw) {
            Ok(theirs) if theirs == ours => Ok(ours),
            Ok(theirs) => Err(Fault::BroadcastTxid {
                sent: ours,
                answered: theirs,
            }
            .into()),
            Err(_) => Err(Error::UnknownBroadcastOutcome(
                String::from_utf8_lossy(&raw[..raw.len().min(200)]).into_owned(),
            )),
        }
    }

    /// `blockchain.transaction.broadcast_package` (1.6+ servers with package relay): the
    /// server's JSON answer.
    ///
    /// # Errors
    /// As every call; [`Error::NotAvailable`] at versions without the method.
    pub async fn transaction_broadcast_package(
        &self,
        raw_txs: &[&[u8]],
    ) -> Result<serde_json::Value, Error> {
        self.package(raw_txs, false).await
    }

    /// `blockchain.transaction.testmempoolaccept` (1.7): the server's JSON answer.
    ///
    /// # Errors
    /// As every call; [`Error::NotAvailable`] below 1.7.
    pub async fn transaction_test_mempool_accept(
        &self,
        raw_txs: &[&[u8]],
    ) -> Result<serde_json::Value, Error> {
        self.package(raw_txs, true).await
    }

    async fn package(
        &self,
        raw_txs: &[&[u8]],
        test_only: bool,
    ) -> Result<serde_json::Value, Error> {
        let method = if test_only {
            Method::TransactionTestMempoolAccept
        } else {
            Method::TransactionBroadcastPackage
        };
        let txs = raw_txs.iter().map(|t| t.to_vec()).collect();
        let raw = self.call(OwnedRequest::Package { txs, test_only }).await?;
        serde_json::from_slice(&raw).map_err(|_| Error::BadResult(method))
    }

    /// The script hash Electrum uses for `script`.
    pub fn script_hash(script: &[u8]) -> ScriptHash {
        electrum_spv_core::script_hash(script)
    }
}

/// A call sent and not yet answered.
struct Pending {
    rx: oneshot::Receiver<Result<Vec<u8>, Error>>,
    refused: Option<Error>,
}

impl Pending {
    async fn wait(self) -> Result<Vec<u8>, Error> {
        if let Some(e) = self.refused {
            return Err(e);
        }
        self.rx.await.map_err(|_| Error::Disconnected)?
    }
}

/// The transaction in a `transaction.get` result, checked to hash to `txid`.
fn checked_transaction(txid: &Txid, raw: &[u8]) -> Result<Vec<u8>, Error> {
    let bad = || Error::BadResult(Method::TransactionGet);
    let hex = response::transaction_hex(raw).map_err(|_| bad())?;
    let mut tx = vec![0u8; hex.len() / 2];
    electrum_spv_core::hex::decode_to_slice(hex, &mut tx).map_err(|_| bad())?;
    let got =
        electrum_spv_core::txid(&tx).map_err(|error| Fault::MalformedTx { txid: *txid, error })?;
    if got != *txid {
        return Err(Fault::TxidMismatch { asked: *txid, got }.into());
    }
    Ok(tx)
}

/// The rows of a buffered `get_history`/`get_mempool` result.
pub(crate) fn history(raw: &[u8], method: Method) -> Result<Vec<HistoryItem>, Error> {
    let bad = || Error::BadResult(method);
    response::history(raw)
        .map_err(|_| bad())?
        .map(|i| i.map_err(|_| bad()))
        .collect()
}
