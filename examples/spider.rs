//! The spider: recursive peer discovery. Starting from the servers given (or the bundled
//! list), asks each for its peers (`server.peers.subscribe`), connects to those in turn (every
//! server's genesis is checked by the session), and prints the servers that answered as a
//! server-list JSON file (the format of `electrum_spv::server_list`).
//!
//! ```text
//! cargo run -p electrum-spv --example spider -- [--network N] [--max 30] [--proxy 127.0.0.1:9050] [URL...]
//! ```

use std::collections::{HashSet, VecDeque};
use std::str::FromStr;
use std::time::Duration;

use electrum_spv::server_list::parse_peers;
use electrum_spv::{
    Client, ClientConfig, Error, Filter, Network, ServerAddr, ServerEntry, ServerList, Transport,
};

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
    config.connect.proxy = config_proxy.clone();
    config.connect.connect_timeout = Duration::from_secs(10);
    config.reconnect = None;

    let mut tried = HashSet::new();
    let mut found = Vec::new();
    while let Some(server) = queue.pop_front() {
        if tried.len() >= max {
            break;
        }
        if !tried.insert(server.clone()) {
            continue;
        }
        let answer = tokio::time::timeout(Duration::from_secs(20), async {
            let c = Client::connect(&server, &config).await?;
            Ok::<_, Error>((c.protocol_version(), c.server_peers().await?))
        })
        .await;
        match answer {
            Ok(Ok((version, peers))) => {
                eprintln!("{server}: protocol {version}");
                for p in parse_peers(&peers, network) {
                    if let Some(a) = p
                        .preferred()
                        .filter(|_| config_proxy.is_some() || !p.is_onion())
                    {
                        queue.push_back(a);
                    }
                }
                found.push(ServerEntry {
                    host: server.host.clone(),
                    tcp: (server.transport == Transport::Tcp).then_some(server.port),
                    ssl: (server.transport == Transport::Ssl).then_some(server.port),
                    version: Some(version.to_string()),
                    pruning: None,
                });
            }
            Ok(Err(e)) => eprintln!("{server}: {e}"),
            Err(_) => eprintln!("{server}: no answer in 20 s"),
        }
    }
    let mut list = ServerList::default();
    list.merge(network, found);
    println!(
        "{}",
        serde_json::to_string_pretty(&list).map_err(|e| Error::InvalidArgument(e.to_string()))?
    );
    Ok(())
}
