//! Supervisors: processes that start children, watch them, and restart them when they fail
//! (OTP's `supervisor`).
//!
//! A tree is declared top-down, the way it is drawn:
//!
//! ```
//! use std::time::Duration;
//! use ferrotp::prelude::*;
//! use ferrotp::supervisor::{Child, Supervisor};
//!
//! struct Db;
//! #[gen_server] impl Db { async fn init(_: ()) -> Self { Db } }
//! struct Cache;
//! #[gen_server] impl Cache { async fn init(size: usize) -> Self { Cache } }
//! async fn poller(_ctx: Context) {}
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let tree = Supervisor::one_for_one()
//!     .intensity(3, Duration::from_secs(5))
//!     .child(Child::server::<Db>("db", ()).name("db"))
//!     .child(Child::supervisor(
//!         "cache",
//!         Supervisor::rest_for_one()
//!             .child(Child::server::<Cache>("store", 1024))
//!             .child(Child::process("poller", poller).transient()),
//!     ));
//! let root = tree.start().await.unwrap();
//! assert_eq!(root.count_children().await.unwrap().active, 2);
//! # }
//! ```
//!
//! | OTP | ferrotp |
//! | --- | --- |
//! | `one_for_one`, `one_for_all`, `rest_for_one` | [`Supervisor::one_for_one`], [`one_for_all`](Supervisor::one_for_all), [`rest_for_one`](Supervisor::rest_for_one) |
//! | `simple_one_for_one` | [`DynamicSupervisor`] |
//! | `intensity`, `period` (default 1 in 5 s) | [`Supervisor::intensity`] |
//! | `auto_shutdown` | [`Supervisor::auto_shutdown`] |
//! | child spec `restart`, `shutdown`, `type`, `significant` | [`Child`] |
//! | `which_children`, `count_children`, `start_child`, `terminate_child`, `restart_child`, `delete_child` | the same names on [`SupervisorRef`] |
//!
//! Children start in order and stop in reverse order (a [`DynamicSupervisor`]'s all together). A
//! child that fails to start makes the whole start fail, after the children already started are
//! stopped. More than `max_restarts` restarts within `period` and the supervisor stops all its
//! children and exits with [`ExitReason::MaxRestartIntensity`], so that its own supervisor can
//! restart it.
//!
//! What ferrotp adds to OTP's rules, so that a restart is never undone by its own timing:
//! - a child is restarted only once the old one is fully gone: a supervisor child that died without
//!   stopping its own children (killed, or its shutdown timed out) has them stopped by its parent
//!   first, each by its own shutdown policy;
//! - a restart that fails is charged to the intensity and tried again through the supervisor's
//!   mailbox, as OTP does, so the supervisor answers calls meanwhile;
//! - a named child's name stays reserved to its supervisor while it restarts the child: calls by
//!   name ([`ServerRef::named`]) made meanwhile reach the new child, and fail at once with the
//!   supervisor's reason if there will be none.

use std::{any::Any, fmt, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    exit::ExitReason,
    gen_server::{ServerRef, Start, StartError},
    pid::Pid,
};

mod child;
mod dynamic;
mod server;

use child::Roster;
pub use child::{Child, ChildKind, Restart, Shutdown};
pub use dynamic::{DynamicRef, DynamicSupervisor};
pub use server::{SupervisorProcess, SupervisorProcessClient};

/// Which children a supervisor restarts when one exits and is to be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the child that exited.
    OneForOne,
    /// Every child: the others are stopped (in reverse order) and all started again (in order).
    OneForAll,
    /// The child that exited and every child started after it.
    RestForOne,
}

/// When a supervisor stops by itself because significant children have exited (OTP's
/// `auto_shutdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoShutdown {
    /// Never: the supervisor runs until stopped (the default).
    Never,
    /// As soon as any significant child exits without being restarted.
    AnySignificant,
    /// Once every significant child has exited without being restarted.
    AllSignificant,
}

