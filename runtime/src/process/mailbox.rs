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
//!
//! Counting: the length of the private queue is published (in the process's [`Activity`]), and
//! updated under the lock whenever messages move between the two queues, so that shared length plus private length, read
//! under the lock, is the mailbox's length at one instant (introspection reports it). Taking a
//! message from the private queue lowers the published length without the lock: that store is
//! the instant the message is taken.
//!
//! Exit watches: whatever must hear of this process's exit without being a link or a monitor
//! registers an [`ExitWatch`] here, and the exit sequence tells it. The call layer above uses it
//! for a reply token that may leave this process (a raw request, handed to user code; a
//! gen_server reply deferred by its handler), so that its call fails even when the token lives on
//! in another process. The core knows only the trait.

use std::{
    collections::VecDeque,
    mem,
    sync::{
        Mutex, Weak,
        atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
};

use crate::message::Message;

/// Told when the process whose mailbox holds it exits (see the module docs): implemented above
/// the core, by the call layer's reply slots.
pub(crate) trait ExitWatch: Send + Sync {
    /// The process has exited: whatever depended on it fails (a call, with its exit reason).
    fn callee_exited(&self);
}

/// The head of the shared queue.
#[derive(Default)]
enum Slot {
    /// No message, nobody waiting.
    #[default]
    Empty,
    /// The receiver is parked until a message arrives.
    Waiting(Waker),
    /// The oldest queued message; any later ones are in `Rest::queue`.
    One(Message),
    /// The process has exited: pushes are refused, so nothing waits in a dead mailbox.
    Closed,
}

/// Messages in arrival order, boxed and allocated on first use: a pointer, not a whole
/// `VecDeque`, in every process's future.
pub(crate) type Batch = Option<Box<VecDeque<Message>>>;

/// The number of messages in a batch.
#[inline]
pub(crate) fn batch_len(batch: &Batch) -> usize {
    batch.as_ref().map_or(0, |queue| queue.len())
}

/// What the shared queue needs only once it has held two messages or a call: allocated on first
/// use, so that an idle process's record stays small.
#[derive(Default)]
pub(crate) struct Rest {
    /// Messages after the one in `head`, in order (empty unless `head` holds a message).
    queue: VecDeque<Message>,
    /// The reply slots of calls pushed here, to be failed if the process exits. Answered calls
    /// are pruned whenever the vector is full, so it holds about twice the calls in flight.
    watchers: Vec<Weak<dyn ExitWatch>>,
}

#[derive(Default)]
struct Queue {
    head: Slot,
    rest: Option<Box<Rest>>,
}

impl Queue {
    fn rest_len(&self) -> usize {
        self.rest.as_ref().map_or(0, |rest| rest.queue.len())
    }
}

/// The multi-producer, single-consumer queue every sender pushes onto.
#[derive(Default)]
pub(crate) struct Mailbox {
    queue: Mutex<Queue>,
}

/// What the owner of a mailbox publishes about its use of it, for introspection. Written by the
/// owner alone, at every message and every poll: the process record keeps it away from the
/// queue's lock, which senders take, so that the owner's writes do not steal the senders' cache
/// line.
#[derive(Default)]
pub(crate) struct Activity {
    /// Messages the owner has taken.
    taken: AtomicU64,
    /// Messages in the owner's private queue, or in its hands and not yet taken (see the module
    /// docs).
    private_len: AtomicU32,
    /// The owner's task is being polled right now.
    running: AtomicBool,
    /// What the owner is doing for a layer above, as bits that layer defines (the call layer:
    /// handling a message, with a context in `Relations::serving`; and, set by other processes,
    /// that a caller gave up on a call it may still hold); copied into the thread's current
    /// state at every poll.
    serving: AtomicU8,
}

// The `#[inline]`s: these are called from process tasks, which are generic and built in the
// user's crate, where a plain function of this crate is not inlined.
impl Activity {
    /// The owner's private queue now holds `len` messages (it took one, or dropped some).
    #[inline]
    pub(crate) fn set_private_len(&self, len: usize) {
        store_len(&self.private_len, len);
    }

    /// The owner took a message.
    #[inline]
    pub(crate) fn count_taken(&self) {
        // Only the owner writes this counter: a load and a store, no locked read-modify-write.
        let taken = self.taken.load(Ordering::Relaxed);
        self.taken.store(taken + 1, Ordering::Relaxed);
    }

    /// Messages taken so far.
    #[inline]
    pub(crate) fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Marks the owner's task as being polled, or not.
    #[inline]
    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Relaxed);
    }

    /// Whether the owner's task is being polled right now.
    #[inline]
    pub(crate) fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Sets some serving bits, leaving the others as they are (another process may set one).
    #[inline]
    pub(crate) fn mark_serving(&self, bits: u8) {
        self.serving.fetch_or(bits, Ordering::AcqRel);
    }

    /// Clears some serving bits, leaving the others as they are.
    #[inline]
    pub(crate) fn unmark_serving(&self, bits: u8) {
        self.serving.fetch_and(!bits, Ordering::AcqRel);
    }

    /// The owner's serving bits.
    #[inline]
    pub(crate) fn serving(&self) -> u8 {
        self.serving.load(Ordering::Relaxed)
    }
}

