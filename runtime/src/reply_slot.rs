//! The one-shot channel a call's reply travels through.
//!
//! Three parties can end a call, and each one closes the slot so that the caller learns at once
//! instead of waiting for its timeout:
//! - the reply token ([`ReplyTo`](crate::ReplyTo)) answers, or is dropped unanswered (wherever it
//!   is: in the callee's mailbox when the callee exits, held by a handler that returned or
//!   panicked, or handed to another process that dropped it);
//! - the callee exits: every call pushed into its mailbox registered the slot as a [`Watch`] there,
//!   and the exit sequence closes those still open with the exit reason, even when the token lives
//!   on in another process (a deferred reply);
//! - the caller stops waiting (a timeout, or its future dropped): the token then answers nobody.
//!
//! A token dropped while the callee is exiting is followed by the callee's exit reason: the caller
//! keeps waiting for it (see [`Waiting::wait_for_exit`]).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
};

use crate::{exit::ExitReason, mailbox::lock, unwind::drop_quietly};

/// The shared state of one call.
pub(crate) struct ReplySlot<R> {
    inner: Mutex<Inner<R>>,
}

struct Inner<R> {
    outcome: Outcome<R>,
    waker: Option<Waker>,
}

enum Outcome<R> {
    Pending,
    Replied(R),
    /// The token was dropped unanswered.
    Dropped,
    /// The callee exited before answering.
    Exited(ExitReason),
    /// The caller has stopped waiting, or has taken the outcome.
    Closed,
}

/// How a call ended, as its caller sees it.
pub(crate) enum Answer<R> {
    Replied(R),
    /// The token was dropped unanswered, and the callee had not exited when it was.
    Dropped,
    Exited(ExitReason),
}

/// The callee's side of a call it was sent: closed by its exit.
pub(crate) trait Watch: Send + Sync {
    /// The callee exited with `reason`; a call still unanswered fails with it.
    fn callee_exited(&self, reason: &ExitReason);
}

impl<R> ReplySlot<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(ReplySlot {
            inner: Mutex::new(Inner {
                outcome: Outcome::Pending,
                waker: None,
            }),
        })
    }

    /// Ends the call with `outcome` if nothing has ended it yet (or only a dropped token, which
    /// an exit reason refines). Gives `outcome` back when it comes too late.
    fn close(&self, outcome: Outcome<R>) -> Result<(), Outcome<R>> {
        let waker = {
            let mut inner = lock(&self.inner);
            let open = matches!(
                (&inner.outcome, &outcome),
                (Outcome::Pending, _) | (Outcome::Dropped, Outcome::Exited(_))
            );
            if !open {
                return Err(outcome);
            }
            inner.outcome = outcome;
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// The token's answer; `Err` with the value when nobody waits for it any more.
    pub(crate) fn send(&self, value: R) -> Result<(), R> {
        self.close(Outcome::Replied(value))
            .map_err(|outcome| match outcome {
                Outcome::Replied(value) => value,
                _ => unreachable!("close gives back the outcome it was given"),
            })
    }

    /// The token was dropped without answering.
    pub(crate) fn token_dropped(&self) {
        let _ = self.close(Outcome::Dropped);
    }

    /// Whether the caller still waits for an answer.
    pub(crate) fn is_waiting(&self) -> bool {
        matches!(lock(&self.inner).outcome, Outcome::Pending)
    }
}

impl<R: Send> Watch for ReplySlot<R> {
    fn callee_exited(&self, reason: &ExitReason) {
        let _ = self.close(Outcome::Exited(reason.clone()));
    }
}

/// The caller's side: resolves with the [`Answer`].
pub(crate) struct Waiting<R> {
    slot: Arc<ReplySlot<R>>,
    /// A dropped token is not an answer any more: the callee is exiting, and its reason follows.
    wait_for_exit: bool,
}

impl<R> Waiting<R> {
    pub(crate) fn new(slot: Arc<ReplySlot<R>>) -> Self {
        Waiting {
            slot,
            wait_for_exit: false,
        }
    }

    pub(crate) fn slot(&self) -> &Arc<ReplySlot<R>> {
        &self.slot
    }

    /// After [`Answer::Dropped`] from a callee that is exiting: wait for its exit reason, which
    /// its exit sequence delivers through the slot.
    pub(crate) fn wait_for_exit(&mut self) {
        self.wait_for_exit = true;
    }
}

impl<R> Future for Waiting<R> {
    type Output = Answer<R>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<R>> {
        let this = self.get_mut();
        let mut inner = lock(&this.slot.inner);
        match std::mem::replace(&mut inner.outcome, Outcome::Closed) {
            Outcome::Replied(value) => Poll::Ready(Answer::Replied(value)),
            Outcome::Exited(reason) => Poll::Ready(Answer::Exited(reason)),
            Outcome::Dropped if !this.wait_for_exit => {
                inner.outcome = Outcome::Dropped;
                Poll::Ready(Answer::Dropped)
            }
            pending @ (Outcome::Pending | Outcome::Dropped) => {
                inner.outcome = pending;
                match &mut inner.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Outcome::Closed => Poll::Pending,
        }
    }
}

impl<R> Drop for Waiting<R> {
    fn drop(&mut self) {
        let late = std::mem::replace(&mut lock(&self.slot.inner).outcome, Outcome::Closed);
        // A reply that arrived after the caller gave up is a user value: drop it outside the lock.
        if let Outcome::Replied(value) = late {
            drop_quietly(value, "a reply nobody waited for");
        }
    }
}
