//! TLS with rustls: the web PKI, a custom CA, a pinned certificate, or trust on first use.
//!
//! Most Electrum servers use self-signed certificates, so the web PKI alone would refuse them;
//! pinning (`--tls-pin`, the SHA-256 of the server certificate's DER encoding) or trust on
//! first use (`--tls-tofu FILE`) are the sound alternatives. There is never a fallback to
//! plaintext: an `ssl://` server is TLS or an error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, to_hex};

/// Which certificates an `ssl://` server may present.
#[derive(Clone, Debug, Default)]
pub enum TlsTrust {
    /// Certificates chaining to the bundled web PKI roots, for the server's name.
    #[default]
    WebPki,
    /// Certificates chaining to these CA certificates (PEM file, `--tls-ca`), for the name.
    Ca(Vec<CertificateDer<'static>>),
    /// Exactly the certificate with this SHA-256 fingerprint of its DER encoding (`--tls-pin`);
    /// the name is not checked: the pin is the server's identity.
    Pin([u8; 32]),
    /// Trust on first use (`--tls-tofu FILE`): the first certificate seen for a server is
    /// recorded in the file; a different one later is [`Error::CertificateChanged`].
    Tofu(PathBuf),
}

impl TlsTrust {
    /// Reads a PEM file of CA certificates.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::InvalidArgument`] if it holds no
    /// certificate.
    pub fn ca_file(path: &Path) -> Result<TlsTrust, Error> {
        let certs: Vec<_> = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{}: no certificate",
                path.display()
            )));
        }
        Ok(TlsTrust::Ca(certs))
    }

    /// Reads a pin: 64 hex digits (colons allowed, as `openssl x509 -fingerprint` prints).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for anything else.
    pub fn pin(text: &str) -> Result<TlsTrust, Error> {
        let digits: String = text.chars().filter(|c| *c != ':').collect();
        let mut pin = [0u8; 32];
        electrum_spv_core::hex::decode_to_slice(digits.as_bytes(), &mut pin).map_err(|_| {
            Error::InvalidArgument(format!("TLS pin must be 64 hex digits, got {text:?}"))
        })?;
        Ok(TlsTrust::Pin(pin))
    }
}

/// SHA-256 of a certificate's DER encoding: what `--tls-pin` takes.
pub fn fingerprint(cert: &[u8]) -> [u8; 32] {
    Sha256::digest(cert).into()
}

/// Runs the TLS handshake with `host` over `tcp`.
///
/// # Errors
/// [`Error::Tls`], [`Error::CertificatePinMismatch`], [`Error::CertificateChanged`],
/// [`Error::TofuStore`].
pub async fn handshake(
    tcp: TcpStream,
    host: &str,
    authority: &str,
    trust: &TlsTrust,
) -> Result<TlsStream<TcpStream>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?;
    let mut pinned: Option<Arc<PinVerifier>> = None;
    let mut tofu_new = None;
    let config = match trust {
        TlsTrust::WebPki => builder
            .with_root_certificates(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
            .with_no_client_auth(),
        TlsTrust::Ca(certs) => {
            let mut roots = RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone()).map_err(Error::Tls)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsTrust::Pin(pin) => {
            let v = PinVerifier::new(Some(*pin), provider);
            pinned = Some(v.clone());
            builder
                .dangerous()
                .with_custom_certificate_verifier(v)
                .with_no_client_auth()
        }
        TlsTrust::Tofu(store) => {
            let stored = tofu_lookup(store, authority)?;
            tofu_new = stored.is_none().then_some(store);
            let v = PinVerifier::new(stored, provider);
            pinned = Some(v.clone());
            builder
                .dangerous()
                .with_custom_certificate_verifier(v)
                .with_no_client_auth()
        }
    };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| Error::InvalidArgument(format!("not a valid TLS server name: {host:?}")))?;
    let result = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await;
    let seen = pinned.as_ref().and_then(|v| v.seen());
    match result {
        Ok(stream) => {
            if let (Some(store), Some(seen)) = (tofu_new, seen) {
                tofu_record(store, authority, &seen)?;
            }
            Ok(stream)
        }
        Err(e) => match (trust, pinned.as_ref().and_then(|v| v.mismatch())) {
            (TlsTrust::Pin(_), Some((_, presented))) => {
                Err(Error::CertificatePinMismatch { presented })
            }
            (TlsTrust::Tofu(_), Some((stored, presented))) => Err(Error::CertificateChanged {
                server: authority.to_owned(),
                stored,
                presented,
            }),
            _ => Err(match e.into_inner() {
                Some(inner) => match inner.downcast::<rustls::Error>() {
                    Ok(tls) => Error::Tls(*tls),
                    Err(other) => Error::Io(std::io::Error::other(other)),
                },
                None => Error::Io(std::io::Error::other("TLS handshake failed")),
            }),
        },
    }
}

