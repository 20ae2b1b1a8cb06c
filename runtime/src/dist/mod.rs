//! Distribution: nodes that talk over the network.
//!
//! A node is started with [`LocalNode::start`] (or the default node made distributed with
//! [`LocalNode::distribute`], which [`node::run`](crate::node::run) does when `FERROTP_NODE` is
//! set). From then on a pid of another node works as a local one: [`send`](crate::send),
//! [`exit`](crate::exit), links, monitors, and calls and casts by handler name reach it over
//! one authenticated connection per pair of nodes, opened on first use. When a connection is
//! lost, every link across it delivers an exit signal with
//! [`ExitReason::NoConnection`](crate::ExitReason::NoConnection), every monitor a `Down` with
//! it, and every call in flight fails with [`CallError::NoConnection`](crate::CallError::NoConnection).
//!
//! Values that cross are serde types: messages of a type [`register`]ed on both nodes (common
//! types are registered already), and the arguments and replies of handlers called by name.
//!
//! | module | concept |
//! | --- | --- |
//! | `node` | [`LocalNode`]: starting, scoping, connecting, stopping; the route from the process core to peers |
//! | `peer` | one peer node: the connection's state, the links, monitors and calls that ride on it, teardown |
//! | `connection` | one authenticated connection at work: writer, reader, heartbeat |
//! | `outbound`, `inbound` | signals encoded into frames, and frames applied to processes |
//! | `call` | calls and casts across nodes, by handler name |
//! | `wire` | what each frame kind carries; pids relative to a connection |
//! | `types` | which message types cross: [`register`] |
//! | `tls` | mutual TLS between nodes (the `tls` feature): `TlsConfig` |
//! | `config` | a node's name (`name@host:port`), cookie and limits, in code or from `FERROTP_NODE` and `FERROTP_COOKIE` |
//! | `transport` | byte streams to other nodes: connect and listen, over TCP (and later TLS or a simulated network) |
//! | `admission` | what to do with a peer that just authenticated: simultaneous dials, restarted peers, half-open connections |
//! | `authenticate` | the handshake over a stream: frames, nonces from the OS, one deadline |
//! | `connect` | opening a connection to a node: connect, handshake, one deadline, a log line on failure |
//! | `listen` | the accept loop: a handshake task per connection, bounded so silent connections cannot lock peers out |
//! | `outbox` | a connection's outgoing frames: encoded by their senders into one buffer (capped: `max_outbox`), sent in batches by one writer |
//! | `reader` | a connection's incoming frames, read in large chunks and applied on the reader's task; bytes counted for the heartbeat |
//! | `frame` | length-delimited frames with a cap checked before allocation; the frame kinds |
//! | `handshake` | authenticating a new connection: the cookie handshake, as a state machine over messages |
//! | `fuzz` | entry points for the fuzzer (`fuzz/` at the repository root), and their oracles |

pub(crate) mod admission;
pub(crate) mod authenticate;
pub(crate) mod call;
pub(crate) mod config;
pub(crate) mod connect;
pub(crate) mod connection;
pub(crate) mod frame;
pub(crate) mod fuzz;
pub(crate) mod handshake;
pub(crate) mod inbound;
pub(crate) mod listen;
pub(crate) mod node;
pub(crate) mod outbound;
pub(crate) mod outbox;
pub(crate) mod peer;
pub(crate) mod reader;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod types;
pub(crate) mod wire;

pub use authenticate::ConnectError;
pub use config::{ConfigError, DEFAULT_TICKTIME, DistConfig, MIN_TICKTIME, NameError};
pub use frame::Codec;
pub use handshake::{Refusal, WeakCookie};
pub use node::{DistError, LocalNode, NodeDown, NodeUp, monitor_node, monitor_nodes, send_named};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsError};
pub use types::{RegisterTypeError, register};

/// A seeded pseudo-random sequence for tests that corrupt inputs: the same every run.
#[cfg(test)]
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
