//! The handshake over a real stream: frames in and out, fresh nonces from the operating system,
//! and one deadline for the whole exchange, so a peer that says nothing (or too little, or too
//! much) costs a bounded wait and at most one frame's buffer.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::LengthDelimitedCodec;

use super::{
    frame::{self, FrameError},
    handshake::{
        Acceptor, Authenticated, Cookie, Dialer, Established, HandshakeError, Identity, Message,
        NONCE_LEN, Refusal, Status,
    },
    transport::Io,
};

/// How long a handshake may take in all, unless configured otherwise (Erlang's `net_setuptime`).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(7);
/// How long an incoming connection may take to send its first frame, unless configured
/// otherwise: a peer that means to connect says `Hello` at once.
pub(crate) const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a connection to a node was not made. Both sides log it; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The peer says it refuses this node (unverified: a refusal carries no MAC).
    #[error("the peer refused the connection: {0}")]
    RefusedByPeer(Refusal),
    /// This node refused the peer.
    #[error("refused the peer: {0}")]
    Refused(Refusal),
    /// The peer did not speak the handshake.
    #[error("not a ferrotp handshake: {0}")]
    Malformed(String),
    /// The handshake did not finish in time.
    #[error("the handshake took longer than {0:?}")]
    Timeout(Duration),
    /// The stream ended or failed.
    #[error("the connection failed: {0}")]
    Io(String),
    /// The operating system gave no random numbers for the nonces.
    #[error("no random numbers for the handshake: {0}")]
    Random(String),
}

impl From<HandshakeError> for ConnectError {
    fn from(error: HandshakeError) -> Self {
        match error {
            HandshakeError::Malformed(why) => ConnectError::Malformed(why),
            HandshakeError::RefusedByPeer(refusal) => ConnectError::RefusedByPeer(refusal),
            HandshakeError::Refused { refusal, .. } => ConnectError::Refused(refusal),
        }
    }
}

impl From<FrameError> for ConnectError {
    fn from(error: FrameError) -> Self {
        ConnectError::Malformed(error.to_string())
    }
}

/// An authenticated connection, ready for frames.
pub(crate) struct Handshaken {
    pub(crate) established: Established,
    /// The codec, its cap still the handshake's: the connection layer raises it.
    pub(crate) codec: LengthDelimitedCodec,
    /// Bytes that arrived after the last handshake frame: the start of the peer's first frames.
    pub(crate) buffer: BytesMut,
}

/// One side's view of the stream during the handshake.
struct Wire<'a> {
    io: &'a mut dyn Io,
    codec: LengthDelimitedCodec,
    buffer: BytesMut,
}

impl Wire<'_> {
    async fn send(&mut self, message: &Message) -> Result<(), ConnectError> {
        let mut out = BytesMut::new();
        frame::write_handshake(&mut out, &message.encode())?;
        self.io.write_all(&out).await.map_err(io_error)?;
        self.io.flush().await.map_err(io_error)
    }

    async fn receive(&mut self) -> Result<Message, ConnectError> {
        loop {
            if let Some(bytes) = frame::next(&mut self.codec, &mut self.buffer)? {
                return Ok(Message::decode(&bytes)?);
            }
            // The codec has reserved room for the frame it waits for, at most the cap.
            if self.io.read_buf(&mut self.buffer).await.map_err(io_error)? == 0 {
                return Err(ConnectError::Io("closed during the handshake".to_owned()));
            }
        }
    }

    /// Sends the refusal a handshake error carries, if any, then reports the error.
    async fn refuse(&mut self, error: HandshakeError) -> ConnectError {
        if let HandshakeError::Refused {
            reply: Some(reply), ..
        } = &error
        {
            // Best effort: the connection closes either way.
            let _ = self.send(reply).await;
        }
        error.into()
    }

    fn into_authenticated(self, established: Established) -> Handshaken {
        Handshaken {
            established,
            codec: self.codec,
            buffer: self.buffer,
        }
    }
}

fn io_error(error: std::io::Error) -> ConnectError {
    ConnectError::Io(error.to_string())
}

fn nonce() -> Result<[u8; NONCE_LEN], ConnectError> {
    let mut nonce = [0; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|error| ConnectError::Random(error.to_string()))?;
    Ok(nonce)
}

/// A random number from the operating system (connection ids, creations).
pub(crate) fn random_u64() -> Result<u64, ConnectError> {
    let mut bytes = [0; 8];
    getrandom::fill(&mut bytes).map_err(|error| ConnectError::Random(error.to_string()))?;
    Ok(u64::from_le_bytes(bytes))
}

/// Bounds `work` by `timeout` (a `Duration::MAX` timeout never fires).
pub(crate) async fn within<T>(
    timeout: Duration,
    work: impl Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    match tokio::time::Instant::now().checked_add(timeout) {
        Some(deadline) => tokio::time::timeout_at(deadline, work)
            .await
            .unwrap_or(Err(ConnectError::Timeout(timeout))),
        None => work.await,
    }
}

/// Dials: runs the dialer's side of the handshake over `io` with the node named `to`.
pub(crate) async fn dial(
    io: &mut dyn Io,
    me: Identity,
    to: &str,
    cookie: Cookie,
    last_conn: u64,
    timeout: Duration,
) -> Result<Handshaken, ConnectError> {
    let (dialer, hello) =
        Dialer::start(me, to, cookie, last_conn, 0).map_err(ConnectError::Refused)?;
    let mut wire = Wire {
        io,
        codec: frame::codec(),
        buffer: BytesMut::new(),
    };
    within(timeout, async {
        wire.send(&hello).await?;
        let challenge = wire.receive().await?;
        let (waiting, proof) = match dialer.on_challenge(challenge, nonce()?) {
            Ok(next) => next,
            Err(error) => return Err(wire.refuse(error).await),
        };
        wire.send(&proof).await?;
        let welcome = wire.receive().await?;
        let established = waiting.on_welcome(welcome)?;
        Ok(established)
    })
    .await
    .map(|established| wire.into_authenticated(established))
}

/// Accepts: runs the acceptor's side of the handshake over `io`, the first frame due within
/// `first_frame` and the whole exchange within `timeout`. `admit` decides, for a dialer whose
/// proof verified, the admission status and the connection id.
pub(crate) async fn accept(
    io: &mut dyn Io,
    me: Identity,
    cookie: Cookie,
    (first_frame, timeout): (Duration, Duration),
    admit: impl FnOnce(&Authenticated) -> (Status, u64),
) -> Result<Handshaken, ConnectError> {
    let mut wire = Wire {
        io,
        codec: frame::codec(),
        buffer: BytesMut::new(),
    };
    within(timeout, async {
        let hello = within(first_frame, wire.receive()).await?;
        let (waiting, challenge) = match Acceptor::new(me, cookie, 0).on_hello(hello, nonce()?) {
            Ok(next) => next,
            Err(error) => return Err(wire.refuse(error).await),
        };
        wire.send(&challenge).await?;
        let proof = wire.receive().await?;
        let authenticated = match waiting.on_proof(proof) {
            Ok(authenticated) => authenticated,
            Err(error) => return Err(wire.refuse(error).await),
        };
        let (status, conn_id) = admit(&authenticated);
        let (established, welcome) = authenticated.welcome(status, conn_id);
        wire.send(&welcome).await?;
        Ok(established)
    })
    .await
    .map(|established| wire.into_authenticated(established))
}

#[cfg(test)]
mod tests;
