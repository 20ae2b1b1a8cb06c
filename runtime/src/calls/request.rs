//! Request/reply between processes: the primitive gen_server calls are built on.
//!
//! [`request`] puts a [`Request`] in the target's mailbox and waits for the reply. The target takes
//! it like any message (`ctx.receive::<Request<Q, R>>()`) and answers with [`Request::reply`], now
//! or later, or hands the [`ReplyTo`] to another process to answer.
//!
//! A request never hangs on a reply that can no longer come: if the target is not alive, or exits
//! before replying (even while another process holds the reply token), the caller gets
//! [`CallError::NoProc`] or [`CallError::Exited`] with the exit reason at once; if the reply token
//! is dropped unanswered while the target lives on, [`CallError::NoReply`]. If the target is alive
//! but does not answer, the caller gets [`CallError::Timeout`].

use std::{
    any::Any,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Weak},
    task::Poll,
    time::Duration,
};

use crate::process::{
    node_core::{self, current_node},
    remote::{self, Signal, ToServer},
};
use crate::{
    call_timer::CallTimer,
    calls::context,
    exit::ExitReason,
    mailbox::{ExitWatch, Push, Refused, lock},
    message::Message,
    pid::Pid,
    process::{self, Unsent},
    registry::{self, Atom, Outcome, Resolved},
    reply::ReplyTo,
    reply_slot::{Answer, Waiting},
    table::table,
    unwind::drop_quietly,
};

/// How long a call waits for its reply unless told otherwise: five seconds, as Erlang's
/// `gen_server:call`.
///
/// A call times out once its timeout has passed, and at most a millisecond later (the resolution
/// of tokio's timers): calls made in quick succession share one timer update.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A timeout that never expires (OTP's `infinity`): pass it wherever a call, request or receive
/// takes a timeout to wait for as long as it takes.
///
/// It is [`Duration::MAX`]; any timeout too long to add to the current time is treated the same
/// way, so no timeout value panics.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use ferrotp::{INFINITY, Request};
///
/// let slow = ferrotp::spawn(|mut ctx| async move {
///     let req: Request<(), &str> = ctx.receive().await;
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///     req.reply("done");
/// });
/// assert_eq!(ferrotp::request_timeout::<(), &str>(slow, (), INFINITY).await, Ok("done"));
/// # }
/// ```
pub const INFINITY: Duration = Duration::MAX;

