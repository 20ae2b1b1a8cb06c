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
//!
//! Bounds: a peer that does not read makes frames pile up here, so the bytes waiting are capped
//! (`DistConfig::max_outbox`). A frame that would take them over the cap is not queued; the
//! outbox refuses every frame after it, as a closed one does, and [`Outbox::overflowed`] tells
//! the connection, which ends. And the writer publishes its progress ([`Outbox::progress`]), so
//! that the heartbeat notices a peer that reads nothing at all, however little is queued.

use std::{
    io, mem,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

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
    /// Told once, when a frame would have taken the outbox over `max_outbox`.
    full: Notify,
    max_frame: usize,
    max_outbox: usize,
    /// Replies to the peer's calls queued so far: the reader stays hot after one (see
    /// `connection`).
    pub(crate) replies: AtomicU64,
    /// The writer's progress: odd while it has bytes pending (a batch whose writing has not
    /// finished), even between batches, and stepped on by every write that takes part of a
    /// batch. Only the writer stores it.
    progress: AtomicU64,
}

struct Inner {
    buffer: BytesMut,
    /// No more frames: set by `close`, and by an overflow.
    closed: bool,
    /// A frame would have taken the buffer over the cap; the connection is ending.
    overflowed: bool,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PushError<E> {
    /// The connection is closing or closed: closed, or ending because a frame (this one or an
    /// earlier one) would have taken the outbox over its cap.
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
    /// An outbox for frames of at most `max_frame` bytes, holding at most `max_outbox` bytes
    /// queued (a frame into an empty outbox always fits).
    pub(crate) fn with_limits(max_frame: usize, max_outbox: usize) -> Self {
        Outbox {
            inner: Mutex::new(Inner {
                buffer: BytesMut::new(),
                closed: false,
                overflowed: false,
            }),
            kick: Notify::new(),
            full: Notify::new(),
            max_frame,
            max_outbox,
            replies: AtomicU64::new(0),
            progress: AtomicU64::new(0),
        }
    }

    /// An outbox with the default cap.
    #[cfg(test)]
    pub(crate) fn new(max_frame: usize) -> Self {
        Self::with_limits(max_frame, super::config::DEFAULT_MAX_OUTBOX)
    }

    /// Queues a frame whose payload `payload` writes; nothing is queued if that fails. A frame
    /// that would take the outbox over its cap is not queued either: the outbox is then closed
    /// to every frame, and [`Outbox::overflowed`] returns.
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
            let start = inner.buffer.len();
            frame::write(&mut inner.buffer, kind, codec, self.max_frame, payload).map_err(
                |error| match error {
                    WriteError::Payload(error) => PushError::Payload(error),
                    WriteError::Frame(error) => PushError::Frame(error),
                },
            )?;
            // Into an empty outbox a frame always fits: it is within `max_frame` already.
            if inner.buffer.len() > self.max_outbox && start != 0 {
                inner.buffer.truncate(start);
                inner.closed = true;
                inner.overflowed = true;
                drop(inner);
                self.full.notify_one();
                return Err(PushError::Closed);
            }
            start == 0
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

    /// Returns once a frame would have taken the outbox over its cap (at once if one did
    /// already): the connection must end, whatever the writer is doing. For one waiter.
    pub(crate) async fn overflowed(&self) {
        self.full.notified().await;
    }

    /// The writer's progress: a reading that is odd, and the same as one taken a while before,
    /// says that bytes have been pending all that while and none of them went out.
    pub(crate) fn progress(&self) -> u64 {
        self.progress.load(Ordering::Relaxed)
    }

    /// The writer: sends each accumulated batch, in as few writes as the stream takes, until
    /// the outbox is closed and empty, or the stream fails. After an overflow it sends nothing
    /// more and never returns: the connection ends on [`Outbox::overflowed`].
    pub(crate) async fn write_to(&self, io: &mut (impl AsyncWrite + Unpin)) -> io::Result<()> {
        let mut spare = BytesMut::new();
        let mut progress = self.progress();
        loop {
            self.kick.notified().await;
            let (batch, closed, overflowed) = {
                let mut inner = lock(&self.inner);
                let batch = mem::replace(&mut inner.buffer, spare);
                (batch, inner.closed, inner.overflowed)
            };
            if overflowed {
                return std::future::pending().await;
            }
            if !batch.is_empty() {
                // Odd: bytes pending.
                progress = (progress + 1) | 1;
                self.progress.store(progress, Ordering::Relaxed);
                let mut rest = &batch[..];
                loop {
                    let n = io.write(rest).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    rest = &rest[n..];
                    if rest.is_empty() {
                        break;
                    }
                    // Still odd: part of the batch went out.
                    progress += 2;
                    self.progress.store(progress, Ordering::Relaxed);
                }
                io.flush().await?;
                // Even: nothing pending.
                progress += 1;
                self.progress.store(progress, Ordering::Relaxed);
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
