//! Checkpoints from a file, in Electrum's `checkpoints.json` format, replacing the compiled-in
//! list of a network: for users with a newer list than this release, and for tests that run
//! real mainnet data against a list that ends where the data does.
//!
//! The file is a JSON list; entry `i` is `[display hash of block 2016*i+2015, target]`, the
//! target being the decimal integer of the proof-of-work target of period `i + 1` (0 where the
//! list does not carry it, as Electrum's test networks do). The network's other consensus
//! parameters stay as compiled in.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use electrum_spv_core::U256;
use electrum_spv_core::chain::{Checkpoint, Network, Params};
use electrum_spv_core::hash::BlockHash;
use electrum_spv_core::header::Target;

use crate::error::Error;

/// Largest checkpoint file read (the mainnet list of 2026 is about 75 KB).
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// The network's parameters, with the checkpoints of `file` when given (else the compiled-in
/// ones). A file is read once per process and network: the parameters live as long as the
/// process, as the compiled-in ones do.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::InvalidArgument`] when it is not a
/// checkpoint list.
pub fn network_params(network: Network, file: Option<&Path>) -> Result<&'static Params, Error> {
    let Some(file) = file else {
        return Ok(network.params());
    };
    static LOADED: Mutex<Vec<(Network, PathBuf, &'static Params)>> = Mutex::new(Vec::new());
    let path = std::fs::canonicalize(file)?;
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, _, p)) = loaded.iter().find(|(n, f, _)| *n == network && *f == path) {
        return Ok(p);
    }
    let size = std::fs::metadata(&path)?.len();
    if size > MAX_FILE_SIZE {
        return Err(Error::InvalidArgument(format!(
            "checkpoint file {} is larger than {MAX_FILE_SIZE} bytes",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path)?;
    let list = parse(&text).map_err(|why| {
        Error::InvalidArgument(format!("checkpoint file {}: {why}", path.display()))
    })?;
    let base = network.params();
    let params: &'static Params = Box::leak(Box::new(Params {
        // Electrum's file lists every period from the first.
        checkpoints: Box::leak(list.into_boxed_slice()),
        first_checkpoint_period: 0,
        ..*base
    }));
    loaded.push((network, path, params));
    Ok(params)
}

/// Parses Electrum's `checkpoints.json`.
fn parse(text: &str) -> Result<Vec<Checkpoint>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let mut out = Vec::new();
    p.expect(b'[')?;
    if p.peek() == Some(b']') {
        p.at += 1;
    } else {
        loop {
            out.push(p.entry().map_err(|e| format!("entry {}: {e}", out.len()))?);
            match p.next() {
                Some(b',') => continue,
                Some(b']') => break,
                _ => return Err(format!("entry {}: expected ',' or ']'", out.len())),
            }
        }
    }
    if p.peek().is_some() {
        return Err("text after the list".into());
    }
    Ok(out)
}

/// A cursor over the file's bytes; whitespace is skipped before every token.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_whitespace(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.s.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Result<(), String> {
        match self.next() {
            Some(b) if b == want => Ok(()),
            _ => Err(format!("expected '{}'", want as char)),
        }
    }

    /// `["<64 hex digits>", <decimal target>]`
    fn entry(&mut self) -> Result<Checkpoint, String> {
        self.expect(b'[')?;
        self.expect(b'"')?;
        let start = self.at;
        let end = start + 64;
        let hex = self.s.get(start..end).ok_or("hash too short")?;
        let hash = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| h.parse::<BlockHash>().ok())
            .ok_or("hash is not 64 hex digits")?;
        self.at = end;
        self.expect(b'"')?;
        self.expect(b',')?;
        self.skip_whitespace();
        let digits_start = self.at;
        while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        let target =
            decimal(&self.s[digits_start..self.at]).ok_or("target is not a 256-bit integer")?;
        self.expect(b']')?;
        let next_bits = (!target.is_zero()).then(|| Target(target).to_compact());
        Ok(Checkpoint::from_parts(hash, next_bits))
    }
}

/// A decimal integer below 2^256.
fn decimal(digits: &[u8]) -> Option<U256> {
    if digits.is_empty() || digits.len() > 78 {
        return None;
    }
    let mut limbs = [0u64; 4];
    for d in digits {
        let mut carry = u128::from(d - b'0');
        for limb in &mut limbs {
            let v = u128::from(*limb) * 10 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(U256::from_limbs(limbs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = include_str!("../../core/tests/data/checkpoints/checkpoints_mainnet.json");

    #[test]
    fn electrums_mainnet_list_equals_the_compiled_in_one() {
        let list = parse(LIST).unwrap();
        let compiled = Network::Mainnet.params().checkpoints;
        assert_eq!(list.len(), compiled.len());
        assert_eq!(list.as_slice(), compiled);
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in [
            "",
            "{}",
            "[[\"00\", 1]]",
            "[[\"00000000693067b0e6b440bc51450b9f3850561b07f6d3c021c54fbd6abb9763\" 1]]",
            "[[\"00000000693067b0e6b440bc51450b9f3850561b07f6d3c021c54fbd6abb9763\", -1]]",
            "[[\"00000000693067b0e6b440bc51450b9f3850561b07f6d3c021c54fbd6abb9763\", 1]] x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse(" [ ] ").unwrap(), Vec::new());
        let too_big = format!(
            "[[\"00000000693067b0e6b440bc51450b9f3850561b07f6d3c021c54fbd6abb9763\", 1{}]]",
            "0".repeat(78)
        );
        assert!(parse(&too_big).is_err());
    }

    #[test]
    fn a_file_replaces_the_networks_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        let entries: Vec<&str> = LIST.split("],").take(3).collect();
        std::fs::write(&path, format!("{}]]", entries.join("],"))).unwrap();
        let params = network_params(Network::Mainnet, Some(&path)).unwrap();
        assert_eq!(params.checkpoints.len(), 3);
        assert_eq!(params.genesis_hash, Network::Mainnet.params().genesis_hash);
        // Read once: the same parameters again.
        assert!(std::ptr::eq(
            params,
            network_params(Network::Mainnet, Some(&path)).unwrap()
        ));
        assert!(std::ptr::eq(
            network_params(Network::Mainnet, None).unwrap(),
            Network::Mainnet.params()
        ));
    }
}