/// Why a call or request got no reply, or got an error for one.
///
/// `E` is the handler's own error type, for a handler that returns `Result<T, E>`: its `Err(e)`
/// arrives as [`CallError::Handler`]`(e)`. Calls whose handler cannot fail use the default,
/// [`Infallible`].
///
/// ```
/// use std::time::Duration;
/// use ferrotp::prelude::*;
///
/// #[derive(Debug, PartialEq)]
/// struct Overdrawn;
///
/// struct Account {
///     balance: u64,
/// }
///
/// #[gen_server]
/// impl Account {
///     async fn init(balance: u64) -> Self {
///         Account { balance }
///     }
///
///     #[install("withdraw", local)]
///     async fn withdraw(&mut self, amount: u64) -> Result<u64, Overdrawn> {
///         self.balance = self.balance.checked_sub(amount).ok_or(Overdrawn)?;
///         Ok(self.balance)
///     }
///
///     #[install("audit")]
///     async fn audit(&mut self) {
///         tokio::time::sleep(Duration::from_millis(100)).await;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let account = Account::start(100).await.unwrap();
/// let pid = account.pid();
///
/// // The handler's own error: the server goes on.
/// assert_eq!(account.withdraw(500).await, Err(CallError::Handler(Overdrawn)));
/// // No answer in time: the server is busy, but alive.
/// let timeout = Duration::from_millis(10);
/// assert_eq!(account.audit_timeout(timeout).await, Err(CallError::Timeout { pid, timeout }));
/// // The server is gone: the call fails at once, with its exit reason.
/// account.stop(ExitReason::Shutdown).await.unwrap();
/// assert_eq!(
///     account.withdraw(1).await,
///     Err(CallError::Exited { pid, reason: ExitReason::Shutdown }),
/// );
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError<E = Infallible> {
    /// The target was not alive when the call was made, and the runtime knows nothing of it.
    #[error("{0} is not alive")]
    NoProc(Pid),
    /// The target exited before replying, or had exited (with this reason) before the call.
    #[error("{pid} exited: {reason}")]
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
    /// The reply token was dropped unanswered while the target lived on: its handler returned
    /// without replying (or without deferring the reply), or the process it was handed to dropped
    /// it or exited. The target goes on; OTP would leave the caller to its timeout here.
    #[error("{0} dropped the call without replying")]
    NoReply(Pid),
    /// A process called itself, which could only deadlock.
    #[error("{0} called itself, which would deadlock")]
    SelfCall(Pid),
    /// The call could only deadlock: the processes of the cycle, the caller first, each blocked
    /// until the next acts (answers a call, stops, or finishes its `init`), the last on the
    /// caller. OTP would wait forever here (or until the call's timeout).
    #[error("deadlock: {} would wait for each other forever", display_cycle(.0))]
    Deadlock(Vec<Pid>),
    /// A call by name found no process registered under the name, and none being restarted
    /// under it.
    #[error("no process is registered as `{0}`")]
    NotRegistered(Arc<str>),
    /// A dynamic call named a handler the server does not have.
    #[error("no handler named `{name}` (the server has: {})", available.join(", "))]
    UnknownHandler {
        /// The name asked for.
        name: String,
        /// The names the server handles.
        available: Vec<String>,
    },
    /// A dynamic call's body could not be encoded, or decoded into the handler's argument.
    #[error("bad request for `{handler}`: {message}")]
    BadRequest {
        /// The handler asked for.
        handler: String,
        /// What serde said.
        message: String,
    },
    /// A dynamic call's reply could not be encoded, or decoded into the type the caller wanted.
    #[error("bad reply from `{handler}`: {message}")]
    BadReply {
        /// The handler that answered.
        handler: String,
        /// What serde said.
        message: String,
    },
    /// The target lives on another node, and the connection to it could not be made or was
    /// lost before the reply came (Erlang's `noconnection`). The call may or may not have run.
    #[error("no connection to node {}", .0.node_name())]
    NoConnection(Pid),
    /// The target lives on another node, and this call cannot cross: its handler is `local`, or
    /// its argument or reply is not a serde type; or it is a raw [`request`], or a typed call
    /// made on the target's own node and awaited on another (inside a
    /// [`LocalNode::scope`](crate::dist::LocalNode::scope): make the call inside the scope).
    #[error(
        "`{handler}` cannot be called on another node (a local handler, not serde types, a raw \
         request, or a call made on the target's node)"
    )]
    NotRemotable {
        /// The handler.
        handler: String,
    },
    /// A task handler with the `replace` strategy (`#[install("name", task(replace))]`)
    /// cancelled this call because the same caller made a newer one. The server goes on.
    #[error("{0} cancelled the call: the same caller made a newer one")]
    Cancelled(Pid),
    /// A task handler with the `ignore` strategy refused this call because the same caller's
    /// previous one has not finished. The server goes on.
    #[error("{0} refused the call: the same caller's previous one has not finished")]
    Busy(Pid),
    /// The target's mailbox is bounded and full, and its policy refused the call
    /// ([`Overflow::Refuse`](crate::Overflow::Refuse) or
    /// [`DropNewest`](crate::Overflow::DropNewest); under
    /// [`DropOldest`](crate::Overflow::DropOldest), when no older message could make room). The
    /// call was not queued and will not run. Under [`Block`](crate::Overflow::Block) a call waits
    /// for room instead (within its timeout); a call from another node does not wait.
    #[error("{0}'s mailbox is full: the call was refused")]
    MailboxFull(Pid),
    /// The handler returned `Err(e)`; the server goes on.
    #[error("the handler failed: {0}")]
    Handler(E),
}

/// Moves every variant but [`CallError::Handler`] from one handler error type to another.
macro_rules! convert_call_error {
    ($error:expr, $handler:pat => $on_handler:expr) => {
        match $error {
            CallError::NoProc(pid) => CallError::NoProc(pid),
            CallError::Exited { pid, reason } => CallError::Exited { pid, reason },
            CallError::Timeout { pid, timeout } => CallError::Timeout { pid, timeout },
            CallError::NoReply(pid) => CallError::NoReply(pid),
            CallError::SelfCall(pid) => CallError::SelfCall(pid),
            CallError::Deadlock(cycle) => CallError::Deadlock(cycle),
            CallError::NotRegistered(name) => CallError::NotRegistered(name),
            CallError::UnknownHandler { name, available } => {
                CallError::UnknownHandler { name, available }
            }
            CallError::BadRequest { handler, message } => {
                CallError::BadRequest { handler, message }
            }
            CallError::BadReply { handler, message } => CallError::BadReply { handler, message },
            CallError::NoConnection(pid) => CallError::NoConnection(pid),
            CallError::NotRemotable { handler } => CallError::NotRemotable { handler },
            CallError::Cancelled(pid) => CallError::Cancelled(pid),
            CallError::Busy(pid) => CallError::Busy(pid),
            CallError::MailboxFull(pid) => CallError::MailboxFull(pid),
            CallError::Handler($handler) => $on_handler,
        }
    };
}

