//! Error hooks: an `#[on_error]` method decides what a failed handler means for its server
//! (Moebius's `on_exception_msg` and `on_exception_next`).
//!
//! Without a hook, a handler's `Err(e)` goes to its caller as `CallError::Handler(e)` and the
//! server goes on, and a panic stops the server with the panic as its reason (let it crash: its
//! supervisor restarts it). With one, the hook sees every failure of an `#[install]` handler
//! (task handlers included) and returns [`OnError::Crash`] or [`OnError::Continue`].

use std::{fmt, future::Future, sync::Arc};

use crate::{
    exit::ExitReason,
    pid::Pid,
    process,
    reply::{Caller, Reply},
    unwind::CatchUnwind,
};

use super::{Dispatched, generated::__finish_fallible};

/// A handler that failed, as an `#[on_error]` hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The handler's installed name.
    pub handler: &'static str,
    /// The calling process; `None` for a caller outside any process.
    pub caller: Option<Pid>,
    /// What went wrong.
    pub kind: FailureKind,
}

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// It returned `Err(e)`: `e` printed with `{:?}`.
    Error(String),
    /// It panicked (or, for a task handler, its task did): the panic message.
    Panic(Arc<str>),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FailureKind::Error(error) => write!(f, "handler `{}` failed: {error}", self.handler),
            FailureKind::Panic(panic) => write!(f, "handler `{}` panicked: {panic}", self.handler),
        }
    }
}

impl Failure {
    #[doc(hidden)]
    pub fn __error(handler: &'static str, caller: Option<Pid>, error: String) -> Self {
        Failure {
            handler,
            caller,
            kind: FailureKind::Error(error),
        }
    }

    #[doc(hidden)]
    pub fn __panic(handler: &'static str, caller: Option<Pid>, panic: Arc<str>) -> Self {
        Failure {
            handler,
            caller,
            kind: FailureKind::Panic(panic),
        }
    }

    /// The reason the server stops with when the hook says [`OnError::Crash`]: the panic for a
    /// panic, an [`ExitReason::Error`] naming the handler for an error.
    pub fn exit_reason(&self) -> ExitReason {
        match &self.kind {
            FailureKind::Error(_) => ExitReason::error(self),
            FailureKind::Panic(panic) => ExitReason::Panic(panic.clone()),
        }
    }
}

/// What an `#[on_error]` hook decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnError {
    /// Stop the server with [`Failure::exit_reason`] (let it crash: its supervisor restarts
    /// it). The failed call's caller gets `CallError::Exited` with that reason.
    Crash,
    /// Go on with the state as the handler left it. The caller of a handler that returned
    /// `Err(e)` gets `CallError::Handler(e)`; the caller of one that panicked gets
    /// `CallError::NoReply`.
    Continue,
}

/// What a server without a hook does: an error goes on, a panic crashes.
pub(super) fn __default_on_error(failure: &Failure) -> OnError {
    match failure.kind {
        FailureKind::Error(_) => OnError::Continue,
        FailureKind::Panic(_) => OnError::Crash,
    }
}

pin_project_lite::pin_project! {
    /// See [`__catch`].
    #[doc(hidden)]
    pub struct Caught<F> {
        #[pin]
        inner: CatchUnwind<F, fn()>,
    }
}

/// Generated server code: a handler's future whose panic comes out as `Err` with its message,
/// for a server with an error hook. The caller's token is outside it, and tokens dropped by the
/// unwinding (a deferred one) do not mark the server stopping: the hook decides that.
#[doc(hidden)]
pub fn __catch<F: Future>(future: F) -> Caught<F> {
    fn nothing() {}
    Caught {
        inner: CatchUnwind::with_hook(future, nothing as fn()),
    }
}

impl<F: Future> Future for Caught<F> {
    type Output = Result<F::Output, Arc<str>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.project().inner;
        crate::reply::survivable(|| inner.poll(cx))
    }
}

/// Generated server code: the error text of a fallible handler's reply, if it is an `Err`.
#[doc(hidden)]
pub fn __failed<T, E: fmt::Debug>(reply: &Reply<Result<T, E>>) -> Option<String> {
    match reply {
        Reply::Reply(Err(error)) | Reply::StopReply(_, Err(error)) => Some(format!("{error:?}")),
        _ => None,
    }
}

/// Generated server code: applies the hook's decision on a handler's `Err` reply.
#[doc(hidden)]
pub fn __after_error<T, E: fmt::Debug>(
    caller: Caller<Result<T, E>>,
    reply: Reply<Result<T, E>>,
    failure: &Failure,
    decision: OnError,
) -> Dispatched {
    match decision {
        OnError::Continue => __finish_fallible(failure.handler, caller, reply),
        OnError::Crash => crash(caller, failure),
    }
}

/// Generated server code: applies the hook's decision on a handler's panic.
#[doc(hidden)]
pub fn __after_panic<X>(caller: Caller<X>, failure: &Failure, decision: OnError) -> Dispatched {
    match decision {
        OnError::Crash => crash(caller, failure),
        OnError::Continue => {
            tracing::warn!(pid = ?crate::self_pid(), %failure, "the error hook keeps the server running");
            drop(caller);
            Dispatched::Continue
        }
    }
}

/// Stops the server for `failure`: marked stopping before the caller's token goes, so that the
/// caller waits for the exit reason.
fn crash<X>(caller: Caller<X>, failure: &Failure) -> Dispatched {
    process::mark_stopping();
    drop(caller);
    Dispatched::Stop(failure.exit_reason())
}
