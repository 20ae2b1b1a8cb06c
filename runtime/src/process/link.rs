//! Links, monitors and exit signals.
//!
//! | | link | monitor |
//! | --- | --- | --- |
//! | direction | both ways | one way: the watcher watches |
//! | when the other process exits | an exit signal (see below) | one [`Down`] message |
//! | set up by | [`Context::link`], [`Context::spawn_link`] | [`Context::monitor`], [`Context::spawn_monitor`] |
//! | removed by | [`Context::unlink`] | [`Context::demonitor`] |
//! | other process already dead | `Err(NoProc)` | `Down` with [`ExitReason::NoProc`] at once |
//!
//! An exit signal with reason `r`, from a link or from [`exit`], does this to its target:
//! - `r` is [`Kill`](ExitReason::Kill) and was sent with [`exit`]: the target exits with
//!   [`Killed`](ExitReason::Killed), trapping or not;
//! - the target traps exits ([`Context::trap_exit`]): it gets an [`Exit`] message and goes on;
//! - `r` is [`Normal`](ExitReason::Normal): nothing happens (unless a process sent it to itself);
//! - otherwise the target exits with reason `r`, and its own links carry `r` further.
//!
//! A killed process stops at its next `.await`, as a dropped future does; code between two
//! suspension points always runs to the next one.

use std::{
    fmt,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::{Deserialize, Serialize};

use super::node_core::current_node;
use super::remote::{self, Signal};
use crate::{
    bound::MailboxLimit,
    context::Context,
    exit::{ExitReason, ProcessOutput},
    mailbox::{Push, lock},
    message::Message,
    pid::Pid,
    process::{self, Cell, Relations},
    table::table,
    task::self_pid,
};

/// The message a process that traps exits gets instead of dying: a linked process exited, or
/// someone called [`exit`] on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The process the signal came from ([`Pid::ROOT`] when sent from outside any process).
    pub from: Pid,
    /// Why.
    pub reason: ExitReason,
}

/// The message a monitor delivers, exactly once, when the watched process exits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Down {
    /// The monitor this message ends.
    pub monitor: MonitorRef,
    /// The process that exited.
    pub pid: Pid,
    /// Its exit reason; [`ExitReason::NoProc`] if it was not alive when monitored.
    pub reason: ExitReason,
}

/// Identifies one monitor; unique for the life of the OS process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MonitorRef(u64);

impl MonitorRef {
    /// A reference with a given number, for the fuzzer's seeds.
    pub(crate) const fn __for_tests(id: u64) -> Self {
        MonitorRef(id)
    }

    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        MonitorRef(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<0.{}>", self.0)
    }
}

impl fmt::Debug for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Linking to a process that is not alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not alive")]
pub struct NoProc(pub Pid);

impl Context {
    /// Sets whether this process traps exits, and returns the previous setting.
    ///
    /// A process that traps exits receives exit signals as [`Exit`] messages instead of dying from
    /// them (except an [`exit`] with [`ExitReason::Kill`]).
    pub fn trap_exit(&self, trap: bool) -> bool {
        std::mem::replace(&mut lock(&self.cell().state).trap_exit, trap)
    }

    /// Links this process with `pid`: when either exits, the other gets an exit signal.
    ///
    /// Linking to oneself or to an already linked process does nothing.
    ///
    /// # Errors
    ///
    /// [`NoProc`] when `pid` is not alive; a process that traps exits also gets an [`Exit`] message
    /// with [`ExitReason::NoProc`], as in Erlang.
    pub fn link(&self, pid: Pid) -> Result<(), NoProc> {
        let me = self.pid();
        if pid == me {
            return Ok(());
        }
        // Own side first, so that a signal from `pid` finds the link as soon as `pid` has it.
        lock(&self.cell().state).relations().links.insert(pid);
        if pid.node() != me.node() {
            // Whether it lives is known only there: if not, an exit signal comes back.
            remote::route(me.node(), Signal::Link { from: me, to: pid });
            tracing::debug!(pid = %me, to = %pid, "link");
            return Ok(());
        }
        let linked = table()
            .with(pid, |other| {
                let mut state = lock(&other.state);
                !state.finished && {
                    state.relations().links.insert(me);
                    true
                }
            })
            .unwrap_or(false);
        if linked {
            tracing::debug!(pid = %me, to = %pid, "link");
            return Ok(());
        }
        let trapping = {
            let mut state = lock(&self.cell().state);
            state.relations().links.remove(&pid);
            state.trap_exit
        };
        if trapping {
            process::signal(
                me,
                Message::new(Exit {
                    from: pid,
                    reason: ExitReason::NoProc,
                }),
            );
        }
        Err(NoProc(pid))
    }