/// A supervisor's specification: strategy, restart intensity and children. Cheap to clone.
///
/// Built with a strategy ([`one_for_one`](Supervisor::one_for_one),
/// [`one_for_all`](Supervisor::one_for_all), [`rest_for_one`](Supervisor::rest_for_one)) and
/// [`child`](Supervisor::child) after child, then [`start`](Supervisor::start)ed:
///
/// ```
/// use std::time::Duration;
/// use ferrotp::prelude::*;
///
/// struct Db;
///
/// #[gen_server]
/// impl Db {
///     async fn init(_: ()) -> Self {
///         Db
///     }
///
///     #[install("query")]
///     async fn query(&mut self, sql: String) -> usize {
///         sql.len()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sup = Supervisor::one_for_one()
///     .intensity(3, Duration::from_secs(5))
///     .child(Child::server::<Db>("db", ()))
///     .start()
///     .await
///     .unwrap();
/// let db = sup.child::<Db>("db").await.unwrap();
/// assert_eq!(db.query("select 1".into()).await, Ok(8));
///
/// // Stopping the supervisor stops its children first.
/// sup.stop(ExitReason::Shutdown).await.unwrap();
/// assert!(!is_alive(db.pid()));
/// # }
/// ```
#[derive(Clone)]
pub struct Supervisor {
    pub(crate) strategy: Strategy,
    pub(crate) max_restarts: u32,
    pub(crate) period: Duration,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) children: Vec<Child>,
    pub(crate) name: Option<Arc<str>>,
    /// Who keeps the name across restarts: the parent supervisor of a named subtree.
    pub(crate) keeper: Option<Pid>,
    /// Where the supervisor lists its running children for its parent supervisor.
    pub(crate) roster: Option<Arc<Roster>>,
    pub(crate) template: Option<Template>,
}

/// A dynamic supervisor's recipe for a child from a start argument.
pub(crate) type Template =
    Arc<dyn Fn(Box<dyn Any + Send>) -> Result<Child, SupervisorError> + Send + Sync>;

/// A running supervisor.
///
/// Its methods are OTP's run-time calls (on [`SupervisorProcessClient`], which it dereferences
/// to): [`child`](SupervisorProcessClient::child), `which_children`, `count_children`,
/// `start_child`, `terminate_child`, `restart_child`, `delete_child`; and, as any
/// [`ServerRef`], [`stop`](ServerRef::stop).
///
/// ```
/// use ferrotp::prelude::*;
/// use ferrotp::supervisor::SupervisorRef;
///
/// async fn idle(_ctx: Context) {
///     std::future::pending::<()>().await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sup: SupervisorRef = Supervisor::one_for_one()
///     .child(Child::process("idle", idle))
///     .start()
///     .await
///     .unwrap();
/// let children = sup.which_children().await.unwrap();
/// assert_eq!(children[0].id, "idle");
///
/// sup.terminate_child("idle".into()).await.unwrap(); // stopped; its specification stays
/// assert_eq!(sup.count_children().await.unwrap().active, 0);
/// let pid = sup.restart_child("idle".into()).await.unwrap();
/// assert!(is_alive(pid));
///
/// let other = sup.start_child(Child::process("other", idle)).await.unwrap();
/// assert_eq!(sup.count_children().await.unwrap().active, 2);
/// assert!(is_alive(other));
/// # }
/// ```
pub type SupervisorRef = ServerRef<SupervisorProcess>;

impl Supervisor {
    fn new(strategy: Strategy) -> Self {
        Supervisor {
            strategy,
            max_restarts: 1,
            period: Duration::from_secs(5),
            auto_shutdown: AutoShutdown::Never,
            children: Vec::new(),
            name: None,
            keeper: None,
            roster: None,
            template: None,
        }
    }

    /// Restarts only the child that exited.
    pub fn one_for_one() -> Self {
        Supervisor::new(Strategy::OneForOne)
    }

    /// Restarts every child when one exits.
    pub fn one_for_all() -> Self {
        Supervisor::new(Strategy::OneForAll)
    }

