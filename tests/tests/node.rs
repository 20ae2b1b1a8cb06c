//! Applications on a node: start order, restart types, shutdown order, stop hooks, failures.

use std::sync::{Arc, Mutex};

use ferrotp::application::Application;
use ferrotp::node::{Node, NodeExit};
use ferrotp::prelude::*;
use ferrotp::supervisor::{AutoShutdown, Child, Supervisor};
use ferrotp_tests::in_process;
use ferrotp_tests::workers::{Event, Setup, Worker, next_event};
use tokio::sync::oneshot;

/// An application whose root supervisor runs one worker, registered as `name`. The worker is
/// significant: when it finishes normally the application exits normally; when it crashes the
/// supervisor (which tolerates no restart) exits abnormally.
fn app(name: &'static str, witness: Pid, log: &Log) -> Application {
    let log = log.clone();
    Application::new(
        name,
        move |()| {
            Supervisor::one_for_one()
                .intensity(0, std::time::Duration::from_secs(1))
                .auto_shutdown(AutoShutdown::AnySignificant)
                .child(
                    Child::server::<Worker>("worker", Setup::new(name, witness))
                        .name(name)
                        .transient()
                        .significant(),
                )
        },
        (),
    )
    .on_stop(move |reason| {
        log.lock()
            .unwrap()
            .push(format!("{name} stopped: {reason}"))
    })
}

type Log = Arc<Mutex<Vec<String>>>;

/// Runs `body` as a test process with a fresh log for the applications' stop hooks; returns
/// what it returns and the log.
async fn scenario<F, Fut, T>(body: F) -> (T, Vec<String>)
where
    F: FnOnce(ferrotp::Context, Log) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let log = Log::default();
    let result = in_process({
        let log = log.clone();
        move |ctx| body(ctx, log)
    })
    .await;
    let lines = log.lock().unwrap().clone();
    (result, lines)
}

/// Starts `node` in the background; the returned sender asks it to stop.
fn launch(node: Node) -> (oneshot::Sender<()>, tokio::task::JoinHandle<NodeExit>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let node = node.default_subscriber(false).run_until(async move {
        let _ = stopped.await;
        "requested"
    });
    (stop, tokio::spawn(node))
}

async fn worker(name: &str) -> ServerRef<Worker> {
    ServerRef::<Worker>::lookup(name).unwrap()
}

