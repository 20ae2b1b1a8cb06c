//! Task handlers: `#[install("name", task)]` handlers whose work runs beside the server's loop,
//! so that a long request does not hold up the others (Moebius's generator handlers).
//!
//! The handler's method runs in the loop, with the state, and returns a `'static` future: the
//! task. The server keeps, per handler, the tasks of each caller (the calling process; callers
//! outside any process count as one, [`Pid::ROOT`]) and applies the handler's [`Strategy`] to a
//! caller's new request while an earlier one is in flight. At most `limit` callers' tasks of one
//! handler run at once; the others wait, in arrival order, for a place.
//!
//! A task answers its caller itself, then tells the server it is done (a [`TaskDone`] message
//! the loop takes before the handlers), which starts what waited for it. The reply token is shared
//! between the task and the server: under `replace`, the server takes it to answer `Cancelled` at
//! once, then aborts the task. The tokens are watched like deferred ones, so a server that exits
//! fails its tasks' calls with its exit reason; dropping the server's [`Tasks`] aborts them all.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::task::AbortHandle;

use super::on_error::Failure;
use crate::{
    mailbox::lock,
    pid::Pid,
    process::{node_core::current_node, send},
    reply::ReplyTo,
    request::CallError,
    task::InNode,
    timer::{TimerRef, send_interval},
    unwind::CatchUnwind,
};

/// What a task handler does with a caller's new request while one of that caller's earlier
/// requests is in flight (Moebius's strategies). Requests of different callers never affect
/// each other.
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

/// Sent by a task to its server when it has finished (answered its caller, or panicked).
pub(crate) struct TaskDone {
    handler: &'static str,
    caller: Pid,
    id: u64,
    /// The task returned `Err(e)` (answered already): `e` printed.
    error: Option<String>,
    panic: Option<Arc<str>>,
}

/// A task that failed, for the server's error hook; holds the task's reply token (unanswered
/// after a panic) until the hook has decided.
pub(crate) struct TaskFailure {
    pub(crate) failure: Failure,
    _token: Option<Refuse>,
}

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;
type Refuse = Box<dyn FnOnce(Refusal) + Send>;

/// A `#[background]` method's turn: the index of its period in `GenServer::BACKGROUND`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Tick(pub usize);

/// One server's work beside its loop: the task handlers' work in flight and waiting, and the
/// timers of its `#[background]` methods (empty, and unallocated, for a server with neither).
#[doc(hidden)]
#[derive(Default)]
pub struct Tasks(Option<Box<Inner>>);

#[derive(Default)]
struct Inner {
    handlers: HashMap<&'static str, Handler>,
    next_id: u64,
    timers: Vec<TimerRef>,
}

struct Handler {
    limit: usize,
    running: usize,
    callers: HashMap<Pid, Caller>,
    /// Callers with a request waiting for a place, none of it running, in the order they came.
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
    refuse: Refuse,
}

struct Queued {
    id: u64,
    work: Work,
    refuse: Refuse,
}

impl Tasks {
    /// Sends `tick` to `server` every `period` until the server stops.
    pub(crate) fn every(&mut self, period: Duration, server: Pid, tick: Tick) {
        let timer = send_interval(period, server, tick);
        self.0.get_or_insert_with(Box::default).timers.push(timer);
    }

