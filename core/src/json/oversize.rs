//! The `id` of a response too long to buffer, read from the two windows the
//! [framer](super::framer) keeps of it.
//!
//! Servers place `id` at either end of the envelope: ElectrumX writes
//! `{"jsonrpc": "2.0", "result": …, "id": 7}` (and pads a large reply with spaces before the
//! final `}`), Fulcrum and electrs write `{"id": 7, "jsonrpc": "2.0", "result": …}`. The
//! `jsonrpc` member may sit on either side of `id`. [`oversize_id`] reads the members at the
//! start of the head forward and those at the end of the tail backward, stepping over scalar
//! members (`"jsonrpc": "2.0"`, `"error": null`) and stopping at the first container, which is
//! the large `result` it cannot see through.
//!
//! What it finds is the server's claim, like any id: a hostile server can name any request in
//! flight with it, exactly as it could answer that request with an error. It returns `None`
//! rather than guess: for anything but an object, for a `method` member (a notification or a
//! server request, not a response), for an `id` that is not a plain non-negative integer, for
//! two different ids at the two ends, and for a window that ends inside a member.
//!
//! Work: linear in the windows (at most [`MAX_PROBE`](super::framer::MAX_PROBE) bytes each);
//! no recursion, no panics.
//!
//! ```
//! use electrum_spv_core::json::oversize_id;
//! assert_eq!(oversize_id(br#"{"jsonrpc":"2.0","result":[{"tx_ha"#, br#"3}],"id":7}"#), Some(7));
//! assert_eq!(oversize_id(br#"{"id":7,"jsonrpc":"2.0","result":[{"#, br#"3}]}"#), Some(7));
//! assert_eq!(oversize_id(br#"{"jsonrpc":"2.0","method":"x","params":[["#, b"]]}"), None);
//! ```

/// The id of the JSON-RPC response whose line begins with `head` and ends with `tail` (as
/// [`Frame::Oversize`](super::framer::Frame::Oversize) gives them), if either end names one
/// and they do not disagree.
pub fn oversize_id(head: &[u8], tail: &[u8]) -> Option<u64> {
    let front = Side::Front.id(head);
    let back = Side::Back.id(tail);
    match (front, back) {
        (Found::Method, _) | (_, Found::Method) => None,
        (Found::Id(a), Found::Id(b)) if a != b => None,
        (Found::Id(a), _) | (_, Found::Id(a)) => Some(a),
        _ => None,
    }
}

/// What one end says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Found {
    /// `"id": n`.
    Id(u64),
    /// A `method` member: not a response.
    Method,
    /// Nothing readable.
    Nothing,
}

/// Which end of the line a window is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Front,
    Back,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A scalar's bytes (number, `true`, `false`, `null`).
fn is_scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
}

