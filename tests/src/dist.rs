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

/// A process spawned on a node, awaited (as a future) for what its function returned.
pub struct Handle<T> {
    /// The process.
    pub pid: Pid,
    rx: tokio::sync::oneshot::Receiver<T>,
}

impl<T: Send + 'static> std::future::IntoFuture for Handle<T> {
    type Output = T;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.rx.await.expect("the process returned") })
    }
}

/// Spawning on a node with a [`Handle`] to its result.
pub trait SpawnForTest {
    /// Spawns `f` on this node.
    fn spawn_handle_for_test<F, Fut, T>(&self, f: F) -> Handle<T>
    where
        F: FnOnce(ferrotp::Context) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static;
}

impl SpawnForTest for LocalNode {
    fn spawn_handle_for_test<F, Fut, T>(&self, f: F) -> Handle<T>
    where
        F: FnOnce(ferrotp::Context) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pid = self.spawn(move |ctx| async move {
            let _ = tx.send(f(ctx).await);
        });
        Handle { pid, rx }
    }
}

/// Waits until `condition` holds, checking it every millisecond, failing the test if it does not
/// within [`LIMIT`]: for what another node learns in its own time.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !condition() {
        assert!(started.elapsed() < LIMIT, "{what}: not within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
