//! The process core: pids, the process table, mailboxes, spawning, exits, links, monitors,
//! names, timers and introspection. Everything else (requests and replies, gen_servers,
//! supervisors, applications, the node) is built on it, and nothing here knows of those: a layer
//! above that must recognise a process tags it ([`Tag`]), and one that must hear of an exit
//! registers an `ExitWatch` in its mailbox.
//!
//! | module | concept |
//! | --- | --- |
//! | `pid` | [`Pid`], the address of a process |
//! | this one | [`spawn`], [`send`], [`wait`]; the record of a process ([`Cell`]) and the exit sequence |
//! | `table` | the process table behind every pid |
//! | `task` | the future a process runs as: current pid, panics, exit |
//! | `context` | [`Context`], a process's own pid and mailbox; selective receive |
//! | `mailbox`, `message` | the mailbox queue and [`Message`], a message of any type |
//! | `bound` | bounded mailboxes: [`MailboxLimit`], [`Overflow`](bound::Overflow), `try_send`, `send_wait` |
//! | `exit` | [`ExitReason`] and how a return value becomes one |
//! | `link` | links, monitors, exit signals |
//! | `registry` | registered names, and names kept for a process across its restarts |
//! | `timer` | messages sent later or periodically |
//! | `info` | introspection: `processes`, `process_info` |
//! | `unwind` | panics in user code, caught where the runtime runs it |
//! | `node_core` | the nodes this OS process hosts (each its own table and names) and the node numbers pids carry |
//! | `remote` | the seam to other nodes: what the core hands a pid that is not on the current node |
//!
//! # Processes
//!
//! Spawning them, the record every process has, and what happens when one exits.
//!
//! A process is a tokio task running the future its function returned, plus a [`Cell`]: the record
//! other processes reach through the [process table](crate::table). The task owns a guard whose
//! `Drop` runs the exit sequence, so it runs however the task ends: the function returned, it
//! panicked (the panic is caught and becomes the exit reason), or the task was aborted because an
//! exit signal killed it.
//!
//! The exit sequence, in this order, so that anyone told of the exit by the last step sees all
//! earlier ones (a restart right after `wait` finds the name free):
//! 1. the exit reason is fixed (the first reason recorded wins) and the process's future is
//!    dropped, with its state and everything it held (a reply token dropped here fails its caller
//!    with the exit reason, which is already fixed);
//! 2. the mailbox is closed and its messages dropped;
//! 3. the registered name is released (or reserved for its keeper, see the registry) and names
//!    this process keeps for others are released; the pid is no longer listed by `processes()`
//!    (its record is finished since step 1);
//! 4. linked processes get exit signals, monitors get `Down`, and calls whose token lives on in
//!    another process fail; then the record leaves the process table for a tombstone with the exit
//!    reason, and waiters (`wait`, `join`, `stop`, a call whose token was dropped) get it.
//!
//! User code runs in steps 1 and 2 (the `Drop` of the state and of leftover messages): a panic
//! there is logged and the sequence goes on.

use std::{
    any::{Any, TypeId},
    cell::RefCell,
    collections::{HashMap, HashSet},
    future::Future,
    sync::{Arc, Mutex, Weak},
};

use tokio::{sync::oneshot, task::AbortHandle};

use self::node_core::current_node;
use crate::{
    bound::MailboxLimit,
    context::Context,
    exit::{ExitReason, ProcessOutput},
    link::MonitorRef,
    mailbox::{Activity, ExitWatch, Mailbox, Push, Refused, lock},
    message::Message,
    pid::Pid,
    table::table,
    task::{ProcessTask, self_pid},
    unwind::drop_quietly,
};

pub(crate) mod bound;
pub(crate) mod context;
pub(crate) mod exit;
pub(crate) mod info;
pub(crate) mod link;
pub(crate) mod mailbox;
pub(crate) mod message;
pub(crate) mod node_core;
pub(crate) mod pid;
pub(crate) mod registry;
pub(crate) mod remote;
pub(crate) mod table;
pub(crate) mod task;
pub(crate) mod timer;
pub(crate) mod unwind;

