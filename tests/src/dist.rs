//! What the distribution tests share: a bound on every wait, and a counter server to call
//! across nodes.

use std::{future::IntoFuture, time::Duration};

use ferrotp::{Pid, dist::LocalNode, gen_server};

/// How long any one wait may take before a test fails instead of hanging.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `work`, failing the test if it takes longer than [`LIMIT`].
pub async fn bounded<F: IntoFuture>(what: &str, work: F) -> F::Output {
    tokio::time::timeout(LIMIT, work.into_future())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {LIMIT:?}"))
}

/// A server that adds what it is given and answers the total.
pub struct Counter {
    total: i64,
}

#[gen_server]
impl Counter {
    async fn init(_: ()) -> Self {
        Counter { total: 0 }
    }

    /// Adds `n`; the new total.
    #[install("add")]
    async fn add(&mut self, n: i64) -> i64 {
        self.total += n;
        self.total
    }
}

/// A counter started on `node`.
pub async fn counter_on(node: &LocalNode) -> Pid {
    node.scope(async { Counter::start(()).await.unwrap().pid() })
        .await
}
