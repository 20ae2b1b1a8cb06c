//! Connections between nodes under failure, through the public API: two nodes dialing each other
//! at the same moment end up with one connection; a node restarted under the same name is a new
//! incarnation whose predecessor's pids are dead; a node stopped in the middle of a call fails
//! the call, links and monitors at once.

use std::{
    future::IntoFuture,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ferrotp::{
    CallError, Down, Exit, ExitReason, Pid,
    dist::{DistConfig, LocalNode},
    prelude::*,
};
use ferrotp_tests::dist::{Counter, Handle, LIMIT, SpawnForTest, bounded, counter_on};

const COOKIE: &str = "dist-failure test cookie";

fn config(name: &str) -> DistConfig {
    DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE)
        .unwrap()
        .handshake_timeout(Duration::from_secs(3))
}

async fn node(name: &str) -> LocalNode {
    LocalNode::start(config(name)).await.unwrap()
}

/// A call by handler name from `node` to the counter `pid`.
async fn add_from(node: &LocalNode, pid: Pid, n: i64) -> Result<i64, CallError<serde_json::Value>> {
    let call = node.scope(ferrotp::call::<i64>(pid, "add", n));
    bounded("a call to the counter", call).await
}

/// A process on `node` that takes `0..n` in order, counting them in the returned counter; it
/// returns the first number out of order, if any.
fn sink(node: &LocalNode, n: u64) -> (Handle<Result<(), String>>, Arc<AtomicU64>) {
    let got = Arc::new(AtomicU64::new(0));
    let counted = got.clone();
    let handle = node.spawn_handle_for_test(move |mut ctx| async move {
        for expected in 0..n {
            let next = ctx.receive::<u64>().await;
            if next != expected {
                return Err(format!("expected {expected}, got {next}"));
            }
            counted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    (handle, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_dial_each_other_at_once_keep_one_connection() {
    const PAIRS: usize = 20;
    const BURST: u64 = 1_000;
    for i in 0..PAIRS {
        let (a, b) = (
            node(&format!("failure-simultaneous-{i}-a")).await,
            node(&format!("failure-simultaneous-{i}-b")).await,
        );
        let (at_a, at_b) = bounded("both dials", async {
            tokio::join!(a.connect(b.name()), b.connect(a.name()))
        })
        .await;
        assert_eq!((at_a, at_b), (Ok(()), Ok(())), "pair {i}");
        assert_eq!(a.nodes(), vec![b.name().to_owned()], "pair {i}");
        assert_eq!(b.nodes(), vec![a.name().to_owned()], "pair {i}");

        // A burst each way, at the same time: each arrives whole and in order.
        let (sink_a, got_a) = sink(&a, BURST);
        let (sink_b, got_b) = sink(&b, BURST);
        let (to_a, to_b) = (sink_a.pid, sink_b.pid);
        b.spawn(move |_ctx| async move {
            for n in 0..BURST {
                ferrotp::send(to_a, n);
            }
        });
        a.spawn(move |_ctx| async move {
            for n in 0..BURST {
                ferrotp::send(to_b, n);
            }
        });
        let (burst_a, burst_b) = tokio::join!(
            tokio::time::timeout(LIMIT, sink_a.into_future()),
            tokio::time::timeout(LIMIT, sink_b.into_future())
        );
        assert!(
            burst_a == Ok(Ok(())) && burst_b == Ok(Ok(())),
            "pair {i}: of {BURST} messages each way, a got {} ({burst_a:?}) and b got {} \
             ({burst_b:?}); a lists {:?}, b lists {:?}",
            got_a.load(Ordering::Relaxed),
            got_b.load(Ordering::Relaxed),
            a.nodes(),
            b.nodes(),
        );
        // Still the one connection, on both sides.
        assert_eq!(a.nodes(), vec![b.name().to_owned()], "pair {i}");
        assert_eq!(b.nodes(), vec![a.name().to_owned()], "pair {i}");
        a.stop().await;
        b.stop().await;
    }
}

/// Starts a node named `name`, the full name of a node just stopped: its port is free once
/// `LocalNode::stop` has returned.
async fn restart(name: &str) -> LocalNode {
    LocalNode::start(DistConfig::new(name, COOKIE).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_frees_its_port_at_once() {
    let first = node("failure-port").await;
    let name = first.name();
    first.stop().await;
    for _ in 0..50 {
        let again = LocalNode::start(DistConfig::new(name, COOKIE).unwrap()).await;
        match again {
            Ok(node) => node.stop().await,
            Err(error) => panic!("a node stopped, its name cannot be started again: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_under_its_name_is_a_new_incarnation() {
    let a = node("failure-restart-a").await;
    let b = node("failure-restart-b").await;
    let b_name = b.name();
    let old = counter_on(&b).await;
    assert_eq!(add_from(&a, old, 1).await, Ok(1));

    // A monitor from a, to know when a has seen the old b go.
    let watcher = a.spawn_handle_for_test(move |mut ctx| async move {
        ctx.monitor(old);
        ctx.receive::<Down>().await.reason
    });
    // The monitor is set up on b before the call's reply comes back.
    assert_eq!(add_from(&a, old, 1).await, Ok(2));
    b.stop().await;
    assert_eq!(
        bounded("a's Down for the old counter", watcher).await,
        ExitReason::NoConnection
    );
    assert!(a.nodes().is_empty(), "{:?}", a.nodes());

    // The same name, so the same port.
    let b = restart(b_name).await;
    assert_eq!(b.name(), b_name);
    let new = counter_on(&b).await;
    // First, with no connection to the new b yet: the call dials it and carries the old pid.
    assert_eq!(
        add_from(&a, old, 1).await,
        Err(CallError::NoProc(old)),
        "a call to a pid of the old incarnation"
    );
    assert_eq!(a.nodes(), vec![b_name.to_owned()]);
    assert_ne!(new, old);
    assert_eq!(add_from(&a, new, 5).await, Ok(5));
    // Then over the connection to the new incarnation, typed and by name.
    let typed = a
        .scope(async move { ServerRef::<Counter>::from_pid(old).unwrap().add(1).await })
        .await;
    assert_eq!(typed, Err(CallError::NoProc(old)));
    assert_eq!(add_from(&a, old, 1).await, Err(CallError::NoProc(old)));
    let (down, exit) = bounded(
        "a monitor and a link to the old pid",
        a.spawn_handle_for_test(move |mut ctx| async move {
            ctx.trap_exit(true);
            ctx.monitor(old);
            let down: Down = ctx.receive().await;
            ctx.link(old).unwrap();
            let exit: Exit = ctx.receive().await;
            (down.reason, exit.reason)
        }),
    )
    .await;
    assert_eq!((down, exit), (ExitReason::NoProc, ExitReason::NoProc));
    // The new incarnation is not disturbed by any of it.
    assert_eq!(add_from(&a, new, 5).await, Ok(10));
    assert_eq!(a.nodes(), vec![b_name.to_owned()]);
    a.stop().await;
    b.stop().await;
}

/// A server whose `stall` handler never returns: it waits for a message that never comes.
struct Staller {
    /// Told when a call to `stall` has arrived.
    entered: Option<tokio::sync::oneshot::Sender<()>>,
}

#[gen_server]
impl Staller {
    async fn init(entered: tokio::sync::oneshot::Sender<()>) -> Self {
        Staller {
            entered: Some(entered),
        }
    }

    #[install("stall")]
    async fn stall(&mut self) -> i64 {
        if let Some(entered) = self.entered.take() {
            let _ = entered.send(());
        }
        let (_never_sent, never) = tokio::sync::oneshot::channel::<i64>();
        // Never answered while the sender lives; it lives until the process is killed.
        let _keep = &_never_sent;
        never.await.unwrap_or(-1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_mid_call_fails_the_call_links_and_monitors_at_once() {
    let a = node("failure-midcall-a").await;
    let b = node("failure-midcall-b").await;
    let (entered, call_arrived) = tokio::sync::oneshot::channel();
    let staller = b
        .scope(async { Staller::start(entered).await.unwrap().pid() })
        .await;
    let (set_up, watching) = tokio::sync::oneshot::channel();
    let counter = counter_on(&b).await;
    let watcher = a.spawn_handle_for_test(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.link(staller).unwrap();
        let monitor = ctx.monitor(staller);
        // Frames are applied in order: once the call is answered, b has the link and monitor.
        assert_eq!(ferrotp::call::<i64>(counter, "add", 1).await, Ok(1));
        set_up.send(()).unwrap();
        let exit: Exit = ctx.receive().await;
        let down: Down = ctx.receive().await;
        assert_eq!(down.monitor, monitor);
        (exit, down)
    });
    bounded("the link and monitor set up", watching)
        .await
        .unwrap();
    // `scope`'s future borrows the node: the task takes a handle of its own.
    let caller = a.clone();
    let call = tokio::spawn(async move {
        let stall = async move {
            let staller = ServerRef::<Staller>::from_pid(staller).unwrap();
            staller.stall_timeout(Duration::from_secs(30)).await
        };
        caller.scope(stall).await
    });
    bounded("the call reaching the handler", call_arrived)
        .await
        .unwrap();

    let stopping = Instant::now();
    b.stop().await;
    let failed = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .expect("the call failed within 2 s of the node stopping")
        .unwrap();
    assert_eq!(failed, Err(CallError::NoConnection(staller)));
    assert!(stopping.elapsed() < Duration::from_secs(2));
    let (exit, down) = bounded("the exit signal and the Down", watcher).await;
    assert_eq!(
        (exit.from, exit.reason),
        (staller, ExitReason::NoConnection)
    );
    assert_eq!((down.pid, down.reason), (staller, ExitReason::NoConnection));
    assert!(a.nodes().is_empty(), "{:?}", a.nodes());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_cannot_cross_fails_with_not_remotable_not_silence() {
    let there = node("cannot-cross").await;
    let counter = Counter::start(()).await.unwrap();
    // A typed call made here, where the counter is local, awaited on another node.
    let made_here = counter.add(1);
    let typed = bounded("the typed call", there.scope(made_here)).await;
    assert!(
        matches!(typed, Err(CallError::NotRemotable { .. })),
        "{typed:?}"
    );
    // A raw request cannot cross at all.
    let raw = there.scope(ferrotp::request::<i64, i64>(counter.pid(), 1));
    let raw = bounded("the raw request", raw).await;
    assert!(
        matches!(raw, Err(CallError::NotRemotable { .. })),
        "{raw:?}"
    );
    there.stop().await;
}