impl CallError {
    /// The same error in a context where handler errors have type `E` (this one has none).
    pub fn widen<E>(self) -> CallError<E> {
        convert_call_error!(self, never => match never {})
    }
}

impl<E> CallError<E> {
    /// The handler's own error, or the error of the call itself.
    pub(crate) fn split(self) -> Result<CallError, E> {
        Ok(convert_call_error!(self, error => return Err(error)))
    }
}

fn display_cycle(cycle: &[Pid]) -> String {
    let pids: Vec<String> = cycle.iter().map(Pid::to_string).collect();
    pids.join(" -> ")
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
    exchange(Addr::pid(pid), timeout, Token::Raw, |from, reply_to| {
        Message::new(Request {
            body,
            from,
            reply_to,
        })
    })
    .await
}

/// Where a call or cast goes: a pid, or a registered name resolved at every call.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Addr(Target);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Pid(Pid),
    Name(Atom),
    /// A name on a given node (Erlang's `{Name, Node}`): the node's name, then the name.
    NameOn(Atom, Atom),
}

impl Addr {
    /// The process registered as `name` on node `node` at each call.
    pub(crate) fn name_on(node: &str, name: &str) -> Self {
        Addr(Target::NameOn(Atom::new(node), Atom::new(name)))
    }

    /// Whether calls to this address leave the current node (a pid of another node, or a name
    /// on one); checked on every typed call, so it reads the current node only for those.
    #[inline]
    pub(crate) fn is_remote(self) -> bool {
        match self.0 {
            Target::Pid(pid) => pid.node() != current_node(),
            Target::Name(_) => false,
            Target::NameOn(node, _) => node.as_str() != node_core::name_of(current_node()).0,
        }
    }

    pub(crate) fn pid(pid: Pid) -> Self {
        Addr(Target::Pid(pid))
    }

    pub(crate) fn name(name: &str) -> Self {
        Addr(Target::Name(Atom::new(name)))
    }

    /// The pid, for an address made from one.
    pub(crate) fn as_pid(self) -> Option<Pid> {
        match self.0 {
            Target::Pid(pid) => Some(pid),
            Target::Name(_) | Target::NameOn(..) => None,
        }
    }

    /// The name, for an address made from one.
    pub(crate) fn as_name(self) -> Option<&'static str> {
        match self.0 {
            Target::Pid(_) => None,
            Target::Name(name) | Target::NameOn(_, name) => Some(name.as_str()),
        }
    }
}

/// Puts the message `build` makes (around a fresh reply token) into the mailbox of the process
/// `to` stands for, and waits for the reply: the one mechanism under requests, typed calls and
/// dynamic calls. Nothing is sent before the returned future is first polled.
///
/// By name, the name is resolved then. While it is reserved for a supervisor restarting its
/// process, the call waits for the new process (within its timeout) and fails with the
/// supervisor's reason if there will be none; if the process found is exiting, the call waits
/// for the exit and looks again.
pub(crate) fn exchange<R, B>(to: Addr, timeout: Duration, token: Token, build: B) -> Exchange<R, B>
where
    R: Send + 'static,
    B: FnOnce(Option<Pid>, ReplyTo<R>) -> Message,
{
    Exchange {
        to,
        timeout,
        token,
        build: Some(build),
        pid: Pid::ROOT,
        waiting: None,
        timer: CallTimer::NONE,
        slow: None,
    }
}

