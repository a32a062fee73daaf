//! Server addresses as users write them: `tcp://host:port`, `ssl://host:port`, or the forms
//! Electrum's own server lists use (`host:port:t`, `host:port:s`).

use std::fmt;
use std::str::FromStr;

/// How to talk to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain TCP (Electrum's `t` ports, 50001 on mainnet by convention).
    Tcp,
    /// TLS over TCP (Electrum's `s` ports, 50002 by convention).
    Ssl,
}

/// A server: transport, host name or address, port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    /// Transport.
    pub transport: Transport,
    /// Host name, IPv4 address, or IPv6 address without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a server address could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadServerAddr(pub String);

impl fmt::Display for BadServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad server address {:?} (expected tcp://HOST:PORT, ssl://HOST:PORT or HOST:PORT:t|s)",
            self.0
        )
    }
}

impl std::error::Error for BadServerAddr {}

impl ServerAddr {
    /// A server on `host:port` over `transport`.
    pub fn new(transport: Transport, host: impl Into<String>, port: u16) -> ServerAddr {
        ServerAddr {
            transport,
            host: host.into(),
            port,
        }
    }

    /// A Tor hidden service (`.onion`): reachable only through a SOCKS5 proxy, and its name
    /// must be resolved by the proxy.
    pub fn is_onion(&self) -> bool {
        self.host.to_ascii_lowercase().ends_with(".onion")
    }

    /// `host:port`, IPv6 in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.transport {
            Transport::Tcp => "tcp",
            Transport::Ssl => "ssl",
        };
        write!(f, "{scheme}://{}", self.authority())
    }
}

impl FromStr for ServerAddr {
    type Err = BadServerAddr;

    fn from_str(s: &str) -> Result<ServerAddr, BadServerAddr> {
        let bad = || BadServerAddr(s.to_owned());
        let (transport, rest) = if let Some(rest) = s.strip_prefix("tcp://") {
            (Some(Transport::Tcp), rest)
        } else if let Some(rest) = s.strip_prefix("ssl://").or(s.strip_prefix("tls://")) {
            (Some(Transport::Ssl), rest)
        } else {
            (None, s)
        };
        let (host, rest) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or_else(bad)?;
                (host, after.strip_prefix(':').ok_or_else(bad)?)
            }
            None => rest.split_once(':').ok_or_else(bad)?,
        };
        let (port, suffix) = match rest.split_once(':') {
            Some((port, suffix)) => (port, Some(suffix)),
            None => (rest, None),
        };
        let transport = match (transport, suffix) {
            (Some(t), None) => t,
            (None, None | Some("t")) => Transport::Tcp,
            (None, Some("s")) => Transport::Ssl,
            _ => return Err(bad()),
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(bad());
        }
        Ok(ServerAddr::new(transport, host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let tcp = |h: &str, p| ServerAddr::new(Transport::Tcp, h, p);
        let ssl = |h: &str, p| ServerAddr::new(Transport::Ssl, h, p);
        for (text, want) in [
            ("tcp://127.0.0.1:50001", tcp("127.0.0.1", 50001)),
            (
                "ssl://electrum.example:50002",
                ssl("electrum.example", 50002),
            ),
            (
                "tls://electrum.example:50002",
                ssl("electrum.example", 50002),
            ),
            ("host:1", tcp("host", 1)),
            ("host:50002:s", ssl("host", 50002)),
            ("host:50001:t", tcp("host", 50001)),
            ("tcp://[::1]:50001", tcp("::1", 50001)),
            ("abc.onion:50001:t", tcp("abc.onion", 50001)),
        ] {
            assert_eq!(text.parse::<ServerAddr>(), Ok(want.clone()), "{text}");
            assert_eq!(want.to_string().parse::<ServerAddr>(), Ok(want));
        }
        for bad in [
            "",
            "host",
            "tcp://host",
            "host:0",
            "host:99999",
            "tcp://host:1:s",
            "host:1:x",
            "[::1:1",
            ":1",
            "http://host:1",
        ] {
            assert!(bad.parse::<ServerAddr>().is_err(), "{bad}");
        }
        assert!("x.ONION:1".parse::<ServerAddr>().unwrap().is_onion());
    }
}
