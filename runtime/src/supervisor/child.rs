//! Child specifications: what a supervisor starts, and how it restarts and stops it.

use std::{
    fmt,
    future::{Future, IntoFuture},
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use super::Supervisor;
use crate::{
    bound::MailboxLimit,
    context::Context,
    exit::{ExitReason, ProcessOutput},
    gen_server::GenServer,
    link,
    mailbox::lock,
    pid::Pid,
    registry,
    task::self_pid,
};

/// When a child that exited is started again (OTP's `restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only when it exits abnormally: not for [`ExitReason::Normal`] or
    /// [`ExitReason::Shutdown`], nor for [`ExitReason::MaxRestartIntensity`] (a supervisor that
    /// gave up has stopped its children in order, as OTP's exits with `shutdown`).
    Transient,
    /// Never restarted; the supervisor forgets it once it exits.
    Temporary,
}

impl Restart {
    /// Whether a child with this restart type is restarted after exiting with `reason`.
    ///
    /// ```
    /// use ferrotp::ExitReason;
    /// use ferrotp::supervisor::Restart;
    ///
    /// let crash = ExitReason::error("disk full");
    /// assert!(Restart::Permanent.restarts_after(&ExitReason::Normal));
    /// assert!(Restart::Transient.restarts_after(&crash));
    /// assert!(!Restart::Transient.restarts_after(&ExitReason::Shutdown));
    /// assert!(!Restart::Temporary.restarts_after(&crash));
    /// ```
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal() && *reason != ExitReason::MaxRestartIntensity,
            Restart::Temporary => false,
        }
    }
}

/// How a supervisor stops a child (OTP's `shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Killed at once ([`ExitReason::Kill`]); its cleanup does not run.
    BrutalKill,
    /// Asked to stop, then killed if it has not stopped within the duration.
    Timeout(Duration),
    /// Asked to stop, and waited for as long as it takes (the default for supervisors).
    Infinity,
}

/// Whether a child is a worker or a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChildKind {
    /// A process doing work.
    Worker,
    /// A supervisor of its own subtree.
    Supervisor,
}

/// How a child is asked to stop before its shutdown timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopBy {
    /// An orderly stop request: gen_servers (so `terminate` runs) and supervisors.
    Request,
    /// An exit signal with [`ExitReason::Shutdown`]: plain processes.
    Signal,
}

type StartFuture = Pin<Box<dyn Future<Output = Result<Pid, ExitReason>> + Send>>;

/// What a supervisor gives a child's start function.
pub(crate) struct Launch {
    /// The name to register the child under, kept by the supervisor across restarts.
    pub(crate) name: Option<Arc<str>>,
    /// For a supervisor child: where it lists its own running children.
    pub(crate) roster: Option<Arc<Roster>>,
    /// Where the child is listed the moment it is spawned, before its `init` runs.
    pub(crate) listing: Listing,
    /// The child's mailbox limit, if it has one.
    pub(crate) mailbox: Option<MailboxLimit>,
}

/// Lists a child on its supervisor's roster as soon as it has a pid: if the supervisor dies while
/// the child is still starting, its own supervisor finds the child there and stops it too.
pub(crate) struct Listing {
    pub(crate) on: Arc<Roster>,
    /// The child's entry; its pid is filled in when it is spawned.
    pub(crate) member: Member,
}

impl Listing {
    pub(crate) fn spawned(self, pid: Pid) {
        self.on.add(Member { pid, ..self.member });
    }
}

/// How a child is started; runs inside the supervisor process, so `start_link` links to it.
pub(crate) type StartFn = Arc<dyn Fn(Launch) -> StartFuture + Send + Sync>;

/// A supervisor's running children, shared with its own supervisor: if it dies without stopping
/// them (killed, or its shutdown timed out), its supervisor finishes the job before it starts a
/// new one, so that a restarted subtree never meets the old one (its names above all).
#[derive(Default)]
pub(crate) struct Roster(Mutex<Vec<Member>>);

/// A running child as its supervisor's supervisor needs to know it, to stop it.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) pid: Pid,
    pub(crate) id: Arc<str>,
    pub(crate) shutdown: Shutdown,
    pub(crate) stop_by: StopBy,
    pub(crate) roster: Option<Arc<Roster>>,
}

