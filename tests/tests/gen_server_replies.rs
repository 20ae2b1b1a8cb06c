//! What a handler returns: plain values, `Result`s, `Reply` with deferred replies and stops, and
//! panics.

use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp_tests::in_process;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("cannot divide {0} by zero")]
struct DivideByZero(i64);

/// A calculator whose handlers exercise every kind of return value.
struct Calc {
    /// Calls waiting for `release`.
    parked: Vec<ReplyTo<u64>>,
    total: i64,
}

#[gen_server]
impl Calc {
    async fn init(_: ()) -> Self {
        Calc {
            parked: Vec::new(),
            total: 0,
        }
    }

    #[install("divide")]
    async fn divide(&mut self, (a, b): (i64, i64)) -> Result<i64, DivideByZero> {
        if b == 0 {
            return Err(DivideByZero(a));
        }
        self.total += a / b;
        Ok(a / b)
    }

    #[install("total")]
    async fn total(&mut self) -> i64 {
        self.total
    }

    /// Does not answer now: the token waits in `parked` for `release`.
    #[install("park")]
    async fn park(&mut self, caller: &mut Caller<u64>) -> Reply<u64> {
        self.parked.push(caller.defer());
        Reply::NoReply
    }

    /// Answers every parked call from this handler.
    #[install("release")]
    async fn release(&mut self, value: u64) -> usize {
        let n = self.parked.len();
        for token in self.parked.drain(..) {
            token.send(value);
        }
        n
    }

    /// Hands the reply token to another process, which answers.
    #[install("delegate")]
    async fn delegate(&mut self, text: String, caller: &mut Caller<String>) -> Reply<String> {
        let token = caller.defer();
        spawn(move |_| async move {
            token.send(text.to_uppercase());
        });
        Reply::NoReply
    }

    #[install("stop")]
    async fn halt(&mut self, reason: String) -> Reply<()> {
        Reply::Stop(ExitReason::error(reason))
    }

    #[install("stop_reply")]
    async fn halt_with_answer(&mut self) -> Reply<&'static str> {
        Reply::StopReply(ExitReason::Normal, "goodbye")
    }

    #[install("crash")]
    async fn crash(&mut self) -> u64 {
        panic!("calculator on fire")
    }
}

#[tokio::test]
async fn an_err_reaches_the_caller_typed_and_the_server_goes_on() {
    let calc = Calc::start(()).await.unwrap();
    assert_eq!(calc.divide((10, 2)).await, Ok(5));
    assert_eq!(
        calc.divide((7, 0)).await,
        Err(CallError::Handler(DivideByZero(7)))
    );
    assert_eq!(calc.divide((9, 3)).await, Ok(3));
    assert_eq!(calc.total().await, Ok(8));
}

#[tokio::test]
async fn an_err_reaches_a_dynamic_caller_encoded() {
    let calc = Calc::start(()).await.unwrap();
    let error = calc.call::<i64>("divide", (1, 0)).await.unwrap_err();
    assert_eq!(error, CallError::Handler(serde_json::json!(1)));
    assert_eq!(error.to_string(), "the handler failed: 1");
    assert_eq!(calc.call::<i64>("divide", (8, 4)).await, Ok(2));
}

