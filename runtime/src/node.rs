//! The node: one call that runs applications until they finish, a signal arrives, or a permanent
//! application exits (triotp's `node.run(apps=[...])`).
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
//! 1. [`run`] builds a multi-threaded tokio runtime and installs a `tracing` subscriber printing to
//!    stderr, filtered by `RUST_LOG` (`info` when unset; `RUST_LOG=ferrotp=debug` shows every
//!    process's life). [`Node::default_subscriber`]`(false)` leaves the subscriber to you.
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

use std::{future::Future, process::ExitCode, sync::Arc};

use crate::{
    application::Application, context::Context, exit::ExitReason, link::Exit, process,
    supervisor::SupervisorRef,
};

/// How a node ended. As `main`'s return value it becomes the process exit status
/// ([`NodeExit::code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeExit {
    /// Every application exited by itself, normally (and none of their exits stops the node).
    Completed,
    /// A shutdown was requested, by a signal (`"SIGINT"`, `"SIGTERM"`) or by
    /// [`Node::run_until`]'s future (with the name it gave), and every application still running
    /// stopped cleanly: an orderly stop, as OTP's `init:stop`.
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

/// A set of applications to run.
#[derive(Debug)]
pub struct Node {
    apps: Vec<Application>,
    default_subscriber: bool,
    single_threaded: bool,
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
        }
    }

    /// Adds an application; applications start in the order added.
    pub fn app(mut self, app: Application) -> Self {
        self.apps.push(app);
        self
    }

    /// Whether to install the default `tracing` subscriber (on by default; it is not installed
    /// when a global subscriber exists already).
    pub fn default_subscriber(mut self, install: bool) -> Self {
        self.default_subscriber = install;
        self
    }

    /// Makes [`run`](Node::run) use a one-thread runtime: every process runs on the calling
    /// thread, one at a time, as in Moebius. Messages then never cross threads, which makes sends,
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

    /// Runs the node inside the current tokio runtime until `shutdown` completes (it then ends
    /// with [`NodeExit::Signal`] and the name `shutdown` gives), a permanent application's exit,
    /// or the end of every application.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = &'static str> + Send + 'static,
    ) -> NodeExit {
        if self.default_subscriber {
            install_subscriber();
        }
        let apps = self.apps;
        let controller = process::spawn_handle(move |ctx| control(ctx, apps));
        let pid = controller.pid();
        let watcher = tokio::spawn(async move {
            let name = shutdown.await;
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
        exit
    }
}

/// Runs these applications on a new node: [`Node::run`] (which says what happens when called
/// inside a tokio runtime).
pub fn run(apps: impl IntoIterator<Item = Application>) -> NodeExit {
    apps.into_iter().fold(Node::new(), Node::app).run()
}

/// Asks the controller to stop the node.
struct ShutdownRequest(&'static str);

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
        match start().start_link().await {
            Ok(root) => {
                tracing::info!(app = %app.name, root = %root.pid(), "application started");
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

/// A stderr subscriber filtered by `RUST_LOG` (target=level pairs, as `ferrotp=debug,info`).
fn install_subscriber() {
    use tracing_subscriber::{
        Layer, filter::Targets, layer::SubscriberExt, util::SubscriberInitExt,
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // Fails only when a global subscriber exists already, which then wins.
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
