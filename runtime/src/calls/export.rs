//! Reply tokens that cross nodes. A [`ReplyTo`] inside a message to another node is exported:
//! a share of it waits here under a number, and the token read on the other node answers by
//! that number (an `ANSWER` frame back to this node). Dropped unanswered there, it fails the
//! call here as a local token would; its callee's exit fails it too, as for any token.
//!
//! Only a token that watches its callee's exit can be shared, so exported: one from
//! [`Caller::defer`](crate::Caller::defer) or a [`Request`](crate::Request)'s.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{mailbox::lock, process::node_core::NodeId, reply::ReplyTo};

/// An answer for a token exported by node `node`, as the core carries it there.
pub(crate) struct Answer {
    pub(crate) node: NodeId,
    pub(crate) export: u64,
    /// The reply, encoded; `None` when the token was dropped unanswered.
    pub(crate) value: Option<Value>,
}

trait Exported: Send {
    fn answer(self: Box<Self>, value: Option<Value>);
    fn is_waiting(&self) -> bool;
}

struct Entry<R>(ReplyTo<R>);

impl<R: DeserializeOwned + Send + 'static> Exported for Entry<R> {
    fn answer(self: Box<Self>, value: Option<Value>) {
        let Some(value) = value else {
            // Dropped there: dropping it here fails the call the same way.
            return;
        };
        match serde_json::from_value::<R>(value) {
            Ok(reply) => {
                self.0.send(reply);
            }
            Err(error) => {
                tracing::error!(%error, "an answer from another node is not of the reply's type; the call fails as unanswered");
            }
        }
    }

    fn is_waiting(&self) -> bool {
        self.0.is_waiting()
    }
}

#[derive(Default)]
struct Exports {
    next: u64,
    table: HashMap<u64, Box<dyn Exported>>,
}

static EXPORTS: LazyLock<Mutex<Exports>> = LazyLock::new(Default::default);

/// Keeps `token` for an answer from another node; its number.
pub(crate) fn export<R: DeserializeOwned + Send + 'static>(token: ReplyTo<R>) -> u64 {
    let mut exports = lock(&EXPORTS);
    // Tokens whose callers gave up are pruned whenever the table doubles.
    let len = exports.table.len();
    if len >= 64 && len.is_power_of_two() {
        exports.table.retain(|_, entry| entry.is_waiting());
    }
    exports.next += 1;
    let id = exports.next;
    exports.table.insert(id, Box::new(Entry(token)));
    id
}

/// Answers the token exported as `export` (`None`: dropped unanswered); a number not exported
/// (answered already, pruned, or made up by a peer) is ignored.
pub(crate) fn answer(export: u64, value: Option<Value>) {
    let entry = lock(&EXPORTS).table.remove(&export);
    if let Some(entry) = entry {
        entry.answer(value);
    }
}
