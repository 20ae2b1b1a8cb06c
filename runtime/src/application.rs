//! Applications: the root of a supervision tree, with a restart type that decides what its exit
//! means for the node (OTP's `application`).

use std::{fmt, sync::Arc};

use crate::{
    exit::ExitReason,
    supervisor::{Restart, Supervisor},
};

type StartFn = Box<dyn FnOnce() -> Supervisor + Send>;
type StopFn = Box<dyn FnOnce(&ExitReason) + Send>;

/// An application: a name, the function that builds its root supervisor from its argument, and
/// what its exit means for the node ([`Restart`], with OTP's meaning for applications):
///
/// | restart type | the application exits normally | it exits abnormally |
/// | --- | --- | --- |
/// | [`Permanent`](Restart::Permanent) | the node stops | the node stops |
/// | [`Transient`](Restart::Transient) | logged | the node stops |
/// | [`Temporary`](Restart::Temporary) (the default) | logged | logged |
///
/// A program hands its applications to [`node::run`](crate::node::run) from `main`; here a
/// [`Node`](crate::node::Node) runs one inside a runtime that exists already, until a future
/// says to stop:
///
/// ```
/// use std::sync::mpsc;
/// use ferrotp::prelude::*;
///
/// struct Cart;
/// #[gen_server]
/// impl Cart {
///     async fn init(_: ()) -> Self { Cart }
/// }
///
/// fn shop(carts: usize) -> Supervisor {
///     (0..carts).fold(Supervisor::one_for_one(), |sup, n| {
///         sup.child(Child::server::<Cart>(&format!("cart-{n}"), ()))
///     })
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (stopped, on_stop) = mpsc::channel();
/// let app = Application::new("shop", shop, 8)
///     .permanent()
///     .on_stop(move |reason| stopped.send(reason.clone()).unwrap());
/// assert_eq!(app.name(), "shop");
///
/// let exit = Node::new()
///     .app(app)
///     .default_subscriber(false)
///     .run_until(async { "done" })
///     .await;
/// assert_eq!(exit, NodeExit::Signal("done"));
/// assert_eq!(on_stop.try_recv(), Ok(ExitReason::Shutdown));
/// # }
/// ```
pub struct Application {
    pub(crate) name: Arc<str>,
    pub(crate) start: StartFn,
    pub(crate) restart: Restart,
    pub(crate) on_stop: Option<StopFn>,
}

impl Application {
    /// An application named `name` whose root supervisor is `start(arg)`.
    pub fn new<A: Send + 'static>(
        name: &str,
        start: impl FnOnce(A) -> Supervisor + Send + 'static,
        arg: A,
    ) -> Self {
        Application {
            name: name.into(),
            start: Box::new(move || start(arg)),
            restart: Restart::Temporary,
            on_stop: None,
        }
    }

    /// The application's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Its exit stops the node, however it exits.
    pub fn permanent(self) -> Self {
        self.restart(Restart::Permanent)
    }

    /// Its abnormal exit stops the node.
    pub fn transient(self) -> Self {
        self.restart(Restart::Transient)
    }

    /// Its exit is only logged (the default).
    pub fn temporary(self) -> Self {
        self.restart(Restart::Temporary)
    }

    /// Runs `hook` after the application has stopped, with its exit reason (OTP's `stop/1`).
    pub fn on_stop(mut self, hook: impl FnOnce(&ExitReason) + Send + 'static) -> Self {
        self.on_stop = Some(Box::new(hook));
        self
    }

    /// Whether the node stops when this application exits with `reason`.
    pub(crate) fn stops_node(&self, reason: &ExitReason) -> bool {
        match self.restart {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
            Restart::Temporary => false,
        }
    }
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("name", &self.name)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}
