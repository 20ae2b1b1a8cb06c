//! Frames from a peer, applied on the connection's reader task as they arrive: messages go
//! straight into mailboxes, links and monitors into the process records (through the core's
//! seam), with no task or channel per frame.
//!
//! A malformed header closes the connection (the caller logs why); a message body that does not
//! decode, or whose type is not registered here, is dropped with an `error` event and the
//! connection goes on.

use std::sync::Arc;

use super::{
    frame::{Frame, Kind},
    outbound::{push_header, report},
    outbox::Outbox,
    peer::Peer,
    types,
    wire::{Ends, Header, WireError, read_header},
};
use crate::{
    exit::ExitReason,
    pid::Pid,
    process::{self, remote},
    registry,
};

/// How reading a frame ended, when it ends the connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ended {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("a {0:?} frame with another kind's header")]
    Mismatch(Kind),
    #[error("the peer disconnected: {0}")]
    Disconnected(String),
    #[error("the connection was superseded by a newer one")]
    Superseded,
}

/// Applies one frame from `peer`, answering on `outbox` where the protocol asks for an answer.
pub(crate) fn apply(
    peer: &Peer,
    generation: u64,
    ends: &Ends,
    outbox: &Arc<Outbox>,
    frame: Frame<'_>,
) -> Result<(), Ended> {
    // A connection torn down (replaced, say) stops here, even in the middle of a batch it read
    // before: its frames must not reach processes after the teardown told them it was lost.
    if !peer.is_current(generation) {
        return Err(Ended::Superseded);
    }
    let Frame::Message {
        kind,
        codec,
        payload,
    } = frame
    else {
        return Ok(());
    };
    let (header, body) = read_header(payload)?;
    let mine = |pid: Pid| pid.node() == ends.me;
    match (kind, header) {
        (Kind::Send, Header::Send { from, to, tag }) => {
            let (from, to) = (ends.read(from)?, ends.read(to)?);
            match types::decode(tag, codec, body) {
                Ok(message) if mine(to) => {
                    process::deliver_local(to, message);
                }
                Ok(message) => {
                    // A pid of an earlier incarnation of this node, or of another node: nobody.
                    tracing::debug!(%from, %to, "message from another node for no process here dropped");
                    crate::unwind::drop_quietly(message, "a message for no process here");
                }
                Err(error) => {
                    tracing::error!(%from, %to, node = peer.name.as_str(), %error, "a message from another node could not be decoded; dropped")
                }
            }
        }
        (Kind::SendNamed, Header::SendNamed { from, name, tag }) => {
            let from = ends.read(from)?;
            match types::decode(tag, codec, body) {
                Ok(message) => {
                    // As in Erlang, a message to a name nobody has on this node is dropped.
                    let _ =
                        registry::send_to_name_on(ends.me, name, message, process::deliver_local);
                }
                Err(error) => {
                    tracing::error!(%from, name, node = peer.name.as_str(), %error, "a message from another node could not be decoded; dropped")
                }
            }
        }
        (Kind::Link, Header::Link { from, to }) => {
            let (from, to) = (ends.read(from)?, ends.read(to)?);
            let linked = peer
                .records(generation, |records| {
                    let linked = mine(to) && remote::link_from_remote(to, from);
                    if linked {
                        records.links.insert((to, from));
                    }
                    linked
                })
                .ok_or(Ended::Superseded)?;
            if !linked {
                report(push_header(
                    outbox,
                    Kind::Exit,
                    &Header::Exit {
                        from: ends.write(to),
                        to: ends.write(from),
                        reason: ExitReason::NoProc,
                        link: true,
                    },
                ));
            }
        }
        (Kind::Unlink, Header::Unlink { from, to }) => {
            let (from, to) = (ends.read(from)?, ends.read(to)?);
            if mine(to) {
                peer.records(generation, |records| records.links.remove(&(to, from)))
                    .ok_or(Ended::Superseded)?;
                remote::unlink_from_remote(to, from);
            }
        }
        (
            Kind::Exit,
            Header::Exit {
                from,
                to,
                reason,
                link,
            },
        ) => {
            let (from, to) = (ends.read(from)?, ends.read(to)?);
            // Only for a process of this node: one of another node hosted in this OS process is
            // that node's to signal, over its own connections.
            if mine(to) {
                if link {
                    peer.records(generation, |records| records.links.remove(&(to, from)))
                        .ok_or(Ended::Superseded)?;
                }
                remote::exit_from_remote(to, from, reason, link);
            }
        }
        (
            Kind::Monitor,
            Header::Monitor {
                watcher,
                target,
                monitor,
            },
        ) => {
            let (watcher, target) = (ends.read(watcher)?, ends.read(target)?);
            let added = peer
                .records(generation, |records| {
                    let added =
                        mine(target) && remote::monitor_from_remote(target, watcher, monitor);
                    if added {
                        records.watched.insert((target, watcher, monitor));
                    }
                    added
                })
                .ok_or(Ended::Superseded)?;
            if !added {
                report(push_header(
                    outbox,
                    Kind::Down,
                    &Header::Down {
                        watcher: ends.write(watcher),
                        target: ends.write(target),
                        monitor,
                        reason: ExitReason::NoProc,
                    },
                ));
            }
        }
        (
            Kind::Demonitor,
            Header::Demonitor {
                watcher,
                target,
                monitor,
            },
        ) => {
            let (watcher, target) = (ends.read(watcher)?, ends.read(target)?);
            if mine(target) {
                peer.records(generation, |records| {
                    records.watched.remove(&(target, watcher, monitor))
                })
                .ok_or(Ended::Superseded)?;
                remote::demonitor_from_remote(target, watcher, monitor);
            }
        }
        (
            Kind::Down,
            Header::Down {
                watcher,
                target,
                monitor,
                reason,
            },
        ) => {
            let (watcher, target) = (ends.read(watcher)?, ends.read(target)?);
            if mine(watcher) {
                peer.records(generation, |records| records.monitors.remove(&monitor))
                    .ok_or(Ended::Superseded)?;
                remote::down_from_remote(watcher, monitor, target, reason);
            }
        }
        (Kind::Call | Kind::Cast | Kind::Reply | Kind::Answer, header) => {
            super::call::apply(peer, ends, outbox, kind, codec, header, body)?;
        }
        (Kind::Disconnect, Header::Disconnect { reason }) => {
            return Err(Ended::Disconnected(reason.to_owned()));
        }
        (kind, _) => return Err(Ended::Mismatch(kind)),
    }
    Ok(())
}
