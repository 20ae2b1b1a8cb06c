//! Bounded mailboxes: a capacity and what happens to a message that finds the mailbox full.
//!
//! The public story (policies, the table of what each does to each way of sending, signals) is
//! on [`Overflow`]; here is how it is kept. The limit and its counters live in the mailbox's
//! lazily allocated rest ([`Bound`]), under the mailbox's lock. Senders that wait for room hold a
//! ticket in `Bound::waiting`, first come first served; the owner wakes the first in line each
//! time it takes a message (`Context` tells the mailbox), a sender that pushes wakes the next if
//! room is left, one that gives up passes its turn on, and closing the mailbox wakes them all.

use std::{
    any::Any, collections::VecDeque, fmt, future::Future, num::NonZeroUsize, sync::Arc, task::Waker,
};

use crate::{
    mailbox::{Push, Refused},
    message::Message,
    pid::Pid,
    process::{self, Cell},
    table::table,
    task::self_pid,
};

/// What a bounded mailbox does with a message that arrives when it is full.
///
/// A mailbox is unbounded unless its process was spawned with a [`MailboxLimit`] (by
/// [`spawn_opt`](crate::spawn_opt), a gen_server's `Start::mailbox`, or a supervisor's
/// `Child::mailbox`), as in OTP. The capacity counts every message waiting, including those the
/// process has already looked at in a selective receive and left; signals count too, but are
/// never turned away.
///
/// What a full mailbox does with a new message, by policy and by the way it was sent:
///
/// | sent with | `Block` | `Refuse` | `DropNewest` | `DropOldest` |
/// | --- | --- | --- | --- | --- |
/// | [`send`](crate::send), a cast, a timer | dropped, counted | dropped, counted | dropped, counted | the oldest droppable message dropped, counted; the new one queued |
/// | [`try_send`] | `Err(Full)`, counted | `Err(Full)`, counted | `Err(Full)`, counted | as `send` |
/// | [`send_wait`] | waits for room | `Err(Full)`, counted | `Err(Full)`, counted | as `send` |
/// | a call | waits for room, within its timeout | `CallError::MailboxFull`, counted | `MailboxFull`, counted | as `send`, but a call is never dropped once queued |
///
/// "Counted": [`ProcessInfo::mailbox_dropped`](crate::ProcessInfo::mailbox_dropped) counts the
/// messages lost without their sender being told (each also a `debug` event),
/// [`mailbox_refused`](crate::ProcessInfo::mailbox_refused) those handed back to a sender that
/// was told. A sender waiting for room is not refused, and not counted.
///
/// Drop-oldest drops the oldest message sent by `send`, a cast, `try_send` or `send_wait` that
/// the process has not looked at yet: one a selective receive has moved aside, or the rest of a
/// batch the process is working through, is its own. A call or a signal is never dropped. With
/// no message to drop, the new one is turned away as under `DropNewest` (a call gets
/// `MailboxFull`). A dropped message's `Drop` runs in the sender; a panic in it is caught and
/// logged.
///
/// Signals are never turned away, dropped or made to wait: exit signals, `Down` messages, node
/// monitor messages, a gen_server's system messages (a stop request, a task handler's
/// completion, a background tick), process-group changes, and the messages parked for a name
/// while its process restarts.
///
/// Under `Block`, senders waiting for room are served first come first served: when `n` places
/// free up, the first `n` senders in line may take them, and a sender arriving while others wait
/// gets a place only beyond theirs (while there is none, to it the mailbox is full). When the
/// process exits, every waiting sender wakes: `send_wait` with [`SendError::NoProc`], a call with
/// the exit reason (a call by name goes on to the process registered under the name next, if a
/// supervisor restarts it). A call from another node does not wait: it gets `MailboxFull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overflow {
    /// Back-pressure: [`send_wait`] and calls wait for room (first come first served);
    /// [`try_send`] is refused; a plain [`send`](crate::send) or cast, which cannot wait, is
    /// dropped and counted.
    Block,
    /// Refuse the new message: [`try_send`] and [`send_wait`] get [`SendError::Full`], a call
    /// `CallError::MailboxFull`; a plain `send` or cast is dropped and counted.
    Refuse,
    /// Drop the oldest message still waiting in the shared queue (never a signal, never a call)
    /// to make room for the new one, and count it.
    DropOldest,
    /// Drop the new message and count it; a sender that can be told ([`try_send`],
    /// [`send_wait`], a call) gets it back as an error instead.
    DropNewest,
}

