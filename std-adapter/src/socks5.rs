//! A SOCKS5 client (RFC 1928), `CONNECT` only, with no authentication or with RFC 1929
//! username/password: what Tor's SOCKS port needs.
//!
//! Host names are always sent to the proxy as names (address type 3), never resolved here, so
//! `.onion` services work and no DNS query for the server leaves this machine.
//!
//! Credentials are how Tor isolates streams: with `IsolateSOCKSAuth` (on by default) two
//! connections that sent different username/password pairs never share a circuit. Tor accepts
//! any pair; [`Credentials::random`] makes a fresh one.

use std::fmt;
use std::net::IpAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Method 0x00: no authentication.
const NO_AUTH: u8 = 0x00;
/// Method 0x02: username/password (RFC 1929).
const USERNAME_PASSWORD: u8 = 0x02;
/// The version of RFC 1929's subnegotiation.
const AUTH_VERSION: u8 = 0x01;

/// Why the proxy would not connect us.
#[derive(Debug)]
pub enum Socks5Error {
    /// Reading from or writing to the proxy failed.
    Io(std::io::Error),
    /// The proxy does not speak SOCKS5 or refused every authentication method we offer.
    NotSocks5,
    /// The host name is longer than SOCKS5's 255 bytes.
    NameTooLong,
    /// The username or the password is empty or longer than RFC 1929's 255 bytes (nothing was
    /// sent to the proxy).
    BadCredentials,
    /// The proxy chose username/password authentication and refused our credentials (RFC 1929
    /// status, non-zero).
    AuthRefused(u8),
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
            Socks5Error::BadCredentials => {
                f.write_str("SOCKS5 username and password must be 1 to 255 bytes each")
            }
            Socks5Error::AuthRefused(status) => write!(
                f,
                "SOCKS5 proxy refused our username/password (status {status})"
            ),
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

/// A username/password pair for RFC 1929 authentication: to Tor, a stream isolation key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// The username (1 to 255 bytes).
    pub username: String,
    /// The password (1 to 255 bytes).
    pub password: String,
}

impl Credentials {
    /// A pair of the given strings (their lengths are checked when they are sent).
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// A fresh random pair (128 random bits in each, as hex): a connection using it shares no
    /// Tor circuit with any other.
    pub fn random() -> Credentials {
        let hex = || {
            format!(
                "{:016x}{:016x}",
                crate::p2p::random_u64(),
                crate::p2p::random_u64()
            )
        };
        Credentials {
            username: hex(),
            password: hex(),
        }
    }
}

