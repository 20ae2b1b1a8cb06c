//! A process's own view of itself: its pid and its mailbox, with selective receive.

use std::{any::Any, future::Future, sync::Arc, task::Poll, time::Duration};

use crate::{
    mailbox::{Batch, Taken, batch_len},
    message::Message,
    pid::Pid,
    process::Cell,
    unwind::drop_quietly,
};

/// What a process function receives: its own pid and its mailbox.
///
/// Only the process itself holds its `Context`, so receiving needs no lock beyond the one that
/// moves newly arrived messages over in a batch.
///
/// # Receiving
///
/// Every receive is *selective*, as in Erlang: it takes the first message that matches and leaves
/// the others in the mailbox, in their order, for later receives.
///
/// | call | takes |
/// | --- | --- |
/// | [`receive::<T>()`](Context::receive) | the first message of type `T` |
/// | [`receive_if(pred)`](Context::receive_if) | the first `T` for which `pred` holds |
/// | [`receive_any()`](Context::receive_any) | the first message, whatever its type |
/// | [`receive_matching(pred)`](Context::receive_matching) | the first message `pred` accepts (several types) |
///
/// Each has a `_timeout` form (Erlang's `after`) that gives up with [`Timeout`] when nothing
/// matching arrives in time. All of them are cancel safe: a receive dropped before it completes
/// takes no message.
pub struct Context {
    cell: Arc<Cell>,
    /// Messages moved out of the shared mailbox and not yet taken, in arrival order.
    private: Batch,
}

/// Nothing matching arrived before a receive's timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no matching message within {0:?}")]
pub struct Timeout(pub Duration);

impl Context {
    pub(crate) fn new(cell: Arc<Cell>) -> Self {
        Context {
            cell,
            private: None,
        }
    }

    pub(crate) fn cell(&self) -> &Arc<Cell> {
        &self.cell
    }

