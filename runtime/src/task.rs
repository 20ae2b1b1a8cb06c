//! The future a process's tokio task runs.
//!
//! It is written by hand rather than as nested `async` blocks because it is allocated once per
//! process: tokio aligns task cells to 128 bytes, and keeping this future small keeps an idle
//! process inside two of those lines instead of three. It does three things around the process
//! function:
//! - calls the function inside the task, so the function body runs in the new process;
//! - sets the current pid for the duration of every poll, for [`self_pid`];
//! - catches a panic and turns it into the exit reason.
//!
//! Its `ExitGuard` runs the exit sequence when tokio drops the future: right after it completes,
//! or when the task is aborted because an exit signal killed the process.

use std::{
    any::Any,
    cell::Cell as ThreadCell,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll},
};

use crate::{
    context::Context,
    exit::{ExitReason, ProcessOutput},
    mailbox::lock,
    pid::Pid,
    process::Cell,
};

thread_local! {
    static CURRENT: ThreadCell<Option<Pid>> = const { ThreadCell::new(None) };
}

/// The pid of the process this code runs in, or `None` outside any process (python-actors'
/// `curaddr()`; inside a process [`Context::pid`] gives the same).
pub fn self_pid() -> Option<Pid> {
    CURRENT.with(ThreadCell::get)
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
        // Declared before the guard, so the process's own state (its private queue of messages)
        // is dropped before the exit sequence tells anyone the process has gone.
        #[pin]
        stage: Stage<F, Fut>,
        guard: ExitGuard,
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
        let previous = CURRENT.replace(Some(cell.pid));
        let polled = catch_unwind(AssertUnwindSafe(|| {
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
        }));
        CURRENT.set(previous);
        let reason = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(reason)) => reason,
            Err(payload) => ExitReason::Panic(panic_message(&*payload)),
        };
        // Drop the body now, while the reason is already fixed.
        stage.set(Stage::Done);
        lock(&cell.state).set_exit(reason);
        Poll::Ready(())
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).into()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.as_str().into()
    } else {
        "non-string panic payload".into()
    }
}
