//! Streaming frame reader and frame header writer.
//!
//! A frame is a 24-byte header (magic, 12-byte command, payload length as a little-endian
//! `u32`, the first four bytes of the payload's SHA-256d) and the payload. [`FrameReader`]
//! takes a byte stream in pieces of any size and reports, one per call, the start of a frame
//! (after its header was checked), the payload in the pieces it arrived in (borrowed from the
//! input, never copied), and the end of the frame once the checksum matched.
//!
//! The payload length is checked against [`payload_cap`] of the command as soon as the header
//! is complete: an oversize frame is refused having consumed its 24 header bytes and nothing
//! more. A bad magic, an invalid command or an oversize length leave the stream without a
//! known next frame (Core disconnects for them): the error is sticky. A bad checksum is
//! reported once and reading goes on with the next frame (Core drops the message and keeps
//! the connection).
//!
//! ```
//! use electrum_spv_core::p2p::{Command, FrameEvent, FrameReader, Magic};
//! let frame = [
//!     0xfa, 0xbf, 0xb5, 0xda, b'v', b'e', b'r', b'a', b'c', b'k', 0, 0, 0, 0, 0, 0, // magic, command
//!     0, 0, 0, 0, 0x5d, 0xf6, 0xe0, 0xe2, // length 0, checksum of nothing
//! ];
//! let mut reader = FrameReader::new(Magic::REGTEST);
//! let mut rest = &frame[..];
//! let mut events = 0;
//! loop {
//!     let (used, event) = reader.feed(rest);
//!     rest = &rest[used..];
//!     match event.unwrap() {
//!         Some(FrameEvent::Start { command, len }) => assert_eq!((command, len), (Command::Verack, 0)),
//!         Some(FrameEvent::End { .. }) => events += 1,
//!         Some(FrameEvent::Payload(_)) => unreachable!(),
//!         None => break, // everything was consumed; feed more when it arrives
//!     }
//! }
//! assert_eq!(events, 1);
//! ```

use core::fmt;

use super::{COMMAND_SIZE, Command, Magic, payload_cap};
use crate::hash::Sha256dEngine;

/// Size of a frame header.
pub const HEADER_SIZE: usize = 24;

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The frame does not start with the network's magic (fatal).
    BadMagic([u8; 4]),
    /// The command field is not printable ASCII followed by NUL padding (fatal).
    BadCommand([u8; COMMAND_SIZE]),
    /// The announced payload is longer than the command's cap (fatal; nothing of the payload
    /// was taken).
    Oversize {
        /// The frame's command.
        command: Command,
        /// The length its header announced.
        len: u32,
        /// [`payload_cap`] of the command.
        cap: u32,
    },
    /// The payload does not hash to the header's checksum; the frame is dropped and reading
    /// goes on with the next one.
    BadChecksum {
        /// The frame's command.
        command: Command,
    },
}