/// Accepts exactly one certificate (by fingerprint), or any certificate when none is expected
/// yet (first use); handshake signatures are still checked with the provider's algorithms.
#[derive(Debug)]
struct PinVerifier {
    expected: Option<[u8; 32]>,
    seen: Mutex<Option<[u8; 32]>>,
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    fn new(expected: Option<[u8; 32]>, provider: Arc<CryptoProvider>) -> Arc<PinVerifier> {
        Arc::new(PinVerifier {
            expected,
            seen: Mutex::new(None),
            provider,
        })
    }

    fn seen(&self) -> Option<[u8; 32]> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `(expected, presented)` if the certificate was refused.
    fn mismatch(&self) -> Option<([u8; 32], [u8; 32])> {
        match (self.expected, self.seen()) {
            (Some(e), Some(s)) if e != s => Some((e, s)),
            _ => None,
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity);
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(presented);
        match self.expected {
            Some(expected) if expected != presented => Err(rustls::Error::General(format!(
                "certificate {} is not the expected {}",
                to_hex(&presented),
                to_hex(&expected)
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TOFU store: one `HOST:PORT SHA256HEX` line per server.
fn tofu_lookup(store: &Path, authority: &str) -> Result<Option<[u8; 32]>, Error> {
    let text = match std::fs::read_to_string(store) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::TofuStore(format!("{}: {e}", store.display()))),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || Error::TofuStore(format!("{}:{}: malformed line", store.display(), n + 1));
        let (server, hex) = line.split_once(' ').ok_or_else(bad)?;
        if server == authority {
            let mut fp = [0u8; 32];
            electrum_spv_core::hex::decode_to_slice(hex.trim().as_bytes(), &mut fp)
                .map_err(|_| bad())?;
            return Ok(Some(fp));
        }
    }
    Ok(None)
}

fn tofu_record(store: &Path, authority: &str, fp: &[u8; 32]) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::TofuStore(format!("{}: {e}", store.display()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(store)
        .map_err(io)?;
    writeln!(f, "{authority} {}", to_hex(fp)).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_store_lines() {
        let hex = "ab".repeat(32);
        assert!(matches!(TlsTrust::pin(&hex), Ok(TlsTrust::Pin(p)) if p == [0xab; 32]));
        let colons = vec!["AB"; 32].join(":");
        assert!(matches!(TlsTrust::pin(&colons), Ok(TlsTrust::Pin(p)) if p == [0xab; 32]));
        assert!(TlsTrust::pin("abc").is_err());

        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("tofu");
        assert_eq!(tofu_lookup(&store, "h:1").unwrap(), None);
        tofu_record(&store, "h:1", &[1; 32]).unwrap();
        tofu_record(&store, "g:2", &[2; 32]).unwrap();
        assert_eq!(tofu_lookup(&store, "h:1").unwrap(), Some([1; 32]));
        assert_eq!(tofu_lookup(&store, "g:2").unwrap(), Some([2; 32]));
        std::fs::write(&store, "garbage\n").unwrap();
        assert!(matches!(
            tofu_lookup(&store, "h:1"),
            Err(Error::TofuStore(_))
        ));
    }
}