/// A mailbox's capacity and its [`Overflow`] policy.
///
/// The capacity is a [`NonZeroUsize`]: a mailbox that can hold nothing could never be sent to.
/// `usize::MAX` is allowed and behaves as unbounded, with the counters kept.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
/// use ferrotp::{MailboxLimit, Overflow};
///
/// let limit = MailboxLimit::new(NonZeroUsize::new(64).unwrap(), Overflow::Block);
/// assert_eq!(limit.capacity().get(), 64);
/// assert_eq!(limit.overflow(), Overflow::Block);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MailboxLimit {
    capacity: NonZeroUsize,
    overflow: Overflow,
}

impl MailboxLimit {
    /// A limit of `capacity` messages with policy `overflow`.
    pub const fn new(capacity: NonZeroUsize, overflow: Overflow) -> Self {
        MailboxLimit { capacity, overflow }
    }

    /// How many messages the mailbox holds before its policy applies.
    pub const fn capacity(&self) -> NonZeroUsize {
        self.capacity
    }

    /// What happens to a message that finds the mailbox full.
    pub const fn overflow(&self) -> Overflow {
        self.overflow
    }
}

/// Why [`try_send`] or [`send_wait`] did not deliver a message; the message comes back.
#[derive(PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError<M> {
    /// The process's mailbox is full and its policy turned the message away (or, under
    /// [`Overflow::Block`], `try_send` would have had to wait, or the process sent to itself).
    #[error("the mailbox is full")]
    Full(M),
    /// No such live process: it has exited (a `send_wait` waiting for room learns it so), or the
    /// runtime knows nothing of it.
    #[error("the process is not alive")]
    NoProc(M),
}

impl<M> SendError<M> {
    /// The message that was not delivered.
    pub fn into_message(self) -> M {
        match self {
            SendError::Full(message) | SendError::NoProc(message) => message,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("Full(..)"),
            SendError::NoProc(_) => f.write_str("NoProc(..)"),
        }
    }
}

/// Sends `message` to `pid` if its mailbox takes it now; the message comes back if not.
///
/// To an unbounded mailbox this is [`send`](crate::send) that reports a dead process. To a
/// bounded one that is full, the policy applies (see [`Overflow`]): under drop-oldest an older
/// message makes room, under any other policy the message comes back as [`SendError::Full`]
/// (counted in [`ProcessInfo::mailbox_refused`](crate::ProcessInfo::mailbox_refused)).
///
/// `Ok` means the message is in the mailbox: from there the process takes it, or it is lost to
/// the process's exit (as every queued message is, in OTP), or under drop-oldest to a newer
/// message. To a pid of another node, the message is handed to the connection and `Ok` means
/// no more than for `send`.
///
/// # Errors
///
/// [`SendError::Full`] as above; [`SendError::NoProc`] if `pid` is not a live process.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::num::NonZeroUsize;
/// use ferrotp::{MailboxLimit, Overflow, SendError, SpawnOpts};
///
/// let one = MailboxLimit::new(NonZeroUsize::MIN, Overflow::Refuse);
/// let pid = ferrotp::spawn_opt(SpawnOpts::new().mailbox(one), |mut ctx| async move {
///     ctx.receive::<()>().await;
/// });
/// assert_eq!(ferrotp::try_send(pid, 1_u8), Ok(()));
/// assert_eq!(ferrotp::try_send(pid, 2_u8), Err(SendError::Full(2)));
/// # }
/// ```
pub fn try_send<M: Any + Send>(pid: Pid, message: M) -> Result<(), SendError<M>> {
    if !pid.is_local() {
        process::deliver(pid, Message::new(message));
        return Ok(());
    }
    let Some(cell) = table().get(pid) else {
        return Err(SendError::NoProc(message));
    };
    cell.push(Message::new(message), Push::Try)
        .map_err(|refused| back::<M>(refused))
}