impl fmt::Debug for Credentials {
    /// The username only: the password stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Asks the proxy on `stream` to connect to `host:port`; on success the stream is a tunnel.
///
/// With `auth`, username/password authentication is offered alongside "none" (a proxy that
/// picks "none" ignores the credentials); without, only "none".
///
/// # Errors
/// Every [`Socks5Error`]; [`Socks5Error::BadCredentials`] and [`Socks5Error::NameTooLong`]
/// before anything is sent.
pub async fn connect(
    stream: &mut TcpStream,
    host: &str,
    port: u16,
    auth: Option<&Credentials>,
) -> Result<(), Socks5Error> {
    let request = connect_request(host, port)?;
    let auth_request = auth.map(auth_request).transpose()?;
    stream.write_all(greeting(auth.is_some())).await?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await?;
    match (choice, &auth_request) {
        ([5, NO_AUTH], _) => {}
        ([5, USERNAME_PASSWORD], Some(auth_request)) => {
            stream.write_all(auth_request).await?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await?;
            check_auth_reply(status)?;
        }
        _ => return Err(Socks5Error::NotSocks5),
    }
    stream.write_all(&request).await?;
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

/// The method greeting: "none", and username/password too when we have credentials.
fn greeting(with_auth: bool) -> &'static [u8] {
    if with_auth {
        &[5, 2, NO_AUTH, USERNAME_PASSWORD]
    } else {
        &[5, 1, NO_AUTH]
    }
}

/// RFC 1929's request: version 1, then the username and the password, each after its length.
fn auth_request(auth: &Credentials) -> Result<Vec<u8>, Socks5Error> {
    let field = |s: &str| {
        u8::try_from(s.len())
            .ok()
            .filter(|&len| len > 0)
            .ok_or(Socks5Error::BadCredentials)
    };
    let (ulen, plen) = (field(&auth.username)?, field(&auth.password)?);
    let mut req = Vec::with_capacity(3 + auth.username.len() + auth.password.len());
    req.push(AUTH_VERSION);
    req.push(ulen);
    req.extend_from_slice(auth.username.as_bytes());
    req.push(plen);
    req.extend_from_slice(auth.password.as_bytes());
    Ok(req)
}

/// RFC 1929's reply: a version byte and a status, 0 for success. The version byte is not
/// checked (some proxies answer 5 instead of 1, as curl tolerates); the status is.
fn check_auth_reply(reply: [u8; 2]) -> Result<(), Socks5Error> {
    match reply[1] {
        0 => Ok(()),
        status => Err(Socks5Error::AuthRefused(status)),
    }
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

    #[test]
    fn credentials_are_offered_only_when_given() {
        assert_eq!(greeting(false), [5, 1, 0]);
        assert_eq!(greeting(true), [5, 2, 0, 2]);
    }

    #[test]
    fn the_auth_request_is_rfc_1929() {
        let req = auth_request(&Credentials::new("alice", "pw")).unwrap();
        assert_eq!(req, [1, 5, b'a', b'l', b'i', b'c', b'e', 2, b'p', b'w']);
        // 255 bytes each is the limit; 256 or nothing is refused before sending.
        let max = "u".repeat(255);
        let req = auth_request(&Credentials::new(max.clone(), max.clone())).unwrap();
        assert_eq!(req.len(), 3 + 255 + 255);
        assert_eq!((req[1], req[257]), (255, 255));
        for (user, pass) in [
            ("u".repeat(256), "p".to_owned()),
            ("u".to_owned(), "p".repeat(256)),
            (String::new(), "p".to_owned()),
            ("u".to_owned(), String::new()),
        ] {
            assert!(matches!(
                auth_request(&Credentials::new(user, pass)),
                Err(Socks5Error::BadCredentials)
            ));
        }
    }

    #[test]
    fn auth_replies() {
        assert!(check_auth_reply([1, 0]).is_ok());
        assert!(check_auth_reply([5, 0]).is_ok());
        assert!(matches!(
            check_auth_reply([1, 1]),
            Err(Socks5Error::AuthRefused(1))
        ));
        assert!(matches!(
            check_auth_reply([1, 0xff]),
            Err(Socks5Error::AuthRefused(0xff))
        ));
    }

    #[test]
    fn random_credentials_are_fresh_and_valid() {
        let (a, b) = (Credentials::random(), Credentials::random());
        assert_ne!(a.username, b.username);
        assert_ne!(a.password, b.password);
        assert_eq!(a.username.len(), 32);
        assert!(auth_request(&a).is_ok());
        assert!(
            !format!("{a:?}").contains(&a.password),
            "the password is not logged"
        );
    }

    /// A scripted proxy on a loopback socket: reads what the client sends in each step and
    /// answers with the given bytes; returns everything the client sent.
    async fn scripted(
        answers: Vec<Vec<u8>>,
        auth: Option<Credentials>,
    ) -> (Result<(), Socks5Error>, Vec<u8>) {
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in answers {
                let mut buf = [0u8; 600];
                let n = s.read(&mut buf).await.unwrap_or(0);
                seen.extend_from_slice(&buf[..n]);
                if s.write_all(&answer).await.is_err() {
                    break;
                }
            }
            seen
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let result = connect(&mut stream, "example.onion", 80, auth.as_ref()).await;
        drop(stream);
        (result, server.await.unwrap())
    }

    const SUCCESS: [u8; 10] = [5, 0, 0, 1, 127, 0, 0, 1, 0, 0];

    #[tokio::test]
    async fn a_full_exchange_with_and_without_credentials() {
        let creds = Credentials::new("u1", "p1");
        let (result, sent) = scripted(
            vec![vec![5, 2], vec![1, 0], SUCCESS.to_vec()],
            Some(creds.clone()),
        )
        .await;
        result.unwrap();
        let mut want = vec![5, 2, 0, 2, 1, 2, b'u', b'1', 2, b'p', b'1'];
        want.extend(connect_request("example.onion", 80).unwrap());
        assert_eq!(sent, want);

        // The proxy picks "none": the credentials are never sent.
        let (result, sent) =
            scripted(vec![vec![5, 0], SUCCESS.to_vec()], Some(creds.clone())).await;
        result.unwrap();
        assert_eq!(&sent[..4], [5, 2, 0, 2]);
        assert_eq!(&sent[4..], connect_request("example.onion", 80).unwrap());

        // Refused credentials.
        let (result, _) = scripted(vec![vec![5, 2], vec![1, 1]], Some(creds.clone())).await;
        assert!(
            matches!(result, Err(Socks5Error::AuthRefused(1))),
            "{result:?}"
        );

        // No acceptable method.
        let (result, _) = scripted(vec![vec![5, 0xff]], Some(creds)).await;
        assert!(matches!(result, Err(Socks5Error::NotSocks5)), "{result:?}");

        // Username/password chosen although we offered none.
        let (result, sent) = scripted(vec![vec![5, 2]], None).await;
        assert!(matches!(result, Err(Socks5Error::NotSocks5)), "{result:?}");
        assert_eq!(sent, [5, 1, 0]);

        // Too long a username: nothing is sent at all.
        let (result, sent) =
            scripted(vec![vec![]], Some(Credentials::new("u".repeat(256), "p"))).await;
        assert!(
            matches!(result, Err(Socks5Error::BadCredentials)),
            "{result:?}"
        );
        assert!(sent.is_empty());
    }
}