/// A plain non-negative integer.
fn integer(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

impl Side {
    /// Reads the members at this end of `window`.
    fn id(self, window: &[u8]) -> Found {
        let mut r = Reader {
            bytes: window,
            side: self,
        };
        r.members().unwrap_or(Found::Nothing)
    }
}

/// A scalar member value.
#[derive(Clone, Copy)]
enum Value<'a> {
    /// A string (its content is not needed).
    Str,
    /// A number, `true`, `false` or `null`.
    Bare(&'a [u8]),
}

/// Consumes a window from one end.
struct Reader<'a> {
    bytes: &'a [u8],
    side: Side,
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        while let Some(b) = self.peek()
            && is_space(b)
        {
            self.advance(1);
        }
    }

    /// The next byte from this end.
    fn peek(&self) -> Option<u8> {
        match self.side {
            Side::Front => self.bytes.first().copied(),
            Side::Back => self.bytes.last().copied(),
        }
    }

    fn advance(&mut self, n: usize) {
        let n = n.min(self.bytes.len());
        self.bytes = match self.side {
            Side::Front => self.bytes.get(n..),
            Side::Back => self.bytes.get(..self.bytes.len() - n),
        }
        .unwrap_or(&[]);
    }

    /// Takes `b` (after whitespace) or fails.
    fn expect(&mut self, b: u8) -> Option<()> {
        self.skip_space();
        (self.peek()? == b).then(|| self.advance(1))
    }

    /// A string's raw content (escapes kept), read toward the other end.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let bytes = self.bytes;
        let content = match self.side {
            Side::Front => {
                let mut i = 0;
                loop {
                    match *bytes.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break bytes.get(..i)?,
                        _ => i += 1,
                    }
                }
            }
            Side::Back => {
                // The opening quote is the nearest one not escaped: preceded by an even
                // number of backslashes.
                let mut end = bytes.len();
                loop {
                    let q = bytes.get(..end)?.iter().rposition(|&b| b == b'"')?;
                    let slashes = bytes
                        .get(..q)?
                        .iter()
                        .rev()
                        .take_while(|&&b| b == b'\\')
                        .count();
                    if slashes % 2 == 0 {
                        break bytes.get(q + 1..)?;
                    }
                    end = q;
                }
            }
        };
        self.advance(content.len() + 1);
        Some(content)
    }

    /// A scalar that is not a string; `None` at a container or at the window's end (the
    /// scalar may go on beyond it).
    fn bare(&mut self) -> Option<&'a [u8]> {
        self.skip_space();
        let n = match self.side {
            Side::Front => self
                .bytes
                .iter()
                .take_while(|&&b| is_scalar_byte(b))
                .count(),
            Side::Back => self
                .bytes
                .iter()
                .rev()
                .take_while(|&&b| is_scalar_byte(b))
                .count(),
        };
        if n == 0 || n == self.bytes.len() {
            return None;
        }
        let span = match self.side {
            Side::Front => self.bytes.get(..n),
            Side::Back => self.bytes.get(self.bytes.len() - n..),
        };
        self.advance(n);
        span
    }

    /// A scalar value: a string or not; `None` at a container.
    fn value(&mut self) -> Option<Value<'a>> {
        self.skip_space();
        match self.peek()? {
            b'"' => self.string().map(|_| Value::Str),
            _ => self.bare().map(Value::Bare),
        }
    }

    /// The object's members from this end, until a container, the object's other end or the
    /// window's end: the `id` among them, unless a `method` is there too.
    fn members(&mut self) -> Option<Found> {
        let mut id = None;
        let found = self.walk(&mut id);
        match (found, id) {
            (Some(Found::Method), _) => Some(Found::Method),
            (_, Some(Some(n))) => Some(Found::Id(n)),
            (_, Some(None)) => Some(Found::Nothing),
            (found, None) => found,
        }
    }

    /// Walks members; `id` gets the `id` member's value (`Some(None)`: not an integer).
    /// `Some(Found::Method)` at a `method` member, else where the walk stopped.
    fn walk(&mut self, id: &mut Option<Option<u64>>) -> Option<Found> {
        let (open, close) = match self.side {
            Side::Front => (b'{', b'}'),
            Side::Back => (b'}', b'{'),
        };
        self.expect(open)?;
        loop {
            let (key, value) = match self.side {
                Side::Front => {
                    let key = self.string()?;
                    self.expect(b':')?;
                    (key, self.value())
                }
                Side::Back => {
                    // A container value ends the walk before its key can be read.
                    let value = self.value()?;
                    self.expect(b':')?;
                    (self.string()?, Some(value))
                }
            };
            match key {
                b"method" => return Some(Found::Method),
                b"id" => {
                    let n = match value {
                        Some(Value::Bare(digits)) => integer(digits),
                        _ => None,
                    };
                    if id.is_some_and(|seen| seen != n) {
                        // Twice, differently: believe neither.
                        *id = Some(None);
                    } else {
                        *id = Some(n);
                    }
                    value?;
                }
                _ => {
                    value?;
                }
            }
            self.skip_space();
            match self.peek()? {
                b',' => self.advance(1),
                b if b == close => return Some(Found::Nothing),
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_last_as_electrumx_writes_it() {
        let tail = br#"0, "height": 9}],"id":12}"#;
        assert_eq!(
            oversize_id(br#"{"jsonrpc":"2.0","result":[{"#, tail),
            Some(12)
        );
        // Spaces anywhere between the members, `jsonrpc` after the id, `error: null`.
        let tail = br#"9} ] , "id" : 12 , "error":null,"jsonrpc" : "2.0" }"#;
        assert_eq!(oversize_id(b"{\"result\": [", tail), Some(12));
    }

    #[test]
    fn id_first_as_fulcrum_and_electrs_write_it() {
        let head = br#"{"id":12,"jsonrpc":"2.0","result":[{"tx_hash":"ab"#;
        assert_eq!(oversize_id(head, b"9}]}"), Some(12));
        let head = br#"  { "jsonrpc" : "2.0" , "id" : 12 , "result" : [ {"#;
        assert_eq!(oversize_id(head, b"9}]}"), Some(12));
        // Both ends agree.
        assert_eq!(
            oversize_id(br#"{"id":3,"result":["#, br#"],"id":3}"#),
            Some(3)
        );
    }

    #[test]
    fn no_id() {
        // Neither end shows one.
        assert_eq!(oversize_id(br#"{"jsonrpc":"2.0","result":["#, b"]}"), None);
        // Not JSON, or not an object.
        assert_eq!(oversize_id(b"xxxxxxxx", b"xxxxxxxxxx"), None);
        assert_eq!(
            oversize_id(br#"[{"id":1,"result":["#, br#"],"id":2}]"#),
            None
        );
        assert_eq!(oversize_id(b"", b""), None);
        // A notification or a server request.
        assert_eq!(oversize_id(br#"{"method":"m","params":["#, b"]}"), None);
        assert_eq!(
            oversize_id(br#"{"id":4,"method":"m","params":["#, b"]}"),
            None
        );
        assert_eq!(
            oversize_id(br#"{"params":["#, br#"],"method":"m","id":4}"#),
            None
        );
        // Ids we never send, and a disagreement.
        for id in [
            "\"4\"",
            "-4",
            "4.0",
            "1e3",
            "null",
            "99999999999999999999999",
        ] {
            let tail = format!("],\"id\":{id}}}");
            assert_eq!(oversize_id(b"{\"result\":[", tail.as_bytes()), None, "{id}");
        }
        assert_eq!(oversize_id(br#"{"id":3,"result":["#, br#"],"id":4}"#), None);
        // A window that ends inside the id: the number may go on.
        assert_eq!(oversize_id(br#"{"id":12"#, b"]}"), None);
        assert_eq!(oversize_id(b"{", br#"12}"#), None);
        // A string with escaped quotes before the id is stepped over correctly.
        let tail = br#"],"id":8,"x":"a\"b\\"}"#;
        assert_eq!(oversize_id(b"{\"result\":[", tail), Some(8));
    }

    #[test]
    fn hostile_windows_do_not_panic() {
        let samples: [&[u8]; 10] = [
            b"\"",
            b"\\",
            b"{\"",
            b"{\"id\"",
            b"{\"id\":",
            b":\"id\"}",
            b"\"\\\"}",
            b"}}}}",
            b"{,}",
            b",\"id\":1}",
        ];
        for a in samples {
            for b in samples {
                let _ = oversize_id(a, b);
            }
        }
    }
}
