//! Signals for a peer, encoded as frames into its outbox by the sender's own thread.

use std::sync::Arc;

use bytes::BytesMut;

use super::{
    frame::{Codec, Kind},
    node::Dist,
    outbox::{Outbox, PushError},
    peer::Peer,
    types,
    wire::{Ends, Header, write_header},
};
use crate::{message::Message, process::remote::Signal, unwind::drop_quietly};

/// Encodes `signal` into `outbox`. A value that cannot cross (its type is not registered, or it
/// is over the frame cap) is dropped with an `error` event naming it; a closed outbox means the
/// connection is gone, which its teardown reports.
pub(crate) fn push(dist: &Dist, peer: &Peer, ends: &Ends, outbox: &Arc<Outbox>, signal: Signal) {
    let codec = dist.codec;
    let pushed = match signal {
        Signal::Send { from, to, message } => {
            let header = |tag| Header::Send {
                from: ends.write(from),
                to: ends.write(to),
                tag,
            };
            push_message(outbox, codec, message, header, &to.to_string())
        }
        Signal::SendNamed {
            from,
            name,
            message,
            ..
        } => {
            let header = |tag| Header::SendNamed {
                from: ends.write(from),
                name: &name,
                tag,
            };
            push_message(outbox, codec, message, header, &name)
        }
        Signal::Link { from, to } => push_header(
            outbox,
            Kind::Link,
            &Header::Link {
                from: ends.write(from),
                to: ends.write(to),
            },
        ),
        Signal::Unlink { from, to } => push_header(
            outbox,
            Kind::Unlink,
            &Header::Unlink {
                from: ends.write(from),
                to: ends.write(to),
            },
        ),
        Signal::Exit {
            from,
            to,
            reason,
            link,
        } => push_header(
            outbox,
            Kind::Exit,
            &Header::Exit {
                from: ends.write(from),
                to: ends.write(to),
                reason,
                link,
            },
        ),
        Signal::Monitor {
            watcher,
            target,
            monitor,
        } => push_header(
            outbox,
            Kind::Monitor,
            &Header::Monitor {
                watcher: ends.write(watcher),
                target: ends.write(target),
                monitor,
            },
        ),
        Signal::Demonitor {
            watcher,
            target,
            monitor,
        } => push_header(
            outbox,
            Kind::Demonitor,
            &Header::Demonitor {
                watcher: ends.write(watcher),
                target: ends.write(target),
                monitor,
            },
        ),
        Signal::Down {
            watcher,
            target,
            monitor,
            reason,
        } => push_header(
            outbox,
            Kind::Down,
            &Header::Down {
                watcher: ends.write(watcher),
                target: ends.write(target),
                monitor,
                reason,
            },
        ),
        Signal::Upper(upper) => return super::call::push(peer, ends, outbox, upper),
    };
    report(pushed);
}

/// Logs a frame that could not be queued for a reason other than the connection's end.
pub(crate) fn report(pushed: Result<(), PushError<String>>) {
    match pushed {
        Ok(()) | Err(PushError::Closed) => {}
        Err(PushError::Payload(error)) => {
            tracing::error!(%error, "a signal for another node could not be encoded; dropped")
        }
        Err(PushError::Frame(error)) => {
            tracing::error!(%error, "a signal for another node is too large; dropped")
        }
    }
}

/// Queues a frame that is only a header.
pub(crate) fn push_header(
    outbox: &Outbox,
    kind: Kind,
    header: &Header<'_>,
) -> Result<(), PushError<String>> {
    outbox.push(kind, Codec::Postcard, |out| write_header(out, header))
}

fn push_message<'a>(
    outbox: &Outbox,
    codec: Codec,
    message: Message,
    header: impl FnOnce(u64) -> Header<'a>,
    to: &str,
) -> Result<(), PushError<String>> {
    let Some((tag, encode)) = types::encoder(&message) else {
        tracing::error!(
            to,
            message_type = message.type_name(),
            "a message for another node is of a type not registered with \
             `ferrotp::dist::register`; dropped"
        );
        drop_quietly(message, "a message that could not be sent");
        return Ok(());
    };
    let header = header(tag);
    let kind = match header {
        Header::SendNamed { .. } => Kind::SendNamed,
        _ => Kind::Send,
    };
    let pushed = outbox.push(kind, codec, |out: &mut BytesMut| {
        write_header(out, &header)?;
        encode(&message, codec, out)
    });
    drop_quietly(message, "a message sent to another node");
    pushed
}

/// Queues a `DISCONNECT` saying why, the last frame of an orderly end.
pub(crate) fn disconnect(outbox: &Outbox, why: &str) {
    report(push_header(
        outbox,
        Kind::Disconnect,
        &Header::Disconnect { reason: why },
    ));
}
