//! The records and enums apps see: hashes as display hex (as block explorers show them),
//! amounts in satoshis.

use electrum_spv::activity::{TxActivity, activity};
use electrum_spv::core::script::TxHeight;
use electrum_spv::verified::RawTxs;
use electrum_spv::{MemberStatus, VerifiedHistory, VerifiedTx, VerifiedUtxo};

use super::ElectrumError;

/// The Bitcoin network the servers must be on (checked against each server's genesis hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Network {
    /// Bitcoin mainnet.
    Mainnet,
    /// Testnet3.
    Testnet,
    /// Testnet4 (BIP94).
    Testnet4,
    /// The default signet.
    Signet,
    /// A local regtest chain.
    Regtest,
}

impl From<Network> for electrum_spv::Network {
    fn from(n: Network) -> Self {
        match n {
            Network::Mainnet => electrum_spv::Network::Mainnet,
            Network::Testnet => electrum_spv::Network::Testnet3,
            Network::Testnet4 => electrum_spv::Network::Testnet4,
            Network::Signet => electrum_spv::Network::Signet,
            Network::Regtest => electrum_spv::Network::Regtest,
        }
    }
}

/// How to connect. Only `network` is required; the rest has defaults.
#[derive(Clone, Debug, uniffi::Record)]
pub struct ClientSettings {
    /// The network the servers must be on.
    pub network: Network,
    /// Servers as `ssl://host:port` or `tcp://host:port`; all are connected and
    /// cross-checked. Empty: those of `server_list_file`, else the bundled list of `network`
    /// (TLS servers only, `.onion` ones too when a proxy is set).
    #[uniffi(default)]
    pub servers: Vec<String>,
    /// A server list file (JSON, the CLI's format: `{"mainnet": [{"host", "tcp", "ssl"}]}`),
    /// used when `servers` is empty instead of the bundled list.
    #[uniffi(default = None)]
    pub server_list_file: Option<String>,
    /// Accept exactly the TLS certificate with this SHA-256 fingerprint (64 hex digits, of the
    /// certificate's DER); otherwise web PKI roots (or `tls_ca_file`).
    #[uniffi(default = None)]
    pub tls_pin: Option<String>,
    /// A PEM file of CA certificates to trust instead of the web PKI roots.
    #[uniffi(default = None)]
    pub tls_ca_file: Option<String>,
    /// A SOCKS5 proxy `host:port` (Tor: `127.0.0.1:9050`); names are resolved by the proxy.
    /// Needed for `.onion` servers.
    #[uniffi(default = None)]
    pub proxy: Option<String>,
    /// Deadline of each request, in seconds.
    #[uniffi(default = 30)]
    pub request_timeout_secs: u32,
    /// A server whose verified tip is more than this many blocks behind the best is lagging:
    /// kept, it answers only when no other server can.
    #[uniffi(default = 2)]
    pub max_lag: u32,
    /// A checkpoint file in Electrum's `checkpoints.json` format (a list of `[hash, target]`,
    /// entry i for block 2016i+2015) replacing the network's compiled-in checkpoints.
    #[uniffi(default = None)]
    pub checkpoints_file: Option<String>,
    /// A file keeping verified headers between launches (created if missing): at connect the
    /// headers found there are verified again and only newer ones are downloaded. `None`:
    /// headers are downloaded from the latest checkpoint at every connect.
    #[uniffi(default = None)]
    pub headers_file: Option<String>,
}

/// A verified chain tip.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Tip {
    /// Height.
    pub height: u32,
    /// Block hash (display hex).
    pub hash: String,
}

/// Where a transaction of a history stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum TxState {
    /// In a block, proven into the verified header at its height.
    Confirmed,
    /// In the mempool, spending only confirmed outputs.
    Mempool,
    /// In the mempool, spending an output of another mempool transaction.
    MempoolUnconfirmedParent,
}

/// A transaction of a verified history, with what it does to the address (read from the
/// transaction's own bytes, hashed to its txid).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct HistoryTx {
    /// Transaction id (display hex).
    pub txid: String,
    /// Confirmation state.
    pub state: TxState,
    /// Block height; 0 unless confirmed.
    pub height: u32,
    /// The verified block it is proven into (display hex), when confirmed.
    pub block_hash: Option<String>,
    /// The time field of that block's verified header (seconds since 1970, as the miner set
    /// it), when confirmed.
    pub block_time: Option<u32>,
    /// Its position in the block, fixed by the merkle proof, when confirmed.
    pub position: Option<u32>,
    /// Its outputs paying the address.
    pub received: Vec<ReceivedOutput>,
    /// The address's outputs it spends.
    pub spent: Vec<SpentOutput>,
    /// Satoshis received minus satoshis spent by the address (negative for a payment out).
    pub net: i64,
}

/// An output of a transaction paying the address.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ReceivedOutput {
    /// Its index in the transaction (the outpoint is the transaction's txid and this).
    pub vout: u32,
    /// Satoshis.
    pub value: u64,
}

