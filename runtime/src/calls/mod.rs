//! The call layer: asking a process and waiting for its answer, on top of the process core.
//!
//! | module | concept |
//! | --- | --- |
//! | `request` | request/reply with timeouts: [`request()`](crate::request()), [`Request`](crate::Request), [`CallError`](crate::CallError); the exchange every call goes through |
//! | `reply` | answering: [`ReplyTo`](crate::ReplyTo), [`Caller`](crate::Caller), [`Reply`](crate::Reply) |
//! | `reply_slot` | the one-shot channel a reply travels through, closed early by the callee's exit (an `ExitWatch` of the core) |
//! | `call_timer` | the per-thread timer that bounds a call's wait |
//! | `context` | what a call carries beyond its body: its deadline, the chain of processes blocked on it |
//! | `trace` | the spans around handled messages, children of their callers' across nodes: [`trace`](crate::trace) |
//! | `dispatch` | calls by handler name with serde bodies: [`call`](crate::call), [`cast`](crate::cast) |
//! | `export` | reply tokens sent to other nodes, answered from there |
//! | `spin` | the brief busy-wait for a reply from another node |
//!
//! The core below knows nothing of calls: a call is a message to it, and a reply token that may
//! outlive its callee registers an exit watch in the callee's mailbox.

pub(crate) mod call_timer;
pub(crate) mod context;
pub(crate) mod dispatch;
pub(crate) mod export;
pub(crate) mod reply;
pub(crate) mod reply_slot;
pub(crate) mod request;
pub(crate) mod spin;
pub mod trace;
