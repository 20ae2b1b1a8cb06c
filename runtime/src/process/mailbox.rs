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
//! Bounds: a mailbox may be bounded (see [`bound`](super::bound) for the policies and the public
//! API). Its limit lives in [`Rest`], allocated when the process is spawned, so that an
//! unbounded mailbox pays one test of a pointer it holds under the lock anyway, and nothing in
//! the process record grows. A bounded mailbox counts what senders see (shared plus private
//! length); the owner, told by [`Activity::is_bounded`], takes the lock once per message taken to
//! wake a sender waiting for room. Signals never meet the bound.
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

use crate::{
    bound::{Bound, MailboxLimit, Overflow},
    message::Message,
    unwind::drop_quietly,
};

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
    /// The mailbox's limit and what goes with it, for a bounded mailbox (set before the process
    /// runs, and never removed while it lives).
    bound: Option<Box<Bound>>,
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

    /// Messages in the shared queue.
    fn shared_len(&self) -> usize {
        usize::from(matches!(self.head, Slot::One(_))) + self.rest_len()
    }

    fn bound(&self) -> Option<&Bound> {
        self.rest.as_ref()?.bound.as_deref()
    }
}

/// How a push meets a bounded mailbox (an unbounded one takes everything alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// A signal (an exit signal, a `Down`, a behaviour's system message, a message parked for a
    /// restart): never refused, dropped or made to wait, and never dropped later to make room.
    Signal,
    /// A message from a sender that cannot be told (`send`, a cast, a timer): when the policy
    /// turns it away it is dropped here, counted and logged. Dropped later to make room under
    /// drop-oldest.
    Send,
    /// A message from a sender that is told (`try_send`): turned away, it comes back. Dropped
    /// later to make room under drop-oldest.
    Try,
    /// [`Push::Try`] from a sender that waits for room under [`Overflow::Block`] (`send_wait`):
    /// turned away by that policy, it comes back uncounted, since it is not refused but delayed.
    TryOrWait,
    /// A call that cannot wait (one from another node): turned away, it comes back (its caller
    /// gets an error); once queued, never dropped to make room.
    Call,
    /// A call that waits for room under [`Overflow::Block`]: as [`Push::Call`], and as
    /// [`Push::TryOrWait`] for that policy.
    CallOrWait,
}

impl Push {
    /// Whether a queued message pushed so may be dropped to make room for a newer one.
    fn droppable(self) -> bool {
        matches!(self, Push::Send | Push::Try | Push::TryOrWait)
    }
}

/// Why a push did not queue its message, which comes back.
pub(crate) enum Refused {
    /// The process has exited.
    Closed(Message),
    /// The mailbox is full and its policy turned the message away; `wait` when the policy is
    /// [`Overflow::Block`] and the sender may wait for room.
    Full { message: Message, wait: bool },
}

impl Refused {
    pub(crate) fn into_message(self) -> Message {
        match self {
            Refused::Closed(message) | Refused::Full { message, .. } => message,
        }
    }
}

/// What a bounded push decided, under the lock; acted on outside it.
enum Decision {
    /// Queue the message.
    Queue,
    /// Queue the message; this older one was dropped to make room.
    Displace(Message),
    /// Drop the message (a [`Push::Send`] turned away).
    Drop,
    /// Hand the message back.
    Refuse,
    /// Hand the message back to a sender that waits for room: not refused, not counted.
    Wait,
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
    /// The mailbox is bounded: each message the owner takes may make room a sender waits for.
    /// Here, on the owner's line, so that an unbounded owner tests it without touching the lock.
    bounded: AtomicBool,
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

    /// Messages in the owner's private queue or hands.
    #[inline]
    fn private_len(&self) -> usize {
        self.private_len.load(Ordering::Relaxed) as usize
    }

