//! Distribution: nodes that talk over the network (issue 11). Built bottom-up; what is here so
//! far has no I/O and is not yet reachable from the public API.
//!
//! | module | concept |
//! | --- | --- |
//! | `config` | a node's name (`name@host:port`), cookie and limits, in code or from `FERROTP_NODE` and `FERROTP_COOKIE` |
//! | `transport` | byte streams to other nodes: connect and listen, over TCP (and later TLS or a simulated network) |
//! | `admission` | what to do with a peer that just authenticated: simultaneous dials, restarted peers, half-open connections |
//! | `authenticate` | the handshake over a stream: frames, nonces from the OS, one deadline |
//! | `connect` | opening a connection to a node: connect, handshake, one deadline, a log line on failure |
//! | `listen` | the accept loop: a handshake task per connection, bounded so silent connections cannot lock peers out |
//! | `outbox` | a connection's outgoing frames: encoded by their senders into one buffer, sent in batches by one writer |
//! | `reader` | a connection's incoming frames, read in large chunks and applied on the reader's task; bytes counted for the heartbeat |
//! | `frame` | length-delimited frames with a cap checked before allocation; the frame kinds |
//! | `handshake` | authenticating a new connection: the cookie handshake, as a state machine over messages |
//! | `fuzz` | entry points for the fuzzer (`fuzz/` at the repository root), and their oracles |
//!
//! Still to come, in this order: what each frame kind carries, connections (one owner per peer,
//! heartbeats, teardown), and the seam through which the process core's send, link and
//! monitor reach a pid on another node.

// The connection layer that drives the handshake is the next step; until then only the tests use
// it.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod admission;
pub(crate) mod authenticate;
pub(crate) mod config;
pub(crate) mod connect;
pub(crate) mod frame;
pub(crate) mod fuzz;
pub(crate) mod handshake;
pub(crate) mod listen;
pub(crate) mod outbox;
pub(crate) mod reader;
pub(crate) mod transport;

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
