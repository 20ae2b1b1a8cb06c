//! Request/reply between processes: the primitive gen_server's `call` is built on.
//!
//! [`request`] puts a [`Request`] in the target's mailbox and waits for the reply. The target takes
//! it like any message (`ctx.receive::<Request<Q, R>>()`) and answers with [`Request::reply`], now
//! or later, or hands the [`ReplyTo`] to another process to answer.
//!
//! A request never hangs on a dead process: if the target is not alive, or exits before replying
//! (its mailbox, and the reply token in it, are dropped), the caller gets
//! [`CallError::NoProc`] or [`CallError::Exited`] with the exit reason at once. If the target is
//! alive but does not answer, the caller gets [`CallError::Timeout`].

use std::{any::Any, sync::Arc, time::Duration};

use tokio::sync::oneshot;

use crate::{
    exit::ExitReason, message::Message, pid::Pid, process::Cell, table::table, task::self_pid,
};

/// How long [`request`] waits for a reply: five seconds, as Erlang's `gen_server:call`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The target was not alive when the request was sent.
    #[error("{0} is not alive")]
    NoProc(Pid),
    /// The target exited before replying.
    #[error("{pid} exited before replying: {reason}")]
    Exited {
        /// The target.
        pid: Pid,
        /// Its exit reason.
        reason: ExitReason,
    },
    /// No reply within the timeout; the target is still alive. A late reply is discarded.
    #[error("{pid} did not reply within {timeout:?}")]
    Timeout {
        /// The target.
        pid: Pid,
        /// How long the caller waited.
        timeout: Duration,
    },
    /// A process sent a request to itself, which could only deadlock.
    #[error("{0} sent a request to itself, which would deadlock")]
    SelfCall(Pid),
}

/// A request as the target receives it: the body, who sent it, and where the reply goes.
#[derive(Debug)]
pub struct Request<Q, R> {
    /// What was asked.
    pub body: Q,
    /// The process that asked; `None` when the request came from outside any process.
    pub from: Option<Pid>,
    /// Where the answer goes.
    pub reply_to: ReplyTo<R>,
}

impl<Q, R> Request<Q, R> {
    /// Answers the request; `false` if the caller no longer waits (it timed out or exited).
    pub fn reply(self, reply: R) -> bool {
        self.reply_to.send(reply)
    }
}

/// The right to answer one request, once. It can be kept and used later, or sent to another
/// process (a deferred reply, OTP's `noreply` + `gen_server:reply`).
///
/// Dropping it unanswered leaves the caller to its timeout, unless the process holding it exits,
/// in which case the caller learns the exit reason at once.
#[derive(Debug)]
pub struct ReplyTo<R>(oneshot::Sender<R>);

impl<R> ReplyTo<R> {
    /// Sends the reply; `false` if the caller no longer waits.
    pub fn send(self, reply: R) -> bool {
        self.0.send(reply).is_ok()
    }
}

/// Sends `body` to `pid` as a [`Request`] and waits up to [`DEFAULT_TIMEOUT`] for the reply.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use ferrotp::Request;
///
/// let doubler = ferrotp::spawn(|mut ctx| async move {
///     loop {
///         let req: Request<u64, u64> = ctx.receive().await;
///         let n = req.body;
///         req.reply(2 * n);
///     }
/// });
/// assert_eq!(ferrotp::request::<u64, u64>(doubler, 21).await, Ok(42));
/// # }
/// ```
///
/// # Errors
///
/// See [`CallError`].
pub async fn request<Q, R>(pid: Pid, body: Q) -> Result<R, CallError>
where
    Q: Any + Send,
    R: Any + Send,
{
    request_timeout(pid, body, DEFAULT_TIMEOUT).await
}

/// [`request`] with an explicit timeout.
///
/// # Errors
///
/// See [`CallError`].
pub async fn request_timeout<Q, R>(pid: Pid, body: Q, timeout: Duration) -> Result<R, CallError>
where
    Q: Any + Send,
    R: Any + Send,
{
    let from = self_pid();
    if from == Some(pid) {
        return Err(CallError::SelfCall(pid));
    }
    // The cell is kept so that, if the reply token is dropped, the exit reason can still be read
    // after the pid has left the table.
    let target: Arc<Cell> = table().get(pid).ok_or(CallError::NoProc(pid))?;
    let (tx, rx) = oneshot::channel();
    let request = Message::new(Request {
        body,
        from,
        reply_to: ReplyTo(tx),
    });
    if target.mailbox.push(request).is_err() {
        return Err(exited(&target).await);
    }
    let timed_out = || CallError::Timeout { pid, timeout };
    let deadline = tokio::time::Instant::now() + timeout;
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(reply)) => Ok(reply),
        // The token was dropped unanswered: the target is exiting (or ignored the request, which
        // leaves the caller to its timeout, as in Erlang).
        Ok(Err(_)) => Err(tokio::time::timeout_at(deadline, exited(&target))
            .await
            .unwrap_or_else(|_| timed_out())),
        Err(_) => Err(timed_out()),
    }
}

async fn exited(target: &Cell) -> CallError {
    CallError::Exited {
        pid: target.pid,
        reason: target.exited().await,
    }
}
