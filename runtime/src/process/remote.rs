//! The seam between the process core and other nodes: the one place the core hands something to
//! a pid that does not live on the current node.
//!
//! Outbound, the core builds a [`Signal`] and calls [`route`] with the node it acts for; a
//! distributed node has a [`Remote`] (the distribution layer's) that takes it from there. A node
//! that is not distributed cannot reach other nodes, and answers as Erlang does on a node that
//! is not alive: a message is dropped (with a `debug` event), a link delivers an exit signal with
//! [`ExitReason::NoConnection`], a monitor a `Down` with it.
//!
//! Inbound, the distribution layer applies what arrives with the `*_from_remote` functions here,
//! which follow the same rules as local signals: a late signal for a link or monitor that no
//! longer exists is ignored, which keeps the layer's own bookkeeping simple.
//!
//! Nothing else in the core knows about the network.

use std::{any::Any, sync::Arc};

use super::node_core::{self, NodeId};
use crate::{
    exit::ExitReason,
    link::{self, MonitorRef},
    mailbox::lock,
    message::Message,
    pid::Pid,
    table::table,
    unwind::drop_quietly,
};

/// What the core asks of another node.
pub(crate) enum Signal {
    /// A message for process `to`.
    Send {
        from: Pid,
        to: Pid,
        message: Message,
    },
    /// A message for the process registered as `name` on `node` (Erlang's `{Name, Node} ! M`).
    SendNamed {
        from: Pid,
        node: NodeId,
        name: Arc<str>,
        message: Message,
    },
    /// Local process `from` linked itself to `to`.
    Link { from: Pid, to: Pid },
    /// Local process `from` removed its link to `to`.
    Unlink { from: Pid, to: Pid },
    /// An exit signal: from a link when `from` exited (`link`), or sent with `exit`.
    Exit {
        from: Pid,
        to: Pid,
        reason: ExitReason,
        link: bool,
    },
    /// Local process `watcher` monitors `target`.
    Monitor {
        watcher: Pid,
        target: Pid,
        monitor: MonitorRef,
    },
    /// Local process `watcher` removed its monitor of `target`.
    Demonitor {
        watcher: Pid,
        target: Pid,
        monitor: MonitorRef,
    },
    /// Local process `target`, which `watcher` monitors, exited.
    Down {
        watcher: Pid,
        target: Pid,
        monitor: MonitorRef,
        reason: ExitReason,
    },
    /// Something a layer above the core sends (a call or cast): opaque here.
    Upper(Box<dyn Any + Send>),
}

/// A call or cast (its message as the layer above built it) for a server on another node: what
/// [`push_to_server`](super::push_to_server) routes as [`Signal::Upper`].
pub(crate) struct ToServer {
    /// The server, or for a call by name the node (its pseudo-pid with index 0).
    pub(crate) to: Pid,
    /// The name the server is registered under there, for a call by name.
    pub(crate) name: Option<&'static str>,
    pub(crate) message: Message,
}

/// A distributed node's way to other nodes.
pub(crate) trait Remote: Send + Sync + 'static {
    /// Takes `signal` towards its node. Whatever goes wrong from here on (no connection, a peer
    /// refusing) is reported as Erlang does: by exit signals, `Down` messages and failed calls;
    /// a plain message or cast to a node that cannot be reached is dropped, as in Erlang, with a
    /// `debug` event.
    fn route(&self, here: NodeId, signal: Signal);

    /// For the distribution layer to find its own state behind the trait.
    fn as_any(&self) -> &dyn Any;
}

/// Hands `signal` to node `here`'s connections, or answers it as a node that is not distributed.
pub(crate) fn route(here: NodeId, signal: Signal) {
    let remote = node_core::core(here).and_then(|core| core.remote.get().cloned());
    match remote {
        Some(remote) => remote.route(here, signal),
        None => unreachable_node(signal, ExitReason::NoConnection),
    }
}

/// Whether hosted node `here` is distributed (can reach other nodes at all).
pub(crate) fn is_distributed(here: NodeId) -> bool {
    node_core::core(here).is_some_and(|core| core.remote.get().is_some())
}

/// Answers `signal` as if its node had gone with `reason`: what a node that is not distributed
/// does, and what the distribution layer does with a signal it cannot send.
pub(crate) fn unreachable_node(signal: Signal, reason: ExitReason) {
    match signal {
        Signal::Send { to, message, .. } => {
            tracing::debug!(pid = %to, message_type = message.type_name(), %reason, "message to an unreachable node dropped");
            drop_quietly(message, "a message to an unreachable node");
        }
        Signal::SendNamed { name, message, .. } => {
            tracing::debug!(%name, message_type = message.type_name(), %reason, "message to an unreachable node dropped");
            drop_quietly(message, "a message to an unreachable node");
        }
        Signal::Link { from, to } => exit_from_remote(from, to, reason, true),
        Signal::Monitor {
            watcher,
            target,
            monitor,
        } => down_from_remote(watcher, monitor, target, reason),
        Signal::Upper(upper) => drop_quietly(upper, "a call to an unreachable node"),
        Signal::Unlink { .. }
        | Signal::Exit { .. }
        | Signal::Demonitor { .. }
        | Signal::Down { .. } => {}
    }
}

/// Remote process `from` links to local process `to`; `false` if `to` is not alive (the caller
/// answers with an exit signal `NoProc`).
pub(crate) fn link_from_remote(to: Pid, from: Pid) -> bool {
    table()
        .with(to, |cell| {
            let mut state = lock(&cell.state);
            !state.finished && {
                state.relations().links.insert(from);
                true
            }
        })
        .unwrap_or(false)
}

/// Remote process `from` unlinks from local process `to`.
pub(crate) fn unlink_from_remote(to: Pid, from: Pid) {
    table().with(to, |cell| {
        if let Some(relations) = lock(&cell.state).relations.as_mut() {
            relations.links.remove(&from);
        }
    });
}

/// An exit signal from remote process `from` to local process `to` (`link`: over a link, which
/// must still exist; otherwise as [`exit`](crate::exit)).
pub(crate) fn exit_from_remote(to: Pid, from: Pid, reason: ExitReason, link: bool) {
    link::exit_signal(to, from, &reason, link);
}

/// Remote process `watcher` monitors local process `target`; `false` if `target` is not alive
/// (the caller answers with a `Down` with `NoProc`).
pub(crate) fn monitor_from_remote(target: Pid, watcher: Pid, monitor: MonitorRef) -> bool {
    table()
        .with(target, |cell| {
            let mut state = lock(&cell.state);
            !state.finished && {
                state.relations().monitored_by.insert((monitor, watcher));
                true
            }
        })
        .unwrap_or(false)
}

/// Remote process `watcher` removed its monitor of local process `target`.
pub(crate) fn demonitor_from_remote(target: Pid, watcher: Pid, monitor: MonitorRef) {
    table().with(target, |cell| {
        if let Some(relations) = lock(&cell.state).relations.as_mut() {
            relations.monitored_by.remove(&(monitor, watcher));
        }
    });
}

/// Remote process `target`, which local process `watcher` monitors, went with `reason`.
pub(crate) fn down_from_remote(watcher: Pid, monitor: MonitorRef, target: Pid, reason: ExitReason) {
    link::deliver_down(watcher, monitor, target, reason);
}
