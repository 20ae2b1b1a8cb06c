//! The shared half of a process mailbox.
//!
//! A mailbox has two queues. Senders push onto the shared queue below, under a short lock. The
//! owning process moves everything from it into a private queue in one step (one lock per batch,
//! not per message) and does its selective receive on the private queue, which no other thread
//! touches.
//!
//! Most of the time a mailbox holds no message or one, so the shared queue keeps a lone message
//! inline, in the same slot that otherwise holds the receiver's waker (a message and a waiting
//! receiver exclude each other: a push that finds a waker takes it). The receiver takes a lone
//! message straight from that slot. A process that handles its messages one at a time therefore
//! never allocates a queue buffer at all; the boxed `VecDeque` behind it is allocated on the first
//! burst.
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

/// The head of the shared queue.
#[derive(Default)]
enum Slot {
    /// No message, nobody waiting.
    #[default]
    Empty,
    /// The receiver is parked until a message arrives.
    Waiting(Waker),
    /// The oldest queued message; any later ones are in `Queue::rest`.
    One(Message),
    /// The process has exited: pushes are refused, so nothing waits in a dead mailbox.
    Closed,
}

/// Messages in arrival order, boxed and allocated on first use: a pointer, not a whole
/// `VecDeque`, in every process's record and in every process's future. A burst moves between the
/// shared queue and the owner's private one by swapping the boxes.
pub(crate) type Batch = Option<Box<VecDeque<Message>>>;

/// The number of messages in a batch.
pub(crate) fn batch_len(batch: &Batch) -> usize {
    batch.as_ref().map_or(0, |queue| queue.len())
}

#[derive(Default)]
struct Queue {
    head: Slot,
    /// Messages after the one in `head`, in order (empty unless `head` holds a message).
    rest: Batch,
}

impl Queue {
    fn rest_len(&self) -> usize {
        batch_len(&self.rest)
    }
}

/// The multi-producer, single-consumer queue every sender pushes onto.
#[derive(Default)]
pub(crate) struct Mailbox {
    queue: Mutex<Queue>,
}

/// What the receiver found: a lone message, or everything moved to its private queue.
pub(crate) enum Taken {
    One(Message),
    Moved,
}

impl Mailbox {
    /// Appends a message and wakes the receiver if it is waiting.
    ///
    /// Returns the message back if the mailbox is closed (its process has exited).
    pub(crate) fn push(&self, message: Message) -> Result<(), Message> {
        let waker = {
            let mut queue = lock(&self.queue);
            match &mut queue.head {
                Slot::Closed => return Err(message),
                Slot::One(_) => {
                    queue.rest.get_or_insert_default().push_back(message);
                    None
                }
                head @ (Slot::Empty | Slot::Waiting(_)) => {
                    match mem::replace(head, Slot::One(message)) {
                        Slot::Waiting(waker) => Some(waker),
                        _ => None,
                    }
                }
            }
        };
        // Wake outside the lock so the woken receiver does not contend for it.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Takes what is queued: a lone message is handed over as it is; several are moved onto the
    /// end of `into` in order. With nothing queued, registers `cx`'s waker and returns `Pending`.
    pub(crate) fn poll_take(&self, into: &mut Batch, cx: &mut Context<'_>) -> Poll<Taken> {
        let mut queue = lock(&self.queue);
        let lone = queue.rest_len() == 0;
        let Queue { head, rest } = &mut *queue;
        match head {
            Slot::One(_) if lone => match mem::take(head) {
                Slot::One(message) => Poll::Ready(Taken::One(message)),
                _ => Poll::Pending,
            },
            Slot::One(_) => {
                take_all(head, rest, into);
                Poll::Ready(Taken::Moved)
            }
            Slot::Waiting(waker) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                Poll::Pending
            }
            Slot::Empty => {
                *head = Slot::Waiting(cx.waker().clone());
                Poll::Pending
            }
            Slot::Closed => Poll::Pending,
        }
    }