/// An opaque label a layer above the core puts on a process to recognise it later: a type's
/// identity and name, produced on demand so that the label itself is one pointer.
#[derive(Clone, Copy)]
pub(crate) struct Tag(pub(crate) fn() -> (TypeId, &'static str));

/// The record of one live process, shared by its task and everyone who can reach its pid.
///
/// In this order (hence `repr(C)`): the mailbox's lock, which senders take, at one end, and what
/// the process itself writes at every message and poll at the other, on another cache line.
#[repr(C)]
pub(crate) struct Cell {
    pub(crate) pid: Pid,
    pub(crate) mailbox: Mailbox,
    pub(crate) state: Mutex<State>,
    pub(crate) activity: Activity,
}

// Keep the record of a process at most 120 bytes (136 with the `Arc` counts). glibc leaves about
// 160 bytes of fragments beside each 128-byte-aligned tokio task it allocates, and a record this
// small reuses them instead of taking fresh memory: an idle server measured 723 bytes instead of
// 850 when the record went from 168 bytes to 120.
const _: () = assert!(std::mem::size_of::<Cell>() <= 120);

#[derive(Default)]
pub(crate) struct State {
    life: Life,
    /// The exit sequence has taken the relations: nothing may be added to them any more.
    pub(crate) finished: bool,
    /// The exit sequence has run to its end: waiters are told at once.
    done: bool,
    /// The process is on its way out without an exit reason yet: a gen_server has decided to
    /// stop (a handler returned a stop, or panicked) and runs its `terminate`, or the process is
    /// unwinding from a panic. A reply token it drops now is followed by its exit reason.
    pub(crate) stopping: bool,
    pub(crate) trap_exit: bool,
    /// What runs in the process, as a layer above the core tagged it (a gen_server, its server
    /// type, for typed look-ups). The core stores it and never reads it.
    pub(crate) tag: Option<Tag>,
    /// Boxed and allocated on first use: most processes never link, monitor, get waited for or
    /// take a name, and an idle process should stay small.
    pub(crate) relations: Option<Box<Relations>>,
}

/// Before a process has an exit reason it needs the handle that aborts its task (to kill it);
/// once it has one it never needs the handle again. One field holds either, which keeps the
/// process record inside a smaller allocation.
enum Life {
    Running(Option<AbortHandle>),
    /// Set once; the first reason recorded is the one the process exits with.
    Exiting(ExitReason),
}

impl Default for Life {
    fn default() -> Self {
        Life::Running(None)
    }
}

#[derive(Default)]
pub(crate) struct Relations {
    pub(crate) name: Option<Arc<str>>,
    /// The process that started this one linked to it as a gen_server (OTP's parent).
    pub(crate) parent: Option<Pid>,
    pub(crate) links: HashSet<Pid>,
    /// Monitors other processes hold on this one: (reference, watcher). Keyed by both, because
    /// references made on different nodes may be equal.
    pub(crate) monitored_by: HashSet<(MonitorRef, Pid)>,
    /// Monitors this process holds: reference → watched process.
    pub(crate) monitoring: HashMap<MonitorRef, Pid>,
    /// Who waits for the exit. Waiters that gave up are pruned whenever the vector is full, so it
    /// holds about twice the waiters still waiting.
    pub(crate) waiters: Vec<oneshot::Sender<ExitReason>>,
    /// Names this process keeps for the processes it starts (a supervisor's named children).
    pub(crate) kept: Vec<Arc<str>>,
    /// The process this one is blocked on: stopping it, or waiting for its `init`.
    pub(crate) waiting_on: Option<Pid>,
    /// The context of the request this process is serving, as a layer above gave it (the
    /// core stores it and never reads it); `Activity::serving` says whether there is one.
    pub(crate) serving: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl State {
    pub(crate) fn relations(&mut self) -> &mut Relations {
        self.relations.get_or_insert_default()
    }

    pub(crate) fn relations_ref(&self) -> Option<&Relations> {
        self.relations.as_deref()
    }

    /// The exit reason, once the process has one.
    pub(crate) fn exit(&self) -> Option<&ExitReason> {
        match &self.life {
            Life::Running(_) => None,
            Life::Exiting(reason) => Some(reason),
        }
    }

    /// Whether the process is on its way out: it has an exit reason, or a gen_server has decided
    /// to stop.
    pub(crate) fn leaving(&self) -> bool {
        self.stopping || self.exit().is_some()
    }

    /// Records `reason` unless the process already has one; `Some` with the task's abort handle
    /// (if it was stored yet) when this was the first reason.
    // Inline: a process task (built in the user's crate) hands its reason over here; called, the
    // reason goes through memory in pieces that stall the copy reading them back.
    #[inline]
    pub(crate) fn set_exit(&mut self, reason: ExitReason) -> Option<Option<AbortHandle>> {
        match &mut self.life {
            Life::Exiting(_) => None,
            Life::Running(abort) => {
                let abort = abort.take();
                self.life = Life::Exiting(reason);
                Some(abort)
            }
        }
    }

    /// The registered name, if any.
    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.relations_ref()?.name.as_ref()
    }
}

impl Cell {
    /// Pushes a message into the mailbox (see [`Mailbox::push`]).
    #[inline]
    pub(crate) fn push(&self, message: Message, push: Push) -> Result<(), Refused> {
        self.mailbox
            .push(message)
            .or_else(|message| self.mailbox.push_slow(message, push, &self.activity))
            .map_err(|message| self.mailbox.refused(message))
    }

    /// Bounds the mailbox; for a process not yet running.
    pub(crate) fn set_limit(&self, limit: MailboxLimit) {
        self.mailbox.set_limit(limit, self.pid, &self.activity);
    }

    /// Makes the process exit with `reason` at its next suspension point, unless it already has a
    /// reason.
    pub(crate) fn kill(&self, reason: ExitReason) {
        let abort = lock(&self.state).set_exit(reason).flatten();
        if let Some(abort) = abort {
            abort.abort();
        }
    }

    /// Resolves with the exit reason once the exit sequence has run to its end.
    pub(crate) async fn exited(&self) -> ExitReason {
        let waiter = {
            let mut state = lock(&self.state);
            if state.done {
                return state.exit().cloned().unwrap_or(ExitReason::Killed);
            }
            let (tx, rx) = oneshot::channel();
            let waiters = &mut state.relations().waiters;
            if waiters.len() == waiters.capacity() {
                waiters.retain(|waiter| !waiter.is_closed());
            }
            waiters.push(tx);
            rx
        };
        waiter.await.unwrap_or(ExitReason::Killed)
    }

    /// The exit sequence (see the module docs); step 1 has dropped the process's future already.
    pub(crate) fn finish(&self) {
        let (reason, relations) = {
            let mut state = lock(&self.state);
            // Killed by the runtime itself if nothing recorded a reason (this also drops the abort
            // handle, which a finished task no longer needs).
            state.set_exit(ExitReason::Killed);
            let reason = state.exit().cloned().unwrap_or(ExitReason::Killed);
            state.finished = true;
            (reason, state.relations.take())
        };
        let mut relations = relations.map(|relations| *relations);

        let mut closed = self.mailbox.close();
        if !closed.is_empty() {
            for message in closed.messages() {
                drop_quietly(message, "a message left in an exiting process's mailbox");
            }
        }

        let name = relations
            .as_mut()
            .and_then(|relations| relations.name.take());
        if let Some(name) = &name {
            registry::release(name, self.pid);
        }
        if let Some(relations) = relations.as_mut().filter(|r| !r.kept.is_empty()) {
            registry::release_kept(self.pid, std::mem::take(&mut relations.kept), &reason);
        }
        // Where a panic happened, kept from the panic hook the node installs (which then prints
        // nothing itself): this event is the one report of a crash.
        let site = crate::unwind::crash_site(self.pid, &reason);
        match &reason {
            ExitReason::Panic(_) | ExitReason::Error(_) => {
                tracing::warn!(
                    pid = %self.pid,
                    name = name.as_deref(),
                    %reason,
                    location = site.as_ref().and_then(|site| site.location()).map(tracing::field::display),
                    backtrace = site.as_ref().and_then(|site| site.backtrace()).map(tracing::field::display),
                    "process crashed"
                );
            }
            _ => {
                tracing::debug!(pid = %self.pid, name = name.as_deref(), %reason, "process exited")
            }
        }

        let mut waiters = None;
        if let Some(mut relations) = relations {
            waiters = Some(std::mem::take(&mut relations.waiters));
            link::notify_exit(self.pid, &reason, relations);
        }
        for watch in closed.watchers().iter().filter_map(Weak::upgrade) {
            watch.callee_exited();
        }
        // Waiters that came after step 1 are in relations made afresh since.
        let late = {
            let mut state = lock(&self.state);
            state.done = true;
            state.relations.take()
        };
        // Only now does the record leave the table for its tombstone: until here, whoever looks
        // the pid up finds the record (finished: no messages, links, monitors or names any
        // more) and, to learn the exit reason, waits for this end instead of reading a tombstone
        // while links and monitors are still being told.
        table().remove(self.pid, reason.clone());
        let late = late.map(|relations| relations.waiters);
        for waiter in waiters.into_iter().chain(late).flatten() {
            let _ = waiter.send(reason.clone());
        }
    }
}

/// Records, while it lives, that the current process is blocked until `target` acts (exits, or
/// finishes its `init`), so that a wait closing a cycle of such waits can fail at once instead of
/// hanging forever.
pub(crate) struct WaitingOn {
    me: Option<Arc<Cell>>,
    target: Pid,
}

/// How far a chain of waits is followed before giving up looking for a cycle.
const WAIT_CHAIN_LIMIT: usize = 64;

impl WaitingOn {
    pub(crate) fn new(target: Pid) -> Self {
        let me = self_pid().and_then(|pid| table().get(pid));
        if let Some(me) = &me {
            lock(&me.state).relations().waiting_on = Some(target);
        }
        WaitingOn { me, target }
    }

    /// The processes of a cycle of waits from the current process through `target` back to it,
    /// if there is one. Each side records its own wait before looking at the others', so of two
    /// processes starting to wait for each other at the same time at least one sees the cycle.
    pub(crate) fn cycle(&self) -> Option<Vec<Pid>> {
        let me = self.me.as_ref()?.pid;
        let waits_on =
            |pid| table().with(pid, |cell| lock(&cell.state).relations_ref()?.waiting_on);
        // Walked once to find a cycle, which is rare, and again to name it only then.
        let mut next = self.target;
        let mut hops = 0;
        while next != me {
            hops += 1;
            if hops > WAIT_CHAIN_LIMIT {
                return None;
            }
            next = waits_on(next).flatten()?;
        }
        let mut cycle = vec![me];
        let mut next = self.target;
        while next != me && cycle.len() <= WAIT_CHAIN_LIMIT {
            cycle.push(next);
            next = waits_on(next).flatten()?;
        }
        Some(cycle)
    }
}

impl Drop for WaitingOn {
    fn drop(&mut self) {
        if let Some(me) = &self.me {
            if let Some(relations) = lock(&me.state).relations.as_mut() {
                if relations.waiting_on == Some(self.target) {
                    relations.waiting_on = None;
                }
            }
        }
    }
}

/// Watches a call's reply slot from the process running this code, until it exits (a reply token
/// it may hand to another process: see the mailbox).
pub(crate) fn watch_here(watch: Weak<dyn ExitWatch>) {
    if let Some(pid) = self_pid() {
        table().with(pid, |cell| cell.mailbox.watch(watch));
    }
}

/// Marks the process running this code as stopping (see [`State::stopping`]).
pub(crate) fn mark_stopping() {
    if let Some(pid) = self_pid() {
        table().with(pid, |cell| lock(&cell.state).stopping = true);
    }
}

/// Spawns `f` as a new process and returns its pid.
///
/// `f` receives the new process's [`Context`] (its pid and mailbox) and runs inside the new
/// process; pass arguments by capturing them. The process exits when the future `f` returns
/// finishes, with the reason its output stands for (see [`ProcessOutput`]): `()` is
/// [`ExitReason::Normal`]. A panic inside the process is caught and becomes its exit reason
/// ([`ExitReason::Panic`]); it affects no other process unless linked.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// async fn greeter(mut ctx: ferrotp::Context, greeting: &'static str) {
///     let name: String = ctx.receive().await;
///     println!("{greeting}, {name}!");
/// }
///
/// let pid = ferrotp::spawn(|ctx| greeter(ctx, "Hello"));
/// ferrotp::send(pid, String::from("Joe"));
/// assert_eq!(ferrotp::wait(pid).await, ferrotp::ExitReason::Normal);
/// # }
/// ```
///
/// # Panics
///
/// Panics if called outside a Tokio runtime, as `tokio::spawn` does.
pub fn spawn<F, Fut>(f: F) -> Pid
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ProcessOutput,
{
    start(f, |_| {}).pid
}

/// Options for [`spawn_opt`] (Erlang's `spawn_opt`): what a process can be given at its start
/// beyond its function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpawnOpts {
    /// The mailbox's limit; `None` (the default) for an unbounded mailbox, as in OTP.
    pub mailbox: Option<MailboxLimit>,
}

impl SpawnOpts {
    /// The defaults: an unbounded mailbox.
    pub fn new() -> Self {
        SpawnOpts::default()
    }

    /// Bounds the process's mailbox (see [`MailboxLimit`] and [`Overflow`](crate::Overflow)).
    #[must_use]
    pub fn mailbox(mut self, limit: MailboxLimit) -> Self {
        self.mailbox = Some(limit);
        self
    }
}

/// [`spawn`] with options: a bounded mailbox, for one.
///
/// The options take effect before the process runs, so no message ever finds it without them.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::num::NonZeroUsize;
/// use ferrotp::{MailboxLimit, Overflow, SpawnOpts};
///
/// let limit = MailboxLimit::new(NonZeroUsize::new(2).unwrap(), Overflow::DropOldest);
/// let pid = ferrotp::spawn_opt(SpawnOpts::new().mailbox(limit), |mut ctx| async move {
///     ctx.receive::<()>().await;
/// });
/// for n in 1..=5_u32 {
///     ferrotp::send(pid, n);
/// }
/// let info = ferrotp::process_info(pid).unwrap();
/// assert_eq!((info.mailbox_len, info.mailbox_dropped), (2, 3));
/// # }
/// ```
///
/// # Panics
///
/// Panics if called outside a Tokio runtime, as `tokio::spawn` does.
pub fn spawn_opt<F, Fut>(opts: SpawnOpts, f: F) -> Pid
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ProcessOutput,
{
    let SpawnOpts { mailbox } = opts;
    start(f, |cell| {
        if let Some(limit) = mailbox {
            cell.set_limit(limit);
        }
    })
    .pid
}

/// Spawns `f` as a new process and returns a handle that can wait for the value `f` returns.
///
/// [`ProcessHandle::join`] gives the function's return
/// value, or the exit reason when the process ended without returning (a panic, a kill, an exit
/// signal). Returning a value is a [`Normal`](ExitReason::Normal) exit whatever the value is; use
/// [`spawn`] for a process whose `Err` return should be its exit reason.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let handle = ferrotp::spawn_handle(|_ctx| async { 6 * 7 });
/// assert_eq!(handle.join().await, Ok(42));
///
/// let crashing = ferrotp::spawn_handle(|_ctx| async { panic!("boom") });
/// assert_eq!(crashing.join().await, Err::<(), _>(ferrotp::ExitReason::Panic("boom".into())));
/// # }
/// ```
///
/// # Panics
///
/// Panics if called outside a Tokio runtime.
pub fn spawn_handle<F, Fut, T>(f: F) -> ProcessHandle<T>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let cell = start(
        move |ctx| async move {
            let _ = tx.send(f(ctx).await);
        },
        |_| {},
    );
    ProcessHandle { cell, result: rx }
}

