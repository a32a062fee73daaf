//! The inputs and outputs of a whole transaction held in memory, without copying or
//! allocating: an unspent output's value and script, a transaction's spends. Whether a
//! transaction belongs to a script's history is decided while it streams by
//! ([`crate::tx::TxScan`], in the script tracker).
//!
//! [`TxParts::parse`] first checks the bytes with the same walker that computes the txid
//! ([`crate::tx::txid`]: every bound of that module applies), so the iterators below run over a
//! serialization already known to be complete and well-formed and cannot fail.

use crate::hash::{ScriptHash, Txid};
use crate::script::script_hash;
use crate::tx::{TxError, txid};

/// An output being spent: the funding transaction and the output's index in it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OutPoint {
    /// The funding transaction.
    pub txid: Txid,
    /// The output's index.
    pub vout: u32,
}

/// One output: its value and scriptPubKey.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TxOut<'a> {
    /// Value in satoshis.
    pub value: u64,
    /// The scriptPubKey.
    pub script_pubkey: &'a [u8],
}

/// A serialized transaction whose structure was checked, and its txid.
#[derive(Clone, Copy, Debug)]
pub struct TxParts<'a> {
    raw: &'a [u8],
    txid: Txid,
    /// Offset of the input count.
    inputs_at: usize,
}

impl<'a> TxParts<'a> {
    /// Checks `raw` as exactly one transaction and computes its txid.
    ///
    /// # Errors
    /// The [`TxError`] of [`crate::tx::txid`].
    pub fn parse(raw: &'a [u8]) -> Result<TxParts<'a>, TxError> {
        let txid = txid(raw)?;
        let segwit = raw.get(4) == Some(&0) && raw.get(5) == Some(&1);
        Ok(TxParts {
            raw,
            txid,
            inputs_at: if segwit { 6 } else { 4 },
        })
    }

    /// The txid (witness data excluded).
    pub fn txid(&self) -> Txid {
        self.txid
    }

    /// The outputs each input spends, in order.
    pub fn inputs(&self) -> impl Iterator<Item = OutPoint> + 'a {
        let mut r = Reader::new(self.raw, self.inputs_at);
        let count = r.varint();
        (0..count).map_while(move |_| {
            let txid = Txid::from_byte_array(r.array()?);
            let vout = u32::from_le_bytes(r.array()?);
            let script_len = r.varint();
            r.skip(script_len)?;
            r.skip(4)?; // sequence
            Some(OutPoint { txid, vout })
        })
    }

    /// The outputs, in order (the index of an output is its position here).
    pub fn outputs(&self) -> impl Iterator<Item = TxOut<'a>> + 'a {
        let mut r = Reader::new(self.raw, self.inputs_at);
        let inputs = r.varint();
        for _ in 0..inputs {
            r.skip(36);
            let len = r.varint();
            r.skip(len);
            r.skip(4);
        }
        let count = r.varint();
        (0..count).map_while(move |_| {
            let value = u64::from_le_bytes(r.array()?);
            let len = r.varint();
            let script_pubkey = r.take(len)?;
            Some(TxOut {
                value,
                script_pubkey,
            })
        })
    }

    /// The serialization without its witness (BIP144's stripped form, which the txid hashes):
    /// three pieces to write in order. For a transaction without witness the last two are
    /// empty.
    pub fn stripped(&self) -> [&'a [u8]; 3] {
        if self.inputs_at == 4 {
            return [self.raw, &[], &[]];
        }
        // Segwit: version, [marker, flag], inputs and outputs, [witnesses], lock time.
        let mut r = Reader::new(self.raw, self.inputs_at);
        let inputs = r.varint();
        for _ in 0..inputs {
            r.skip(36);
            let len = r.varint();
            r.skip(len);
            r.skip(4);
        }
        let outputs = r.varint();
        for _ in 0..outputs {
            r.skip(8);
            let len = r.varint();
            r.skip(len);
        }
        let lock_time_at = self.raw.len().saturating_sub(4);
        [
            self.raw.get(..4).unwrap_or(&[]),
            self.raw.get(self.inputs_at..r.at).unwrap_or(&[]),
            self.raw.get(lock_time_at..).unwrap_or(&[]),
        ]
    }

    /// Whether the serialization carries witnesses (BIP144's marker and flag).
    pub fn has_witness(&self) -> bool {
        self.inputs_at == 6
    }

    /// Whether an output pays the script whose Electrum script hash is `script`.
    pub fn pays(&self, script: &ScriptHash) -> bool {
        self.outputs()
            .any(|o| script_hash(o.script_pubkey) == *script)
    }
}

