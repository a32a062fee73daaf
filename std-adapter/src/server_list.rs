//! Server lists: a documented JSON file (load, filter, save), a bundled default list per
//! network, and peers learned from `server.peers.subscribe`.
//!
//! The file format, one object per network name:
//!
//! ```json
//! {
//!   "mainnet": [
//!     {"host": "electrum.example", "tcp": 50001, "ssl": 50002, "version": "1.4", "pruning": null}
//!   ],
//!   "regtest": []
//! }
//! ```
//!
//! `tcp`/`ssl` are the ports (absent: not offered); `version` (the server's highest protocol)
//! and `pruning` (its history limit, in blocks) are optional.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::server::{ServerAddr, Transport};
use electrum_spv_core::chain::Network;

/// The bundled list (`std-adapter/servers.json`): public servers known when this release was
/// made. Not verified from this build machine, which has no internet: treat it as a starting
/// point that peer discovery refreshes.
pub const BUNDLED: &str = include_str!("../servers.json");

/// Largest number of servers read from a list or learned from peers.
pub const MAX_SERVERS: usize = 1000;

/// One server and what it offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEntry {
    /// Host name, address or `.onion` name.
    pub host: String,
    /// Plain TCP port, if offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<u16>,
    /// TLS port, if offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl: Option<u16>,
    /// Highest protocol version announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// History pruning limit announced, in blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<u64>,
}

impl ServerEntry {
    /// A `.onion` server.
    pub fn is_onion(&self) -> bool {
        self.host.to_ascii_lowercase().ends_with(".onion")
    }

    /// The address for `transport`, if offered.
    pub fn addr(&self, transport: Transport) -> Option<ServerAddr> {
        let port = match transport {
            Transport::Tcp => self.tcp?,
            Transport::Ssl => self.ssl?,
        };
        Some(ServerAddr::new(transport, self.host.clone(), port))
    }

    /// The preferred address: TLS when offered, else TCP.
    pub fn preferred(&self) -> Option<ServerAddr> {
        self.addr(Transport::Ssl)
            .or_else(|| self.addr(Transport::Tcp))
    }
}

/// Which entries to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only servers offering TLS.
    pub ssl_only: bool,
    /// Only servers offering plain TCP.
    pub tcp_only: bool,
    /// Keep `.onion` servers (they need a SOCKS5 proxy).
    pub onion: bool,
    /// Keep only `.onion` servers.
    pub onion_only: bool,
}

impl Filter {
    /// Whether `e` passes.
    pub fn keeps(&self, e: &ServerEntry) -> bool {
        (!self.ssl_only || e.ssl.is_some())
            && (!self.tcp_only || e.tcp.is_some())
            && (self.onion || self.onion_only || !e.is_onion())
            && (!self.onion_only || e.is_onion())
    }
}

/// Servers per network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerList(pub std::collections::BTreeMap<String, Vec<ServerEntry>>);

impl ServerList {
    /// Parses the JSON format above.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for malformed JSON or more than [`MAX_SERVERS`] entries.
    pub fn parse(text: &str) -> Result<ServerList, Error> {
        let list: ServerList = serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("server list: {e}")))?;
        if list.0.values().map(Vec::len).sum::<usize>() > MAX_SERVERS {
            return Err(Error::InvalidArgument(format!(
                "server list holds more than {MAX_SERVERS} servers"
            )));
        }
        Ok(list)
    }

    /// The bundled list.
    pub fn bundled() -> ServerList {
        ServerList::parse(BUNDLED).unwrap_or_default()
    }

    /// Reads a list file.
    ///
    /// # Errors
    /// [`Error::Io`] and as [`ServerList::parse`].
    pub fn load(path: &Path) -> Result<ServerList, Error> {
        ServerList::parse(&std::fs::read_to_string(path)?)
    }

    /// Writes the list (pretty JSON), replacing the file atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// The entries for `network` that pass `filter`.
    pub fn servers(&self, network: Network, filter: Filter) -> Vec<ServerEntry> {
        self.0
            .get(network.name())
            .into_iter()
            .flatten()
            .filter(|e| filter.keeps(e))
            .cloned()
            .collect()
    }

    /// Adds entries for `network`, replacing same-host ones, up to [`MAX_SERVERS`] in all.
    pub fn merge(&mut self, network: Network, entries: impl IntoIterator<Item = ServerEntry>) {
        let total: usize = self.0.values().map(Vec::len).sum();
        let list = self.0.entry(network.name().to_owned()).or_default();
        let mut room = MAX_SERVERS.saturating_sub(total);
        for e in entries {
            if let Some(old) = list.iter_mut().find(|o| o.host == e.host) {
                *old = e;
            } else if room > 0 {
                list.push(e);
                room -= 1;
            }
        }
    }
}

