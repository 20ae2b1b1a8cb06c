//! Task handlers called from another node: the caller is the remote process, and each strategy
//! holds across the connection.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use ferrotp::{
    dist::{DistConfig, LocalNode},
    prelude::*,
};
use ferrotp_tests::dist::{LIMIT, SpawnForTest, bounded};

const COOKIE: &str = "dist-tasks test cookie";

async fn node(name: &str) -> LocalNode {
    let config = DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE).unwrap();
    LocalNode::start(config).await.unwrap()
}

/// Each request sleeps `ms` milliseconds, then answers `ms`; `together` counts the tasks
/// started.
struct Worker {
    started: Arc<AtomicUsize>,
}

#[gen_server]
impl Worker {
    async fn init(_: ()) -> Self {
        Worker {
            started: Arc::default(),
        }
    }

    /// Whether `n` tasks of this handler ran at the same time as this one (within the bound).
    #[install("together", task(replace))]
    fn together(&self, n: usize) -> impl Future<Output = bool> + Send + 'static {
        let started = self.started.clone();
        async move {
            started.fetch_add(1, Ordering::SeqCst);
            tokio::time::timeout(LIMIT / 2, async {
                while started.load(Ordering::SeqCst) < n {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .is_ok()
        }
    }

    #[install("queued", task)]
    fn queued(&self, ms: u64) -> impl Future<Output = u64> + Send + 'static {
        nap(ms)
    }

    #[install("latest", task(replace))]
    fn latest(&self, ms: u64) -> impl Future<Output = u64> + Send + 'static {
        nap(ms)
    }

    #[install("once", task(ignore))]
    fn once(&self, ms: u64) -> impl Future<Output = u64> + Send + 'static {
        nap(ms)
    }
}

async fn nap(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// A worker on a node `b`, and a node `a` to call it from.
async fn setup(tag: &str) -> (LocalNode, LocalNode, ServerRef<Worker>) {
    let a = node(&format!("{tag}-a")).await;
    let b = node(&format!("{tag}-b")).await;
    let worker = b.scope(async { Worker::start(()).await.unwrap() }).await;
    (a, b, worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_remote_callers_requests_queue_in_order() {
    let (a, b, worker) = setup("tasks-queue").await;
    let replies = a.spawn_handle_for_test(move |_| async move {
        let started = std::time::Instant::now();
        // Sent in this order, over one connection: they arrive in this order.
        let (slow, fast) = tokio::join!(worker.queued(200), worker.queued(1));
        (slow, fast, started.elapsed())
    });
    let (slow, fast, elapsed) = bounded("the calls", replies).await;
    assert_eq!((slow, fast), (Ok(200), Ok(1)));
    // The fast one waited for the slow one.
    assert!(elapsed >= Duration::from_millis(201), "{elapsed:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_callers_new_request_replaces_its_old_one() {
    let (a, b, worker) = setup("tasks-replace").await;
    let replies = a.spawn_handle_for_test(move |_| async move {
        tokio::join!(
            worker.latest(LIMIT.as_millis() as u64 * 2),
            worker.latest(1)
        )
    });
    let (first, second) = bounded("the calls", replies).await;
    assert_eq!(first, Err(CallError::Cancelled(worker.pid())));
    assert_eq!(second, Ok(1));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_callers_request_is_refused_while_one_is_in_flight() {
    let (a, b, worker) = setup("tasks-ignore").await;
    let replies = a.spawn_handle_for_test(move |_| async move {
        tokio::join!(worker.once(2_000), worker.once(1))
    });
    let (first, second) = bounded("the calls", replies).await;
    assert_eq!(first, Ok(2_000));
    assert_eq!(second, Err(CallError::Busy(worker.pid())));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_callers_from_different_processes_run_at_once() {
    let (a, b, worker) = setup("tasks-callers").await;
    // Each task waits for all three to have started: one after another, none would see it.
    let callers: Vec<_> = (0..3)
        .map(|_| a.spawn_handle_for_test(move |_| async move { worker.together(3).await }))
        .collect();
    for caller in callers {
        assert_eq!(bounded("a caller", caller).await, Ok(true));
    }
    a.stop().await;
    b.stop().await;
}
