//! What each transaction of a verified history does to its script: the outputs it pays the
//! script and the script's outputs it spends, with their values, read from the transactions'
//! own bytes (each hashed to its txid when it was fetched: [`RawTxs`]).
//!
//! Every output a transaction of the history spends from the script was paid by a
//! transaction of the same history (a history holds every transaction paying or spending the
//! script), so the values come from the history alone; nothing is the server's word.

use std::collections::HashMap;

use electrum_spv_core::hash::Txid;
use electrum_spv_core::tx_parts::{OutPoint, TxParts};

use crate::error::Error;
use crate::fault::Fault;
use crate::verified::{RawTxs, VerifiedHistory};

/// An output of a transaction paying the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Received {
    /// Its index in the transaction.
    pub vout: u32,
    /// Satoshis.
    pub value: u64,
}

/// An output of the script a transaction spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Spent {
    /// The transaction that paid it (a transaction of the same history).
    pub txid: Txid,
    /// Its index there.
    pub vout: u32,
    /// Satoshis.
    pub value: u64,
}

/// What one transaction does to the script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TxActivity {
    /// Its outputs paying the script, by index.
    pub received: Vec<Received>,
    /// The script's outputs it spends, in input order.
    pub spent: Vec<Spent>,
}

impl TxActivity {
    /// Satoshis received minus satoshis spent (negative for a payment out).
    pub fn net(&self) -> i64 {
        let sum = |values: &mut dyn Iterator<Item = u64>| {
            values.fold(0i64, |acc, v| {
                acc.saturating_add(i64::try_from(v).unwrap_or(i64::MAX))
            })
        };
        let received = sum(&mut self.received.iter().map(|r| r.value));
        received.saturating_sub(sum(&mut self.spent.iter().map(|s| s.value)))
    }
}

/// The activity of each transaction of `history` (in its order) on `script`.
///
/// # Errors
/// [`Error::InvalidArgument`] when `raws` lacks a transaction of the history (the caller
/// fetches them all); [`Error::Verification`] ([`Fault::MalformedTx`]) for bytes that do not
/// parse.
pub fn activity(
    script: &[u8],
    history: &VerifiedHistory,
    raws: &RawTxs,
) -> Result<Vec<TxActivity>, Error> {
    let mut parsed = Vec::with_capacity(history.txs.len());
    for t in &history.txs {
        let raw = raws.get(&t.txid).ok_or_else(|| {
            Error::InvalidArgument(format!("transaction {} of the history not given", t.txid))
        })?;
        let tx = TxParts::parse(raw).map_err(|error| Fault::MalformedTx {
            txid: t.txid,
            error,
        })?;
        parsed.push((t.txid, tx));
    }
    let funding: HashMap<OutPoint, u64> = parsed
        .iter()
        .flat_map(|(txid, tx)| {
            (0u32..)
                .zip(tx.outputs())
                .filter(|(_, out)| out.script_pubkey == script)
                .map(|(vout, out)| (OutPoint { txid: *txid, vout }, out.value))
        })
        .collect();
    Ok(parsed
        .iter()
        .map(|(_, tx)| TxActivity {
            received: (0u32..)
                .zip(tx.outputs())
                .filter(|(_, out)| out.script_pubkey == script)
                .map(|(vout, out)| Received {
                    vout,
                    value: out.value,
                })
                .collect(),
            spent: tx
                .inputs()
                .filter_map(|o| {
                    funding.get(&o).map(|&value| Spent {
                        txid: o.txid,
                        vout: o.vout,
                        value,
                    })
                })
                .collect(),
        })
        .collect())
}
