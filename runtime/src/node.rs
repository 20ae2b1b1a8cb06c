//! The node: one call that runs applications until they finish, a signal arrives, or a permanent
//! application exits.
//!
//! ```no_run
//! use ferrotp::application::Application;
//! use ferrotp::supervisor::Supervisor;
//!
//! fn main() -> ferrotp::node::NodeExit {
//!     ferrotp::node::run([Application::new("shop", |()| Supervisor::one_for_one(), ())])
//! }
//! ```
//!
//! What happens, in order:
//! 1. [`run`] builds a multi-threaded tokio runtime and sets up logging (see below).
//! 2. The applications start in order, each its root supervisor. If one fails to start, those
//!    already started are stopped and the node ends with [`NodeExit::StartFailed`].
//! 3. The node runs until every application has exited by itself ([`NodeExit::Completed`], or
//!    [`NodeExit::Failed`] if one ended abnormally), until SIGINT or SIGTERM ([`NodeExit::Signal`],
//!    an orderly stop with status 0), or until an application whose exit stops the node exits
//!    ([`NodeExit::AppExited`]).
//! 4. The applications still running stop in reverse order (their supervisors stop their trees,
//!    running every gen_server's `terminate`), and each one's stop hook runs.
//!
//! [`Node::run_until`] does the same inside a runtime you own, ending on your future instead of a
//! signal.
//!
//! # Logging
//!
//! Unless told not to ([`Node::default_subscriber`]`(false)`), the node installs a `tracing`
//! subscriber and a panic hook ([`init_logging`] does the same for a program without a node):
//! - Events go to stderr, filtered by `RUST_LOG`: comma-separated `target=level` pairs and bare
//!   levels, as `ferrotp=debug,info` (`tracing-subscriber`'s `Targets` syntax: span and field
//!   filters such as `ferrotp[pid]=debug` are refused). Unset or empty, it means `info`; a value that does not parse is reported, in a
//!   warning naming it, and `info` used instead. `RUST_LOG=ferrotp=debug` shows every process's
//!   life.
//! - Lines are coloured only when stderr is a terminal and `NO_COLOR` is unset or empty.
//! - A crash is one event: a panic inside a process is not printed by Rust's panic hook, since the
//!   process's crash report (a `warn` event, `process crashed`) says it all: pid, registered
//!   name, `reason=panic: <message>`, the panic's `location` and, when `RUST_BACKTRACE` asks for
//!   one, its `backtrace`. Every other panic (in `main`, in a plain thread or tokio task) is
//!   printed by the panic hook installed before, as always.
//!
//! The subscriber is not installed when a global one exists already (yours, then, gets the
//! events); the panic hook is installed either way, once, for the rest of the program. A panic
//! hook of your own installed before (to report panics elsewhere, say) then sees only the panics
//! outside processes; to have it see every panic, turn the node's logging off.

use std::{any::Any, ffi::OsString, future::Future, process::ExitCode, sync::Arc};

use crate::{
    application::Application, context::Context, exit::ExitReason, link::Exit, process,
    supervisor::SupervisorRef,
};

