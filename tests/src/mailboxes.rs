//! What the tests of bounded mailboxes share: a server that holds its mailbox full on request,
//! and helpers to make limits and wait for a process's state.

use std::{any::Any, num::NonZeroUsize, sync::Arc};

use ferrotp::{MailboxLimit, Overflow, Pid, ProcessInfo, gen_server, process_info};
use tokio::sync::Semaphore;

/// A limit of `capacity` (not zero) with `overflow`.
pub fn limit(capacity: usize, overflow: Overflow) -> MailboxLimit {
    MailboxLimit::new(NonZeroUsize::new(capacity).unwrap(), overflow)
}

/// What introspection says of `pid`, which must be alive.
pub fn info(pid: Pid) -> ProcessInfo {
    process_info(pid).expect("alive")
}

/// Yields until `condition` holds; fails the test (rather than hang) after 100,000 yields.
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..100_000 {
        if condition() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened: {what}");
}

/// A server whose `hold` handler waits for a permit of its semaphore, so that its mailbox fills
/// behind it.
pub struct Gated {
    gate: Arc<Semaphore>,
}

#[gen_server]
impl Gated {
    async fn init(gate: Arc<Semaphore>) -> Self {
        Gated { gate }
    }

    /// Waits for a permit.
    #[install("hold")]
    async fn hold(&mut self) {
        self.gate.acquire().await.unwrap().forget();
    }

    /// Answers `n`.
    #[install("echo")]
    async fn echo(&mut self, n: u32) -> u32 {
        n
    }

    /// Takes anything, and forgets it (its `Drop` never runs here).
    #[install("take", local)]
    async fn take(&mut self, value: Box<dyn Any + Send>) {
        std::mem::forget(value);
    }
}
