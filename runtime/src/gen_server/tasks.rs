//! Task handlers: `#[install("name", task)]` handlers whose work runs beside the server's loop,
//! so that a long request does not hold up the others (Moebius's generator handlers).
//!
//! The handler's method runs in the loop, with the state, when the request arrives, and returns
//! a `'static` future: the task. The server keeps, per handler, the tasks of each caller (the
//! calling process; callers outside any process count as one, [`Pid::ROOT`]) and applies the
//! handler's [`Strategy`] to a caller's new request while an earlier one is in flight. At most
//! `limit` callers' tasks of one handler run at once; callers waiting for a place take it in
//! the order they began to wait. A request whose caller has stopped waiting (its call timed
//! out) is dropped when its turn comes instead of run.
//!
//! When its future is done, a task marks itself finished, then answers its caller: the server
//! reads the mark before it applies a strategy or the limit, so it has taken the task off its
//! books before the caller can ask again. Only when requests wait for a place does the task also
//! send the server a [`TaskDone`] (a message the loop takes before the handlers), which starts
//! them; the mark and the count of waiting requests are read in opposite orders by the task and
//! the server, so that one of the two always sees the other. An `Err` output, or a panic, goes
//! to the server instead, whose error hook decides what the caller gets ([`TaskFailed`]). The reply token is shared between the
//! task and the server: under `replace`, the server takes it to answer `Cancelled` at once, then
//! aborts the task. The tokens are watched like deferred ones, so a server that exits fails its
//! tasks' calls with its exit reason; dropping the server's [`Tasks`] aborts them all.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::task::AbortHandle;

use super::{
    Dispatched, GenServer,
    background::{self, Timer},
    on_error::{Failure, FailureKind, OnError},
};
use crate::{
    context::Context,
    mailbox::lock,
    message::Message,
    pid::Pid,
    process::{self, node_core::current_node},
    reply::ReplyTo,
    request::CallError,
    task::InNode,
    unwind::{CatchUnwind, catch, drop_quietly},
};

/// What a task handler does with a caller's new request while one of that caller's earlier
/// requests is in flight (Moebius's strategies). Requests of different callers do not wait for
/// each other (up to the handler's limit), and one caller's strategy never cancels or refuses
/// another's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Runs the caller's requests one after another, in the order they came (the default).
    Queue,
    /// Cancels the request in flight, whose caller gets [`CallError::Cancelled`] at once, and
    /// runs the new one.
    Replace,
    /// Refuses the new request at once with [`CallError::Busy`].
    Ignore,
}

/// How many callers' tasks of one handler run at once when the attribute does not say.
pub const DEFAULT_TASK_LIMIT: usize = 64;

/// A task handler as the attribute declares it.
#[doc(hidden)]
#[derive(Debug)]
pub struct TaskSpec {
    pub handler: &'static str,
    pub strategy: Strategy,
    pub limit: usize,
}

/// Why a task handler did not answer a request with its result: becomes [`CallError::Cancelled`]
/// or [`CallError::Busy`] at the caller. Travels in the reply of a task handler's typed call.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Cancelled(Pid),
    Busy(Pid),
}

impl<E> From<Refusal> for CallError<E> {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Cancelled(pid) => CallError::Cancelled(pid),
            Refusal::Busy(pid) => CallError::Busy(pid),
        }
    }
}

/// The reply token a task handler's request carries.
#[doc(hidden)]
pub type TaskReply<R> = ReplyTo<Result<R, Refusal>>;

/// One request's reply token, shared by its task and the server, type-erased.
trait Token: Send + Sync {
    /// Answers the caller with `refusal`, unless answered already.
    fn refuse(&self, refusal: Refusal);
    /// A call (not a cast) whose caller no longer waits for the answer.
    fn abandoned(&self) -> bool;
    /// The task has its output, and answers (or has answered) its caller itself.
    fn finished(&self) -> bool;
}

struct Shared<R> {
    slot: Mutex<Option<TaskReply<R>>>,
    call: bool,
    finished: AtomicBool,
}