/// How a node ended. As `main`'s return value it becomes the process exit status
/// ([`NodeExit::code`]).
///
/// # Examples
///
/// An import that fails, under a supervisor that does not restart it: the application ends
/// abnormally, and with it (the only one) the node, which says so and exits with status 1.
///
/// ```
/// use std::time::Duration;
/// use ferrotp::prelude::*;
///
/// async fn import(_ctx: Context) -> Result<(), String> {
///     Err("the input file is empty".into())
/// }
///
/// let exit = node::run([Application::new(
///     "import",
///     |()| {
///         Supervisor::one_for_one()
///             .intensity(0, Duration::from_secs(1))
///             .child(Child::process("import", import).transient())
///     },
///     (),
/// )]);
/// assert_eq!(
///     exit,
///     NodeExit::Failed {
///         signal: None,
///         apps: vec![("import".into(), ExitReason::MaxRestartIntensity)],
///     }
/// );
/// assert_eq!(exit.code(), 1);
/// // An orderly stop on a signal is a success.
/// assert_eq!(NodeExit::Signal("SIGTERM").code(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeExit {
    /// Every application exited by itself, normally (and none of their exits stops the node).
    Completed,
    /// A shutdown was requested, by a signal (`"SIGINT"`, `"SIGTERM"`) or by
    /// [`Node::run_until`]'s future (named as that method says), and every application still
    /// running stopped cleanly: an orderly stop, as OTP's `init:stop`.
    Signal(&'static str),
    /// The node ended, by itself or on request, and these applications ended abnormally: with a
    /// reason other than `normal` or `shutdown`, on their own or when asked to stop.
    Failed {
        /// The shutdown request that ended the node, if one did.
        signal: Option<&'static str>,
        /// Each application that ended abnormally, with its root supervisor's exit reason.
        apps: Vec<(Arc<str>, ExitReason)>,
    },
    /// An application whose exit stops the node exited.
    AppExited {
        /// The application.
        app: Arc<str>,
        /// Its root supervisor's exit reason.
        reason: ExitReason,
    },
    /// An application failed to start.
    StartFailed {
        /// The application.
        app: Arc<str>,
        /// Why.
        error: String,
    },
}

impl NodeExit {
    /// The process exit status: 0 for a clean end (every application done normally, a permanent
    /// one that exited normally, or an orderly stop on SIGINT or SIGTERM in which every
    /// application stopped cleanly), 1 for an abnormal application exit, 2 for a failed start.
    ///
    /// A signal is an orderly stop, not a failure: systemd, Docker and Kubernetes send SIGTERM to
    /// stop a service and read a non-zero status (143 above all) as a failure.
    pub fn code(&self) -> u8 {
        match self {
            NodeExit::Completed | NodeExit::Signal(_) => 0,
            NodeExit::AppExited { reason, .. } if reason.is_normal() => 0,
            NodeExit::AppExited { .. } | NodeExit::Failed { .. } => 1,
            NodeExit::StartFailed { .. } => 2,
        }
    }
}

impl std::process::Termination for NodeExit {
    fn report(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// A set of applications to run, and how: [`node::run`](run) with options.
///
/// # Examples
///
/// A node whose one application runs a job and ends when the job is done: the job is a
/// significant child, so its supervisor shuts down after it, and the node, its last application
/// gone, ends too.
///
/// ```
/// use ferrotp::prelude::*;
/// use ferrotp::supervisor::AutoShutdown;
///
/// async fn job(ctx: Context) {
///     println!("{} at work", ctx.pid());
/// }
///
/// let batch = Application::new(
///     "batch",
///     |()| {
///         Supervisor::one_for_one()
///             .auto_shutdown(AutoShutdown::AnySignificant)
///             .child(Child::process("job", job).transient().significant())
///     },
///     (),
/// );
/// let exit = Node::new().app(batch).single_threaded().run();
/// assert_eq!(exit, NodeExit::Completed);
/// ```
#[derive(Debug)]
pub struct Node {
    apps: Vec<Application>,
    default_subscriber: bool,
    single_threaded: bool,
    dist: Option<crate::dist::DistConfig>,
}

impl Default for Node {
    fn default() -> Self {
        Node::new()
    }
}

impl Node {
    /// A node with no applications yet.
    pub fn new() -> Self {
        Node {
            apps: Vec::new(),
            default_subscriber: true,
            single_threaded: false,
            dist: None,
        }
    }

    /// Makes the node distributed under `config` before its applications start (see
    /// [`dist`](crate::dist)). Without it, the node is distributed when the environment says so:
    /// `FERROTP_NODE` set to its name (`name@host:port`) and `FERROTP_COOKIE` to the cookie
    /// ([`DistConfig::from_env`](crate::dist::DistConfig::from_env)). A node that cannot be
    /// distributed (a bad name or cookie, a port in use) ends with [`NodeExit::StartFailed`]
    /// before any application starts.
    pub fn dist(mut self, config: crate::dist::DistConfig) -> Self {
        self.dist = Some(config);
        self
    }

    /// Adds an application; applications start in the order added.
    pub fn app(mut self, app: Application) -> Self {
        self.apps.push(app);
        self
    }

    /// Whether to set up logging (on by default): the `tracing` subscriber, unless a global one
    /// exists already, and the panic hook that leaves a process's panic to its crash report (see
    /// [Logging](self#logging)). Off, both are left to you: the panic hook in place (Rust's,
    /// unless you or an earlier node installed another) then sees every panic in a process, which
    /// the runtime's crash report follows.
    pub fn default_subscriber(mut self, install: bool) -> Self {
        self.default_subscriber = install;
        self
    }

    /// Makes [`run`](Node::run) use a one-thread runtime: every process runs on the calling
    /// thread, one at a time. Messages then never cross threads, which makes sends,
    /// calls and spawns cheaper, at the price of using one core; a handler that blocks that thread
    /// stalls the whole node.
    pub fn single_threaded(mut self) -> Self {
        self.single_threaded = true;
        self
    }

    /// Builds a tokio runtime (multi-threaded unless [`single_threaded`](Node::single_threaded))
    /// and runs the node until a signal, a permanent application's exit, or the end of every
    /// application.
    ///
    /// Called inside a tokio runtime (which cannot block on another), it returns
    /// [`NodeExit::StartFailed`] saying to use [`run_async`](Node::run_async) there instead.
    pub fn run(self) -> NodeExit {
        if tokio::runtime::Handle::try_current().is_ok() {
            return NodeExit::StartFailed {
                app: "ferrotp".into(),
                error: "Node::run (or node::run) was called inside a tokio runtime, which cannot \
                        block on a runtime of its own: use `Node::run_async().await` there"
                    .into(),
            };
        }
        let mut builder = match self.single_threaded {
            true => tokio::runtime::Builder::new_current_thread(),
            false => tokio::runtime::Builder::new_multi_thread(),
        };
        let runtime = match builder.enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                return NodeExit::StartFailed {
                    app: "ferrotp".into(),
                    error: format!("cannot build the tokio runtime: {error}"),
                };
            }
        };
        runtime.block_on(self.run_async())
    }