/// Sends `message` to `pid`, waiting for room while its mailbox is full under
/// [`Overflow::Block`]; under any other policy, the same as [`try_send`].
///
/// Waiting senders are served in the order they started waiting. If the process exits
/// meanwhile, the wait ends with [`SendError::NoProc`]. A process sending to its own full
/// mailbox would wait forever: it gets [`SendError::Full`] at once. `Ok` means what it means
/// for `try_send`.
///
/// # Errors
///
/// [`SendError::Full`] when the policy refuses (or the process sends to itself);
/// [`SendError::NoProc`] if `pid` is not alive, or exits while the sender waits.
///
/// # Cancel safety
///
/// Dropping the future while it waits drops the message unsent and gives up its place in line
/// (the next sender in line takes it).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::num::NonZeroUsize;
/// use ferrotp::{MailboxLimit, Overflow, SpawnOpts};
///
/// let two = MailboxLimit::new(NonZeroUsize::new(2).unwrap(), Overflow::Block);
/// let pid = ferrotp::spawn_opt(SpawnOpts::new().mailbox(two), |mut ctx| async move {
///     let mut sum = 0;
///     for _ in 0..100 {
///         sum += ctx.receive::<u32>().await;
///     }
///     assert_eq!(sum, 4950);
/// });
/// for n in 0..100_u32 {
///     // Waits whenever two messages are already queued.
///     ferrotp::send_wait(pid, n).await.unwrap();
/// }
/// # assert_eq!(ferrotp::wait(pid).await, ferrotp::ExitReason::Normal);
/// # }
/// ```
pub async fn send_wait<M: Any + Send>(pid: Pid, message: M) -> Result<(), SendError<M>> {
    if !pid.is_local() {
        process::deliver(pid, Message::new(message));
        return Ok(());
    }
    let Some(cell) = table().get(pid) else {
        return Err(SendError::NoProc(message));
    };
    if self_pid() == Some(pid) {
        return cell
            .push(Message::new(message), Push::Try)
            .map_err(|refused| back::<M>(refused));
    }
    push_waiting(&cell, Message::new(message), Push::TryOrWait)
        .await
        .map_err(|refused| back::<M>(refused))
}

/// Pushes `message` into `cell`'s mailbox, waiting for room under [`Overflow::Block`] (see
/// [`send_wait`]); for `send_wait` and calls.
pub(crate) fn push_waiting(
    cell: &Arc<Cell>,
    message: Message,
    push: Push,
) -> impl Future<Output = Result<(), Refused>> + Send + 'static {
    let mut line = InLine {
        cell: cell.clone(),
        ticket: None,
        parcel: Some(message),
    };
    std::future::poll_fn(move |cx| {
        let InLine {
            cell,
            ticket,
            parcel,
        } = &mut line;
        cell.mailbox
            .poll_push(parcel, ticket, push, &cell.activity, cx)
    })
}

/// A waiting sender's place in line, given up if it is dropped still waiting, and its message.
struct InLine {
    cell: Arc<Cell>,
    ticket: Option<u64>,
    parcel: Option<Message>,
}

impl Drop for InLine {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.cell.mailbox.cancel_wait(ticket, &self.cell.activity);
        }
        // A user's value: its `Drop` must not unwind into whoever gave up the wait (a call's
        // timeout, a dropped `send_wait`).
        if let Some(message) = self.parcel.take() {
            crate::unwind::drop_quietly(message, "a message whose sender stopped waiting");
        }
    }
}

/// The message of a refused push, as the `M` it was made from.
fn back<M: Any>(refused: Refused) -> SendError<M> {
    let closed = matches!(refused, Refused::Closed(_));
    let message = match refused.into_message().downcast::<M>() {
        Ok(message) => message,
        Err(_) => unreachable!("made from an M"),
    };
    if closed {
        SendError::NoProc(message)
    } else {
        SendError::Full(message)
    }
}

/// A bounded mailbox's limit and the state that goes with it, under the mailbox's lock.
pub(crate) struct Bound {
    pub(crate) limit: MailboxLimit,
    /// The process, for logs.
    pub(crate) pid: Pid,
    /// Under drop-oldest only: whether each message of the shared queue (its head first) may be
    /// dropped to make room.
    pub(crate) droppable: VecDeque<bool>,
    /// Messages lost to the limit without their sender being told.
    pub(crate) dropped: u64,
    /// Messages handed back to a sender that was told.
    pub(crate) refused: u64,
    /// Senders waiting for room, first in line first: their tickets and wakers.
    pub(crate) waiting: VecDeque<(u64, Waker)>,
    pub(crate) next_ticket: u64,
}

impl Bound {
    pub(crate) fn new(limit: MailboxLimit, pid: Pid) -> Self {
        Bound {
            limit,
            pid,
            droppable: VecDeque::new(),
            dropped: 0,
            refused: 0,
            waiting: VecDeque::new(),
            next_ticket: 0,
        }
    }
}
