//! The `electrum-spv` command line: a verifying Electrum client for operators and developers.
//!
//! ```text
//! electrum-spv [--network N] [--server tcp://H:P | ssl://H:P]... [--proxy socks5://H:P]
//!              [--tls-pin SHA256 | --tls-ca FILE | --tls-tofu FILE] [--json] COMMAND
//! ```
//!
//! Errors print one line to stderr and exit with status 1 (2 for usage errors).

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("electrum-spv: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(cli::run(args)) {
        eprintln!("electrum-spv: {e}");
        std::process::exit(1);
    }
}