/// A cursor over bytes already validated by the txid walker; it still never indexes out of
/// bounds (it returns `None` or reads zero instead).
struct Reader<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(raw: &'a [u8], at: usize) -> Reader<'a> {
        Reader { raw, at }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let bytes = self.raw.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// A compact-size integer (0 where the bytes end, which validated input never does).
    fn varint(&mut self) -> usize {
        let value = match self.take(1).and_then(|b| b.first().copied()) {
            Some(0xfd) => self.array::<2>().map(|b| u64::from(u16::from_le_bytes(b))),
            Some(0xfe) => self.array::<4>().map(|b| u64::from(u32::from_le_bytes(b))),
            Some(0xff) => self.array::<8>().map(u64::from_le_bytes),
            Some(small) => Some(u64::from(small)),
            None => None,
        };
        value.and_then(|v| usize::try_from(v).ok()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    /// Block 170's transaction: Satoshi pays Hal Finney 10 BTC, spending block 9's coinbase.
    const BLOCK_170_TX: &str = "0100000001c997a5e56e104102fa209c6a852dd90660a20b2d9c352423edce25857fcd3704000000004847304402204e45e16932b8af514961a1d3a1a25fdf3f4f7732e9d624c6c61548ab5fb8cd410220181522ec8eca07de4860a4acdd12909d831cc56cbbac4622082221a8768d1d0901ffffffff0200ca9a3b00000000434104ae1a62fe09c5f51b13905f07f06b99a2f7159b2225f374cd378d71302fa28414e7aab37397f554a7df5f142c21c1b7303b8a0626f1baded5c72a704f7e6cd84cac00286bee0000000043410411db93e1dcdb8a016b49840f8c53bc1eb68a382e97b1482ecad7b148a6909a5cb2e0eaddfb84ccf9744464f82e160bfa9b8b64f9d4c03f999b8643f656b412a3ac00000000";
    /// Block 9's coinbase output script (P2PK).
    const BLOCK_9_SCRIPT: &str = "410411db93e1dcdb8a016b49840f8c53bc1eb68a382e97b1482ecad7b148a6909a5cb2e0eaddfb84ccf9744464f82e160bfa9b8b64f9d4c03f999b8643f656b412a3ac";

    fn bytes(h: &str) -> [u8; 512] {
        let mut out = [0u8; 512];
        hex::decode_to_slice(h.as_bytes(), &mut out[..h.len() / 2]).unwrap();
        out
    }

    #[test]
    fn reads_inputs_and_outputs_of_a_real_transaction() {
        let buf = bytes(BLOCK_170_TX);
        let raw = &buf[..BLOCK_170_TX.len() / 2];
        let tx = TxParts::parse(raw).unwrap();
        assert_eq!(
            tx.txid().to_string(),
            "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
        );
        let inputs: [OutPoint; 1] = [tx.inputs().next().unwrap()];
        assert_eq!(tx.inputs().count(), 1);
        assert_eq!(
            inputs[0].txid.to_string(),
            "0437cd7f8525ceed2324359c2d0ba26006d92d856a9c20fa0241106ee5a597c9"
        );
        assert_eq!(inputs[0].vout, 0);
        let values: [u64; 2] = {
            let mut o = tx.outputs();
            [o.next().unwrap().value, o.next().unwrap().value]
        };
        assert_eq!(values, [1_000_000_000, 4_000_000_000]);
        assert_eq!(tx.outputs().count(), 2);

        let sbuf = bytes(BLOCK_9_SCRIPT);
        let satoshi = script_hash(&sbuf[..BLOCK_9_SCRIPT.len() / 2]);
        // Output 1 is Satoshi's change: the transaction pays the script.
        assert!(tx.pays(&satoshi));
        // Hal's script: paid by output 0.
        let hal = script_hash(tx.outputs().next().unwrap().script_pubkey);
        assert!(tx.pays(&hal));
        // A script not paid.
        assert!(!tx.pays(&script_hash(&[0x51])));
    }

    #[test]
    fn refuses_what_is_not_one_transaction() {
        let buf = bytes(BLOCK_170_TX);
        let raw = &buf[..BLOCK_170_TX.len() / 2];
        assert_eq!(
            TxParts::parse(&raw[..raw.len() - 1]).unwrap_err(),
            TxError::Incomplete
        );
        assert!(TxParts::parse(&buf[..raw.len() + 1]).is_err());
    }
}
