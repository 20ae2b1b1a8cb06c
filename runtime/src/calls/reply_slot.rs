//! The one-shot channel a call's reply travels through.
//!
//! Three parties can end a call, and each one ends it at once instead of leaving the caller to its
//! timeout:
//! - the reply token ([`ReplyTo`](crate::ReplyTo)) answers, or is dropped unanswered (wherever it
//!   is: in the callee's mailbox when the callee exits, held by a handler that returned or
//!   panicked, or handed to another process that dropped it);
//! - the callee exits while the token is elsewhere: a token that may outlive its callee (a raw
//!   request's, handed to user code; a gen_server reply its handler deferred) shares its sender
//!   with an [`ExitWatch`] registered in the callee's mailbox, and the exit sequence drops that sender
//!   for the token;
//! - the caller stops waiting (a timeout, or its future dropped): the token then answers nobody.
//!
//! Every other token (a gen_server's reply its handler gives by returning, the common case) is a
//! plain tokio oneshot sender: nothing is shared, nothing registered.
//!
//! A caller that finds its token dropped while the callee is on its way out (or gone) waits for
//! the callee's exit reason and fails with it: nothing but the reply ever travels through the
//! channel.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, Weak},
    task::{Context, Poll},
};

use tokio::sync::oneshot;

use crate::{
    mailbox::{ExitWatch, lock},
    unwind::drop_quietly,
};

/// How a call ended, as its caller sees it.
pub(crate) enum Answer<R> {
    Replied(R),
    /// The token was dropped unanswered, or the callee's exit took it.
    Dropped,
}

/// The sending half of a call's channel.
pub(crate) enum Channel<R> {
    /// Held by the token alone.
    Direct(oneshot::Sender<R>),
    /// Shared with the callee's exit (see the module docs).
    Watched(Arc<Shared<R>>),
}

/// A sender shared between a token and the exit of its callee: whoever comes first takes it.
pub(crate) struct Shared<R>(Mutex<Option<oneshot::Sender<R>>>);

impl<R: Send> ExitWatch for Shared<R> {
    fn callee_exited(&self) {
        drop(lock(&self.0).take());
    }
}

/// A new call: the token's channel and the caller's side.
pub(crate) fn channel<R>() -> (Channel<R>, Waiting<R>) {
    let (tx, rx) = oneshot::channel();
    (
        Channel::Direct(tx),
        Waiting {
            rx,
            answered: false,
        },
    )
}

impl<R: Send + 'static> Channel<R> {
    /// The same channel, shared with a watch for the callee's exit.
    pub(crate) fn watched(self) -> (Channel<R>, Weak<dyn ExitWatch>) {
        let shared = match self {
            Channel::Direct(tx) => Arc::new(Shared(Mutex::new(Some(tx)))),
            Channel::Watched(shared) => shared,
        };
        let watch = Arc::downgrade(&shared) as Weak<dyn ExitWatch>;
        (Channel::Watched(shared), watch)
    }
}

impl<R> Channel<R> {
    /// The token's answer; `false` when nobody waits for it any more.
    #[inline]
    pub(crate) fn send(self, value: R) -> bool {
        let tx = match self {
            Channel::Direct(tx) => Some(tx),
            Channel::Watched(shared) => lock(&shared.0).take(),
        };
        tx.is_some_and(|tx| tx.send(value).is_ok())
    }

    /// Whether a caller still waits for an answer.
    pub(crate) fn is_waiting(&self) -> bool {
        match self {
            Channel::Direct(tx) => !tx.is_closed(),
            Channel::Watched(shared) => lock(&shared.0).as_ref().is_some_and(|tx| !tx.is_closed()),
        }
    }
}

/// The caller's side: resolves with the [`Answer`].
pub(crate) struct Waiting<R> {
    rx: oneshot::Receiver<R>,
    answered: bool,
}

impl<R> Future for Waiting<R> {
    type Output = Answer<R>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<R>> {
        let this = self.get_mut();
        let received = std::task::ready!(Pin::new(&mut this.rx).poll(cx));
        this.answered = true;
        Poll::Ready(match received {
            Ok(value) => Answer::Replied(value),
            Err(_) => Answer::Dropped,
        })
    }
}

impl<R> Drop for Waiting<R> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        // The caller gave up. A reply that came meanwhile is a user value: its `Drop` must not
        // unwind into the caller.
        self.rx.close();
        if let Ok(late) = self.rx.try_recv() {
            drop_quietly(late, "a reply nobody waited for");
        }
    }
}