impl<R> Shared<R> {
    fn take(&self) -> Option<TaskReply<R>> {
        lock(&self.slot).take()
    }
}

impl<R: Send + 'static> Token for Shared<R> {
    fn refuse(&self, refusal: Refusal) {
        if let Some(reply_to) = self.take() {
            reply_to.send(Err(refusal));
        }
    }

    fn abandoned(&self) -> bool {
        self.call && lock(&self.slot).as_ref().is_some_and(|r| !r.is_waiting())
    }

    fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}

/// Tells `server` its task is done: a signal, which a full mailbox never turns away (the server
/// would otherwise wait forever for a task that has finished).
fn send(server: Pid, done: TaskDone) {
    process::signal(server, Message::new(done));
}

/// Sent by a task to its server when its output is ready (before it answers its caller).
pub(crate) struct TaskDone {
    handler: &'static str,
    caller: Pid,
    id: u64,
    /// `None`: the task answers its caller itself.
    failed: Option<Failed>,
}

/// How a task failed, with what its caller is to get if the server goes on.
enum Failed {
    /// The output was `Err(e)`: `e` printed, and the answer holding the output.
    Error(String, Answer),
    Panic(Arc<str>),
}

type Answer = Box<dyn FnOnce() + Send>;

/// A failure for the error hook: a task's, sent to the loop as a message so that it is handled
/// where the handlers are (see `__task_failed`), or the panic of a task handler's method.
#[doc(hidden)]
pub struct TaskFailed {
    failure: Failure,
    /// Sends the caller its `Err`, if the server goes on after an `Err` output.
    answer: Option<Answer>,
    /// The reply token, held until the hook has decided.
    _token: Option<Arc<dyn Token>>,
}

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One server's work beside its loop: the task handlers' work in flight and waiting, the
/// timers of its `#[background]` methods, and how many messages are left to check for callers
/// that gave up (empty, and unallocated, for a server with none of these).
#[doc(hidden)]
#[derive(Default)]
pub struct Tasks(Option<Box<Inner>>);

#[derive(Default)]
struct Inner {
    handlers: HashMap<&'static str, Handler>,
    next_id: u64,
    timers: Vec<Timer>,
    /// Messages still to check for a caller that gave up (see `calls::context`).
    to_check: usize,
}

struct Handler {
    limit: usize,
    running: usize,
    /// Requests queued, of every caller: a finishing task tells the server only when some wait.
    waiting: Arc<AtomicUsize>,
    callers: HashMap<Pid, Caller>,
    /// Callers with a request waiting for a place, none of it running, in the order they began
    /// to wait.
    ready: VecDeque<Pid>,
}

#[derive(Default)]
struct Caller {
    running: Option<Running>,
    queue: VecDeque<Queued>,
}

struct Running {
    id: u64,
    abort: AbortHandle,
    token: Arc<dyn Token>,
}

struct Queued {
    id: u64,
    work: Work,
    token: Arc<dyn Token>,
}

impl Tasks {
    /// How many messages are left to check for callers that gave up (see `calls::context`).
    pub(crate) fn left_to_check(&mut self) -> &mut usize {
        &mut self.0.get_or_insert_with(Box::default).to_check
    }

    /// Starts the timer of the `index`th `#[background]` method, stopped with the server.
    pub(crate) fn every(&mut self, period: Duration, server: Pid, index: usize) {
        let timer = background::every(period, server, index);
        self.0.get_or_insert_with(Box::default).timers.push(timer);
    }

