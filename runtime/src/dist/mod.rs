//! Distribution: nodes that talk over the network (issue 11). Built bottom-up; what is here so
//! far has no I/O and is not yet reachable from the public API.
//!
//! | module | concept |
//! | --- | --- |
//! | `handshake` | authenticating a new connection: the cookie handshake, as a state machine over messages |
//!
//! Still to come, in this order: the frame format, connections (transport, one owner per peer,
//! batched writes, heartbeats), and the seam through which the process core's send, link and
//! monitor reach a pid on another node.

// The connection layer that drives the handshake is the next step; until then only the tests use
// it.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod handshake;
