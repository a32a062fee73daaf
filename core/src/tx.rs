//! Streaming txid of a raw transaction, without holding the transaction.
//!
//! [`TxidHasher`] walks the consensus serialization as bytes arrive, in pieces of any size, and
//! feeds every byte that belongs to the txid preimage (everything except the segwit marker, flag
//! and witnesses) straight into a double SHA-256 engine. Only compact-size integers (at most
//! nine bytes) are buffered, so a multi-megabyte transaction needs about 200 bytes of state.
//! It stops at the last byte of the transaction, so a block's transactions can be fed back to
//! back from one buffer.
//!
//! [`TxScan`] is the same walk with the fields a wallet reads: it reports each outpoint spent
//! and each output paying one script as their last byte goes by, so whether a transaction
//! involves a script is known without holding it (a few hundred bytes of state).
//!
//! Parsing follows Bitcoin Core's `UnserializeTransaction`: an input count of zero followed by a
//! non-zero byte announces the segwit serialization, whose flag must be `1` and which must carry
//! at least one non-empty witness stack; an input count of zero followed by a zero byte is
//! rejected. Non-canonical compact sizes are rejected as Core rejects them.
//!
//! DoS: work is linear in the bytes fed and no count or length is trusted beyond the bounds
//! below, which follow from [`MAX_TX_SIZE`].

use core::fmt;

use crate::hash::{ScriptHash, Sha256Engine, Sha256dEngine, Txid};
use crate::tx_parts::OutPoint;

/// Largest serialized transaction accepted, witness included: a block's weight limit is
/// 4,000,000 and every serialized byte weighs at least one unit, so no transaction that can be
/// mined is larger.
pub const MAX_TX_SIZE: usize = 4_000_000;

/// Smallest serialized input: 36-byte outpoint, 1-byte empty script length, 4-byte sequence.
pub const MIN_INPUT_SIZE: usize = 41;

/// Smallest serialized output: 8-byte value and a 1-byte empty script length.
pub const MIN_OUTPUT_SIZE: usize = 9;

/// Most inputs a transaction of [`MAX_TX_SIZE`] bytes can hold. A larger count is rejected as
/// soon as it is read instead of after megabytes of input.
pub const MAX_INPUTS: usize = MAX_TX_SIZE / MIN_INPUT_SIZE;

/// Most outputs a transaction of [`MAX_TX_SIZE`] bytes can hold.
pub const MAX_OUTPUTS: usize = MAX_TX_SIZE / MIN_OUTPUT_SIZE;

/// Most items one witness stack can hold: every item takes at least its 1-byte length.
pub const MAX_WITNESS_ITEMS: usize = MAX_TX_SIZE;

/// Longest script or witness item: it cannot be longer than the transaction holding it.
pub const MAX_FIELD_SIZE: usize = MAX_TX_SIZE;

/// Why bytes are not a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxError {
    /// A compact-size integer used a longer encoding than its value needs.
    NonCanonicalVarint,
    /// More inputs than [`MAX_INPUTS`].
    TooManyInputs,
    /// More outputs than [`MAX_OUTPUTS`].
    TooManyOutputs,
    /// A witness stack with more items than [`MAX_WITNESS_ITEMS`].
    TooManyWitnessItems,
    /// A script or witness item longer than [`MAX_FIELD_SIZE`].
    FieldTooLong,
    /// The transaction would be longer than [`MAX_TX_SIZE`].
    TooLarge,
    /// An input count of zero followed by a zero byte: neither a segwit marker and flag nor a
    /// transaction that can be mined.
    NoInputs,
    /// The segwit flag byte is not `1`.
    UnknownWitnessFlag(u8),
    /// The segwit serialization was used but every witness stack is empty.
    SuperfluousWitness,
    /// The bytes ended before the transaction did.
    Incomplete,
    /// Bytes follow the end of the transaction.
    TrailingBytes,
}

impl fmt::Display for TxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxError::NonCanonicalVarint => f.write_str("non-canonical compact size"),
            TxError::TooManyInputs => write!(f, "more than {MAX_INPUTS} inputs"),
            TxError::TooManyOutputs => write!(f, "more than {MAX_OUTPUTS} outputs"),
            TxError::TooManyWitnessItems => {
                write!(f, "more than {MAX_WITNESS_ITEMS} witness items")
            }
            TxError::FieldTooLong => {
                write!(f, "script or witness item over {MAX_FIELD_SIZE} bytes")
            }
            TxError::TooLarge => write!(f, "transaction over {MAX_TX_SIZE} bytes"),
            TxError::NoInputs => f.write_str("transaction without inputs"),
            TxError::UnknownWitnessFlag(flag) => write!(f, "unknown segwit flag 0x{flag:02x}"),
            TxError::SuperfluousWitness => f.write_str("segwit serialization without witness"),
            TxError::Incomplete => f.write_str("transaction is incomplete"),
            TxError::TrailingBytes => f.write_str("bytes after the end of the transaction"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TxError {}

/// The field the parser is inside. Compact sizes are read byte by byte; every other field is a
/// run of bytes whose length is known when the field starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Version,
    InputCount,
    WitnessFlag,
    PrevOut,
    ScriptSigLen,
    ScriptSig,
    Sequence,
    OutputCount,
    Value,
    ScriptPubKeyLen,
    ScriptPubKey,
    WitnessItemCount,
    WitnessItemLen,
    WitnessItem,
    LockTime,
    Done,
}

