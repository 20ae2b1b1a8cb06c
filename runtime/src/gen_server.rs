//! Generic servers: a process that owns a state and answers calls, casts and info messages
//! through handlers (OTP's `gen_server`).
//!
//! Write an ordinary `impl` block and put `#[gen_server]` on it; see the
//! [`gen_server`](macro@crate::gen_server) attribute for what it accepts.
//!
//! | client side | server side | OTP |
//! | --- | --- | --- |
//! | [`GenServer::start`], [`start_link`](GenServer::start_link), [`Start::name`] | `init(arg)` | `gen_server:start/start_link` → `init/1` |
//! | `server.echo(x).await` (generated, typed) | `#[install("echo")] async fn echo(...)` | `call` → `handle_call/3` |
//! | `server.cast_echo(x)` (generated, typed) | the same handler; its reply is dropped | `cast` → `handle_cast/2` |
//! | [`call`](crate::call) / [`cast`](crate::cast) with a name and a serde body | the same handler, found by name | |
//! | [`send`](crate::send) of any value | `#[info] async fn on_x(&mut self, x: X)` | `!` → `handle_info/2` |
//! | [`ServerRef::stop`] | `terminate(&reason)`, then exit | `gen_server:stop/3` → `terminate/2` |
//! | [`ServerRef::named`]`("kv").get(k).await` | the server registered as `"kv"` at each call | `gen_server:call(kv, ...)` |
//!
//! Defaults, as OTP's: an info message no `#[info]` handler takes is logged at `warn` and dropped;
//! a server does not trap exits unless its `init` turns trapping on; when it does, an exit signal
//! from the process that started it with `start_link` runs `terminate` and stops the server with
//! the signal's reason. `terminate` runs when a handler returns a stop, when a handler panics (with
//! the panic as the reason, which the server then exits with), on [`ServerRef::stop`] (a
//! supervisor's shutdown) and on such a trapped exit; it does not run when the server is killed. A
//! panic inside `terminate`, or in the `Drop` of the server's state, is logged and changes nothing.

use std::{
    any::{TypeId, type_name},
    fmt,
    future::{Future, IntoFuture},
    hash::{Hash, Hasher},
    marker::PhantomData,
    ops::Deref,
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::calls::{
    context::{self, WithCtx},
    trace,
};
use crate::{
    bound::MailboxLimit,
    call_timer::CallTimer,
    context::Context,
    dispatch,
    exit::ExitReason,
    link::{self, Exit},
    mailbox::{Push, lock},
    message::Message,
    pid::Pid,
    process::{self, Cell, Tag},
    registry,
    request::{CallError, gone},
    table::table,
    task::self_pid,
    unwind::{CatchUnwind, drop_quietly},
};

/// A type that runs as a generic server. Implemented by `#[gen_server]`; not meant to be
/// implemented by hand.
///
/// The state is an ordinary struct; its `impl` block, under the attribute, holds `init` and the
/// handlers, and the attribute writes the rest: the receive loop, and a typed client method for
/// each handler on the [`ServerRef`] that [`start`](GenServer::start) returns.
///
/// ```
/// use ferrotp::prelude::*;
///
/// struct Counter {
///     count: u64,
/// }
///
/// /// An info message: any value sent to the server's pid.
/// struct Reset;
///
/// #[gen_server]
/// impl Counter {
///     async fn init(start: u64) -> Self {
///         Counter { count: start }
///     }
///
///     #[install("add")]
///     async fn add(&mut self, n: u64) -> u64 {
///         self.count += n;
///         self.count
///     }
///
///     #[info]
///     async fn on_reset(&mut self, _: Reset) {
///         self.count = 0;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let counter = Counter::start(10).await.unwrap();
/// assert_eq!(counter.add(5).await, Ok(15)); // a typed call
/// counter.cast_add(1); // a cast: the handler runs, its reply is dropped
/// let total: u64 = call(counter.pid(), "add", 0).await.unwrap(); // by name, with a serde body
/// assert_eq!(total, 16);
/// send(counter.pid(), Reset); // taken by the #[info] handler for its type
/// assert_eq!(counter.add(0).await, Ok(0));
/// assert_eq!(Counter::HANDLERS, ["add"]);
/// counter.stop(ExitReason::Normal).await.unwrap();
/// # }
/// ```
pub trait GenServer: Sized + Send + 'static {
    /// What `init` takes.
    type Arg: Send + 'static;
    /// What `init` fails with.
    type InitError: fmt::Display + Send + 'static;
    /// The generated typed client, reached through [`ServerRef`]'s `Deref`.
    type Client: ServerClient;
    /// The names of the installed handlers, as dynamic calls use them.
    const HANDLERS: &'static [&'static str];

    /// The periods of the `#[background]` methods, in their order.
    #[doc(hidden)]
    const BACKGROUND: &'static [Duration] = &[];

    #[doc(hidden)]
    fn __init(
        arg: Self::Arg,
        ctx: &mut Context,
    ) -> impl Future<Output = Result<Self, Self::InitError>> + Send;

    #[doc(hidden)]
    fn __dispatch(
        &mut self,
        message: Message,
        ctx: &mut Context,
        tasks: &mut Tasks,
    ) -> impl Future<Output = Dispatched> + Send;

    /// What `message` is, for the span it is handled in (see [`trace`](crate::trace)).
    #[doc(hidden)]
    fn __describe(message: &Message) -> Described {
        Described::other(message)
    }

    /// Whether `message` is a call whose caller gave up on it (see `context`): not run.
    #[doc(hidden)]
    fn __gave_up(message: &Message) -> bool {
        let _ = message;
        false
    }

    /// The `#[on_error]` hook, or what a server without one does: an error goes on, a panic
    /// crashes.
    #[doc(hidden)]
    fn __on_error(
        &mut self,
        failure: Failure,
        ctx: &mut Context,
    ) -> impl Future<Output = OnError> + Send {
        let _ = ctx;
        std::future::ready(on_error::__default_on_error(&failure))
    }

    #[doc(hidden)]
    fn __terminate(
        &mut self,
        reason: &ExitReason,
        ctx: &mut Context,
    ) -> impl Future<Output = ()> + Send;

    /// Starts the server; awaiting the returned [`Start`] runs `init` in the new process and
    /// returns once it has finished.
    fn start(arg: Self::Arg) -> Start<Self> {
        Start {
            arg,
            name: None,
            keeper: None,
            link: false,
            mailbox: None,
        }
    }

    /// Starts the server linked to the calling process (the way a supervisor starts children).
    /// Outside any process there is nothing to link to, and the start fails with
    /// [`StartError::NotInProcess`].
    ///
    /// ```
    /// # use ferrotp::prelude::*;
    /// # struct Worker;
    /// # #[gen_server]
    /// # impl Worker {
    /// #     async fn init(_: ()) -> Self { Worker }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(Worker::start_link(()).await, Err(StartError::NotInProcess));
    ///
    /// let parent = spawn_handle(|ctx| async move {
    ///     let worker = Worker::start_link(()).await.unwrap();
    ///     process_info(worker.pid()).unwrap().links == [ctx.pid()]
    /// });
    /// assert_eq!(parent.join().await, Ok(true));
    /// # }
    /// ```
    fn start_link(arg: Self::Arg) -> Start<Self> {
        Self::start(arg).link()
    }
}

