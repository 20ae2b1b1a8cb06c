//! The workloads, as `../shared/peer-bench/README.md` defines them (the remote ones are in
//! [`remote`]). Each driver is itself a ferrotp process, as the client code of a ferrotp program
//! would be.

use std::time::{Duration, Instant};

use ferrotp::prelude::*;
use ferrotp::supervisor::{Child, Supervisor};

use crate::{Report, Sizes, remote};

/// Runs `workload` and reports its metrics. `single_thread` is how this process runs, which the
/// remote workloads' server process then does too.
pub(crate) async fn run(
    workload: &str,
    sizes: Sizes,
    single_thread: bool,
    report: &Report,
) -> Result<(), String> {
    let lines = match workload {
        "ring" => in_driver(move |ctx| ring(ctx, sizes)).await?,
        "call" => in_driver(move |_| call(sizes)).await?,
        "cast" => in_driver(move |_| cast(sizes)).await?,
        "spawn" => in_driver(move |_| spawn_stop(sizes)).await?,
        "restart" => in_driver(move |_| restart(sizes)).await?,
        "remote_call" => in_driver(move |_| remote::call(sizes, single_thread)).await?,
        "remote_cast" => in_driver(move |_| remote::cast(sizes, single_thread)).await?,
        other => return Err(format!("unknown workload {other:?}")),
    };
    for (metric, value, params) in lines {
        report.emit(workload, metric, value, &params);
    }
    Ok(())
}

/// One metric: its name, its value, and the workload's parameters as JSON.
pub(crate) type Line = (&'static str, f64, String);

async fn in_driver<F, Fut>(f: F) -> Result<Vec<Line>, String>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<Line>, String>> + Send + 'static,
{
    ferrotp::spawn_handle(f)
        .join()
        .await
        .map_err(|reason| format!("the driver process exited: {reason}"))?
}

pub(crate) fn ns_per(elapsed: Duration, n: u64) -> f64 {
    elapsed.as_nanos() as f64 / n as f64
}

// ----------------------------------------------------------------------------------------- ring

/// A ring member's first message to the driver: it is running.
struct Started;
/// Who comes after a ring member.
struct Next(Pid);
/// The token and the hops it has made.
struct Token(u64);
/// To the driver: the token made all its hops.
struct Done(u64);

async fn member(mut ctx: Context, driver: Pid, hops: u64) {
    send(driver, Started);
    let Next(next) = ctx.receive().await;
    loop {
        let Token(h) = ctx.receive().await;
        if h >= hops {
            send(driver, Done(h));
        } else {
            send(next, Token(h + 1));
        }
    }
}

async fn ring(mut ctx: Context, sizes: Sizes) -> Result<Vec<Line>, String> {
    let (n, hops) = (sizes.ring_n, sizes.ring_hops);
    let me = ctx.pid();
    let started = Instant::now();
    let ring: Vec<Pid> = (0..n)
        .map(|_| spawn(move |ctx| member(ctx, me, hops)))
        .collect();
    for _ in 0..n {
        ctx.receive::<Started>().await;
    }
    let spawned = started.elapsed();
    for (i, &pid) in ring.iter().enumerate() {
        send(pid, Next(ring[(i + 1) % ring.len()]));
    }
    let started = Instant::now();
    send(ring[0], Token(0));
    let Done(h) = ctx.receive().await;
    let elapsed = started.elapsed();
    if h != hops {
        return Err(format!("the token made {h} hops, not {hops}"));
    }
    for pid in ring {
        exit(pid, ExitReason::Kill);
    }
    let params = format!("{{\"n\":{n},\"hops\":{hops}}}");
    Ok(vec![
        ("spawn_ns_per_actor", ns_per(spawned, n), params.clone()),
        ("ns_per_hop", ns_per(elapsed, hops), params),
    ])
}

// ------------------------------------------------------------------------------ call and cast

/// The counter server of the call and cast workloads, and of the remote ones.
pub(crate) struct Counter {
    count: u64,
}

#[gen_server]
impl Counter {
    async fn init(_: ()) -> Self {
        Counter { count: 0 }
    }

    #[install("inc")]
    async fn inc(&mut self) -> u64 {
        self.count += 1;
        self.count
    }

    #[install("add")]
    async fn add(&mut self, n: u64) {
        self.count += n;
    }

    #[install("get")]
    async fn get(&mut self) -> u64 {
        self.count
    }

    /// The server's own pid: a client on another node resolves the server's name with it once
    /// (Erlang's `rpc:call(Node, erlang, whereis, [counter])`), then calls the pid.
    #[install("whereis")]
    async fn whereis(&mut self, ctx: &mut Context) -> Pid {
        ctx.pid()
    }
}

pub(crate) fn failed(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// `k` sequential `inc` calls on a fresh `counter` (local or on another node), timed and
/// checked: the call and remote_call workloads.
pub(crate) async fn time_calls(counter: ServerRef<Counter>, k: u64) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last = 0;
    for _ in 0..k {
        last = counter.inc().await.map_err(failed)?;
    }
    let elapsed = started.elapsed();
    if last != k {
        return Err(format!("the last reply was {last}, not {k}"));
    }
    Ok(elapsed)
}

/// Concurrent producers each cast `add(1)` `per_producer` times to a fresh `counter` (local or
/// on another node), then call `get`; then the driver calls `get` itself and checks the total.
/// Timed: the cast and remote_cast workloads.
pub(crate) async fn time_casts(
    counter: ServerRef<Counter>,
    producers: u64,
    per_producer: u64,
) -> Result<Duration, String> {
    let started = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            ferrotp::spawn_handle(move |_| async move {
                for _ in 0..per_producer {
                    counter.cast_add(1);
                }
                // Answered only after this producer's own casts, which were sent before it
                // (over one connection, in order, when the counter is on another node).
                counter.get().await
            })
        })
        .collect();
    for handle in handles {
        handle.join().await.map_err(failed)?.map_err(failed)?;
    }
    let total = counter.get().await.map_err(failed)?;
    let elapsed = started.elapsed();
    let expected = producers * per_producer;
    if total != expected {
        return Err(format!("the counter is {total}, not {expected}"));
    }
    Ok(elapsed)
}

