//! A reply that can no longer come fails the caller at once, with a typed error, whatever the
//! reason; no timeout value panics; a handler's panic runs `terminate`.
//!
//! "At once" is checked on tokio's paused clock: the call waits with no timeout (`INFINITY`) and
//! must end without the clock moving.

use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::{INFINITY, request_timeout};
use ferrotp_tests::in_process;
use tokio::time::Instant;

/// Runs `call` and checks that it ended without any time passing.
async fn at_once<T>(call: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let result = call.await;
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the caller was made to wait"
    );
    result
}

/// What the relay does with a deferred reply token it is handed.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Drop,
    Panic,
    Keep,
}

/// A server whose handlers lose their replies in every way there is.
struct Loser {
    kept: Vec<ReplyTo<u32>>,
}

#[gen_server]
impl Loser {
    async fn init(_: ()) -> Self {
        Loser { kept: Vec::new() }
    }

    /// Says it will answer later, but keeps no token.
    #[install("forget")]
    async fn forget(&mut self) -> Reply<u32> {
        Reply::NoReply
    }

    /// Hands the token to a new process, which meets `fate`.
    #[install("hand_over", local)]
    async fn hand_over(&mut self, fate: Fate, caller: &mut Caller<u32>) -> Reply<u32> {
        let token = caller.defer();
        spawn(move |mut ctx| async move {
            match fate {
                Fate::Drop => drop(token),
                Fate::Panic => {
                    let _token = token;
                    panic!("the relay failed");
                }
                Fate::Keep => {
                    let _token = token;
                    ctx.receive::<()>().await;
                }
            }
        });
        Reply::NoReply
    }

    /// Keeps the token in the state, then stops without answering.
    #[install("keep_then_stop")]
    async fn keep_then_stop(&mut self, caller: &mut Caller<u32>) -> Reply<u32> {
        self.kept.push(caller.defer());
        Reply::Stop(ExitReason::error("gave up"))
    }

    #[install("stop")]
    async fn stop_now(&mut self) -> Reply<u32> {
        Reply::Stop(ExitReason::error("stopped"))
    }

    #[install("crash")]
    async fn crash(&mut self) -> u32 {
        panic!("the handler failed")
    }

    #[install("sleep")]
    async fn sleep(&mut self, millis: u64) -> u32 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        7
    }
}

fn exited_with(result: &Result<u32, CallError>, expected: &ExitReason) -> bool {
    matches!(result, Err(CallError::Exited { reason, .. }) if reason == expected)
}