    /// Removes the link between this process and `pid`, if any. No exit signal from that link
    /// arrives afterwards (one may already be in the mailbox, as an [`Exit`] message).
    pub fn unlink(&self, pid: Pid) {
        let me = self.pid();
        if let Some(relations) = lock(&self.cell().state).relations.as_mut() {
            relations.links.remove(&pid);
        }
        if pid.node() != me.node() {
            remote::route(me.node(), Signal::Unlink { from: me, to: pid });
        }
        table().with(pid, |other| {
            if let Some(relations) = lock(&other.state).relations.as_mut() {
                relations.links.remove(&me);
            }
        });
        tracing::debug!(pid = %me, from = %pid, "unlink");
    }

    /// Monitors `pid`: exactly one [`Down`] message arrives when it exits, at once (with
    /// [`ExitReason::NoProc`]) if it is not alive.
    pub fn monitor(&self, pid: Pid) -> MonitorRef {
        let me = self.pid();
        let monitor = MonitorRef::new();
        lock(&self.cell().state)
            .relations()
            .monitoring
            .insert(monitor, pid);
        if pid.node() != me.node() {
            tracing::debug!(pid = %me, watched = %pid, %monitor, "monitor");
            remote::route(
                me.node(),
                Signal::Monitor {
                    watcher: me,
                    target: pid,
                    monitor,
                },
            );
            return monitor;
        }
        let added = table()
            .with(pid, |other| {
                let mut state = lock(&other.state);
                !state.finished && {
                    state.relations().monitored_by.insert((monitor, me));
                    true
                }
            })
            .unwrap_or(false);
        if added {
            tracing::debug!(pid = %me, watched = %pid, %monitor, "monitor");
        } else {
            deliver_down(me, monitor, pid, ExitReason::NoProc);
        }
        monitor
    }

    /// Removes a monitor and any of its [`Down`] messages already in the mailbox (Erlang's
    /// `demonitor(Ref, [flush])`). Returns whether the monitor was still active.
    pub fn demonitor(&mut self, monitor: MonitorRef) -> bool {
        let watched = lock(&self.cell().state)
            .relations
            .as_mut()
            .and_then(|relations| relations.monitoring.remove(&monitor));
        if let Some(pid) = watched {
            unmonitor(self.pid(), pid, monitor);
        }
        self.purge(|message| {
            message
                .downcast_ref::<Down>()
                .is_some_and(|down| down.monitor == monitor)
        });
        watched.is_some()
    }

    /// Spawns a process linked to this one; the link exists before the new process runs.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn spawn_link<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ProcessOutput,
    {
        spawn_linked(self.cell(), f, None).pid
    }

    /// Spawns a process monitored by this one; the monitor exists before the new process runs.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn spawn_monitor<F, Fut>(&self, f: F) -> (Pid, MonitorRef)
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ProcessOutput,
    {
        let me = self.pid();
        let monitor = MonitorRef::new();
        let child = process::start(f, |child| {
            lock(&self.cell().state)
                .relations()
                .monitoring
                .insert(monitor, child.pid);
            lock(&child.state)
                .relations()
                .monitored_by
                .insert((monitor, me));
        });
        (child.pid, monitor)
    }
}

