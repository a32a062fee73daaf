//! Fuzz target `p2p`: the P2P frame reader and message decoder on arbitrary bytes.
//!
//! The first byte picks the mode. With its top bit clear the rest is fed as a raw stream
//! (magics, headers and lengths as the fuzzer makes them). With it set, the low five bits pick
//! a command and the rest becomes the payload of one frame with a correct header and checksum,
//! so the decoders behind the checksum are reached.
//!
//! Checked: nothing panics; every call consumes at most what it was given and `Ok(None)` means
//! all of it; the events (transaction bytes joined) are the same whether the input comes whole,
//! cut in two where the second byte says, or one byte at a time (small inputs); a fatal error
//! is sticky and consumes nothing more; an oversize frame is refused with no payload byte
//! consumed; a small message that decodes re-encodes to exactly the frame it came from.

#![no_main]

use electrum_spv_core::p2p::frame::write_header;
use electrum_spv_core::p2p::{
    Command, FrameError, HEADER_SIZE, Magic, Message, MessageError, MessageReader, Outgoing, encode,
};
use libfuzzer_sys::fuzz_target;

const MAGIC: Magic = Magic::REGTEST;

/// The command of a fuzzer's index: one named here, or `block` (a command not decoded).
fn command(index: usize) -> Command {
    let block = Command::Unknown(*b"block\0\0\0\0\0\0\0");
    Command::ALL
        .get(index % (Command::ALL.len() + 1))
        .copied()
        .unwrap_or(block)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let stream = if mode & 0x80 != 0 {
        let command = command(usize::from(mode & 0x1f));
        framed(command, rest)
    } else {
        rest.to_vec()
    };
    let whole = run(&stream, &[]);
    if let Some(&second) = rest.first() {
        let cut = stream.len() * usize::from(second) / 255;
        assert_eq!(run(&stream, &[cut]), whole, "cut at {cut}");
    }
    if stream.len() <= 2048 {
        let every: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(run(&stream, &every), whole, "byte at a time");
    }
});

/// One frame of `command` around `payload`, with a correct header.
fn framed(command: Command, payload: &[u8]) -> Vec<u8> {
    let mut header = [0u8; HEADER_SIZE];
    write_header(MAGIC, &command, payload, &mut header);
    [&header[..], payload].concat()
}

/// Feeds `stream` cut at `cuts` and returns the events as text (transaction bytes joined).
fn run(stream: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut reader = MessageReader::owned(MAGIC);
    let mut events = Vec::new();
    let mut tx = Vec::new();
    // Bytes of `stream` consumed so far.
    let mut offset = 0;
    let mut start = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        let mut rest = &stream[start..end];
        loop {
            let (used, result) = reader.feed(rest);
            assert!(used <= rest.len());
            rest = &rest[used..];
            offset += used;
            match result {
                Ok(None) => {
                    assert!(rest.is_empty());
                    break;
                }
                Ok(Some(Message::TxBytes(bytes))) => {
                    assert!(!bytes.is_empty());
                    tx.extend_from_slice(bytes);
                }
                Ok(Some(m)) => {
                    if let Some(out) = small(&m) {
                        // The frame just read ends where the reader stopped.
                        let frame = offset
                            .checked_sub(out.len())
                            .and_then(|s| stream.get(s..offset));
                        assert_eq!(Some(&out[..]), frame, "{m:?} re-encodes differently");
                    }
                    if let Message::Tx { len, .. } = m {
                        assert_eq!(tx.len(), len as usize);
                        events.push(format!("tx bytes {:02x?}", tx));
                        tx.clear();
                    }
                    events.push(format!("{m:?}"));
                }
                Err(e) => {
                    events.push(format!("error {e:?}"));
                    tx.clear();
                    if let MessageError::Frame(FrameError::Oversize { len, .. }) = e {
                        // Only the header was taken: the bytes consumed end with its length
                        // field and checksum.
                        let header = stream.get(offset - HEADER_SIZE..offset).expect("a header");
                        assert_eq!(header[16..20], len.to_le_bytes());
                    }
                    if e.is_fatal() {
                        assert_eq!(reader.feed(rest), (0, Err(e)));
                        assert_eq!(reader.feed(b"\xfa\xbf\xb5\xda"), (0, Err(e)));
                        return events;
                    }
                }
            }
        }
        start = end;
    }
    events
}

/// The frame a whole small message re-encodes to.
fn small(m: &Message<'_>) -> Option<Vec<u8>> {
    let out = match *m {
        Message::Version(v) => Outgoing::Version(v),
        Message::Verack => Outgoing::Verack,
        Message::Ping(n) => Outgoing::Ping(n),
        Message::Pong(n) => Outgoing::Pong(n),
        Message::SendHeaders => Outgoing::SendHeaders,
        Message::FeeFilter(r) => Outgoing::FeeFilter(r),
        Message::WtxidRelay => Outgoing::WtxidRelay,
        Message::SendAddrV2 => Outgoing::SendAddrV2,
        Message::GetAddr => Outgoing::GetAddr,
        Message::SendCmpct { announce, version } => Outgoing::SendCmpct { announce, version },
        Message::Reject(r) => Outgoing::Reject(r),
        _ => return None,
    };
    assert_eq!(Some(out.command()), small_command(m));
    let mut buf = [0u8; 1024];
    let len = encode(MAGIC, &out, &mut buf).expect("a decoded message encodes");
    Some(buf[..len].to_vec())
}

fn small_command(m: &Message<'_>) -> Option<Command> {
    Some(match m {
        Message::Version(_) => Command::Version,
        Message::Verack => Command::Verack,
        Message::Ping(_) => Command::Ping,
        Message::Pong(_) => Command::Pong,
        Message::SendHeaders => Command::SendHeaders,
        Message::FeeFilter(_) => Command::FeeFilter,
        Message::WtxidRelay => Command::WtxidRelay,
        Message::SendAddrV2 => Command::SendAddrV2,
        Message::GetAddr => Command::GetAddr,
        Message::SendCmpct { .. } => Command::SendCmpct,
        Message::Reject(_) => Command::Reject,
        _ => return None,
    })
}