    /// Takes a request for the task handler `spec`: refuses it, queues it or starts it.
    /// `start` is the user's method: it runs now, in the server loop, unless the request is
    /// refused. In a server with an error hook (`hooked`), its panic comes back for the hook;
    /// otherwise it unwinds, and stops the server as a handler's panic does.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn __request<R, F>(
        &mut self,
        spec: &'static TaskSpec,
        server: Pid,
        from: Option<Pid>,
        reply_to: TaskReply<R>,
        failed: fn(&R) -> Option<String>,
        hooked: bool,
        start: impl FnOnce() -> F,
    ) -> Option<TaskFailed>
    where
        R: Send + 'static,
        F: Future<Output = R> + Send + 'static,
    {
        let caller = from.unwrap_or(Pid::ROOT);
        let inner = self.0.get_or_insert_with(Box::default);
        let handler = inner
            .handlers
            .entry(spec.handler)
            .or_insert_with(|| Handler {
                limit: spec.limit.max(1),
                running: 0,
                waiting: Arc::default(),
                callers: HashMap::new(),
                ready: VecDeque::new(),
            });
        handler.sweep(caller);
        let busy = handler
            .callers
            .get(&caller)
            .is_some_and(|c| c.running.is_some() || !c.queue.is_empty());
        if busy {
            match spec.strategy {
                Strategy::Queue => {}
                Strategy::Ignore => {
                    reply_to.send(Err(Refusal::Busy(server)));
                    return None;
                }
                Strategy::Replace => handler.cancel(caller, server),
            }
        }
        let call = reply_to.is_waiting();
        let future = if hooked {
            match catch(|| crate::reply::survivable(start)) {
                Ok(future) => future,
                Err(panic) => {
                    return Some(TaskFailed {
                        failure: Failure::__panic(spec.handler, from, panic),
                        answer: None,
                        _token: Some(Arc::new(Shared {
                            slot: Mutex::new(Some(reply_to)),
                            call,
                            finished: AtomicBool::new(false),
                        })),
                    });
                }
            }
        } else {
            start()
        };
        inner.next_id += 1;
        let id = inner.next_id;
        let (reply_to, watch) = reply_to.watched();
        if let Some(watch) = watch {
            process::watch_here(watch);
        }
        let token = Arc::new(Shared {
            slot: Mutex::new(Some(reply_to)),
            call,
            finished: AtomicBool::new(false),
        });
        let ends = Ends {
            handler: spec.handler,
            server,
            caller,
            id,
            waiting: handler.waiting.clone(),
        };
        // The task's own calls carry the request's context: the caller waits on them.
        let future = crate::calls::context::Carrying::current(future);
        let work = work(ends, token.clone(), failed, future);
        let entry = handler.callers.entry(caller).or_default();
        let was_idle = entry.running.is_none() && entry.queue.is_empty();
        entry.queue.push_back(Queued { id, work, token });
        // Counted before the tasks' marks are read again: a task finishing meanwhile either
        // sees the count and tells the server, or is seen finished here.
        handler.waiting.fetch_add(1, Ordering::SeqCst);
        if was_idle {
            handler.ready.push_back(caller);
        } else {
            handler.sweep(caller);
        }
        // At the limit; and now and then below it, so that the finished tasks of callers that
        // do not come back are forgotten under a large limit too.
        let running = handler.running;
        if running >= handler.limit || (running >= 64 && running.is_power_of_two()) {
            handler.sweep_all();
        }
        handler.start_ready();
        None
    }

    /// A task's output is ready: its place goes to what waited for it. `Some` when it failed,
    /// for the server's error hook.
    pub(crate) fn done(&mut self, done: TaskDone) -> Option<TaskFailed> {
        let mut token = None;
        if let Some(handler) = self
            .0
            .as_mut()
            .and_then(|inner| inner.handlers.get_mut(done.handler))
        {
            if let Some(caller) = handler.callers.get_mut(&done.caller) {
                // A task cancelled meanwhile has given its place up already.
                if caller.running.as_ref().is_some_and(|r| r.id == done.id) {
                    token = caller.running.take().map(|running| running.token);
                    handler.running -= 1;
                    if caller.queue.is_empty() {
                        handler.callers.remove(&done.caller);
                    } else {
                        handler.ready.push_back(done.caller);
                    }
                }
            }
            handler.start_ready();
        }
        let from = (done.caller != Pid::ROOT).then_some(done.caller);
        let (failure, answer) = match done.failed? {
            Failed::Error(error, answer) => {
                (Failure::__error(done.handler, from, error), Some(answer))
            }
            Failed::Panic(panic) => (Failure::__panic(done.handler, from, panic), None),
        };
        Some(TaskFailed {
            failure,
            answer,
            _token: token,
        })
    }
}