    /// Runs the node inside the current tokio runtime until SIGINT or SIGTERM, a permanent
    /// application's exit, or the end of every application.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub async fn run_async(self) -> NodeExit {
        let shutdown = signals();
        self.run_until(shutdown).await
    }

    /// Runs the node inside the current tokio runtime until `shutdown` completes, a permanent
    /// application's exit, or the end of every application: [`run_async`](Node::run_async) with
    /// `shutdown` in place of SIGINT and SIGTERM.
    ///
    /// `shutdown` completing is an orderly stop: the applications still running stop in reverse
    /// order and the node ends with [`NodeExit::Signal`], or [`NodeExit::Failed`] with `signal`
    /// set if one of them did not stop cleanly. The name they carry is `shutdown`'s output when
    /// that is a `&'static str` (a label of your choosing), and `"shutdown"` for any other output
    /// (`tokio::signal::ctrl_c()`'s `io::Result<()>`, a channel's `Result`, `()`), which is
    /// dropped.
    ///
    /// # Examples
    ///
    /// Ending on Ctrl-C instead of SIGINT or SIGTERM:
    ///
    /// ```no_run
    /// use ferrotp::prelude::*;
    ///
    /// #[tokio::main]
    /// async fn main() -> NodeExit {
    ///     Node::new()
    ///         .app(Application::new("shop", |()| Supervisor::one_for_one(), ()))
    ///         .run_until(tokio::signal::ctrl_c())
    ///         .await
    /// }
    /// ```
    ///
    /// Ending when the rest of the program says so:
    ///
    /// ```
    /// use ferrotp::prelude::*;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let node = Node::new()
    ///     .app(Application::new("shop", |()| Supervisor::one_for_one(), ()))
    ///     .run_until(stopped);
    /// let node = tokio::spawn(node);
    /// // ... later:
    /// stop.send(()).unwrap();
    /// assert_eq!(node.await.unwrap(), NodeExit::Signal("shutdown"));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub async fn run_until<F>(self, shutdown: F) -> NodeExit
    where
        F: Future + Send + 'static,
        F::Output: 'static,
    {
        if self.default_subscriber {
            init_logging();
        }
        let config = match self
            .dist
            .map(Ok)
            .or_else(|| crate::dist::DistConfig::from_env().transpose())
        {
            None => None,
            Some(Ok(config)) => Some(config),
            Some(Err(error)) => return dist_failed(error.to_string()),
        };
        let node = match config {
            None => None,
            Some(config) => match crate::dist::LocalNode::distribute(config).await {
                Ok(node) => Some(node),
                Err(error) => return dist_failed(error.to_string()),
            },
        };
        let apps = self.apps;
        let controller = process::spawn_handle(move |ctx| control(ctx, apps));
        let pid = controller.pid();
        let watcher = tokio::spawn(async move {
            let name = shutdown_name(&shutdown.await);
            process::send(pid, ShutdownRequest(name));
        });
        let exit = controller
            .join()
            .await
            .unwrap_or_else(|reason| NodeExit::AppExited {
                app: "ferrotp node controller".into(),
                reason,
            });
        watcher.abort();
        if let Some(node) = node {
            node.stop().await;
        }
        exit
    }
}

