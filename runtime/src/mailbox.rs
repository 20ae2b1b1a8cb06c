//! The shared half of a process mailbox.
//!
//! A mailbox has two queues. Senders push onto the shared queue below, under a short lock. The
//! owning process moves everything from it into a private queue in one step (one lock per batch,
//! not per message) and does its selective receive on the private queue, which no other thread
//! touches. The shared queue is a `VecDeque` that allocates only when the first message arrives, so
//! an idle process pays for an empty mailbox, not a buffer.
//!
//! Wake-ups: the receiver leaves its waker here when it finds nothing to take; the first push after
//! that takes the waker and wakes it, later pushes find no waker and do not wake again.

use std::{
    collections::VecDeque,
    mem,
    sync::Mutex,
    task::{Context, Poll, Waker},
};

use crate::message::Message;

#[derive(Default)]
struct Queue {
    messages: VecDeque<Message>,
    waker: Option<Waker>,
    /// Set when the process has exited: later pushes are refused so nothing waits in a dead mailbox.
    closed: bool,
}

/// The multi-producer, single-consumer queue every sender pushes onto.
#[derive(Default)]
pub(crate) struct Mailbox {
    queue: Mutex<Queue>,
}

impl Mailbox {
    /// Appends a message and wakes the receiver if it is waiting.
    ///
    /// Returns the message back if the mailbox is closed (its process has exited).
    pub(crate) fn push(&self, message: Message) -> Result<(), Message> {
        let waker = {
            let mut queue = lock(&self.queue);
            if queue.closed {
                return Err(message);
            }
            queue.messages.push_back(message);
            queue.waker.take()
        };
        // Wake outside the lock so the woken receiver does not contend for it.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Moves every queued message onto the end of `into`, or registers `cx`'s waker and returns
    /// `Pending` when there are none.
    pub(crate) fn poll_drain(
        &self,
        into: &mut VecDeque<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut queue = lock(&self.queue);
        if queue.messages.is_empty() {
            match &queue.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => queue.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        move_all(&mut queue.messages, into);
        Poll::Ready(())
    }

    /// Moves every queued message onto the end of `into` without waiting.
    pub(crate) fn drain_now(&self, into: &mut VecDeque<Message>) {
        move_all(&mut lock(&self.queue).messages, into);
    }

    /// Refuses further messages and returns the ones still queued, to be dropped by the caller
    /// outside the lock (dropping a pending request wakes its caller).
    pub(crate) fn close(&self) -> VecDeque<Message> {
        let mut queue = lock(&self.queue);
        queue.closed = true;
        queue.waker = None;
        mem::take(&mut queue.messages)
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.queue).messages.len()
    }

    /// Whether the owner is parked waiting for a message.
    pub(crate) fn is_waiting(&self) -> bool {
        lock(&self.queue).waker.is_some()
    }
}

fn move_all(from: &mut VecDeque<Message>, into: &mut VecDeque<Message>) {
    if into.is_empty() {
        // Swapping keeps both buffers' allocations alive and copies nothing.
        mem::swap(into, from);
    } else {
        into.append(from);
    }
}

/// Locks a runtime mutex. A panic never happens while one of these locks is held (the critical
/// sections only move data), so poisoning cannot carry meaning here and is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
