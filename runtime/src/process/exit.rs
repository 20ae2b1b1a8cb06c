//! Why a process ended.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Serialize};

/// The reason a process exited, or the reason carried by an exit signal.
///
/// | reason | raised by | kills a linked process that does not trap exits |
/// | --- | --- | --- |
/// | [`Normal`](ExitReason::Normal) | the process function returned | no |
/// | [`Shutdown`](ExitReason::Shutdown) | an orderly stop (a supervisor's shutdown) | yes |
/// | [`Kill`](ExitReason::Kill) | [`exit(pid, Kill)`](crate::exit): untrappable | the target always dies, with `Killed` |
/// | [`Killed`](ExitReason::Killed) | the reason of a process that was killed | yes |
/// | [`Panic`](ExitReason::Panic) | the process panicked; holds the panic message | yes |
/// | [`NoProc`](ExitReason::NoProc) | the process did not exist (link or monitor of a dead pid) | yes |
/// | [`Error`](ExitReason::Error) | the process function returned `Err(e)`; holds `e` as text | yes |
/// | [`NoConnection`](ExitReason::NoConnection) | the process's node could not be reached, or the connection to it was lost | yes |
/// | [`MaxRestartIntensity`](ExitReason::MaxRestartIntensity) | a supervisor gave up restarting its children (a shutdown for restart purposes: a transient parent does not restart it) | yes |
///
/// Reasons are cheap to clone (messages are reference-counted) and serialisable, so they can cross
/// nodes.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExitReason {
    /// The process finished its work.
    Normal,
    /// The process was asked to stop in an orderly way.
    Shutdown,
    /// An untrappable kill signal; the process it is sent to exits with [`ExitReason::Killed`].
    Kill,
    /// The process was killed by [`ExitReason::Kill`] (or dropped by its runtime shutting down).
    Killed,
    /// The process panicked; the panic message.
    Panic(Arc<str>),
    /// The process did not exist.
    NoProc,
    /// A user-defined error.
    Error(Arc<str>),
    /// A supervisor restarted its children more often than its intensity allows, stopped them,
    /// and exited (escalating to its own supervisor, which restarts it if it is permanent). OTP
    /// exits with `shutdown` here; ferrotp keeps the reason distinct for logs, `Down` and `Exit`,
    /// and treats it as a shutdown for restart purposes: a transient parent does not restart it.
    MaxRestartIntensity,
    /// The process lives on another node that could not be reached, or the connection to it was
    /// lost (Erlang's `noconnection`): links and monitors of processes there fire with it.
    NoConnection,
}

impl ExitReason {
    /// A user-defined error reason from anything printable.
    ///
    /// ```
    /// let reason = ferrotp::ExitReason::error("disk full");
    /// assert_eq!(reason.to_string(), "error: disk full");
    /// ```
    pub fn error(message: impl fmt::Display) -> Self {
        ExitReason::Error(message.to_string().into())
    }

    /// `Normal` and `Shutdown`: the reasons OTP does not report as crashes and a transient child is
    /// not restarted for.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Kill => f.write_str("kill"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::Panic(message) => write!(f, "panic: {message}"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::Error(message) => write!(f, "error: {message}"),
            ExitReason::MaxRestartIntensity => f.write_str("reached max restart intensity"),
            ExitReason::NoConnection => f.write_str("noconnection"),
        }
    }
}

impl fmt::Debug for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What a process function's return value says about how the process ended.
///
/// Implemented for `()` and [`ExitReason`] itself (a process can exit with any reason by
/// returning it), and for `Result<T, E>`: `Ok` is a normal exit, `Err(e)` exits with
/// [`ExitReason::Error`] holding `e`'s text, so `?` works inside a process. A function that loops
/// forever (its future's output is `!`) qualifies too.
#[diagnostic::on_unimplemented(
    message = "a process function must return `()`, `ExitReason` or `Result<T, E>`, not `{Self}`",
    label = "this process returns `{Self}`",
    note = "to get a value back from a process, start it with `spawn_handle` and `join` it",
    note = "or end the process body with `;` so that it returns `()`"
)]
pub trait ProcessOutput {
    /// The exit reason this return value stands for.
    fn exit_reason(&self) -> ExitReason;
}

impl ProcessOutput for () {
    fn exit_reason(&self) -> ExitReason {
        ExitReason::Normal
    }
}

impl ProcessOutput for ExitReason {
    fn exit_reason(&self) -> ExitReason {
        self.clone()
    }
}

impl<T, E: fmt::Display> ProcessOutput for Result<T, E> {
    fn exit_reason(&self) -> ExitReason {
        match self {
            Ok(_) => ExitReason::Normal,
            Err(e) => ExitReason::error(e),
        }
    }
}

/// A process that loops forever returns `!`. Stable Rust cannot name that type, but it can reach it
/// as the output of `fn() -> !`, which is enough to implement a trait for it. The items are `pub`
/// because the impl below is public; the module keeps them out of the API.
#[allow(unreachable_pub)]
mod never {
    pub trait HasOutput {
        type Output;
    }

    impl<T> HasOutput for fn() -> T {
        type Output = T;
    }

    pub type Never = <fn() -> ! as HasOutput>::Output;
}

impl ProcessOutput for never::Never {
    fn exit_reason(&self) -> ExitReason {
        match *self {}
    }
}
