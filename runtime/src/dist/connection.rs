//! One authenticated connection at work: the writer sends the outbox's batches, the reader
//! applies incoming frames, and the heartbeat sends a tick when there is nothing else to send
//! and ends the connection when the peer has been silent for a whole tick time (Erlang's
//! `net_ticktime`), or has read nothing for as long. A peer that reads too slowly ends it too,
//! when the outbox overflows its cap. Whichever ends first ends the connection, and the peer's
//! teardown reports what it carried.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use super::{
    authenticate::Handshaken,
    config::DistConfig,
    frame, inbound,
    outbox::Outbox,
    peer::Peer,
    reader::{ReadError, read_frames},
    transport::Connection,
    wire::Ends,
};

/// Runs the connection of attempt `generation` with `peer` until it ends, then tears it down.
pub(crate) async fn run(
    peer: Arc<Peer>,
    generation: u64,
    ends: Ends,
    handshaken: Handshaken,
    connection: Connection,
    outbox: Arc<Outbox>,
    config: Arc<DistConfig>,
) {
    let Handshaken {
        mut codec,
        mut buffer,
        ..
    } = handshaken;
    frame::authenticated(&mut codec, config.max_frame);
    let (mut read, mut write) = tokio::io::split(connection.io);
    let received = AtomicU64::new(0);
    let reading = read_frames(&mut read, &mut codec, &mut buffer, &received, |frame| {
        inbound::apply(&peer, generation, &ends, &outbox, frame)
    });
    let reading = Hot::new(reading, &outbox.replies);
    let writing = outbox.write_to(&mut write);
    let heartbeat = heartbeat(&outbox, &received, config.net_ticktime);
    let (why, orderly) = tokio::select! {
        read = reading => match read {
            Ok(()) => ("the peer closed the connection".to_owned(), false),
            Err(ReadError::Apply(inbound::Ended::Disconnected(reason))) => {
                (format!("the peer disconnected: {reason}"), true)
            }
            Err(ReadError::Io(error)) => (format!("reading failed: {error}"), false),
            // Torn down already; the teardown said why.
            Err(ReadError::Apply(inbound::Ended::Superseded)) => {
                ("superseded".to_owned(), false)
            }
            Err(error) => {
                let error = match error {
                    ReadError::Apply(error) => error.to_string(),
                    other => other.to_string(),
                };
                tracing::warn!(node = peer.name.as_str(), %error, "bad frame from node; connection closed");
                (error, false)
            }
        },
        written = writing => match written {
            Ok(()) => ("this node disconnected".to_owned(), true),
            Err(error) => (format!("writing failed: {error}"), false),
        },
        dead = heartbeat => match dead {
            Dead::Silent => (format!("no word from the peer in {:?}", config.net_ticktime), false),
            Dead::Deaf => (format!("the peer has not read for {:?}", config.net_ticktime), false),
        },
        // Not left to the writer, which may be stuck in a write to this very peer.
        () = outbox.overflowed() => {
            let why = format!(
                "the peer is not reading fast enough: over {} bytes queued for it",
                config.max_outbox
            );
            (why, false)
        }
    };
    peer.end(generation, &why, orderly);
}

/// How long after answering one of the peer's calls the reader keeps its thread busy before
/// letting it sleep: a peer whose call was just answered tends to send the next one within a
/// round trip, and waking a sleeping thread costs about as much again (Erlang's schedulers
/// busy-wait the same way before they sleep). Only after a reply: a stream of casts or
/// messages keeps the reader busy anyway, and spinning then would only take the thread from
/// the processes it feeds.
const SPIN: Duration = Duration::from_micros(50);

pin_project_lite::pin_project! {
    /// The reader, polled again at once while pending, for [`SPIN`] after the last reply.
    struct Hot<'a, F> {
        #[pin]
        inner: F,
        received: &'a AtomicU64,
        seen: u64,
        since: std::time::Instant,
    }
}

impl<'a, F> Hot<'a, F> {
    fn new(inner: F, received: &'a AtomicU64) -> Self {
        Hot {
            inner,
            received,
            seen: received.load(Ordering::Relaxed),
            since: std::time::Instant::now(),
        }
    }
}

impl<F: std::future::Future> std::future::Future for Hot<'_, F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let polled = this.inner.poll(cx);
        if polled.is_pending() {
            let now = std::time::Instant::now();
            let received = this.received.load(Ordering::Relaxed);
            if received != *this.seen {
                (*this.seen, *this.since) = (received, now);
            }
            if now.duration_since(*this.since) < SPIN {
                cx.waker().wake_by_ref();
            }
        }
        polled
    }
}

/// Why the heartbeat ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dead {
    /// Nothing arrived for a whole tick time.
    Silent,
    /// Bytes were pending for a whole tick time and none went out: the peer does not read.
    Deaf,
}

/// Ticks four times per tick time; returns when nothing arrived for a whole tick time, or the
/// writer had bytes pending and wrote none for as long (see [`Outbox::progress`]).
async fn heartbeat(outbox: &Outbox, received: &AtomicU64, ticktime: Duration) -> Dead {
    let period = (ticktime / 4).max(Duration::from_millis(1));
    let (mut seen, mut silent) = (received.load(Ordering::Relaxed), Duration::ZERO);
    let (mut progress, mut stuck) = (outbox.progress(), Duration::ZERO);
    loop {
        tokio::time::sleep(period).await;
        outbox.tick();
        let now = received.load(Ordering::Relaxed);
        if now == seen {
            silent += period;
            if silent >= ticktime {
                return Dead::Silent;
            }
        } else {
            (seen, silent) = (now, Duration::ZERO);
        }
        let now = outbox.progress();
        if now == progress && now % 2 == 1 {
            stuck += period;
            if stuck >= ticktime {
                return Dead::Deaf;
            }
        } else {
            (progress, stuck) = (now, Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests;
