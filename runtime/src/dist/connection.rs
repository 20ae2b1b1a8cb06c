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
use crate::calls::spin;

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
    // After answering one of the peer's calls, the reader spins a while: the peer tends to
    // send the next one within a round trip. Only after a reply: a stream of casts or messages
    // keeps the reader busy anyway, and spinning then would only take the thread from the
    // processes it feeds.
    let replied = &outbox.replies;
    let mut replies = replied.load(Ordering::Relaxed);
    let reading = spin::after(reading, move || {
        let now = replied.load(Ordering::Relaxed);
        std::mem::replace(&mut replies, now) != now
    });
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
