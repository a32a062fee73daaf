//! Verifies a file of block headers from an anchor and prints the tip.
//!
//! ```text
//! cargo run --release -p electrum-spv-core --example verify_headers -- \
//!     --network mainnet --start-height 822528 core/tests/data/mainnet/headers_822528_830592.bin
//! ```
//!
//! FILE holds raw concatenated 80-byte headers, or with `--hex` one hex header per line. The
//! first header must be at `--start-height`, which must be 0 (genesis) or a multiple of 2016
//! covered by a compiled-in checkpoint, unless `--trust-first` takes the first header on trust.
//!
//! Success: exit 0, last line `ok N FIRST..LAST TIPHASH`. A header that breaks a rule: exit 1,
//! last line `error height H: REASON`. Bad usage or an unreadable file: exit 2. Memory use is
//! constant: the file is streamed, one header at a time.

use std::io::{BufRead, BufReader};
use std::process::ExitCode;

use electrum_spv_core::chain::{Anchor, HeaderError, HeaderVerifier, Network};
use electrum_spv_core::header::{HEADER_SIZE, HeaderParseError};
use electrum_spv_core::hex;

const USAGE: &str = "usage: verify_headers [--network mainnet|testnet|testnet4|signet|regtest] \
                     [--start-height H] [--hex] [--trust-first] FILE";

struct Args {
    network: Network,
    start_height: u32,
    hex: bool,
    trust_first: bool,
    file: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut network = Network::Mainnet;
    let mut start_height = 0;
    let mut hex = false;
    let mut trust_first = false;
    let mut file = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--network" => {
                let v = args.next().ok_or("--network needs a value")?;
                network = v.parse().map_err(|e| format!("{e}"))?;
            }
            "--start-height" => {
                let v = args.next().ok_or("--start-height needs a value")?;
                start_height = v.parse().map_err(|_| format!("bad --start-height {v:?}"))?;
            }
            "--hex" => hex = true,
            "--trust-first" => trust_first = true,
            "-h" | "--help" => return Err(USAGE.into()),
            f if !f.starts_with('-') && file.is_none() => file = Some(f.to_owned()),
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let file = file.ok_or_else(|| format!("missing FILE\n{USAGE}"))?;
    Ok(Args {
        network,
        start_height,
        hex,
        trust_first,
        file,
    })
}

/// Reads the next header: `Ok(None)` at end of input.
fn next_header(
    input: &mut impl BufRead,
    hex_lines: bool,
    line: &mut String,
) -> std::io::Result<Option<Result<[u8; HEADER_SIZE], HeaderParseError>>> {
    if hex_lines {
        loop {
            line.clear();
            if input.read_line(line)? == 0 {
                return Ok(None);
            }
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let mut out = [0u8; HEADER_SIZE];
            return Ok(Some(
                hex::decode_to_slice(text.as_bytes(), &mut out)
                    .map(|()| out)
                    .map_err(HeaderParseError::Hex),
            ));
        }
    }
    let mut out = [0u8; HEADER_SIZE];
    let mut filled = 0;
    while filled < HEADER_SIZE {
        match input.read(&mut out[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(match filled {
        0 => None,
        HEADER_SIZE => Some(Ok(out)),
        n => Some(Err(HeaderParseError::BadLength(n))),
    })
}

fn run(args: &Args) -> Result<ExitCode, String> {
    let params = args.network.params();
    let file = std::fs::File::open(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
    let mut input = BufReader::with_capacity(1 << 16, file);
    let mut line = String::new();
    let io_err = |e: std::io::Error| format!("{}: {e}", args.file);

    let mut verifier = match Anchor::at_height(params, args.start_height) {
        Ok(anchor) => HeaderVerifier::new(params, anchor),
        Err(e) if !args.trust_first => {
            return Err(format!(
                "{e} (pass --trust-first to take the first header on trust)"
            ));
        }
        Err(_) => match next_header(&mut input, args.hex, &mut line).map_err(io_err)? {
            None => return Err("no headers in file".into()),
            Some(Err(kind)) => return Ok(fail(args.start_height, kind.into())),
            Some(Ok(first)) => {
                match HeaderVerifier::trusting_first(params, args.start_height, &first) {
                    Ok(v) => v,
                    Err(e) => return Ok(report(e)),
                }
            }
        },
    };
    while let Some(header) = next_header(&mut input, args.hex, &mut line).map_err(io_err)? {
        let result = match header {
            Ok(h) => verifier.push(&h),
            Err(kind) => return Ok(fail(verifier.next_height(), kind.into())),
        };
        if let Err(e) = result {
            return Ok(report(e));
        }
    }
    let Some(tip) = verifier.tip() else {
        return Err("no headers in file".into());
    };
    let count = tip.height - verifier.anchor().height + 1;
    let origin = if verifier.work_is_absolute() {
        "from genesis"
    } else {
        "from the anchor"
    };
    println!("chainwork 0x{} ({origin})", tip.chainwork);
    println!(
        "ok {count} {}..{} {}",
        verifier.anchor().height,
        tip.height,
        tip.hash
    );
    Ok(ExitCode::SUCCESS)
}

fn fail(height: u32, kind: electrum_spv_core::chain::HeaderErrorKind) -> ExitCode {
    report(HeaderError { height, kind })
}

fn report(e: HeaderError) -> ExitCode {
    println!("error {e}");
    ExitCode::from(1)
}

fn main() -> ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
    }
}