impl Field {
    const fn is_varint(self) -> bool {
        matches!(
            self,
            Field::InputCount
                | Field::ScriptSigLen
                | Field::OutputCount
                | Field::ScriptPubKeyLen
                | Field::WitnessItemCount
                | Field::WitnessItemLen
        )
    }

    /// Whether the field's bytes are part of the txid preimage. The input count is decided
    /// when its value is known (a zero there is the segwit marker).
    const fn is_hashed(self) -> bool {
        !matches!(
            self,
            Field::WitnessFlag
                | Field::WitnessItemCount
                | Field::WitnessItemLen
                | Field::WitnessItem
                | Field::Done
        )
    }
}

/// A compact-size integer being read.
#[derive(Debug, Clone, Copy, Default)]
struct VarintBuf {
    bytes: [u8; 9],
    len: u8,
}

impl VarintBuf {
    /// Adds one byte; returns the value once the encoding is complete.
    fn push(&mut self, byte: u8) -> Result<Option<u64>, TxError> {
        if let Some(slot) = self.bytes.get_mut(usize::from(self.len)) {
            *slot = byte;
        }
        self.len += 1;
        let [first, rest @ ..] = self.bytes;
        let (total, min) = match first {
            0xfd => (3, 0xfd),
            0xfe => (5, 0x1_0000),
            0xff => (9, 0x1_0000_0000),
            small => return Ok(Some(u64::from(small))),
        };
        if self.len < total {
            return Ok(None);
        }
        let mut le = [0u8; 8];
        for (dst, src) in le.iter_mut().zip(rest.iter().take(usize::from(total) - 1)) {
            *dst = *src;
        }
        let value = u64::from_le_bytes(le);
        if value < min {
            return Err(TxError::NonCanonicalVarint);
        }
        Ok(Some(value))
    }