/// A handle to a process started with [`spawn_handle`], for its return value.
#[derive(Debug)]
pub struct ProcessHandle<T> {
    cell: Arc<Cell>,
    result: oneshot::Receiver<T>,
}

impl<T> ProcessHandle<T> {
    /// The process's pid.
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// Waits for the process to end: it has left the process table, released its name and told
    /// its links and monitors, as for [`wait`].
    ///
    /// # Errors
    ///
    /// The exit reason when the process ended without its function returning a value.
    pub async fn join(self) -> Result<T, ExitReason> {
        let ProcessHandle { cell, result } = self;
        let value = result.await;
        let reason = cell.exited().await;
        value.map_err(|_| reason)
    }
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Process({})", self.pid)
    }
}

/// Creates a process, lets `relate` set up links or monitors before it can run (so that it cannot
/// exit unobserved), then starts its task.
pub(crate) fn start<F, Fut>(f: F, relate: impl FnOnce(&Arc<Cell>)) -> Arc<Cell>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ProcessOutput,
{
    match try_start(f, |cell| {
        relate(cell);
        Ok::<(), std::convert::Infallible>(())
    }) {
        Ok(cell) => cell,
        Err(never) => match never {},
    }
}

/// [`start`] with a `relate` that can refuse (a name already taken): the process is then removed
/// again before it ever ran, and `f` is dropped. `relate` must undo what it did before failing.
pub(crate) fn try_start<F, Fut, E>(
    f: F,
    relate: impl FnOnce(&Arc<Cell>) -> Result<(), E>,
) -> Result<Arc<Cell>, E>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: ProcessOutput,
{
    let cell = table().insert(|pid| {
        Arc::new(Cell {
            pid,
            mailbox: Mailbox::default(),
            state: Mutex::new(State::default()),
            activity: Activity::default(),
        })
    });
    if let Err(error) = relate(&cell) {
        {
            let mut state = lock(&cell.state);
            state.set_exit(ExitReason::NoProc);
            state.finished = true;
            state.done = true;
        }
        table().remove(cell.pid, ExitReason::NoProc);
        drop_quietly(f, "a process function that never ran");
        return Err(error);
    }
    tracing::debug!(pid = %cell.pid, "process spawned");
    let task = tokio::spawn(ProcessTask::new(cell.clone(), f));
    let abort = task.abort_handle();
    let mut state = lock(&cell.state);
    match &mut state.life {
        // Killed before the abort handle was stored: abort now (harmless if it already finished).
        Life::Exiting(_) => {
            drop(state);
            abort.abort();
        }
        Life::Running(slot) => {
            *slot = Some(abort);
            drop(state);
        }
    }
    Ok(cell)
}

