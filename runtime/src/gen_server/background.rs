//! `#[background(every = "1s")]`: a method run every period, as a message to its server.
//!
//! One timer per method sends the server a [`Tick`] each period, the first one period after
//! `init`. At most one tick of a method waits in the mailbox: a tick is not sent while the last
//! one is still unhandled, so a method slower than its period (or a server busy with a long
//! handler) gets its next turn once, not a burst of them. The server cancels its timers when it
//! stops.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    task::AbortHandle,
    time::{Instant, MissedTickBehavior},
};

use crate::{
    message::Message,
    pid::Pid,
    process::{self, node_core::current_node},
    task::InNode,
};

/// A `#[background]` method's turn. Only the server's own timer makes one.
#[doc(hidden)]
#[derive(Debug)]
pub struct Tick {
    index: usize,
    /// Set while this tick waits or is being handled; cleared when it is dropped.
    pending: Arc<AtomicBool>,
}

impl Tick {
    /// Which `#[background]` method's turn this is (its index in `GenServer::BACKGROUND`).
    #[doc(hidden)]
    pub fn __index(&self) -> usize {
        self.index
    }
}

impl Drop for Tick {
    fn drop(&mut self) {
        self.pending.store(false, Ordering::Release);
    }
}

/// A running timer of one `#[background]` method; dropping it stops it.
pub(crate) struct Timer(AbortHandle);

impl Drop for Timer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the timer of the `index`th `#[background]` method of `server`: a tick every
/// `period` (at least a millisecond), unless the last one is still unhandled.
pub(crate) fn every(period: Duration, server: Pid, index: usize) -> Timer {
    let period = period.max(Duration::from_millis(1));
    let pending = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(InNode::new(current_node(), async move {
        // A period too long to add to the current time never ticks.
        let Some(first) = Instant::now().checked_add(period) else {
            return;
        };
        let mut interval = tokio::time::interval_at(first, period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if pending.swap(true, Ordering::AcqRel) {
                continue;
            }
            let tick = Tick {
                index,
                pending: pending.clone(),
            };
            if !process::signal(server, Message::new(tick)) {
                return;
            }
        }
    }));
    Timer(task.abort_handle())
}