impl FrameError {
    /// The stream cannot go on after this error (everything but a bad checksum).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FrameError::BadChecksum { .. })
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic(m) => write!(f, "bad network magic {m:02x?}"),
            FrameError::BadCommand(c) => write!(f, "invalid command field {c:02x?}"),
            FrameError::Oversize { command, len, cap } => {
                write!(f, "{command} of {len} bytes is over its cap of {cap}")
            }
            FrameError::BadChecksum { command } => write!(f, "{command} with a bad checksum"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

/// What one call of [`FrameReader::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// A frame header was read and checked.
    Start {
        /// Its command.
        command: Command,
        /// Its payload length, at most [`payload_cap`] of the command.
        len: u32,
    },
    /// The next bytes of the payload (never empty), as they were fed.
    Payload(&'a [u8]),
    /// The payload ended and its checksum matched.
    End {
        /// SHA-256d of the whole payload, internal byte order (for a `tx`, its wtxid).
        hash: [u8; 32],
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Gathering a header: this many bytes are in `header`.
    Header(u8),
    /// Inside a payload: this many bytes are still to come.
    Payload(u32),
    /// A fatal error happened.
    Failed(FrameError),
}

/// Splits a byte stream into checked frames. Memory: `size_of::<FrameReader>()` is at most
/// [`FRAME_READER_MAX_SIZE`](super::FRAME_READER_MAX_SIZE) (tested). Work: each byte is
/// looked at once and each payload byte hashed once; a header is copied into a 24-byte buffer.
#[derive(Debug, Clone)]
pub struct FrameReader {
    magic: Magic,
    state: State,
    header: [u8; HEADER_SIZE],
    command: Command,
    engine: Sha256dEngine,
}

impl FrameReader {
    /// A reader at the start of a stream of `magic`'s network.
    pub fn new(magic: Magic) -> FrameReader {
        FrameReader {
            magic,
            state: State::Header(0),
            header: [0; HEADER_SIZE],
            command: Command::Verack,
            engine: Sha256dEngine::new(),
        }
    }

    /// The network magic expected.
    pub fn magic(&self) -> Magic {
        self.magic
    }

    /// The command of the frame being read, if a payload is being read.
    pub fn current(&self) -> Option<Command> {
        matches!(self.state, State::Payload(_)).then_some(self.command)
    }

    /// Payload bytes of the current frame still to come (0 outside a payload).
    pub fn remaining(&self) -> u32 {
        match self.state {
            State::Payload(n) => n,
            _ => 0,
        }
    }

    /// Is between frames, with no partial header held.
    pub fn is_idle(&self) -> bool {
        self.state == State::Header(0)
    }

    /// Consumes a prefix of `input` and reports at most one event, with how many bytes were
    /// consumed. `Ok(None)` means all of `input` was consumed and more is needed: call again
    /// with the rest of the input until then (an end of payload is reported by a call even if
    /// `input` is empty). After a fatal error every call returns it again.
    pub fn feed<'a>(
        &mut self,
        input: &'a [u8],
    ) -> (usize, Result<Option<FrameEvent<'a>>, FrameError>) {
        match self.state {
            State::Failed(e) => (0, Err(e)),
            State::Header(have) => self.feed_header(usize::from(have), input),
            State::Payload(0) => {
                self.state = State::Header(0);
                let engine = core::mem::take(&mut self.engine);
                let hash = engine.finalize();
                if hash.get(..4) == self.header.get(20..24) {
                    (0, Ok(Some(FrameEvent::End { hash })))
                } else {
                    (
                        0,
                        Err(FrameError::BadChecksum {
                            command: self.command,
                        }),
                    )
                }
            }
            State::Payload(left) => {
                let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                if take == 0 {
                    return (0, Ok(None));
                }
                let (chunk, _) = input.split_at(take);
                self.engine.update(chunk);
                // `take <= left`, so the difference fits.
                self.state =
                    State::Payload(left.saturating_sub(u32::try_from(take).unwrap_or(u32::MAX)));
                (take, Ok(Some(FrameEvent::Payload(chunk))))
            }
        }
    }

    fn feed_header<'a>(
        &mut self,
        have: usize,
        input: &'a [u8],
    ) -> (usize, Result<Option<FrameEvent<'a>>, FrameError>) {
        let take = input.len().min(HEADER_SIZE.saturating_sub(have));
        if let (Some(dst), Some(src)) = (self.header.get_mut(have..have + take), input.get(..take))
        {
            dst.copy_from_slice(src);
        }
        let have = have + take;
        // The magic is checked as soon as its four bytes are in, so garbage fails early.
        if let Some(&got) = self.header.first_chunk::<4>()
            && have >= 4
            && got != self.magic.0
        {
            return self.fail(take, FrameError::BadMagic(got));
        }
        if have < HEADER_SIZE {
            self.state = State::Header(have as u8);
            return (take, Ok(None));
        }
        let [
            _,
            _,
            _,
            _,
            c0,
            c1,
            c2,
            c3,
            c4,
            c5,
            c6,
            c7,
            c8,
            c9,
            c10,
            c11,
            l0,
            l1,
            l2,
            l3,
            ..,
        ] = self.header;
        let field = [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11];
        let Some(command) = Command::parse(&field) else {
            return self.fail(take, FrameError::BadCommand(field));
        };
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        let cap = payload_cap(&command);
        if len > cap {
            return self.fail(take, FrameError::Oversize { command, len, cap });
        }
        self.command = command;
        self.engine = Sha256dEngine::new();
        self.state = State::Payload(len);
        (take, Ok(Some(FrameEvent::Start { command, len })))
    }

    fn fail<'a>(
        &mut self,
        used: usize,
        e: FrameError,
    ) -> (usize, Result<Option<FrameEvent<'a>>, FrameError>) {
        self.state = State::Failed(e);
        (used, Err(e))
    }
}

/// Writes a frame header for `payload` into `out` (checksum included).
pub fn write_header(magic: Magic, command: &Command, payload: &[u8], out: &mut [u8; HEADER_SIZE]) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    write_header_parts(magic, command, len, &crate::hash::sha256d(payload), out);
}

/// Writes a frame header for a payload of `len` bytes whose SHA-256d is `hash` (the checksum is
/// its first four bytes): for a payload hashed as it was produced, never held whole.
pub fn write_header_parts(
    magic: Magic,
    command: &Command,
    len: u32,
    hash: &[u8; 32],
    out: &mut [u8; HEADER_SIZE],
) {
    let parts: [&[u8]; 4] = [
        &magic.0,
        &command.field(),
        &len.to_le_bytes(),
        hash.get(..4).unwrap_or(&[]),
    ];
    let mut at = 0;
    for part in parts {
        if let Some(dst) = out.get_mut(at..at + part.len()) {
            dst.copy_from_slice(part);
        }
        at += part.len();
    }
}
