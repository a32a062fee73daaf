//! Client configuration from the command line, and picking a server.

use electrum_spv::core::rpc::VersionRange;
use electrum_spv::{Client, ClientConfig, ConnectOptions, Error, Filter, ServerList, TlsTrust};

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

/// Connects to the first server that answers: those given, else the bundled list.
pub async fn connect(args: &Args) -> Result<Client, Error> {
    let config = config(args)?;
    let network = args.network.network();
    let candidates = if args.servers.is_empty() {
        let filter = Filter {
            onion: args.proxy.is_some(),
            ..Filter::default()
        };
        ServerList::bundled()
            .servers(network, filter)
            .iter()
            .filter_map(|e| e.preferred())
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
    let mut last = None;
    for server in &candidates {
        match Client::connect(server, &config).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some((server.clone(), e)),
        }
    }
    let (server, e) = last.expect("at least one candidate");
    Err(match e {
        // One line naming the server that failed last.
        Error::Io(io) => Error::Io(std::io::Error::new(io.kind(), format!("{server}: {io}"))),
        other => other,
    })
}
