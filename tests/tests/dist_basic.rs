//! Two nodes in one test binary, talking over 127.0.0.1 on ports the OS chose: messages, links,
//! monitors, exit signals and calls by handler name across them, through the public API only.

use ferrotp::{
    CallError, Down, Exit, ExitReason, Pid,
    dist::{ConnectError, DistConfig, LocalNode, Refusal},
    prelude::*,
};
use ferrotp_tests::dist::SpawnForTest;
use serde::{Deserialize, Serialize};

const COOKIE: &str = "dist-basic test cookie";

async fn node(name: &str) -> LocalNode {
    let config = DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE).unwrap();
    LocalNode::start(config).await.unwrap()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping {
    from: Pid,
    n: u64,
}

fn register_types() {
    ferrotp::dist::register::<Ping>("dist_basic::Ping").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_crosses_and_the_pid_inside_it_answers() {
    register_types();
    let (a, b) = (node("a1").await, node("b1").await);
    let echo = b.spawn(|mut ctx| async move {
        let ping: Ping = ctx.receive().await;
        ferrotp::send(ping.from, ping.n + 1);
    });
    assert_eq!(echo.node_name(), b.name());
    let got = a
        .scope(async move {
            ferrotp::spawn_handle(move |mut ctx| async move {
                ferrotp::send(
                    echo,
                    Ping {
                        from: ctx.pid(),
                        n: 41,
                    },
                );
                ctx.receive::<u64>().await
            })
            .join()
            .await
        })
        .await;
    assert_eq!(got, Ok(42));
    assert_eq!(a.nodes(), vec![b.name().to_owned()]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_monitors_fire_across_nodes_with_the_reason() {
    let (a, b) = (node("a2").await, node("b2").await);
    let doomed = b.spawn(|mut ctx| async move {
        let reason: String = ctx.receive().await;
        Err::<(), _>(reason)
    });
    let watcher = a.spawn_handle_for_test(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.link(doomed).unwrap();
        let monitor = ctx.monitor(doomed);
        ferrotp::send(doomed, String::from("boom"));
        let exit: Exit = ctx.receive().await;
        let down: Down = ctx.receive().await;
        assert_eq!(down.monitor, monitor);
        (exit, down)
    });
    let (exit, down) = watcher.await;
    assert_eq!(exit.from, doomed);
    assert_eq!(exit.reason, ExitReason::error("boom"));
    assert_eq!(down.pid, doomed);
    assert_eq!(down.reason, ExitReason::error("boom"));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_remote_pid_is_reported_as_not_alive() {
    let (a, b) = (node("a3").await, node("b3").await);
    let gone = b.spawn(|_ctx| async {});
    ferrotp::wait(gone).await;
    let (down, exit) = a
        .spawn_handle_for_test(move |mut ctx| async move {
            ctx.trap_exit(true);
            ctx.monitor(gone);
            let down: Down = ctx.receive().await;
            ctx.link(gone).unwrap();
            let exit: Exit = ctx.receive().await;
            (down.reason, exit.reason)
        })
        .await;
    assert_eq!((down, exit), (ExitReason::NoProc, ExitReason::NoProc));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_signals_kill_across_nodes() {
    let (a, b) = (node("a4").await, node("b4").await);
    let target = b.spawn(|mut ctx| async move { ctx.receive::<()>().await });
    a.scope(async move { ferrotp::exit(target, ExitReason::Kill) })
        .await;
    assert_eq!(ferrotp::wait(target).await, ExitReason::Killed);
    a.stop().await;
    b.stop().await;
}

struct Adder {
    total: i64,
}

#[gen_server]
impl Adder {
    async fn init(_: ()) -> Self {
        Adder { total: 0 }
    }

    #[install("add")]
    async fn add(&mut self, n: i64) -> i64 {
        self.total += n;
        self.total
    }

    #[install("checked")]
    async fn checked(&mut self, n: i64) -> Result<i64, String> {
        match n {
            0 => Err("zero".to_owned()),
            n => Ok(n),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_casts_by_handler_name_cross_nodes() {
    let (a, b) = (node("a5").await, node("b5").await);
    let server = b.scope(async { Adder::start(()).await.unwrap() }).await;
    let pid = server.pid();
    a.scope(async move {
        assert_eq!(ferrotp::call::<i64>(pid, "add", 2).await, Ok(2));
        ferrotp::cast(pid, "add", 3).unwrap();
        assert_eq!(ferrotp::call::<i64>(pid, "add", 0).await, Ok(5));
        assert_eq!(
            ferrotp::call::<i64>(pid, "checked", 0).await,
            Err(CallError::Handler(serde_json::json!("zero")))
        );
        assert!(matches!(
            ferrotp::call::<i64>(pid, "nope", 0).await,
            Err(CallError::UnknownHandler { .. })
        ));
        assert!(matches!(
            ferrotp::call::<i64>(pid, "add", "two").await,
            Err(CallError::BadRequest { .. })
        ));
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typed_client_calls_a_server_on_another_node_by_pid_and_by_name() {
    let (a, b) = (node("a10").await, node("b10").await);
    let server = b
        .scope(async { Adder::start(()).name("dist-basic-adder").await.unwrap() })
        .await;
    let b_name = b.name();
    a.scope(async move {
        let remote = ServerRef::<Adder>::from_pid(server.pid()).unwrap();
        assert_eq!(remote.add(2).await, Ok(2));
        remote.cast_add(3);
        assert_eq!(
            remote.checked(0).await,
            Err(CallError::Handler("zero".to_owned()))
        );
        let named = ServerRef::<Adder>::named_on("dist-basic-adder", b_name);
        assert_eq!(named.add(1).await, Ok(6));
        let nobody = ServerRef::<Adder>::named_on("dist-basic-nobody", b_name);
        assert_eq!(
            nobody.add(1).await,
            Err(CallError::NotRegistered("dist-basic-nobody".into()))
        );
        assert_eq!(
            remote
                .add_timeout(0, std::time::Duration::from_secs(5))
                .await,
            Ok(6)
        );
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_fails_calls_links_and_monitors_at_once() {
    let (a, b) = (node("a6").await, node("b6").await);
    let server = b.scope(async { Adder::start(()).await.unwrap() }).await;
    let pid = server.pid();
    let linked = b.spawn(|mut ctx| async move { ctx.receive::<()>().await });
    let (ready, set_up) = tokio::sync::oneshot::channel();
    let watcher = a.spawn_handle_for_test(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.link(linked).unwrap();
        ctx.monitor(linked);
        // Frames on a connection are applied in order: once the call is answered, the link
        // and the monitor are set up on the other side.
        assert_eq!(ferrotp::call::<i64>(pid, "add", 1).await, Ok(1));
        ready.send(()).unwrap();
        let exit: Exit = ctx.receive().await;
        let down: Down = ctx.receive().await;
        (exit.reason, down.reason)
    });
    set_up.await.unwrap();
    b.stop().await;
    let (exit, down) = watcher.await;
    assert_eq!(exit, ExitReason::NoConnection);
    assert_eq!(down, ExitReason::NoConnection);
    let after = a
        .scope(async move { ferrotp::call::<i64>(pid, "add", 1).await })
        .await;
    assert_eq!(after, Err(CallError::NoConnection(pid)));
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_monitors_see_connections_come_and_go() {
    use ferrotp::dist::{NodeDown, NodeUp};
    let (a, b) = (node("a11").await, node("b11").await);
    let b_name = b.name();
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    let watcher = a.spawn_handle_for_test(move |mut ctx| async move {
        ferrotp::dist::monitor_nodes(true);
        ferrotp::dist::monitor_node(b_name);
        let up: NodeUp = ctx.receive().await;
        ready.send(()).unwrap();
        let downs: (NodeDown, NodeDown) = (ctx.receive().await, ctx.receive().await);
        (up, downs)
    });
    let (up_b, stop_b) = (b.clone(), subscribed);
    stop_b.await.unwrap();
    up_b.stop().await;
    let (up, (first, second)) = watcher.await;
    assert_eq!(up.node, b_name);
    assert_eq!(
        (first.node.as_str(), second.node.as_str()),
        (b_name, b_name)
    );
    // Unreachable from the start: told at once.
    let nowhere = a
        .spawn_handle_for_test(|mut ctx| async move {
            ferrotp::dist::monitor_node("nobody@127.0.0.1:1");
            ctx.receive::<NodeDown>().await
        })
        .await;
    assert_eq!(nowhere.node, "nobody@127.0.0.1:1");
    a.stop().await;
}

/// A server that hands each `work` call to a worker (on any node) with the reply token.
struct Dispatcher {
    worker: Pid,
}

#[derive(Serialize, Deserialize)]
struct Job {
    n: u64,
    reply: ferrotp::ReplyTo<u64>,
}

#[gen_server]
impl Dispatcher {
    async fn init(worker: Pid) -> Self {
        Dispatcher { worker }
    }

    #[install("work")]
    async fn work(&mut self, n: u64, caller: &mut Caller<u64>) -> Reply<u64> {
        let reply = caller.defer();
        ferrotp::send(self.worker, Job { n, reply });
        Reply::NoReply
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_reply_token_is_answered_from_another_node() {
    ferrotp::dist::register::<Job>("dist_basic::Job").unwrap();
    let (a, b) = (node("a12").await, node("b12").await);
    let worker = b.spawn(|mut ctx| async move {
        let first: Job = ctx.receive().await;
        first.reply.send(first.n * 2);
        // The second is dropped unanswered: its caller fails at once, not at its timeout.
        let _second: Job = ctx.receive().await;
    });
    a.scope(async move {
        let dispatcher = Dispatcher::start(worker).await.unwrap();
        assert_eq!(dispatcher.work(21).await, Ok(42));
        let dropped = dispatcher
            .work_timeout(1, std::time::Duration::from_secs(30))
            .await;
        assert_eq!(dropped, Err(CallError::NoReply(dispatcher.pid())));
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cookie_is_refused_with_a_typed_error() {
    let a = node("a7").await;
    let config = DistConfig::new("b7@127.0.0.1:0", "another cookie, 16+ bytes").unwrap();
    let b = LocalNode::start(config).await.unwrap();
    let refused = a.connect(b.name()).await;
    assert_eq!(
        refused,
        Err(ConnectError::RefusedByPeer(Refusal::BadCookie))
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_messages_arrive_in_order() {
    const N: u64 = 100_000;
    let (a, b) = (node("a8").await, node("b8").await);
    let sink = b.spawn_handle_for_test(|mut ctx| async move {
        for expected in 0..N {
            assert_eq!(ctx.receive::<u64>().await, expected);
        }
    });
    let sink_pid = sink.pid;
    a.spawn(move |_ctx| async move {
        for n in 0..N {
            ferrotp::send(sink_pid, n);
        }
    });
    sink.await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_a_name_on_another_node_arrives() {
    let (a, b) = (node("a9").await, node("b9").await);
    let named = b.spawn_handle_for_test(|mut ctx| async move {
        ferrotp::register("dist-basic-named", ctx.pid()).unwrap();
        ctx.receive::<String>().await
    });
    let b_name = b.name();
    // Registered before the process waits for its message.
    while b
        .scope(async { ferrotp::whereis("dist-basic-named") })
        .await
        .is_none()
    {
        tokio::task::yield_now().await;
    }
    a.scope(
        async move { ferrotp::dist::send_named(b_name, "dist-basic-named", String::from("hi")) },
    )
    .await;
    assert_eq!(named.await, "hi");
    assert_eq!(
        ferrotp::whereis("dist-basic-named"),
        None,
        "names are per node"
    );
    a.stop().await;
    b.stop().await;
}
