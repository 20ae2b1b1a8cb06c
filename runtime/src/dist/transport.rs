//! Transports: how a node gets byte streams to and from other nodes. Distribution needs only
//! "connect to an address" and "accept on an address", so TCP, TLS over TCP and a simulated
//! network are each one small implementation, and everything above runs unchanged on any of them.

use std::{future::Future, io, pin::Pin};

use tokio::io::{AsyncRead, AsyncWrite};

/// A boxed future, as trait objects return them.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A byte stream to another node.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A stream, and the address of whoever is at its other end (for logs).
pub(crate) struct Connection {
    pub(crate) io: Box<dyn Io>,
    pub(crate) peer: String,
}

/// Connects and listens.
pub(crate) trait Transport: Send + Sync + 'static {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Connection>>;
    fn listen<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>>;
}

/// Accepts connections on an address.
pub(crate) trait Listener: Send {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Connection>>;
    /// The address it listens on (with the port the OS chose, for port 0).
    fn local_addr(&self) -> io::Result<String>;
}

/// Plain TCP, with Nagle's algorithm off on both ends: a call's request and its reply are small
/// frames that must leave at once, and the writer batches frames itself.
pub(crate) struct Tcp;

impl Transport for Tcp {
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Connection>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let peer = stream.peer_addr()?.to_string();
            Ok(Connection {
                io: Box::new(stream),
                peer,
            })
        })
    }

    fn listen<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TcpAcceptor(listener)) as Box<dyn Listener>)
        })
    }
}

struct TcpAcceptor(tokio::net::TcpListener);

impl Listener for TcpAcceptor {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<Connection>> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            stream.set_nodelay(true)?;
            Ok(Connection {
                io: Box::new(stream),
                peer: peer.to_string(),
            })
        })
    }

    fn local_addr(&self) -> io::Result<String> {
        Ok(self.0.local_addr()?.to_string())
    }
}