/// A call that takes the slow path from the start (one to another node): the same future
/// type as [`exchange`]'s, so a typed client method returns one type whichever way it goes.
pub(crate) fn exchange_slow<R, B>(to: Addr, timeout: Duration, slow: Boxed<R>) -> Exchange<R, B>
where
    R: Send + 'static,
    B: FnOnce(Option<Pid>, ReplyTo<R>) -> Message,
{
    Exchange {
        to,
        timeout,
        token: Token::Handler,
        build: None,
        pid: Pid::ROOT,
        waiting: None,
        timer: CallTimer::NONE,
        slow: Some(slow),
    }
}

/// A call in flight (see [`exchange`]). Written by hand rather than as an `async fn`: it is the
/// future of every call, and a plain state machine with its rare paths boxed keeps it small and
/// cheap to poll. Its stages are fields taken in turn rather than variants of an enum, so that no
/// stage is moved from one place to another.
#[must_use = "a call is made only when its future is awaited"]
pub(crate) struct Exchange<R, B> {
    to: Addr,
    timeout: Duration,
    token: Token,
    /// Until the first poll: what makes the message.
    build: Option<B>,
    /// Where the call went, once it went.
    pid: Pid,
    /// The fast path: waiting for the answer or the deadline. Kept apart from the timer: moved as
    /// one, the pair is copied in unaligned pieces whose loads stall on the stores just before.
    waiting: Option<Waiting<R>>,
    timer: CallTimer,
    /// A rare path: a name to resolve or wait for, a target exiting.
    slow: Option<Boxed<R>>,
}

pub(crate) type Boxed<R> = Pin<Box<dyn Future<Output = Result<R, CallError>> + Send>>;

// Nothing in an `Exchange` is pinned in place: the slow path is pinned on the heap.
impl<R, B> Unpin for Exchange<R, B> {}

impl<R, B> Future for Exchange<R, B>
where
    R: Send + 'static,
    B: FnOnce(Option<Pid>, ReplyTo<R>) -> Message,
{
    type Output = Result<R, CallError>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(build) = this.build.take() {
            if let Err(error) = this.start(build) {
                return Poll::Ready(Err(error));
            }
        }
        let (pid, timeout) = (this.pid, this.timeout);
        if let Some(reply) = &mut this.waiting {
            let answer = match Pin::new(reply).poll(cx) {
                Poll::Ready(answer) => answer,
                Poll::Pending => {
                    std::task::ready!(this.timer.poll_expired(cx));
                    this.give_up();
                    return Poll::Ready(Err(CallError::Timeout { pid, timeout }));
                }
            };
            this.waiting = None;
            let timer = std::mem::replace(&mut this.timer, CallTimer::NONE);
            match answer {
                Answer::Replied(value) => return Poll::Ready(Ok(value)),
                // Dropped by a target on its way out, or taken by its exit from another process
                // holding it: the exit reason follows.
                Answer::Dropped if leaving(pid) => {
                    this.slow = Some(Box::pin(exit_reason(pid, timeout, timer)));
                }
                // Not run: the server found the call's deadline passed (see `context`).
                Answer::Dropped if timer.passed() => {
                    return Poll::Ready(Err(CallError::Timeout { pid, timeout }));
                }
                Answer::Dropped => return Poll::Ready(Err(CallError::NoReply(pid))),
            }
        }
        match &mut this.slow {
            Some(slow) => {
                let result = std::task::ready!(slow.as_mut().poll(cx));
                this.slow = None;
                Poll::Ready(result)
            }
            // Polled after completion.
            None => Poll::Pending,
        }
    }
}

impl<R, B> Exchange<R, B> {
    /// The caller stops waiting, before an answer: the server, if it has not taken the call yet,
    /// will not run it (see `context`).
    #[cold]
    fn give_up(&mut self) {
        self.waiting = None;
        if self.token != Token::Raw {
            context::gave_up(self.pid);
        }
    }
}

impl<R, B> Drop for Exchange<R, B> {
    #[inline]
    fn drop(&mut self) {
        if self.waiting.is_some() {
            self.give_up();
        }
    }
}