#[tokio::test]
async fn a_deferred_reply_is_answered_from_another_handler() {
    let calc = Calc::start(()).await.unwrap();
    let first = tokio::spawn(async move { calc.park().await });
    let second = tokio::spawn(async move { calc.park().await });
    // Release until both parked calls have been answered (they may reach the server after the
    // first releases).
    let mut released = 0;
    while released < 2 {
        released += calc.release(42).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(released, 2);
    assert_eq!(first.await.unwrap(), Ok(42));
    assert_eq!(second.await.unwrap(), Ok(42));
}

#[tokio::test]
async fn a_deferred_reply_is_answered_from_another_process() {
    let calc = Calc::start(()).await.unwrap();
    assert_eq!(calc.delegate("later".into()).await, Ok("LATER".to_string()));
}

#[tokio::test(start_paused = true)]
async fn a_deferred_call_whose_server_dies_fails_at_once() {
    let calc = Calc::start(()).await.unwrap();
    let parked = tokio::spawn(async move { calc.park_timeout(Duration::from_secs(60)).await });
    let start = Instant::now();
    calc.cast_crash();
    let result = parked.await.unwrap();
    assert_eq!(
        result,
        Err(CallError::Exited {
            pid: calc.pid(),
            reason: ExitReason::Panic("calculator on fire".into())
        })
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn stop_ends_the_server_and_the_caller_learns_the_reason() {
    let calc = Calc::start(()).await.unwrap();
    assert_eq!(
        calc.halt("enough".into()).await,
        Err(CallError::Exited {
            pid: calc.pid(),
            reason: ExitReason::error("enough")
        })
    );
    let reason = ExitReason::error("enough");
    assert_eq!(wait(calc.pid()).await, reason);
    assert_eq!(
        calc.total().await,
        Err(CallError::Exited {
            pid: calc.pid(),
            reason
        })
    );
}

#[tokio::test]
async fn stop_reply_answers_then_stops() {
    let calc = Calc::start(()).await.unwrap();
    assert_eq!(calc.halt_with_answer().await, Ok("goodbye"));
    assert_eq!(ferrotp::wait(calc.pid()).await, ExitReason::Normal);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_crashes_the_server_and_its_caller_learns_at_once() {
    let calc = Calc::start(()).await.unwrap();
    let start = Instant::now();
    assert_eq!(
        calc.crash_timeout(Duration::from_secs(60)).await,
        Err(CallError::Exited {
            pid: calc.pid(),
            reason: ExitReason::Panic("calculator on fire".into())
        })
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    let reason = ExitReason::Panic("calculator on fire".into());
    assert_eq!(
        calc.total().await,
        Err(CallError::Exited {
            pid: calc.pid(),
            reason
        })
    );
}

#[tokio::test]
async fn a_cast_runs_the_handler_and_drops_the_reply() {
    let calc = Calc::start(()).await.unwrap();
    calc.cast_divide((6, 3));
    calc.cast_divide((1, 0)); // the Err is logged, not lost silently, and not fatal
    assert_eq!(calc.total().await, Ok(2));
    calc.cast("divide", (10, 5)).unwrap();
    assert_eq!(calc.total().await, Ok(4));
}

#[tokio::test]
async fn calls_racing_a_crash_fail_with_the_reason_or_noproc() {
    for _ in 0..200 {
        let calc = Calc::start(()).await.unwrap();
        let racer =
            tokio::spawn(async move { calc.total_timeout(Duration::from_secs(3600)).await });
        calc.cast_crash();
        match racer.await.unwrap() {
            Ok(0) => {}
            Err(CallError::Exited {
                reason: ExitReason::Panic(_),
                ..
            })
            | Err(CallError::NoProc(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_server_calling_itself_gets_an_error_not_a_deadlock() {
    struct Narcissus;

    #[gen_server]
    impl Narcissus {
        async fn init(_: ()) -> Self {
            Narcissus
        }

        #[install("me")]
        async fn me(&mut self, ctx: &mut Context) -> Result<u8, String> {
            let me = ServerRef::<Narcissus>::from_pid(ctx.pid()).map_err(|e| e.to_string())?;
            match me.ping().await {
                Err(CallError::SelfCall(pid)) if pid == ctx.pid() => Ok(1),
                other => Err(format!("{other:?}")),
            }
        }

        #[install("ping")]
        async fn ping(&mut self) -> u8 {
            0
        }
    }

    let server = Narcissus::start(()).await.unwrap();
    let reply = in_process(move |_| async move { server.me().await }).await;
    assert_eq!(reply, Ok(1));
}
