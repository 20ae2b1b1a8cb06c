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
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
