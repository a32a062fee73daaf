//! The recorded ElectrumX exchange that the scripted step replays, read straight from the
//! recording's JSON file as compiled into flash.
//!
//! The file is `data/electrumx_1_6.json`, a byte-for-byte copy of
//! `core/tests/data/transcripts/electrumx_1_6.json` (see `data/README.md`). Its `transcript`
//! member lists the bytes in the order they crossed the socket, one entry per write or read,
//! one entry per line: `{"dir": "out"|"in", "data": "<JSON string>"}`. This module reads that
//! layout and nothing more general: it is test input, checked by the host tests that wrote it,
//! so a layout it does not expect is reported as [`BadRecording`] rather than parsed loosely.
//!
//! Nothing is copied out of flash: an [`Entry`] borrows its escaped string, and [`Entry::bytes`]
//! unescapes it as it is read.

use core::iter::FusedIterator;

/// The recording, in flash (28 KiB of JSON, of which about 16 KiB is exchanged bytes).
pub static RECORDING: &[u8] = include_bytes!("../data/electrumx_1_6.json");

/// The recording does not have the layout this reader expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRecording;

/// Which way an entry's bytes crossed the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Written by the client (the session).
    Out,
    /// Read from ElectrumX.
    In,
}

/// One write or read of the recording.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// Its direction.
    pub dir: Dir,
    /// The JSON string's contents between the quotes, escapes not yet decoded (checked to be
    /// ones [`Bytes`] decodes).
    escaped: &'static [u8],
}

impl Entry {
    /// The bytes that crossed the socket.
    pub fn bytes(&self) -> Bytes {
        Bytes { rest: self.escaped }
    }
}

/// The entries of the recording's `transcript`, in order.
pub fn entries() -> Result<Entries, BadRecording> {
    const START: &[u8] = b"\"transcript\": [";
    let at = RECORDING
        .windows(START.len())
        .position(|w| w == START)
        .ok_or(BadRecording)?;
    Ok(Entries {
        rest: &RECORDING[at + START.len()..],
        done: false,
    })
}

/// Iterator over the `transcript` entries; yields `Err` once and stops on a layout it does not
/// expect.
#[derive(Clone, Debug)]
pub struct Entries {
    rest: &'static [u8],
    done: bool,
}

impl Iterator for Entries {
    type Item = Result<Entry, BadRecording>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.parse();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

impl FusedIterator for Entries {}

impl Entries {
    /// Reads one `{"dir": …, "data": …}` entry and the separator after it; `None` at `]`.
    fn parse(&mut self) -> Option<Result<Entry, BadRecording>> {
        let rest = self.rest.trim_ascii_start();
        if rest.first() == Some(&b']') {
            return None;
        }
        Some(self.entry(rest))
    }

