//! A call whose caller has given up before the server takes it is not run; one that arrives
//! after its deadline is answered with a timeout by the runtime.

use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp_tests::deadlines::{Leaf, Mid};

struct Slow {
    bumps: u32,
}

#[gen_server]
impl Slow {
    async fn init(_: ()) -> Self {
        Slow { bumps: 0 }
    }

    #[install("nap")]
    async fn nap(&mut self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    #[install("bump")]
    async fn bump(&mut self) -> u32 {
        self.bumps += 1;
        self.bumps
    }

    #[install("bump_by", local)]
    async fn bump_by(&mut self, caller: &mut Caller<u32>, n: u32) -> u32 {
        let _ = caller.pid();
        self.bumps += n;
        self.bumps
    }

    #[install("bumps")]
    async fn bumps(&self) -> u32 {
        self.bumps
    }

    /// The deadline this call carries, in milliseconds from now.
    #[install("deadline", local)]
    async fn deadline(&mut self, ctx: &mut Context) -> Option<u64> {
        ctx.deadline().map(|deadline| {
            deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .as_millis() as u64
        })
    }

    /// Calls `peer` (an idle server): can only fail if something is wrong.
    #[install("ping_peer", local)]
    async fn ping_peer(&mut self, peer: ServerRef<Peer>) -> Result<u32, CallError> {
        peer.ping().await
    }
}

fn is_timeout<T: std::fmt::Debug, E: std::fmt::Debug>(result: &Result<T, CallError<E>>) -> bool {
    matches!(result, Err(CallError::Timeout { .. }))
}

#[tokio::test(start_paused = true)]
async fn calls_whose_callers_timed_out_while_they_waited_are_not_run() {
    let slow = Slow::start(()).await.unwrap();
    let busy = tokio::spawn(async move { slow.nap(100).await });
    tokio::task::yield_now().await;
    // Each waits behind the nap and gives up before it ends: typed, with a `Caller` parameter,
    // and by name.
    let gave_up = slow.bump_timeout(Duration::from_millis(10)).await;
    assert!(is_timeout(&gave_up), "{gave_up:?}");
    let gave_up = slow.bump_by_timeout(5, Duration::from_millis(10)).await;
    assert!(is_timeout(&gave_up), "{gave_up:?}");
    let by_name: Result<u32, _> =
        ferrotp::call_timeout(slow.pid(), "bump", (), Duration::from_millis(10)).await;
    assert!(is_timeout(&by_name), "{by_name:?}");
    busy.await.unwrap().unwrap();
    assert_eq!(slow.bumps().await, Ok(0), "none of them ran");
    // A cast nobody waits for runs, as always.
    slow.cast_bump();
    assert_eq!(slow.bumps().await, Ok(1));
}

#[tokio::test(start_paused = true)]
async fn a_plain_call_that_waited_out_the_default_timeout_is_not_run() {
    let slow = Slow::start(()).await.unwrap();
    let busy = tokio::spawn(async move { slow.nap_timeout(6_000, ferrotp::INFINITY).await });
    tokio::task::yield_now().await;
    let gave_up = slow.bump().await;
    assert!(is_timeout(&gave_up), "{gave_up:?}");
    busy.await.unwrap().unwrap();
    assert_eq!(slow.bumps().await, Ok(0));
}

#[tokio::test(start_paused = true)]
async fn a_call_whose_future_was_dropped_is_not_run() {
    let slow = Slow::start(()).await.unwrap();
    let busy = tokio::spawn(async move { slow.nap(100).await });
    tokio::task::yield_now().await;
    // Given up by the caller's own select, not by the call's timeout.
    tokio::select! {
        result = slow.bump() => panic!("answered while the server naps: {result:?}"),
        () = tokio::time::sleep(Duration::from_millis(10)) => {}
    }
    let cancelled = tokio::spawn(async move { slow.bump().await });
    tokio::task::yield_now().await;
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    busy.await.unwrap().unwrap();
    assert_eq!(slow.bumps().await, Ok(0));
    // The server takes calls as before.
    assert_eq!(slow.bump().await, Ok(1));
    assert_eq!(slow.bump().await, Ok(2));
}

/// Asks `Slow` on behalf of its own caller, whose deadline it inherits.
struct Relay {
    to: ServerRef<Slow>,
    nested: Option<Result<u32, CallError>>,
}

#[gen_server]
impl Relay {
    async fn init(to: ServerRef<Slow>) -> Self {
        Relay { to, nested: None }
    }