    fn encoded(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// What the walker reports as it goes. Each consumer needs a different part: the txid the
/// preimage, the 64-byte check nothing, [`TxScan`] the outpoints and scriptPubKeys; the
/// defaults are empty so a consumer pays only for what it asks.
trait TxSink {
    /// Bytes of the txid preimage, in order.
    fn preimage(&mut self, bytes: &[u8]);

    /// Bytes of a fixed- or variable-length run (never of a compact size), preimage or not.
    #[inline(always)]
    fn run(&mut self, _field: Field, _bytes: &[u8]) {}

    /// A run ended and the walker accepted what follows from it; an empty run (a zero-length
    /// script) ends without bytes.
    #[inline(always)]
    fn end_run(&mut self, _field: Field) {}
}

/// A closure sees the preimage only: [`TxidHasher`] and [`is_transaction_shaped`] stay as they
/// were written.
impl<F: FnMut(&[u8])> TxSink for F {
    #[inline(always)]
    fn preimage(&mut self, bytes: &[u8]) {
        self(bytes);
    }
}

/// The serialization walker shared by [`TxidHasher`], [`TxScan`] and
/// [`is_transaction_shaped`]; it reports to a [`TxSink`] so the 64-byte check can skip hashing
/// and only the scan pays for field boundaries.
#[derive(Debug, Clone)]
struct TxParser {
    field: Field,
    /// Bytes left in the current fixed- or variable-length field.
    left: u32,
    varint: VarintBuf,
    /// Inputs declared; each needs a witness stack in the segwit serialization.
    inputs: u32,
    /// Outputs declared.
    outputs: u32,
    /// Inputs, outputs, witness stacks or witness items left in the current list.
    items_left: u32,
    /// Witness stacks left after the current one.
    stacks_left: u32,
    segwit: bool,
    any_witness: bool,
    consumed: u32,
    failed: Option<TxError>,
}

impl TxParser {
    const fn new() -> Self {
        TxParser {
            field: Field::Version,
            left: 4,
            varint: VarintBuf {
                bytes: [0; 9],
                len: 0,
            },
            inputs: 0,
            outputs: 0,
            items_left: 0,
            stacks_left: 0,
            segwit: false,
            any_witness: false,
            consumed: 0,
            failed: None,
        }
    }

    fn feed(&mut self, bytes: &[u8], sink: &mut impl TxSink) -> Result<usize, TxError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let result = self.walk(bytes, sink);
        if let Err(e) = result {
            self.failed = Some(e);
        }
        result
    }

    fn walk(&mut self, bytes: &[u8], sink: &mut impl TxSink) -> Result<usize, TxError> {
        let mut rest = bytes;
        while self.field != Field::Done {
            if self.field.is_varint() {
                let Some((&byte, tail)) = rest.split_first() else {
                    break;
                };
                rest = tail;
                self.count(1)?;
                if let Some(value) = self.varint.push(byte)? {
                    self.end_varint(value, sink)?;
                    self.varint = VarintBuf::default();
                }
            } else {
                // `left` is at most MAX_FIELD_SIZE, so it fits usize on every target.
                let take = (self.left as usize).min(rest.len());
                if take == 0 && self.left != 0 {
                    break;
                }
                self.count(take)?;
                let (chunk, tail) = rest.split_at(take);
                rest = tail;
                if self.field.is_hashed() {
                    sink.preimage(chunk);
                }
                sink.run(self.field, chunk);
                self.left -= take as u32;
                if self.left == 0 {
                    let field = self.field;
                    let last = chunk.last().copied().unwrap_or(0);
                    self.end_run(last)?;
                    sink.end_run(field);
                }
            }
        }
        Ok(bytes.len() - rest.len())
    }

    /// Counts bytes against [`MAX_TX_SIZE`].
    fn count(&mut self, n: usize) -> Result<(), TxError> {
        let total = (self.consumed as usize).saturating_add(n);
        if total > MAX_TX_SIZE {
            return Err(TxError::TooLarge);
        }
        self.consumed = total as u32;
        Ok(())
    }

    fn start_run(&mut self, field: Field, len: u32) {
        self.field = field;
        self.left = len;
    }

    fn start_varint(&mut self, field: Field) {
        self.field = field;
    }

    /// A compact size is complete: hash it if it belongs to the preimage, then move on.
    fn end_varint(&mut self, value: u64, sink: &mut impl TxSink) -> Result<(), TxError> {
        let is_marker = self.field == Field::InputCount && value == 0 && !self.segwit;
        if self.field.is_hashed() && !is_marker {
            sink.preimage(self.varint.encoded());
        }
        match self.field {
            Field::InputCount if is_marker => self.start_run(Field::WitnessFlag, 1),
            Field::InputCount => {
                self.inputs = bounded(value, MAX_INPUTS, TxError::TooManyInputs)?;
                self.items_left = self.inputs;
                self.next_input_or_outputs();
            }
            Field::ScriptSigLen => {
                let len = bounded(value, MAX_FIELD_SIZE, TxError::FieldTooLong)?;
                self.start_run(Field::ScriptSig, len);
            }
            Field::OutputCount => {
                self.outputs = bounded(value, MAX_OUTPUTS, TxError::TooManyOutputs)?;
                self.items_left = self.outputs;
                self.next_output_or_witnesses()?;
            }
            Field::ScriptPubKeyLen => {
                let len = bounded(value, MAX_FIELD_SIZE, TxError::FieldTooLong)?;
                self.start_run(Field::ScriptPubKey, len);
            }
            Field::WitnessItemCount => {
                self.items_left = bounded(value, MAX_WITNESS_ITEMS, TxError::TooManyWitnessItems)?;
                self.any_witness |= value != 0;
                self.next_item_or_stack()?;
            }
            Field::WitnessItemLen => {
                let len = bounded(value, MAX_FIELD_SIZE, TxError::FieldTooLong)?;
                self.start_run(Field::WitnessItem, len);
            }
            // Only varint fields reach here.
            _ => {}
        }
        Ok(())
    }

    /// A run of bytes is complete; `last` is its final byte (the flag, for the flag field).
    fn end_run(&mut self, last: u8) -> Result<(), TxError> {
        match self.field {
            Field::Version => self.start_varint(Field::InputCount),
            Field::WitnessFlag => match last {
                0 => return Err(TxError::NoInputs),
                1 => {
                    self.segwit = true;
                    self.start_varint(Field::InputCount);
                }
                flag => return Err(TxError::UnknownWitnessFlag(flag)),
            },
            Field::PrevOut => self.start_varint(Field::ScriptSigLen),
            Field::ScriptSig => self.start_run(Field::Sequence, 4),
            Field::Sequence => {
                self.items_left = self.items_left.saturating_sub(1);
                self.next_input_or_outputs();
            }
            Field::Value => self.start_varint(Field::ScriptPubKeyLen),
            Field::ScriptPubKey => {
                self.items_left = self.items_left.saturating_sub(1);
                self.next_output_or_witnesses()?;
            }
            Field::WitnessItem => {
                self.items_left = self.items_left.saturating_sub(1);
                self.next_item_or_stack()?;
            }
            Field::LockTime => self.field = Field::Done,
            // Only runs reach here.
            _ => {}
        }
        Ok(())
    }

    fn next_input_or_outputs(&mut self) {
        if self.items_left > 0 {
            self.start_run(Field::PrevOut, 36);
        } else {
            self.start_varint(Field::OutputCount);
        }
    }

    fn next_output_or_witnesses(&mut self) -> Result<(), TxError> {
        if self.items_left > 0 {
            self.start_run(Field::Value, 8);
            Ok(())
        } else if self.segwit && self.inputs > 0 {
            self.stacks_left = self.inputs;
            self.start_varint(Field::WitnessItemCount);
            Ok(())
        } else {
            self.end_witnesses()
        }
    }

    fn next_item_or_stack(&mut self) -> Result<(), TxError> {
        if self.items_left > 0 {
            self.start_varint(Field::WitnessItemLen);
            return Ok(());
        }
        self.stacks_left = self.stacks_left.saturating_sub(1);
        if self.stacks_left > 0 {
            self.start_varint(Field::WitnessItemCount);
            Ok(())
        } else {
            self.end_witnesses()
        }
    }

    fn end_witnesses(&mut self) -> Result<(), TxError> {
        // Core: "Superfluous witness record". Without this rule one transaction would have two
        // serializations that both parse.
        if self.segwit && !self.any_witness {
            return Err(TxError::SuperfluousWitness);
        }
        self.start_run(Field::LockTime, 4);
        Ok(())
    }
}

/// Converts a count or length read from the wire, rejecting it above `max`.
fn bounded(value: u64, max: usize, error: TxError) -> Result<u32, TxError> {
    // Every bound is at most MAX_TX_SIZE, which fits u32.
    match u32::try_from(value) {
        Ok(v) if (v as usize) <= max => Ok(v),
        _ => Err(error),
    }
}

/// Computes a txid from a transaction's serialization as it arrives, holding only a hash state
/// and one compact-size integer.
///
/// `size_of::<TxidHasher>()` is under 200 bytes on 64-bit targets (tested).
///
/// ```
/// use electrum_spv_core::tx::TxidHasher;
/// # let raw = [0u8; 0];
/// let mut hasher = TxidHasher::new();
/// for piece in raw.chunks(7) {
///     hasher.feed(piece)?;
/// }
/// # let _ = hasher;
/// # Ok::<(), electrum_spv_core::tx::TxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TxidHasher {
    parser: TxParser,
    engine: Sha256dEngine,
}