/// Sends `message` to `pid`.
///
/// Any `Send + 'static` value is a message. Messages from one process to another arrive in the
/// order they were sent. Sending to a process that has exited is not an error (as in Erlang): the
/// message is dropped, and a `debug` event says so.
///
/// `send` never waits and never fails. To a bounded mailbox that is full (see
/// [`Overflow`](crate::Overflow)) it does what the policy does to a sender that cannot be told:
/// under drop-oldest an older message is dropped to make room (or this one, if every queued
/// message is a call or a signal, or already in the process's hands); under any other policy this
/// message is dropped. Either way the loss is counted in
/// [`ProcessInfo::mailbox_dropped`](crate::ProcessInfo::mailbox_dropped) and a `debug` event
/// says so. Use [`try_send`](crate::try_send) to learn of a full mailbox, or
/// [`send_wait`](crate::send_wait) to wait for room.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pid = ferrotp::spawn(|mut ctx| async move {
///     let n: u64 = ctx.receive().await;
///     assert_eq!(n, 7);
/// });
/// ferrotp::send(pid, 7_u64);
/// # ferrotp::wait(pid).await;
/// # }
/// ```
pub fn send<M: Any + Send>(pid: Pid, message: M) {
    deliver(pid, Message::new(message));
}

/// Sends a signal, which a bounded mailbox never turns away (see [`Push::Signal`]), to `pid` from
/// the code running now; `false` if there is no such live process here.
pub(crate) fn signal(pid: Pid, message: Message) -> bool {
    deliver_as(pid, message, Push::Signal)
}

