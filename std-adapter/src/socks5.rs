//! A SOCKS5 client (RFC 1928), `CONNECT` only, no authentication: what Tor's SOCKS port needs.
//!
//! Host names are always sent to the proxy as names (address type 3), never resolved here, so
//! `.onion` services work and no DNS query for the server leaves this machine.

use std::fmt;
use std::net::IpAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why the proxy would not connect us.
#[derive(Debug)]
pub enum Socks5Error {
    /// Reading from or writing to the proxy failed.
    Io(std::io::Error),
    /// The proxy does not speak SOCKS5 or refused every authentication method we offer.
    NotSocks5,
    /// The host name is longer than SOCKS5's 255 bytes.
    NameTooLong,
    /// The proxy answered the `CONNECT` with this reply code (1 general failure, 2 not allowed,
    /// 3 network unreachable, 4 host unreachable, 5 refused, 6 TTL expired, 7 command not
    /// supported, 8 address type not supported).
    Refused(u8),
    /// The proxy's reply is malformed.
    BadReply,
}

impl fmt::Display for Socks5Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socks5Error::Io(e) => write!(f, "SOCKS5 proxy: {e}"),
            Socks5Error::NotSocks5 => f.write_str("SOCKS5 proxy refused the handshake"),
            Socks5Error::NameTooLong => f.write_str("host name too long for SOCKS5"),
            Socks5Error::Refused(code) => {
                let why = match code {
                    1 => "general failure",
                    2 => "connection not allowed by ruleset",
                    3 => "network unreachable",
                    4 => "host unreachable",
                    5 => "connection refused",
                    6 => "TTL expired",
                    7 => "command not supported",
                    8 => "address type not supported",
                    _ => "unknown reply code",
                };
                write!(f, "SOCKS5 proxy could not connect: {why} ({code})")
            }
            Socks5Error::BadReply => f.write_str("malformed SOCKS5 reply"),
        }
    }
}

impl std::error::Error for Socks5Error {}

impl From<std::io::Error> for Socks5Error {
    fn from(e: std::io::Error) -> Self {
        Socks5Error::Io(e)
    }
}

/// Asks the proxy on `stream` to connect to `host:port`; on success the stream is a tunnel.
pub async fn connect(stream: &mut TcpStream, host: &str, port: u16) -> Result<(), Socks5Error> {
    // Greeting: version 5, one method, "no authentication".
    stream.write_all(&[5, 1, 0]).await?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await?;
    if choice != [5, 0] {
        return Err(Socks5Error::NotSocks5);
    }
    stream.write_all(&connect_request(host, port)?).await?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await?;
    if head[0] != 5 || head[2] != 0 {
        return Err(Socks5Error::BadReply);
    }
    if head[1] != 0 {
        return Err(Socks5Error::Refused(head[1]));
    }
    // The bound address, which we do not need: skip it by its type.
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(stream.read_u8().await?),
        _ => return Err(Socks5Error::BadReply),
    };
    let mut rest = vec![0u8; skip + 2];
    stream.read_exact(&mut rest).await?;
    Ok(())
}

/// The `CONNECT` request: IP literals as addresses, everything else as a name for the proxy.
fn connect_request(host: &str, port: u16) -> Result<Vec<u8>, Socks5Error> {
    let mut req = vec![5, 1, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            req.push(1);
            req.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            req.push(4);
            req.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            let len = u8::try_from(host.len()).map_err(|_| Socks5Error::NameTooLong)?;
            req.push(3);
            req.push(len);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_to_the_proxy_unresolved() {
        let req = connect_request("abcdef.onion", 50001).unwrap();
        assert_eq!(&req[..5], &[5, 1, 0, 3, 12]);
        assert_eq!(&req[5..17], b"abcdef.onion");
        assert_eq!(&req[17..], &50001u16.to_be_bytes());
        assert_eq!(
            connect_request("127.0.0.1", 1).unwrap(),
            [5, 1, 0, 1, 127, 0, 0, 1, 0, 1]
        );
        assert_eq!(connect_request("::1", 1).unwrap()[3], 4);
        assert!(matches!(
            connect_request(&"a".repeat(256), 1),
            Err(Socks5Error::NameTooLong)
        ));
    }
}