/// The typed client a `#[gen_server]` generates: an address (a pid, or a registered name) with one
/// method per handler. Reached through a [`ServerRef`] or a [`NamedRef`].
pub trait ServerClient: Copy + Send + Sync + 'static {
    #[doc(hidden)]
    fn __new(to: Addr) -> Self;
    #[doc(hidden)]
    fn __addr(&self) -> Addr;
}

/// What a server did with one message.
#[doc(hidden)]
#[derive(Debug)]
pub enum Dispatched {
    Continue,
    Stop(ExitReason),
    Unexpected(Message),
}

/// Why a server did not start.
///
/// ```
/// use ferrotp::prelude::*;
///
/// struct Listener;
///
/// #[gen_server]
/// impl Listener {
///     async fn init(port: u16) -> Result<Self, String> {
///         match port {
///             0 => Err("port 0 is not a port".to_string()),
///             _ => Ok(Listener),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(Listener::start(0).await, Err(StartError::Init("port 0 is not a port".to_string())));
///
/// let first = Listener::start(80).name("doc-listener").await.unwrap();
/// assert_eq!(
///     Listener::start(81).name("doc-listener").await,
///     Err(StartError::AlreadyStarted { name: "doc-listener".into(), pid: first.pid() }),
/// );
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError<E> {
    /// `init` returned `Err(e)`; the server exited with [`ExitReason::Error`].
    #[error("init failed: {0}")]
    Init(E),
    /// The server exited before `init` finished (it panicked or was killed).
    #[error("the server exited during init: {0}")]
    Exited(ExitReason),
    /// The name asked for belongs to another process (OTP's `already_started`).
    #[error("the name `{name}` is already registered to {pid}")]
    AlreadyStarted {
        /// The name.
        name: Arc<str>,
        /// Its owner.
        pid: Pid,
    },
    /// `start_link` was called outside any process, so there is nothing to link to.
    #[error("start_link needs a calling process to link to; use start outside processes")]
    NotInProcess,
}

/// Why a typed reference could not be made.
///
/// ```
/// use ferrotp::prelude::*;
///
/// struct Cache;
/// #[gen_server]
/// impl Cache {
///     async fn init(_: ()) -> Self { Cache }
/// }
///
/// struct Db;
/// #[gen_server]
/// impl Db {
///     async fn init(_: ()) -> Self { Db }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(
///     ServerRef::<Cache>::lookup("doc-cache"),
///     Err(LookupError::NotRegistered("doc-cache".into())),
/// );
/// Db::start(()).name("doc-cache").await.unwrap();
/// assert!(matches!(ServerRef::<Cache>::lookup("doc-cache"), Err(LookupError::WrongType { .. })));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No process has the name.
    #[error("no process is registered as `{0}`")]
    NotRegistered(Arc<str>),
    /// The process is not alive.
    #[error("{0} is not alive")]
    NoProc(Pid),
    /// A supervisor has no child with this id (ids are not registered names).
    #[error("no child `{0}`")]
    NoChild(Arc<str>),
    /// A supervisor's child with this id is not running right now: stopped, or being restarted.
    #[error("child `{0}` is not running")]
    NotRunning(Arc<str>),
    /// The process asked (a supervisor) did not answer in time; it is alive but busy.
    #[error("{pid} did not answer within {timeout:?}")]
    Timeout {
        /// The process asked.
        pid: Pid,
        /// How long the lookup waited.
        timeout: std::time::Duration,
    },
    /// Asking the process (a supervisor) failed otherwise.
    #[error("the lookup failed: {0}")]
    Call(CallError),
    /// The process is not a server of the expected type.
    #[error("{pid} is not a `{expected}` server (it is {})", actual.unwrap_or("not a gen_server"))]
    WrongType {
        /// The process.
        pid: Pid,
        /// The server type asked for.
        expected: &'static str,
        /// What it runs, if it is a gen_server.
        actual: Option<&'static str>,
    },
}

