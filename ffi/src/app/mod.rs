//! The app API (uniffi: Kotlin, Swift, Python), over the tokio adapter `electrum-spv`.
//!
//! One [`ElectrumClient`] holds a pool of servers (one or many), each with its own header
//! chain verified from the network's latest checkpoint. Everything it returns is verified
//! where it can be: histories (status recomputed, every confirmed transaction's merkle proof
//! checked against a verified header), unspent outputs (values read from the funding
//! transactions, hashed to their txids), transactions (hashed to the txid asked for),
//! broadcasts (the returned txid compared with the computed one). Tips are the most-work
//! verified chain; fees the median of the servers' estimates.
//!
//! `broadcast_via_peers` needs no Electrum server: it sends a transaction over the Bitcoin
//! P2P network and reports which other nodes announced it back.
//!
//! Doc comments of exported items are written as plain sentences (no rustdoc headings or
//! links): uniffi copies them into the Kotlin, Swift and Python sources.
//!
//! Calls are `async` (Kotlin `suspend`, Swift `async`, Python `asyncio`) and run on a tokio
//! runtime owned by the library. Calls on one client are served one at a time, in order
//! (each already pipelines its own requests).

mod error;
mod p2p;
mod subscription;
mod types;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use electrum_spv::address::address_script;
use electrum_spv::core::hash::Txid;
use electrum_spv::{
    ClientConfig, ConnectOptions, Filter, Pool, PoolConfig, ServerAddr, ServerList, SyncProgress,
    TlsTrust,
};
use tokio::sync::Mutex;

pub use error::ElectrumError;
pub use p2p::{P2pBroadcastReport, broadcast_via_peers};
pub use subscription::{Subscription, WalletListener};
pub use types::{
    Balance, ClientSettings, DroppedServer, History, HistoryTx, Network, ReceivedOutput,
    ServerStatus, SpentOutput, Tip, TxState, Utxo,
};

/// Told how far header verification has come while headers download.
#[uniffi::export(with_foreign)]
pub trait HeaderSyncListener: Send + Sync {
    /// `server`'s headers are verified up to `height` of its tip `tip`. Called from a library
    /// thread; return quickly.
    fn on_progress(&self, server: String, height: u32, tip: u32);
}

/// A verifying Electrum client over one or more servers.
#[derive(uniffi::Object)]
pub struct ElectrumClient {
    network: electrum_spv::Network,
    pool: Arc<Mutex<Pool>>,
}

#[uniffi::export(async_runtime = "tokio")]
impl ElectrumClient {
    /// Connects to every server of `settings` (or the bundled list), verifies each one's
    /// headers from the latest checkpoint, and keeps those that pass. Servers that fail are
    /// listed by `dropped_servers`.
    ///
    /// Fails with `InvalidArgument` for a malformed server, pin, CA file or proxy; `Connection` (or
    /// the last server's own error) when no server could be used.
    #[uniffi::constructor]
    pub async fn connect(settings: ClientSettings) -> Result<Arc<ElectrumClient>, ElectrumError> {
        ElectrumClient::open(settings, None).await
    }

    /// As `connect`, telling `listener` how far each server's headers are verified while they
    /// download (at connect, and at every later `tip`).
    ///
    /// Fails as `connect` does.
    #[uniffi::constructor]
    pub async fn connect_with_progress(
        settings: ClientSettings,
        listener: Arc<dyn HeaderSyncListener>,
    ) -> Result<Arc<ElectrumClient>, ElectrumError> {
        let progress = SyncProgress(Arc::new(move |server: &ServerAddr, height, tip| {
            listener.on_progress(server.to_string(), height, tip);
        }));
        ElectrumClient::open(settings, Some(progress)).await
    }

    /// The most-work verified tip across the servers (headers fetched and verified up to
    /// each server's tip first).
    ///
    /// Fails with `Connection` when no server is left.
    pub async fn tip(&self) -> Result<Tip, ElectrumError> {
        let mut pool = self.pool.lock().await;
        pool.refresh().await?;
        best_tip(&pool)
    }

    /// The verified history of `address`, cross-checked with the other servers at the same
    /// tip.
    ///
    /// Fails with `InvalidArgument` for an address of another network; `Verification` when no
    /// server could prove its answer; transport errors.
    pub async fn history(&self, address: String) -> Result<History, ElectrumError> {
        let script = address_script(&address, self.network)?;
        self.one_history(script).await
    }