/// The node could not be distributed: it ends before any application starts.
fn dist_failed(error: String) -> NodeExit {
    tracing::error!(%error, "the node could not be distributed");
    NodeExit::StartFailed {
        app: "distribution".into(),
        error,
    }
}

/// Runs these applications on a new node: [`Node::run`] (which says what happens when called
/// inside a tokio runtime).
///
/// # Examples
///
/// A program is its `main` handing the node its applications; the node's exit becomes the exit
/// status. This one's application greets and ends, and with it the node, with status 0:
///
/// ```
/// use ferrotp::prelude::*;
/// use ferrotp::supervisor::AutoShutdown;
///
/// async fn greet(ctx: Context) {
///     println!("hello from {}", ctx.pid());
/// }
///
/// fn hello(_: ()) -> Supervisor {
///     Supervisor::one_for_one()
///         .auto_shutdown(AutoShutdown::AnySignificant)
///         .child(Child::process("greet", greet).transient().significant())
/// }
///
/// fn main() -> NodeExit {
///     node::run([Application::new("hello", hello, ())])
/// }
/// ```
///
/// A node whose applications never end by themselves runs until SIGINT or SIGTERM, as in the
/// [module](self)'s example.
pub fn run(apps: impl IntoIterator<Item = Application>) -> NodeExit {
    apps.into_iter().fold(Node::new(), Node::app).run()
}

/// Asks the controller to stop the node.
struct ShutdownRequest(&'static str);

/// What a node stopped by [`Node::run_until`]'s future reports as the shutdown's name.
fn shutdown_name(output: &dyn Any) -> &'static str {
    output
        .downcast_ref::<&'static str>()
        .copied()
        .unwrap_or("shutdown")
}

struct RunningApp {
    app: Application,
    root: SupervisorRef,
}