thread_local! {
    /// The record of the server this thread last called or cast to. A client usually talks to
    /// one server many times in a row; holding its record saves the table slot's lock (two atomic
    /// read-modify-writes, on a line every sender to that slot shares) on each message.
    static LAST_SERVER: RefCell<Option<Arc<Cell>>> = const { RefCell::new(None) };
}

/// Why a message did not reach a server; it comes back, so that a call by name can try again.
pub(crate) enum Unsent {
    /// No such process.
    NoProc(Message),
    /// The process is exiting: its mailbox is closed.
    Exiting(Message),
    /// The process's mailbox is full and its policy turned the message away; `wait` when the
    /// sender may wait for room (see [`Refused::Full`]).
    Full { message: Message, wait: bool },
}

impl Unsent {
    fn drop_quietly(self, pid: Pid, what: &'static str) {
        let message = self.into_message();
        tracing::debug!(%pid, message_type = message.type_name(), "{what} to a dead process dropped");
        drop_quietly(message, "a message to a dead process");
    }

    /// The message that was not sent.
    pub(crate) fn into_message(self) -> Message {
        match self {
            Unsent::NoProc(message) | Unsent::Exiting(message) | Unsent::Full { message, .. } => {
                message
            }
        }
    }
}

impl From<Refused> for Unsent {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Closed(message) => Unsent::Exiting(message),
            Refused::Full { message, wait } => Unsent::Full { message, wait },
        }
    }
}

