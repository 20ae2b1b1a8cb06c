//! Panics in user code, caught where the runtime runs it: a panic becomes an exit reason or a
//! start error, and a panicking `Drop` is logged, so that no step of the runtime's own bookkeeping
//! (the exit sequence above all) is ever cut short by user code.

use std::{
    any::Any,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).into()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.as_str().into()
    } else {
        "non-string panic payload".into()
    }
}

/// Runs `f`, turning a panic into `Err` with its message.
#[inline(always)]
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Arc<str>> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| panic_message(&*payload))
}

/// Drops a user value; a panic in its `Drop` is logged (with `what` the value was) instead of
/// unwinding into the runtime.
pub(crate) fn drop_quietly<T>(value: T, what: &'static str) {
    if let Err(message) = catch(move || drop(value)) {
        tracing::error!(%message, what, "a Drop implementation panicked; the panic is ignored");
    }
}

pin_project_lite::pin_project! {
    /// A future whose panics come out as `Err` with the panic message, after the `on_panic` hook
    /// has run. Made for `async` blocks and functions, whose locals the unwinding itself drops (a
    /// reply token among them, whose drop marks its process stopping first): what is left is
    /// inert. The hook is a type parameter, so that a function item costs no space: this wraps
    /// every message a server handles, inside every server's task.
    pub(crate) struct CatchUnwind<F, H> {
        #[pin]
        future: F,
        on_panic: H,
    }
}

impl<F: Future> CatchUnwind<F, fn()> {
    pub(crate) fn new(future: F) -> CatchUnwind<F, impl FnMut()> {
        CatchUnwind::with_hook(future, || {})
    }
}

impl<F: Future, H: FnMut()> CatchUnwind<F, H> {
    /// Runs `on_panic` after a panic.
    pub(crate) fn with_hook(future: F, on_panic: H) -> Self {
        CatchUnwind { future, on_panic }
    }
}

impl<F: Future, H: FnMut()> Future for CatchUnwind<F, H> {
    type Output = Result<F::Output, Arc<str>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let future = this.future;
        match catch(|| future.poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(message) => {
                (this.on_panic)();
                Poll::Ready(Err(message))
            }
        }
    }
}
