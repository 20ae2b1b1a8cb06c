//! Process groups: named sets of processes across the nodes of a cluster, and broadcast to
//! them (Erlang's `pg`).
//!
//! A process [`join`]s a group by name and [`leave`]s it; every node sees the members of every
//! node it is connected to ([`members`]), and [`broadcast`] sends a message to each of them (or
//! to those a filter picks, [`broadcast_if`]). A group exists while it has members: there is
//! nothing to create or delete.
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ferrotp::{pg, spawn, wait};
//!
//! let listener = spawn(|mut ctx| async move {
//!     let news: String = ctx.receive().await;
//!     assert_eq!(news, "hello, everyone");
//! });
//! pg::join("news", listener)?;
//! assert_eq!(pg::members("news"), [listener]);
//!
//! assert_eq!(pg::broadcast("news", "hello, everyone".to_string()), 1);
//! wait(listener).await;
//! // A member leaves its groups when it exits.
//! assert!(pg::members("news").is_empty());
//! # Ok(()) }
//! ```
//!
//! | call | what it does | Erlang |
//! | --- | --- | --- |
//! | [`join(group, pid)`](join) | adds one join of `pid`, a process of this node, to `group` | `pg:join/2` |
//! | [`leave(group, pid)`](leave) | takes one join back | `pg:leave/2` |
//! | [`members(group)`](members) | the members on every node this one knows | `pg:get_members/1` |
//! | [`local_members(group)`](local_members) | the members on this node | `pg:get_local_members/1` |
//! | [`groups()`](groups) | the groups with members anywhere | `pg:which_groups/0` |
//! | [`broadcast(group, message)`](broadcast) | sends `message` to every member | |
//! | [`broadcast_if(group, message, filter)`](broadcast_if) | to the members `filter` picks | |
//!
//! # What you can rely on
//!
//! - **Local membership is immediate.** When [`join`] or [`leave`] returns, every read on this
//!   node sees it. When a member exits, it has left all its groups on its node by the time
//!   [`wait`](crate::wait) on it returns (a monitor's [`Down`](crate::Down) may arrive a moment
//!   earlier).
//! - **Joins count.** A process may join a group several times, and is a member until it has
//!   left as many times. It is listed once however often it joined, and a broadcast sends it the
//!   message once.
//! - **Other nodes see it eventually.** A change reaches each connected node as one message from
//!   this node's scope server, after the change is in place here; the changes of one node arrive
//!   everywhere in the order they were made there. Views of different nodes may differ for a
//!   while (two nodes' changes can arrive in different orders at a third), and they are not
//!   transitive: a node sees the members of the nodes it is connected to, not of their peers.
//! - **A node's members go with it.** When the connection with a node goes down, its members
//!   disappear from this node's view at once (on [`NodeDown`](crate::dist::NodeDown)); when it
//!   comes back, its whole membership is sent again.
//! - **A node learns the others' groups once it uses `pg`.** The scope server of a distributed
//!   node starts on the first call of this module there (any call, a read too), then asks every
//!   connected node for its membership; until the answers are in, [`members`] shows only what
//!   has arrived. A node that is not distributed has no server: its groups are its own.
//! - **Broadcast is `send`.** [`broadcast`] sends with [`send`](crate::send) from the caller, to
//!   the members of the moment, so ordering is exactly `send`'s: a process that broadcasts and
//!   then sends to a member, that member gets the broadcast first. A member that exits meanwhile
//!   misses it, as a `send` to it would.
//!
//! Only a node's own processes join its groups (a pid of another node is refused with
//! [`JoinError::NotLocal`]): membership lives where its process does, which is how it can go when
//! the process or its node does.
//!
//! Groups are named by non-empty strings of at most [`MAX_NAME`] bytes. Each node has one set of
//! groups (Erlang's default scope); several nodes in one OS process ([`LocalNode`](crate::dist::LocalNode))
//! each have their own.
//!
//! # Layout
//!
//! | module | concept |
//! | --- | --- |
//! | this one | the API |
//! | `table` | a node's groups behind one lock: snapshots for reads, local joins and leaves, exits through the core's exit watch |
//! | `server` | the scope server: the exchange with other nodes' servers, and its protocol |
//! | `pids` | a set of pids with constant-time removal, for a group's members |
//!
//! See also: [`dist::monitor_nodes`](crate::dist::monitor_nodes), on which the scope server
//! learns of nodes; [`registry`](crate::register) for one process under one name.

mod pids;
mod server;
mod table;

use std::sync::Arc;

use crate::{pid::Pid, process::node_core::current_node};

pub use server::NAME as SERVER_NAME;

/// The longest group name, in bytes.
pub const MAX_NAME: usize = 255;

/// Why [`join`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The process belongs to another node: a process joins groups from its own node.
    #[error("{0} is a process of another node; only a node's own processes join its groups")]
    NotLocal(Pid),
    /// The process is not alive (it has exited, or never existed).
    #[error("{0} is not alive")]
    NoProc(Pid),
    /// The group's name is empty or longer than [`MAX_NAME`] bytes; it holds the length.
    #[error("a group's name is 1 to {MAX_NAME} bytes long, not {0}")]
    BadName(usize),
}

/// Why [`leave`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaveError {
    /// The process belongs to another node: it leaves groups from its own node.
    #[error("{0} is a process of another node; only a node's own processes leave its groups")]
    NotLocal(Pid),
    /// The process has no join left in the group (it never joined, left already, or exited).
    #[error("{pid} is not a member of `{group}`")]
    NotJoined {
        /// The group.
        group: String,
        /// The process.
        pid: Pid,
    },
}

/// The current node's scope, with its server started if the node is distributed.
fn here() -> Arc<table::Scope> {
    let scope = table::scope(current_node());
    server::ensure(&scope);
    scope
}