    /// Takes a request for the task handler `spec`: refuses it, queues it or starts it.
    /// `start` is the user's method: it runs now, in the server loop, unless the request is
    /// refused.
    #[doc(hidden)]
    pub fn __request<R, F>(
        &mut self,
        spec: &'static TaskSpec,
        server: Pid,
        from: Option<Pid>,
        reply_to: TaskReply<R>,
        failed: fn(&R) -> Option<String>,
        start: impl FnOnce() -> F,
    ) where
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
                callers: HashMap::new(),
                ready: VecDeque::new(),
            });
        let busy = handler
            .callers
            .get(&caller)
            .is_some_and(|c| c.running.is_some() || !c.queue.is_empty());
        if busy {
            match spec.strategy {
                Strategy::Queue => {}
                Strategy::Ignore => {
                    reply_to.send(Err(Refusal::Busy(server)));
                    return;
                }
                Strategy::Replace => handler.cancel(caller, server),
            }
        }
        // The user's method: a panic here is the handler's, and stops the server as any does.
        let future = start();
        inner.next_id += 1;
        let id = inner.next_id;
        let (reply_to, watch) = reply_to.watched();
        if let Some(watch) = watch {
            crate::process::watch_here(watch);
        }
        let token = Arc::new(Mutex::new(Some(reply_to)));
        let refuse: Refuse = {
            let token = token.clone();
            Box::new(move |refusal| {
                if let Some(reply_to) = lock(&token).take() {
                    reply_to.send(Err(refusal));
                }
            })
        };
        let handler_name = spec.handler;
        let work: Work = Box::pin(async move {
            let (error, panic) = match CatchUnwind::new(future).await {
                Ok(value) => {
                    let error = failed(&value);
                    if let Some(reply_to) = lock(&token).take() {
                        reply_to.send(Ok(value));
                    }
                    (error, None)
                }
                // The token stays where it is: the server decides what the caller gets.
                Err(panic) => (None, Some(panic)),
            };
            send(
                server,
                TaskDone {
                    handler: handler_name,
                    caller,
                    id,
                    error,
                    panic,
                },
            );
        });
        let queued = Queued { id, work, refuse };
        let entry = handler.callers.entry(caller).or_default();
        let was_idle = entry.running.is_none() && entry.queue.is_empty();
        entry.queue.push_back(queued);
        if was_idle {
            handler.ready.push_back(caller);
        }
        handler.start_ready();
    }

    /// A task has finished: its place goes to what waited for it. `Some` when it failed, for
    /// the server's error hook.
    pub(crate) fn done(&mut self, done: TaskDone) -> Option<TaskFailure> {
        let inner = self.0.as_mut()?;
        let handler = inner.handlers.get_mut(done.handler)?;
        let mut token = None;
        if let Some(caller) = handler.callers.get_mut(&done.caller) {
            // A task cancelled meanwhile has given its place up already.
            if caller.running.as_ref().is_some_and(|r| r.id == done.id) {
                token = caller.running.take().map(|running| running.refuse);
                handler.running -= 1;
                if caller.queue.is_empty() {
                    handler.callers.remove(&done.caller);
                } else {
                    handler.ready.push_back(done.caller);
                }
            }
        }
        handler.start_ready();
        let from = (done.caller != Pid::ROOT).then_some(done.caller);
        let failure = match (done.panic, done.error) {
            (Some(panic), _) => Failure::__panic(done.handler, from, panic),
            (None, Some(error)) => Failure::__error(done.handler, from, error),
            (None, None) => return None,
        };
        Some(TaskFailure {
            failure,
            _token: token,
        })
    }
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

impl Handler {
    /// Cancels everything `caller` has in flight or waiting: each request's caller gets
    /// `Cancelled` at once.
    fn cancel(&mut self, caller: Pid, server: Pid) {
        let Some(entry) = self.callers.remove(&caller) else {
            return;
        };
        if let Some(running) = entry.running {
            self.running -= 1;
            (running.refuse)(Refusal::Cancelled(server));
            running.abort.abort();
        }
        for queued in entry.queue {
            (queued.refuse)(Refusal::Cancelled(server));
        }
        self.ready.retain(|&c| c != caller);
    }

    /// Starts waiting requests while there are places.
    fn start_ready(&mut self) {
        while self.running < self.limit {
            let Some(caller) = self.ready.pop_front() else {
                return;
            };
            let Some(entry) = self.callers.get_mut(&caller) else {
                continue;
            };
            let Some(Queued { id, work, refuse }) = entry.queue.pop_front() else {
                continue;
            };
            let task = tokio::spawn(InNode::new(current_node(), work));
            entry.running = Some(Running {
                id,
                abort: task.abort_handle(),
                refuse,
            });
            self.running += 1;
        }
    }
}

impl Drop for Tasks {
    /// The server has stopped: its tasks and timers stop too.
    fn drop(&mut self) {
        let Some(inner) = &mut self.0 else {
            return;
        };
        for timer in inner.timers.drain(..) {
            timer.cancel();
        }
        for handler in inner.handlers.values() {
            for caller in handler.callers.values() {
                if let Some(running) = &caller.running {
                    running.abort.abort();
                }
            }
        }
    }
}