/// Spawns a process linked to `parent` (and its mailbox bounded by `limit`) before it runs.
fn spawn_linked<F, Fut>(parent: &Arc<Cell>, f: F, limit: Option<MailboxLimit>) -> Arc<Cell>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ProcessOutput,
{
    let child = process::start(f, |child| {
        if let Some(limit) = limit {
            child.set_limit(limit);
        }
        lock(&parent.state).relations().links.insert(child.pid);
        lock(&child.state).relations().links.insert(parent.pid);
    });
    tracing::debug!(pid = %parent.pid, to = %child.pid, "link");
    child
}

/// [`Context::spawn_link`] for a parent known by pid; `None` if the parent is not alive.
pub(crate) fn start_linked<F, Fut>(
    parent: Pid,
    f: F,
    limit: Option<MailboxLimit>,
) -> Option<Arc<Cell>>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ProcessOutput,
{
    let parent = table().get(parent)?;
    Some(spawn_linked(&parent, f, limit))
}

/// [`start_linked`] after `prepare` (which can refuse, and then nothing of the process is left)
/// has run on the new process before it can run.
pub(crate) fn try_start_linked<F, Fut>(
    parent: Pid,
    f: F,
    prepare: impl FnOnce(&Arc<Cell>) -> Result<(), ExitReason>,
) -> Result<Arc<Cell>, ExitReason>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ProcessOutput,
{
    let parent = table().get(parent).ok_or(ExitReason::NoProc)?;
    let child = process::try_start(f, |child| {
        prepare(child)?;
        lock(&parent.state).relations().links.insert(child.pid);
        lock(&child.state).relations().links.insert(parent.pid);
        Ok(())
    })?;
    tracing::debug!(pid = %parent.pid, to = %child.pid, "link");
    Ok(child)
}

/// Sends an exit signal with `reason` to `pid` (Erlang's `exit/2`).
///
/// An exit signal, from here or from a link, does this to its target:
/// - `reason` is [`Kill`](ExitReason::Kill) and was sent with `exit`: the target exits with
///   [`Killed`](ExitReason::Killed), trapping or not;
/// - the target traps exits ([`Context::trap_exit`]): it gets an [`Exit`] message and goes on;
/// - `reason` is [`Normal`](ExitReason::Normal): nothing happens, unless a process sent it to
///   itself, which then exits normally;
/// - otherwise the target exits with `reason`, and its own links carry `reason` further.
///
/// A killed process stops at its next `.await`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use ferrotp::ExitReason;
///
/// let pid = ferrotp::spawn(|mut ctx| async move { ctx.receive::<()>().await });
/// ferrotp::exit(pid, ExitReason::Kill);
/// assert_eq!(ferrotp::wait(pid).await, ExitReason::Killed);
/// # }
/// ```
pub fn exit(pid: Pid, reason: ExitReason) {
    let here = current_node();
    let from = self_pid().unwrap_or(Pid::root(here));
    if pid.node() != here {
        tracing::debug!(%pid, %from, %reason, "exit signal");
        let link = false;
        remote::route(
            here,
            Signal::Exit {
                from,
                to: pid,
                reason,
                link,
            },
        );
        return;
    }
    exit_signal(pid, from, &reason, false);
}

/// Applies an exit signal from `from` to local process `to`: over a link (which must still
/// exist) if `link`, otherwise as [`exit`].
pub(crate) fn exit_signal(to: Pid, from: Pid, reason: &ExitReason, link: bool) {
    if link {
        return link_signal(to, from, reason);
    }
    let Some(target) = table().get(to) else {
        return;
    };
    tracing::debug!(pid = %to, %from, %reason, "exit signal");
    if *reason == ExitReason::Kill {
        target.kill(ExitReason::Killed);
        return;
    }
    let kills = *reason != ExitReason::Normal || from == to;
    apply_signal(&target, from, reason, kills, |_| true);
}