impl<R, B> Exchange<R, B>
where
    R: Send + 'static,
    B: FnOnce(Option<Pid>, ReplyTo<R>) -> Message,
{
    /// The first step of a call: build the message, deliver it, and set up the wait.
    fn start(&mut self, build: B) -> Result<(), CallError> {
        // A nested call, or one with a timeout of its own, carries a context (see `context`);
        // its timeout may be cut to the deadline of the call it serves.
        let asked = self.timeout;
        let (from, ctx, timeout) = context::outgoing(asked);
        // Even a plain call takes its deadline to another node (see `context::plain_remote`).
        let ctx = match (ctx, self.token) {
            (None, Token::Remote) => context::plain_remote(timeout),
            (ctx, _) => ctx,
        };
        self.timeout = timeout;
        let (reply_to, reply) = ReplyTo::channel();
        let (reply_to, watch) = match self.token {
            Token::Raw => reply_to.watched(),
            Token::Handler | Token::Remote => (reply_to, None),
        };
        let message = build(from, reply_to);
        // To a gen_server, which takes the context off (on another node, the connection
        // carries it in the frame); a raw request goes as it is.
        let message = match (&ctx, self.token) {
            (Some(ctx), Token::Handler | Token::Remote) => Message::new(context::WithCtx {
                ctx: ctx.clone(),
                message,
            }),
            _ => message,
        };
        // On the context's own deadline, if it has one: the server may find it passed and drop
        // the call unrun, and the caller must see it passed too (see `CallTimer::passed`).
        let mut timer = match ctx.as_ref().and_then(|ctx| ctx.deadline) {
            Some(deadline) => CallTimer::until(deadline),
            None => CallTimer::after(timeout),
        };
        // A name held by a process is as fast as a pid; a reserved one, or one whose process is
        // exiting, goes the slow way, which waits and looks again.
        let (pid, name) = match self.to.0 {
            Target::Pid(pid) => (pid, None),
            Target::NameOn(node, name) if self.to.is_remote() => {
                let to = push_named_on(node, name, message)?;
                self.pid = to;
                self.waiting = Some(reply);
                self.timer = timer;
                return Ok(());
            }
            Target::NameOn(_, name) => match registry::resolve(name.as_str()) {
                Resolved::Held(pid) => (pid, Some(name)),
                Resolved::Unknown => return Err(CallError::NotRegistered(name.as_str().into())),
                Resolved::Reserved(_) => {
                    self.slow = Some(by_name(name, from, message, watch, reply, timer, timeout));
                    return Ok(());
                }
            },
            Target::Name(name) => match registry::resolve(name.as_str()) {
                Resolved::Held(pid) => (pid, Some(name)),
                Resolved::Unknown => return Err(CallError::NotRegistered(name.as_str().into())),
                Resolved::Reserved(_) => {
                    self.slow = Some(by_name(name, from, message, watch, reply, timer, timeout));
                    return Ok(());
                }
            },
        };
        self.pid = pid;
        if let Err(deadlock) = context::check(&ctx, pid) {
            drop_quietly(message, "a call that would deadlock");
            return Err(deadlock);
        }
        // The deadline it inherited from the call being served has passed already: the server
        // would not run it, so it is not sent. (A zero timeout of its own still sends it, as in
        // OTP, and a raw request's target sees no deadline.)
        if timeout.is_zero()
            && !asked.is_zero()
            && self.token != Token::Raw
            && ctx.as_ref().is_some_and(|ctx| ctx.deadline.is_some())
        {
            drop_quietly(message, "a call past its deadline");
            return Err(CallError::Timeout { pid, timeout });
        }
        match (push_call(pid, from, message, watch.as_ref()), name) {
            (Ok(()), _) => {
                self.waiting = Some(reply);
                self.timer = timer;
            }
            (Err(Failed::Now(error)), _) => return Err(error),
            (Err(Failed::Full(unsent)), name) => {
                let slow = async move {
                    match push_when_room(pid, unsent, &mut timer, timeout).await {
                        Ok(()) => await_reply(pid, timeout, reply, timer).await,
                        Err(Unpushed::Failed(error)) => Err(error),
                        // Never delivered: by name, the call goes to the next process to
                        // hold the name, as a call that found the mailbox closed does.
                        Err(Unpushed::Closed(unsent)) => match name {
                            Some(name) => match timer.race(exited(pid)).await {
                                Some(_) => {
                                    by_name(name, from, unsent, watch, reply, timer, timeout).await
                                }
                                None => {
                                    drop_quietly(unsent, "a call that timed out");
                                    Err(CallError::Timeout { pid, timeout })
                                }
                            },
                            None => {
                                drop_quietly(unsent, "a call to a dead process");
                                exit_reason(pid, timeout, timer).await
                            }
                        },
                    }
                };
                self.slow = Some(Box::pin(slow));
            }
            (Err(Failed::Exiting(unsent)), None) => {
                drop_quietly(unsent, "a call to a dead process");
                self.slow = Some(Box::pin(exit_reason(pid, timeout, timer)));
            }
            (Err(Failed::Exiting(unsent)), Some(name)) => {
                let slow = async move {
                    // Its name is released or reserved once it has exited: look again then.
                    match timer.race(exited(pid)).await {
                        Some(_) => by_name(name, from, unsent, watch, reply, timer, timeout).await,
                        None => {
                            drop_quietly(unsent, "a call that timed out");
                            Err(CallError::Timeout { pid, timeout })
                        }
                    }
                };
                self.slow = Some(Box::pin(slow));
            }
        }
        Ok(())
    }
}

