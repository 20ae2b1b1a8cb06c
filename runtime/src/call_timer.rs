//! The timeout of a call, made cheap.
//!
//! A fresh tokio timer per call costs more than the rest of a local call put together: it is
//! registered in the timer wheel when first polled and removed again when the reply arrives, each
//! under the wheel's lock. But a registered timer whose deadline only moves later is extended
//! without any lock. So each thread keeps the timer of the last call made on it, and the next call
//! there takes it and moves its deadline forward: sequential calls (the common case) reuse one
//! registration. A kept timer may still fire at its old deadline and wake the task that last
//! polled it once, spuriously and harmlessly. A timer belongs to the runtime that created it, so
//! one from another runtime is dropped rather than reused.

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    runtime::{Handle, Id},
    time::{Instant, Sleep},
};

thread_local! {
    static KEPT: RefCell<Option<(Id, Pin<Box<Sleep>>)>> = const { RefCell::new(None) };
}

/// A timer for one call's deadline; returned to its thread's cache when dropped.
pub(crate) struct CallTimer {
    runtime: Id,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl CallTimer {
    /// A timer firing at `deadline`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as any tokio timer.
    pub(crate) fn until(deadline: Instant) -> Self {
        let runtime = Handle::current().id();
        let kept = KEPT.with(|kept| kept.borrow_mut().take());
        let sleep = match kept {
            Some((id, mut sleep)) if id == runtime => {
                sleep.as_mut().reset(deadline);
                sleep
            }
            _ => Box::pin(tokio::time::sleep_until(deadline)),
        };
        CallTimer {
            runtime,
            sleep: Some(sleep),
        }
    }

    /// Polls `work` first and the timer second: `None` when the deadline passed first.
    pub(crate) async fn race<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx: &mut Context<'_>| {
            if let Poll::Ready(done) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(done));
            }
            match self.sleep.as_mut() {
                Some(sleep) => sleep.as_mut().poll(cx).map(|()| None),
                None => Poll::Pending,
            }
        })
        .await
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        if let Some(sleep) = self.sleep.take() {
            let runtime = self.runtime;
            // `try_with`: during thread teardown the cache may be gone; the timer is then dropped.
            let _ = KEPT.try_with(|kept| *kept.borrow_mut() = Some((runtime, sleep)));
        }
    }
}