/// Removes `watcher`'s monitor `monitor` from the record of `target`.
fn unmonitor(watcher: Pid, target: Pid, monitor: MonitorRef) {
    if target.node() != watcher.node() {
        let signal = Signal::Demonitor {
            watcher,
            target,
            monitor,
        };
        return remote::route(watcher.node(), signal);
    }
    table().with(target, |other| {
        if let Some(relations) = lock(&other.state).relations.as_mut() {
            relations.monitored_by.remove(&(monitor, watcher));
        }
    });
}

/// Applies an exit signal from `from` to `target`, if `applies` (given the target's state) says
/// it does: an [`Exit`] message if the target traps exits, otherwise its end with `reason` when
/// `kills`. Decided and delivered under the target's state lock, so that a concurrent change of
/// its trap flag cannot come between the decision and the delivery.
fn apply_signal(
    target: &Cell,
    from: Pid,
    reason: &ExitReason,
    kills: bool,
    applies: impl FnOnce(&mut process::State) -> bool,
) {
    let abort = {
        let mut state = lock(&target.state);
        if state.finished || !applies(&mut state) {
            return;
        }
        if state.trap_exit {
            let exit = Exit {
                from,
                reason: reason.clone(),
            };
            // Refused only by a closed mailbox, whose process is past caring.
            let _ = target.push(Message::new(exit), Push::Signal);
            return;
        }
        if !kills {
            return;
        }
        state.set_exit(reason.clone()).flatten()
    };
    tracing::debug!(pid = %target.pid, %from, %reason, "killed by an exit signal");
    if let Some(abort) = abort {
        abort.abort();
    }
}

/// Step 4 of the exit sequence: tells everyone related to the exited process `pid`.
pub(crate) fn notify_exit(pid: Pid, reason: &ExitReason, relations: Relations) {
    let Relations {
        name: _,
        parent: _,
        links,
        monitored_by,
        monitoring,
        waiters: _,
        kept: _,
        waiting_on: _,
        serving: _,
    } = relations;
    // The exiting process's own node, not the thread's: a killed process's exit sequence can
    // run outside its task's poll.
    let here = pid.node();
    for linked in links {
        match linked.node() == here {
            true => link_signal(linked, pid, reason),
            false => {
                let (from, to, reason, link) = (pid, linked, reason.clone(), true);
                remote::route(
                    here,
                    Signal::Exit {
                        from,
                        to,
                        reason,
                        link,
                    },
                );
            }
        }
    }
    for (monitor, watcher) in monitored_by {
        match watcher.node() == here {
            true => deliver_down(watcher, monitor, pid, reason.clone()),
            false => {
                let (target, reason) = (pid, reason.clone());
                let down = Signal::Down {
                    watcher,
                    target,
                    monitor,
                    reason,
                };
                remote::route(here, down);
            }
        }
    }
    for (monitor, watched) in monitoring {
        unmonitor(pid, watched, monitor);
    }
}

/// An exit signal travelling over the link `from`—`to` because `from` exited.
fn link_signal(to: Pid, from: Pid, reason: &ExitReason) {
    let Some(target) = table().get(to) else {
        return;
    };
    let kills = *reason != ExitReason::Normal;
    // Only while the link exists: the target may have unlinked meanwhile.
    apply_signal(&target, from, reason, kills, |state| {
        state
            .relations
            .as_mut()
            .is_some_and(|relations| relations.links.remove(&from))
    });
}

/// Delivers a `Down` unless its watcher has demonitored (or exited) meanwhile.
pub(crate) fn deliver_down(watcher: Pid, monitor: MonitorRef, pid: Pid, reason: ExitReason) {
    let Some(cell) = table().get(watcher) else {
        return;
    };
    let active = lock(&cell.state)
        .relations
        .as_mut()
        .is_some_and(|relations| relations.monitoring.remove(&monitor).is_some());
    if active {
        let _ = cell.push(
            Message::new(Down {
                monitor,
                pid,
                reason,
            }),
            Push::Signal,
        );
    }
}