    /// Restarts the child that exited and the children started after it.
    pub fn rest_for_one() -> Self {
        Supervisor::new(Strategy::RestForOne)
    }

    /// Tolerates at most `max_restarts` restarts within `period` (OTP's `intensity` and
    /// `period`). The default is 1 in 5 seconds.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Stops the supervisor when significant children exit; see [`AutoShutdown`].
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }

    /// Adds a child; children start in the order they are added.
    pub fn child(mut self, child: Child) -> Self {
        self.children.push(child);
        self
    }

    /// Registers the supervisor under `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Starts the supervisor and its children; returns once every child has started.
    ///
    /// # Errors
    ///
    /// [`StartError::Init`] with [`SupervisorError::StartFailed`] naming the child that failed and
    /// its reason (the children started before it have been stopped again).
    ///
    /// ```
    /// use ferrotp::prelude::*;
    /// use ferrotp::supervisor::SupervisorError;
    ///
    /// struct Config;
    ///
    /// #[gen_server]
    /// impl Config {
    ///     async fn init(path: String) -> Result<Self, String> {
    ///         Err(format!("{path} not found"))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let started = Supervisor::one_for_one()
    ///     .child(Child::server::<Config>("config", "app.toml".to_string()))
    ///     .start()
    ///     .await;
    /// let Err(StartError::Init(SupervisorError::StartFailed { id, reason })) = started else {
    ///     panic!("the start should have failed");
    /// };
    /// assert_eq!(id, "config");
    /// assert_eq!(reason, ExitReason::error("init failed: app.toml not found"));
    /// # }
    /// ```
    pub async fn start(self) -> Result<SupervisorRef, StartError<SupervisorError>> {
        self.starting(false).await
    }

    /// [`start`](Supervisor::start), linked to the calling process.
    ///
    /// # Errors
    ///
    /// As [`start`](Supervisor::start), and [`StartError::NotInProcess`] outside a process.
    pub async fn start_link(self) -> Result<SupervisorRef, StartError<SupervisorError>> {
        self.starting(true).await
    }

    pub(crate) fn starting(self, link: bool) -> Start<SupervisorProcess> {
        let (name, keeper) = (self.name.clone(), self.keeper);
        let mut start = SupervisorProcess::start(self);
        if link {
            start = start.link();
        }
        if let Some(name) = name {
            start = start.kept_name(name, keeper);
        }
        start
    }
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.max_restarts)
            .field("period", &self.period)
            .field("children", &self.children)
            .finish_non_exhaustive()
    }
}

/// What went wrong with a supervisor operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A child failed to start.
    #[error("child `{id}` failed to start: {reason}")]
    StartFailed {
        /// The child's id.
        id: String,
        /// Why.
        reason: ExitReason,
    },
    /// No child has this id (or pid).
    #[error("no child `{0}`")]
    NotFound(String),
    /// The child is running; terminate it first.
    #[error("child `{0}` is running")]
    Running(String),
    /// The child exists but is not running (stopped, or waiting to be restarted).
    #[error("child `{0}` is not running")]
    NotRunning(String),
    /// A child with this id exists already.
    #[error("a child `{0}` exists already")]
    AlreadyPresent(String),
    /// The operation needs a dynamic supervisor.
    #[error("this supervisor has no child template (it is not a dynamic supervisor)")]
    NotDynamic,
    /// A dynamic supervisor got a start argument of another type than its template takes.
    #[error("the start argument does not have the type this dynamic supervisor's template takes")]
    WrongArgument,
}

/// One child, as [`which_children`](SupervisorProcessClient::which_children) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// Its pid, or `None` if it is not running.
    pub pid: Option<Pid>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: Restart,
}

/// Counts of a supervisor's children (OTP's `count_children`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildCounts {
    /// Child specifications.
    pub specs: usize,
    /// Children running.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are workers.
    pub workers: usize,
}

/// The start argument of a dynamic supervisor's child, type-erased on the way in.
#[doc(hidden)]
pub struct DynamicArg(pub(crate) Box<dyn Any + Send>);