/// The slow way of a call by name: delivered once the name stands for a process, then answered.
fn by_name<R: Send + 'static>(
    name: Atom,
    from: Option<Pid>,
    message: Message,
    watch: Option<Weak<dyn ExitWatch>>,
    reply: Waiting<R>,
    mut timer: CallTimer,
    timeout: Duration,
) -> Boxed<R> {
    Box::pin(async move {
        let sent = deliver_by_name(name, from, message, watch.as_ref(), &mut timer, timeout);
        let pid = sent.await?;
        await_reply(pid, timeout, reply, timer).await
    })
}

/// The error of a call whose target is on its way out: its exit reason, once it has one.
async fn exit_reason<R>(pid: Pid, timeout: Duration, mut timer: CallTimer) -> Result<R, CallError> {
    let exited = timer.race(exited(pid)).await;
    Err(exited.unwrap_or(CallError::Timeout { pid, timeout }))
}

/// Waits for the answer to a call delivered to `pid` (the slow path's copy of the fast path in
/// [`Exchange::poll`]).
async fn await_reply<R: Send + 'static>(
    pid: Pid,
    timeout: Duration,
    reply: Waiting<R>,
    mut timer: CallTimer,
) -> Result<R, CallError> {
    /// Tells the server when the caller gives up: a timeout, or this future dropped.
    struct GivingUp(Option<Pid>);
    impl Drop for GivingUp {
        fn drop(&mut self) {
            if let Some(pid) = self.0 {
                context::gave_up(pid);
            }
        }
    }
    let mut giving_up = GivingUp(Some(pid));
    let answer = timer.race(reply).await;
    if answer.is_some() {
        giving_up.0 = None;
    }
    match answer {
        Some(Answer::Replied(value)) => Ok(value),
        Some(Answer::Dropped) if leaving(pid) => exit_reason(pid, timeout, timer).await,
        Some(Answer::Dropped) if timer.passed() => Err(CallError::Timeout { pid, timeout }),
        Some(Answer::Dropped) => Err(CallError::NoReply(pid)),
        None => Err(CallError::Timeout { pid, timeout }),
    }
}

/// Why a call could not be pushed.
enum Failed {
    Now(CallError),
    /// The target is exiting: its exit reason is on its way. The message comes back.
    Exiting(Message),
    /// The target's mailbox is full under back-pressure: the caller waits for room. The
    /// message comes back.
    Full(Message),
}

/// Waits (within the call's timeout) for room in the full mailbox of `pid`, whose policy is
/// back-pressure, and pushes the call there once there is.
async fn push_when_room(
    pid: Pid,
    message: Message,
    timer: &mut CallTimer,
    timeout: Duration,
) -> Result<(), Unpushed> {
    let Some(cell) = table().get(pid) else {
        return Err(Unpushed::Closed(message));
    };
    match timer
        .race(crate::bound::push_waiting(&cell, message, Push::CallOrWait))
        .await
    {
        // The message went with the abandoned wait, which dropped it quietly.
        None => Err(Unpushed::Failed(CallError::Timeout { pid, timeout })),
        Some(Ok(())) => Ok(()),
        Some(Err(Refused::Closed(message))) => Err(Unpushed::Closed(message)),
        Some(Err(Refused::Full { message, .. })) => {
            drop_quietly(message, "a call to a full mailbox");
            Err(Unpushed::Failed(CallError::MailboxFull(pid)))
        }
    }
}

/// Why a call waiting for room was not pushed.
enum Unpushed {
    /// The process exited meanwhile: the call, never delivered, comes back.
    Closed(Message),
    Failed(CallError),
}

