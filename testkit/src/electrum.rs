//! The launcher's own tiny Electrum probe (plain TCP, newline-framed JSON-RPC).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;
use crate::install::tail;
use crate::process::GroupChild;

/// Connects, negotiates `server.version` and returns the `blockchain.headers.subscribe`
/// result (height, header hex). Both requests are sent at once (ElectrumX may hold small
/// replies for about a second).
pub(crate) fn probe_tip(addr: SocketAddr) -> Result<(u32, String), Error> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut writer = stream.try_clone()?;
    let reqs = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "server.version",
               "params": ["electrum-spv-testkit", ["1.4", "1.6"]]}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "blockchain.headers.subscribe", "params": []}),
    ];
    let mut out = String::new();
    for r in reqs {
        out.push_str(&r.to_string());
        out.push('\n');
    }
    writer.write_all(out.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(Error::msg("ElectrumX closed the connection"));
        }
        let v: Value = serde_json::from_str(line.trim())
            .map_err(|e| Error::msg(format!("bad JSON from ElectrumX: {e}")))?;
        if v["id"] == 2 {
            if let Some(err) = v.get("error") {
                return Err(Error::msg(format!("headers.subscribe failed: {err}")));
            }
            let height = v["result"]["height"]
                .as_u64()
                .ok_or_else(|| Error::msg(format!("no height in {v}")))?;
            let hex = v["result"]["hex"].as_str().unwrap_or_default().to_owned();
            return Ok((height as u32, hex));
        }
    }
}

/// Waits until the Electrum server at `addr` (the process `child`, named `name`, logging to
/// `log`) reports `height` from `blockchain.headers.subscribe` (polling a fresh connection),
/// failing with the log's tail if the process exits or `timeout` passes.
pub(crate) fn wait_for_tip(
    name: &str,
    child: &mut GroupChild,
    addr: SocketAddr,
    log: &Path,
    height: u32,
    timeout: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    let log_tail = || tail(&std::fs::read_to_string(log).unwrap_or_default(), 3000).to_owned();
    let mut last;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(Error::msg(format!(
                "{name} exited ({status}); log tail:\n{}",
                log_tail()
            )));
        }
        match probe_tip(addr) {
            Ok((h, _)) if h == height => return Ok(()),
            Ok((h, _)) => last = format!("{name} at height {h}"),
            Err(e) => last = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(Error::msg(format!(
                "{name} did not reach height {height} within {timeout:?} ({last}); log tail:\n{}",
                log_tail()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
