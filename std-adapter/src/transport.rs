//! Opening the byte stream to a server: TCP, optionally through a SOCKS5 proxy, optionally
//! TLS on top.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::server::{ServerAddr, Transport};
use crate::socks5::{self, Credentials};
use crate::tls::{self, TlsTrust};

/// A connected byte stream of any transport.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// Default connect timeout (TCP, proxy and TLS handshake together): 20 s, generous for Tor.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// How to reach servers.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// A SOCKS5 proxy (`host:port`, e.g. Tor's `127.0.0.1:9050`). Server names are resolved by
    /// the proxy, never locally.
    pub proxy: Option<String>,
    /// Username and password for the proxy (RFC 1929), used only with [`proxy`](Self::proxy).
    /// To Tor they are a stream isolation key: connections with different credentials never
    /// share a circuit ([`Credentials::random`] for a fresh one). `None`: no authentication is
    /// offered.
    pub socks_auth: Option<Credentials>,
    /// Which certificates `ssl://` servers may present.
    pub tls: TlsTrust,
    /// Limit for TCP connect, proxy negotiation and TLS handshake together.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            proxy: None,
            socks_auth: None,
            tls: TlsTrust::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

/// Opens a stream to `server`.
///
/// # Errors
/// [`Error::ConnectTimeout`], [`Error::OnionNeedsProxy`], [`Error::Io`], [`Error::Socks5`] and
/// the TLS errors of [`tls::handshake`].
pub async fn connect(server: &ServerAddr, options: &ConnectOptions) -> Result<BoxStream, Error> {
    let open = async {
        let tcp = match &options.proxy {
            Some(proxy) => {
                let mut tcp = TcpStream::connect(proxy.as_str()).await?;
                socks5::connect(
                    &mut tcp,
                    &server.host,
                    server.port,
                    options.socks_auth.as_ref(),
                )
                .await?;
                tcp
            }
            None if server.is_onion() => return Err(Error::OnionNeedsProxy),
            None => TcpStream::connect((server.host.as_str(), server.port)).await?,
        };
        tcp.set_nodelay(true)?;
        Ok(match server.transport {
            Transport::Tcp => Box::new(tcp) as BoxStream,
            Transport::Ssl => Box::new(
                tls::handshake(tcp, &server.host, &server.authority(), &options.tls).await?,
            ),
        })
    };
    tokio::time::timeout(options.connect_timeout, open)
        .await
        .map_err(|_| Error::ConnectTimeout)?
}