/// Pushes a call into `pid`'s mailbox, after watching its reply slot there if it comes as `watch`
/// (before the push, so that no moment passes with the token out of reach).
#[inline(always)]
fn push_call(
    pid: Pid,
    from: Option<Pid>,
    message: Message,
    watch: Option<&Weak<dyn ExitWatch>>,
) -> Result<(), Failed> {
    if from == Some(pid) {
        drop_quietly(message, "a call to oneself");
        return Err(Failed::Now(CallError::SelfCall(pid)));
    }
    let here = current_node();
    if pid.node() != here && !remote::is_distributed(here) {
        drop_quietly(message, "a call to another node");
        return Err(Failed::Now(CallError::NoConnection(pid)));
    }
    if pid.node() != here && !crosses(&message) {
        return Err(Failed::Now(cannot_cross(message)));
    }
    if let Some(watch) = watch {
        table().with(pid, |target| target.mailbox.watch(watch.clone()));
    }
    match process::push_to_server(pid, message, Push::CallOrWait) {
        Ok(()) => Ok(()),
        Err(Unsent::NoProc(unsent)) => {
            drop_quietly(unsent, "a call to a dead process");
            Err(Failed::Now(gone(pid)))
        }
        Err(Unsent::Exiting(unsent)) => Err(Failed::Exiting(unsent)),
        Err(Unsent::Full {
            message,
            wait: true,
        }) => Err(Failed::Full(message)),
        Err(Unsent::Full { message, .. }) => {
            drop_quietly(message, "a call to a full mailbox");
            Err(Failed::Now(CallError::MailboxFull(pid)))
        }
    }
}

/// Whether a call can go to another node: only a call by handler name can (a typed client makes
/// one when its target is on another node as the call is made).
fn crosses(message: &Message) -> bool {
    let call = match message.downcast_ref::<context::WithCtx>() {
        Some(with) => &with.message,
        None => message,
    };
    call.is::<crate::dispatch::DynamicCall>()
}

/// The error of a call that cannot cross to another node: a raw request, or a typed call made
/// while its target was on this node and awaited on another (inside a `LocalNode::scope`).
#[cold]
fn cannot_cross(message: Message) -> CallError {
    let handler = message.type_name().to_owned();
    drop_quietly(message, "a call that cannot cross");
    CallError::NotRemotable { handler }
}

/// Delivers a call to the process registered under `name`, waiting (within the call's timeout)
/// while the name is reserved for a restart or its process is exiting; the pid it went to.
async fn deliver_by_name(
    name: Atom,
    from: Option<Pid>,
    mut message: Message,
    watch: Option<&Weak<dyn ExitWatch>>,
    timer: &mut CallTimer,
    timeout: Duration,
) -> Result<Pid, CallError> {
    loop {
        let pid = match registry::resolve(name.as_str()) {
            Resolved::Held(pid) => pid,
            Resolved::Unknown => return Err(CallError::NotRegistered(name.as_str().into())),
            Resolved::Reserved(reservation) => {
                let pid = reservation.last;
                match timer.race(reservation.outcome()).await {
                    None => return Err(CallError::Timeout { pid, timeout }),
                    Some(Outcome::Released(reason)) => {
                        return Err(CallError::Exited { pid, reason });
                    }
                    Some(_) => continue,
                }
            }
        };
        match push_call(pid, from, message, watch) {
            Ok(()) => return Ok(pid),
            Err(Failed::Now(error)) => return Err(error),
            Err(Failed::Full(unsent)) => match push_when_room(pid, unsent, timer, timeout).await {
                Ok(()) => return Ok(pid),
                Err(Unpushed::Failed(error)) => return Err(error),
                Err(Unpushed::Closed(unsent)) => {
                    if timer.race(exited(pid)).await.is_none() {
                        drop_quietly(unsent, "a call that timed out");
                        return Err(CallError::Timeout { pid, timeout });
                    }
                    message = unsent;
                }
            },
            Err(Failed::Exiting(unsent)) => {
                // Its name is released or reserved once it has exited: look again then.
                if timer.race(exited(pid)).await.is_none() {
                    drop_quietly(unsent, "a call that timed out");
                    return Err(CallError::Timeout { pid, timeout });
                }
                message = unsent;
            }
        }
    }
}

/// Where a call's reply token goes, which decides when the target's exit is watched for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// To user code, in a raw [`Request`]: watched from the start.
    Raw,
    /// Into a gen_server's `Caller`: watched once its handler defers the reply.
    Handler,
    /// As `Handler`, to a gen_server on another node.
    Remote,
}