    #[install("relay", local)]
    async fn relay(&mut self, ctx: &mut Context) {
        // Waits out the caller's whole deadline first: the nested call is made after it.
        let deadline = ctx
            .deadline()
            .expect("a call with a timeout has a deadline");
        tokio::time::sleep_until(deadline).await;
        self.nested = Some(self.to.bump_timeout(Duration::from_secs(60)).await);
    }

    #[install("nested", local)]
    async fn nested(&mut self) -> Option<Result<u32, CallError>> {
        self.nested.take()
    }
}

#[tokio::test(start_paused = true)]
async fn a_nested_call_made_after_its_deadline_times_out_without_running() {
    let slow = Slow::start(()).await.unwrap();
    let relay = Relay::start(slow).await.unwrap();
    // Answered or timed out: the relay answers right at its caller's deadline.
    let _ = relay.relay_timeout(Duration::from_millis(50)).await;
    let nested = loop {
        if let Some(nested) = relay.nested().await.unwrap() {
            break nested;
        }
    };
    // A timeout (the deadline it inherited had passed), not an unanswered call; never run.
    assert!(is_timeout(&nested), "{nested:?}");
    assert_eq!(slow.bumps().await, Ok(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_giving_up_at_random_never_see_an_unanswered_call_and_runs_match() {
    for round in 0..20_u64 {
        let slow = Slow::start(()).await.unwrap();
        let mut callers = Vec::new();
        for i in 0..40_u64 {
            callers.push(tokio::spawn(async move {
                let timeout = Duration::from_micros((i * 37 + round * 11) % 400);
                slow.bump_timeout(timeout).await
            }));
        }
        let (mut answered, mut timed_out) = (0, 0);
        for caller in callers {
            match caller.await.unwrap() {
                Ok(_) => answered += 1,
                Err(CallError::Timeout { .. }) => timed_out += 1,
                Err(other) => panic!("round {round}: {other}"),
            }
        }
        assert_eq!(answered + timed_out, 40);
        // Every answered call ran; a call given up on ran only if the server had taken it first.
        let runs = slow.bumps().await.unwrap();
        assert!(
            runs >= answered && runs <= 40,
            "round {round}: {runs} runs, {answered} answered"
        );
        slow.stop(ExitReason::Normal).await.unwrap();
    }
}

struct Peer;

#[gen_server]
impl Peer {
    async fn init(_: ()) -> Self {
        Peer
    }

    #[install("ping")]
    async fn ping(&mut self) -> u32 {
        7
    }

    /// Calls `held` with a long timeout of its own, but gives up after 10 ms (a select).
    #[install("impatient", local)]
    async fn impatient(&mut self, held: ServerRef<Slow>) {
        tokio::select! {
            r = held.bump_timeout(Duration::from_secs(60)) => panic!("answered: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
}

/// A call with a context whose caller dropped its future is not run: its context goes with it,
/// and the next message is handled with its own.
#[tokio::test(start_paused = true)]
async fn a_dropped_call_leaves_no_deadline_to_the_next_message() {
    let held = Slow::start(()).await.unwrap();
    let nap = tokio::spawn(async move { held.nap(100).await });
    tokio::task::yield_now().await;
    // A call with a timeout of its own (so it carries a deadline), given up by a select.
    tokio::select! {
        r = held.bump_timeout(Duration::from_secs(60)) => panic!("answered: {r:?}"),
        () = tokio::time::sleep(Duration::from_millis(10)) => {}
    }
    // A plain call from outside any handler: no deadline, as `Context::deadline` documents.
    let seen = tokio::spawn(async move { held.deadline().await });
    nap.await.unwrap().unwrap();

    let seen = seen.await.unwrap();
    assert_eq!(seen, Ok(None), "a stale deadline leaked into a plain call");
}

/// The same, through the chain: a later handler's call to an idle server is no deadlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_leaves_no_chain_to_the_next_message() {
    let held = Slow::start(()).await.unwrap();
    let peer = Peer::start(()).await.unwrap();
    let nap = tokio::spawn(async move { held.nap(200).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    // peer calls held (chain [peer]) and gives up after 10 ms: the call stays queued.
    peer.impatient(held).await.unwrap();
    // queued after it: a plain call whose handler calls the (idle) peer.
    let pinged = tokio::spawn(async move { held.ping_peer(peer).await });
    nap.await.unwrap().unwrap();
    let pinged = pinged.await.unwrap();
    assert_eq!(pinged, Ok(7), "false deadlock from a stale chain");
}

/// A task's plain call carries no deadline (`traces.rs` checks the same with a subscriber).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tracing_a_task_handlers_plain_call_has_no_deadline() {
    let leaf = Leaf::start(()).await.unwrap();
    let mid = Mid::start(leaf).await.unwrap();
    assert_eq!(mid.ask_later().await, Ok(None));
}