/// The tag a server process carries in its record: which server type it runs, for typed look-ups.
fn server_type<S: 'static>() -> (TypeId, &'static str) {
    (TypeId::of::<S>(), type_name::<S>())
}

/// A server being started: set a name or a link, then `.await` it.
///
/// ```
/// # use ferrotp::prelude::*;
/// # struct Counter(u64);
/// # #[gen_server]
/// # impl Counter {
/// #     async fn init(start: u64) -> Result<Self, std::convert::Infallible> { Ok(Counter(start)) }
/// # }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let counter = Counter::start(0).name("doc-counter").await.unwrap();
/// assert_eq!(ServerRef::<Counter>::lookup("doc-counter"), Ok(counter));
/// # }
/// ```
#[must_use = "a server starts only when the Start is awaited"]
pub struct Start<S: GenServer> {
    arg: S::Arg,
    name: Option<Arc<str>>,
    /// Who keeps the name for the server's successor (its supervisor).
    keeper: Option<Pid>,
    link: bool,
    mailbox: Option<MailboxLimit>,
}

impl<S: GenServer> Start<S> {
    /// Registers the server under `name` before `init` runs; the start fails with
    /// [`StartError::AlreadyStarted`] if the name is taken.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// [`name`](Start::name) with a name already shared, kept by `keeper` across the server's
    /// exits (a supervisor starting its child).
    pub(crate) fn kept_name(mut self, name: Arc<str>, keeper: Option<Pid>) -> Self {
        self.name = Some(name);
        self.keeper = keeper;
        self
    }

    /// Links the server to the calling process.
    pub fn link(mut self) -> Self {
        self.link = true;
        self
    }

    /// Bounds the server's mailbox (unbounded by default, as in OTP): see
    /// [`Overflow`](crate::Overflow) for what a full mailbox does with casts, calls and
    /// messages. The server's system messages (a stop, its tasks finishing, background ticks) are
    /// signals and never meet the bound, so it can always be stopped and its tasks always end.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use ferrotp::prelude::*;
    /// use ferrotp::{MailboxLimit, Overflow};
    ///
    /// struct Sink;
    ///
    /// #[gen_server]
    /// impl Sink {
    ///     async fn init(_: ()) -> Self {
    ///         Sink
    ///     }
    ///
    ///     #[install("put")]
    ///     async fn put(&mut self, _item: u32) {}
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let limit = MailboxLimit::new(NonZeroUsize::new(100).unwrap(), Overflow::Block);
    /// let sink = Sink::start(()).mailbox(limit).await.unwrap();
    /// sink.put(1).await.unwrap();
    /// let info = ferrotp::process_info(sink.pid()).unwrap();
    /// assert_eq!(info.mailbox_limit, Some(limit));
    /// # }
    /// ```
    pub fn mailbox(mut self, limit: MailboxLimit) -> Self {
        self.mailbox = Some(limit);
        self
    }
}

impl<S: GenServer> IntoFuture for Start<S> {
    type Output = Result<ServerRef<S>, StartError<S::InitError>>;
    type IntoFuture = Starting<S>;

    /// Spawns the server process (`.await` calls this), so the process runs from here on; the
    /// returned future resolves once its `init` has finished.
    fn into_future(self) -> Starting<S> {
        let Start {
            arg,
            name,
            keeper,
            link,
            mailbox,
        } = self;
        let parent = match link {
            true => match self_pid() {
                Some(parent) => Some(parent),
                None => return Starting::failed(StartError::NotInProcess),
            },
            false => None,
        };
        let (ack, started) = oneshot::channel();
        let body = move |ctx| serve::<S>(ctx, arg, name.map(|name| (name, keeper)), parent, ack);
        let cell = match parent {
            Some(parent) => match link::start_linked(parent, body, mailbox) {
                Some(cell) => cell,
                None => return Starting::failed(StartError::NotInProcess),
            },
            None => process::start(body, |cell| {
                if let Some(limit) = mailbox {
                    cell.set_limit(limit);
                }
            }),
        };
        // A linked start is a parent starting its child (a supervisor, above all): it is blocked
        // on the child's `init` meanwhile, which a `stop` of the parent from that `init` must see.
        let _waiting = parent.map(|_| process::WaitingOn::new(cell.pid));
        Starting {
            state: Stage::Waiting {
                cell,
                started,
                _waiting,
            },
        }
    }
}

/// A server starting: resolves with its reference once its `init` has run, or with why it did
/// not start. What `.await` on a [`Start`] waits for; a named type (rather than a boxed future)
/// so that starting a server allocates nothing beyond the process itself.
#[must_use = "the server runs, but nothing learns whether its init succeeded unless this is awaited"]
pub struct Starting<S: GenServer> {
    state: Stage<S>,
}

type Ack<E> = Result<(), StartError<E>>;

type Exited = Pin<Box<dyn Future<Output = ExitReason> + Send>>;