impl Default for TxidHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl TxidHasher {
    /// A hasher at the start of a transaction.
    pub fn new() -> Self {
        TxidHasher {
            parser: TxParser::new(),
            engine: Sha256dEngine::new(),
        }
    }

    /// Feeds the next bytes of the serialization and returns how many belong to this
    /// transaction: all of them, unless the transaction ended inside `bytes` (the rest is for
    /// the caller, e.g. the next transaction of a block). After an error every further call
    /// returns the same error.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, TxError> {
        let engine = &mut self.engine;
        self.parser
            .feed(bytes, &mut |chunk: &[u8]| engine.update(chunk))
    }

    /// The last byte of the transaction has been fed.
    pub fn is_complete(&self) -> bool {
        self.parser.field == Field::Done
    }

    /// The segwit serialization (marker and flag) was seen so far.
    pub fn has_witness(&self) -> bool {
        self.parser.segwit
    }

    /// Bytes of the serialization consumed so far (the full size, witness included, once
    /// complete).
    pub fn bytes_consumed(&self) -> usize {
        self.parser.consumed as usize
    }

    /// The txid, if the whole transaction was fed without error.
    pub fn finish(self) -> Result<Txid, TxError> {
        if let Some(e) = self.parser.failed {
            return Err(e);
        }
        if !self.is_complete() {
            return Err(TxError::Incomplete);
        }
        Ok(Txid::from_byte_array(self.engine.finalize()))
    }
}

/// The txid of `raw`, which must be exactly one serialized transaction.
pub fn txid(raw: &[u8]) -> Result<Txid, TxError> {
    let mut hasher = TxidHasher::new();
    let used = hasher.feed(raw)?;
    if hasher.is_complete() && used != raw.len() {
        return Err(TxError::TrailingBytes);
    }
    hasher.finish()
}

/// What a [`TxScan`] reports about its script, as the bytes go by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxItem {
    /// An input spends this outpoint. Every input is reported, whatever script funded it (the
    /// scan cannot know; the caller matches the outpoint against the script's funding outputs),
    /// a coinbase's null outpoint included, in input order.
    Spends(OutPoint),
    /// Output `vout` pays the script: the Electrum script hash of its scriptPubKey
    /// ([`crate::script::script_hash`]) equals the one scanned for.
    Pays {
        /// The output's index in the transaction.
        vout: u32,
    },
}

/// Reads, as a transaction's serialization streams by, what a wallet needs to decide whether it
/// involves one script: every outpoint spent and every output paying the script, and the txid.
///
/// A device need not hold the transaction: state is one txid hash, one scriptPubKey hash, a partial outpoint and the
/// walker of [`TxidHasher`]; `size_of::<TxScan>()` is under 400 bytes on 64-bit targets
/// (tested). Items are reported as soon as their last byte is fed, so if the transaction later
/// turns out malformed, what was reported describes bytes that are not a transaction: discard it
/// on error.
///
/// ```
/// use electrum_spv_core::script::script_hash;
/// use electrum_spv_core::tx::{TxItem, TxScan};
/// # let raw = [0u8; 0];
/// let mut scan = TxScan::new(&script_hash(&[0x51]));
/// let (mut pays, mut spends) = (0, 0);
/// for piece in raw.chunks(64) {
///     scan.feed(piece, &mut |item| match item {
///         TxItem::Pays { .. } => pays += 1,
///         TxItem::Spends(_) => spends += 1,
///     })?;
/// }
/// # let _ = scan;
/// # Ok::<(), electrum_spv_core::tx::TxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TxScan {
    parser: TxParser,
    state: ScanState,
}

/// Everything of a [`TxScan`] but the walker, so the walker can borrow it as its sink.
#[derive(Debug, Clone)]
struct ScanState {
    txid: Sha256dEngine,
    /// The scriptPubKey being read; reset at the end of each one.
    script: Sha256Engine,
    target: ScriptHash,
    /// The outpoint being read: it may arrive split across feeds.
    prevout: [u8; 36],
    prevout_len: u8,
    /// Index of the output being read.
    vout: u32,
}

/// A [`ScanState`] and the caller's callback, for one feed.
struct ScanSink<'a, F> {
    state: &'a mut ScanState,
    on: &'a mut F,
}