/// The node's controller process: starts the applications, watches their root supervisors (linked,
/// with exits trapped) and stops them.
async fn control(mut ctx: Context, apps: Vec<Application>) -> NodeExit {
    ctx.trap_exit(true);
    let mut running: Vec<RunningApp> = Vec::with_capacity(apps.len());
    for mut app in apps {
        let start = std::mem::replace(
            &mut app.start,
            Box::new(crate::supervisor::Supervisor::one_for_one),
        );
        // Logged before the start: the tree's processes run while it starts, and their logs should
        // follow the application's, not race it. (OTP too reports the end of a start only at a
        // level not shown by default.)
        tracing::info!(app = %app.name, "starting application");
        match start().start_link().await {
            Ok(root) => {
                tracing::debug!(app = %app.name, root = %root.pid(), "application started");
                running.push(RunningApp { app, root });
            }
            Err(error) => {
                tracing::error!(app = %app.name, %error, "application failed to start");
                stop_all(running).await;
                return NodeExit::StartFailed {
                    app: app.name,
                    error: error.to_string(),
                };
            }
        }
    }
    // Applications that ended abnormally by themselves without stopping the node.
    let mut failed = Vec::new();
    loop {
        if running.is_empty() {
            tracing::info!("every application has exited; the node stops");
            return match failed.is_empty() {
                true => NodeExit::Completed,
                false => NodeExit::Failed {
                    signal: None,
                    apps: failed,
                },
            };
        }
        let message = ctx
            .receive_matching(|m| m.is::<Exit>() || m.is::<ShutdownRequest>())
            .await;
        let message = match message.downcast::<ShutdownRequest>() {
            Ok(ShutdownRequest(name)) => {
                tracing::info!(signal = name, "shutdown requested; stopping applications");
                let unclean = stop_all(running).await;
                return match unclean.is_empty() {
                    true => NodeExit::Signal(name),
                    false => NodeExit::Failed {
                        signal: Some(name),
                        apps: unclean,
                    },
                };
            }
            Err(message) => message,
        };
        let Some(Exit { from, reason }) = message.downcast::<Exit>().ok() else {
            continue;
        };
        let Some(index) = running.iter().position(|r| r.root.pid() == from) else {
            continue;
        };
        let RunningApp { app, .. } = running.remove(index);
        if app.stops_node(&reason) {
            tracing::error!(app = %app.name, %reason, restart = ?app.restart, "application exited; stopping the node");
            let name = app.name.clone();
            run_stop_hook(app, &reason);
            stop_all(running).await;
            return NodeExit::AppExited { app: name, reason };
        }
        if reason.is_normal() {
            tracing::info!(app = %app.name, %reason, "application exited");
        } else {
            tracing::warn!(app = %app.name, %reason, "application exited");
            failed.push((app.name.clone(), reason.clone()));
        }
        run_stop_hook(app, &reason);
    }
}

/// Stops applications in reverse start order, each after the one started after it; returns those
/// that did not stop cleanly.
async fn stop_all(running: Vec<RunningApp>) -> Vec<(Arc<str>, ExitReason)> {
    let mut unclean = Vec::new();
    for RunningApp { app, root } in running.into_iter().rev() {
        let reason = match root.stop(ExitReason::Shutdown).await {
            Ok(()) => ExitReason::Shutdown,
            Err(crate::CallError::Exited { reason, .. }) => reason,
            Err(_) => ExitReason::NoProc,
        };
        tracing::info!(app = %app.name, %reason, "application stopped");
        if !reason.is_normal() {
            unclean.push((app.name.clone(), reason.clone()));
        }
        run_stop_hook(app, &reason);
    }
    unclean
}

fn run_stop_hook(app: Application, reason: &ExitReason) {
    if let Some(hook) = app.on_stop {
        hook(reason);
    }
}

