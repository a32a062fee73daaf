//! The launcher's own tiny Electrum probe (plain TCP, newline-framed JSON-RPC).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{Value, json};

use crate::Error;

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