/// Pushes a call or cast onto server `pid`'s mailbox.
///
/// A cached record is always right about its own pid: pids are never reused, and a process that
/// has exited has a closed mailbox, so a stale record refuses the message as the table would.
///
/// `push` is [`Push::CallOrWait`] for a call, [`Push::Send`] for a cast (to another node, the
/// connection carries the message and the node there decides).
pub(crate) fn push_to_server(pid: Pid, message: Message, push: Push) -> Result<(), Unsent> {
    // Before the cache: a thread may run code of several nodes, and a record cached for one
    // must not let another node's code skip its connection.
    let here = current_node();
    if pid.node() != here {
        let upper = Box::new(remote::ToServer {
            to: pid,
            name: None,
            message,
        });
        remote::route(here, remote::Signal::Upper(upper));
        return Ok(());
    }
    push_to_server_here(pid, message, push)
}

/// [`push_to_server`] to a process of a node hosted here.
// Always: the slow path for a bounded mailbox made it just big enough for the compiler to stop
// inlining it into `push_to_server`, which cost every call a function boundary.
#[inline(always)]
pub(crate) fn push_to_server_here(pid: Pid, message: Message, push: Push) -> Result<(), Unsent> {
    let mut parcel = Some(message);
    let cached = LAST_SERVER.try_with(|last| match (last.borrow().as_ref(), parcel.take()) {
        (Some(cell), Some(message)) if cell.pid == pid => Some(cell.mailbox.push(message)),
        (_, unsent) => {
            parcel = unsent;
            None
        }
    });
    let pushed = match (cached, parcel) {
        (Ok(Some(pushed)), _) => pushed,
        (_, Some(message)) => {
            let Some(cell) = table().get(pid) else {
                return Err(Unsent::NoProc(message));
            };
            let pushed = cell.mailbox.push(message);
            // The record replaced is dropped here, outside the cell's borrow.
            let _previous = LAST_SERVER.try_with(|last| last.replace(Some(cell)));
            pushed
        }
        (_, None) => unreachable!("the message is either pushed or still here"),
    };
    match pushed {
        Ok(()) => Ok(()),
        Err(message) => push_here_slow(pid, message, push),
    }
}

