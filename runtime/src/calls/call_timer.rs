//! The timeout of a call, made cheap.
//!
//! A fresh tokio timer per call costs more than the rest of a local call put together: it is
//! registered in the timer wheel when first polled and removed again when the reply arrives, each
//! under the wheel's lock. So each thread keeps the timer of the last call made on it, and the next
//! call there takes it and moves its deadline, which tokio does without a lock when the deadline
//! moves later. A timer belongs to the runtime that created it, so one from another runtime is
//! dropped rather than reused.
//!
//! Two more things are skipped when they would change nothing:
//! - a deadline is set with a millisecond of slack (tokio's timers tick in milliseconds anyway),
//!   and a kept timer whose deadline is already within that slack of the one asked for is left
//!   as it is: calls made in quick succession share one deadline;
//! - a kept timer remembers the waker it registered; while that is the waker of the task calling
//!   (the same process making call after call), the timer is not polled again. It can only fire
//!   by waking that task, which then finds it elapsed.
//!
//! A kept timer may still fire at its old deadline and wake the task that last polled it once,
//! spuriously and harmlessly. A timer that fires takes its registered waker with it, so a timer
//! whose deadline is moved forgets the waker it remembered: it may have fired (on another worker
//! thread) between the check that it had not and the move, and the next poll must register again.

use std::{
    cell::RefCell,
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::{
    runtime::{Handle, Id},
    time::{Instant, Sleep},
};

/// How much later than asked a call may time out, so that calls share deadline updates.
const SLACK: Duration = Duration::from_millis(1);

/// A timer and the waker it last registered (`None` when it has none registered for sure).
struct Kept {
    runtime: Id,
    sleep: Pin<Box<Sleep>>,
    waker: Option<Waker>,
}

thread_local! {
    static KEPT: RefCell<Option<Box<Kept>>> = const { RefCell::new(None) };
}

/// A timer for one call's deadline; returned to its thread's cache when dropped.
///
/// The timer is boxed so that handing it between the cache and a call moves one pointer: moving
/// the parts one by one stalls the loads that read them back.
pub(crate) struct CallTimer {
    kept: Option<Box<Kept>>,
}

impl CallTimer {
    /// A timer that never fires.
    pub(crate) const NONE: CallTimer = CallTimer { kept: None };

    /// A timer firing `timeout` from now, or up to [`SLACK`] later; one that never fires when
    /// `timeout` reaches past the end of time ([`Duration::MAX`], ferrotp's `INFINITY`).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as any tokio timer.
    pub(crate) fn after(timeout: Duration) -> Self {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => CallTimer::until(deadline),
            None => CallTimer::NONE,
        }
    }

    /// A timer firing at `deadline`, or up to [`SLACK`] later: a call's context's deadline, so
    /// that the server's finding it passed and [`passed`](CallTimer::passed) agree.
    pub(crate) fn until(deadline: Instant) -> Self {
        let Some(limit) = deadline.checked_add(SLACK) else {
            return CallTimer::NONE;
        };
        let runtime = Handle::current().id();
        let kept = match KEPT.with(|kept| kept.borrow_mut().take()) {
            Some(mut kept) if kept.runtime == runtime => {
                let current = kept.sleep.deadline();
                if kept.sleep.is_elapsed() || current < deadline || current > limit {
                    // Firing takes the registered waker, and the timer may have fired since the
                    // check above: register again at the next poll.
                    kept.waker = None;
                    kept.sleep.as_mut().reset(limit);
                }
                kept
            }
            _ => Box::new(Kept {
                runtime,
                sleep: Box::pin(tokio::time::sleep_until(limit)),
                waker: None,
            }),
        };
        CallTimer { kept: Some(kept) }
    }

    pub(crate) async fn race<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|cx: &mut Context<'_>| {
            if let Poll::Ready(done) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(done));
            }
            self.poll_expired(cx).map(|()| None)
        })
        .await
    }

    /// Whether the call's deadline has passed (or is within the timer's slack): a server that
    /// drops a call unrun because its deadline passed makes its caller see that, and report a
    /// timeout rather than an unanswered call.
    #[cold]
    pub(crate) fn passed(&self) -> bool {
        self.kept
            .as_ref()
            .is_some_and(|kept| Instant::now() + SLACK >= kept.sleep.deadline())
    }

    /// Ready once the deadline has passed; otherwise registers `cx`'s task to be woken then.
    #[inline]
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(kept) = self.kept.as_mut() else {
            return Poll::Pending;
        };
        if kept.sleep.is_elapsed() {
            kept.waker = None;
            return Poll::Ready(());
        }
        if kept
            .waker
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        match kept.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                kept.waker = None;
                Poll::Ready(())
            }
            Poll::Pending => {
                kept.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        if let Some(kept) = self.kept.take() {
            // `try_with`: during thread teardown the cache may be gone; the timer is then dropped.
            let _ = KEPT.try_with(|slot| *slot.borrow_mut() = Some(kept));
        }
    }
}