enum Stage<S: GenServer> {
    Failed(StartError<S::InitError>),
    Waiting {
        cell: Arc<Cell>,
        started: oneshot::Receiver<Ack<S::InitError>>,
        /// A parent is blocked on the new server's `init` meanwhile.
        _waiting: Option<process::WaitingOn>,
    },
    /// The start failed: the error (or, when `init` ended without answering because it panicked
    /// or the process was killed, the exit reason) once the process has exited, so that whoever
    /// learns of the failure finds its name free and its pid gone.
    Exiting {
        error: Option<StartError<S::InitError>>,
        exited: Exited,
    },
    Done,
}

impl<S: GenServer> Starting<S> {
    fn failed(error: StartError<S::InitError>) -> Self {
        Starting {
            state: Stage::Failed(error),
        }
    }

    /// The new server's pid, once it is spawned (before its `init` has run).
    pub(crate) fn pid(&self) -> Option<Pid> {
        match &self.state {
            Stage::Waiting { cell, .. } => Some(cell.pid),
            _ => None,
        }
    }
}

// Nothing in a `Starting` is ever pinned in place (the boxed future is pinned on the heap), so
// moving it is fine whatever the init error type is.
impl<S: GenServer> Unpin for Starting<S> {}

impl<S: GenServer> Future for Starting<S> {
    type Output = Result<ServerRef<S>, StartError<S::InitError>>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            match &mut this.state {
                Stage::Waiting { cell, started, .. } => {
                    let error = match Pin::new(started).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(Ok(()))) => {
                            let pid = cell.pid;
                            this.state = Stage::Done;
                            return Poll::Ready(Ok(ServerRef::unchecked(pid)));
                        }
                        Poll::Ready(Ok(Err(error))) => Some(error),
                        Poll::Ready(Err(_)) => None,
                    };
                    let cell = cell.clone();
                    this.state = Stage::Exiting {
                        error,
                        exited: Box::pin(async move { cell.exited().await }),
                    };
                }
                Stage::Exiting { error, exited } => {
                    let reason = std::task::ready!(exited.as_mut().poll(cx));
                    let error = error.take().unwrap_or(StartError::Exited(reason));
                    this.state = Stage::Done;
                    return Poll::Ready(Err(error));
                }
                Stage::Failed(_) => {
                    return match std::mem::replace(&mut this.state, Stage::Done) {
                        Stage::Failed(error) => Poll::Ready(Err(error)),
                        _ => Poll::Pending,
                    };
                }
                // Polled after completion.
                Stage::Done => return Poll::Pending,
            }
        }
    }
}

impl<S: GenServer> fmt::Debug for Starting<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Starting<{}>", type_name::<S>())
    }
}

/// An orderly stop request, handled by the server loop itself (supervisors send it to their
/// gen_server children, so that `terminate` runs).
pub(crate) struct SystemStop(pub(crate) ExitReason);

/// The server process: name, init, the receive loop, terminate.
///
/// A plain function returning an `async` block, not an `async fn`: an `async fn` keeps its
/// arguments twice in its future (once as passed, once moved into the body), and this future is
/// part of every server process.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store the arguments twice"
)]
fn serve<S: GenServer>(
    mut ctx: Context,
    arg: S::Arg,
    name: Option<(Arc<str>, Option<Pid>)>,
    parent: Option<Pid>,
    ack: oneshot::Sender<Result<(), StartError<S::InitError>>>,
) -> impl Future<Output = ExitReason> + Send {
    // Before the async block, so that neither the name nor the parent is kept in every server's
    // future: the process record holds them.
    {
        let mut state = lock(&ctx.cell().state);
        state.tag = Some(Tag(server_type::<S>));
        if let Some(parent) = parent {
            // Linked already, so the relations exist: this allocates nothing.
            state.relations().parent = Some(parent);
        }
    }
    let mut ack = Some(ack);
    if let Some((name, keeper)) = name {
        if let Err(registry::RegisterError::NameTaken { name, pid }) =
            registry::register_kept(&name, ctx.pid(), keeper)
        {
            // The starter learns of the failure from the reply, not from an exit signal.
            if let Some(parent) = parent {
                ctx.unlink(parent);
            }
            if let Some(ack) = ack.take() {
                let _ = ack.send(Err(StartError::AlreadyStarted { name, pid }));
            }
        }
    }
    async move {
        // No acknowledgement left to send: the start already failed (the name was taken).
        let Some(ack) = ack else {
            return ExitReason::Normal;
        };
        let mut server = match S::__init(arg, &mut ctx).await {
            Ok(server) => server,
            Err(error) => {
                // The starter learns of the failure from the reply, not from an exit signal, and
                // only once this process has exited (its name released).
                if let Some(parent) = parent_of(&ctx) {
                    ctx.unlink(parent);
                }
                let reason = ExitReason::error(&error);
                let _ = ack.send(Err(StartError::Init(error)));
                return reason;
            }
        };
        let _ = ack.send(Ok(()));
        let mut tasks = Tasks::default();
        // From here on, the calls this server makes start a chain with it (see `context`).
        context::handling(&ctx.cell().activity);
        for (i, &period) in S::BACKGROUND.iter().enumerate() {
            tasks.every(period, ctx.pid(), i);
        }
        let reason = loop {
            let message =
                match system_message(ctx.receive_any().await, &ctx, &mut tasks, S::__gave_up) {
                    System::Message(message) => message,
                    System::Stop(reason) => break reason,
                    System::Handled => continue,
                };
            // A handler's panic stops the server with the panic as its reason, after `terminate`
            // (OTP's behaviour). The server is marked stopping before the handler's future, and
            // any reply token in it, is dropped, so that its caller waits for that reason.
            let handled = if trace::wanted() {
                // Boxed: the span would make every server's future bigger.
                traced::dispatch(&mut server, message, &mut ctx, &mut tasks).await
            } else {
                CatchUnwind::with_hook(
                    server.__dispatch(message, &mut ctx, &mut tasks),
                    process::mark_stopping,
                )
                .await
            };
            // The message is handled (answered, deferred, or it stops the server): calls made
            // from here on are no part of its chain.
            context::handled(ctx.cell());
            match handled {
                Ok(Dispatched::Continue) => {}
                Ok(Dispatched::Stop(reason)) => break reason,
                Ok(Dispatched::Unexpected(message)) => {
                    tracing::warn!(
                        pid = %ctx.pid(),
                        server = type_name::<S>(),
                        message_type = message.type_name(),
                        "unexpected message dropped (no #[info] handler takes it)"
                    );
                    drop_quietly(message, "an unexpected message");
                }
                Err(panic) => break ExitReason::Panic(panic),
            }
        };
        // The task handlers' work stops with the server, before `terminate`: the state it sees
        // is final. Marked stopping first, so that the callers of the tasks wait for the exit
        // reason rather than failing with `NoReply`.
        process::mark_stopping();
        drop_quietly(tasks, "a server's task handlers' work");
        if let Err(panic) = CatchUnwind::new(server.__terminate(&reason, &mut ctx)).await {
            tracing::error!(pid = %ctx.pid(), server = type_name::<S>(), %panic, %reason, "terminate panicked; the server exits with its reason");
        }
        // The state's `Drop` is user code: it does not change the reason either.
        drop_quietly(server, "a server's state");
        reason
    }
}

