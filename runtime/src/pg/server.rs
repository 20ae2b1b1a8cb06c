//! The scope server: one process per distributed node that tells the other nodes' scope servers
//! of local membership and writes what they tell it into the node's table.
//!
//! # Protocol
//!
//! Erlang's `pg` exchange, between the processes registered as [`NAME`] on each node:
//!
//! | message | sent | answer |
//! | --- | --- | --- |
//! | a bare [`Pid`] (*discover*: the sender's server) | to every connected node's name when a server starts, and on each `NodeUp` | a *sync*; and a discover back if the sender's server was not known |
//! | `Wire::Sync { from, groups, more }` | to a discovering server: the local membership, in parts of at most [`SYNC_PART`] pids | none: the receiver replaces what it knew of `from`'s node once the part with `more: false` is in |
//! | `Wire::Join { from, group, pid }` | to every known peer when a local process joins a group it was not in | none |
//! | `Wire::Leave { from, pid, groups }` | to every known peer when a local process leaves groups (all of them, on exit) | none |
//!
//! A discover is a bare `Pid`, a type every node can decode, so a node that does not use `pg`
//! drops it quietly (no process has the name there); the other messages go only to servers
//! that discovered this one. A join or leave from a server that is not a known peer is ignored:
//! the sync that makes it a peer carries that membership anyway. On `NodeDown` everything known
//! of that node's members is dropped; on reconnection the discover and sync start over.
//!
//! The server keeps its own copy of local membership, taken under the table's lock when it
//! starts and then changed only by the changes in its mailbox, which the table pushes in its own
//! order: so a sync is exactly the membership the joins and leaves sent after it start from.

use std::{collections::HashMap, sync::Arc};

use serde::{Deserialize, Serialize};

use super::{
    pids::PidSet,
    table::{Change, Scope},
};
use crate::{
    context::Context,
    dist::{LocalNode, NodeDown, NodeUp},
    pid::Pid,
};

/// The name the scope server registers on its node (reserved: a process of yours registered
/// under it would take the other nodes' messages).
pub const NAME: &str = "ferrotp::pg";

/// The most member pids one sync message carries (a pid is about 40 bytes encoded, so a part
/// stays far below the default frame cap of 8 MiB).
pub(crate) const SYNC_PART: usize = 4096;

/// What scope servers tell each other (after the discover, a bare `Pid`).
#[derive(Serialize, Deserialize)]
enum Wire {
    Sync {
        from: Pid,
        groups: Vec<(String, Vec<Pid>)>,
        more: bool,
    },
    Join {
        from: Pid,
        group: String,
        pid: Pid,
    },
    Leave {
        from: Pid,
        pid: Pid,
        groups: Vec<String>,
    },
}

/// Starts `scope`'s server if its node is distributed and it has none.
pub(crate) fn ensure(scope: &Arc<Scope>) {
    if scope.read().server.is_some() {
        return;
    }
    let Some(dist) = crate::dist::node::dist_of(scope.node) else {
        return;
    };
    let mut state = scope.write();
    if state.server.is_some() {
        return;
    }
    // Taken with the server's pid set, under one lock: every change after this is in its mailbox.
    let local = Scope::local_view(&state);
    let for_server = scope.clone();
    // On the node's own runtime, whichever runtime (or none) the calling code runs in.
    let _runtime = dist.runtime.enter();
    let pid = crate::task::enter(scope.node, || {
        crate::spawn(move |ctx| serve(ctx, for_server, local))
    });
    state.server = Some(pid);
}

/// Marks the scope as without a server when the server's process ends, however it ends.
struct Clear {
    scope: Arc<Scope>,
    me: Pid,
}

impl Drop for Clear {
    fn drop(&mut self) {
        let mut state = self.scope.write();
        if state.server == Some(self.me) {
            state.server = None;
        }
    }
}

