//! The python-actors ring: N processes in a circle pass a token around until it has made M hops.
//!
//! Each process knows only its successor. The token is a counter; every process that receives it
//! forwards it, one higher, to the next, and the one that sees it reach M tells the driver. Then a
//! stop token goes round once and every process exits normally.
//!
//! ```text
//! cargo run --release --example ring                    # 10,000 processes, 1,000,000 hops
//! cargo run --release --example ring -- 1000000 2000000  # a million processes
//! RUST_LOG=ferrotp=debug cargo run --example ring -- 3 3  # watch every process live and die
//! ```

use std::time::Instant;

use ferrotp::prelude::*;

/// Tells a ring member who comes after it.
struct Next(Pid);

/// The token: how many hops it has made, or the signal to stop.
enum Token {
    Hop(u64),
    Stop,
}

/// Sent to the driver when the token has made all its hops.
struct Done(u64);

async fn member(mut ctx: Context, driver: Pid, hops: u64) {
    let Next(next) = ctx.receive().await;
    loop {
        match ctx.receive().await {
            Token::Hop(h) if h >= hops => send(driver, Done(h)),
            Token::Hop(h) => send(next, Token::Hop(h + 1)),
            Token::Stop => {
                send(next, Token::Stop);
                return;
            }
        }
    }
}

async fn driver(mut ctx: Context, n: usize, hops: u64) {
    let me = ctx.pid();
    let started = Instant::now();
    let ring: Vec<Pid> = (0..n)
        .map(|_| spawn(move |ctx| member(ctx, me, hops)))
        .collect();
    let spawned = started.elapsed();
    println!(
        "spawned {n} processes in {:.1} ms ({:.0} ns per process)",
        spawned.as_secs_f64() * 1e3,
        spawned.as_nanos() as f64 / n as f64
    );

    for (i, &pid) in ring.iter().enumerate() {
        send(pid, Next(ring[(i + 1) % n]));
    }

    let started = Instant::now();
    send(ring[0], Token::Hop(0));
    let Done(h) = ctx.receive().await;
    let elapsed = started.elapsed();
    println!(
        "{h} hops in {:.1} ms ({:.0} ns per hop)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / h as f64
    );

    send(ring[0], Token::Stop);
    let reason = wait(ring[n - 1]).await;
    println!("ring stopped: last process exited {reason}");
}

/// Prints `tracing` events as `RUST_LOG` asks (for example `ferrotp=debug`); nothing when unset.
fn log_from_env() {
    use tracing_subscriber::{
        Layer, filter::Targets, layer::SubscriberExt, util::SubscriberInitExt,
    };
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(filter))
        .init();
}

#[tokio::main]
async fn main() {
    log_from_env();
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000)
        .max(1);
    let hops: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let handle = ferrotp::spawn_handle(move |ctx| driver(ctx, n, hops));
    if let Err(reason) = handle.join().await {
        eprintln!("ring driver failed: {reason}");
        std::process::exit(1);
    }
}