/// Where a task reports to.
struct Ends {
    handler: &'static str,
    server: Pid,
    caller: Pid,
    id: u64,
    waiting: Arc<AtomicUsize>,
}

/// A request's task: the user's future, then the task marked finished (and the server told, if
/// requests wait), then the caller answered. Every piece of user code in it (the future, the
/// error's `Debug`, the reply's encoding and `Drop`) runs where its panic is caught.
fn work<R, F>(
    ends: Ends,
    token: Arc<Shared<R>>,
    failed: fn(&R) -> Option<String>,
    future: F,
) -> Work
where
    R: Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    let Ends {
        handler,
        server,
        caller,
        id,
        waiting,
    } = ends;
    Box::pin(async move {
        let done = |failed| TaskDone {
            handler,
            caller,
            id,
            failed,
        };
        let value = match CatchUnwind::new(future).await {
            Ok(value) => value,
            Err(panic) => return send(server, done(Some(Failed::Panic(panic)))),
        };
        match catch(|| failed(&value)) {
            Ok(None) => {
                token.finished.store(true, Ordering::SeqCst);
                if waiting.load(Ordering::SeqCst) > 0 {
                    send(server, done(None));
                }
                let answered = catch(move || {
                    if let Some(reply_to) = token.take() {
                        reply_to.send(Ok(value));
                    }
                });
                if let Err(panic) = answered {
                    tracing::error!(handler, %panic, "a task's reply panicked (encoding or dropping it); its caller gets no answer");
                }
            }
            Ok(Some(error)) => {
                let answer: Answer = Box::new(move || {
                    if let Some(reply_to) = token.take() {
                        reply_to.send(Ok(value));
                    }
                });
                send(server, done(Some(Failed::Error(error, answer))));
            }
            Err(panic) => {
                drop_quietly(value, "a task's output");
                send(server, done(Some(Failed::Panic(panic))));
            }
        }
    })
}

/// Generated server code: the error of a fallible task's output, printed.
#[doc(hidden)]
pub fn __task_failed<T, E: std::fmt::Debug>(output: &Result<T, E>) -> Option<String> {
    output.as_ref().err().map(|error| format!("{error:?}"))
}

/// Generated server code: an infallible task's output is never an error.
#[doc(hidden)]
pub fn __task_never_fails<R>(_: &R) -> Option<String> {
    None
}

/// Generated server code: a task failed (`message` is a [`TaskFailed`]); the error hook decides
/// whether the server goes on or stops. Boxed: the rare case, kept out of the dispatch's future.
#[doc(hidden)]
pub fn __on_task_failure<'a, S: GenServer>(
    server: &'a mut S,
    message: Message,
    ctx: &'a mut Context,
) -> Pin<Box<dyn Future<Output = Dispatched> + Send + 'a>> {
    Box::pin(async move {
        let Ok(failed) = message.downcast::<TaskFailed>() else {
            return Dispatched::Continue;
        };
        decide(server, failed, ctx).await
    })
}

/// Generated server code: the panic of a task handler's method, in a server with an error hook.
#[doc(hidden)]
pub fn __on_task_panic<'a, S: GenServer>(
    server: &'a mut S,
    failed: TaskFailed,
    ctx: &'a mut Context,
) -> Pin<Box<dyn Future<Output = Dispatched> + Send + 'a>> {
    Box::pin(decide(server, failed, ctx))
}