    /// This process's pid (Erlang's `self()`).
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// How many messages wait in this process's mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.cell.mailbox.len(&self.cell.activity)
    }

    /// Takes the first message of type `T`, waiting for one if there is none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pid = ferrotp::spawn(|mut ctx| async move {
    ///     let n: u32 = ctx.receive().await; // skips the String sent first
    ///     let s: String = ctx.receive().await;
    ///     assert_eq!((n, s.as_str()), (1, "one"));
    /// });
    /// ferrotp::send(pid, String::from("one"));
    /// ferrotp::send(pid, 1_u32);
    /// assert!(ferrotp::wait(pid).await.is_normal());
    /// # }
    /// ```
    pub async fn receive<T: Any + Send>(&mut self) -> T {
        take::<T>(self.select(|message| message.is::<T>()).await)
    }

    /// Like [`receive`](Context::receive), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`Timeout`] when no `T` arrived in time.
    pub async fn receive_timeout<T: Any + Send>(
        &mut self,
        timeout: Duration,
    ) -> Result<T, Timeout> {
        with_timeout(timeout, self.receive()).await
    }

    /// Takes the first message of type `T` for which `pred` holds.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pid = ferrotp::spawn(|mut ctx| async move {
    ///     let big = ctx.receive_if(|n: &u32| *n > 10).await;
    ///     let small: u32 = ctx.receive().await; // still there, in order
    ///     assert_eq!((big, small), (42, 1));
    /// });
    /// ferrotp::send(pid, 1_u32);
    /// ferrotp::send(pid, 42_u32);
    /// assert!(ferrotp::wait(pid).await.is_normal());
    /// # }
    /// ```
    pub async fn receive_if<T: Any + Send>(&mut self, mut pred: impl FnMut(&T) -> bool) -> T {
        take::<T>(
            self.select(|message| message.downcast_ref::<T>().is_some_and(&mut pred))
                .await,
        )
    }

    /// Like [`receive_if`](Context::receive_if), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`Timeout`] when no matching `T` arrived in time.
    pub async fn receive_if_timeout<T: Any + Send>(
        &mut self,
        pred: impl FnMut(&T) -> bool,
        timeout: Duration,
    ) -> Result<T, Timeout> {
        with_timeout(timeout, self.receive_if(pred)).await
    }

    /// Takes the first message, whatever its type.
    pub async fn receive_any(&mut self) -> Message {
        self.select(|_| true).await
    }

    /// Like [`receive_any`](Context::receive_any), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`Timeout`] when no message arrived in time.
    pub async fn receive_any_timeout(&mut self, timeout: Duration) -> Result<Message, Timeout> {
        with_timeout(timeout, self.receive_any()).await
    }

    /// Takes the first message that `pred` accepts; for receiving one of several types at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// struct Data(String);
    /// struct Event(&'static str);
    ///
    /// let pid = ferrotp::spawn(|mut ctx| async move {
    ///     let message = ctx.receive_matching(|m| m.is::<Data>() || m.is::<Event>()).await;
    ///     match message.downcast::<Data>() {
    ///         Ok(Data(text)) => println!("we got some data: {text}"),
    ///         Err(other) => println!("an event: {}", other.downcast::<Event>().map(|e| e.0).unwrap_or("?")),
    ///     }
    /// });
    /// ferrotp::send(pid, 0_u8); // matches neither; stays queued
    /// ferrotp::send(pid, Event("started"));
    /// assert!(ferrotp::wait(pid).await.is_normal());
    /// # }
    /// ```
    pub async fn receive_matching(&mut self, pred: impl FnMut(&Message) -> bool) -> Message {
        self.select(pred).await
    }

    /// Like [`receive_matching`](Context::receive_matching), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`Timeout`] when no accepted message arrived in time.
    pub async fn receive_matching_timeout(
        &mut self,
        pred: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, Timeout> {
        with_timeout(timeout, self.select(pred)).await
    }

    /// Removes every queued message `pred` accepts (used to flush a `Down` after a demonitor).
    pub(crate) fn purge(&mut self, mut pred: impl FnMut(&Message) -> bool) {
        self.cell
            .mailbox
            .drain_now(&mut self.private, &self.cell.activity);
        if let Some(private) = self.private.as_deref_mut() {
            private.retain(|message| !pred(message));
        }
        self.sync_len();
    }

    /// The selective receive: scans the private queue, then takes newly arrived messages (a lone
    /// one directly, several into the private queue) and scans those, and parks until more
    /// arrive. `scanned` remembers how far this receive has
    /// looked, so each message is tested once per receive however often it is woken.
    fn select<'a>(
        &'a mut self,
        mut pred: impl FnMut(&Message) -> bool + 'a,
    ) -> impl Future<Output = Message> + 'a {
        let mut scanned = 0;
        std::future::poll_fn(move |cx| {
            loop {
                if let Some(private) = self.private.as_deref_mut() {
                    while scanned < private.len() {
                        if pred(&private[scanned]) {
                            if let Some(message) = private.remove(scanned) {
                                self.took();
                                return Poll::Ready(message);
                            }
                        }
                        scanned += 1;
                    }
                }
                match self
                    .cell
                    .mailbox
                    .poll_take(&mut self.private, &self.cell.activity, cx)
                {
                    // The counts were published under the mailbox lock.
                    Poll::Pending => return Poll::Pending,
                    // The common case, a lone message: no queue buffer is touched.
                    Poll::Ready(Taken::One(message)) => {
                        // Every queued message has been looked at, so it is tested here, once.
                        if pred(&message) {
                            self.took();
                            return Poll::Ready(message);
                        }
                        self.private.get_or_insert_default().push_back(message);
                        scanned += 1;
                    }
                    Poll::Ready(Taken::Moved) => {}
                }
            }
        })
    }

    #[inline]
    fn took(&self) {
        self.cell.activity.count_taken();
        self.sync_len();
    }

    #[inline]
    fn sync_len(&self) {
        let activity = &self.cell.activity;
        activity.set_private_len(batch_len(&self.private));
        // Room for a sender waiting on a bounded mailbox; after the store, which a sender reads
        // under the lock this takes.
        if activity.is_bounded() {
            self.cell.mailbox.room_freed(activity);
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        if let Some(private) = self.private.take().filter(|private| !private.is_empty()) {
            // The process can read no more: it is ending (a process function's `Context` is
            // dropped as it returns, before its exit reason is recorded). Marked first, so that
            // the caller of a request dropped here waits for that reason instead of failing with
            // `NoReply`.
            crate::mailbox::lock(&self.cell.state).stopping = true;
            // One at a time, so that a message whose `Drop` panics neither stops the others from
            // being dropped nor unwinds into the exit sequence.
            for message in *private {
                drop_quietly(message, "a message left in an exiting process's mailbox");
            }
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("pid", &self.cell.pid)
            .field("queued", &batch_len(&self.private))
            .finish()
    }
}

fn take<T: Any>(message: Message) -> T {
    match message.downcast::<T>() {
        Ok(value) => value,
        // The predicate that selected this message checked its type.
        Err(_) => unreachable!("selective receive returned a message of another type"),
    }
}

async fn with_timeout<T>(
    timeout: Duration,
    receive: impl Future<Output = T>,
) -> Result<T, Timeout> {
    tokio::time::timeout(timeout, receive)
        .await
        .map_err(|_| Timeout(timeout))
}
