//! Typed requests for every client method of protocol 1.4 to 1.7, and their encoding.

use core::fmt;

use crate::hash::{ScriptHash, Txid, sha256};
use crate::json::writer::{EncodeError, RequestWriter};
use crate::rpc::{Method, ProtocolVersion};

/// The most headers one `blockchain.block.headers` request may ask for. Servers clamp to this,
/// and ElectrumX charges by the requested count *before* clamping (PROTOCOL.md §1.5).
pub const MAX_HEADERS_PER_REQUEST: u32 = 2016;

/// Fee estimation mode for `blockchain.estimatefee` (1.6+; ignored by older servers' clients).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FeeMode {
    /// `CONSERVATIVE`.
    Conservative,
    /// `ECONOMICAL`.
    Economical,
}

/// A request, with its arguments. Script requests take the scriptPubKey itself: below 1.7 the
/// session sends its script hash, from 1.7 the script (PROTOCOL.md §4.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Request<'a> {
    /// `server.features`.
    Features,
    /// `server.banner`.
    Banner,
    /// `server.donation_address`.
    DonationAddress,
    /// `server.peers.subscribe`.
    PeersSubscribe,
    /// `server.ping`; from 1.7 asks for `pong_len` bytes back.
    Ping {
        /// 1.7 only: length of the returned padding.
        pong_len: u32,
    },
    /// `blockchain.headers.subscribe`.
    HeadersSubscribe,
    /// `blockchain.block.header(height, cp_height)`; `cp_height` 0 asks for no proof.
    BlockHeader {
        /// Height of the header.
        height: u32,
        /// Checkpoint height for the proof, or 0.
        cp_height: u32,
    },
    /// `blockchain.block.headers(start_height, count, cp_height)`.
    BlockHeaders {
        /// First height.
        start_height: u32,
        /// How many, at most [`MAX_HEADERS_PER_REQUEST`].
        count: u32,
        /// Checkpoint height for the proof of the last header, or 0.
        cp_height: u32,
    },
    /// `blockchain.estimatefee(number, mode)`.
    EstimateFee {
        /// Confirmation target in blocks.
        blocks: u32,
        /// Mode, sent only from 1.6.
        mode: Option<FeeMode>,
    },
    /// `blockchain.relayfee` (below 1.6).
    RelayFee,
    /// `get_balance` of a script.
    ScriptGetBalance(&'a [u8]),
    /// `get_history` of a script.
    ScriptGetHistory(&'a [u8]),
    /// `get_mempool` of a script.
    ScriptGetMempool(&'a [u8]),
    /// `listunspent` of a script.
    ScriptListUnspent(&'a [u8]),
    /// `subscribe` to a script's status.
    ScriptSubscribe(&'a [u8]),
    /// `unsubscribe` from a script.
    ScriptUnsubscribe(&'a [u8]),
    /// `blockchain.scripthash.get_history` by script hash (below 1.7 only: from 1.7 servers
    /// need the script itself).
    ScriptHashGetHistory(ScriptHash),
    /// `blockchain.scripthash.subscribe` by script hash (below 1.7 only).
    ScriptHashSubscribe(ScriptHash),
    /// `blockchain.outpoint.subscribe(tx_hash, txout_idx, spk_hint)` (1.7).
    OutpointSubscribe {
        /// Funding transaction.
        txid: Txid,
        /// Output index.
        vout: u32,
        /// scriptPubKey of the output (mandatory in 1.7).
        script_pubkey: &'a [u8],
    },
    /// `blockchain.outpoint.get_status` (1.7).
    OutpointGetStatus {
        /// Funding transaction.
        txid: Txid,
        /// Output index.
        vout: u32,
        /// scriptPubKey of the output.
        script_pubkey: &'a [u8],
    },
    /// `blockchain.outpoint.unsubscribe` (1.7).
    OutpointUnsubscribe {
        /// Funding transaction.
        txid: Txid,
        /// Output index.
        vout: u32,
    },
    /// `blockchain.transaction.broadcast(raw_tx)`: the raw transaction bytes.
    Broadcast(&'a [u8]),
    /// `blockchain.transaction.broadcast_package(raw_txs)` (1.6): parents first.
    BroadcastPackage(&'a [&'a [u8]]),
    /// `blockchain.transaction.testmempoolaccept(raw_txs)` (1.7).
    TestMempoolAccept(&'a [&'a [u8]]),
    /// `blockchain.transaction.get(tx_hash)` (raw form; the verbose form is unverifiable).
    TransactionGet(Txid),
    /// `blockchain.transaction.get_merkle(tx_hash, height)`.
    TransactionGetMerkle {
        /// The transaction.
        txid: Txid,
        /// Height of its block.
        height: u32,
    },
    /// `blockchain.transaction.id_from_pos(height, tx_pos, merkle)`; `merkle` is always sent,
    /// also when false (electrs <= 0.11.1 requires it).
    TransactionIdFromPos {
        /// Block height.
        height: u32,
        /// Position in the block.
        pos: u32,
        /// Also return the merkle branch.
        merkle: bool,
    },
    /// `mempool.get_fee_histogram`.
    FeeHistogram,
    /// `mempool.get_info` (1.6).
    MempoolInfo,
    /// `mempool.recent` (1.7).
    MempoolRecent,
}

/// Why a request was not sent. The session is unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RequestError {
    /// Version negotiation has not finished (wait for [`Event::Ready`](crate::session::Event)).
    NotReady,
    /// The session has failed or closed.
    Closed,
    /// The negotiated version does not have this method.
    NotAvailable {
        /// The method asked for.
        method: Method,
        /// The negotiated version.
        version: ProtocolVersion,
    },
    /// An argument is out of range (e.g. more than 2016 headers).
    InvalidArgument,
    /// The pending table is full: wait for responses.
    TooManyInFlight,
    /// A streamed request is in flight (or, for a streamed request, any request is).
    Busy,
    /// The outgoing buffer cannot hold the request now: transmit first, or it can never fit.
    OutputFull(EncodeError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NotReady => f.write_str("protocol version not negotiated yet"),
            RequestError::Closed => f.write_str("session closed"),
            RequestError::NotAvailable { method, version } => {
                write!(f, "{method} is not available at protocol {version}")
            }
            RequestError::InvalidArgument => f.write_str("argument out of range"),
            RequestError::TooManyInFlight => f.write_str("too many requests in flight"),
            RequestError::Busy => f.write_str("a streamed request is in flight"),
            RequestError::OutputFull(e) => write!(f, "outgoing buffer full: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RequestError {}

impl Request<'_> {
    /// The method this request calls.
    pub const fn method(&self) -> Method {
        match self {
            Request::Features => Method::ServerFeatures,
            Request::Banner => Method::ServerBanner,
            Request::DonationAddress => Method::ServerDonationAddress,
            Request::PeersSubscribe => Method::ServerPeersSubscribe,
            Request::Ping { .. } => Method::ServerPing,
            Request::HeadersSubscribe => Method::HeadersSubscribe,
            Request::BlockHeader { .. } => Method::BlockHeader,
            Request::BlockHeaders { .. } => Method::BlockHeaders,
            Request::EstimateFee { .. } => Method::EstimateFee,
            Request::RelayFee => Method::RelayFee,
            Request::ScriptGetBalance(_) => Method::ScriptGetBalance,
            Request::ScriptGetHistory(_) => Method::ScriptGetHistory,
            Request::ScriptGetMempool(_) => Method::ScriptGetMempool,
            Request::ScriptListUnspent(_) => Method::ScriptListUnspent,
            Request::ScriptSubscribe(_) => Method::ScriptSubscribe,
            Request::ScriptUnsubscribe(_) => Method::ScriptUnsubscribe,
            Request::ScriptHashGetHistory(_) => Method::ScriptGetHistory,
            Request::ScriptHashSubscribe(_) => Method::ScriptSubscribe,
            Request::OutpointSubscribe { .. } => Method::OutpointSubscribe,
            Request::OutpointGetStatus { .. } => Method::OutpointGetStatus,
            Request::OutpointUnsubscribe { .. } => Method::OutpointUnsubscribe,
            Request::Broadcast(_) => Method::TransactionBroadcast,
            Request::BroadcastPackage(_) => Method::TransactionBroadcastPackage,
            Request::TestMempoolAccept(_) => Method::TransactionTestMempoolAccept,
            Request::TransactionGet(_) => Method::TransactionGet,
            Request::TransactionGetMerkle { .. } => Method::TransactionGetMerkle,
            Request::TransactionIdFromPos { .. } => Method::TransactionIdFromPos,
            Request::FeeHistogram => Method::MempoolGetFeeHistogram,
            Request::MempoolInfo => Method::MempoolGetInfo,
            Request::MempoolRecent => Method::MempoolRecent,
        }
    }

    /// Checks the arguments and that the negotiated version has the method.
    pub fn validate(&self, version: ProtocolVersion) -> Result<(), RequestError> {
        let method = self.method();
        if !method.available_at(version) {
            return Err(RequestError::NotAvailable { method, version });
        }
        match *self {
            Request::ScriptHashGetHistory(_) | Request::ScriptHashSubscribe(_)
                if version >= ProtocolVersion::V1_7 =>
            {
                Err(RequestError::NotAvailable { method, version })
            }
            Request::BlockHeaders { count, .. } if count > MAX_HEADERS_PER_REQUEST => {
                Err(RequestError::InvalidArgument)
            }
            Request::BlockHeader { height, cp_height } if cp_height != 0 && cp_height < height => {
                Err(RequestError::InvalidArgument)
            }
            _ => Ok(()),
        }
    }

    /// Writes the request's method and positional parameters into an open writer.
    pub fn encode(
        &self,
        id: u64,
        version: ProtocolVersion,
        w: &mut RequestWriter<'_>,
    ) -> Result<(), EncodeError> {
        w.begin(id, self.method().wire_name(version))?;
        let spk_form = version >= ProtocolVersion::V1_7;
        let script = |w: &mut RequestWriter<'_>, spk: &[u8]| {
            if spk_form {
                w.hex(spk)
            } else {
                // The script hash is shown reversed, like every other hash (PROTOCOL.md §4.2).
                w.hex_reversed(&sha256(spk))
            }
        };
        match *self {
            Request::Features
            | Request::Banner
            | Request::DonationAddress
            | Request::PeersSubscribe
            | Request::HeadersSubscribe
            | Request::RelayFee
            | Request::FeeHistogram
            | Request::MempoolInfo
            | Request::MempoolRecent => {}
            Request::Ping { pong_len } => {
                if spk_form {
                    w.u64(u64::from(pong_len))?;
                }
            }
            Request::BlockHeader { height, cp_height } => {
                w.u64(u64::from(height))?;
                if cp_height != 0 {
                    w.u64(u64::from(cp_height))?;
                }
            }
            Request::BlockHeaders {
                start_height,
                count,
                cp_height,
            } => {
                w.u64(u64::from(start_height))?;
                w.u64(u64::from(count))?;
                if cp_height != 0 {
                    w.u64(u64::from(cp_height))?;
                }
            }
            Request::EstimateFee { blocks, mode } => {
                w.u64(u64::from(blocks))?;
                if let (Some(mode), true) = (mode, version >= ProtocolVersion::V1_6) {
                    w.str(match mode {
                        FeeMode::Conservative => "CONSERVATIVE",
                        FeeMode::Economical => "ECONOMICAL",
                    })?;
                }
            }
            Request::ScriptGetBalance(spk)
            | Request::ScriptGetHistory(spk)
            | Request::ScriptGetMempool(spk)
            | Request::ScriptListUnspent(spk)
            | Request::ScriptSubscribe(spk)
            | Request::ScriptUnsubscribe(spk) => script(w, spk)?,
            Request::ScriptHashGetHistory(hash) | Request::ScriptHashSubscribe(hash) => {
                w.hex_reversed(hash.as_byte_array())?;
            }
            Request::OutpointSubscribe {
                txid,
                vout,
                script_pubkey,
            }
            | Request::OutpointGetStatus {
                txid,
                vout,
                script_pubkey,
            } => {
                w.hex_reversed(txid.as_byte_array())?;
                w.u64(u64::from(vout))?;
                w.hex(script_pubkey)?;
            }
            Request::OutpointUnsubscribe { txid, vout } => {
                w.hex_reversed(txid.as_byte_array())?;
                w.u64(u64::from(vout))?;
            }
            Request::Broadcast(raw) => w.hex(raw)?,
            Request::BroadcastPackage(txs) | Request::TestMempoolAccept(txs) => {
                w.hex_array(txs)?;
            }
            Request::TransactionGet(txid) => w.hex_reversed(txid.as_byte_array())?,
            Request::TransactionGetMerkle { txid, height } => {
                w.hex_reversed(txid.as_byte_array())?;
                w.u64(u64::from(height))?;
            }
            Request::TransactionIdFromPos {
                height,
                pos,
                merkle,
            } => {
                w.u64(u64::from(height))?;
                w.u64(u64::from(pos))?;
                // Always sent: electrs <= 0.11.1 needs all three parameters (INTEROP row 11).
                w.bool(merkle)?;
            }
        }
        w.end()
    }
}