/// The messages the server loop handles itself: an orderly stop, (when the server traps exits)
/// an exit signal from the process that started it, a task handler's task that has finished,
/// and a call nobody waits for any more (`gave_up` tells, see `context`). Any other message
/// comes back for the handlers, a call's context taken off and entered.
///
/// A function of its own, taking the message by value, so that the loop never borrows a message
/// it then holds across the handler's await (a borrowed local stays in the future).
///
/// The message's type is asked once: each ask is a call through the message's vtable, and this
/// runs for every message a server takes.
fn system_message(
    message: Message,
    ctx: &Context,
    tasks: &mut Tasks,
    gave_up: fn(&Message) -> bool,
) -> System {
    let id = message.value_type_id();
    if id == TypeId::of::<WithCtx>() {
        return match message.downcast::<WithCtx>() {
            Ok(with) => match context::arrived(ctx.cell(), with) {
                Some(message) => unless_given_up(message, ctx, tasks, gave_up),
                None => System::Handled,
            },
            Err(message) => System::Message(message),
        };
    }
    if id == TypeId::of::<TaskDone>() {
        return match message.downcast::<TaskDone>() {
            // A failure goes to the error hook, through the dispatch (see `tasks`).
            Ok(done) => match tasks.done(done) {
                None => System::Handled,
                Some(failed) => System::Message(Message::new(failed)),
            },
            Err(message) => System::Message(message),
        };
    }
    if id == TypeId::of::<SystemStop>() {
        return match message.downcast::<SystemStop>() {
            Ok(SystemStop(reason)) => System::Stop(reason),
            Err(message) => System::Message(message),
        };
    }
    if id == TypeId::of::<Exit>()
        && let Some(exit) = message.downcast_ref::<Exit>()
        && Some(exit.from) == parent_of(ctx)
    {
        return System::Stop(exit.reason.clone());
    }
    unless_given_up(message, ctx, tasks, gave_up)
}

/// The message for the handlers, unless it is a call whose caller gave up on it before the
/// server took it (its timeout passed, or its future was dropped): OTP would run it for nothing.
/// Checked only while a caller of this server has given up (see `context`).
#[inline]
fn unless_given_up(
    message: Message,
    ctx: &Context,
    tasks: &mut Tasks,
    gave_up: fn(&Message) -> bool,
) -> System {
    if !context::gave_up_on(&ctx.cell().activity) {
        return System::Message(message);
    }
    check_given_up(message, ctx, tasks, gave_up)
}

#[cold]
#[inline(never)]
fn check_given_up(
    message: Message,
    ctx: &Context,
    tasks: &mut Tasks,
    gave_up: fn(&Message) -> bool,
) -> System {
    context::checking(ctx.cell(), tasks.left_to_check());
    let given_up = gave_up(&message);
    if !given_up {
        return System::Message(message);
    }
    tracing::debug!(pid = %ctx.pid(), message_type = message.type_name(), "a call whose caller gave up before it was taken; not run");
    drop_quietly(message, "a call whose caller gave up");
    // Its context, if it came with one, goes with it: the next message has its own.
    context::handled(ctx.cell());
    System::Handled
}

/// What [`system_message`] found.
enum System {
    /// A message for the handlers.
    Message(Message),
    /// A message for the loop alone, taken care of.
    Handled,
    /// The server stops with this reason.
    Stop(ExitReason),
}

/// The process that started this server with `start_link`, if one did.
fn parent_of(ctx: &Context) -> Option<Pid> {
    lock(&ctx.cell().state).relations_ref()?.parent
}

