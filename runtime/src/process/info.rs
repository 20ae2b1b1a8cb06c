//! Introspection: which processes exist and what each is doing (Erlang's `processes()` and
//! `process_info/1`).

use std::sync::Arc;

use crate::{bound::MailboxLimit, mailbox::lock, pid::Pid, table::table};

/// What a process is doing, as far as the runtime can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Running: its task is being polled right now, on some worker thread.
    Running,
    /// Not running: parked at an `.await` (a receive, a call or request, a timer, anything), or
    /// woken and about to run.
    Waiting,
    /// Has an exit reason and is about to leave.
    Exiting,
}

/// A snapshot of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessInfo {
    /// The process.
    pub pid: Pid,
    /// Its registered name, if any.
    pub name: Option<Arc<str>>,
    /// Messages waiting in its mailbox.
    pub mailbox_len: usize,
    /// Messages it has taken from its mailbox so far.
    pub handled: u64,
    /// Its mailbox's limit, if it is bounded (see [`Overflow`](crate::Overflow)).
    pub mailbox_limit: Option<MailboxLimit>,
    /// Messages its full mailbox lost without their sender being told: dropped under
    /// drop-oldest or drop-newest, or sent with [`send`](crate::send) or a cast and turned away
    /// under refuse or block. Always 0 for an unbounded mailbox.
    pub mailbox_dropped: u64,
    /// Messages its full mailbox handed back to a sender that was told:
    /// [`try_send`](crate::try_send) and [`send_wait`](crate::send_wait) errors, calls failed
    /// with `CallError::MailboxFull`. Always 0 for an unbounded
    /// mailbox.
    pub mailbox_refused: u64,
    /// Senders waiting for room in its full mailbox ([`send_wait`](crate::send_wait) and calls,
    /// under [`Overflow::Block`](crate::Overflow::Block)).
    pub mailbox_waiting: usize,
    /// Processes it is linked to, in pid order.
    pub links: Vec<Pid>,
    /// Processes it monitors, in pid order.
    pub monitors: Vec<Pid>,
    /// Processes monitoring it, in pid order.
    pub monitored_by: Vec<Pid>,
    /// Whether it traps exits.
    pub trap_exit: bool,
    /// What it is doing.
    pub status: Status,
}

/// Every live process on this node.
pub fn processes() -> Vec<Pid> {
    table().pids()
}

/// A snapshot of `pid`, or `None` if it is not alive.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pid = ferrotp::spawn(|mut ctx| async move { ctx.receive::<()>().await });
/// ferrotp::send(pid, 1_u8); // not a (), so it stays queued
/// let info = ferrotp::process_info(pid).unwrap();
/// assert_eq!(info.mailbox_len, 1);
/// # }
/// ```
pub fn process_info(pid: Pid) -> Option<ProcessInfo> {
    if !pid.is_local() {
        return None;
    }
    let cell = table().get(pid)?;
    let state = lock(&cell.state);
    if state.finished {
        return None;
    }
    let sorted = |pids: &mut dyn Iterator<Item = Pid>| {
        let mut pids: Vec<Pid> = pids.collect();
        pids.sort_unstable();
        pids
    };
    let relations = state.relations_ref();
    let links = relations.map_or_else(Vec::new, |r| sorted(&mut r.links.iter().copied()));
    let monitors = relations.map_or_else(Vec::new, |r| sorted(&mut r.monitoring.values().copied()));
    let monitored_by = relations.map_or_else(Vec::new, |r| {
        sorted(&mut r.monitored_by.iter().map(|&(_, watcher)| watcher))
    });
    let status = if state.exit().is_some() {
        Status::Exiting
    } else if cell.activity.is_running() {
        Status::Running
    } else {
        Status::Waiting
    };
    let (mailbox_limit, mailbox_dropped, mailbox_refused, mailbox_waiting) =
        match cell.mailbox.bound_info() {
            Some((limit, dropped, refused, waiting)) => (Some(limit), dropped, refused, waiting),
            None => (None, 0, 0, 0),
        };
    Some(ProcessInfo {
        pid,
        mailbox_limit,
        mailbox_dropped,
        mailbox_refused,
        mailbox_waiting,
        name: state.name().cloned(),
        mailbox_len: cell.mailbox.len(&cell.activity),
        handled: cell.activity.taken(),
        links,
        monitors,
        monitored_by,
        trap_exit: state.trap_exit,
        status,
    })
}
