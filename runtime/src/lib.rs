//! ferrotp: Erlang/OTP's process model for Rust, on tokio.
//!
//! A *process* is a lightweight task with a mailbox and a [`Pid`]. Processes share nothing: they
//! [`send`] each other messages, take them with selective receive, and watch each other with links
//! and monitors so that failures are noticed and handled instead of silently lost.
//!
//! On top of processes come OTP's behaviours. A [`GenServer`] is an ordinary `impl` block under
//! [`#[gen_server]`](macro@gen_server): a process that owns a state and answers typed calls. A
//! [`Supervisor`](supervisor::Supervisor) starts servers as its children
//! ([`Child`](supervisor::Child)) and starts them again when they fail:
//!
//! ```
//! use ferrotp::prelude::*;
//!
//! struct Counter {
//!     count: u64,
//! }
//!
//! #[gen_server]
//! impl Counter {
//!     async fn init(start: u64) -> Self {
//!         Counter { count: start }
//!     }
//!
//!     #[install("add")]
//!     async fn add(&mut self, n: u64) -> u64 {
//!         self.count += n;
//!         self.count
//!     }
//!
//!     #[install("crash")]
//!     async fn crash(&mut self) {
//!         panic!("the counter crashed")
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let root = Supervisor::one_for_one()
//!         .child(Child::server::<Counter>("counter", 10).name("crate-counter"))
//!         .start()
//!         .await?;
//!
//!     // A typed call by name: the handler is a method, so a misspelt one is a compile error.
//!     let counter = ServerRef::<Counter>::named("crate-counter");
//!     assert_eq!(counter.add(5).await?, 15);
//!
//!     // The counter crashes; its supervisor starts a fresh one, which the name finds.
//!     assert!(counter.crash().await.is_err());
//!     assert_eq!(counter.add(1).await?, 11);
//!
//!     root.stop(ExitReason::Shutdown).await?;
//!     Ok(())
//! }
//! ```
//!
//! Start with the guide (`guide/` in the repository, `mdbook serve guide`): it builds up from
//! processes to gen_servers, supervisors and applications, and its code blocks run as tests. The
//! README (`README.md` in the repository) says how to run the examples, the tests and the
//! benchmarks.
//!
//! Underneath, a server is a process like any other, and so is its caller. Plain processes ask each
//! other with [`request()`] and answer with [`Request::reply`]:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use ferrotp::prelude::*;
//!
//! let echo = spawn(|mut ctx| async move {
//!     loop {
//!         let req: Request<String, String> = ctx.receive().await;
//!         let text = req.body.clone();
//!         req.reply(text);
//!     }
//! });
//! let reply: Result<String, CallError> = request(echo, "hello".to_string()).await;
//! assert_eq!(reply.as_deref(), Ok("hello"));
//! # }
//! ```
//!
//! # Layout
//!
//! For readers of the source: one module per concept. Only the linked ones are public; the items of
//! the others are re-exported at the crate root.
//!
//! | layer | modules | concept |
//! | --- | --- | --- |
//! | the process core | `process/`: `pid`, `node_core`, `table`, `task`, `context`, `mailbox`, `message`, `exit`, `link`, `registry`, `timer`, `info`, `unwind`, `remote` (its module doc maps them) | processes and what happens to them: [`spawn`], [`send`], [`wait`], [`Pid`], [`Context`], [`Message`], [`ExitReason`], links and monitors ([`Exit`], [`Down`], [`exit()`]), names ([`register`], [`whereis`], [`send_named`]), timers ([`send_after`], [`send_interval`]), introspection ([`processes`], [`process_info`]) |
//! | calls | `calls/`: `request`, `reply`, `reply_slot`, `call_timer`, `dispatch`, `export` | request/reply with timeouts ([`request()`], [`Request`], [`CallError`], [`INFINITY`]), answering ([`ReplyTo`], [`Caller`], [`Reply`]), calls by handler name with serde bodies ([`call`], [`cast`]) |
//! | behaviours | [`gen_server`](mod@gen_server), [`supervisor`] (`child`, `server`, `dynamic` inside) | generic servers ([`GenServer`], [`ServerRef`], [`NamedRef`], [`Start`]) and supervision trees ([`Supervisor`](supervisor::Supervisor), [`Child`](supervisor::Child), [`DynamicSupervisor`](supervisor::DynamicSupervisor)) |
//! | distribution | [`dist`] (its module doc maps it) | nodes that talk over the network: [`LocalNode`](dist::LocalNode), remote pids, the connections between nodes; plugged into the core through one seam (`process/remote`) |
//! | process groups | [`pg`] (its module doc maps it) | named groups of processes across the nodes, and broadcast to them; above the core through its exit watch, and above distribution for the exchange between nodes |
//! | the top | [`application`], [`node`] | the root of a tree, and the entry point that runs applications (and makes the node distributed) |
//!
//! Each layer uses only the ones above it in this table; the process core knows nothing of calls
//! or behaviours.
//!
//! # Tracing
//!
//! Spawns, exits (with their reasons), links, monitors and exit signals are `tracing` events at
//! `debug` level carrying the pid (and the registered name where there is one); a crash is one
//! `warn` event, `process crashed`, with the reason and, for a panic, its location (and its
//! backtrace when `RUST_BACKTRACE` asks for one). Under a [`node`], which installs a subscriber
//! and a panic hook (see its [Logging](node#logging) section), that event is the only report of a
//! crash and `RUST_LOG=ferrotp=debug` shows a process's life.
//!
//! Every message a gen_server handles runs in a `trace`-level span, the child of its caller's
//! span on any node: see [`trace`].