/// A typed reference to a running server of type `S`.
///
/// It dereferences to the client `#[gen_server]` generates, so the server's handlers are its
/// methods: `server.echo(x).await`, `server.echo_timeout(x, d).await`, `server.cast_echo(x)`.
/// It is a pid underneath: `Copy`, and still usable after the server exits, when calls fail at
/// once with [`CallError::Exited`] and the server's exit reason (or with [`CallError::NoProc`]
/// once the runtime has reused the exited server's slot and forgotten the reason). To follow a
/// server across restarts, call it by name instead: [`ServerRef::named`].
///
/// ```
/// use ferrotp::prelude::*;
///
/// struct Counter {
///     count: u64,
/// }
///
/// #[gen_server]
/// impl Counter {
///     async fn init(start: u64) -> Self {
///         Counter { count: start }
///     }
///
///     #[install("add")]
///     async fn add(&mut self, n: u64) -> u64 {
///         self.count += n;
///         self.count
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let counter: ServerRef<Counter> = Counter::start(0).name("doc-ref-counter").await.unwrap();
/// assert_eq!(counter.add(2).await, Ok(2));
///
/// // Found again by name or by pid, checked to be a `Counter` server.
/// assert_eq!(ServerRef::<Counter>::lookup("doc-ref-counter"), Ok(counter));
/// assert_eq!(ServerRef::<Counter>::from_pid(counter.pid()), Ok(counter));
///
/// // `Copy`: hand it to as many tasks as need it.
/// let task = tokio::spawn(async move { counter.add(3).await });
/// assert_eq!(task.await.unwrap(), Ok(5));
///
/// counter.stop(ExitReason::Normal).await.unwrap();
/// assert_eq!(
///     counter.add(1).await,
///     Err(CallError::Exited { pid: counter.pid(), reason: ExitReason::Normal }),
/// );
/// # }
/// ```
pub struct ServerRef<S: GenServer> {
    client: S::Client,
    server: PhantomData<fn() -> S>,
}

