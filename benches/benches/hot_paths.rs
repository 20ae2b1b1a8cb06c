//! Micro-benchmarks of the hot paths, to profile one change in isolation:
//! `cargo bench -p ferrotp-bench` (or `-- send` for one group).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ferrotp::prelude::*;

struct Counter(u64);

#[gen_server]
impl Counter {
    async fn init(_: ()) -> Self {
        Counter(0)
    }

    #[install("inc")]
    async fn inc(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }

    /// `inc` as a task handler: the same work, run beside the server's loop.
    #[install("inc_task", task)]
    fn inc_task(&mut self) -> impl std::future::Future<Output = u64> + Send + 'static {
        self.0 += 1;
        let n = self.0;
        async move { n }
    }
}

/// Calls a counter for its caller: a server-to-server call, which carries a context (the chain
/// of blocked callers and the deadline; see the guide's "Calls in depth").
struct Relay(ServerRef<Counter>);

#[gen_server]
impl Relay {
    async fn init(counter: ServerRef<Counter>) -> Self {
        Relay(counter)
    }

    #[install("inc")]
    async fn inc(&mut self) -> u64 {
        self.0.inc().await.unwrap_or(0)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Times `iters` rounds of `round` run inside a process.
fn in_process<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, round: F) -> Duration
where
    F: FnOnce(Context, u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Duration> + Send + 'static,
{
    rt.block_on(async move {
        ferrotp::spawn_handle(move |ctx| round(ctx, iters))
            .join()
            .await
            .expect("the benchmark process")
    })
}

fn hot_paths(c: &mut Criterion) {
    let rt = runtime();

    c.bench_function("send to a local process", |b| {
        b.iter_custom(|iters| {
            in_process(&rt, iters, |_, iters| async move {
                let sink = spawn(|mut ctx| async move {
                    loop {
                        let _: u64 = ctx.receive().await;
                    }
                });
                let started = Instant::now();
                for i in 0..iters {
                    send(sink, i);
                }
                let elapsed = started.elapsed();
                exit(sink, ExitReason::Kill);
                elapsed
            })
        })
    });

    c.bench_function("typed call round trip", |b| {
        b.iter_custom(|iters| {
            in_process(&rt, iters, |_, iters| async move {
                let counter = Counter::start(()).await.expect("a counter");
                let started = Instant::now();
                for _ in 0..iters {
                    counter.inc().await.expect("a reply");
                }
                let elapsed = started.elapsed();
                exit(counter.pid(), ExitReason::Kill);
                elapsed
            })
        })
    });

    // Against two typed round trips: what a nested call's context costs.
    c.bench_function("nested call round trip (client, relay, counter)", |b| {
        b.iter_custom(|iters| {
            in_process(&rt, iters, |_, iters| async move {
                let counter = Counter::start(()).await.expect("a counter");
                let relay = Relay::start(counter).await.expect("a relay");
                let started = Instant::now();
                for _ in 0..iters {
                    relay.inc().await.expect("a reply");
                }
                let elapsed = started.elapsed();
                exit(relay.pid(), ExitReason::Kill);
                exit(counter.pid(), ExitReason::Kill);
                elapsed
            })
        })
    });

    c.bench_function("task handler call round trip", |b| {
        b.iter_custom(|iters| {
            in_process(&rt, iters, |_, iters| async move {
                let counter = Counter::start(()).await.expect("a counter");
                let started = Instant::now();
                for _ in 0..iters {
                    counter.inc_task().await.expect("a reply");
                }
                let elapsed = started.elapsed();
                exit(counter.pid(), ExitReason::Kill);
                elapsed
            })
        })
    });

    // What a task handler's call adds to a plain one is about this: one tokio task.
    c.bench_function("tokio spawn and join of an empty task", |b| {
        b.iter_custom(|iters| {
            in_process(&rt, iters, |_, iters| async move {
                let started = Instant::now();
                for i in 0..iters {
                    let task = tokio::spawn(async move { i });
                    task.await.expect("the task");
                }
                started.elapsed()
            })
        })
    });

    c.bench_function("spawn and exit", |b| {
        b.iter_custom(|iters| {
            in_process(&rt, iters, |_, iters| async move {
                let started = Instant::now();
                for _ in 0..iters {
                    ferrotp::spawn_handle(|_| async {})
                        .join()
                        .await
                        .expect("a normal exit");
                }
                started.elapsed()
            })
        })
    });

    c.bench_function("monitor signal (Down) of an exiting process", |b| {
        b.iter_custom(|iters| {
            in_process(&rt, iters, |mut ctx, iters| async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let (_pid, monitor) = ctx.spawn_monitor(|_| async {});
                    let _: Down = ctx.receive_if(|d: &Down| d.monitor == monitor).await;
                }
                started.elapsed()
            })
        })
    });

    broadcast(c, &rt);
}

/// How many members the broadcast benchmarks have.
const MEMBERS: usize = 10_000;

/// A broadcast to 10,000 local members against 10,000 sends to the same processes: one
/// iteration is one message to each, so the time per member is the iteration's over 10,000.
fn broadcast(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("10,000 local members");
    group.sample_size(20);
    group.bench_function("pg::broadcast", |b| {
        b.iter_custom(|iters| {
            in_process(rt, iters, |_, iters| async move {
                let members = sinks("bench-broadcast");
                let started = Instant::now();
                for i in 0..iters {
                    ferrotp::pg::broadcast("bench-broadcast", i);
                }
                let elapsed = started.elapsed();
                stop(members).await;
                elapsed
            })
        })
    });
    group.bench_function("a send to each", |b| {
        b.iter_custom(|iters| {
            in_process(rt, iters, |_, iters| async move {
                let members = sinks("bench-sends");
                let started = Instant::now();
                for i in 0..iters {
                    for &pid in &members {
                        send(pid, i);
                    }
                }
                let elapsed = started.elapsed();
                stop(members).await;
                elapsed
            })
        })
    });
    group.finish();
}

/// Kills the members and waits for them to go, so the next samples' group has only its own.
async fn stop(members: Vec<Pid>) {
    for &pid in &members {
        exit(pid, ExitReason::Kill);
    }
    for pid in members {
        wait(pid).await;
    }
}

/// [`MEMBERS`] processes that take `u64`s forever, members of `group`.
fn sinks(group: &str) -> Vec<Pid> {
    (0..MEMBERS)
        .map(|_| {
            let pid = spawn(|mut ctx| async move {
                loop {
                    let _: u64 = ctx.receive().await;
                }
            });
            ferrotp::pg::join(group, pid).expect("a live local process joins");
            pid
        })
        .collect()
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