/// Casts `message` to the process `to` stands for: dropped (and logged) if there is none; by a
/// name reserved for a restart, delivered to the new process.
#[inline]
pub(crate) fn cast_to(to: Addr, message: Message) {
    let message = context::cast(message);
    match to.0 {
        Target::Pid(pid) => process::cast_to_server(pid, message),
        Target::NameOn(node, name) if to.is_remote() => {
            if let Err(error) = push_named_on(node, name, message) {
                tracing::debug!(%error, "cast to a name on another node dropped");
            }
        }
        Target::Name(name) | Target::NameOn(_, name) => {
            let name = name.as_str();
            let cast = |pid, message| {
                process::cast_to_server(pid, message);
                true
            };
            if registry::send_to_name(name, message, cast).is_err() {
                tracing::debug!(name, "cast to an unregistered name dropped");
            }
        }
    }
}

/// [`cast_to`] to an address the caller has just found to be on this node
/// ([`Addr::is_remote`]): a typed cast checks once, not twice.
#[inline]
pub(crate) fn cast_to_here(to: Addr, message: Message) {
    match to.0 {
        Target::Pid(pid) => process::cast_to_server_here(pid, context::cast(message)),
        _ => cast_to(to, message),
    }
}

/// Hands a call or cast for the process registered as `name` on another node to that node;
/// the pid that stands for the node in errors (its index 0, no process's).
fn push_named_on(node: Atom, name: Atom, message: Message) -> Result<Pid, CallError> {
    let here = current_node();
    let node = node_core::intern(node.as_str(), 0)
        .ok()
        .filter(|_| remote::is_distributed(here));
    let Some(node) = node else {
        drop_quietly(message, "a call to another node");
        return Err(CallError::NoConnection(Pid::root(here)));
    };
    let to = Pid::root(node);
    let name = Some(name.as_str());
    remote::route(
        here,
        Signal::Upper(Box::new(ToServer { to, name, message })),
    );
    Ok(to)
}

/// Whether `pid` is exiting, stopping, or gone.
pub(crate) fn leaving(pid: Pid) -> bool {
    table()
        .with(pid, |cell| lock(&cell.state).leaving())
        .unwrap_or(true)
}

/// The error for a call to a pid that is not alive: its exit reason if the runtime still knows
/// it, `NoProc` otherwise.
pub(crate) fn gone(pid: Pid) -> CallError {
    match table().tombstone(pid) {
        Some(reason) => CallError::Exited { pid, reason },
        None => CallError::NoProc(pid),
    }
}

/// The error for a call whose target is exiting or has exited: its exit reason, waited for if
/// the exit sequence is still running.
async fn exited(pid: Pid) -> CallError {
    match table().get(pid) {
        Some(target) => CallError::Exited {
            pid,
            reason: target.exited().await,
        },
        None => gone(pid),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::process::{spawn, wait};

    fn waiters(pid: Pid) -> usize {
        table()
            .with(pid, |cell| {
                lock(&cell.state)
                    .relations_ref()
                    .map_or(0, |relations| relations.waiters.len())
            })
            .unwrap_or(0)
    }

    /// Nothing is kept for a caller that stopped waiting: 10,000 abandoned waits and calls leave
    /// a handful of entries on the live process, not 10,000. (Here rather than beside `wait`,
    /// since the process core below does not know requests.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_waits_and_calls_are_pruned() {
        // Drops every request: each call fails at once, leaving its watcher behind.
        let target = spawn(|mut ctx| async move {
            loop {
                drop(ctx.receive::<Request<(), ()>>().await);
            }
        });
        for _ in 0..10_000 {
            // Polled once (so it registers), then abandoned, as by a `select!`.
            let mut abandoned = std::pin::pin!(wait(target));
            std::future::poll_fn(|cx| {
                assert!(abandoned.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            let call = request_timeout::<(), ()>(target, (), Duration::from_secs(60)).await;
            assert_eq!(call, Err(CallError::NoReply(target)));
        }
        assert!(waiters(target) <= 8, "{} waiters kept", waiters(target));
        let watchers = table()
            .with(target, |cell| cell.mailbox.watchers())
            .unwrap_or(0);
        assert!(watchers <= 8, "{watchers} call watchers kept");
        crate::exit(target, ExitReason::Kill);
        assert_eq!(wait(target).await, ExitReason::Killed);
    }
}
