//! Recursive peer discovery (the "spider"): ask servers for their peers
//! (`server.peers.subscribe`), then ask those, breadth first.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use electrum_spv_core::rpc::ProtocolVersion;

use crate::client::{Client, ClientConfig};
use crate::error::Error;
use crate::server::{ServerAddr, Transport};
use crate::server_list::{ServerEntry, ServerList, parse_peers};

/// How long one server may take to connect and answer.
pub const PER_SERVER: Duration = Duration::from_secs(20);

/// Contacts up to `max` servers starting from `start`, following each one's peers
/// (`.onion` peers only when `config` has a proxy). Every server's network is checked by the
/// session (genesis hash). `report` hears of each server tried. Returns the servers that
/// answered, as a list for `config`'s network.
pub async fn spider(
    start: impl IntoIterator<Item = ServerAddr>,
    config: &ClientConfig,
    max: usize,
    mut report: impl FnMut(&ServerAddr, Result<ProtocolVersion, &Error>),
) -> ServerList {
    let network = config.network;
    let onion = config.connect.proxy.is_some();
    let mut queue: VecDeque<ServerAddr> = start.into_iter().collect();
    let mut tried = HashSet::new();
    let mut found = Vec::new();
    while let Some(server) = queue.pop_front() {
        if tried.len() >= max {
            break;
        }
        if !tried.insert(server.clone()) {
            continue;
        }
        let answer = tokio::time::timeout(PER_SERVER, async {
            let c = Client::connect(&server, config).await?;
            Ok::<_, Error>((c.protocol_version(), c.server_peers().await?))
        })
        .await
        .unwrap_or(Err(Error::Timeout));
        let (version, peers) = match answer {
            Ok(a) => a,
            Err(e) => {
                report(&server, Err(&e));
                continue;
            }
        };
        report(&server, Ok(version));
        queue.extend(
            parse_peers(&peers, network)
                .iter()
                .filter(|p| onion || !p.is_onion())
                .filter_map(ServerEntry::preferred),
        );
        found.push(ServerEntry {
            host: server.host.clone(),
            tcp: (server.transport == Transport::Tcp).then_some(server.port),
            ssl: (server.transport == Transport::Ssl).then_some(server.port),
            version: Some(version.to_string()),
            pruning: None,
        });
    }
    let mut list = ServerList::default();
    list.merge(network, found);
    list
}
