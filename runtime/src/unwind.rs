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
    #[project = InnerProj]
    enum Inner<F> {
        Live { #[pin] future: F },
        Gone,
    }
}

pin_project_lite::pin_project! {
    /// A future whose panics come out as `Err` with the panic message. The panicked future is
    /// dropped at once (a panic in its `Drop` is logged), after the `on_panic` hook has run.
    pub(crate) struct CatchUnwind<F> {
        #[pin]
        inner: Inner<F>,
        on_panic: fn(),
    }
}

impl<F: Future> CatchUnwind<F> {
    pub(crate) fn new(future: F) -> Self {
        CatchUnwind::with_hook(future, || {})
    }

    /// Runs `on_panic` after a panic and before the panicked future is dropped.
    pub(crate) fn with_hook(future: F, on_panic: fn()) -> Self {
        CatchUnwind {
            inner: Inner::Live { future },
            on_panic,
        }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Arc<str>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let polled = match this.inner.as_mut().project() {
            InnerProj::Live { future } => catch(|| future.poll(cx)),
            // Polled after completion.
            InnerProj::Gone => return Poll::Pending,
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(message) => {
                (this.on_panic)();
                if let Err(again) = catch(|| this.inner.set(Inner::Gone)) {
                    tracing::error!(message = %again, "a Drop implementation panicked after a panic; the panic is ignored");
                }
                Poll::Ready(Err(message))
            }
        }
    }
}
