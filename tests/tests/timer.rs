//! Timers on tokio's paused clock: exact, cancellable, repeating.

use std::time::Duration;

use ferrotp::{ExitReason, exit, send_after, send_interval, spawn};
use ferrotp_tests::in_process;
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);

#[tokio::test(start_paused = true)]
async fn send_after_delivers_after_the_delay_and_not_before() {
    let got = in_process(|mut ctx| async move {
        let start = Instant::now();
        send_after(100 * MS, ctx.pid(), "ding");
        let early = ctx.receive_timeout::<&str>(99 * MS).await;
        let on_time = ctx.receive::<&str>().await;
        (early.is_err(), on_time, start.elapsed())
    })
    .await;
    assert_eq!(got, (true, "ding", 100 * MS));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_timer_never_fires() {
    let got = in_process(|mut ctx| async move {
        let timer = send_after(100 * MS, ctx.pid(), "ding");
        let cancelled = timer.cancel();
        let message = ctx.receive_timeout::<&str>(10_000 * MS).await;
        (cancelled, message.is_err())
    })
    .await;
    assert_eq!(got, (true, true));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_fired_timer_says_so() {
    let cancelled = in_process(|mut ctx| async move {
        let timer = send_after(MS, ctx.pid(), 1_u8);
        ctx.receive::<u8>().await;
        tokio::task::yield_now().await;
        timer.cancel()
    })
    .await;
    assert!(!cancelled);
}

#[tokio::test(start_paused = true)]
async fn an_interval_delivers_every_period_until_cancelled() {
    let got = in_process(|mut ctx| async move {
        let start = Instant::now();
        let timer = send_interval(50 * MS, ctx.pid(), "tick");
        let mut at = Vec::new();
        for _ in 0..3 {
            ctx.receive::<&str>().await;
            at.push(start.elapsed());
        }
        let cancelled = timer.cancel();
        let after_cancel = ctx.receive_timeout::<&str>(1_000 * MS).await;
        (at, cancelled, after_cancel.is_err())
    })
    .await;
    assert_eq!(got, (vec![50 * MS, 100 * MS, 150 * MS], true, true));
}

#[tokio::test(start_paused = true)]
async fn an_interval_stops_when_its_target_exits() {
    let target = spawn(|mut ctx| async move { ctx.receive::<()>().await });
    let timer = send_interval(10 * MS, target, 0_u32);
    exit(target, ExitReason::Kill);
    tokio::time::sleep(20 * MS).await; // paused clock: two periods pass at once
    tokio::task::yield_now().await;
    assert!(
        !timer.cancel(),
        "the interval should have stopped by itself"
    );
}
