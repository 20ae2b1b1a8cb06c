//! Task handlers (`#[install("name", task)]`): work beside the server's loop, with per-caller
//! strategies and a limit per handler. On the paused clock: a task "takes" its time without
//! the test waiting for it.

use std::{future::Future, time::Duration};

use ferrotp::prelude::*;
use tokio::time::{Instant, sleep};

/// Each task sleeps `ms` milliseconds, then answers `ms`. The server counts the tasks started
/// (in the method, with the state) and finished (sent back into the state as a message).
struct Worker {
    started: u32,
    finished: u32,
}

struct Finished;

#[gen_server]
impl Worker {
    async fn init(_: ()) -> Self {
        Worker {
            started: 0,
            finished: 0,
        }
    }

    #[install("queued", task)]
    fn queued(&mut self, ctx: &mut Context, ms: u64) -> impl Future<Output = u64> + Send + 'static {
        self.started += 1;
        let server = ctx.pid();
        async move {
            sleep(Duration::from_millis(ms)).await;
            send(server, Finished);
            ms
        }
    }

    #[install("latest", task(replace))]
    fn latest(&self, ms: u64) -> impl Future<Output = u64> + Send + 'static {
        async move {
            sleep(Duration::from_millis(ms)).await;
            ms
        }
    }

    #[install("once", task(ignore))]
    fn once(&self, ms: u64) -> impl Future<Output = u64> + Send + 'static {
        async move {
            sleep(Duration::from_millis(ms)).await;
            ms
        }
    }

    #[install("limited", task(limit = 2))]
    fn limited(&self, ms: u64) -> impl Future<Output = u64> + Send + 'static {
        async move {
            sleep(Duration::from_millis(ms)).await;
            ms
        }
    }

    #[install("checked", task)]
    fn checked(&self, n: i64) -> impl Future<Output = Result<i64, String>> + Send + 'static {
        async move {
            sleep(Duration::from_millis(10)).await;
            if n < 0 {
                Err(format!("{n} is negative"))
            } else {
                Ok(n * 2)
            }
        }
    }

    #[install("explode", task)]
    fn explode(&self) -> impl Future<Output = ()> + Send + 'static {
        async {
            sleep(Duration::from_millis(10)).await;
            panic!("the task exploded");
        }
    }

    #[install("counts")]
    async fn counts(&self) -> (u32, u32) {
        (self.started, self.finished)
    }

    #[info]
    async fn on_finished(&mut self, _: Finished) {
        self.finished += 1;
    }
}

/// Runs `f` as a process (a caller of its own) and returns its handle.
fn caller<T: Send + 'static>(
    f: impl Future<Output = T> + Send + 'static,
) -> ferrotp::ProcessHandle<T> {
    spawn_handle(move |_| f)
}

#[tokio::test(start_paused = true)]
async fn a_server_busy_with_a_ten_second_task_answers_a_plain_call_at_once() {
    let worker = Worker::start(()).await.unwrap();
    let long = caller(async move { worker.queued_timeout(10_000, Duration::from_secs(20)).await });
    // The task has started once the server counts it.
    while worker.counts().await.unwrap().0 == 0 {
        tokio::task::yield_now().await;
    }
    // A plain call from another process, answered at once (the clock is paused: no time
    // passes unless something waits for it).
    let other = caller(async move {
        let before = Instant::now();
        (worker.counts().await, before.elapsed())
    });
    assert_eq!(other.join().await.unwrap(), (Ok((1, 0)), Duration::ZERO));
    assert_eq!(long.join().await.unwrap(), Ok(10_000));
    assert_eq!(worker.counts().await, Ok((1, 1)));
}

#[tokio::test(start_paused = true)]
async fn queue_runs_one_callers_requests_one_after_another_in_order() {
    let worker = Worker::start(()).await.unwrap();
    let start = Instant::now();
    let (a, b, c) = tokio::join!(
        async { (worker.queued(30).await, start.elapsed()) },
        async { (worker.queued(10).await, start.elapsed()) },
        async { (worker.queued(20).await, start.elapsed()) },
    );
    assert_eq!(a, (Ok(30), Duration::from_millis(30)));
    assert_eq!(b, (Ok(10), Duration::from_millis(40)));
    assert_eq!(c, (Ok(20), Duration::from_millis(60)));
}

#[tokio::test(start_paused = true)]
async fn different_callers_run_at_once() {
    let worker = Worker::start(()).await.unwrap();
    let start = Instant::now();
    let callers: Vec<_> = (0..3)
        .map(|_| caller(async move { worker.queued(50).await }))
        .collect();
    for handle in callers {
        assert_eq!(handle.join().await.unwrap(), Ok(50));
    }
    assert_eq!(start.elapsed(), Duration::from_millis(50));
}

