//! Mutual TLS between nodes (the `tls` feature): the same connections, over TLS 1.3 streams
//! (rustls, with ring as its explicit crypto provider). Each side proves a certificate signed by
//! the cluster's CA, and the dialer checks that the acceptor's certificate names the host it
//! dialed; the cookie handshake then runs inside the encrypted stream, as without TLS.

use std::{io, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::transport::{BoxFuture, Connection, Listener, Tcp, Transport};

/// How a node speaks TLS to the others: its certificate and key, and the CA every node's
/// certificate must be signed by.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ferrotp::dist::{DistConfig, TlsConfig};
///
/// let tls = TlsConfig::from_pem(
///     &std::fs::read("ca.pem")?,
///     &std::fs::read("node.pem")?,
///     &std::fs::read("node-key.pem")?,
/// )?;
/// let config = DistConfig::new("app@10.0.0.5:4370", "a secret of 16 bytes or more")?.tls(tls);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig(..)")
    }
}

/// Why a TLS configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM input held no certificate, or no private key.
    #[error("no {0} in the PEM input")]
    Missing(&'static str),
    /// A PEM input could not be read.
    #[error("bad PEM: {0}")]
    Pem(String),
    /// rustls refused the certificates or the key.
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
    /// The CA cannot verify client certificates.
    #[error("cannot verify peers with this CA: {0}")]
    Verifier(String),
}

impl TlsConfig {
    /// Mutual TLS from PEM: `ca` (the certificate every node's is signed by), this node's
    /// certificate chain `chain` (its certificate first; it must name the host in the node's
    /// name, as a DNS name or an IP address), and its private key `key`.
    ///
    /// # Errors
    ///
    /// [`TlsError`] when an input holds no certificate or key, or rustls refuses them.
    pub fn from_pem(ca: &[u8], chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in certificates(ca)? {
            roots.add(cert)?;
        }
        let roots = Arc::new(roots);
        let chain = certificates(chain)?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|error| match error {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::Missing("private key"),
            other => TlsError::Pem(other.to_string()),
        })?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|error| TlsError::Verifier(error.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(TlsConfig::new(Arc::new(client), Arc::new(server)))
    }

    /// From rustls configurations of your own (another provider, another verifier). Each should
    /// authenticate the other side: a node that accepts peers without a certificate is open to
    /// anyone who learns the cookie.
    pub fn new(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Self {
        TlsConfig { client, server }
    }
}

/// Every certificate in `pem`, at least one.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem(error.to_string()))?;
    match certs.is_empty() {
        true => Err(TlsError::Missing("certificate")),
        false => Ok(certs),
    }
}

/// TCP wrapped in TLS.
pub(crate) struct Tls(pub(crate) TlsConfig);

impl Transport for Tls {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Connection>> {
        Box::pin(async move {
            let connection = Tcp.connect(addr).await?;
            let host = host_of(addr);
            let name = ServerName::try_from(host.to_owned())
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
            let stream = TlsConnector::from(self.0.client.clone())
                .connect(name, connection.io)
                .await?;
            Ok(Connection {
                io: Box::new(stream),
                peer: connection.peer,
            })
        })
    }

    fn listen<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let inner = Tcp.listen(addr).await?;
            let acceptor = TlsAcceptor::from(self.0.server.clone());
            Ok(Box::new(TlsListener { inner, acceptor }) as Box<dyn Listener>)
        })
    }
}

/// The host part of `host:port` (`[v6]:port` gives `v6`).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

struct TlsListener {
    inner: Box<dyn Listener>,
    acceptor: TlsAcceptor,
}

impl Listener for TlsListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Connection>> {
        Box::pin(async move {
            let connection = self.inner.accept().await?;
            // The TLS handshake runs in the connection's own task, under the handshake's
            // deadline and place, not here: a silent client must not stall the accept loop.
            let acceptor = self.acceptor.clone();
            Ok(Connection {
                io: Box::new(Lazy::new(acceptor, connection.io)),
                peer: connection.peer,
            })
        })
    }

    fn local_addr(&self) -> io::Result<String> {
        self.inner.local_addr()
    }
}

/// A stream whose TLS handshake (as the acceptor) runs on first use.
struct Lazy {
    state: LazyState,
}

enum LazyState {
    Handshaking(Box<tokio_rustls::Accept<Box<dyn super::transport::Io>>>),
    Ready(Box<tokio_rustls::server::TlsStream<Box<dyn super::transport::Io>>>),
    Failed,
}

impl Lazy {
    fn new(acceptor: TlsAcceptor, io: Box<dyn super::transport::Io>) -> Self {
        Lazy {
            state: LazyState::Handshaking(Box::new(acceptor.accept(io))),
        }
    }

    /// Drives the handshake; `Ok` once the stream is ready.
    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        use std::{future::Future, pin::Pin, task::Poll};
        if let LazyState::Handshaking(accept) = &mut self.state {
            match Pin::new(accept.as_mut()).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => self.state = LazyState::Ready(Box::new(stream)),
                Poll::Ready(Err(error)) => {
                    self.state = LazyState::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        Poll::Ready(match self.state {
            LazyState::Ready(_) => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the TLS handshake failed",
            )),
        })
    }

    /// The stream, once [`poll_ready`](Lazy::poll_ready) said it is.
    fn stream(
        &mut self,
    ) -> std::pin::Pin<&mut tokio_rustls::server::TlsStream<Box<dyn super::transport::Io>>> {
        match &mut self.state {
            LazyState::Ready(stream) => std::pin::Pin::new(stream.as_mut()),
            _ => unreachable!("polled only once ready"),
        }
    }
}

impl tokio::io::AsyncRead for Lazy {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_ready(cx))?;
        this.stream().poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Lazy {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_ready(cx))?;
        this.stream().poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_ready(cx))?;
        this.stream().poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_ready(cx))?;
        this.stream().poll_shutdown(cx)
    }
}