async fn decide<S: GenServer>(server: &mut S, failed: TaskFailed, ctx: &mut Context) -> Dispatched {
    let TaskFailed {
        failure,
        answer,
        _token,
    } = failed;
    match server.__on_error(failure.clone(), ctx).await {
        OnError::Continue => {
            if let FailureKind::Panic(_) = failure.kind {
                tracing::warn!(pid = %ctx.pid(), %failure, "the error hook keeps the server running");
            }
            if let Some(answer) = answer {
                if let Err(panic) = catch(answer) {
                    tracing::error!(pid = %ctx.pid(), %panic, "a task's reply panicked (encoding or dropping it); its caller gets no answer");
                }
            }
            Dispatched::Continue
        }
        OnError::Crash => {
            // Before the caller's token goes: the caller waits for the exit reason.
            process::mark_stopping();
            drop_quietly((answer, _token), "a failed task's output");
            Dispatched::Stop(failure.exit_reason())
        }
    }
}

impl Handler {
    /// Cancels everything `caller` has in flight or waiting: each request's caller gets
    /// `Cancelled` at once.
    fn cancel(&mut self, caller: Pid, server: Pid) {
        let Some(entry) = self.callers.remove(&caller) else {
            return;
        };
        if let Some(running) = entry.running {
            self.running -= 1;
            running.token.refuse(Refusal::Cancelled(server));
            running.abort.abort();
        }
        self.waiting.fetch_sub(entry.queue.len(), Ordering::SeqCst);
        for queued in entry.queue {
            queued.token.refuse(Refusal::Cancelled(server));
            drop_quietly(queued.work, "a cancelled task");
        }
        self.ready.retain(|&c| c != caller);
    }

    /// Takes `caller`'s running task off the books if it has finished.
    fn sweep(&mut self, caller: Pid) {
        let Some(entry) = self.callers.get_mut(&caller) else {
            return;
        };
        if !entry.running.as_ref().is_some_and(|r| r.token.finished()) {
            return;
        }
        entry.running = None;
        self.running -= 1;
        if entry.queue.is_empty() {
            self.callers.remove(&caller);
        } else {
            self.ready.push_back(caller);
        }
    }

    /// Takes every finished task off the books: the limit is reached, and a finished task only
    /// tells the server when requests wait.
    fn sweep_all(&mut self) {
        let finished: Vec<Pid> = self
            .callers
            .iter()
            .filter(|(_, entry)| entry.running.as_ref().is_some_and(|r| r.token.finished()))
            .map(|(&caller, _)| caller)
            .collect();
        for caller in finished {
            self.sweep(caller);
        }
    }

    /// Starts waiting requests while there are places; drops, unrun, those whose caller has
    /// stopped waiting.
    fn start_ready(&mut self) {
        while self.running < self.limit {
            let Some(caller) = self.ready.pop_front() else {
                return;
            };
            let Some(entry) = self.callers.get_mut(&caller) else {
                continue;
            };
            let Some(Queued { id, work, token }) = pop_live(&mut entry.queue, &self.waiting) else {
                self.callers.remove(&caller);
                continue;
            };
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            let task = tokio::spawn(InNode::new(current_node(), work));
            entry.running = Some(Running {
                id,
                abort: task.abort_handle(),
                token,
            });
            self.running += 1;
        }
    }
}

/// The first queued request whose caller still waits (or that is a cast); the abandoned ones
/// before it are dropped.
fn pop_live(queue: &mut VecDeque<Queued>, waiting: &AtomicUsize) -> Option<Queued> {
    while let Some(queued) = queue.pop_front() {
        if !queued.token.abandoned() {
            return Some(queued);
        }
        waiting.fetch_sub(1, Ordering::SeqCst);
        drop_quietly(queued.work, "an abandoned task");
    }
    None
}

impl Drop for Tasks {
    /// The server has stopped: its tasks and timers stop too.
    fn drop(&mut self) {
        let Some(inner) = &mut self.0 else {
            return;
        };
        inner.timers.clear();
        for handler in inner.handlers.values() {
            for caller in handler.callers.values() {
                if let Some(running) = &caller.running {
                    running.abort.abort();
                }
            }
        }
    }
}