/// What the receiver found: a lone message, or everything moved to its private queue.
pub(crate) enum Taken {
    One(Message),
    Moved,
}

/// What a mailbox held when it was closed: the caller drops the messages and fails the calls.
pub(crate) struct Closed {
    pub(crate) first: Option<Message>,
    pub(crate) rest: Option<Box<Rest>>,
}

impl Closed {
    /// Whether it held no message.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The messages, in arrival order.
    pub(crate) fn messages(&mut self) -> impl Iterator<Item = Message> + '_ {
        let rest = self.rest.as_mut().map(|rest| rest.queue.drain(..));
        self.first
            .take()
            .into_iter()
            .chain(rest.into_iter().flatten())
    }

    /// The calls to fail.
    pub(crate) fn watchers(&self) -> &[Weak<dyn ExitWatch>] {
        self.rest.as_ref().map_or(&[], |rest| &rest.watchers)
    }
}

#[inline]
fn store_len(counter: &AtomicU32, len: usize) {
    counter.store(u32::try_from(len).unwrap_or(u32::MAX), Ordering::Relaxed);
}

impl Mailbox {
    /// Appends a message and wakes the receiver if it is waiting.
    ///
    /// Returns the message back if the mailbox is closed (its process has exited).
    pub(crate) fn push(&self, message: Message) -> Result<(), Message> {
        let waker = {
            let mut queue = lock(&self.queue);
            let Queue { head, rest } = &mut *queue;
            match head {
                Slot::Closed => return Err(message),
                Slot::One(_) => {
                    rest.get_or_insert_default().queue.push_back(message);
                    None
                }
                Slot::Empty | Slot::Waiting(_) => match mem::replace(head, Slot::One(message)) {
                    Slot::Waiting(waker) => Some(waker),
                    _ => None,
                },
            }
        };
        // Wake outside the lock so the woken receiver does not contend for it.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Watches a call's reply slot until the process exits; `false` if it has exited already.
    pub(crate) fn watch(&self, watch: Weak<dyn ExitWatch>) -> bool {
        let mut queue = lock(&self.queue);
        if matches!(queue.head, Slot::Closed) {
            return false;
        }
        let watchers = &mut queue.rest.get_or_insert_default().watchers;
        if watchers.len() == watchers.capacity() {
            watchers.retain(|watch| watch.strong_count() > 0);
        }
        watchers.push(watch);
        true
    }

    /// Takes what is queued: a lone message is handed over as it is; several are moved onto the
    /// end of `into` in order. With nothing queued, registers `cx`'s waker and returns `Pending`.
    pub(crate) fn poll_take(
        &self,
        into: &mut Batch,
        activity: &Activity,
        cx: &mut Context<'_>,
    ) -> Poll<Taken> {
        let mut queue = lock(&self.queue);
        let lone = queue.rest_len() == 0;
        let Queue { head, rest } = &mut *queue;
        match head {
            Slot::One(_) if lone => match mem::take(head) {
                Slot::One(message) => {
                    // In the owner's hands now: still counted until it is taken.
                    store_len(&activity.private_len, batch_len(into) + 1);
                    Poll::Ready(Taken::One(message))
                }
                _ => Poll::Pending,
            },
            Slot::One(_) => {
                take_all(head, rest, into);
                store_len(&activity.private_len, batch_len(into));
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
    pub(crate) fn drain_now(&self, into: &mut Batch, activity: &Activity) {
        let mut queue = lock(&self.queue);
        let Queue { head, rest } = &mut *queue;
        take_all(head, rest, into);
        store_len(&activity.private_len, batch_len(into));
    }

    /// Refuses further messages and returns what the mailbox held, to be dropped and failed by
    /// the caller outside the lock (dropping a pending request wakes its caller).
    pub(crate) fn close(&self) -> Closed {
        let mut queue = lock(&self.queue);
        let first = match mem::replace(&mut queue.head, Slot::Closed) {
            Slot::One(message) => Some(message),
            _ => None,
        };
        Closed {
            first,
            rest: queue.rest.take(),
        }
    }

    /// How many call watchers are registered (answered ones included until pruned).
    #[cfg(test)]
    pub(crate) fn watchers(&self) -> usize {
        let queue = lock(&self.queue);
        queue.rest.as_ref().map_or(0, |rest| rest.watchers.len())
    }

    /// Messages waiting, in the shared queue and the owner's private one, at one instant.
    pub(crate) fn len(&self, activity: &Activity) -> usize {
        let queue = lock(&self.queue);
        let shared = usize::from(matches!(queue.head, Slot::One(_))) + queue.rest_len();
        shared + activity.private_len.load(Ordering::Relaxed) as usize
    }
}

/// Moves the head message and the rest onto the end of `into`, leaving the queue empty (and its
/// receiver not registered as waiting).
fn take_all(head: &mut Slot, rest: &mut Option<Box<Rest>>, into: &mut Batch) {
    if !matches!(head, Slot::One(_)) {
        return;
    }
    let Slot::One(first) = mem::take(head) else {
        return;
    };
    let into = into.get_or_insert_default();
    match rest {
        // The burst case: take the whole buffer rather than copying it (leaving the receiver's
        // empty one in its place), then put the head first.
        Some(rest) if into.is_empty() => {
            mem::swap(&mut **into, &mut rest.queue);
            into.push_front(first);
        }
        Some(rest) => {
            into.push_back(first);
            into.append(&mut rest.queue);
        }
        None => into.push_back(first),
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
        let activity = Activity::default();
        let mut private: Batch = None;
        let mut cx = Context::from_waker(Waker::noop());

        push(&mailbox, 1);
        match mailbox.poll_take(&mut private, &activity, &mut cx) {
            Poll::Ready(Taken::One(message)) => assert_eq!(message.downcast::<u32>().ok(), Some(1)),
            _ => panic!("a lone message is handed over"),
        }
        assert_eq!(
            mailbox.len(&activity),
            1,
            "counted until the owner has taken it"
        );
        activity.set_private_len(0);
        assert!(
            private.is_none(),
            "no batch is allocated for a lone message"
        );

        for n in 2..=4 {
            push(&mailbox, n);
        }
        assert_eq!(mailbox.len(&activity), 3);
        assert!(matches!(
            mailbox.poll_take(&mut private, &activity, &mut cx),
            Poll::Ready(Taken::Moved)
        ));
        assert_eq!(numbers(&private), [2, 3, 4]);

        // More arrive while the owner still holds some: they go after, in order.
        for n in 5..=6 {
            push(&mailbox, n);
        }
        mailbox.drain_now(&mut private, &activity);
        assert_eq!(numbers(&private), [2, 3, 4, 5, 6]);
        assert_eq!(
            mailbox.len(&activity),
            5,
            "counted in the private queue now"
        );

        assert!(
            mailbox
                .poll_take(&mut private, &activity, &mut cx)
                .is_pending()
        );
        let mut closed = mailbox.close();
        assert!(closed.messages().next().is_none() && closed.watchers().is_empty());
        assert!(
            mailbox.push(Message::new(7_u32)).is_err(),
            "a closed mailbox refuses"
        );
    }
}
