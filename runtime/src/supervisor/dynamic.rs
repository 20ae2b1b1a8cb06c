//! Dynamic supervisors: children started at run time from one template (OTP's
//! `simple_one_for_one`, Elixir's `DynamicSupervisor`).

use std::{marker::PhantomData, sync::Arc, time::Duration};

use super::{
    Child, ChildCounts, DynamicArg, Supervisor, SupervisorError, SupervisorProcess, SupervisorRef,
};
use crate::{
    gen_server::{LookupError, ServerRef, StartError},
    pid::Pid,
    request::CallError,
};

/// A one-for-one supervisor whose children all come from one template, each started with its own
/// argument of type `A`.
///
/// As OTP's `simple_one_for_one`: it forgets every child it will not restart (a temporary one, or
/// a transient one that ended normally), and it stops its children all together, under one
/// shutdown timer. A template that panics fails that start only.
///
/// ```
/// use ferrotp::prelude::*;
/// use ferrotp::supervisor::{Child, DynamicSupervisor};
///
/// struct Session { user: String }
///
/// #[gen_server]
/// impl Session {
///     async fn init(user: String) -> Self { Session { user } }
///     #[install("user")]
///     async fn user(&mut self) -> String { self.user.clone() }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sessions = DynamicSupervisor::new(|user: String| Child::server::<Session>("session", user).temporary())
///     .start()
///     .await
///     .unwrap();
/// let pid = sessions.start_child("ada".to_string()).await.unwrap();
/// let session = ServerRef::<Session>::from_pid(pid).unwrap();
/// assert_eq!(session.user().await.unwrap(), "ada");
/// assert_eq!(sessions.count_children().await.unwrap().active, 1);
/// # }
/// ```
pub struct DynamicSupervisor<A> {
    spec: Supervisor,
    arg: PhantomData<fn(A)>,
}

impl<A: Send + 'static> DynamicSupervisor<A> {
    /// A dynamic supervisor whose children are `template(arg)` for each `arg` given to
    /// [`DynamicRef::start_child`].
    pub fn new(template: impl Fn(A) -> Child + Send + Sync + 'static) -> Self {
        let mut spec = Supervisor::one_for_one();
        spec.template = Some(Arc::new(move |arg| {
            arg.downcast::<A>()
                .map(|arg| template(*arg))
                .map_err(|_| SupervisorError::WrongArgument)
        }));
        DynamicSupervisor {
            spec,
            arg: PhantomData,
        }
    }

    /// See [`Supervisor::intensity`].
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.spec = self.spec.intensity(max_restarts, period);
        self
    }

    /// Registers the supervisor under `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.spec = self.spec.name(name);
        self
    }

    /// Starts the supervisor, with no children yet.
    ///
    /// # Errors
    ///
    /// As [`Supervisor::start`].
    pub async fn start(self) -> Result<DynamicRef<A>, StartError<SupervisorError>> {
        self.spec.start().await.map(DynamicRef::new)
    }

    /// [`start`](DynamicSupervisor::start), linked to the calling process.
    ///
    /// # Errors
    ///
    /// As [`Supervisor::start_link`].
    pub async fn start_link(self) -> Result<DynamicRef<A>, StartError<SupervisorError>> {
        self.spec.start_link().await.map(DynamicRef::new)
    }
}

impl<A> From<DynamicSupervisor<A>> for Supervisor {
    fn from(dynamic: DynamicSupervisor<A>) -> Self {
        dynamic.spec
    }
}

/// A running dynamic supervisor whose children take an `A` to start.
///
/// ```
/// use ferrotp::prelude::*;
/// use ferrotp::supervisor::{DynamicRef, SupervisorError};
///
/// struct Download;
/// #[gen_server]
/// impl Download {
///     async fn init(_url: String) -> Self { Download }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// DynamicSupervisor::new(|url: String| Child::server::<Download>("download", url).temporary())
///     .name("doc-downloads")
///     .start()
///     .await
///     .unwrap();
///
/// // Elsewhere: found by name, with the argument type its children take.
/// let downloads = DynamicRef::<String>::lookup("doc-downloads").unwrap();
/// let pid = downloads.start_child("https://example.org/a".into()).await.unwrap();
/// assert_eq!(downloads.count_children().await.unwrap().active, 1);
/// downloads.terminate_child(pid).await.unwrap();
/// assert!(!is_alive(pid));
/// assert_eq!(downloads.count_children().await.unwrap().specs, 0); // stopped and forgotten
///
/// // The argument type is checked when a child starts.
/// let wrong = DynamicRef::<u32>::lookup("doc-downloads").unwrap();
/// assert_eq!(wrong.start_child(7).await, Err(CallError::Handler(SupervisorError::WrongArgument)));
/// # }
/// ```
pub struct DynamicRef<A> {
    sup: SupervisorRef,
    arg: PhantomData<fn(A)>,
}

impl<A: Send + 'static> DynamicRef<A> {
    fn new(sup: SupervisorRef) -> Self {
        DynamicRef {
            sup,
            arg: PhantomData,
        }
    }

    /// The dynamic supervisor registered under `name`.
    ///
    /// # Errors
    ///
    /// [`LookupError`] when no supervisor has the name. The template's argument type is checked
    /// when a child starts ([`SupervisorError::WrongArgument`]).
    pub fn lookup(name: &str) -> Result<Self, LookupError> {
        ServerRef::<SupervisorProcess>::lookup(name).map(DynamicRef::new)
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> Pid {
        self.sup.pid()
    }

    /// The supervisor as a plain [`SupervisorRef`].
    pub fn supervisor(&self) -> SupervisorRef {
        self.sup
    }

    /// Starts a child from the template with `arg`.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::StartFailed`] (as [`CallError::Handler`]) when the child fails to start.
    pub async fn start_child(&self, arg: A) -> Result<Pid, CallError<SupervisorError>> {
        self.sup.start_dynamic(DynamicArg(Box::new(arg))).await
    }

    /// Stops the child `pid` and forgets it.
    ///
    /// # Errors
    ///
    /// [`SupervisorError::NotFound`] when `pid` is not one of its children.
    pub async fn terminate_child(&self, pid: Pid) -> Result<(), CallError<SupervisorError>> {
        self.sup.terminate_pid(pid).await
    }

    /// Counts its children.
    ///
    /// # Errors
    ///
    /// [`CallError`] when the supervisor is gone.
    pub async fn count_children(&self) -> Result<ChildCounts, CallError> {
        self.sup.count_children().await
    }
}

impl<A> Clone for DynamicRef<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for DynamicRef<A> {}

impl<A> std::fmt::Debug for DynamicRef<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynamicRef({})", self.sup.pid())
    }
}