    /// The verified history of an output script that may have no address (a P2PK coin, a
    /// bare multisig): as `history`.
    ///
    /// Fails as `history` does (`InvalidArgument` for an empty script).
    pub async fn script_history(&self, script: Vec<u8>) -> Result<History, ElectrumError> {
        if script.is_empty() {
            return Err(ElectrumError::InvalidArgument {
                detail: "empty script".into(),
            });
        }
        self.one_history(script).await
    }

    /// The verified histories of several addresses, in order: as `history` for each, asked
    /// all together (much faster than one after another).
    ///
    /// Fails as `history` does, for the first address that fails.
    pub async fn histories(&self, addresses: Vec<String>) -> Result<Vec<History>, ElectrumError> {
        let scripts = addresses
            .iter()
            .map(|a| address_script(a, self.network))
            .collect::<Result<Vec<_>, _>>()?;
        histories_of(&self.pool, &scripts).await
    }

    /// The verified unspent outputs of `address`.
    ///
    /// Fails as `history` does.
    pub async fn utxos(&self, address: String) -> Result<Vec<Utxo>, ElectrumError> {
        let script = address_script(&address, self.network)?;
        let utxos = self.pool.lock().await.verified_utxos(&script).await?;
        Ok(utxos.iter().map(Utxo::from).collect())
    }

    /// The balance of `address`: the sum of its verified unspent outputs.
    ///
    /// Fails as `history` does.
    pub async fn balance(&self, address: String) -> Result<Balance, ElectrumError> {
        let script = address_script(&address, self.network)?;
        let utxos = self.pool.lock().await.verified_utxos(&script).await?;
        Ok(Balance::of(&utxos))
    }

    /// The raw transaction `txid` (display hex), checked to hash to `txid`.
    ///
    /// Fails with `InvalidArgument` for a malformed txid; `Verification` when the bytes do not hash
    /// to it; `Server` when the server does not know it.
    pub async fn transaction(&self, txid: String) -> Result<Vec<u8>, ElectrumError> {
        let txid = parse_txid(&txid)?;
        let client = self.best_client().await?;
        Ok(client.transaction_get(&txid).await?)
    }

    /// Broadcasts a raw transaction; returns its txid (display hex), computed locally and
    /// compared with the server's answer.
    ///
    /// Fails with `Server` with the node's reason when it is rejected; `Verification` when the
    /// server answers another txid; `Connection` when the connection dropped before the answer (the
    /// transaction may or may not have been relayed).
    pub async fn broadcast(&self, raw_tx: Vec<u8>) -> Result<String, ElectrumError> {
        let client = self.best_client().await?;
        Ok(client.transaction_broadcast(&raw_tx).await?.to_string())
    }

    /// The fee rate in satoshis per virtual byte for confirmation within `target_blocks`: the
    /// median of the servers' estimates. `None` when no server has an estimate.
    ///
    /// Fails with `Connection` when no server answers.
    pub async fn fee_rate(&self, target_blocks: u32) -> Result<Option<f64>, ElectrumError> {
        let pool = self.pool.lock().await;
        // Electrum answers in BTC per 1000 vbytes.
        Ok(pool
            .estimate_fee(target_blocks)
            .await?
            .map(|btc_per_kvb| btc_per_kvb * 100_000_000.0 / 1_000.0))
    }

    /// Watches `addresses`: `listener` gets each one's verified history now and again
    /// whenever it changes, and every new verified tip. Keep the returned subscription; it
    /// stops when cancelled or dropped.
    ///
    /// Fails with `InvalidArgument` for an address of another network; the errors of the first
    /// `history` of each address.
    pub async fn subscribe(
        &self,
        addresses: Vec<String>,
        listener: Arc<dyn WalletListener>,
    ) -> Result<Arc<Subscription>, ElectrumError> {
        let scripts = addresses
            .into_iter()
            .map(|a| address_script(&a, self.network).map(|s| (a, s)))
            .collect::<Result<Vec<_>, _>>()?;
        subscription::start(self.pool.clone(), scripts, listener).await
    }

    /// The servers in use, best first.
    pub async fn servers(&self) -> Vec<ServerStatus> {
        let pool = self.pool.lock().await;
        pool.members().iter().map(ServerStatus::from).collect()
    }

    /// The servers dropped so far, with the reason.
    pub async fn dropped_servers(&self) -> Vec<DroppedServer> {
        let pool = self.pool.lock().await;
        pool.dropped()
            .iter()
            .map(|d| DroppedServer {
                server: d.server.to_string(),
                reason: d.reason.clone(),
            })
            .collect()
    }
}