/// Parses a `server.peers.subscribe` result (PROTOCOL.md §3.4): `[[ip, host, [features]]]`
/// with features `v1.4`, `p10000`, `s50002`, `t50001`, bare `s`/`t` for the default ports.
/// Malformed entries are skipped; at most [`MAX_SERVERS`] are read.
pub fn parse_peers(result: &serde_json::Value, network: Network) -> Vec<ServerEntry> {
    let (default_tcp, default_ssl) = default_ports(network);
    let Some(items) = result.as_array() else {
        return Vec::new();
    };
    items
        .iter()
        .take(MAX_SERVERS)
        .filter_map(|item| {
            let item = item.as_array()?;
            let host = item.get(1)?.as_str()?;
            if host.is_empty() || host.len() > 255 {
                return None;
            }
            let mut entry = ServerEntry {
                host: host.to_owned(),
                tcp: None,
                ssl: None,
                version: None,
                pruning: None,
            };
            for feature in item.get(2)?.as_array()? {
                let f = feature.as_str()?;
                let (kind, rest) = f.split_at_checked(1)?;
                match kind {
                    "t" => {
                        entry.tcp = Some(if rest.is_empty() {
                            default_tcp
                        } else {
                            rest.parse().ok()?
                        })
                    }
                    "s" => {
                        entry.ssl = Some(if rest.is_empty() {
                            default_ssl
                        } else {
                            rest.parse().ok()?
                        })
                    }
                    "v" => entry.version = Some(rest.to_owned()),
                    "p" => entry.pruning = rest.parse().ok(),
                    _ => {}
                }
            }
            (entry.tcp.is_some() || entry.ssl.is_some()).then_some(entry)
        })
        .collect()
}

/// Electrum's conventional ports for a network: (tcp, ssl).
pub fn default_ports(network: Network) -> (u16, u16) {
    match network {
        Network::Mainnet => (50001, 50002),
        Network::Testnet3 | Network::Testnet4 => (60001, 60002),
        Network::Signet => (60601, 60602),
        Network::Regtest => (60401, 60402),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_features_and_filters() {
        let peers: serde_json::Value = serde_json::from_str(
            r#"[["1.2.3.4", "a.example", ["v1.4", "s", "t50001", "p10000"]],
                ["x.onion", "x.onion", ["v1.4.2", "t"]],
                ["5.6.7.8", "b.example", ["v1.4", "s995"]],
                ["bad"], ["9.9.9.9", "c.example", ["v1.4"]], 7]"#,
        )
        .unwrap();
        let got = parse_peers(&peers, Network::Mainnet);
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].tcp, got[0].ssl, got[0].pruning),
            (Some(50001), Some(50002), Some(10000))
        );
        assert!(got[1].is_onion());
        assert_eq!(
            got[2].preferred().unwrap().to_string(),
            "ssl://b.example:995"
        );

        let mut list = ServerList::default();
        list.merge(Network::Mainnet, got);
        let all = Filter {
            onion: true,
            ..Filter::default()
        };
        assert_eq!(list.servers(Network::Mainnet, all).len(), 3);
        assert_eq!(list.servers(Network::Mainnet, Filter::default()).len(), 2);
        let ssl = Filter {
            ssl_only: true,
            ..Filter::default()
        };
        assert_eq!(list.servers(Network::Mainnet, ssl).len(), 2);
        let onion = Filter {
            onion_only: true,
            ..Filter::default()
        };
        assert_eq!(list.servers(Network::Mainnet, onion).len(), 1);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("servers.json");
        list.save(&path).unwrap();
        assert_eq!(ServerList::load(&path).unwrap(), list);
    }

    #[test]
    fn bundled_list_parses_and_has_mainnet_servers() {
        let list = ServerList::parse(BUNDLED).expect("bundled list parses");
        assert!(!list.servers(Network::Mainnet, Filter::default()).is_empty());
        assert!(
            list.servers(Network::Mainnet, Filter::default())
                .iter()
                .all(|e| e.preferred().is_some())
        );
    }
}
