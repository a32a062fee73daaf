//! A minimal SOCKS5 proxy on 127.0.0.1 (`CONNECT` only) that records the destinations it was
//! asked for, so tests can check a client sends names, not addresses it resolved itself. Names
//! are resolved here, as Tor would resolve them at the exit.
//!
//! It takes "no authentication" and RFC 1929 username/password, and picks username/password
//! whenever a client offers it, as Tor does; it records per connection the methods offered and
//! the credentials sent ([`Socks5Proxy::connections`]), so tests can check stream isolation.
//! [`AuthPolicy::Refuse`] makes it refuse every username/password.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use crate::Error;

/// A destination as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Address type 3: a name for the proxy to resolve.
    Name(String, u16),
    /// Address type 1 or 4: an address the client resolved.
    Address(SocketAddr),
}

/// What the proxy does with username/password authentication.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthPolicy {
    /// Picks username/password when offered (and accepts any pair), else "no authentication":
    /// Tor's behaviour.
    #[default]
    Accept,
    /// Picks username/password when offered and refuses every pair (RFC 1929 status 1); "no
    /// authentication" alone is still accepted.
    Refuse,
}

/// One client connection as the proxy saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConnection {
    /// The authentication methods the client offered, in its order (0: none, 2:
    /// username/password).
    pub methods: Vec<u8>,
    /// The username and password it sent (lossy UTF-8), if it authenticated.
    pub credentials: Option<(String, String)>,
    /// What it asked to reach (`None`: the handshake ended before its `CONNECT`).
    pub destination: Option<Destination>,
}

#[derive(Default)]
struct Log {
    requests: Vec<Destination>,
    connections: Vec<ProxyConnection>,
}

/// The running proxy; stopped on drop.
pub struct Socks5Proxy {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
}

impl Socks5Proxy {
    /// Starts the proxy on a free loopback port ([`AuthPolicy::Accept`]).
    pub fn start() -> Result<Socks5Proxy, Error> {
        Socks5Proxy::start_with(AuthPolicy::Accept)
    }

    /// Starts the proxy on a free loopback port, treating username/password by `policy`.
    pub fn start_with(policy: AuthPolicy) -> Result<Socks5Proxy, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (log.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let log = shared.clone();
                    thread::spawn(move || {
                        let _ = serve(conn, policy, &log);
                    });
                }
            }
        });
        Ok(Socks5Proxy { addr, log, stop })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every destination asked for so far.
    pub fn requests(&self) -> Vec<Destination> {
        lock(&self.log).requests.clone()
    }

    /// Every client connection so far whose handshake ended (tunnelled, refused, or cut short),
    /// in the order they ended.
    pub fn connections(&self) -> Vec<ProxyConnection> {
        lock(&self.log).connections.clone()
    }
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Socks5Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut client: TcpStream, policy: AuthPolicy, log: &Mutex<Log>) -> std::io::Result<()> {
    let mut seen = ProxyConnection::default();
    let dest = handshake(&mut client, policy, &mut seen);
    {
        let mut log = lock(log);
        log.requests.extend(seen.destination.clone());
        log.connections.push(seen);
    }
    let Some(dest) = dest? else {
        return Ok(());
    };
    let target = match &dest {
        Destination::Address(a) => Some(*a),
        Destination::Name(n, p) => (n.as_str(), *p)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.find(SocketAddr::is_ipv4)),
    };
    let Some(upstream) = target.and_then(|t| TcpStream::connect(t).ok()) else {
        client.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0])?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    let (mut a, mut b) = (client.try_clone()?, upstream.try_clone()?);
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut a, &mut b);
        let _ = b.shutdown(Shutdown::Write);
    });
    let (mut c, mut d) = (upstream, client);
    let _ = std::io::copy(&mut c, &mut d);
    let _ = d.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

/// Methods, authentication and the `CONNECT` request, noted in `seen`; the destination to
/// connect to, or `None` when the client was refused.
fn handshake(
    client: &mut TcpStream,
    policy: AuthPolicy,
    seen: &mut ProxyConnection,
) -> std::io::Result<Option<Destination>> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods)?;
    seen.methods = methods.clone();
    if head[0] != 5 {
        client.write_all(&[5, 0xff])?;
        return Ok(None);
    }
    if methods.contains(&2) {
        client.write_all(&[5, 2])?;
        // RFC 1929: version 1, username, password (each after its length).
        let mut ver_ulen = [0u8; 2];
        client.read_exact(&mut ver_ulen)?;
        let mut user = vec![0u8; usize::from(ver_ulen[1])];
        client.read_exact(&mut user)?;
        let mut plen = [0u8; 1];
        client.read_exact(&mut plen)?;
        let mut pass = vec![0u8; usize::from(plen[0])];
        client.read_exact(&mut pass)?;
        seen.credentials = Some((
            String::from_utf8_lossy(&user).into_owned(),
            String::from_utf8_lossy(&pass).into_owned(),
        ));
        if ver_ulen[0] != 1 || policy == AuthPolicy::Refuse {
            client.write_all(&[1, 1])?;
            return Ok(None);
        }
        client.write_all(&[1, 0])?;
    } else if methods.contains(&0) {
        client.write_all(&[5, 0])?;
    } else {
        client.write_all(&[5, 0xff])?;
        return Ok(None);
    }
    let mut req = [0u8; 4];
    client.read_exact(&mut req)?;
    let dest = match req[3] {
        1 => {
            let mut a = [0u8; 6];
            client.read_exact(&mut a)?;
            let ip = std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Destination::Address(SocketAddr::from((ip, u16::from_be_bytes([a[4], a[5]]))))
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0]) + 2];
            client.read_exact(&mut name)?;
            let port = u16::from_be_bytes([name[name.len() - 2], name[name.len() - 1]]);
            name.truncate(name.len() - 2);
            Destination::Name(String::from_utf8_lossy(&name).into_owned(), port)
        }
        _ => {
            client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0])?;
            return Ok(None);
        }
    };
    seen.destination = Some(dest.clone());
    Ok(Some(dest))
}