impl<F: FnMut(TxItem)> TxSink for ScanSink<'_, F> {
    #[inline]
    fn preimage(&mut self, bytes: &[u8]) {
        self.state.txid.update(bytes);
    }

    #[inline]
    fn run(&mut self, field: Field, bytes: &[u8]) {
        let s = &mut *self.state;
        match field {
            Field::PrevOut => {
                let at = usize::from(s.prevout_len);
                let end = at.saturating_add(bytes.len());
                // The walker never hands more than the 36 bytes of the field.
                if let Some(dst) = s.prevout.get_mut(at..end) {
                    dst.copy_from_slice(bytes);
                    s.prevout_len = end as u8;
                }
            }
            Field::ScriptPubKey => s.script.update(bytes),
            _ => {}
        }
    }

    fn end_run(&mut self, field: Field) {
        let s = &mut *self.state;
        match field {
            Field::PrevOut => {
                // Same reading as `TxParts::inputs`: the txid in internal order, then the index.
                let [txid @ .., a, b, c, d] = s.prevout;
                s.prevout_len = 0;
                (self.on)(TxItem::Spends(OutPoint {
                    txid: Txid::from_byte_array(txid),
                    vout: u32::from_le_bytes([a, b, c, d]),
                }));
            }
            Field::ScriptPubKey => {
                // `script_hash` keeps the digest as is as the internal order; so does this.
                let hash = ScriptHash::from_byte_array(core::mem::take(&mut s.script).finalize());
                if hash == s.target {
                    (self.on)(TxItem::Pays { vout: s.vout });
                }
                // At most MAX_OUTPUTS outputs, far below u32::MAX.
                s.vout = s.vout.saturating_add(1);
            }
            _ => {}
        }
    }
}

impl TxScan {
    /// A scan at the start of a transaction, looking for outputs paying the script whose
    /// Electrum script hash is `script`.
    pub fn new(script: &ScriptHash) -> TxScan {
        TxScan {
            parser: TxParser::new(),
            state: ScanState {
                txid: Sha256dEngine::new(),
                script: Sha256Engine::new(),
                target: *script,
                prevout: [0; 36],
                prevout_len: 0,
                vout: 0,
            },
        }
    }

    /// Feeds the next bytes of the serialization, calls `on` for each item whose last byte is
    /// among them, and returns how many bytes belong to this transaction, as
    /// [`TxidHasher::feed`] does (all of them unless the transaction ended inside `bytes`).
    /// After an error every further call returns the same error and reports nothing.
    pub fn feed(&mut self, bytes: &[u8], on: &mut impl FnMut(TxItem)) -> Result<usize, TxError> {
        let mut sink = ScanSink {
            state: &mut self.state,
            on,
        };
        self.parser.feed(bytes, &mut sink)
    }

    /// The last byte of the transaction has been fed.
    pub fn is_complete(&self) -> bool {
        self.parser.field == Field::Done
    }

    /// The txid, if the whole transaction was fed without error ([`TxError::Incomplete`] if
    /// it has not ended yet).
    pub fn finish(self) -> Result<Txid, TxError> {
        if let Some(e) = self.parser.failed {
            return Err(e);
        }
        if !self.is_complete() {
            return Err(TxError::Incomplete);
        }
        Ok(Txid::from_byte_array(self.state.txid.finalize()))
    }
}