    fn entry(&mut self, rest: &'static [u8]) -> Result<Entry, BadRecording> {
        let rest = rest.strip_prefix(b"{\"dir\": \"").ok_or(BadRecording)?;
        let (dir, rest) = if let Some(r) = rest.strip_prefix(b"out\"") {
            (Dir::Out, r)
        } else if let Some(r) = rest.strip_prefix(b"in\"") {
            (Dir::In, r)
        } else {
            return Err(BadRecording);
        };
        let rest = rest.strip_prefix(b", \"data\": \"").ok_or(BadRecording)?;
        let len = string_len(rest)?;
        let (escaped, rest) = rest.split_at(len);
        let rest = rest.strip_prefix(b"\"}").ok_or(BadRecording)?;
        let rest = rest.trim_ascii_start();
        self.rest = rest.strip_prefix(b",").unwrap_or(rest);
        Ok(Entry { dir, escaped })
    }
}

/// Length of the JSON string contents at the start of `s`, up to its closing quote, checking
/// that every escape is one [`Bytes`] decodes.
fn string_len(s: &[u8]) -> Result<usize, BadRecording> {
    let mut i = 0;
    loop {
        match s.get(i) {
            Some(b'"') => return Ok(i),
            Some(b'\\') => {
                unescape(*s.get(i + 1).ok_or(BadRecording)?).ok_or(BadRecording)?;
                i += 2;
            }
            // Control characters must be escaped in JSON; ElectrumX writes ASCII.
            Some(b) if (0x20..0x80).contains(b) => i += 1,
            _ => return Err(BadRecording),
        }
    }
}

/// The byte a one-character escape stands for (the recording uses `\"` and `\n`; `\uXXXX`
/// never occurs in ElectrumX's ASCII output and is refused).
fn unescape(c: u8) -> Option<u8> {
    Some(match c {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        _ => return None,
    })
}

/// The bytes of an entry, unescaped as they are read.
#[derive(Clone, Debug)]
pub struct Bytes {
    rest: &'static [u8],
}

impl Bytes {
    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

impl Iterator for Bytes {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        if b != b'\\' {
            self.rest = rest;
            return Some(b);
        }
        // `string_len` checked that a decodable escape character follows every backslash;
        // should that ever fail, end here rather than yield a wrong byte.
        let c = rest.first().copied().and_then(unescape);
        self.rest = if c.is_some() {
            rest.get(1..).unwrap_or(&[])
        } else {
            &[]
        };
        c
    }
}

impl FusedIterator for Bytes {}

/// The bytes of one direction of the recording, entry after entry, with the index (in the whole
/// `transcript` list) of the entry they come from.
///
/// Reads stop at the end of a *run* (consecutive entries of this direction) when asked to, so
/// the caller can check what the other side had sent before the run began.
#[derive(Clone, Debug)]
pub struct Stream {
    dir: Dir,
    /// The entries after the one `current` came from.
    entries: Entries,
    /// Index of the entry `entries` yields next.
    next_index: usize,
    /// The entry being read.
    current: Option<Open>,
}

/// An entry being read.
#[derive(Clone, Debug)]
struct Open {
    index: usize,
    bytes: Bytes,
    touched: bool,
}

impl Stream {
    /// The bytes that went in direction `dir`.
    pub fn new(dir: Dir) -> Result<Stream, BadRecording> {
        Ok(Stream {
            dir,
            entries: entries()?,
            next_index: 0,
            current: None,
        })
    }

    /// The next byte of this direction; `None` at the end of the recording.
    pub fn next_byte(&mut self) -> Result<Option<u8>, BadRecording> {
        self.take(false)
    }

    /// The next byte of the current run; `None` where an entry of the other direction (or
    /// the end) comes first.
    pub fn next_in_run(&mut self) -> Result<Option<u8>, BadRecording> {
        self.take(true)
    }

    /// Where the next byte comes from: the index of its entry and whether nothing of that
    /// entry was read yet; `None` at the end of the recording. Reads nothing.
    pub fn position(&mut self) -> Result<Option<(usize, bool)>, BadRecording> {
        if !self.settle(false)? {
            return Ok(None);
        }
        Ok(self.current.as_ref().map(|o| (o.index, !o.touched)))
    }

    fn take(&mut self, same_run: bool) -> Result<Option<u8>, BadRecording> {
        if !self.settle(same_run)? {
            return Ok(None);
        }
        Ok(self.current.as_mut().and_then(|o| {
            o.touched = true;
            o.bytes.next()
        }))
    }

    /// Opens entries until one with bytes left is current; `false` if none is (within the run
    /// when `same_run`).
    fn settle(&mut self, same_run: bool) -> Result<bool, BadRecording> {
        while self.current.as_ref().is_none_or(|o| o.bytes.is_empty()) {
            let mut peek = self.entries.clone();
            let Some(entry) = peek.next().transpose()? else {
                return Ok(false);
            };
            if same_run && entry.dir != self.dir {
                return Ok(false);
            }
            self.entries = peek;
            let index = self.next_index;
            self.next_index += 1;
            if entry.dir == self.dir {
                self.current = Some(Open {
                    index,
                    bytes: entry.bytes(),
                    touched: false,
                });
            }
        }
        Ok(true)
    }
}