    /// Moves every queued message onto the end of `into` without waiting.
    pub(crate) fn drain_now(&self, into: &mut Batch) {
        let mut queue = lock(&self.queue);
        let Queue { head, rest } = &mut *queue;
        take_all(head, rest, into);
    }

    /// Refuses further messages and returns the ones still queued, to be dropped by the caller
    /// outside the lock (dropping a pending request wakes its caller).
    pub(crate) fn close(&self) -> (Option<Message>, Batch) {
        let mut queue = lock(&self.queue);
        let first = match mem::replace(&mut queue.head, Slot::Closed) {
            Slot::One(message) => Some(message),
            _ => None,
        };
        (first, queue.rest.take())
    }

    pub(crate) fn len(&self) -> usize {
        let queue = lock(&self.queue);
        usize::from(matches!(queue.head, Slot::One(_))) + queue.rest_len()
    }

    /// Whether the owner is parked waiting for a message.
    pub(crate) fn is_waiting(&self) -> bool {
        matches!(lock(&self.queue).head, Slot::Waiting(_))
    }
}

/// Moves the head message and the rest onto the end of `into`, leaving the queue empty (and its
/// receiver not registered as waiting).
fn take_all(head: &mut Slot, rest: &mut Batch, into: &mut Batch) {
    if !matches!(head, Slot::One(_)) {
        return;
    }
    let Slot::One(first) = mem::take(head) else {
        return;
    };
    if batch_len(into) == 0 {
        // The burst case: take the whole buffer rather than copying it (leaving the receiver's
        // empty one in its place), then put the head first.
        if rest.is_some() {
            mem::swap(into, rest);
        }
        into.get_or_insert_default().push_front(first);
    } else {
        let into = into.get_or_insert_default();
        into.push_back(first);
        if let Some(rest) = rest {
            into.append(rest);
        }
    }
}

/// Locks a runtime mutex. A panic never happens while one of these locks is held (the critical
/// sections only move data), so poisoning cannot carry meaning here and is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(mailbox: &Mailbox, n: u32) {
        assert!(mailbox.push(Message::new(n)).is_ok());
    }

    fn numbers(batch: &Batch) -> Vec<u32> {
        batch
            .iter()
            .flat_map(|queue| queue.iter())
            .map(|message| *message.downcast_ref::<u32>().expect("a u32"))
            .collect()
    }

    #[test]
    fn bursts_move_in_order_and_a_lone_message_is_handed_over_alone() {
        let mailbox = Mailbox::default();
        let mut private: Batch = None;
        let mut cx = Context::from_waker(Waker::noop());

        push(&mailbox, 1);
        match mailbox.poll_take(&mut private, &mut cx) {
            Poll::Ready(Taken::One(message)) => assert_eq!(message.downcast::<u32>().ok(), Some(1)),
            _ => panic!("a lone message is handed over"),
        }
        assert!(
            private.is_none(),
            "no batch is allocated for a lone message"
        );

        for n in 2..=4 {
            push(&mailbox, n);
        }
        assert_eq!(mailbox.len(), 3);
        assert!(matches!(
            mailbox.poll_take(&mut private, &mut cx),
            Poll::Ready(Taken::Moved)
        ));
        assert_eq!(numbers(&private), [2, 3, 4]);

        // More arrive while the owner still holds some: they go after, in order.
        for n in 5..=6 {
            push(&mailbox, n);
        }
        mailbox.drain_now(&mut private);
        assert_eq!(numbers(&private), [2, 3, 4, 5, 6]);
        assert_eq!(mailbox.len(), 0);

        assert!(mailbox.poll_take(&mut private, &mut cx).is_pending());
        assert!(mailbox.is_waiting());
        let (first, rest) = mailbox.close();
        assert!(first.is_none() && batch_len(&rest) == 0);
        assert!(
            mailbox.push(Message::new(7_u32)).is_err(),
            "a closed mailbox refuses"
        );
    }
}