#[tokio::test(start_paused = true)]
async fn replace_cancels_the_request_in_flight_at_once() {
    let worker = Worker::start(()).await.unwrap();
    let start = Instant::now();
    let (first, second) = tokio::join!(
        async { (worker.latest(1_000).await, start.elapsed()) },
        async {
            // After the first has started.
            sleep(Duration::from_millis(5)).await;
            (worker.latest(20).await, start.elapsed())
        },
    );
    assert_eq!(
        first,
        (
            Err(CallError::Cancelled(worker.pid())),
            Duration::from_millis(5)
        )
    );
    assert_eq!(second, (Ok(20), Duration::from_millis(25)));
}

#[tokio::test(start_paused = true)]
async fn ignore_refuses_a_new_request_while_one_is_in_flight() {
    let worker = Worker::start(()).await.unwrap();
    let (first, second) = tokio::join!(worker.once(100), async {
        sleep(Duration::from_millis(5)).await;
        worker.once(1).await
    });
    assert_eq!(first, Ok(100));
    assert_eq!(second, Err(CallError::Busy(worker.pid())));
    // Once the first has finished, the caller is served again.
    assert_eq!(worker.once(1).await, Ok(1));
}

#[tokio::test(start_paused = true)]
async fn the_limit_bounds_the_callers_served_at_once() {
    let worker = Worker::start(()).await.unwrap();
    let start = Instant::now();
    let callers: Vec<_> = (0..5)
        .map(|_| {
            caller(async move {
                let reply = worker.limited(100).await;
                (reply, start.elapsed())
            })
        })
        .collect();
    let mut times = Vec::new();
    for handle in callers {
        let (reply, elapsed) = handle.join().await.unwrap();
        assert_eq!(reply, Ok(100));
        times.push(elapsed.as_millis());
    }
    times.sort_unstable();
    // Two at a time: 100, 100, 200, 200, 300.
    assert_eq!(times, [100, 100, 200, 200, 300]);
}

#[tokio::test(start_paused = true)]
async fn a_task_handlers_error_reaches_its_caller_and_the_server_goes_on() {
    let worker = Worker::start(()).await.unwrap();
    assert_eq!(worker.checked(4).await, Ok(8));
    assert_eq!(
        worker.checked(-1).await,
        Err(CallError::Handler("-1 is negative".to_owned()))
    );
    assert_eq!(worker.counts().await, Ok((0, 0)));
}

