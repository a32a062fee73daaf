//! Streaming of one large response line, item by item, without holding the line.
//!
//! A `blockchain.block.headers` result of 2016 headers is about 322 KB of hex; a device verifies
//! it header by header as bytes arrive with the state below (a tokenizer, one 160-digit
//! accumulator and small scratch): [`ResponseStream`] is under 768 bytes (tested).

use crate::hash::Txid;
use crate::header::HEADER_SIZE;
use crate::hex;
use crate::json::{JsonError, Token, Tokenizer};
use crate::script::TxHeight;
use crate::session::response::HistoryItem;

/// Bytes of the line start kept until the line is known to be the response or a notification.
pub const STREAM_PREFIX: usize = 128;
/// Longest server error message kept from a streamed response (longer ones are cut).
pub const STREAM_ERROR_MESSAGE: usize = 128;

/// What a streamed response holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamKind {
    /// `blockchain.block.headers` (either form), starting at this height.
    Headers {
        /// Height of the first header.
        start_height: u32,
    },
    /// A history list (`get_history`/`get_mempool`; a list, or `{"history": [...]}` at 1.7).
    History,
}

/// One step of the stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Step {
    /// Need more input.
    More,
    /// The line is not the response (it names a `method`): the caller buffers it normally,
    /// starting with the [`ResponseStream::prefix`] bytes.
    NotResponse,
    /// A header of the result.
    Header {
        /// Its height.
        height: u32,
        /// The header.
        header: [u8; HEADER_SIZE],
    },
    /// A history row.
    HistoryItem(HistoryItem),
    /// The response ended well: its id and how many items it had.
    Done {
        /// The id the server echoed.
        id: Option<u64>,
        /// Items streamed.
        items: u32,
    },
    /// The server answered with an error; code and (cut) message are in the stream.
    ServerError {
        /// The id the server echoed.
        id: Option<u64>,
    },
    /// The line is not a valid response of the expected shape.
    Failed(StreamError),
}

/// Why a streamed response was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StreamError {
    /// Invalid JSON.
    Json(JsonError),
    /// Valid JSON of the wrong shape (a header not 160 hex digits, a count that disagrees, …).
    Shape,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Reading the first keys of a line.
    Undecided,
    /// Known to be the response.
    Response,
    /// Finished (done, error or failed) until [`ResponseStream::next_line`].
    Finished,
}

/// Top-level keys and keys inside the result that matter.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Key {
    None,
    Id,
    Result,
    Error,
    Method,
    Count,
    Hex,
    Headers,
    History,
    TxHash,
    Height,
    Fee,
    Code,
    Message,
    Other,
}

impl Key {
    fn parse(k: &[u8]) -> Key {
        match k {
            b"id" => Key::Id,
            b"result" => Key::Result,
            b"error" => Key::Error,
            b"method" => Key::Method,
            b"count" => Key::Count,
            b"hex" => Key::Hex,
            b"headers" => Key::Headers,
            b"history" => Key::History,
            b"tx_hash" => Key::TxHash,
            b"height" => Key::Height,
            b"fee" => Key::Fee,
            b"code" => Key::Code,
            b"message" => Key::Message,
            _ => Key::Other,
        }
    }
}

/// Where a string's bytes go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sink {
    None,
    Key,
    HeaderHex,
    TxHash,
    Message,
}

/// Parses one response line incrementally; see the module documentation.
#[derive(Clone, Debug)]
pub struct ResponseStream {
    kind: StreamKind,
    tok: Tokenizer,
    phase: Phase,
    prefix: [u8; STREAM_PREFIX],
    prefix_len: usize,
    /// Nesting depth after the last token.
    depth: u8,
    /// Key last read at each depth: 1 top level, 2 result or error object, 3-4 history item.
    keys: [Key; 5],
    /// Depth of the result value's container (its items sit one deeper), 0 if not inside.
    result_depth: u8,
    sink: Sink,
    key_buf: [u8; 16],
    key_len: usize,
    hex: [u8; HEADER_SIZE * 2],
    hex_len: usize,
    num: [u8; 24],
    num_len: usize,
    item_txid: Option<Txid>,
    item_height: Option<i64>,
    item_fee: Option<u64>,
    items: u32,
    count: Option<u64>,
    id: Option<u64>,
    saw_result: bool,
    saw_error: bool,
    error_code: Option<i64>,
    message: [u8; STREAM_ERROR_MESSAGE],
    message_len: usize,
}

