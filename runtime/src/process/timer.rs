//! Timers that deliver messages to processes.
//!
//! Timers run on tokio's clock, so tests can drive them with a paused clock
//! (`#[tokio::test(start_paused = true)]`) instead of sleeping.

use std::{any::Any, time::Duration};

use tokio::{task::AbortHandle, time::Instant};

use super::{node_core::current_node, task::InNode};
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

/// Sends `message` to `pid` after `delay` (Erlang's `erlang:send_after/3`). A delay too long to
/// add to the current time never fires.
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
    // On the node that set the timer, whichever thread it fires on.
    let task = tokio::spawn(InNode::new(current_node(), async move {
        tokio::time::sleep(delay).await;
        process::deliver(pid, Message::new(message));
    }));
    TimerRef(task.abort_handle())
}

/// Sends a clone of `message` to `pid` every `period`, the first after one period, until
/// cancelled or until `pid` is no longer alive (Erlang's `timer:send_interval/3`).
///
/// A late tick is delivered once, not in a burst of catch-up messages, and the next one comes a
/// period after it. A zero period is taken as one millisecond, the resolution of the timers; a
/// period too long to add to the current time never ticks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use std::time::Duration;
///
/// let pid = ferrotp::spawn(|mut ctx| async move {
///     let ticker = ferrotp::send_interval(Duration::from_secs(1), ctx.pid(), "tick");
///     for _ in 0..3 {
///         assert_eq!(ctx.receive::<&str>().await, "tick");
///     }
///     ticker.cancel();
/// });
/// assert!(ferrotp::wait(pid).await.is_normal());
/// # }
/// ```
///
/// # Panics
///
/// Panics if called outside a Tokio runtime.
pub fn send_interval<M: Any + Send + Clone>(period: Duration, pid: Pid, message: M) -> TimerRef {
    let period = period.max(RESOLUTION);
    let task = tokio::spawn(InNode::new(current_node(), async move {
        let mut next = Instant::now().checked_add(period);
        while let Some(due) = next {
            tokio::time::sleep_until(due).await;
            if !process::deliver(pid, Message::new(message.clone())) {
                return;
            }
            // Late (as tokio counts it: by more than 5 ms): the next tick is a period from now.
            let now = Instant::now();
            let late = due.checked_add(LATE).is_some_and(|limit| now > limit);
            next = if late { now } else { due }.checked_add(period);
        }
        // The next tick would come after the end of time: nothing to do but go with the target.
        crate::wait(pid).await;
    }));
    TimerRef(task.abort_handle())
}

/// The resolution of tokio's timers.
const RESOLUTION: Duration = Duration::from_millis(1);

/// How late a tick must be to count as missed (tokio's own threshold).
const LATE: Duration = Duration::from_millis(5);