impl Roster {
    pub(crate) fn add(&self, member: Member) {
        lock(&self.0).push(member);
    }

    pub(crate) fn remove(&self, pid: Pid) {
        lock(&self.0).retain(|member| member.pid != pid);
    }

    /// Forgets those that have exited (a start that failed).
    pub(crate) fn prune_dead(&self) {
        lock(&self.0).retain(|member| crate::is_alive(member.pid));
    }

    /// Everyone still listed, last started first, leaving the roster empty.
    pub(crate) fn take(&self) -> Vec<Member> {
        let mut members = std::mem::take(&mut *lock(&self.0));
        members.reverse();
        members
    }
}

/// One child of a supervisor: an id, how to start it, and how to treat its exits.
///
/// Build one with [`Child::server`], [`Child::process`] or [`Child::supervisor`], adjust it, and
/// give it to a [`Supervisor`]:
///
/// ```
/// use std::time::Duration;
/// use ferrotp::prelude::*;
/// use ferrotp::supervisor::Shutdown;
///
/// struct Cache;
/// #[gen_server]
/// impl Cache {
///     async fn init(_: ()) -> Self { Cache }
/// }
///
/// async fn janitor(_ctx: Context) {
///     std::future::pending::<()>().await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache = Child::server::<Cache>("cache", ())
///     .name("doc-child-cache")
///     .transient()
///     .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
/// assert_eq!(cache.id(), "cache");
///
/// let sup = Supervisor::one_for_one()
///     .child(cache)
///     .child(Child::process("janitor", janitor))
///     .start()
///     .await
///     .unwrap();
/// assert!(ServerRef::<Cache>::lookup("doc-child-cache").is_ok());
/// assert_eq!(sup.count_children().await.unwrap().workers, 2);
/// # }
/// ```
#[derive(Clone)]
pub struct Child {
    pub(crate) id: Arc<str>,
    pub(crate) start: StartFn,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) kind: ChildKind,
    pub(crate) stop_by: StopBy,
    pub(crate) significant: bool,
    /// The registered name a server child is started under, if any.
    pub(crate) name: Option<Arc<str>>,
    /// The child's mailbox limit, if it has one.
    pub(crate) mailbox: Option<MailboxLimit>,
}

/// OTP's default shutdown for workers: five seconds.
const WORKER_SHUTDOWN: Shutdown = Shutdown::Timeout(Duration::from_secs(5));

impl Child {
    /// A `#[gen_server]` child, started with `S::start_link(arg)` (and `arg` cloned again for every
    /// restart; a `clone` that panics fails that start only). It is asked to stop with an orderly
    /// stop, so its `terminate` runs.
    pub fn server<S>(id: &str, arg: S::Arg) -> Self
    where
        S: GenServer,
        S::Arg: Clone + Sync,
    {
        let mut child = Child::with_start(
            id,
            Arc::new(move |launch: Launch| -> StartFuture {
                let arg = arg.clone();
                Box::pin(async move {
                    let mut start = S::start_link(arg);
                    if let Some(limit) = launch.mailbox {
                        start = start.mailbox(limit);
                    }
                    if let Some(name) = launch.name {
                        start = start.kept_name(name, self_pid());
                    }
                    let starting = start.into_future();
                    if let Some(pid) = starting.pid() {
                        launch.listing.spawned(pid);
                    }
                    starting
                        .await
                        .map(|server| server.pid())
                        .map_err(|e| ExitReason::error(&e))
                })
            }),
        );
        child.stop_by = StopBy::Request;
        child
    }