impl ResponseStream {
    /// A stream for the next response line.
    pub const fn new(kind: StreamKind) -> ResponseStream {
        ResponseStream {
            kind,
            tok: Tokenizer::new(),
            phase: Phase::Undecided,
            prefix: [0; STREAM_PREFIX],
            prefix_len: 0,
            depth: 0,
            keys: [Key::None; 5],
            result_depth: 0,
            sink: Sink::None,
            key_buf: [0; 16],
            key_len: 0,
            hex: [0; HEADER_SIZE * 2],
            hex_len: 0,
            num: [0; 24],
            num_len: 0,
            item_txid: None,
            item_height: None,
            item_fee: None,
            items: 0,
            count: None,
            id: None,
            saw_result: false,
            saw_error: false,
            error_code: None,
            message: [0; STREAM_ERROR_MESSAGE],
            message_len: 0,
        }
    }

    /// Starts over for a new line (after a notification line went the buffered way).
    pub fn next_line(&mut self) {
        *self = ResponseStream::new(self.kind);
    }

    /// The bytes of the line consumed before it turned out not to be the response.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[..self.prefix_len]
    }

    /// The server's error code and the start of its raw message, after [`Step::ServerError`].
    pub fn error(&self) -> (Option<i64>, &[u8]) {
        (self.error_code, &self.message[..self.message_len])
    }

    /// Feeds bytes of the line (the caller strips the `\n` and calls [`Self::end_of_line`]
    /// at it). Returns how many bytes were used and the step reached; call again with the rest
    /// after any step but [`Step::More`].
    pub fn feed(&mut self, input: &[u8]) -> (usize, Step) {
        let mut used = 0;
        while used < input.len() {
            if self.phase == Phase::Finished {
                // Only trailing whitespace may follow; the tokenizer checks it.
                return (input.len(), Step::More);
            }
            // While collecting a header, hand over no more than completes it, so that at most
            // one header is produced per call.
            let limit = match self.sink {
                Sink::HeaderHex => (HEADER_SIZE * 2 - self.hex_len).max(1),
                _ => usize::MAX,
            };
            let rest = &input[used..];
            let chunk = &rest[..rest.len().min(limit)];
            let (n, token) = match self.tok.next(chunk) {
                Ok(r) => r,
                Err(e) => return (used, self.fail(StreamError::Json(e))),
            };
            if self.phase == Phase::Undecided {
                let keep = &chunk[..n];
                if self.prefix_len + keep.len() <= STREAM_PREFIX {
                    self.prefix[self.prefix_len..self.prefix_len + keep.len()]
                        .copy_from_slice(keep);
                    self.prefix_len += keep.len();
                } else {
                    // The first keys did not fit: take it for the response.
                    self.phase = Phase::Response;
                }
            }
            used += n;
            if let Some(token) = token {
                let step = self.token(token);
                if step != Step::More {
                    return (used, step);
                }
            }
            if n == 0 {
                break;
            }
        }
        (used, Step::More)
    }

    /// The line ended (`\n` seen). Returns the final step if the response was not finished.
    pub fn end_of_line(&mut self) -> Step {
        if self.phase == Phase::Finished {
            return Step::More;
        }
        match self.tok.finish() {
            Ok(Some(t)) => self.token(t),
            Ok(None) => self.fail(StreamError::Shape),
            Err(e) => self.fail(StreamError::Json(e)),
        }
    }

    fn fail(&mut self, e: StreamError) -> Step {
        self.phase = Phase::Finished;
        Step::Failed(e)
    }

    fn in_result(&self) -> bool {
        self.result_depth > 0 && self.depth >= self.result_depth
    }

    fn token(&mut self, t: Token<'_>) -> Step {
        match t {
            Token::ObjectStart | Token::ArrayStart => {
                let opening_result = self.depth == 1 && self.keys[1] == Key::Result;
                self.depth = self.depth.saturating_add(1);
                if opening_result {
                    self.saw_result = true;
                    self.result_depth = self.depth;
                }
                if let Some(k) = self.keys.get_mut(usize::from(self.depth)) {
                    *k = Key::None;
                }
                Step::More
            }
            Token::ObjectEnd | Token::ArrayEnd => {
                let closing = self.depth;
                self.depth = self.depth.saturating_sub(1);
                if closing == self.result_depth {
                    self.result_depth = 0;
                }
                if let StreamKind::History = self.kind
                    && matches!(t, Token::ObjectEnd)
                    && self.is_history_item_depth(closing)
                {
                    return self.history_item();
                }
                if closing == 1 {
                    return self.finish();
                }
                Step::More
            }
            Token::StrStart { key: true } => {
                self.sink = Sink::Key;
                self.key_len = 0;
                Step::More
            }
            Token::StrStart { key: false } => {
                self.sink = self.string_sink();
                self.hex_len = 0;
                Step::More
            }
            Token::StrChunk(b) => self.string_bytes(b),
            Token::StrEnd => self.string_end(),
            Token::NumChunk(b) => {
                let end = (self.num_len + b.len()).min(self.num.len());
                let take = end - self.num_len;
                self.num[self.num_len..end].copy_from_slice(&b[..take]);
                self.num_len += b.len();
                Step::More
            }
            Token::NumEnd => {
                let v = parse_i64(&self.num[..self.num_len.min(self.num.len())]);
                self.num_len = 0;
                self.number(v)
            }
            Token::Null => {
                // `"error": null` (JSON-RPC 1.0 style) and `"fee": null` are fine.
                Step::More
            }
            Token::True | Token::False => {
                if self.in_result() {
                    return self.fail(StreamError::Shape);
                }
                Step::More
            }
        }
    }

    fn is_history_item_depth(&self, closing: u8) -> bool {
        // Items of a list result sit at result_depth + 1; of `{"history": [...]}` one deeper.
        let list_depth = if self.result_list_is_nested() { 3 } else { 2 };
        closing == list_depth + 1 && self.result_depth != 0
    }

    fn result_list_is_nested(&self) -> bool {
        self.keys[2] == Key::History
    }

    fn string_sink(&self) -> Sink {
        if self.depth == 1 && self.keys[1] == Key::Method {
            return Sink::None;
        }
        if self.depth == 2 && self.keys[1] == Key::Error && self.keys[2] == Key::Message {
            return Sink::Message;
        }
        if self.depth == 1 && self.keys[1] == Key::Error {
            // An error sent as a plain string (old electrs).
            return Sink::Message;
        }
        if !self.in_result() {
            return Sink::None;
        }
        match self.kind {
            StreamKind::Headers { .. } => match (self.depth, self.keys[2]) {
                (2, Key::Hex) | (3, Key::Headers) => Sink::HeaderHex,
                _ => Sink::None,
            },
            StreamKind::History => {
                let item_depth: u8 = if self.result_list_is_nested() { 4 } else { 3 };
                let key = self.keys.get(usize::from(item_depth)).copied();
                if self.depth == item_depth && key == Some(Key::TxHash) {
                    Sink::TxHash
                } else {
                    Sink::None
                }
            }
        }
    }

    fn string_bytes(&mut self, b: &[u8]) -> Step {
        match self.sink {
            Sink::Key => {
                let end = self.key_len + b.len();
                if end <= self.key_buf.len() {
                    self.key_buf[self.key_len..end].copy_from_slice(b);
                }
                self.key_len = end;
                Step::More
            }
            Sink::HeaderHex | Sink::TxHash => {
                let cap = if self.sink == Sink::TxHash {
                    64
                } else {
                    HEADER_SIZE * 2
                };
                let end = self.hex_len + b.len();
                if end > cap {
                    return self.fail(StreamError::Shape);
                }
                self.hex[self.hex_len..end].copy_from_slice(b);
                self.hex_len = end;
                if self.sink == Sink::HeaderHex && self.keys[2] == Key::Hex && end == cap {
                    // The `hex` form: one long string, a header every 160 digits.
                    self.hex_len = 0;
                    return self.emit_header();
                }
                Step::More
            }
            Sink::Message => {
                let end = (self.message_len + b.len()).min(STREAM_ERROR_MESSAGE);
                let take = end - self.message_len;
                self.message[self.message_len..end].copy_from_slice(&b[..take]);
                self.message_len = end;
                Step::More
            }
            Sink::None => Step::More,
        }
    }

    fn string_end(&mut self) -> Step {
        let sink = core::mem::replace(&mut self.sink, Sink::None);
        match sink {
            Sink::Key => {
                let key = if self.key_len <= self.key_buf.len() {
                    Key::parse(&self.key_buf[..self.key_len])
                } else {
                    Key::Other
                };
                if let Some(slot) = self.keys.get_mut(usize::from(self.depth)) {
                    *slot = key;
                }
                if self.depth == 1 && self.phase == Phase::Undecided {
                    match key {
                        Key::Method => {
                            self.phase = Phase::Finished;
                            return Step::NotResponse;
                        }
                        Key::Result | Key::Error | Key::Id => self.phase = Phase::Response,
                        _ => {}
                    }
                }
                if self.depth == 1 && key == Key::Error {
                    self.saw_error = true;
                }
                Step::More
            }
            Sink::HeaderHex if self.keys[2] == Key::Headers => {
                if self.hex_len != HEADER_SIZE * 2 {
                    return self.fail(StreamError::Shape);
                }
                self.hex_len = 0;
                self.emit_header()
            }
            Sink::HeaderHex => {
                // End of the `hex` string: it must have held whole headers.
                if self.hex_len != 0 {
                    return self.fail(StreamError::Shape);
                }
                Step::More
            }
            Sink::TxHash => {
                let mut b = [0u8; 32];
                if self.hex_len != 64
                    || hex::decode_reversed_to_slice(&self.hex[..64], &mut b).is_err()
                {
                    return self.fail(StreamError::Shape);
                }
                self.hex_len = 0;
                self.item_txid = Some(Txid::from_byte_array(b));
                Step::More
            }
            Sink::Message | Sink::None => Step::More,
        }
    }

    fn emit_header(&mut self) -> Step {
        let mut header = [0u8; HEADER_SIZE];
        if hex::decode_to_slice(&self.hex, &mut header).is_err() {
            return self.fail(StreamError::Shape);
        }
        let StreamKind::Headers { start_height } = self.kind else {
            return self.fail(StreamError::Shape);
        };
        let height = start_height.saturating_add(self.items);
        self.items = self.items.saturating_add(1);
        Step::Header { height, header }
    }

    fn number(&mut self, v: Option<i64>) -> Step {
        let key = self
            .keys
            .get(usize::from(self.depth))
            .copied()
            .unwrap_or(Key::None);
        match (self.depth, key) {
            (1, Key::Id) => {
                self.id = v.and_then(|v| u64::try_from(v).ok());
                if self.id.is_none() {
                    return self.fail(StreamError::Shape);
                }
            }
            (2, Key::Code) if self.keys[1] == Key::Error => self.error_code = v,
            (2, Key::Count) if self.in_result() => {
                self.count = v.and_then(|v| u64::try_from(v).ok())
            }
            (_, Key::Height) if self.in_result() => self.item_height = v,
            (_, Key::Fee) if self.in_result() => {
                self.item_fee = v.and_then(|v| u64::try_from(v).ok());
                if self.item_fee.is_none() {
                    return self.fail(StreamError::Shape);
                }
            }
            _ => {}
        }
        Step::More
    }

    fn history_item(&mut self) -> Step {
        let (Some(txid), Some(height)) = (self.item_txid.take(), self.item_height.take()) else {
            return self.fail(StreamError::Shape);
        };
        let Ok(height) = TxHeight::from_i64(height) else {
            return self.fail(StreamError::Shape);
        };
        let fee = self.item_fee.take();
        self.items = self.items.saturating_add(1);
        Step::HistoryItem(HistoryItem { txid, height, fee })
    }

    fn finish(&mut self) -> Step {
        self.phase = Phase::Finished;
        if self.saw_error && !self.saw_result && (self.error_code.is_some() || self.message_len > 0)
        {
            return Step::ServerError { id: self.id };
        }
        if !self.saw_result {
            return Step::Failed(StreamError::Shape);
        }
        if let (StreamKind::Headers { .. }, Some(count)) = (self.kind, self.count)
            && count != u64::from(self.items)
        {
            return Step::Failed(StreamError::Shape);
        }
        Step::Done {
            id: self.id,
            items: self.items,
        }
    }
}

/// A JSON integer (no fraction or exponent), if it fits an `i64`.
fn parse_i64(digits: &[u8]) -> Option<i64> {
    let (neg, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for d in digits {
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -v } else { v })
}