/// The server's process.
async fn serve(mut ctx: Context, scope: Arc<Scope>, local: HashMap<Arc<str>, Vec<Pid>>) {
    let local = local
        .into_iter()
        .map(|(group, pids)| (group, pids.into_iter().collect()))
        .collect();
    let me = ctx.pid();
    let _clear = Clear {
        scope: scope.clone(),
        me,
    };
    if let Err(error) = crate::dist::register::<Wire>("ferrotp::pg::Wire") {
        tracing::error!(%error, "process groups cannot talk to other nodes");
        return;
    }
    if let Err(error) = crate::register(NAME, me) {
        tracing::warn!(%error, "the process groups' server cannot take its name: other nodes will not discover this one");
    }
    crate::dist::monitor_nodes(true);
    let mut server = Server {
        me,
        scope,
        local,
        peers: HashMap::new(),
        pending: HashMap::new(),
    };
    // A server that starts again forgets the nodes that went while there was none.
    let connected = LocalNode::current().nodes();
    for node in server.scope.remote_nodes() {
        if !connected.iter().any(|up| up == node) {
            server.scope.drop_node(node);
        }
    }
    for node in &connected {
        crate::dist::send_named(node, NAME, me);
    }
    loop {
        let message = ctx.receive_any().await;
        let message = match message.downcast::<Change>() {
            Ok(change) => {
                server.local_change(change);
                continue;
            }
            Err(message) => message,
        };
        let message = match message.downcast::<Wire>() {
            Ok(wire) => {
                server.wire(wire);
                continue;
            }
            Err(message) => message,
        };
        let message = match message.downcast::<Pid>() {
            Ok(from) => {
                server.discovered_by(from);
                continue;
            }
            Err(message) => message,
        };
        let message = match message.downcast::<NodeUp>() {
            Ok(up) => {
                crate::dist::send_named(&up.node, NAME, me);
                continue;
            }
            Err(message) => message,
        };
        match message.downcast::<NodeDown>() {
            Ok(down) => server.node_down(&down.node),
            Err(other) => tracing::debug!(
                message_type = other.type_name(),
                "the process groups' server dropped a message it does not know"
            ),
        }
    }
}

struct Server {
    me: Pid,
    scope: Arc<Scope>,
    /// Local membership as the peers were told it.
    local: HashMap<Arc<str>, PidSet>,
    /// The other nodes' servers that discovered this one, by node name.
    peers: HashMap<&'static str, Pid>,
    /// Syncs arriving in parts, by node name.
    pending: HashMap<&'static str, Vec<(String, Vec<Pid>)>>,
}

impl Server {
    fn local_change(&mut self, change: Change) {
        match change {
            Change::Joined(group, pid) => {
                self.local.entry(group.clone()).or_default().insert(pid);
                for &peer in self.peers.values() {
                    crate::send(
                        peer,
                        Wire::Join {
                            from: self.me,
                            group: group.to_string(),
                            pid,
                        },
                    );
                }
            }
            Change::Left(pid, groups) => {
                for group in &groups {
                    if let Some(pids) = self.local.get_mut(group) {
                        pids.remove(pid);
                        if pids.is_empty() {
                            self.local.remove(group);
                        }
                    }
                }
                let groups: Vec<String> = groups.iter().map(|group| group.to_string()).collect();
                for &peer in self.peers.values() {
                    crate::send(
                        peer,
                        Wire::Leave {
                            from: self.me,
                            pid,
                            groups: groups.clone(),
                        },
                    );
                }
            }
        }
    }

    fn wire(&mut self, wire: Wire) {
        match wire {
            Wire::Sync { from, groups, more } => {
                let node = from.node_name();
                let parts = self.pending.entry(node).or_default();
                // Only that node's own processes are its members.
                parts.extend(groups.into_iter().map(|(group, pids)| {
                    let pids = pids.into_iter().filter(|pid| pid.node() == from.node());
                    (group, pids.collect())
                }));
                if !more {
                    let view = self.pending.remove(node).unwrap_or_default();
                    self.scope.replace_node(node, view);
                    self.peers.insert(node, from);
                }
            }
            Wire::Join { from, group, pid } => {
                if self.is_peer(from) && pid.node() == from.node() {
                    self.scope.remote_join(from.node_name(), group, pid);
                }
            }
            Wire::Leave { from, pid, groups } => {
                if self.is_peer(from) {
                    self.scope.remote_leave(from.node_name(), pid, groups);
                }
            }
        }
    }

    fn is_peer(&self, from: Pid) -> bool {
        self.peers.get(from.node_name()) == Some(&from)
    }

    /// Another node's server asks for this node's membership.
    fn discovered_by(&mut self, from: Pid) {
        if from.node() == self.me.node() {
            return;
        }
        self.sync_to(from);
        let node = from.node_name();
        if self.peers.get(node) != Some(&from) {
            self.peers.insert(node, from);
            crate::send(from, self.me);
        }
    }

    /// Sends the local membership to `peer`, in parts.
    fn sync_to(&self, peer: Pid) {
        let mut part: Vec<(String, Vec<Pid>)> = Vec::new();
        let mut size = 0;
        for (group, pids) in &self.local {
            for chunk in pids.as_slice().chunks(SYNC_PART) {
                if size + chunk.len() > SYNC_PART && !part.is_empty() {
                    let groups = std::mem::take(&mut part);
                    crate::send(
                        peer,
                        Wire::Sync {
                            from: self.me,
                            groups,
                            more: true,
                        },
                    );
                    size = 0;
                }
                part.push((group.to_string(), chunk.to_vec()));
                size += chunk.len();
            }
        }
        crate::send(
            peer,
            Wire::Sync {
                from: self.me,
                groups: part,
                more: false,
            },
        );
    }

    fn node_down(&mut self, node: &str) {
        self.peers.remove(node);
        self.pending.remove(node);
        self.scope.drop_node(node);
    }
}