#[tokio::test(start_paused = true)]
async fn a_task_handler_is_called_by_name_too() {
    let worker = Worker::start(()).await.unwrap();
    let reply: u64 = worker.call("queued", 25).await.unwrap();
    assert_eq!(reply, 25);
    let refused: Result<i64, _> = worker.call("checked", -2).await;
    assert_eq!(
        refused,
        Err(CallError::Handler(serde_json::json!("-2 is negative")))
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_stops_its_server_with_the_panic() {
    let worker = Worker::start(()).await.unwrap();
    let reply = worker.explode().await;
    match reply {
        Err(CallError::Exited {
            reason: ExitReason::Panic(message),
            ..
        }) => assert!(message.contains("the task exploded"), "{message}"),
        other => panic!("expected the panic, got {other:?}"),
    }
    assert!(matches!(wait(worker.pid()).await, ExitReason::Panic(_)));
}

#[tokio::test(start_paused = true)]
async fn stopping_the_server_cancels_its_tasks_and_fails_their_calls_with_the_reason() {
    let worker = Worker::start(()).await.unwrap();
    let long = caller(async move { worker.queued(60_000).await });
    while worker.counts().await.unwrap().0 == 0 {
        tokio::task::yield_now().await;
    }
    worker.stop(ExitReason::Shutdown).await.unwrap();
    assert_eq!(
        long.join().await.unwrap(),
        Err(CallError::Exited {
            pid: worker.pid(),
            reason: ExitReason::Shutdown
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_under_load_answers_every_call_once() {
    for _ in 0..20 {
        let worker = Worker::start(()).await.unwrap();
        // Callers outside any process count as one caller: each call may replace another.
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..50 {
            calls.spawn(worker.latest(i % 3));
        }
        let (mut replied, mut cancelled) = (0, 0);
        while let Some(call) = calls.join_next().await {
            match call.unwrap() {
                Ok(_) => replied += 1,
                Err(CallError::Cancelled(pid)) => {
                    assert_eq!(pid, worker.pid());
                    cancelled += 1;
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(replied + cancelled, 50);
        // The last request is never replaced.
        assert!(replied >= 1);
        worker.stop(ExitReason::Normal).await.unwrap();
    }
}

/// Outputs whose own code panics: their `Debug`, or their `Drop`.
struct Hostile;

#[derive(Debug)]
struct PanicsInDrop;

impl Drop for PanicsInDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("a hostile drop");
        }
    }
}

struct PanicsInDebug;

impl std::fmt::Debug for PanicsInDebug {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("a hostile debug")
    }
}

#[gen_server]
impl Hostile {
    async fn init(_: ()) -> Self {
        Hostile
    }

    #[install("dropper", task(limit = 1), local)]
    fn dropper(&self, ms: u64) -> impl Future<Output = PanicsInDrop> + Send + 'static {
        async move {
            sleep(Duration::from_millis(ms)).await;
            PanicsInDrop
        }
    }

    #[install("debugger", task(limit = 1), local)]
    fn debugger(&self) -> impl Future<Output = Result<u32, PanicsInDebug>> + Send + 'static {
        async { Err(PanicsInDebug) }
    }

    #[install("ok", task(limit = 1))]
    fn ok(&self) -> impl Future<Output = u32> + Send + 'static {
        async { 7 }
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_output_whose_drop_panics_does_not_take_the_handlers_place_for_good() {
    let hostile = Hostile::start(()).await.unwrap();
    // The caller gives up: the output is dropped in the task, and its drop panics.
    let gave_up = hostile
        .dropper_timeout(200, Duration::from_millis(50))
        .await;
    assert!(
        matches!(gave_up, Err(CallError::Timeout { .. })),
        "{gave_up:?}"
    );
    sleep(Duration::from_millis(300)).await;
    // The one place of the handler is free again, for another caller.
    let other = caller(async move {
        match hostile.dropper_timeout(1, Duration::from_secs(1)).await {
            // Its drop would panic in this process: keep it.
            Ok(output) => {
                std::mem::forget(output);
                true
            }
            Err(_) => false,
        }
    });
    assert!(other.join().await.unwrap());
    assert_eq!(hostile.ok().await, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn a_task_error_whose_debug_panics_is_a_panic_of_the_task() {
    let hostile = Hostile::start(()).await.unwrap();
    let reply = hostile.debugger().await;
    assert!(
        matches!(
            reply,
            Err(CallError::Exited { reason: ExitReason::Panic(ref message), .. }) if message.contains("hostile debug")
        ),
        "{reply:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_queued_request_whose_caller_gave_up_is_not_run() {
    let worker = Worker::start(()).await.unwrap();
    // One caller: a long request, then five that give up while it runs.
    let (long, gave_up) = tokio::join!(worker.queued(1_000), async {
        let mut timeouts = 0;
        for _ in 0..5 {
            if worker
                .queued_timeout(1_000, Duration::from_millis(10))
                .await
                .is_err()
            {
                timeouts += 1;
            }
        }
        timeouts
    });
    assert_eq!((long, gave_up), (Ok(1_000), 5));
    let start = Instant::now();
    // Not behind five abandoned seconds of work.
    assert_eq!(worker.queued(1).await, Ok(1));
    assert_eq!(start.elapsed(), Duration::from_millis(1));
    // Started: the first and the last; the five abandoned ones were dropped unrun.
    assert_eq!(worker.counts().await, Ok((7, 2)));
}

/// Tiny tasks, for races on the multi-thread runtime.
struct Quick;

#[gen_server]
impl Quick {
    async fn init(_: ()) -> Self {
        Quick
    }

    #[install("two", task(limit = 2))]
    fn two(&self, n: u64) -> impl Future<Output = u64> + Send + 'static {
        async move {
            tokio::task::yield_now().await;
            n
        }
    }

    #[install("lone", task(ignore))]
    fn lone(&self, n: u64) -> impl Future<Output = u64> + Send + 'static {
        async move { n }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_over_a_small_limit_are_all_answered() {
    for _ in 0..20 {
        let quick = Quick::start(()).await.unwrap();
        let callers: Vec<_> = (0..8)
            .map(|c| {
                caller(async move {
                    for i in 0..50 {
                        let n = c * 100 + i;
                        let reply = quick.two_timeout(n, Duration::from_secs(10)).await;
                        assert_eq!(reply, Ok(n));
                    }
                })
            })
            .collect();
        for handle in callers {
            handle.join().await.expect("every call answered");
        }
        quick.stop(ExitReason::Normal).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_waits_for_each_answer_is_never_refused_as_busy() {
    let quick = Quick::start(()).await.unwrap();
    let one = caller(async move {
        for n in 0..2_000 {
            assert_eq!(quick.lone(n).await, Ok(n), "call {n}");
        }
    });
    one.join().await.expect("never busy");
}
