//! Busy-waiting for a reply from another node, briefly, instead of sleeping at once.
//!
//! A round trip to another node takes tens of microseconds, about what waking a sleeping thread
//! costs again. A future that is pending is therefore polled again at once (through the
//! scheduler, so other tasks still run) for a short window, which takes that second wake-up off
//! most remote calls, as Erlang's schedulers busy-wait before they sleep. The caller waiting
//! for a reply spins from its first wait; a connection's reader spins after each reply it sent
//! (the peer tends to call again within a round trip).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

/// How long a spin lasts after its last start.
pub(crate) const SPIN: Duration = Duration::from_micros(50);

pin_project_lite::pin_project! {
    /// `inner`, polled again at once while pending, until [`SPIN`] after the last (re)start.
    /// `restart` is asked at every pending poll whether the window starts again now.
    pub(crate) struct Spin<F, R> {
        #[pin]
        inner: F,
        restart: R,
        since: Option<Instant>,
    }
}

/// Spins from the first pending poll on.
pub(crate) fn from_first_wait<F: Future>(inner: F) -> Spin<F, impl FnMut() -> bool> {
    Spin {
        inner,
        restart: || false,
        since: None,
    }
}

/// Spins while `restart` says something happened less than [`SPIN`] ago; starts the window now.
pub(crate) fn after<F: Future, R: FnMut() -> bool>(inner: F, restart: R) -> Spin<F, R> {
    Spin {
        inner,
        restart,
        since: Some(Instant::now()),
    }
}

impl<F: Future, R: FnMut() -> bool> Future for Spin<F, R> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = this.inner.poll(cx);
        if polled.is_pending() {
            let now = Instant::now();
            if (this.restart)() {
                *this.since = Some(now);
            }
            let since = *this.since.get_or_insert(now);
            if now.duration_since(since) < SPIN {
                cx.waker().wake_by_ref();
            }
        }
        polled
    }
}