    /// Whether the mailbox is bounded.
    #[inline]
    pub(crate) fn is_bounded(&self) -> bool {
        self.bounded.load(Ordering::Relaxed)
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
    /// Appends a message and wakes the receiver if it is waiting: the fast path, for an
    /// unbounded mailbox.
    ///
    /// # Errors
    ///
    /// The message comes back, not pushed, if the mailbox is closed (its process has exited) or
    /// bounded: [`push_slow`](Mailbox::push_slow) then deals with it. (The bound costs an
    /// unbounded mailbox one test of a pointer at hand under the lock, and nothing else: the
    /// arguments only a bounded push needs are not passed here.)
    pub(crate) fn push(&self, message: Message) -> Result<(), Message> {
        let waker = {
            let mut queue = lock(&self.queue);
            let Queue { head, rest } = &mut *queue;
            if matches!(head, Slot::Closed)
                || rest.as_ref().is_some_and(|rest| rest.bound.is_some())
            {
                return Err(message);
            }
            enqueue(head, rest, message)
        };
        // Wake outside the lock so the woken receiver does not contend for it.
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Pushes a message that [`push`](Mailbox::push) handed back, as `push` says: a bounded
    /// mailbox applies its policy to all but a [`Push::Signal`]; a [`Push::Send`] it turns away
    /// is dropped here (counted and logged), so that only the kinds whose sender is told come
    /// back full.
    ///
    /// # Errors
    ///
    /// The message comes back if the mailbox is closed, or full (see above):
    /// [`refused`](Mailbox::refused) tells which.
    #[cold]
    #[inline(never)]
    pub(crate) fn push_slow(
        &self,
        message: Message,
        push: Push,
        activity: &Activity,
    ) -> Result<(), Message> {
        let mut queue = lock(&self.queue);
        if queue.bound().is_some() {
            return self.push_bounded(queue, message, push, activity);
        }
        let Queue { head, rest } = &mut *queue;
        if matches!(head, Slot::Closed) {
            return Err(message);
        }
        // Unreachable in practice (a bound is never removed from an open mailbox), and right.
        let waker = enqueue(head, rest, message);
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// [`push_slow`](Mailbox::push_slow) to a bounded mailbox: the policy decides under the
    /// lock, what it drops is dropped outside.
    fn push_bounded(
        &self,
        mut queue: std::sync::MutexGuard<'_, Queue>,
        message: Message,
        push: Push,
        activity: &Activity,
    ) -> Result<(), Message> {
        let len = queue.shared_len() + activity.private_len();
        let Queue { head, rest } = &mut *queue;
        let Some(Rest {
            queue: later,
            bound: Some(bound),
            ..
        }) = rest.as_deref_mut()
        else {
            // Not bounded: the caller saw a bound under this lock, so this cannot happen.
            return Err(message);
        };
        if matches!(head, Slot::Closed) {
            return Err(message);
        }
        let pid = bound.pid;
        let overflow = bound.limit.overflow();
        // Senders waiting for room go first: a newcomer takes a place only if there is one
        // beyond theirs.
        let room = len + bound.waiting.len() < bound.limit.capacity().get();
        let decision = if push == Push::Signal || room {
            Decision::Queue
        } else {
            match overflow {
                Overflow::DropOldest => match take_oldest_droppable(head, later, bound) {
                    Some(victim) => Decision::Displace(victim),
                    None => turn_away(push, false),
                },
                Overflow::Block => turn_away(push, true),
                Overflow::Refuse | Overflow::DropNewest => turn_away(push, false),
            }
        };
        match &decision {
            Decision::Displace(_) | Decision::Drop => bound.dropped += 1,
            Decision::Refuse => bound.refused += 1,
            Decision::Queue | Decision::Wait => {}
        }
        let waker = match decision {
            Decision::Queue | Decision::Displace(_) => {
                if overflow == Overflow::DropOldest {
                    bound.droppable.push_back(push.droppable());
                }
                let waker = enqueue_in(head, later, message);
                drop(queue);
                if let Decision::Displace(victim) = decision {
                    let what = "the oldest message in a full mailbox dropped for a newer one";
                    dropped(pid, victim, what);
                }
                waker
            }
            Decision::Drop => {
                drop(queue);
                dropped(pid, message, "a message to a full mailbox dropped");
                None
            }
            Decision::Refuse | Decision::Wait => return Err(message),
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Why [`push`](Mailbox::push) handed `message` back: the mailbox is closed, or full (it
    /// was when the push failed: a mailbox never reopens, and a bounded one never loses its
    /// bound while open).
    #[cold]
    #[inline(never)]
    pub(crate) fn refused(&self, message: Message) -> Refused {
        let queue = lock(&self.queue);
        if matches!(queue.head, Slot::Closed) {
            return Refused::Closed(message);
        }
        let wait = queue
            .bound()
            .is_some_and(|bound| bound.limit.overflow() == Overflow::Block);
        Refused::Full { message, wait }
    }

    /// Pushes `parcel` as a sender that waits for room under [`Overflow::Block`], first come
    /// first served: `ticket` holds its place in line between polls. Under any other policy, or
    /// unbounded, the same as [`push`](Mailbox::push). Whoever drops a `ticket` still set must
    /// [`cancel_wait`](Mailbox::cancel_wait) it.
    pub(crate) fn poll_push(
        &self,
        parcel: &mut Option<Message>,
        ticket: &mut Option<u64>,
        push: Push,
        activity: &Activity,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Refused>> {
        let Some(message) = parcel.take() else {
            // Polled after it pushed.
            return Poll::Ready(Ok(()));
        };
        let mut queue = lock(&self.queue);
        let len = queue.shared_len() + activity.private_len();
        let Queue { head, rest } = &mut *queue;
        let blocking = match rest.as_deref_mut() {
            Some(Rest {
                queue: later,
                bound: Some(bound),
                ..
            }) if bound.limit.overflow() == Overflow::Block && !matches!(head, Slot::Closed) => {
                Some((later, bound))
            }
            _ => None,
        };
        let Some((later, bound)) = blocking else {
            drop(queue);
            *ticket = None;
            let pushed = self.push_slow(message, push, activity);
            return Poll::Ready(pushed.map_err(|message| self.refused(message)));
        };
        // Its place in line: the first `capacity - len` senders in line may push, in whatever
        // order they are polled, so that one woken but not polled holds one place, not all.
        let place = match *ticket {
            Some(mine) => bound.waiting.iter().position(|(t, _)| *t == mine),
            None => None,
        }
        .unwrap_or(bound.waiting.len());
        let capacity = bound.limit.capacity().get();
        if len + place < capacity {
            if ticket.take().is_some() && place < bound.waiting.len() {
                bound.waiting.remove(place);
            }
            let waker = enqueue_in(head, later, message);
            drop(queue);
            if let Some(waker) = waker {
                waker.wake();
            }
            return Poll::Ready(Ok(()));
        }
        match *ticket {
            Some(mine) => {
                if let Some((_, waker)) = bound.waiting.iter_mut().find(|(t, _)| *t == mine) {
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                }
            }
            None => {
                let mine = bound.next_ticket;
                bound.next_ticket += 1;
                bound.waiting.push_back((mine, cx.waker().clone()));
                *ticket = Some(mine);
            }
        }
        *parcel = Some(message);
        Poll::Pending
    }

    /// Gives up a waiting sender's place in line (its future was dropped), passing its turn on.
    pub(crate) fn cancel_wait(&self, ticket: u64, activity: &Activity) {
        let mut queue = lock(&self.queue);
        let len = queue.shared_len() + activity.private_len();
        let Some(bound) = queue.rest.as_mut().and_then(|rest| rest.bound.as_mut()) else {
            return;
        };
        let Some(at) = bound.waiting.iter().position(|(t, _)| *t == ticket) else {
            return;
        };
        bound.waiting.remove(at);
        // Those behind it move up a place: the one that moves into the last place with room
        // may push now.
        let last = bound.limit.capacity().get().checked_sub(len + 1);
        let next = last
            .filter(|&last| at <= last)
            .and_then(|last| bound.waiting.get(last).map(|(_, waker)| waker.clone()));
        drop(queue);
        if let Some(next) = next {
            next.wake();
        }
    }

    /// The owner of a bounded mailbox took a message: the first sender waiting for room, if there
    /// is room now, is woken.
    pub(crate) fn room_freed(&self, activity: &Activity) {
        let queue = lock(&self.queue);
        let len = queue.shared_len() + activity.private_len();
        // One place more: the sender in line that now has room (those before it had it already).
        let next = queue.bound().and_then(|bound| {
            let last = bound.limit.capacity().get().checked_sub(len + 1)?;
            bound.waiting.get(last).map(|(_, waker)| waker.clone())
        });
        drop(queue);
        if let Some(next) = next {
            next.wake();
        }
    }

    /// Bounds the mailbox (before its process runs).
    pub(crate) fn set_limit(&self, limit: MailboxLimit, pid: crate::pid::Pid, activity: &Activity) {
        let mut queue = lock(&self.queue);
        queue.rest.get_or_insert_default().bound = Some(Box::new(Bound::new(limit, pid)));
        activity.bounded.store(true, Ordering::Relaxed);
    }

    /// The limit, the messages dropped and refused so far, and the senders waiting for room, of
    /// a bounded mailbox.
    pub(crate) fn bound_info(&self) -> Option<(MailboxLimit, u64, u64, usize)> {
        let queue = lock(&self.queue);
        queue.bound().map(|bound| {
            (
                bound.limit,
                bound.dropped,
                bound.refused,
                bound.waiting.len(),
            )
        })
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
                    taken_from_shared(rest, false);
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
    ///
    /// Senders waiting for room are woken, to find the mailbox closed.
    pub(crate) fn close(&self) -> Closed {
        let (first, mut rest) = {
            let mut queue = lock(&self.queue);
            let first = match mem::replace(&mut queue.head, Slot::Closed) {
                Slot::One(message) => Some(message),
                _ => None,
            };
            (first, queue.rest.take())
        };
        if let Some(bound) = rest.as_mut().and_then(|rest| rest.bound.as_mut()) {
            for (_, waker) in bound.waiting.drain(..) {
                waker.wake();
            }
        }
        Closed { first, rest }
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
    taken_from_shared(rest, true);
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

/// Appends a message to the shared queue (open, the caller checked); the receiver's waker if it
/// was waiting.
#[inline(always)]
fn enqueue(head: &mut Slot, rest: &mut Option<Box<Rest>>, message: Message) -> Option<Waker> {
    match head {
        Slot::One(_) => {
            rest.get_or_insert_default().queue.push_back(message);
            None
        }
        Slot::Empty | Slot::Waiting(_) | Slot::Closed => take_head(head, message),
    }
}

/// [`enqueue`] where the rest is at hand (a bounded mailbox has it from its spawn).
fn enqueue_in(head: &mut Slot, later: &mut VecDeque<Message>, message: Message) -> Option<Waker> {
    match head {
        Slot::One(_) => {
            later.push_back(message);
            None
        }
        Slot::Empty | Slot::Waiting(_) | Slot::Closed => take_head(head, message),
    }
}

/// Puts a message in the empty head; the receiver's waker if it was waiting.
#[inline(always)]
fn take_head(head: &mut Slot, message: Message) -> Option<Waker> {
    match mem::replace(head, Slot::One(message)) {
        Slot::Waiting(waker) => Some(waker),
        _ => None,
    }
}

/// The owner took the head of the shared queue (`all`: the whole queue): a drop-oldest mailbox
/// forgets what it knew of those messages.
#[inline(always)]
fn taken_from_shared(rest: &mut Option<Box<Rest>>, all: bool) {
    if let Some(bound) = rest.as_mut().and_then(|rest| rest.bound.as_mut()) {
        if all {
            bound.droppable.clear();
        } else {
            bound.droppable.pop_front();
        }
    }
}

/// Removes the oldest message of the shared queue (`head`, then `later`) that may be dropped
/// to make room (see [`Push`]); `None` if there is none there (the messages the owner has already
/// moved to its private queue are its own).
fn take_oldest_droppable(
    head: &mut Slot,
    later: &mut VecDeque<Message>,
    bound: &mut Bound,
) -> Option<Message> {
    let at = bound.droppable.iter().position(|&droppable| droppable)?;
    bound.droppable.remove(at);
    if at == 0 {
        let next = later.pop_front().map_or(Slot::Empty, Slot::One);
        match mem::replace(head, next) {
            Slot::One(victim) => Some(victim),
            _ => None,
        }
    } else {
        later.remove(at - 1)
    }
}

/// The verdict on a message a full mailbox turns away: dropped if its sender cannot be told,
/// handed back to wait if it may (`block`: the policy is back-pressure), refused otherwise.
fn turn_away(push: Push, block: bool) -> Decision {
    match push {
        Push::Send => Decision::Drop,
        Push::TryOrWait | Push::CallOrWait if block => Decision::Wait,
        Push::Signal | Push::Try | Push::TryOrWait | Push::Call | Push::CallOrWait => {
            Decision::Refuse
        }
    }
}

/// Drops a message a full mailbox gave up, outside its lock, and says so.
fn dropped(pid: crate::pid::Pid, message: Message, what: &'static str) {
    tracing::debug!(%pid, message_type = message.type_name(), "{what}");
    drop_quietly(message, "a message dropped by a full mailbox");
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
