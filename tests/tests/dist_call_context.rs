//! A call's context across nodes: a cycle through two nodes fails at once, and a deadline
//! travels with the call.

use std::time::Duration;

use ferrotp::{
    dist::{DistConfig, LocalNode},
    prelude::*,
};
use ferrotp_tests::dist::bounded;

const COOKIE: &str = "dist-call-context test cookie";

async fn node(name: &str) -> LocalNode {
    let config = DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE).unwrap();
    LocalNode::start(config).await.unwrap()
}

/// Calls the next server, which may live on another node.
struct Hop {
    next: Option<Pid>,
}

#[gen_server]
impl Hop {
    async fn init(_: ()) -> Self {
        Hop { next: None }
    }

    #[install("set_next")]
    async fn set_next(&mut self, next: Pid) {
        self.next = Some(next);
    }

    /// Calls the next server `hops` more times round.
    #[install("forward")]
    async fn forward(&mut self, hops: u32) -> Result<u32, String> {
        if hops == 0 {
            return Ok(0);
        }
        let next =
            ServerRef::<Hop>::from_pid(self.next.ok_or("no next")?).map_err(|e| e.to_string())?;
        match next.forward(hops - 1).await {
            Ok(n) => Ok(n + 1),
            Err(CallError::Handler(error)) => Err(error),
            Err(error) => Err(error.to_string()),
        }
    }

    /// How many milliseconds each server down the chain still has.
    #[install("left")]
    async fn left(&mut self, ctx: &mut Context, hops: u32) -> Vec<u64> {
        let here = ctx.deadline().map_or(u64::MAX, |deadline| {
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .as_millis() as u64
        });
        let mut seen = vec![here];
        if hops > 0 {
            if let Some(next) = self
                .next
                .and_then(|pid| ServerRef::<Hop>::from_pid(pid).ok())
            {
                seen.extend(next.left(hops - 1).await.unwrap_or_default());
            }
        }
        seen
    }
}

async fn pair(tag: &str) -> (LocalNode, LocalNode, ServerRef<Hop>, ServerRef<Hop>) {
    let a = node(&format!("{tag}-a")).await;
    let b = node(&format!("{tag}-b")).await;
    let x = a.scope(async { Hop::start(()).await.unwrap() }).await;
    let y = b.scope(async { Hop::start(()).await.unwrap() }).await;
    a.scope(x.set_next(y.pid())).await.unwrap();
    b.scope(y.set_next(x.pid())).await.unwrap();
    (a, b, x, y)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_through_two_nodes_fails_at_once() {
    let (a, b, x, y) = pair("ctx-cycle").await;
    let started = tokio::time::Instant::now();
    // x (on a) -> y (on b) -> x: y's call back fails at once.
    let reply = bounded("the call", a.scope(x.forward(2))).await;
    assert!(started.elapsed() < Duration::from_secs(2), "it waited");
    // The error was written on y's node, where pids print as that node sees them.
    let cycle = b
        .scope(async {
            format!(
                "deadlock: {} -> {} would wait for each other forever",
                y.pid(),
                x.pid()
            )
        })
        .await;
    assert_eq!(reply, Err(CallError::Handler(cycle)));
    // Across and back without a cycle is fine.
    assert_eq!(bounded("the call", a.scope(x.forward(1))).await, Ok(1));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_of_three_through_two_nodes_fails_at_once() {
    let (a, b, x, y) = pair("ctx-cycle3").await;
    // x (on a) -> y (on b) -> z (on a) -> x: z's call back fails at once.
    let z = a.scope(async { Hop::start(()).await.unwrap() }).await;
    b.scope(y.set_next(z.pid())).await.unwrap();
    a.scope(z.set_next(x.pid())).await.unwrap();
    let started = tokio::time::Instant::now();
    let reply = bounded("the call", a.scope(x.forward(3))).await;
    assert!(started.elapsed() < Duration::from_secs(2), "it waited");
    let cycle = a
        .scope(async {
            format!(
                "deadlock: {} -> {} -> {} would wait for each other forever",
                z.pid(),
                x.pid(),
                y.pid()
            )
        })
        .await;
    assert_eq!(reply, Err(CallError::Handler(cycle)));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_travels_to_another_node() {
    let (a, b, x, _y) = pair("ctx-deadline").await;
    let seen = bounded(
        "the call",
        a.scope(x.left_timeout(1, Duration::from_millis(2_000))),
    )
    .await
    .unwrap();
    assert_eq!(seen.len(), 2);
    // Both see (nearly) the same two seconds: the second node, not its default five.
    for left in seen {
        assert!((1_000..=2_000).contains(&left), "{left} ms left");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_a_deadline_to_an_unreachable_node_fails_with_no_connection() {
    let (a, b, x, y) = pair("ctx-unreachable").await;
    b.stop().await;
    let _ = x;
    // A timeout of its own: the call carries a context, and still fails as unreachable.
    let reply: Result<u32, _> = bounded(
        "the call",
        a.scope(ferrotp::call_timeout(
            y.pid(),
            "forward",
            0,
            Duration::from_secs(5),
        )),
    )
    .await;
    assert_eq!(reply, Err(CallError::NoConnection(y.pid())));
    a.stop().await;
}

/// Naps on request; counts the work it did.
struct Slow {
    runs: u32,
}

/// Set once `Slow` is napping.
static NAPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[gen_server]
impl Slow {
    async fn init(_: ()) -> Self {
        Slow { runs: 0 }
    }

    #[install("nap")]
    async fn nap(&mut self, ms: u64) {
        NAPPING.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[install("work")]
    async fn work(&mut self) -> u32 {
        self.runs += 1;
        self.runs
    }

    #[install("runs")]
    async fn runs(&self) -> u32 {
        self.runs
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_another_node_whose_caller_timed_out_is_not_run() {
    let a = node("gave-up-a").await;
    let b = node("gave-up-b").await;
    let slow = b.scope(async { Slow::start(()).await.unwrap() }).await;
    let nap =
        tokio::spawn(b.scope(async move { slow.nap_timeout(5_600, ferrotp::INFINITY).await }));
    bounded("the nap to start", async {
        while !NAPPING.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    // The common case: a plain call, with the default timeout, from outside any handler.
    let work = a.scope(slow.work()).await;
    assert!(matches!(work, Err(CallError::Timeout { .. })), "{work:?}");
    nap.await.unwrap().unwrap();
    assert_eq!(
        b.scope(slow.runs()).await,
        Ok(0),
        "run after its caller gave up"
    );
}