/// Whether 64 bytes parse completely as a legacy (non-witness) transaction serialization with
/// at least one input and one output.
///
/// A merkle inner node is the double SHA-256 of 64 bytes, exactly like the txid of a 64-byte
/// transaction, so a branch whose inner-node preimage is such a transaction can prove a "txid"
/// that is really half of that transaction (CVE-2017-12842). Verifiers therefore refuse inner
/// nodes with this shape.
///
/// Only what could be a mined txid's preimage matters, and requiring exactly that keeps honest
/// nodes from being refused: a txid hashes the witness-free serialization, and consensus
/// (`CheckTransaction`) requires an input and an output. Random 64 bytes then have this shape
/// with probability about 2^-30; accepting zero outputs too would make it about 2^-24.
pub fn is_transaction_shaped(bytes: &[u8; 64]) -> bool {
    let mut parser = TxParser::new();
    matches!(parser.feed(bytes, &mut |_: &[u8]| {}), Ok(64))
        && parser.field == Field::Done
        && !parser.segwit
        && parser.outputs > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    /// Signet block 31500: three segwit transactions.
    const SIGNET_31500: &[u8] = include_bytes!("../tests/data/signet/blocks/31500.bin");
    const SIGNET_31500_TXIDS: [&str; 3] = [
        "4b314b9112077eb2c948b6164afbf246c773dac4ef63fd5e88cf35f954fb4838",
        "eade0fce56112066bfffc031aa54dd186d12758c8d462792b7e1bbe17e5fc76a",
        "ffa88d535d70527c5cf97ef074ba388fc5c0c098288c193fc73e0756539144b1",
    ];

    fn block_txs(block: &[u8]) -> &[u8] {
        // 80-byte header and a one-byte transaction count (all blocks used here have < 0xfd).
        &block[81..]
    }

    fn split_txs(mut rest: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while !rest.is_empty() {
            let mut h = TxidHasher::new();
            let n = h.feed(rest).unwrap();
            assert!(h.is_complete());
            out.push(&rest[..n]);
            rest = &rest[n..];
        }
        out
    }

    #[test]
    fn every_split_gives_the_same_txid() {
        let txs = split_txs(block_txs(SIGNET_31500));
        assert_eq!(txs.len(), 3);
        for (raw, expected) in txs.into_iter().zip(SIGNET_31500_TXIDS) {
            let whole = txid(raw).unwrap();
            assert_eq!(whole.to_string(), expected);
            for cut in 0..=raw.len() {
                let mut h = TxidHasher::new();
                assert_eq!(h.feed(&raw[..cut]).unwrap(), cut);
                assert_eq!(h.is_complete(), cut == raw.len());
                assert_eq!(h.feed(&raw[cut..]).unwrap(), raw.len() - cut);
                assert_eq!(h.finish().unwrap(), whole, "split at {cut}");
            }
            let mut h = TxidHasher::new();
            for b in raw {
                assert_eq!(h.feed(core::slice::from_ref(b)).unwrap(), 1);
            }
            assert_eq!(h.bytes_consumed(), raw.len());
            assert_eq!(h.finish().unwrap(), whole);
        }
    }

    #[test]
    fn trailing_and_missing_bytes() {
        let raw = split_txs(block_txs(SIGNET_31500))[0].to_vec();
        let mut longer = raw.clone();
        longer.push(0);
        assert_eq!(txid(&longer), Err(TxError::TrailingBytes));
        assert_eq!(txid(&raw[..raw.len() - 1]), Err(TxError::Incomplete));
        assert_eq!(txid(&[]), Err(TxError::Incomplete));
    }

    fn legacy_tx(script_sig: &[u8], script_pubkey: &[u8]) -> Vec<u8> {
        let mut t = vec![1, 0, 0, 0, 1];
        t.extend_from_slice(&[0xab; 36]);
        t.push(script_sig.len() as u8);
        t.extend_from_slice(script_sig);
        t.extend_from_slice(&[0xff; 4]);
        t.push(1);
        t.extend_from_slice(&[0x11; 8]);
        t.push(script_pubkey.len() as u8);
        t.extend_from_slice(script_pubkey);
        t.extend_from_slice(&[0; 4]);
        t
    }

    #[test]
    fn legacy_txid_is_sha256d_of_everything() {
        let raw = legacy_tx(&[0x51], &[0x52, 0x53]);
        assert_eq!(
            txid(&raw).unwrap().to_byte_array(),
            crate::hash::sha256d(&raw)
        );
    }

    #[test]
    fn segwit_txid_skips_marker_flag_and_witness() {
        let legacy = legacy_tx(&[], &[0x51]);
        let (body, locktime) = legacy.split_at(legacy.len() - 4);
        let mut segwit = body[..4].to_vec();
        segwit.extend_from_slice(&[0x00, 0x01]);
        segwit.extend_from_slice(&body[4..]);
        segwit.extend_from_slice(&[2, 1, 0xaa, 0]); // witness: [aa], []
        segwit.extend_from_slice(locktime);
        let mut h = TxidHasher::new();
        h.feed(&segwit).unwrap();
        assert!(h.has_witness());
        assert_eq!(h.finish(), txid(&legacy));
    }

    #[test]
    fn marker_rules_follow_core() {
        let legacy = legacy_tx(&[], &[0x51]);
        let mut zero_flag = legacy[..4].to_vec();
        zero_flag.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        assert_eq!(txid(&zero_flag), Err(TxError::NoInputs));
        let mut bad_flag = legacy[..4].to_vec();
        bad_flag.extend_from_slice(&[0, 2]);
        assert_eq!(txid(&bad_flag), Err(TxError::UnknownWitnessFlag(2)));
        // Segwit form with only empty witness stacks.
        let mut empty = legacy[..4].to_vec();
        empty.extend_from_slice(&[0, 1]);
        empty.extend_from_slice(&legacy[4..legacy.len() - 4]);
        empty.extend_from_slice(&[0, 0, 0, 0, 0]);
        assert_eq!(txid(&empty), Err(TxError::SuperfluousWitness));
    }

    #[test]
    fn non_canonical_and_oversized_counts() {
        let mut t = vec![1, 0, 0, 0, 0xfd, 0x01, 0x00];
        assert_eq!(txid(&t), Err(TxError::NonCanonicalVarint));
        t.truncate(4);
        t.extend_from_slice(&[0xfe, 0xff, 0xff, 0x00, 0x00]);
        assert_eq!(txid(&t), Err(TxError::NonCanonicalVarint));
        t.truncate(4);
        t.extend_from_slice(&[0xfe, 0x00, 0x00, 0x02, 0x00]);
        assert_eq!(txid(&t), Err(TxError::TooManyInputs));
        t.truncate(4);
        t.extend_from_slice(&[0xff, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(txid(&t), Err(TxError::TooManyInputs));
        // Script length beyond the size bound.
        let mut s = vec![1, 0, 0, 0, 1];
        s.extend_from_slice(&[0; 36]);
        s.extend_from_slice(&[0xfe, 0x01, 0x0a, 0x3d, 0x00]);
        assert_eq!(txid(&s), Err(TxError::FieldTooLong));
    }

    #[test]
    fn errors_are_sticky() {
        let mut h = TxidHasher::new();
        assert_eq!(
            h.feed(&[1, 0, 0, 0, 0xfd, 0, 0]),
            Err(TxError::NonCanonicalVarint)
        );
        assert_eq!(h.feed(&[0; 100]), Err(TxError::NonCanonicalVarint));
        assert_eq!(h.finish(), Err(TxError::NonCanonicalVarint));
    }

    #[test]
    fn size_bound_is_enforced_while_streaming() {
        // One input whose script claims the whole budget: the parser runs out of budget.
        let mut h = TxidHasher::new();
        let mut head = vec![1, 0, 0, 0, 1];
        head.extend_from_slice(&[0; 36]);
        let len = (MAX_TX_SIZE - 40) as u32;
        head.push(0xfe);
        head.extend_from_slice(&len.to_le_bytes());
        h.feed(&head).unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut result = Ok(0);
        for _ in 0..4 {
            result = h.feed(&zeros);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(TxError::TooLarge));
    }

    #[test]
    fn sixty_four_byte_transaction_is_detected() {
        // A minimal legacy transaction padded to 64 bytes through its scripts.
        let raw = legacy_tx(&[0x51, 0x51], &[0x52, 0x52]);
        assert_eq!(raw.len(), 64);
        assert!(is_transaction_shaped(&raw.clone().try_into().unwrap()));
        // Same bytes with an impossible script length are not a transaction.
        let mut broken: [u8; 64] = raw.try_into().unwrap();
        broken[41] = 3;
        assert!(!is_transaction_shaped(&broken));
        assert!(!is_transaction_shaped(&[0; 64]));
        // A transaction without outputs parses but cannot be mined.
        let mut no_outputs = vec![1, 0, 0, 0, 1];
        no_outputs.extend_from_slice(&[0xab; 36]);
        no_outputs.push(13);
        no_outputs.extend_from_slice(&[0x51; 13]);
        no_outputs.extend_from_slice(&[0xff; 4]);
        no_outputs.push(0);
        no_outputs.extend_from_slice(&[0; 4]);
        assert!(txid(&no_outputs).is_ok());
        assert!(!is_transaction_shaped(&no_outputs.try_into().unwrap()));
        assert!(!is_transaction_shaped(&[0xff; 64]));
        let forged = hex::decode_array::<64>(b"0200000001cb659c5528311901a7aada7db817bd6e3ce2f05d1c62c385b7caadb65fac75201234000000fabcdefa01abcd1234010000000405060708fabcdefa").unwrap();
        assert!(is_transaction_shaped(&forged));
    }

    /// What a scan reported, split by kind.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Scanned {
        spends: Vec<OutPoint>,
        pays: Vec<u32>,
    }

    /// Feeds `raw` to a scan in pieces cut at `cuts` (ascending): its verdict (`TrailingBytes`
    /// if the transaction ended early, as `txid` says) and what it reported.
    fn scan_cut(
        raw: &[u8],
        script: &ScriptHash,
        cuts: &[usize],
    ) -> (Result<Txid, TxError>, Scanned) {
        let mut scan = TxScan::new(script);
        let mut got = Scanned::default();
        let mut on = |item| match item {
            TxItem::Spends(o) => got.spends.push(o),
            TxItem::Pays { vout } => got.pays.push(vout),
        };
        let mut start = 0;
        for end in cuts.iter().copied().chain([raw.len()]) {
            match scan.feed(&raw[start..end], &mut on) {
                Ok(used) if used < end - start => return (Err(TxError::TrailingBytes), got),
                Ok(_) => {}
                Err(e) => return (Err(e), got),
            }
            start = end;
        }
        (scan.finish(), got)
    }

    /// What [`TxParts`](crate::tx_parts::TxParts) says of `raw` for `script`.
    fn parts(raw: &[u8], script: &ScriptHash) -> Scanned {
        let tx = crate::tx_parts::TxParts::parse(raw).unwrap();
        Scanned {
            spends: tx.inputs().collect(),
            pays: (0u32..)
                .zip(tx.outputs())
                .filter(|(_, o)| crate::script::script_hash(o.script_pubkey) == *script)
                .map(|(vout, _)| vout)
                .collect(),
        }
    }

    #[test]
    fn scan_agrees_with_tx_parts_at_every_split() {
        for raw in split_txs(block_txs(SIGNET_31500)) {
            let tx = crate::tx_parts::TxParts::parse(raw).unwrap();
            let mut scripts: Vec<ScriptHash> = tx
                .outputs()
                .map(|o| crate::script::script_hash(o.script_pubkey))
                .collect();
            scripts.push(crate::script::script_hash(b"not paid"));
            for script in &scripts {
                let expected = parts(raw, script);
                for cut in 0..=raw.len() {
                    assert_eq!(
                        scan_cut(raw, script, &[cut]),
                        (Ok(tx.txid()), parts(raw, script)),
                        "split at {cut}"
                    );
                }
                let every: Vec<usize> = (1..raw.len()).collect();
                assert_eq!(scan_cut(raw, script, &every), (Ok(tx.txid()), expected));
            }
        }
    }

    #[test]
    fn empty_scripts_are_scanned() {
        let empty = crate::script::script_hash(&[]);
        // Legacy: the empty scriptPubKey is the last field before the lock time.
        let raw = legacy_tx(&[], &[]);
        let every: Vec<usize> = (1..raw.len()).collect();
        for cuts in [&[][..], &every] {
            let (txid, got) = scan_cut(&raw, &empty, cuts);
            assert_eq!(txid, super::txid(&raw));
            assert_eq!(got.pays, [0]);
            assert_eq!(got, parts(&raw, &empty));
        }
        // Segwit: the empty script ends where the witnesses start.
        let (body, locktime) = raw.split_at(raw.len() - 4);
        let mut segwit = body[..4].to_vec();
        segwit.extend_from_slice(&[0x00, 0x01]);
        segwit.extend_from_slice(&body[4..]);
        segwit.extend_from_slice(&[1, 0]); // witness: one empty item
        segwit.extend_from_slice(locktime);
        let every: Vec<usize> = (1..segwit.len()).collect();
        for cuts in [&[][..], &every] {
            let (txid, got) = scan_cut(&segwit, &empty, cuts);
            assert_eq!(txid, super::txid(&raw));
            assert_eq!(got.pays, [0]);
        }
        // A non-empty script is not the empty one.
        assert_eq!(
            scan_cut(&legacy_tx(&[], &[0x51]), &empty, &[]).1.pays,
            [0u32; 0]
        );
    }

    #[test]
    fn scan_fails_as_the_txid_hasher_does() {
        let legacy = legacy_tx(&[], &[0x51]);
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![1, 0, 0, 0, 0xfd, 0x01, 0x00],
            vec![1, 0, 0, 0, 0xfe, 0x00, 0x00, 0x02, 0x00],
            vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![1, 0, 0, 0, 0, 2],
            legacy[..legacy.len() - 1].to_vec(),
            [&legacy[..], &[0]].concat(),
        ];
        // Segwit form with zero inputs: the last output's script is read, then the
        // transaction is refused; nothing may be reported as paid before the refusal.
        let mut no_inputs = vec![1, 0, 0, 0, 0, 1, 0, 1];
        no_inputs.extend_from_slice(&[0; 8]);
        no_inputs.extend_from_slice(&[1, 0x51, 0, 0, 0, 0]);
        assert_eq!(txid(&no_inputs), Err(TxError::SuperfluousWitness));
        assert_eq!(
            scan_cut(&no_inputs, &crate::script::script_hash(&[0x51]), &[]),
            (Err(TxError::SuperfluousWitness), Scanned::default())
        );
        cases.push(no_inputs);
        for raw in &cases {
            let script = crate::script::script_hash(&[0x51]);
            assert_eq!(scan_cut(raw, &script, &[]).0, txid(raw), "{raw:02x?}");
        }
        // Sticky, and silent after the error.
        let mut scan = TxScan::new(&crate::script::script_hash(&[]));
        let mut reported = 0;
        assert_eq!(
            scan.feed(&[1, 0, 0, 0, 0xfd, 0, 0], &mut |_| reported += 1),
            Err(TxError::NonCanonicalVarint)
        );
        assert_eq!(
            scan.feed(&legacy, &mut |_| reported += 1),
            Err(TxError::NonCanonicalVarint)
        );
        assert_eq!(reported, 0);
        assert_eq!(scan.finish(), Err(TxError::NonCanonicalVarint));
    }

    #[test]
    fn scan_stops_at_the_end_of_the_transaction() {
        let txs = block_txs(SIGNET_31500);
        let first = split_txs(txs)[0];
        let mut scan = TxScan::new(&crate::script::script_hash(&[]));
        assert_eq!(scan.feed(txs, &mut |_| {}), Ok(first.len()));
        assert!(scan.is_complete());
        assert_eq!(scan.finish(), txid(first));
        let incomplete = TxScan::new(&crate::script::script_hash(&[]));
        assert!(!incomplete.is_complete());
        assert_eq!(incomplete.finish(), Err(TxError::Incomplete));
    }

    #[test]
    fn scan_state_is_small() {
        let size = core::mem::size_of::<TxScan>();
        std::println!("size_of::<TxScan>() = {size}");
        assert!(size < 400, "{size}");
    }

    proptest::proptest! {
        /// On arbitrary bytes and on damaged real transactions, in arbitrary pieces, a scan
        /// agrees with the txid hasher on the verdict and the bytes consumed, and with
        /// `TxParts` on what it reports whenever a transaction came out.
        #[test]
        fn scan_agrees_with_hasher_and_parts(
            which in 0usize..3,
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..4),
            cut_at in proptest::collection::vec(proptest::num::usize::ANY, 0..6),
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            noise_only in proptest::bool::ANY,
        ) {
            let txs = split_txs(block_txs(SIGNET_31500));
            let mut raw = if noise_only { noise } else { txs[which].to_vec() };
            for (at, byte) in edits {
                if !raw.is_empty() {
                    let at = at % raw.len();
                    raw[at] = byte;
                }
            }
            let mut cuts: Vec<usize> = cut_at.iter().map(|c| c % (raw.len() + 1)).collect();
            cuts.sort_unstable();
            let mut hasher = TxidHasher::new();
            let mut hashed = Ok(0);
            let mut start = 0;
            for end in cuts.iter().copied().chain([raw.len()]) {
                hashed = hasher.feed(&raw[start..end]).map(|n| start + n);
                if !matches!(hashed, Ok(n) if n == end) {
                    break;
                }
                start = end;
            }
            let expected = match hashed {
                Err(e) => Err(e),
                Ok(n) if n < raw.len() => Err(TxError::TrailingBytes),
                Ok(_) => hasher.finish(),
            };
            let script = crate::script::script_hash(&[0x00, 0x14]);
            let (got, items) = scan_cut(&raw, &script, &cuts);
            proptest::prop_assert_eq!(got, expected);
            if got.is_ok() {
                proptest::prop_assert_eq!(items, parts(&raw, &script));
            }
        }
    }

    #[test]
    fn state_is_small() {
        std::println!(
            "size_of::<TxidHasher>() = {}",
            core::mem::size_of::<TxidHasher>()
        );
        assert!(
            core::mem::size_of::<TxidHasher>() < 200,
            "{}",
            core::mem::size_of::<TxidHasher>()
        );
    }
}
