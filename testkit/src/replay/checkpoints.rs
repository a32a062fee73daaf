//! The Electrum-format checkpoint file for a client of the replay server.

use std::path::{Path, PathBuf};

use bitcoin::BlockHash;
use bitcoin::hashes::{Hash, sha256d};

use super::data::{Data, data, data_dir};
use crate::Error;

/// How many checkpoints [`checkpoints_file`] writes: periods 0..=411, so the last one is block
/// 830591 and a client anchored there starts at the replay server's tip, 830592.
pub const CHECKPOINT_COUNT: usize = 412;

/// Writes `dir/checkpoints.json`: entries 0..[`CHECKPOINT_COUNT`] of the mainnet checkpoint
/// list (`core/tests/data/checkpoints/checkpoints_mainnet.json`, copied verbatim), in the
/// format Electrum ships: a JSON list of `[display hash of block 2016 i + 2015, target as a
/// decimal integer]`. Every transaction the replay server knows lies below the last one.
///
/// Entries the server has headers for (0..=4 and 408..=411) are checked against them first.
pub fn checkpoints_file(dir: &Path) -> Result<PathBuf, Error> {
    let source = data_dir().join("checkpoints/checkpoints_mainnet.json");
    let text = std::fs::read_to_string(&source)
        .map_err(|e| Error::msg(format!("{}: {e}", source.display())))?;
    let entries = parse(&text)?;
    let entries = entries.get(..CHECKPOINT_COUNT).ok_or_else(|| {
        Error::msg(format!(
            "{} has fewer than {CHECKPOINT_COUNT} entries",
            source.display()
        ))
    })?;
    check_against_headers(data()?, entries)?;
    let lines: Vec<String> = entries
        .iter()
        .map(|(hash, target)| format!("    [\"{hash}\", {target}]"))
        .collect();
    let path = dir.join("checkpoints.json");
    std::fs::write(&path, format!("[\n{}\n]\n", lines.join(",\n")))
        .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// The `(hash, target)` entries of a checkpoint list, both as text. Parsed by hand because
/// the targets are 256-bit integers that `serde_json` (without arbitrary precision) would
/// round through `f64`.
fn parse(text: &str) -> Result<Vec<(String, String)>, Error> {
    let bad = |what: &str| Error::msg(format!("checkpoint list: {what}"));
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let inner = compact
        .strip_prefix("[[")
        .and_then(|s| s.strip_suffix("]]"))
        .ok_or_else(|| bad("not a list of pairs"))?;
    inner
        .split("],[")
        .map(|pair| {
            let (hash, target) = pair.split_once(',').ok_or_else(|| bad(pair))?;
            let hash = hash
                .strip_prefix('"')
                .and_then(|h| h.strip_suffix('"'))
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| bad(pair))?;
            if target.is_empty() || !target.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(pair));
            }
            Ok((hash.to_owned(), target.to_owned()))
        })
        .collect()
}

/// Each entry whose block the server has a header for must name that header's hash.
fn check_against_headers(data: &Data, entries: &[(String, String)]) -> Result<(), Error> {
    for (i, (hash, _)) in entries.iter().enumerate() {
        let height = 2016 * i as u32 + 2015;
        if let Some(header) = data.header(height) {
            let real = BlockHash::from_byte_array(sha256d::Hash::hash(header).to_byte_array());
            if real.to_string() != *hash {
                return Err(Error::msg(format!(
                    "checkpoint {i} names {hash}, but block {height} is {real}"
                )));
            }
        }
    }
    Ok(())
}
