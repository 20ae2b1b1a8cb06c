//! Child specifications: what a supervisor starts, and how it restarts and stops it.

use std::{fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use super::Supervisor;
use crate::{
    context::Context,
    exit::{ExitReason, ProcessOutput},
    gen_server::GenServer,
    link,
    pid::Pid,
    registry,
    task::self_pid,
};

/// When a child that exited is started again (OTP's `restart`; triotp's three restart
/// strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only when it exits abnormally: not for [`ExitReason::Normal`] or
    /// [`ExitReason::Shutdown`].
    Transient,
    /// Never restarted; the supervisor forgets it once it exits.
    Temporary,
}

impl Restart {
    /// Whether a child with this restart type is restarted after exiting with `reason`.
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
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

/// How a child is started, given the name to register it under; runs inside the supervisor
/// process, so `start_link` links to it.
pub(crate) type StartFn = Arc<dyn Fn(Option<Arc<str>>) -> StartFuture + Send + Sync>;

/// One child of a supervisor: an id, how to start it, and how to treat its exits.
///
/// Build one with [`Child::server`], [`Child::process`] or [`Child::supervisor`], then adjust it:
///
/// ```
/// # use ferrotp::prelude::*;
/// # use ferrotp::supervisor::{Child, Shutdown};
/// # use std::time::Duration;
/// # struct Cache;
/// # #[gen_server] impl Cache { async fn init(_: ()) -> Self { Cache } }
/// let spec = Child::server::<Cache>("cache", ())
///     .name("cache")
///     .transient()
///     .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
/// assert_eq!(spec.id(), "cache");
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
}

/// OTP's default shutdown for workers: five seconds.
const WORKER_SHUTDOWN: Shutdown = Shutdown::Timeout(Duration::from_secs(5));

impl Child {
    /// A `#[gen_server]` child, started with `S::start_link(arg)` (and `arg` cloned again for every
    /// restart). It is asked to stop with an orderly stop, so its `terminate` runs.
    pub fn server<S>(id: &str, arg: S::Arg) -> Self
    where
        S: GenServer,
        S::Arg: Clone + Sync,
    {
        let mut child = Child::with_start(
            id,
            Arc::new(move |name: Option<Arc<str>>| -> StartFuture {
                let arg = arg.clone();
                Box::pin(async move {
                    let mut start = S::start_link(arg);
                    if let Some(name) = name {
                        start = start.shared_name(name);
                    }
                    start
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
    /// every restart). It is asked to stop with an exit signal ([`ExitReason::Shutdown`]).
    pub fn process<F, Fut>(id: &str, f: F) -> Self
    where
        F: Fn(Context) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: ProcessOutput,
    {
        let f = Arc::new(f);
        Child::with_start(
            id,
            Arc::new(move |name: Option<Arc<str>>| -> StartFuture {
                let f = f.clone();
                Box::pin(async move {
                    let parent = self_pid().ok_or(ExitReason::NoProc)?;
                    let child =
                        link::start_linked(parent, move |ctx| f(ctx)).ok_or(ExitReason::NoProc)?;
                    if let Some(name) = &name {
                        registry::register_shared(name, child.pid)
                            .map_err(|e| ExitReason::error(&e))?;
                    }
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
            Arc::new(move |name: Option<Arc<str>>| -> StartFuture {
                let mut spec = spec.clone();
                if let Some(name) = &name {
                    spec = spec.name(name);
                }
                Box::pin(async move {
                    let sup = spec.start_link().await.map_err(|e| ExitReason::error(&e))?;
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
        }
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
    /// a restart.
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
