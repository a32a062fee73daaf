//! Puts `memory.x` where the linker finds it, so cortex-m-rt's `link.x` can include it; and cuts
//! the minimal firmware's script (`src/bin/minimal.rs`) out of the ElectrumX recording.
//!
//! The minimal firmware sends four of the recording's requests (`server.version`,
//! `server.features`, `blockchain.block.headers(100, 14, cp_height=113)` and
//! `blockchain.transaction.get_merkle`), so it gets the recorded lines of those four, both ways,
//! byte for byte except the ids: the recording numbered the last two 6 and 14, the minimal
//! firmware's session numbers them 2 and 3. Written to `OUT_DIR` as `minimal_client.bin` (what
//! the session must write), `minimal_server.bin` (what it is fed) and `minimal_script.rs` (their
//! lengths), so the firmware needs no JSON reader of its own and the data cannot drift from the
//! recording.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// The recording (a copy of `core/tests/data/transcripts/electrumx_1_6.json`).
const RECORDING: &str = "data/electrumx_1_6.json";
/// Recorded ids of the requests the minimal firmware sends, in its order; it numbers them 0..
const IDS: [u32; 4] = [0, 1, 6, 14];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    minimal_script(&out);
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed={RECORDING}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Writes the minimal firmware's script to `out` (see the module docs).
fn minimal_script(out: &Path) {
    let recording = fs::read(RECORDING).expect("read the ElectrumX recording");
    let (client, server) = transcript(&recording);
    let mut client_lines = Vec::new();
    let mut server_lines = Vec::new();
    for (new_id, &old_id) in IDS.iter().enumerate() {
        let new_id = u32::try_from(new_id).expect("four ids");
        let request = line_with_id(&client, old_id, b',');
        client_lines.extend(renumber(request, old_id, new_id));
        let answer = line_with_id(&server, old_id, b' ');
        server_lines.extend(renumber(answer, old_id, new_id));
    }
    fs::write(out.join("minimal_client.bin"), &client_lines).expect("write minimal_client.bin");
    fs::write(out.join("minimal_server.bin"), &server_lines).expect("write minimal_server.bin");
    let lengths = format!(
        "/// Bytes of `minimal_client.bin`.\npub const CLIENT_LEN: usize = {};\n\
         /// Bytes of `minimal_server.bin`.\npub const SERVER_LEN: usize = {};\n",
        client_lines.len(),
        server_lines.len()
    );
    fs::write(out.join("minimal_script.rs"), lengths).expect("write minimal_script.rs");
}

/// The recording's `transcript` as two byte streams: what the client wrote, what it read.
/// Entries are `{"dir": "out"|"in", "data": "<JSON string>"}`; the strings use only the escapes
/// `\"`, `\\` and `\n` (anything else stops the build).
fn transcript(recording: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut rest = after(recording, b"\"transcript\": [").expect("a transcript member");
    let (mut client, mut server) = (Vec::new(), Vec::new());
    while let Some(entry) = after(rest, b"{\"dir\": \"") {
        let (to, entry) = if let Some(e) = entry.strip_prefix(b"out\", \"data\": \"") {
            (&mut client, e)
        } else if let Some(e) = entry.strip_prefix(b"in\", \"data\": \"") {
            (&mut server, e)
        } else {
            panic!("transcript entry without a known dir");
        };
        let mut i = 0;
        loop {
            match entry[i] {
                b'"' => break,
                b'\\' => {
                    to.push(match entry[i + 1] {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'n' => b'\n',
                        other => panic!("unexpected escape \\{}", other as char),
                    });
                    i += 2;
                }
                b => {
                    to.push(b);
                    i += 1;
                }
            }
        }
        rest = &entry[i..];
    }
    (client, server)
}

/// What follows the first `needle` in `haystack`.
fn after<'h>(haystack: &'h [u8], needle: &[u8]) -> Option<&'h [u8]> {
    let at = haystack.windows(needle.len()).position(|w| w == needle)?;
    Some(&haystack[at + needle.len()..])
}

/// The one line of `stream` (newline included) holding `"id":<id>` followed by `next`.
fn line_with_id(stream: &[u8], id: u32, next: u8) -> &[u8] {
    let mut key = format!("\"id\":{id}").into_bytes();
    key.push(next);
    let mut found = stream
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| line.windows(key.len()).any(|w| w == key));
    let line = found
        .next()
        .unwrap_or_else(|| panic!("no line with id {id}"));
    assert!(found.next().is_none(), "several lines with id {id}");
    line
}

/// `line` with its `"id":<old>` made `"id":<new>`.
fn renumber(line: &[u8], old: u32, new: u32) -> Vec<u8> {
    let key = format!("\"id\":{old}").into_bytes();
    let at = line
        .windows(key.len())
        .position(|w| w == key)
        .expect("the id is there");
    let mut renumbered = line[..at].to_vec();
    renumbered.extend(format!("\"id\":{new}").into_bytes());
    renumbered.extend(&line[at + key.len()..]);
    renumbered
}