    /// A plain process child running `f`, started linked to the supervisor (`f` runs again for
    /// every restart). It is asked to stop with an exit signal ([`ExitReason::Shutdown`]). With a
    /// [`name`](Child::name), the name is registered before `f` runs: if it is taken, the start
    /// fails and `f` never runs.
    pub fn process<F, Fut>(id: &str, f: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ProcessOutput,
    {
        let f = Arc::new(f);
        Child::with_start(
            id,
            Arc::new(move |launch: Launch| -> StartFuture {
                let f = f.clone();
                Box::pin(async move {
                    let parent = self_pid().ok_or(ExitReason::NoProc)?;
                    // The name is registered before the process can run: if it is taken, the
                    // process never runs and nothing is left behind.
                    let child = link::try_start_linked(
                        parent,
                        move |ctx| f(ctx),
                        |child| {
                            if let Some(limit) = launch.mailbox {
                                child.set_limit(limit);
                            }
                            match &launch.name {
                                Some(name) => {
                                    registry::register_kept(name, child.pid, Some(parent))
                                        .map_err(|e| ExitReason::error(&e))
                                }
                                None => Ok(()),
                            }
                        },
                    )?;
                    launch.listing.spawned(child.pid);
                    Ok(child.pid)
                })
            }),
        )
    }

    /// A supervisor child: a subtree. Its shutdown defaults to [`Shutdown::Infinity`].
    pub fn supervisor(id: &str, spec: impl Into<Supervisor>) -> Self {
        let spec: Supervisor = spec.into();
        let mut child = Child::with_start(
            id,
            Arc::new(move |launch: Launch| -> StartFuture {
                let mut spec = spec.clone();
                spec.name = launch.name;
                spec.keeper = self_pid();
                spec.roster = launch.roster;
                let listing = launch.listing;
                Box::pin(async move {
                    let mut start = spec.starting(true);
                    if let Some(limit) = launch.mailbox {
                        start = start.mailbox(limit);
                    }
                    let starting = start.into_future();
                    if let Some(pid) = starting.pid() {
                        listing.spawned(pid);
                    }
                    let sup = starting.await.map_err(|e| ExitReason::error(&e))?;
                    Ok(sup.pid())
                })
            }),
        );
        child.kind = ChildKind::Supervisor;
        child.shutdown = Shutdown::Infinity;
        child.stop_by = StopBy::Request;
        child
    }

    fn with_start(id: &str, start: StartFn) -> Self {
        Child {
            id: id.into(),
            start,
            restart: Restart::Permanent,
            shutdown: WORKER_SHUTDOWN,
            kind: ChildKind::Worker,
            stop_by: StopBy::Signal,
            significant: false,
            name: None,
            mailbox: None,
        }
    }

    /// Bounds the child's mailbox, in every incarnation (unbounded by default): see
    /// [`Overflow`](crate::Overflow). The supervisor stops the child with a signal or a system
    /// message, which never meets the bound, so a full mailbox never holds up a shutdown or a
    /// restart; senders waiting for room when the child exits get an error, and calls by name
    /// made during the restart reach the new incarnation.
    pub fn mailbox(mut self, limit: MailboxLimit) -> Self {
        self.mailbox = Some(limit);
        self
    }

    /// The child's id, unique among its siblings.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sets the restart type (the default is [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Shorthand for [`restart`](Child::restart)`(Restart::Permanent)`.
    pub fn permanent(self) -> Self {
        self.restart(Restart::Permanent)
    }

    /// Shorthand for [`restart`](Child::restart)`(Restart::Transient)`.
    pub fn transient(self) -> Self {
        self.restart(Restart::Transient)
    }

    /// Shorthand for [`restart`](Child::restart)`(Restart::Temporary)`.
    pub fn temporary(self) -> Self {
        self.restart(Restart::Temporary)
    }

    /// Sets how the child is stopped (the default is five seconds for workers, infinity for
    /// supervisors).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Marks the child significant for the supervisor's [`AutoShutdown`](crate::supervisor::AutoShutdown):
    /// its exit (without a restart) can end the supervisor.
    pub fn significant(mut self) -> Self {
        self.significant = true;
        self
    }

    /// Registers the child under `name` each time it starts, so that clients find it again after
    /// a restart. Between an exit and the restart the name stays reserved to the supervisor: calls
    /// by name ([`ServerRef::named`](crate::ServerRef::named)) wait for the new child, messages to
    /// the name are delivered to it, and nobody else can take the name. When the supervisor will
    /// not restart the child, the name is released and the calls waiting fail with the reason.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .field("significant", &self.significant)
            .finish_non_exhaustive()
    }
}
