//! `#[background(every = "…")]`: periodic work that arrives as messages to the server, on the
//! paused clock.

use std::time::Duration;

use ferrotp::prelude::*;

struct Ticker {
    ticks: u32,
    slow: u32,
    limit: u32,
}

#[gen_server]
impl Ticker {
    async fn init(limit: u32) -> Self {
        Ticker {
            ticks: 0,
            slow: 0,
            limit,
        }
    }

    #[background(every = "1s")]
    async fn tick(&mut self) -> Reply<()> {
        self.ticks += 1;
        if self.ticks == self.limit {
            return Reply::Stop(ExitReason::Normal);
        }
        Reply::Reply(())
    }

    #[background(every = "250ms")]
    async fn quarter(&mut self, ctx: &mut Context) {
        let _ = ctx.pid();
        self.slow += 1;
    }

    #[install("ticks")]
    async fn ticks(&self) -> (u32, u32) {
        (self.ticks, self.slow)
    }
}

#[tokio::test(start_paused = true)]
async fn each_method_runs_every_period_after_init() {
    let ticker = Ticker::start(u32::MAX).await.unwrap();
    assert_eq!(ticker.ticks().await, Ok((0, 0)));
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_eq!(ticker.ticks().await, Ok((3, 12)));
}

#[tokio::test(start_paused = true)]
async fn a_background_method_can_stop_its_server() {
    let ticker = Ticker::start(2).await.unwrap();
    assert_eq!(wait(ticker.pid()).await, ExitReason::Normal);
}

#[tokio::test(start_paused = true)]
async fn the_timers_stop_with_the_server() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let ticker = Ticker::start(u32::MAX).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(ticker.ticks().await, Ok((1, 4)));
    ticker.stop(ExitReason::Shutdown).await.unwrap();
    // The timers' tasks end at their next poll after the cancel: no tick is needed.
    for _ in 0..100 {
        if metrics.num_alive_tasks() == before {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "{} tasks alive after the stop, {before} before the start",
        metrics.num_alive_tasks()
    );
}

/// A method slower than its period.
struct Slow {
    turns: u32,
}

#[gen_server]
impl Slow {
    async fn init(_: ()) -> Self {
        Slow { turns: 0 }
    }

    #[background(every = "10ms")]
    async fn crawl(&mut self) {
        self.turns += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    #[install("turns")]
    async fn turns(&self) -> u32 {
        self.turns
    }
}

#[tokio::test(start_paused = true)]
async fn a_method_slower_than_its_period_gets_one_turn_at_a_time_not_a_backlog() {
    let slow = Slow::start(()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let info = ferrotp::process_info(slow.pid()).expect("alive");
    assert!(info.mailbox_len <= 1, "{} ticks waiting", info.mailbox_len);
    // About one turn per 30 ms (25 ms of work, then the next tick of the 10 ms period).
    let turns = slow.turns().await.unwrap();
    assert!((30..=40).contains(&turns), "{turns} turns in a second");
}
