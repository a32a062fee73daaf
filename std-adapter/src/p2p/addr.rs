//! Peer addresses as users write them (`host:port`, `[v6]:port`), the node id, seeds files.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use electrum_spv_core::chain::Network;

/// A peer to dial: host name or address, and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// Host name, IPv4 address, or IPv6 address without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl PeerAddr {
    /// A peer on `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> PeerAddr {
        PeerAddr {
            host: host.into(),
            port,
        }
    }

    /// Which node this address names: see [`NodeId`].
    pub fn node_id(&self) -> NodeId {
        NodeId(self.to_string().to_ascii_lowercase())
    }

    /// A Tor hidden service: reachable only through a SOCKS5 proxy.
    pub fn is_onion(&self) -> bool {
        self.host.to_ascii_lowercase().ends_with(".onion")
    }

    /// Parses `host:port`, or `host` alone with the network's default P2P port.
    ///
    /// # Errors
    /// [`BadPeerAddr`] when the text is neither.
    pub fn parse_with_default(text: &str, network: Network) -> Result<PeerAddr, BadPeerAddr> {
        match text.parse() {
            Ok(a) => Ok(a),
            Err(e) => {
                let host = text.trim();
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                let plain = !host.is_empty() && (!host.contains(':') || host.starts_with('['));
                if plain && !bare.is_empty() {
                    Ok(PeerAddr::new(bare, default_port(network)))
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// The default P2P port of `network` (Bitcoin Core's `chainparams`).
pub const fn default_port(network: Network) -> u16 {
    match network {
        Network::Mainnet => 8333,
        Network::Testnet3 => 18333,
        Network::Testnet4 => 48333,
        Network::Signet => 38333,
        Network::Regtest => 18444,
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a peer address could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPeerAddr(pub String);

impl fmt::Display for BadPeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad peer address {:?} (expected HOST:PORT or [IPV6]:PORT)",
            self.0
        )
    }
}

impl std::error::Error for BadPeerAddr {}

impl FromStr for PeerAddr {
    type Err = BadPeerAddr;

    fn from_str(s: &str) -> Result<PeerAddr, BadPeerAddr> {
        let bad = || BadPeerAddr(s.to_owned());
        let t = s.trim();
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (host, port) = rest.split_once("]:").ok_or_else(bad)?;
            (host, port)
        } else {
            let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
            // An IPv6 address needs brackets, or its last group would be read as the port.
            if host.contains(':') {
                return Err(bad());
            }
            (host, port)
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 || host.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        Ok(PeerAddr::new(host, port))
    }
}

/// A node, as distinct from a connection: two connections to one `host:port` share it, so
/// "announced by N nodes" can count nodes, never connections (a node never announces a
/// transaction back on the connection it came from, but does on a second one).
///
/// It is the canonical `host:port` text (host in lowercase, IPv6 in brackets). An inbound
/// connection's id is its source address: its port is usually ephemeral, so it is the same
/// node as an outbound one only when it says so (not detected yet).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub String);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a seeds list: one `host:port` per line; blank lines and `#` comments (whole lines or
/// after an address) are skipped. A host without a port gets `network`'s default port.
///
/// # Errors
/// The first line that is not an address, with its 1-based number.
pub fn parse_seeds(text: &str, network: Network) -> Result<Vec<PeerAddr>, (usize, BadPeerAddr)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        out.push(PeerAddr::parse_with_default(line, network).map_err(|e| (i + 1, e))?);
    }
    Ok(out)
}

/// [`parse_seeds`] of a file.
///
/// # Errors
/// The file cannot be read, or a line is not an address
/// ([`std::io::ErrorKind::InvalidData`], naming the line).
pub fn read_seeds(path: &Path, network: Network) -> std::io::Result<Vec<PeerAddr>> {
    let text = std::fs::read_to_string(path)?;
    parse_seeds(&text, network).map_err(|(line, e)| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}:{line}: {e}", path.display()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_node_ids() {
        let a: PeerAddr = "Node.Example:8333".parse().unwrap();
        assert_eq!(a, PeerAddr::new("Node.Example", 8333));
        assert_eq!(a.node_id(), NodeId("node.example:8333".into()));
        let v6: PeerAddr = "[::1]:18444".parse().unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 18444));
        assert_eq!(v6.to_string(), "[::1]:18444");
        for bad in [
            "",
            "host",
            "host:",
            "host:0",
            "host:70000",
            "::1:8333",
            "[::1]",
            ":1",
        ] {
            assert!(bad.parse::<PeerAddr>().is_err(), "{bad}");
        }
        let d = PeerAddr::parse_with_default("seed.example", Network::Regtest).unwrap();
        assert_eq!(d.port, 18444);
    }

    #[test]
    fn seeds_with_comments() {
        let text = "# seeds\n127.0.0.1:1\n\n  host.example   # default port\n[::1]:3 # v6\n";
        let seeds = parse_seeds(text, Network::Mainnet).unwrap();
        assert_eq!(
            seeds,
            vec![
                PeerAddr::new("127.0.0.1", 1),
                PeerAddr::new("host.example", 8333),
                PeerAddr::new("::1", 3)
            ]
        );
        assert_eq!(
            parse_seeds("a:1\nb c:2\n", Network::Mainnet).unwrap_err().0,
            2
        );
    }
}
