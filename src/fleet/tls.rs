//! Optional TLS for the control channel: the coordinator presents a
//! certificate (`--tls-cert`, `--tls-key`) and, with `--client-ca`,
//! requires every agent to present a client certificate that chains to it
//! (mutual TLS); agents check the coordinator with `--ca` and present
//! `--cert`/`--key`. The bearer token is checked either way: TLS adds
//! confidentiality and peer identity, the token stays the admission check.

use std::io;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use super::{AgentArgs, CoordinatorArgs};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading {flag} {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading {flag} {}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "{flag} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(certs)
}

fn key(path: &Path, flag: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| {
        format!(
            "reading {flag} {}: it must hold one PEM private key",
            path.display()
        )
    })
}

fn roots(path: &Path, flag: &str) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(path, flag)? {
        roots
            .add(cert)
            .with_context(|| format!("a certificate in {flag} {}", path.display()))?;
    }
    Ok(roots)
}

/// The coordinator's TLS settings.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl ServerTls {
    /// The settings from the flags; `None` without `--tls-cert`.
    pub fn from_args(args: &CoordinatorArgs) -> Result<Option<ServerTls>> {
        let (cert, key_file) = match (&args.tls_cert, &args.tls_key) {
            (None, None) if args.client_ca.is_none() => return Ok(None),
            (Some(c), Some(k)) => (c, k),
            (None, _) => bail!(
                "--tls-key and --client-ca need --tls-cert FILE, the coordinator's certificate"
            ),
            (Some(_), None) => bail!("--tls-cert needs --tls-key FILE, its private key"),
        };
        let chain = certs(cert, "--tls-cert")?;
        let private = key(key_file, "--tls-key")?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS setup")?;
        let builder = match &args.client_ca {
            Some(ca) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots(ca, "--client-ca")?),
                    provider(),
                )
                .build()
                .context("--client-ca")?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(chain, private)
            .context("--tls-cert and --tls-key do not make a certificate and its key")?;
        Ok(Some(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }))
    }

    /// The server side of a TLS handshake on an accepted connection.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        self.acceptor.accept(stream).await
    }
}

/// An agent's TLS settings.
#[derive(Clone)]
pub struct ClientTls {
    connector: tokio_rustls::TlsConnector,
}

impl ClientTls {
    /// The settings from the flags; `None` for a ws:// coordinator.
    pub fn from_args(args: &AgentArgs) -> Result<Option<ClientTls>> {
        let secure = args.coordinator.starts_with("wss://");
        if !secure {
            if args.ca.is_some() || args.cert.is_some() || args.key.is_some() {
                bail!(
                    "--ca, --cert and --key apply to a wss:// coordinator; write --coordinator wss://..."
                );
            }
            return Ok(None);
        }
        let Some(ca) = &args.ca else {
            bail!(
                "a wss:// coordinator needs --ca FILE, the PEM CA (or certificate) to check it against; \
                 no system roots are trusted"
            );
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS setup")?
            .with_root_certificates(roots(ca, "--ca")?);
        let config = match (&args.cert, &args.key) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(certs(c, "--cert")?, key(k, "--key")?)
                .context("--cert and --key do not make a certificate and its key")?,
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => bail!("--cert needs --key FILE, its private key"),
            (None, Some(_)) => bail!("--key needs --cert FILE, its certificate"),
        };
        Ok(Some(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }))
    }
}

/// The agent's connection to its coordinator, with or without TLS: the
/// same stream the load engine's sessions use.
pub(crate) type ClientStream = crate::load::Stream;

/// Runs the TLS handshake when `tls` is set; `host` is the name the
/// coordinator's certificate must carry.
pub(crate) async fn connect(
    tcp: TcpStream,
    tls: &Option<ClientTls>,
    host: &str,
) -> io::Result<ClientStream> {
    match tls {
        None => Ok(ClientStream::Plain(tcp)),
        Some(t) => {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| io::Error::other(format!("TLS server name `{host}`: {e}")))?;
            let stream = t.connector.connect(name, tcp).await?;
            Ok(ClientStream::Tls(Box::new(stream)))
        }
    }
}
