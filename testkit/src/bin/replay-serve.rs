//! Serves the real mainnet data through the test kit's replay Electrum server, for the Python
//! and Kotlin tests: `replay-serve [--lie NAME]` (names as `ReplayLie::name`, default `none`)
//! starts the server, writes the checkpoint file to a temporary directory and prints ONE JSON
//! line: `{"url", "checkpoints": path, "lie", "scripts": [{"name", "script_hex", "address",
//! "scripthash", "history": [{"tx_hash", "height", "block_hash"}], "status", "utxos":
//! [{"tx_hash", "tx_pos", "height", "value"}]}]}`. It then runs until its standard input is
//! closed, and exits, removing the directory.

use std::io::Write;

use electrum_spv_testkit::Error;
use electrum_spv_testkit::replay::{self, Example, ReplayLie, ReplayServer};
use serde_json::{Value, json};

fn main() {
    if let Err(e) = run() {
        eprintln!("replay-serve: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let lie = lie_from_args(std::env::args().skip(1))?;
    let server = ReplayServer::start(lie)?;
    let dir = tempfile::tempdir()?;
    let checkpoints = replay::checkpoints_file(dir.path())?;
    let scripts: Vec<Value> = replay::examples()?.iter().map(example_json).collect();
    let hello = json!({
        "url": server.url(),
        "checkpoints": checkpoints.display().to_string(),
        "lie": lie.name(),
        "scripts": scripts,
    });
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{hello}")?;
    stdout.flush()?;
    // Serve until the parent closes our stdin (or dies): read and discard to EOF.
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    drop(server);
    Ok(())
}

fn lie_from_args(mut args: impl Iterator<Item = String>) -> Result<ReplayLie, Error> {
    let mut lie = ReplayLie::None;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--lie", Some(name)) => {
                lie = ReplayLie::from_name(&name).ok_or_else(|| {
                    let names: Vec<&str> = ReplayLie::ALL.iter().map(|l| l.name()).collect();
                    Error::msg(format!("unknown lie {name:?}; one of {}", names.join(", ")))
                })?;
            }
            _ => {
                return Err(Error::msg(format!(
                    "usage: replay-serve [--lie NAME] (got {arg:?})"
                )));
            }
        }
    }
    Ok(lie)
}

fn example_json(e: &Example) -> Value {
    let history: Vec<Value> = e
        .history
        .iter()
        .map(|t| {
            json!({"tx_hash": t.txid.to_string(), "height": t.height, "block_hash": t.block_hash.to_string()})
        })
        .collect();
    let utxos: Vec<Value> = e
        .utxos
        .iter()
        .map(|u| json!({"tx_hash": u.txid.to_string(), "tx_pos": u.vout, "height": u.height, "value": u.value}))
        .collect();
    json!({
        "name": e.name,
        "script_hex": e.script.to_hex_string(),
        // null for scripts without an address (the early P2PK coins).
        "address": bitcoin::Address::from_script(&e.script, bitcoin::Network::Bitcoin)
            .ok()
            .map(|a| a.to_string()),
        "scripthash": e.scripthash,
        "history": history,
        "status": e.status,
        "utxos": utxos,
    })
}