impl<S: GenServer> ServerRef<S> {
    fn unchecked(pid: Pid) -> Self {
        ServerRef {
            client: S::Client::__new(Addr::pid(pid)),
            server: PhantomData,
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> Pid {
        // A `ServerRef` is only ever made from a pid.
        self.client.__addr().as_pid().unwrap_or(Pid::ROOT)
    }

    /// A reference to whichever `S` server is registered under `name` at each call (Elixir's
    /// `GenServer.call(:name, ...)`): it follows the server across restarts. No server needs to
    /// be registered under the name yet.
    ///
    /// While a supervisor restarts a child registered under the name, the name stays reserved: a
    /// call made meanwhile waits for the new server (within the call's timeout) and fails at once
    /// with the supervisor's reason if there will be none; a cast waits for it too. With no
    /// server under the name, a call fails with [`CallError::NotRegistered`] and a cast is dropped.
    ///
    /// Names given to `named` are kept for the life of the program (Erlang keeps its atoms the
    /// same way): use it with a fixed set of names, not one per request.
    ///
    /// ```
    /// # use ferrotp::prelude::*;
    /// # struct Kv;
    /// # #[gen_server]
    /// # impl Kv {
    /// #     async fn init(_: ()) -> Self { Kv }
    /// #     #[install("get")]
    /// #     async fn get(&mut self, key: String) -> Option<String> { None }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let kv = ServerRef::<Kv>::named("doc-kv");
    /// assert_eq!(kv.get("a".into()).await, Err(CallError::NotRegistered("doc-kv".into())));
    /// Kv::start(()).name("doc-kv").await.unwrap();
    /// assert_eq!(kv.get("a".into()).await, Ok(None));
    /// # }
    /// ```
    pub fn named(name: &str) -> NamedRef<S> {
        NamedRef {
            client: S::Client::__new(Addr::name(name)),
            server: PhantomData,
        }
    }

    /// A reference to whichever `S` server is registered under `name` on node `node` at each
    /// call (Erlang's `{Name, Node}`), as [`named`](ServerRef::named) does on this node. Calls
    /// and casts go to that node by handler name (see [`dist`](crate::dist)).
    ///
    /// Names given to `named_on` (and node names) are kept for the life of the program.
    pub fn named_on(name: &str, node: &str) -> NamedRef<S> {
        NamedRef {
            client: S::Client::__new(Addr::name_on(node, name)),
            server: PhantomData,
        }
    }

    /// The `S` server registered under `name` now (OTP's `whereis`, typed). To call whichever
    /// server has the name at each call, use [`named`](ServerRef::named).
    ///
    /// # Errors
    ///
    /// [`LookupError`] when no process has the name, or it runs another type of server.
    pub fn lookup(name: &str) -> Result<Self, LookupError> {
        let pid = registry::whereis(name).ok_or_else(|| LookupError::NotRegistered(name.into()))?;
        Self::from_pid(pid)
    }

    /// A typed reference to `pid`, checked to be an `S` server. A pid of another node is not
    /// checked (only its node knows what runs there): a call that does not fit the server
    /// there fails with [`CallError::UnknownHandler`] or [`CallError::BadRequest`].
    ///
    /// # Errors
    ///
    /// [`LookupError`] when `pid` is not alive or runs another type of server.
    pub fn from_pid(pid: Pid) -> Result<Self, LookupError> {
        if !pid.is_local() {
            // Only its own node knows what runs there: a call to another type of server fails
            // there, by handler name.
            return Ok(Self::unchecked(pid));
        }
        let runs = table()
            .with(pid, |cell| {
                let state = lock(&cell.state);
                (!state.finished).then_some(state.tag)
            })
            .flatten()
            .ok_or(LookupError::NoProc(pid))?;
        match runs.map(|Tag(tag)| tag()) {
            Some((id, _)) if id == TypeId::of::<S>() => Ok(Self::unchecked(pid)),
            other => Err(LookupError::WrongType {
                pid,
                expected: type_name::<S>(),
                actual: other.map(|(_, name)| name),
            }),
        }
    }

    /// Asks the server to stop with `reason` and waits until it has: its `terminate` runs first
    /// (OTP's `gen_server:stop/2`). It waits for as long as the server takes; see
    /// [`stop_timeout`](ServerRef::stop_timeout). A server on another node cannot be stopped
    /// this way ([`CallError::NotRemotable`]): send it an exit signal, or call a handler that
    /// returns [`Reply::Stop`](crate::Reply::Stop).
    ///
    /// # Errors
    ///
    /// [`CallError::NoProc`] or [`CallError::Exited`] if it was not alive;
    /// [`CallError::Exited`] if it exited with another reason than `reason`;
    /// [`CallError::SelfCall`] from inside the server itself (return
    /// [`Reply::Stop`](crate::Reply::Stop) from a handler instead); [`CallError::Deadlock`] when
    /// the server cannot stop because it is itself waiting for the caller (stopping the caller,
    /// or waiting for the caller's `init`): OTP would wait forever there.
    pub async fn stop(&self, reason: ExitReason) -> Result<(), CallError> {
        stop_server(self.pid(), reason, crate::INFINITY).await
    }

    /// [`stop`](ServerRef::stop), waiting at most `timeout` (OTP's `gen_server:stop/3`). The server
    /// goes on stopping after a timeout.
    ///
    /// # Errors
    ///
    /// As [`stop`](ServerRef::stop), and [`CallError::Timeout`] when the server has not exited
    /// within `timeout`.
    pub async fn stop_timeout(
        &self,
        reason: ExitReason,
        timeout: Duration,
    ) -> Result<(), CallError> {
        stop_server(self.pid(), reason, timeout).await
    }

    /// A dynamic call by handler name (see [`call`](crate::call)).
    ///
    /// # Errors
    ///
    /// See [`CallError`].
    pub async fn call<R: DeserializeOwned>(
        &self,
        name: &str,
        body: impl Serialize,
    ) -> Result<R, CallError<Value>> {
        dispatch::call(self.pid(), name, body).await
    }

    /// A dynamic cast by handler name (see [`cast`](crate::cast)).
    ///
    /// # Errors
    ///
    /// [`CallError::BadRequest`] when `body` cannot be encoded.
    pub fn cast(&self, name: &str, body: impl Serialize) -> Result<(), CallError<Value>> {
        dispatch::cast(self.pid(), name, body)
    }
}

/// Stops `pid` (see [`ServerRef::stop`]).
async fn stop_server(pid: Pid, reason: ExitReason, timeout: Duration) -> Result<(), CallError> {
    if self_pid() == Some(pid) {
        return Err(CallError::SelfCall(pid));
    }
    if !pid.is_local() {
        // A stop is a system message with a wait for the exit, not a handler: it does not
        // cross nodes (an exit signal does, as does a handler that returns `Reply::Stop`).
        return Err(CallError::NotRemotable {
            handler: "stop".to_owned(),
        });
    }
    let cell = table().get(pid).ok_or_else(|| gone(pid))?;
    // Waiting for `pid` from here on; a cycle of such waits through `pid` back to the caller
    // would never end.
    let waiting = process::WaitingOn::new(pid);
    if let Some(cycle) = waiting.cycle() {
        return Err(CallError::Deadlock(cycle));
    }
    let mut timer = CallTimer::after(timeout);
    if let Err(refused) = cell.push(Message::new(SystemStop(reason.clone())), Push::Signal) {
        // Exiting already: not ours to stop; its reason, once it has gone.
        drop(refused);
        let exited = timer.race(cell.exited()).await;
        return Err(match exited {
            Some(reason) => CallError::Exited { pid, reason },
            None => CallError::Timeout { pid, timeout },
        });
    }
    let exited = timer.race(cell.exited()).await;
    drop(waiting);
    match exited {
        None => Err(CallError::Timeout { pid, timeout }),
        Some(exited) if exited == reason => Ok(()),
        Some(other) => Err(CallError::Exited { pid, reason: other }),
    }
}

impl<S: GenServer> Deref for ServerRef<S> {
    type Target = S::Client;

    fn deref(&self) -> &S::Client {
        &self.client
    }
}

/// A `ServerRef` travels as its pid (inside a message to another node, say). Read back on the
/// server's own node it is checked to be an `S` server, as [`ServerRef::from_pid`] does; on
/// another node it cannot be, as for any pid of another node.
impl<S: GenServer> Serialize for ServerRef<S> {
    fn serialize<Z: serde::Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.pid().serialize(serializer)
    }
}

impl<'de, S: GenServer> serde::Deserialize<'de> for ServerRef<S> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pid = Pid::deserialize(deserializer)?;
        // Checked as `from_pid` checks: a pid of this node must run an `S` server (or have
        // exited, which a call then reports); one of another node cannot be checked here.
        match Self::from_pid(pid) {
            Ok(server) => Ok(server),
            Err(LookupError::NoProc(_)) => Ok(Self::unchecked(pid)),
            Err(error) => Err(serde::de::Error::custom(error)),
        }
    }
}

impl<S: GenServer> Clone for ServerRef<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: GenServer> Copy for ServerRef<S> {}

impl<S: GenServer> PartialEq for ServerRef<S> {
    fn eq(&self, other: &Self) -> bool {
        self.pid() == other.pid()
    }
}

