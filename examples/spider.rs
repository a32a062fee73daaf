//! The spider: recursive peer discovery. Starting from the servers given (or the bundled
//! list), asks each for its peers (`server.peers.subscribe`), connects to those in turn (every
//! server's genesis is checked by the session), and prints the servers that answered as a
//! server-list JSON file (the format of `electrum_spv::server_list`).
//!
//! ```text
//! cargo run -p electrum-spv --example spider -- [--network N] [--max 30] [--proxy 127.0.0.1:9050] [URL...]
//! ```

use std::collections::VecDeque;
use std::str::FromStr;
use std::time::Duration;

use electrum_spv::discovery::spider;
use electrum_spv::{ClientConfig, Error, Filter, Network, ServerAddr, ServerEntry, ServerList};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("spider: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let mut network = Network::Mainnet;
    let mut max = 30usize;
    let mut config_proxy = None;
    let mut queue: VecDeque<ServerAddr> = VecDeque::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    let bad = |what: &str| Error::InvalidArgument(what.to_owned());
    while let Some(a) = it.next() {
        match a.as_str() {
            "--network" => {
                let name = it.next().ok_or_else(|| bad("--network needs a name"))?;
                network = Network::ALL
                    .into_iter()
                    .find(|n| n.name() == name)
                    .ok_or_else(|| bad("unknown network"))?;
            }
            "--max" => {
                max = it
                    .next()
                    .and_then(|m| m.parse().ok())
                    .ok_or_else(|| bad("--max needs a number"))?;
            }
            "--proxy" => {
                config_proxy = Some(it.next().ok_or_else(|| bad("--proxy needs H:P"))?.clone())
            }
            url => queue.push_back(
                ServerAddr::from_str(url).map_err(|e| Error::InvalidArgument(e.to_string()))?,
            ),
        }
    }
    if queue.is_empty() {
        let filter = Filter {
            onion: config_proxy.is_some(),
            ..Filter::default()
        };
        queue.extend(
            ServerList::bundled()
                .servers(network, filter)
                .iter()
                .filter_map(ServerEntry::preferred),
        );
    }
    let mut config = ClientConfig::new(network);
    config.connect.proxy = config_proxy;
    config.connect.connect_timeout = Duration::from_secs(10);
    config.reconnect = None;
    let list = spider(queue, &config, max, |server, outcome| match outcome {
        Ok(version) => eprintln!("{server}: protocol {version}"),
        Err(e) => eprintln!("{server}: {e}"),
    })
    .await;
    println!(
        "{}",
        serde_json::to_string_pretty(&list).map_err(|e| Error::InvalidArgument(e.to_string()))?
    );
    Ok(())
}