/// An output of the address a transaction spends.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SpentOutput {
    /// The transaction that paid it (display hex; also in the history).
    pub txid: String,
    /// Its index there.
    pub vout: u32,
    /// Satoshis.
    pub value: u64,
}

/// An address's history: its status recomputed from it, every confirmed entry proven.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct History {
    /// The Electrum status (hex), `None` for an address without transactions.
    pub status: Option<String>,
    /// Transactions in chain order: confirmed by height, then position in the block (a
    /// parent before its child), then the mempool in the server's order.
    pub txs: Vec<HistoryTx>,
}

/// An unspent output whose value was read from its funding transaction (fetched and hashed to
/// its txid) and whose confirmation is proven. That it is still unspent is the server's word.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Utxo {
    /// Funding transaction (display hex).
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Value in satoshis.
    pub value: u64,
    /// Confirmed height, 0 in the mempool.
    pub height: u32,
    /// The verified block it is proven into (display hex), when confirmed.
    pub block_hash: Option<String>,
    /// The time field of that block's verified header (seconds since 1970), when confirmed.
    pub block_time: Option<u32>,
}

/// The sum of an address's verified unspent outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Balance {
    /// Satoshis in confirmed outputs.
    pub confirmed: u64,
    /// Satoshis in mempool outputs.
    pub unconfirmed: u64,
}

/// A server of the pool.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ServerStatus {
    /// `ssl://host:port` or `tcp://host:port`.
    pub server: String,
    /// Its verified tip height, if it has one.
    pub height: Option<u32>,
    /// Round-trip time of its last check, in milliseconds.
    pub latency_ms: u64,
    /// The Electrum protocol version negotiated with it (`1.4` to `1.7`, e.g. `1.4.2`).
    pub protocol: String,
}

/// A server the pool stopped using, and why: proven to lie (invalid headers, a forged proof,
/// a wrong status, a transaction left out that another server proved), or it could not be
/// used when connecting (unreachable, another network).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DroppedServer {
    /// The server.
    pub server: String,
    /// Why, in one line.
    pub reason: String,
}

impl HistoryTx {
    fn of(t: &VerifiedTx, activity: &TxActivity) -> Self {
        let (state, height) = match t.height {
            TxHeight::Confirmed(h) => (TxState::Confirmed, h),
            TxHeight::Mempool => (TxState::Mempool, 0),
            TxHeight::MempoolUnconfirmedParent => (TxState::MempoolUnconfirmedParent, 0),
        };
        HistoryTx {
            txid: t.txid.to_string(),
            state,
            height,
            block_hash: t.block_hash.map(|h| h.to_string()),
            block_time: t.block_time,
            position: t.pos,
            received: activity
                .received
                .iter()
                .map(|r| ReceivedOutput {
                    vout: r.vout,
                    value: r.value,
                })
                .collect(),
            spent: activity
                .spent
                .iter()
                .map(|s| SpentOutput {
                    txid: s.txid.to_string(),
                    vout: s.vout,
                    value: s.value,
                })
                .collect(),
            net: activity.net(),
        }
    }
}

impl History {
    /// `history` of `script`, each transaction's effect read from `raws` (which must hold
    /// every transaction of it).
    pub(crate) fn of(
        script: &[u8],
        history: &VerifiedHistory,
        raws: &RawTxs,
    ) -> Result<History, ElectrumError> {
        let activity = activity(script, history, raws)?;
        Ok(History {
            status: history.status.map(|s| s.to_string()),
            txs: history
                .txs
                .iter()
                .zip(&activity)
                .map(|(t, a)| HistoryTx::of(t, a))
                .collect(),
        })
    }
}

impl From<&VerifiedUtxo> for Utxo {
    fn from(u: &VerifiedUtxo) -> Self {
        Utxo {
            txid: u.txid.to_string(),
            vout: u.vout,
            value: u.value,
            height: u.height,
            block_hash: u.block_hash.map(|h| h.to_string()),
            block_time: u.block_time,
        }
    }
}

impl From<&MemberStatus> for ServerStatus {
    fn from(m: &MemberStatus) -> Self {
        ServerStatus {
            server: m.server.to_string(),
            height: m.tip.map(|(h, _)| h),
            latency_ms: u64::try_from(m.latency.as_millis()).unwrap_or(u64::MAX),
            protocol: m.protocol.to_string(),
        }
    }
}

impl Balance {
    /// Sums `utxos` by confirmation.
    pub(crate) fn of(utxos: &[VerifiedUtxo]) -> Balance {
        let (confirmed, unconfirmed) = utxos.iter().fold((0u64, 0u64), |(c, u), o| {
            if o.height > 0 {
                (c.saturating_add(o.value), u)
            } else {
                (c, u.saturating_add(o.value))
            }
        });
        Balance {
            confirmed,
            unconfirmed,
        }
    }
}