/// Resolves with the name of the first termination signal received. The handlers are installed
/// when this is called, not when the future is first polled, so a signal arriving while the
/// applications start is not lost (nor does it kill the process).
fn signals() -> impl Future<Output = &'static str> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    std::future::poll_fn(|cx| {
                        if interrupt.poll_recv(cx).is_ready() {
                            return std::task::Poll::Ready("SIGINT");
                        }
                        terminate.poll_recv(cx).map(|_| "SIGTERM")
                    })
                    .await
                }
                (Ok(mut interrupt), Err(_)) => {
                    interrupt.recv().await;
                    "SIGINT"
                }
                (Err(_), Ok(mut terminate)) => {
                    terminate.recv().await;
                    "SIGTERM"
                }
                (Err(error), Err(_)) => {
                    tracing::warn!(%error, "cannot listen for signals; the node stops only by itself");
                    std::future::pending().await
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// Sets up logging as a node does (see [Logging](self#logging)), for a program or a test that runs
/// processes without a node: a `tracing` subscriber printing to stderr, filtered by `RUST_LOG`
/// (unless a global subscriber exists already), and the panic hook that makes a process's crash
/// one log event. Calling it again changes nothing.
///
/// ```
/// use ferrotp::prelude::*;
///
/// #[tokio::main]
/// async fn main() {
///     ferrotp::node::init_logging();
///     let pid = spawn(|_ctx| async { panic!("reported once, as `process crashed`") });
///     assert!(matches!(wait(pid).await, ExitReason::Panic(_)));
/// }
/// ```
pub fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::{Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let spec = std::env::var_os("RUST_LOG");
    let (filter, rejected) = match log_filter(spec.as_deref()) {
        Ok(filter) => (filter, None),
        Err(error) => (default_filter(), Some(error)),
    };
    let ansi = colours(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_filter(filter);
    // Fails only when a global subscriber exists already, which then wins.
    let installed = tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .is_ok();
    crate::unwind::silence_process_panics();
    if let (true, Some(error)) = (installed, rejected) {
        let spec = spec.unwrap_or_default();
        tracing::warn!(
            "RUST_LOG={:?} is not a filter this node reads ({error}); logging at `info` instead. \
             Expected comma-separated `target=level` pairs and bare levels, as \
             `ferrotp=debug,info`",
            spec.to_string_lossy()
        );
    }
}

/// What an unset, empty or invalid `RUST_LOG` means.
fn default_filter() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
}

/// The filter `RUST_LOG` asks for (`info` when unset or empty), or why it is not one: the first
/// directive that does not parse. Directives are trimmed and empty ones skipped, for `Targets`
/// reads an empty directive as "everything, at trace level".
fn log_filter(
    spec: Option<&std::ffi::OsStr>,
) -> Result<tracing_subscriber::filter::Targets, String> {
    use tracing_subscriber::filter::Targets;
    let Some(spec) = spec else {
        return Ok(default_filter());
    };
    let spec = spec.to_str().ok_or("it is not UTF-8")?;
    let directives: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    if directives.is_empty() {
        return Ok(default_filter());
    }
    for directive in &directives {
        // `Targets` would take `ferrotp[pid]=debug` (env-filter's span syntax) for a target
        // named `ferrotp[pid]` and match nothing, silently: refuse it instead.
        if directive.contains(['[', ']', '{', '}', '"']) {
            return Err(format!(
                "`{directive}`: span and field filters (`[..]`, `{{..}}`) are not supported"
            ));
        }
        if let Err(error) = directive.parse::<Targets>() {
            return Err(format!("`{directive}`: {error}"));
        }
    }
    directives
        .join(",")
        .parse()
        .map_err(|error| format!("{error}"))
}

/// Whether log lines get ANSI colours: only on a terminal, and not when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
fn colours(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colours(true, None));
        assert!(colours(true, Some("".into())));
        assert!(!colours(true, Some("1".into())));
        assert!(!colours(false, None));
        assert!(!colours(false, Some("".into())));
    }

    fn parsed(spec: &str) -> Result<String, String> {
        log_filter(Some(spec.as_ref())).map(|filter| filter.to_string())
    }

    #[test]
    fn span_and_field_filters_are_refused_not_read_as_target_names() {
        for spec in [
            "ferrotp[pid]=debug",
            "info,ferrotp[spawn{pid=1}]=trace",
            "a{x}=info",
        ] {
            let error = parsed(spec).expect_err(spec);
            assert!(error.contains("span and field filters"), "{spec}: {error}");
        }
    }

    #[test]
    fn rust_log_is_read_as_targets_and_rejected_whole_when_one_directive_is_bad() {
        assert_eq!(
            parsed("ferrotp=debug,info"),
            Ok("ferrotp=debug,info".into())
        );
        // Spaces and empty directives (which `Targets` would read as "trace everything") go.
        assert_eq!(
            parsed(" ferrotp=debug, ,warn,"),
            Ok("ferrotp=debug,warn".into())
        );
        assert_eq!(parsed(""), Ok(default_filter().to_string()));
        assert_eq!(parsed(" , "), Ok(default_filter().to_string()));
        assert_eq!(log_filter(None).unwrap().to_string(), "info");
        let error = parsed("info,ferrotp=verbose").unwrap_err();
        assert!(error.starts_with("`ferrotp=verbose`: "), "{error}");
        let error = parsed("ferrotp[{pid}=debug").unwrap_err();
        assert!(error.starts_with("`ferrotp[{pid}=debug`: "), "{error}");
    }

    #[test]
    fn run_until_names_the_shutdown_by_a_str_output_only() {
        assert_eq!(shutdown_name(&"deploy"), "deploy");
        assert_eq!(shutdown_name(&()), "shutdown");
        assert_eq!(shutdown_name(&Ok::<(), std::io::Error>(())), "shutdown");
        assert_eq!(shutdown_name(&String::from("owned")), "shutdown");
    }
}
