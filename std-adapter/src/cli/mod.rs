//! Arguments and dispatch of the command line.

mod commands;
mod connect;
mod p2p;
mod target;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use electrum_spv::core::hex::HexError;
use electrum_spv::{Network, ServerAddr};

/// Bytes from hex given on the command line (surrounding whitespace ignored).
pub(crate) fn hex_arg(text: &str) -> Result<Vec<u8>, HexError> {
    let text = text.trim();
    let mut out = vec![0u8; text.len() / 2];
    electrum_spv::core::hex::decode_to_slice(text.as_bytes(), &mut out)?;
    Ok(out)
}

pub use commands::run;

/// A verifying Electrum client: headers, proofs and statuses are checked before they are shown.
#[derive(Parser, Debug)]
#[command(name = "electrum-spv", version)]
pub struct Args {
    /// Network the servers must be on.
    #[arg(long, value_enum, default_value_t = NetworkArg::Mainnet)]
    pub network: NetworkArg,
    /// Server to use (repeatable: several servers decide together, each verifying its own
    /// headers; one proven to lie is dropped and named on stderr). Without it, the first
    /// [`connect::BUNDLED_AT_ONCE`] servers of the bundled list for the network.
    #[arg(long = "server", value_name = "tcp://H:P | ssl://H:P")]
    pub servers: Vec<ServerAddr>,
    /// Checkpoints from this file (Electrum's `checkpoints.json`: a list of `[hash, target]`,
    /// entry i for block 2016i+2015) instead of the compiled-in list of the network.
    #[arg(long, value_name = "FILE")]
    pub checkpoints: Option<PathBuf>,
    /// SOCKS5 proxy (Tor): server names are resolved by the proxy.
    #[arg(long, value_name = "socks5://H:P")]
    pub proxy: Option<String>,
    /// Accept only the TLS certificate with this SHA-256 (of its DER encoding, hex).
    #[arg(long, value_name = "SHA256", conflicts_with_all = ["tls_ca", "tls_tofu"])]
    pub tls_pin: Option<String>,
    /// Accept TLS certificates issued by the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE", conflicts_with = "tls_tofu")]
    pub tls_ca: Option<PathBuf>,
    /// Trust on first use: record each server's certificate in FILE, refuse a changed one.
    #[arg(long, value_name = "FILE")]
    pub tls_tofu: Option<PathBuf>,
    /// Ask for protocol 1.7 as well (scriptpubkey methods).
    #[arg(long)]
    pub protocol_1_7: bool,
    /// Print JSON (one object per line) instead of text.
    #[arg(long)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Networks by their usual names.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NetworkArg {
    /// Bitcoin mainnet.
    Mainnet,
    /// testnet3.
    Testnet,
    /// testnet4.
    Testnet4,
    /// The default signet.
    Signet,
    /// regtest.
    Regtest,
}

impl NetworkArg {
    pub fn network(self) -> Network {
        match self {
            NetworkArg::Mainnet => Network::Mainnet,
            NetworkArg::Testnet => Network::Testnet3,
            NetworkArg::Testnet4 => Network::Testnet4,
            NetworkArg::Signet => Network::Signet,
            NetworkArg::Regtest => Network::Regtest,
        }
    }
}

/// Scripts named by addresses, or one script or script hash.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// Addresses of the network (any standard type); one connection and one header sync serve
    /// them all, and each gets its own output line.
    #[arg(required_unless_present_any = ["script", "scripthash"])]
    pub addresses: Vec<String>,
    /// The output script, hex.
    #[arg(long, value_name = "HEX", conflicts_with_all = ["addresses", "scripthash"])]
    pub script: Option<String>,
    /// The Electrum script hash, hex (below protocol 1.7 only).
    #[arg(long, value_name = "HASH", conflicts_with = "addresses")]
    pub scripthash: Option<String>,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The verified tip: height and block hash.
    Tip,
    /// Sync and verify headers from the network's latest checkpoint (genesis on regtest) to the
    /// tip, on every server given, and print the best verified range.
    Headers,
    /// The verified header at a height.
    Header {
        /// Block height.
        height: u32,
    },
    /// Verified history: the status recomputed, every confirmed transaction proven.
    History(Target),
    /// Balance from verified unspent outputs.
    Balance(Target),
    /// Verified unspent outputs.
    Utxos(Target),
    /// A raw transaction, checked to hash to its txid.
    Tx {
        /// Transaction id.
        txid: String,
    },
    /// Broadcast a raw transaction; the server's answer must be its txid.
    Broadcast {
        /// The raw transaction, hex.
        hex: String,
    },
    /// Watch addresses: one line per change naming the txids that appeared, confirmed, went
    /// back to the mempool in a reorg (unconfirmed) or vanished. Runs until stopped.
    Subscribe {
        /// Addresses to watch.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Fee estimate.
    Fee {
        /// Confirmation target in blocks.
        #[arg(long, default_value_t = 6)]
        blocks: u32,
    },
    /// The server's peers.
    Peers,
    /// Recursive peer discovery from the servers given, as JSON (a server list).
    Spider {
        /// Stop after contacting this many servers.
        #[arg(long, default_value_t = 30)]
        max: usize,
    },
    /// Bitcoin P2P: talk to nodes directly (always prints JSON lines).
    P2p {
        /// What to do.
        #[command(subcommand)]
        command: p2p::P2pCommand,
    },
    /// Verify a file of raw 80-byte headers (binary, or hex text) starting at a height.
    VerifyHeaders {
        /// The file.
        file: PathBuf,
        /// Height of its first header (0, or a checkpointed period start).
        #[arg(long)]
        start_height: u32,
    },
}