// Bad input gets a typed error here, never a panic, so every unwrap is a reviewed exception.
#![warn(clippy::unwrap_used)]

pub mod application;
mod calls;
pub mod dist;
pub mod gen_server;
pub mod node;
pub mod pg;
mod process;
pub mod supervisor;

// The process core's modules by their short paths (`crate::pid`), as the code above the core
// names them.
use process::{
    bound, context, exit, info, link, mailbox, message, pid, registry, table, task, timer, unwind,
};
// The same for the call layer.
use calls::{call_timer, dispatch, reply, reply_slot, request};

pub use bound::{MailboxLimit, Overflow, SendError, send_wait, try_send};
pub use calls::trace;
pub use context::{Context, Timeout};
pub use dispatch::{Encoded, call, call_timeout, cast};
pub use exit::{ExitReason, ProcessOutput};
pub use gen_server::{
    Failure, FailureKind, GenServer, LookupError, NamedRef, OnError, ServerRef, Start, StartError,
    Starting, Strategy,
};
pub use info::{ProcessInfo, Status, process_info, processes};
pub use link::{Down, Exit, MonitorRef, NoProc, exit};
pub use message::Message;
pub use pid::Pid;
pub use process::{ProcessHandle, SpawnOpts, is_alive, send, spawn, spawn_handle, spawn_opt, wait};
pub use registry::{NotRegistered, RegisterError, register, send_named, unregister, whereis};
pub use reply::{Caller, Reply, ReplyTo};
pub use request::{CallError, DEFAULT_TIMEOUT, INFINITY, Request, request, request_timeout};
pub use task::self_pid;
pub use timer::{TimerRef, send_after, send_interval};

pub use ferrotp_macros::{background, fallback, gen_server, info, install, on_error};

// Generated code names this crate `::ferrotp`, which must also resolve inside it: the supervisor is
// a `#[gen_server]` itself.
extern crate self as ferrotp;

/// Entry points for `cargo fuzz` (the `fuzz/` crate at the repository root): not API.
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::dist::fuzz::{frames, frames_seeds, handshake, handshake_seeds};
}

#[doc(hidden)]
pub mod __private {
    pub use serde_json::Value;
    pub use tracing;
}

/// Everything a typical program uses, for `use ferrotp::prelude::*;`.
///
/// Processes, messages and exit signals; requests and the by-name dispatch functions
/// ([`call`], [`call_timeout`], [`cast`]); gen_servers and the errors of starting and looking them
/// up; timers and introspection; the supervision tree's building blocks ([`Supervisor`](crate::supervisor::Supervisor),
/// [`Child`](crate::supervisor::Child), [`DynamicSupervisor`](crate::supervisor::DynamicSupervisor),
/// [`Application`](crate::application::Application)) and the [`node`] that runs them.
///
/// What stays out: the rarer supervisor knobs (`Restart`, `Shutdown`, `Strategy`, `AutoShutdown`, the
/// `ChildInfo` reports) live in [`supervisor`] and the generated-code plumbing in
/// [`gen_server`](mod@crate::gen_server); both read better with their module path at the use site.
pub mod prelude {
    pub use crate::application::Application;
    pub use crate::node::{self, Node, NodeExit};
    pub use crate::supervisor::{Child, DynamicSupervisor, Supervisor};
    pub use crate::{
        CallError, Caller, Context, DEFAULT_TIMEOUT, Down, Exit, ExitReason, Failure, FailureKind,
        GenServer, INFINITY, LookupError, Message, MonitorRef, NamedRef, NoProc, OnError, Pid,
        ProcessHandle, ProcessInfo, Reply, ReplyTo, Request, ServerRef, Start, StartError, Status,
        Timeout, TimerRef, background, call, call_timeout, cast, exit, fallback, gen_server, info,
        install, is_alive, on_error, process_info, processes, register, request, request_timeout,
        self_pid, send, send_after, send_interval, send_named, spawn, spawn_handle, unregister,
        wait, whereis,
    };
}