async fn call(sizes: Sizes) -> Result<Vec<Line>, String> {
    let k = sizes.call_k;
    let counter = Counter::start(()).await.map_err(failed)?;
    let elapsed = time_calls(counter, k).await?;
    counter.stop(ExitReason::Normal).await.map_err(failed)?;
    Ok(vec![(
        "ns_per_call",
        ns_per(elapsed, k),
        format!("{{\"k\":{k}}}"),
    )])
}

async fn cast(sizes: Sizes) -> Result<Vec<Line>, String> {
    let (producers, per_producer) = (sizes.cast_producers, sizes.cast_per_producer);
    let counter = Counter::start(()).await.map_err(failed)?;
    let elapsed = time_casts(counter, producers, per_producer).await?;
    let expected = producers * per_producer;
    counter.stop(ExitReason::Normal).await.map_err(failed)?;
    let params = format!("{{\"producers\":{producers},\"per_producer\":{per_producer}}}");
    Ok(vec![("ns_per_msg", ns_per(elapsed, expected), params)])
}

// ------------------------------------------------------------------------------------ spawn

/// An idle server: no work in `init`, stops when asked.
struct Idle;

#[gen_server]
impl Idle {
    async fn init(_: ()) -> Self {
        Idle
    }

    #[install("stop")]
    async fn halt(&mut self) -> Reply<()> {
        Reply::Stop(ExitReason::Normal)
    }
}

/// Resident set size in bytes (`/proc/self/statm`, second field, in 4 KiB pages).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

async fn spawn_stop(sizes: Sizes) -> Result<Vec<Line>, String> {
    let n = sizes.spawn_n;
    let rss0 = rss_bytes();
    let started = Instant::now();
    let mut servers = Vec::with_capacity(n as usize);
    for _ in 0..n {
        // `start` returns once `init` has run: the server is spawned and started.
        servers.push(Idle::start(()).await.map_err(failed)?);
    }
    let spawned = started.elapsed();
    let rss1 = rss_bytes();
    let started = Instant::now();
    for server in &servers {
        server.cast_halt();
    }
    for server in &servers {
        let reason = wait(server.pid()).await;
        if reason != ExitReason::Normal {
            return Err(format!("{} exited {reason}", server.pid()));
        }
    }
    let stopped = started.elapsed();
    let params = format!("{{\"n\":{n}}}");
    Ok(vec![
        ("spawn_ns_per_actor", ns_per(spawned, n), params.clone()),
        (
            "bytes_per_actor",
            rss1.saturating_sub(rss0) as f64 / n as f64,
            params.clone(),
        ),
        ("stop_ns_per_actor", ns_per(stopped, n), params),
    ])
}

// ---------------------------------------------------------------------------------- restart

/// The supervised child of the restart workload.
struct Crashy;

#[gen_server]
impl Crashy {
    async fn init(_: ()) -> Self {
        Crashy
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("crash on purpose")
    }

    #[install("ping")]
    async fn ping(&mut self) {}
}

async fn restart(sizes: Sizes) -> Result<Vec<Line>, String> {
    const NAME: &str = "restart_child";
    let r = sizes.restart_r;
    let sup = Supervisor::one_for_one()
        .intensity(1_000_000, Duration::from_secs(1))
        .child(Child::server::<Crashy>("child", ()).name(NAME))
        .start()
        .await
        .map_err(failed)?;
    // By name, as the guide teaches: a ping behind the crash in the old child's mailbox fails
    // with its exit; the next one waits under the reserved name for the restarted child.
    let child = ServerRef::<Crashy>::named(NAME);
    let mut retries = 0_u64;
    let started = Instant::now();
    for _ in 0..r {
        child.cast_crash();
        while child.ping().await.is_err() {
            retries += 1;
            tokio::task::yield_now().await;
        }
    }
    let elapsed = started.elapsed();
    eprintln!("ferrotp restart: ping retries = {retries}");
    sup.stop(ExitReason::Shutdown).await.map_err(failed)?;
    Ok(vec![(
        "ns_per_restart",
        ns_per(elapsed, r),
        format!("{{\"r\":{r}}}"),
    )])
}