#[tokio::test(start_paused = true)]
async fn a_handler_that_neither_answers_nor_defers_fails_the_caller_at_once() {
    let loser = Loser::start(()).await.unwrap();
    let result = at_once(loser.forget_timeout(INFINITY)).await;
    assert_eq!(result, Err(CallError::NoReply(loser.pid())));
    // The server goes on.
    assert_eq!(loser.sleep(0).await, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn a_token_dropped_or_lost_by_the_process_it_was_handed_to_fails_at_once() {
    let loser = Loser::start(()).await.unwrap();
    for fate in [Fate::Drop, Fate::Panic] {
        let result = at_once(loser.hand_over_timeout(fate, INFINITY)).await;
        assert_eq!(result, Err(CallError::NoReply(loser.pid())), "{fate:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_server_exiting_while_another_process_holds_the_token_fails_at_once() {
    in_process(|_ctx| async move {
        let loser = Loser::start(()).await.unwrap();
        let pid = loser.pid();
        let call = tokio::spawn(async move { loser.hand_over_timeout(Fate::Keep, INFINITY).await });
        // Let the call reach the relay, then kill the server the call was sent to.
        tokio::task::yield_now().await;
        assert_eq!(loser.sleep(0).await, Ok(7));
        exit(pid, ExitReason::Kill);
        let result = at_once(async { call.await.unwrap() }).await;
        assert!(exited_with(&result, &ExitReason::Killed));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_stop_panic_or_exit_gives_the_exit_reason_at_once() {
    let loser = Loser::start(()).await.unwrap();
    let result = at_once(loser.stop_now_timeout(INFINITY)).await;
    assert!(exited_with(&result, &ExitReason::error("stopped")));

    let loser = Loser::start(()).await.unwrap();
    let result = at_once(loser.keep_then_stop_timeout(INFINITY)).await;
    assert!(exited_with(&result, &ExitReason::error("gave up")));

    let loser = Loser::start(()).await.unwrap();
    let result = at_once(loser.crash_timeout(INFINITY)).await;
    assert!(exited_with(
        &result,
        &ExitReason::Panic("the handler failed".into())
    ));
}

#[tokio::test(start_paused = true)]
async fn a_request_never_read_fails_when_its_target_exits() {
    // A plain process that never reads the request, then exits.
    let target = spawn(|mut ctx| async move {
        ctx.receive::<()>().await;
    });
    let call = tokio::spawn(request_timeout::<u8, u8>(target, 1, INFINITY));
    tokio::task::yield_now().await;
    send(target, ());
    let result = at_once(async { call.await.unwrap() }).await;
    assert_eq!(
        result,
        Err(CallError::Exited {
            pid: target,
            reason: ExitReason::Normal
        })
    );

    // A plain process that panics holding the request.
    let target = spawn(|mut ctx| async move {
        let _request: Request<u8, u8> = ctx.receive().await;
        panic!("the target failed");
    });
    let result = at_once(request_timeout::<u8, u8>(target, 1, INFINITY)).await;
    assert_eq!(
        result,
        Err(CallError::Exited {
            pid: target,
            reason: ExitReason::Panic("the target failed".into())
        })
    );
}

/// The same, on the multi-threaded runtime: the server's exit races the relay holding the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_tokens_fail_with_the_exit_of_a_server_killed_under_load() {
    for _ in 0..100 {
        let loser = Loser::start(()).await.unwrap();
        let calls: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(async move { loser.hand_over_timeout(Fate::Keep, INFINITY).await })
            })
            .collect();
        exit(loser.pid(), ExitReason::Kill);
        for call in calls {
            let result = tokio::time::timeout(Duration::from_secs(10), call)
                .await
                .expect("a call outlived its server")
                .unwrap();
            assert!(exited_with(&result, &ExitReason::Killed), "{result:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn infinity_waits_for_as_long_as_it_takes() {
    let loser = Loser::start(()).await.unwrap();
    let start = Instant::now();
    assert_eq!(loser.sleep_timeout(3_600_000, INFINITY).await, Ok(7));
    assert!(start.elapsed() >= Duration::from_secs(3600));
}

/// Every timeout and delay the API takes, at the extremes: nothing panics.
#[tokio::test(start_paused = true)]
async fn no_timeout_value_panics() {
    use ferrotp::supervisor::{Child, Shutdown, Supervisor};
    let extremes = [Duration::ZERO, Duration::from_nanos(1), Duration::MAX];
    in_process(move |mut ctx| async move {
        let loser = Loser::start(()).await.unwrap();
        for timeout in extremes {
            // Calls and requests, typed, dynamic and raw.
            let typed = loser.sleep_timeout(0, timeout).await;
            assert!(
                matches!(typed, Ok(7) | Err(CallError::Timeout { .. })),
                "{typed:?}"
            );
            let dynamic: Result<u32, _> =
                ferrotp::call_timeout(loser.pid(), "sleep", 0, timeout).await;
            assert!(
                matches!(dynamic, Ok(7) | Err(CallError::Timeout { .. })),
                "{dynamic:?}"
            );
            let echo = spawn(|mut ctx| async move {
                let req: Request<u8, u8> = ctx.receive().await;
                req.reply(1);
            });
            let raw = request_timeout::<u8, u8>(echo, 1, timeout).await;
            assert!(
                matches!(raw, Ok(1) | Err(CallError::Timeout { .. })),
                "{raw:?}"
            );
            // Receives.
            send(ctx.pid(), 5_u8);
            assert_eq!(ctx.receive_timeout::<u8>(timeout).await, Ok(5));
            assert!(
                ctx.receive_if_timeout(|_: &u16| true, Duration::ZERO)
                    .await
                    .is_err()
            );
            // Timers: a zero period is taken as the timer resolution, not refused.
            ferrotp::send_after(timeout, ctx.pid(), "after").cancel();
            ferrotp::send_interval(timeout, ctx.pid(), "every").cancel();
            // Supervisors: shutdown times and intensity periods.
            let sup = Supervisor::one_for_one()
                .intensity(u32::MAX, timeout)
                .child(Child::server::<Loser>("l", ()).shutdown(Shutdown::Timeout(timeout)))
                .start()
                .await
                .unwrap();
            sup.stop(ExitReason::Shutdown).await.unwrap();
            // Stopping with a bound.
            let other = Loser::start(()).await.unwrap();
            other.stop_timeout(ExitReason::Shutdown, timeout).await.ok();
            ferrotp::wait(other.pid()).await;
        }
        // A zero-period interval ticks, at the timer resolution.
        let ticker = ferrotp::send_interval(Duration::ZERO, ctx.pid(), "tick");
        assert_eq!(ctx.receive::<&str>().await, "tick");
        assert_eq!(ctx.receive::<&str>().await, "tick");
        ticker.cancel();
    })
    .await;
}

/// Reports `terminate` to a witness; panics in the handler and, if told to, in `terminate`.
struct Fragile {
    witness: Pid,
    panic_in_terminate: bool,
}

#[gen_server]
impl Fragile {
    async fn init(setup: (Pid, bool)) -> Self {
        Fragile {
            witness: setup.0,
            panic_in_terminate: setup.1,
        }
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        send(self.witness, reason.clone());
        if self.panic_in_terminate {
            panic!("terminate failed too");
        }
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("handler failed")
    }
}

#[tokio::test(start_paused = true)]
async fn a_handler_panic_runs_terminate_with_the_panic_and_a_terminate_panic_changes_nothing() {
    in_process(|mut ctx| async move {
        let panic = ExitReason::Panic("handler failed".into());
        for panic_in_terminate in [false, true] {
            let fragile = Fragile::start((ctx.pid(), panic_in_terminate))
                .await
                .unwrap();
            let monitor = ctx.monitor(fragile.pid());
            assert_eq!(
                fragile.crash().await,
                Err(CallError::Exited {
                    pid: fragile.pid(),
                    reason: panic.clone()
                })
            );
            assert_eq!(ctx.receive::<ExitReason>().await, panic);
            let down: Down = ctx.receive_if(|d: &Down| d.monitor == monitor).await;
            assert_eq!(
                down.reason, panic,
                "terminate's own panic does not change the reason"
            );
        }
    })
    .await;
}

/// Requests that a process had moved into its own queue but never read fail with its exit reason
/// when it returns, not with `NoReply` as if it had dropped them while alive.
#[tokio::test(start_paused = true)]
async fn requests_a_returning_process_never_read_fail_with_its_exit_reason() {
    // Skips the requests (into its private queue) looking for a `u8`, then returns.
    let target = spawn(|mut ctx| async move {
        ctx.receive::<u8>().await;
    });
    let calls: Vec<_> = (0..3)
        .map(|n| tokio::spawn(request_timeout::<u32, u32>(target, n, INFINITY)))
        .collect();
    tokio::task::yield_now().await;
    send(target, 0_u8);
    for call in calls {
        let result = at_once(async { call.await.unwrap() }).await;
        assert_eq!(
            result,
            Err(CallError::Exited {
                pid: target,
                reason: ExitReason::Normal
            })
        );
    }
}

/// Calls queued behind a handler that stops the server fail with the server's reason.
#[tokio::test(start_paused = true)]
async fn calls_queued_behind_a_stop_fail_with_the_server_s_reason() {
    let loser = Loser::start(()).await.unwrap();
    let stop = tokio::spawn(async move { loser.stop_now_timeout(INFINITY).await });
    let behind: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { loser.sleep_timeout(0, INFINITY).await }))
        .collect();
    let stopped = ExitReason::error("stopped");
    assert!(exited_with(&stop.await.unwrap(), &stopped));
    for call in behind {
        let result = at_once(async { call.await.unwrap() }).await;
        assert!(exited_with(&result, &stopped), "{result:?}");
    }
}

/// The same on the multi-threaded runtime, where a caller runs while the target is still in the
/// poll in which it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_requests_fail_with_the_exit_reason_under_threads() {
    for _ in 0..300 {
        let target = spawn(|mut ctx| async move {
            ctx.receive::<u8>().await;
        });
        let calls: Vec<_> = (0..4)
            .map(|n| tokio::spawn(request_timeout::<u32, u32>(target, n, INFINITY)))
            .collect();
        // Until every request is in the target's own queue, skipped in favour of a `u8`.
        while ferrotp::process_info(target).is_some_and(|info| info.mailbox_len < 4) {
            tokio::task::yield_now().await;
        }
        send(target, 0_u8);
        for call in calls {
            let result = call.await.unwrap();
            assert!(
                matches!(
                    result,
                    Err(CallError::Exited {
                        reason: ExitReason::Normal,
                        ..
                    })
                ),
                "{result:?}"
            );
        }
    }
}
