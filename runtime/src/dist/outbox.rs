//! A connection's outgoing frames: senders encode straight into one buffer, and one writer task
//! sends whatever has accumulated in a single write. A burst of casts therefore costs a few
//! system calls, not one each, and no channel, task or allocation per message.
//!
//! Order: frames enter the buffer in the order their senders took the lock, and the writer sends
//! the buffer front to back, so the frames of any one sender arrive in the order it sent them.
//!
//! Wake-ups: a sender kicks the writer only when it finds the buffer empty (the writer took
//! everything before it). `Notify` keeps one permit, so a kick that comes while the writer is
//! busy writing is not lost: the writer takes the next batch as soon as the write is done.

use std::{mem, sync::Mutex};

use bytes::BytesMut;
use tokio::{
    io::{AsyncWrite, AsyncWriteExt},
    sync::Notify,
};

use super::frame::{self, Codec, FrameError, Kind, WriteError};
use crate::mailbox::lock;

/// The buffer is given back to the writer's spare only up to this size, so that one huge burst
/// does not keep its memory for the life of the connection.
const KEEP: usize = 1 << 20;

pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    kick: Notify,
    max_frame: usize,
    /// Replies to the peer's calls queued so far: the reader stays hot after one (see
    /// `connection`).
    pub(crate) replies: std::sync::atomic::AtomicU64,
}

struct Inner {
    buffer: BytesMut,
    closed: bool,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PushError<E> {
    /// The connection is closing or closed.
    #[error("the connection is closed")]
    Closed,
    /// The payload failed to encode.
    #[error("the payload could not be encoded")]
    Payload(E),
    /// The frame would be over the peer's cap.
    #[error(transparent)]
    Frame(FrameError),
}

impl Outbox {
    pub(crate) fn new(max_frame: usize) -> Self {
        Outbox {
            inner: Mutex::new(Inner {
                buffer: BytesMut::new(),
                closed: false,
            }),
            kick: Notify::new(),
            max_frame,
            replies: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Queues a frame whose payload `payload` writes; nothing is queued if that fails.
    pub(crate) fn push<E>(
        &self,
        kind: Kind,
        codec: Codec,
        payload: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), PushError<E>> {
        let was_empty = {
            let mut inner = lock(&self.inner);
            if inner.closed {
                return Err(PushError::Closed);
            }
            let was_empty = inner.buffer.is_empty();
            frame::write(&mut inner.buffer, kind, codec, self.max_frame, payload).map_err(
                |error| match error {
                    WriteError::Payload(error) => PushError::Payload(error),
                    WriteError::Frame(error) => PushError::Frame(error),
                },
            )?;
            was_empty
        };
        if was_empty {
            self.kick.notify_one();
        }
        Ok(())
    }

    /// Queues a heartbeat, unless frames are waiting already (they tell the peer as much).
    pub(crate) fn tick(&self) {
        let kicked = {
            let mut inner = lock(&self.inner);
            let idle = !inner.closed && inner.buffer.is_empty();
            if idle {
                frame::write_tick(&mut inner.buffer);
            }
            idle
        };
        if kicked {
            self.kick.notify_one();
        }
    }

    /// Refuses further frames; the writer sends what is queued and ends.
    pub(crate) fn close(&self) {
        lock(&self.inner).closed = true;
        self.kick.notify_one();
    }

    /// The writer: sends each accumulated batch in one `write_all` until the outbox is closed
    /// and empty, or the stream fails.
    pub(crate) async fn write_to(&self, io: &mut (impl AsyncWrite + Unpin)) -> std::io::Result<()> {
        let mut spare = BytesMut::new();
        loop {
            self.kick.notified().await;
            let (batch, closed) = {
                let mut inner = lock(&self.inner);
                (mem::replace(&mut inner.buffer, spare), inner.closed)
            };
            if !batch.is_empty() {
                io.write_all(&batch).await?;
                io.flush().await?;
            }
            // Taken under the same lock as the batch: once closed, nothing more is queued.
            if closed {
                return Ok(());
            }
            spare = batch;
            spare.clear();
            if spare.capacity() > KEEP {
                spare = BytesMut::new();
            }
        }
    }
}

#[cfg(test)]
mod tests;
