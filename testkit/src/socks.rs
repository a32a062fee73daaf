//! A minimal SOCKS5 proxy on 127.0.0.1 (no authentication, `CONNECT` only) that records the
//! destinations it was asked for, so tests can check a client sends names, not addresses it
//! resolved itself. Names are resolved here, as Tor would resolve them at the exit.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// The running proxy; stopped on drop.
pub struct Socks5Proxy {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Destination>>>,
    stop: Arc<AtomicBool>,
}

impl Socks5Proxy {
    /// Starts the proxy on a free loopback port.
    pub fn start() -> Result<Socks5Proxy, Error> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, flag) = (requests.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let log = log.clone();
                    thread::spawn(move || {
                        let _ = serve(conn, &log);
                    });
                }
            }
        });
        Ok(Socks5Proxy {
            addr,
            requests,
            stop,
        })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every destination asked for so far.
    pub fn requests(&self) -> Vec<Destination> {
        self.requests.lock().expect("proxy log").clone()
    }
}

impl Drop for Socks5Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut client: TcpStream, log: &Mutex<Vec<Destination>>) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    client.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods)?;
    if head[0] != 5 || !methods.contains(&0) {
        client.write_all(&[5, 0xff])?;
        return Ok(());
    }
    client.write_all(&[5, 0])?;
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
            return Ok(());
        }
    };
    log.lock().expect("proxy log").push(dest.clone());
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