impl<S: GenServer> Eq for ServerRef<S> {}

impl<S: GenServer> Hash for ServerRef<S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.pid().hash(state);
    }
}

impl<S: GenServer> fmt::Debug for ServerRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerRef<{}>({})", type_name::<S>(), self.pid())
    }
}

/// A typed reference to whichever `S` server is registered under a name at each call: made by
/// [`ServerRef::named`], which describes what happens while the server restarts.
///
/// It dereferences to the same client as a [`ServerRef`], so typed calls and casts look the same;
/// `Copy`, and usable before any server has the name.
///
/// Give a supervised server a name, and a `NamedRef` reaches whichever server the supervisor runs
/// under it, across restarts:
///
/// ```
/// use ferrotp::prelude::*;
///
/// struct Worker;
///
/// #[gen_server]
/// impl Worker {
///     async fn init(_: ()) -> Self { Worker }
///
///     #[install("ping")]
///     async fn ping(&mut self) -> &'static str { "pong" }
///
///     #[install("crash")]
///     async fn crash(&mut self) { panic!("the worker crashed") }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sup = Supervisor::one_for_one()
///     .child(Child::server::<Worker>("worker", ()).name("doc-named-worker"))
///     .start()
///     .await
///     .unwrap();
/// let worker = ServerRef::<Worker>::named("doc-named-worker");
/// assert_eq!(worker.registered_name(), "doc-named-worker");
/// let first = worker.lookup().unwrap();
///
/// assert!(worker.crash().await.is_err());
/// // Made right after the crash: it waits for the restarted worker.
/// assert_eq!(worker.ping().await, Ok("pong"));
/// assert_ne!(worker.lookup().unwrap(), first);
/// sup.stop(ExitReason::Shutdown).await.unwrap();
/// # }
/// ```
pub struct NamedRef<S: GenServer> {
    client: S::Client,
    server: PhantomData<fn() -> S>,
}

impl<S: GenServer> NamedRef<S> {
    /// The name it calls.
    pub fn registered_name(&self) -> &'static str {
        // A `NamedRef` is only ever made from a name.
        self.client.__addr().as_name().unwrap_or("")
    }

    /// The server registered under the name now, checked to be an `S` server.
    ///
    /// # Errors
    ///
    /// [`LookupError`] when no process has the name (also while it is reserved for a restart), or
    /// it runs another type of server.
    pub fn lookup(&self) -> Result<ServerRef<S>, LookupError> {
        ServerRef::lookup(self.registered_name())
    }

    /// Resolves the name, then stops that server as [`ServerRef::stop`] does.
    ///
    /// # Errors
    ///
    /// [`CallError::NotRegistered`] when no process has the name; otherwise as
    /// [`ServerRef::stop`].
    pub async fn stop(&self, reason: ExitReason) -> Result<(), CallError> {
        let pid = registry::whereis(self.registered_name())
            .ok_or_else(|| CallError::NotRegistered(self.registered_name().into()))?;
        stop_server(pid, reason, crate::INFINITY).await
    }

    /// A dynamic call by handler name to the server registered under the name.
    ///
    /// # Errors
    ///
    /// See [`CallError`].
    pub async fn call<R: DeserializeOwned>(
        &self,
        handler: &str,
        body: impl Serialize,
    ) -> Result<R, CallError<Value>> {
        dispatch::call_to(self.client.__addr(), handler, body, crate::DEFAULT_TIMEOUT).await
    }

    /// A dynamic cast by handler name to the server registered under the name.
    ///
    /// # Errors
    ///
    /// [`CallError::BadRequest`] when `body` cannot be encoded.
    pub fn cast(&self, handler: &str, body: impl Serialize) -> Result<(), CallError<Value>> {
        dispatch::cast_to(self.client.__addr(), handler, body)
    }
}

impl<S: GenServer> Deref for NamedRef<S> {
    type Target = S::Client;

    fn deref(&self) -> &S::Client {
        &self.client
    }
}

impl<S: GenServer> Clone for NamedRef<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: GenServer> Copy for NamedRef<S> {}

impl<S: GenServer> PartialEq for NamedRef<S> {
    fn eq(&self, other: &Self) -> bool {
        self.client.__addr() == other.client.__addr()
    }
}

impl<S: GenServer> Eq for NamedRef<S> {}

impl<S: GenServer> Hash for NamedRef<S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.client.__addr().hash(state);
    }
}

impl<S: GenServer> fmt::Debug for NamedRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NamedRef<{}>({:?})",
            type_name::<S>(),
            self.registered_name()
        )
    }
}

mod background;
mod generated;
mod on_error;
mod tasks;
mod traced;

#[doc(hidden)]
pub use on_error::{__after_error, __after_panic, __catch, __failed};
pub use on_error::{Failure, FailureKind, OnError};

#[doc(hidden)]
pub use background::Tick;
use tasks::TaskDone;
#[doc(hidden)]
pub use tasks::{
    __on_task_failure, __on_task_panic, __task_failed, __task_never_fails, Refusal, TaskFailed,
    TaskReply, TaskSpec, Tasks,
};
pub use tasks::{DEFAULT_TASK_LIMIT, Strategy};

#[doc(hidden)]
pub use crate::dispatch::{
    __decode, __encode, __encode_result, __reply_to, __unknown, DynamicCall as __DynamicCall,
};
#[doc(hidden)]
pub use crate::request::Addr;
#[doc(hidden)]
pub use generated::*;
