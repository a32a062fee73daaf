//! Client configuration from the command line, and picking a server.

use electrum_spv::core::rpc::VersionRange;
use electrum_spv::{
    ClientConfig, ConnectOptions, Error, Filter, Pool, PoolConfig, ServerAddr, ServerList, TlsTrust,
};

use super::Args;

pub fn config(args: &Args) -> Result<ClientConfig, Error> {
    let tls = match (&args.tls_pin, &args.tls_ca, &args.tls_tofu) {
        (Some(pin), _, _) => TlsTrust::pin(pin)?,
        (_, Some(ca), _) => TlsTrust::ca_file(ca)?,
        (_, _, Some(store)) => TlsTrust::Tofu(store.clone()),
        _ => TlsTrust::WebPki,
    };
    let proxy = args.proxy.as_ref().map(|p| {
        p.strip_prefix("socks5://")
            .or(p.strip_prefix("socks5h://"))
            .unwrap_or(p)
            .to_owned()
    });
    let mut config = ClientConfig::new(args.network.network());
    config.connect = ConnectOptions {
        proxy,
        tls,
        ..ConnectOptions::default()
    };
    if args.protocol_1_7 {
        config.versions = VersionRange::WITH_1_7;
    }
    Ok(config)
}

/// Servers of the bundled list a pool starts with when no `--server` is given.
pub const BUNDLED_AT_ONCE: usize = 3;

/// A pool over the servers given (else the first [`BUNDLED_AT_ONCE`] of the bundled list),
/// each verifying its own headers; with `--checkpoints`, from that file's last checkpoint.
pub async fn pool(args: &Args) -> Result<Pool, Error> {
    let mut config = PoolConfig::new(config(args)?);
    config.checkpoints_file = args.checkpoints.clone();
    let network = args.network.network();
    let candidates: Vec<ServerAddr> = if args.servers.is_empty() {
        let filter = Filter {
            onion: args.proxy.is_some(),
            ..Filter::default()
        };
        ServerList::bundled()
            .servers(network, filter)
            .iter()
            .filter_map(|e| e.preferred())
            .take(BUNDLED_AT_ONCE)
            .collect()
    } else {
        args.servers.clone()
    };
    if candidates.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no server given and none bundled for {}: use --server",
            network.name()
        )));
    }
    let pool = Pool::connect(&candidates, config)
        .await
        .map_err(|e| match e {
            // One line naming the server when there was only one.
            Error::Io(io) if candidates.len() == 1 => Error::Io(std::io::Error::new(
                io.kind(),
                format!("{}: {io}", candidates[0]),
            )),
            other => other,
        })?;
    report_dropped(&pool, 0);
    Ok(pool)
}

/// Names on stderr the servers dropped since the first `from` were reported; returns how many
/// are reported now.
pub fn report_dropped(pool: &Pool, from: usize) -> usize {
    for d in pool.dropped().iter().skip(from) {
        eprintln!("electrum-spv: dropped {}: {}", d.server, d.reason);
    }
    pool.dropped().len()
}