/// What the fast push to `pid` handed back (its mailbox is closed or bounded): pushed as `push`
/// says, or why not. Kept off the send path, which stays as it was before mailboxes had bounds.
#[cold]
#[inline(never)]
fn push_here_slow(pid: Pid, message: Message, push: Push) -> Result<(), Unsent> {
    match table().get(pid) {
        Some(cell) => cell.push(message, push).map_err(Unsent::from),
        // Closed, and gone from the table since.
        None => Err(Unsent::Exiting(message)),
    }
}

/// Casts to server `pid` (typed or dynamic): as [`push_to_server`], with a dropped cast logged.
pub(crate) fn cast_to_server(pid: Pid, message: Message) {
    // A cast cannot be refused (its sender is not told): a full mailbox deals with it.
    if let Err(unsent) = push_to_server(pid, message, Push::Send) {
        unsent.drop_quietly(pid, "cast");
    }
}

/// [`cast_to_server`] to a process the caller knows to be of a node hosted here.
#[inline]
pub(crate) fn cast_to_server_here(pid: Pid, message: Message) {
    if let Err(unsent) = push_to_server_here(pid, message, Push::Send) {
        unsent.drop_quietly(pid, "cast");
    }
}

/// Sends `message` to `pid` from the code running now, as [`send`] does: into its mailbox if it
/// lives on the current node (`false` if there is no such live process), otherwise to its node.
#[inline]
pub(crate) fn deliver(pid: Pid, message: Message) -> bool {
    deliver_as(pid, message, Push::Send)
}

