//! The accept loop: every incoming connection gets its own handshake task, within bounds that
//! keep a flood of connections from locking authenticated peers out.
//!
//! - At most `max_handshakes` handshakes run at once; a connection over that is closed at once
//!   (it costs an accept and a close, no memory held).
//! - A connection must send its first frame within `first_frame_timeout` (1 s by default) and
//!   finish within `handshake_timeout`: a silent one holds its place for a second, not for the
//!   whole handshake.
//! - Every refusal is logged with the peer's address and the reason.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{
    authenticate::{self, Handshaken},
    config::DistConfig,
    handshake::{Authenticated, Identity, Status},
    transport::{Connection, Listener},
};

/// Decides, for a peer that authenticated, the admission status and the connection id.
pub(crate) type Admit = Arc<dyn Fn(&Authenticated) -> (Status, u64) + Send + Sync>;
/// Takes an admitted connection, with the address it came from.
pub(crate) type OnEstablished = Arc<dyn Fn(Handshaken, Connection) + Send + Sync>;

/// Accepts connections on `listener` until the task running this is dropped, handshakes each as
/// the node `me` configured by `config`, asks `admit` about each authenticated peer, and hands
/// each admitted connection (with the address it came from) to `established`.
pub(crate) async fn serve(
    mut listener: Box<dyn Listener>,
    me: Identity,
    config: Arc<DistConfig>,
    admit: Admit,
    established: OnEstablished,
) {
    let places = Arc::new(Semaphore::new(config.max_handshakes));
    loop {
        let connection = match listener.accept().await {
            Ok(connection) => connection,
            Err(error) => {
                // Out of file descriptors, say: the next accept may work once some close. A
                // short pause keeps a lasting error from spinning this loop.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            tracing::warn!(peer = %connection.peer, "too many handshakes at once; connection closed");
            continue;
        };
        let (me, config, admit, established) = (
            me.clone(),
            config.clone(),
            admit.clone(),
            established.clone(),
        );
        tokio::spawn(async move {
            let mut connection = connection;
            let outcome = authenticate::accept(
                &mut *connection.io,
                me,
                config.cookie.clone(),
                (config.first_frame_timeout, config.handshake_timeout),
                |peer| admit(peer),
            )
            .await;
            // Before the connection closes (at the end of this task): whoever sees the close
            // finds the place free.
            drop(place);
            match outcome {
                Ok(handshaken) if handshaken.established.status == Status::Ok => {
                    established(handshaken, connection);
                }
                Ok(handshaken) => tracing::debug!(
                    peer = %connection.peer,
                    node = handshaken.established.peer.name(),
                    status = ?handshaken.established.status,
                    "declined a connection"
                ),
                Err(error) => {
                    tracing::warn!(peer = %connection.peer, %error, "refused a connection");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