impl ElectrumClient {
    async fn open(
        settings: ClientSettings,
        progress: Option<SyncProgress>,
    ) -> Result<Arc<ElectrumClient>, ElectrumError> {
        let network = electrum_spv::Network::from(settings.network);
        let servers = servers(&settings, network)?;
        let mut client = ClientConfig::new(network);
        client.connect = ConnectOptions {
            proxy: settings.proxy.clone(),
            tls: trust(&settings)?,
            ..ConnectOptions::default()
        };
        client.request_timeout = Duration::from_secs(u64::from(settings.request_timeout_secs));
        let mut config = PoolConfig::new(client);
        config.max_lag = settings.max_lag;
        config.checkpoints_file = settings.checkpoints_file.as_ref().map(Into::into);
        config.headers_file = settings.headers_file.as_ref().map(Into::into);
        config.progress = progress;
        let pool = Pool::connect(&servers, config).await?;
        Ok(Arc::new(ElectrumClient {
            network,
            pool: Arc::new(Mutex::new(pool)),
        }))
    }

    async fn one_history(&self, script: Vec<u8>) -> Result<History, ElectrumError> {
        let mut one = histories_of(&self.pool, &[script]).await?;
        one.pop().ok_or(ElectrumError::Connection {
            detail: "no server left".into(),
        })
    }

    async fn best_client(&self) -> Result<electrum_spv::Client, ElectrumError> {
        let pool = self.pool.lock().await;
        pool.client().cloned().ok_or(ElectrumError::Connection {
            detail: "no server left".into(),
        })
    }
}

/// The output script of `address` on `network`, for apps that build transactions.
///
/// Fails with `InvalidArgument` when it is not an address of `network`.
#[uniffi::export]
pub fn address_to_script(address: String, network: Network) -> Result<Vec<u8>, ElectrumError> {
    Ok(address_script(&address, network.into())?)
}

/// The Electrum script hash (display hex) of an output script.
#[uniffi::export]
pub fn script_hash(script: Vec<u8>) -> String {
    electrum_spv::core::script_hash(&script).to_string()
}

/// The verified histories of `scripts`, each transaction's effect on its script read from the
/// transactions the verification itself fetched (none is fetched twice).
async fn histories_of(
    pool: &Mutex<Pool>,
    scripts: &[Vec<u8>],
) -> Result<Vec<History>, ElectrumError> {
    let (histories, raws) = pool
        .lock()
        .await
        .verified_histories_keeping(scripts)
        .await?;
    scripts
        .iter()
        .zip(&histories)
        .map(|(script, history)| History::of(script, history, &raws))
        .collect()
}

pub(crate) fn best_tip(pool: &Pool) -> Result<Tip, ElectrumError> {
    let (height, hash) = pool.best_tip().ok_or(ElectrumError::Connection {
        detail: "no server has a verified tip".into(),
    })?;
    Ok(Tip {
        height,
        hash: hash.to_string(),
    })
}

fn servers(
    settings: &ClientSettings,
    network: electrum_spv::Network,
) -> Result<Vec<ServerAddr>, ElectrumError> {
    if settings.servers.is_empty() {
        let list = match &settings.server_list_file {
            Some(path) => ServerList::load(std::path::Path::new(path))?,
            None => ServerList::bundled(),
        };
        let filter = Filter {
            ssl_only: true,
            onion: settings.proxy.is_some(),
            ..Filter::default()
        };
        let listed: Vec<ServerAddr> = list
            .servers(network, filter)
            .iter()
            .filter_map(|e| e.preferred())
            .collect();
        if listed.is_empty() {
            return Err(ElectrumError::InvalidArgument {
                detail: format!("no servers given and none listed for {}", network.name()),
            });
        }
        return Ok(listed);
    }
    settings
        .servers
        .iter()
        .map(|s| {
            ServerAddr::from_str(s).map_err(|e| ElectrumError::InvalidArgument {
                detail: format!("server {s}: {}", e.0),
            })
        })
        .collect()
}

fn trust(settings: &ClientSettings) -> Result<TlsTrust, ElectrumError> {
    Ok(match (&settings.tls_pin, &settings.tls_ca_file) {
        (Some(pin), _) => TlsTrust::pin(pin)?,
        (None, Some(ca)) => TlsTrust::ca_file(std::path::Path::new(ca))?,
        (None, None) => TlsTrust::WebPki,
    })
}

fn parse_txid(text: &str) -> Result<Txid, ElectrumError> {
    Txid::from_display_hex(text.as_bytes()).map_err(|e| ElectrumError::InvalidArgument {
        detail: format!("txid {text}: {e}"),
    })
}
