//! Timers that deliver messages to processes.
//!
//! Timers run on tokio's clock, so tests can drive them with a paused clock
//! (`#[tokio::test(start_paused = true)]`) instead of sleeping.

use std::{any::Any, time::Duration};

use tokio::task::AbortHandle;

use crate::{message::Message, pid::Pid, process};

/// A running timer; [`cancel`](TimerRef::cancel) it to stop it. Dropping a `TimerRef` does not
/// cancel the timer (as in Erlang, a timer is not owned by a variable).
#[derive(Debug)]
pub struct TimerRef(AbortHandle);

impl TimerRef {
    /// Stops the timer. Returns `false` if it had already fired (a one-shot timer) or stopped
    /// (an interval whose target exited).
    pub fn cancel(self) -> bool {
        let pending = !self.0.is_finished();
        self.0.abort();
        pending
    }
}

/// Sends `message` to `pid` after `delay` (Erlang's `erlang:send_after/3`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::time::Duration;
///
/// let pid = ferrotp::spawn(|mut ctx| async move {
///     ferrotp::send_after(Duration::from_secs(1), ctx.pid(), "tick");
///     assert_eq!(ctx.receive::<&str>().await, "tick");
/// });
/// assert!(ferrotp::wait(pid).await.is_normal());
/// # }
/// ```
///
/// # Panics
///
/// Panics if called outside a Tokio runtime.
pub fn send_after<M: Any + Send>(delay: Duration, pid: Pid, message: M) -> TimerRef {
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        process::deliver(pid, Message::new(message));
    });
    TimerRef(task.abort_handle())
}

/// Sends a clone of `message` to `pid` every `period`, the first after one period, until
/// cancelled or until `pid` is no longer alive (Erlang's `timer:send_interval/3`).
///
/// # Panics
///
/// Panics if called outside a Tokio runtime, or if `period` is zero.
pub fn send_interval<M: Any + Send + Clone>(period: Duration, pid: Pid, message: M) -> TimerRef {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    // A late tick is delivered once, not in a burst of catch-up messages.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let task = tokio::spawn(async move {
        loop {
            interval.tick().await;
            if !process::deliver(pid, Message::new(message.clone())) {
                return;
            }
        }
    });
    TimerRef(task.abort_handle())
}