#[tokio::test(start_paused = true)]
async fn applications_start_in_order_and_stop_in_reverse_on_request() {
    let (events, log) = scenario(|mut ctx, log| async move {
        let me = ctx.pid();
        let (stop, node) = launch(
            Node::new()
                .app(app("node-a1", me, &log))
                .app(app("node-a2", me, &log)),
        );
        let mut events = vec![next_event(&mut ctx).await, next_event(&mut ctx).await];
        stop.send(()).unwrap();
        assert_eq!(node.await.unwrap(), NodeExit::Signal("requested"));
        events.push(next_event(&mut ctx).await);
        events.push(next_event(&mut ctx).await);
        events
    })
    .await;
    assert_eq!(
        events,
        [
            Event::Started("node-a1"),
            Event::Started("node-a2"),
            Event::Terminated("node-a2", ExitReason::Shutdown),
            Event::Terminated("node-a1", ExitReason::Shutdown),
        ]
    );
    assert_eq!(
        log,
        ["node-a2 stopped: shutdown", "node-a1 stopped: shutdown"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_application_exiting_stops_the_node_even_normally() {
    let (exit, log) = scenario(|mut ctx, log| async move {
        let me = ctx.pid();
        let (_stop, node) = launch(
            Node::new()
                .app(app("node-p-other", me, &log))
                .app(app("node-p", me, &log).permanent()),
        );
        next_event(&mut ctx).await;
        next_event(&mut ctx).await;
        let _ = worker("node-p").await.finish().await;
        node.await.unwrap()
    })
    .await;
    assert_eq!(
        exit,
        NodeExit::AppExited {
            app: "node-p".into(),
            reason: ExitReason::Shutdown
        }
    );
    assert_eq!(exit.code(), 0);
    assert_eq!(
        log,
        ["node-p stopped: shutdown", "node-p-other stopped: shutdown"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_transient_application_stops_the_node_only_when_it_fails() {
    let (exit, log) = scenario(|mut ctx, log| async move {
        let me = ctx.pid();
        let (_stop, node) = launch(
            Node::new()
                .app(app("node-t-ok", me, &log).transient())
                .app(app("node-t-bad", me, &log).transient())
                .app(app("node-t-other", me, &log)),
        );
        for _ in 0..3 {
            next_event(&mut ctx).await;
        }
        // A normal exit of a transient application is only logged...
        let _ = worker("node-t-ok").await.finish().await;
        while ferrotp::whereis("node-t-ok").is_some() || log.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        assert!(!node.is_finished());
        // ...an abnormal one stops the node.
        let _ = worker("node-t-bad").await.crash().await;
        node.await.unwrap()
    })
    .await;
    assert_eq!(
        exit,
        NodeExit::AppExited {
            app: "node-t-bad".into(),
            reason: ExitReason::MaxRestartIntensity
        }
    );
    assert_eq!(exit.code(), 1);
    assert_eq!(
        log,
        [
            "node-t-ok stopped: shutdown",
            "node-t-bad stopped: reached max restart intensity",
            "node-t-other stopped: shutdown",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn temporary_applications_are_logged_and_the_node_ends_when_all_are_done() {
    let (exit, log) = scenario(|mut ctx, log| async move {
        let me = ctx.pid();
        let (_stop, node) = launch(Node::new().app(app("node-tmp-1", me, &log)).app(app(
            "node-tmp-2",
            me,
            &log,
        )));
        next_event(&mut ctx).await;
        next_event(&mut ctx).await;
        let _ = worker("node-tmp-1").await.crash().await;
        let _ = worker("node-tmp-2").await.finish().await;
        node.await.unwrap()
    })
    .await;
    // One of them ended abnormally: the node ends, and says so.
    assert_eq!(
        exit,
        NodeExit::Failed {
            signal: None,
            apps: vec![("node-tmp-1".into(), ExitReason::MaxRestartIntensity)]
        }
    );
    assert_eq!(exit.code(), 1);
    assert_eq!(
        log,
        [
            "node-tmp-1 stopped: reached max restart intensity",
            "node-tmp-2 stopped: shutdown"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_application_that_fails_to_start_stops_the_ones_before_it() {
    let (exit, log) = scenario(|ctx, log| async move {
        let me = ctx.pid();
        let broken = Application::new(
            "node-broken",
            move |()| {
                let setup = Setup {
                    fail: Some("no disk"),
                    ..Setup::new("node-broken", me)
                };
                Supervisor::one_for_one().child(Child::server::<Worker>("worker", setup))
            },
            (),
        );
        let (_stop, node) = launch(Node::new().app(app("node-before", me, &log)).app(broken));
        node.await.unwrap()
    })
    .await;
    let NodeExit::StartFailed { app, error } = &exit else {
        panic!("unexpected {exit:?}");
    };
    assert_eq!(&**app, "node-broken");
    assert!(
        error.contains("`worker` failed to start") && error.contains("no disk"),
        "{error}"
    );
    assert_eq!(exit.code(), 2);
    assert_eq!(log, ["node-before stopped: shutdown"]);
}

#[tokio::test(start_paused = true)]
async fn run_until_takes_a_future_of_any_output_as_an_orderly_stop() {
    let (exit, log) = scenario(|mut ctx, log| async move {
        let me = ctx.pid();
        // A channel's `Result`, not a `&'static str`: the stop is named "shutdown".
        let (stop, stopped) = oneshot::channel::<()>();
        let node = Node::new()
            .app(app("node-any", me, &log))
            .default_subscriber(false)
            .run_until(stopped);
        let node = tokio::spawn(node);
        next_event(&mut ctx).await;
        stop.send(()).unwrap();
        node.await.unwrap()
    })
    .await;
    assert_eq!(exit, NodeExit::Signal("shutdown"));
    assert_eq!(exit.code(), 0);
    assert_eq!(log, ["node-any stopped: shutdown"]);
}

#[tokio::test]
async fn node_run_inside_a_runtime_fails_with_an_error_naming_run_async() {
    let exit = ferrotp::node::run([Application::new(
        "never-started",
        |()| Supervisor::one_for_one(),
        (),
    )]);
    let NodeExit::StartFailed { error, .. } = &exit else {
        panic!("{exit:?}");
    };
    assert!(error.contains("run_async"), "{error}");
    assert_eq!(exit.code(), 2);
}