/// [`deliver`] as `push`, [`Push::Send`] or [`Push::Signal`]: nobody is told of a full mailbox
/// here.
#[inline]
pub(crate) fn deliver_as(pid: Pid, message: Message, push: Push) -> bool {
    let here = current_node();
    if pid.node() != here {
        let from = self_pid().unwrap_or(Pid::root(here));
        remote::route(
            here,
            remote::Signal::Send {
                from,
                to: pid,
                message,
            },
        );
        return true;
    }
    deliver_local_as(pid, message, push)
}

/// Pushes a message into the mailbox of `pid`, a process of a node hosted here, as [`send`]
/// does; `false` if there is no such live process.
#[inline]
pub(crate) fn deliver_local(pid: Pid, message: Message) -> bool {
    deliver_local_as(pid, message, Push::Send)
}

/// [`deliver_local`] as `push` (see [`deliver_as`]).
#[inline]
pub(crate) fn deliver_local_as(pid: Pid, message: Message, push: Push) -> bool {
    // Through `with`, not `get`: no reference count traffic on the send path.
    let mut parcel = Some(message);
    let refused = table()
        .with(pid, |cell| cell.mailbox.push(parcel.take()?).err())
        .flatten();
    let unsent = match (refused, parcel) {
        (Some(message), _) => match push_here_slow(pid, message, push) {
            Ok(()) => return true,
            Err(unsent) => unsent,
        },
        (None, Some(message)) => Unsent::NoProc(message),
        (None, None) => return true,
    };
    unsent.drop_quietly(pid, "message");
    false
}

/// Waits for `pid` to exit and returns its exit reason; works inside and outside processes.
///
/// A process that has already exited gives its exit reason at once, as long as the runtime still
/// remembers it (until its table slot is reused by another process); a pid the runtime knows
/// nothing about gives [`ExitReason::NoProc`]. To be sure to get the reason of a process you spawn,
/// spawn it with [`spawn_handle`] and [`join`](ProcessHandle::join) it.
///
/// A pid of a node in another OS process is waited for with a monitor, from a process on the
/// current node: its exit reason, or [`ExitReason::NoConnection`] if its node cannot be reached
/// (as from a node that is not distributed). A pid of another node in this OS process is
/// waited for directly, as a local one.
pub async fn wait(pid: Pid) -> ExitReason {
    if node_core::core(pid.node()).is_none() {
        // Known only over there: a monitor from a process of this node asks it.
        let watcher = spawn_handle(move |mut ctx| async move {
            ctx.monitor(pid);
            ctx.receive::<link::Down>().await.reason
        });
        return watcher.join().await.unwrap_or_else(|reason| reason);
    }
    match table().get(pid) {
        Some(cell) => cell.exited().await,
        None => table().tombstone(pid).unwrap_or(ExitReason::NoProc),
    }
}

/// Whether `pid` is a live process of the node the calling code runs on (for a pid of another
/// node, always `false`: only its node knows; monitor it to hear of its exit).
pub fn is_alive(pid: Pid) -> bool {
    pid.is_local() && alive_here(pid)
}

/// Whether `pid`, a process of a node hosted here (whichever node the calling code runs on), is
/// live.
pub(crate) fn alive_here(pid: Pid) -> bool {
    table()
        .with(pid, |cell| !lock(&cell.state).finished)
        .unwrap_or(false)
}