/// Adds one join of `pid` to `group` (Erlang's `pg:join/2`); the group exists from its first
/// member on.
///
/// `pid` must be a live process of the current node. It may join a group several times; it stays
/// a member until it has [`leave`]n as many times, or exits. When this returns, every read on
/// this node sees the membership; other nodes see it once this node's scope server has told them.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ferrotp::pg;
///
/// let worker = ferrotp::spawn(|mut ctx| async move { ctx.receive::<()>().await });
/// pg::join("workers", worker)?;
/// pg::join("workers", worker)?;
/// pg::leave("workers", worker)?;
/// assert_eq!(pg::members("workers"), [worker]); // one join left
/// # ferrotp::send(worker, ()); ferrotp::wait(worker).await;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`JoinError::NotLocal`] for a pid of another node, [`JoinError::NoProc`] for a process that is
/// not alive, [`JoinError::BadName`] for an empty name or one over [`MAX_NAME`] bytes.
pub fn join(group: &str, pid: Pid) -> Result<(), JoinError> {
    if group.is_empty() || group.len() > MAX_NAME {
        return Err(JoinError::BadName(group.len()));
    }
    if pid.node() != current_node() {
        return Err(JoinError::NotLocal(pid));
    }
    here()
        .join(group, pid)
        .map_err(|table::Refused::NoProc| JoinError::NoProc(pid))
}

/// Takes one join of `pid` back from `group` (Erlang's `pg:leave/2`).
///
/// # Errors
///
/// [`LeaveError::NotLocal`] for a pid of another node, [`LeaveError::NotJoined`] when `pid` has
/// no join left in `group`.
pub fn leave(group: &str, pid: Pid) -> Result<(), LeaveError> {
    if pid.node() != current_node() {
        return Err(LeaveError::NotLocal(pid));
    }
    match here().leave(group, pid) {
        true => Ok(()),
        false => Err(LeaveError::NotJoined {
            group: group.to_owned(),
            pid,
        }),
    }
}

/// The members of `group` on every node this one knows, each once, in no particular order;
/// empty for a group without members (Erlang's `pg:get_members/1`).
///
/// It reads the node's table (one lock), never waits for the scope server.
pub fn members(group: &str) -> Vec<Pid> {
    snapshot(group, false).map_or_else(Vec::new, |members| members.to_vec())
}

/// The members of `group` on the current node, each once, in no particular order (Erlang's
/// `pg:get_local_members/1`).
pub fn local_members(group: &str) -> Vec<Pid> {
    snapshot(group, true).map_or_else(Vec::new, |members| members.to_vec())
}

/// The groups with at least one member on a node this one knows, sorted (Erlang's
/// `pg:which_groups/0`).
pub fn groups() -> Vec<String> {
    here().groups(false)
}

/// The groups with at least one member on the current node, sorted.
pub fn local_groups() -> Vec<String> {
    here().groups(true)
}

fn snapshot(group: &str, local: bool) -> Option<Arc<[Pid]>> {
    here().snapshot(group, local)
}

/// Sends `message` to every member of `group` (see [`members`]) and returns to how many.
///
/// Each member gets its own clone, sent with [`send`](crate::send) from the caller: so the
/// ordering is `send`'s (what one process sends to a member, broadcast or not, arrives in the
/// order sent), and a message to a member of another node crosses only if its type is
/// [registered](crate::dist::register) on both nodes. The members are those of the moment of the
/// call, read with one lock; a member that has just exited, or joins meanwhile, may miss it.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ferrotp::{pg, spawn_handle};
///
/// let members: Vec<_> = (0..3)
///     .map(|_| spawn_handle(|mut ctx| async move { ctx.receive::<u32>().await }))
///     .collect();
/// for member in &members {
///     pg::join("doc-broadcast", member.pid())?;
/// }
/// assert_eq!(pg::broadcast("doc-broadcast", 7_u32), 3);
/// for member in members {
///     assert_eq!(member.join().await, Ok(7));
/// }
/// # Ok(()) }
/// ```
pub fn broadcast<M: Clone + Send + 'static>(group: &str, message: M) -> usize {
    let Some(members) = snapshot(group, false) else {
        return 0;
    };
    // The last member gets the message itself: one clone fewer.
    if let Some((&last, rest)) = members.split_last() {
        for &pid in rest {
            crate::send(pid, message.clone());
        }
        crate::send(last, message);
    }
    members.len()
}

/// Sends `message` to the members of `group` for which `filter` returns `true`, and returns to
/// how many (Moebius's `broadcast(msg, filter)`). Otherwise as [`broadcast`]; `filter` runs once
/// per member, with no lock held.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ferrotp::{pg, spawn};
///
/// let a = spawn(|mut ctx| async move { ctx.receive::<&str>().await; });
/// let b = spawn(|mut ctx| async move { ctx.receive::<&str>().await; });
/// pg::join("doc-filter", a)?;
/// pg::join("doc-filter", b)?;
/// // Everyone but `a`, as a chat server skips the sender of a line.
/// assert_eq!(pg::broadcast_if("doc-filter", "hi", |pid| pid != a), 1);
/// # ferrotp::send(a, "bye"); ferrotp::wait(a).await; ferrotp::wait(b).await;
/// # Ok(()) }
/// ```
pub fn broadcast_if<M: Clone + Send + 'static>(
    group: &str,
    message: M,
    mut filter: impl FnMut(Pid) -> bool,
) -> usize {
    let Some(members) = snapshot(group, false) else {
        return 0;
    };
    let mut sent = 0;
    for &pid in members.iter() {
        if filter(pid) {
            crate::send(pid, message.clone());
            sent += 1;
        }
    }
    sent
}
