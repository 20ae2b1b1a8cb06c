//! The future a process's tokio task runs.
//!
//! It is written by hand rather than as nested `async` blocks because it is allocated once per
//! process: tokio aligns task cells to 128 bytes, and keeping this future small keeps an idle
//! process inside two of those lines instead of three. It does four things around the process
//! function:
//! - calls the function inside the task, so the function body runs in the new process;
//! - sets the current pid for the duration of every poll, for [`self_pid`] (and the node's panic
//!   hook), and marks the process as running meanwhile, for introspection;
//! - catches a panic and turns it into the exit reason;
//! - drops the body (the process's state) once the exit reason is fixed, catching a panic in its
//!   `Drop`, however the process ends.
//!
//! Its `ExitGuard` runs the rest of the exit sequence when tokio drops the future: right after it
//! completes, or when the task is aborted because an exit signal killed the process.

use std::{
    cell::Cell as ThreadCell,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use super::node_core::{DEFAULT_NODE, NodeId};
use crate::{
    context::Context,
    exit::{ExitReason, ProcessOutput},
    mailbox::lock,
    pid::Pid,
    process::Cell,
    unwind::{catch, drop_panicked},
};

/// What this thread is polling.
#[derive(Clone, Copy)]
struct Current {
    /// The process, if any.
    pid: Option<Pid>,
    /// The node the code runs on: the process's, or the one a [`InNode`] future entered.
    node: NodeId,
    /// The process has panicked in this poll (set by the node's panic hook only). It rides along
    /// with the pid, so a poll pays nothing more for it.
    panicked: bool,
    /// What the process serves, as the call layer's bits (see `Activity::serving`): calls it
    /// makes then build their context.
    serving: u8,
}

thread_local! {
    static CURRENT: ThreadCell<Current> = const {
        ThreadCell::new(Current { pid: None, node: DEFAULT_NODE, panicked: false, serving: 0 })
    };
}

/// The pid of the process this code runs in, or `None` outside any process (inside a process
/// [`Context::pid`] gives the same).
#[inline]
pub fn self_pid() -> Option<Pid> {
    CURRENT.with(|current| current.get().pid)
}

/// The current process, and its serving bits (one thread-local read for both: every call asks).
#[inline]
pub(crate) fn self_and_serving() -> (Option<Pid>, u8) {
    CURRENT.with(|current| {
        let current = current.get();
        (current.pid, current.serving)
    })
}

/// Sets the current process's serving bits for the rest of this poll (later polls read them
/// from the process's `Activity`, which the caller sets too).
#[inline]
pub(crate) fn set_serving(serving: u8) {
    CURRENT.with(|current| {
        let was = current.get();
        current.set(Current { serving, ..was });
    });
}

/// The node this thread runs code of (see `node_core::current_node`, which asks only when this
/// OS process hosts several nodes).
pub(crate) fn current_node() -> NodeId {
    CURRENT.with(|current| current.get().node)
}

/// Runs `f` on `node` (see [`InNode`]), on this thread.
pub(crate) fn enter<R>(node: NodeId, f: impl FnOnce() -> R) -> R {
    InNode::new(node, ()).run(f)
}

pin_project_lite::pin_project! {
    /// Runs a future on a node: code it runs outside processes (spawns, sends) acts as that
    /// node's.
    pub(crate) struct InNode<F> {
        node: NodeId,
        #[pin]
        future: F,
    }
}

impl<F> InNode<F> {
    pub(crate) fn new(node: NodeId, future: F) -> Self {
        InNode { node, future }
    }

    /// Runs `f` on the node, as a poll of the future would.
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT.replace(Current {
            pid: None,
            node: self.node,
            panicked: false,
            serving: 0,
        });
        let _restore = Restore(previous);
        f()
    }
}

/// Puts back what this thread ran before, even if the code in between panics.
struct Restore(Current);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.set(self.0);
    }
}

impl<F: Future> Future for InNode<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let previous = CURRENT.replace(Current {
            pid: None,
            node: *this.node,
            panicked: false,
            serving: 0,
        });
        let _restore = Restore(previous);
        this.future.poll(cx)
    }
}

/// Records that the current process panics, in the node's panic hook; returns whether it had
/// panicked before in this poll already (so this may be a panic while unwinding from the first).
pub(crate) fn mark_panicked() -> bool {
    CURRENT.with(|current| {
        let was = current.get();
        current.set(Current {
            panicked: true,
            ..was
        });
        was.panicked
    })
}

/// Runs the exit sequence when the process's future is dropped, whichever way it ends.
struct ExitGuard(Arc<Cell>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.finish();
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F, Fut> {
        Init { f: Option<F> },
        Running { #[pin] body: Fut },
        Done,
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct ProcessTask<F, Fut> {
        // Dropped before the guard, so the process's own state (its private queue of messages)
        // is gone before the exit sequence tells anyone the process has gone.
        #[pin]
        stage: Stage<F, Fut>,
        guard: ExitGuard,
    }

    impl<F, Fut> PinnedDrop for ProcessTask<F, Fut> {
        // Aborted (killed) before completing: the exit reason is already fixed by the kill, so
        // the body is dropped with it in place. A panic in its `Drop` is logged.
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            drop_stage(this.stage, this.guard.0.pid);
        }
    }
}

/// Drops the process function or its body; a panic in a `Drop` there is logged.
fn drop_stage<F, Fut>(mut stage: Pin<&mut Stage<F, Fut>>, pid: Pid) {
    if !matches!(*stage, Stage::Done) {
        if let Err(message) = catch(|| stage.set(Stage::Done)) {
            drop_panicked(Some(pid), &message, "the state of an exiting process");
        }
    }
}

impl<F, Fut> ProcessTask<F, Fut>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future,
    Fut::Output: ProcessOutput,
{
    pub(crate) fn new(cell: Arc<Cell>, f: F) -> Self {
        ProcessTask {
            stage: Stage::Init { f: Some(f) },
            guard: ExitGuard(cell),
        }
    }
}

impl<F, Fut> Future for ProcessTask<F, Fut>
where
    F: FnOnce(Context) -> Fut,
    Fut: Future,
    Fut::Output: ProcessOutput,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.project();
        let cell = &this.guard.0;
        let mut stage = this.stage;
        let previous = CURRENT.replace(Current {
            pid: Some(cell.pid),
            node: cell.pid.node(),
            panicked: false,
            serving: cell.activity.serving(),
        });
        cell.activity.set_running(true);
        let polled = catch(|| {
            loop {
                match stage.as_mut().project() {
                    StageProj::Init { f } => {
                        let Some(f) = f.take() else {
                            return Poll::Ready(ExitReason::Killed);
                        };
                        let body = f(Context::new(cell.clone()));
                        stage.set(Stage::Running { body });
                    }
                    StageProj::Running { body } => {
                        return body.poll(cx).map(|output| output.exit_reason());
                    }
                    // Polled after completion: tokio never does this.
                    StageProj::Done => return Poll::Pending,
                }
            }
        });
        let reason = match polled {
            Ok(Poll::Pending) => None,
            Ok(Poll::Ready(reason)) => Some(reason),
            Err(message) => Some(ExitReason::Panic(message)),
        };
        let done = reason.is_some();
        if let Some(reason) = reason {
            // The reason first, then the body: a reply token dropped with the body fails its
            // caller with this reason, not as if the process were alive.
            lock(&cell.state).set_exit(reason);
            drop_stage(stage, cell.pid);
        }
        cell.activity.set_running(false);
        CURRENT.set(previous);
        match done {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }
}
