//! The request/reply primitive: replies, deferred replies, and failing fast on dead targets.

use std::time::Duration;

use ferrotp::{
    CallError, ExitReason, Pid, ReplyTo, Request, exit, request, request_timeout, send, spawn, wait,
};
use ferrotp_tests::in_process;
use tokio::time::Instant;

/// Answers every `Request<u64, u64>` with double the body, and reports who asked.
fn doubler() -> Pid {
    spawn(|mut ctx| async move {
        loop {
            let req: Request<u64, (u64, Option<Pid>)> = ctx.receive().await;
            let answer = (2 * req.body, req.from);
            req.reply(answer);
        }
    })
}

#[tokio::test]
async fn a_request_gets_its_reply_and_the_server_knows_the_caller() {
    let server = doubler();
    assert_eq!(
        request::<u64, (u64, Option<Pid>)>(server, 21).await,
        Ok((42, None))
    );
    let (caller, reply) = in_process(move |ctx| async move {
        (
            ctx.pid(),
            request::<u64, (u64, Option<Pid>)>(server, 5).await,
        )
    })
    .await;
    assert_eq!(reply, Ok((10, Some(caller))));
    exit(server, ExitReason::Kill);
}

#[tokio::test(start_paused = true)]
async fn a_request_to_a_dead_process_fails_at_once_with_its_reason() {
    let dead = spawn(|_| async { ExitReason::Shutdown });
    wait(dead).await;
    let start = Instant::now();
    let reason = ExitReason::Shutdown;
    assert_eq!(
        request::<u64, u64>(dead, 1).await,
        Err(CallError::Exited { pid: dead, reason })
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test]
async fn a_request_to_a_pid_never_seen_fails_with_noproc() {
    assert_eq!(
        request::<u64, u64>(Pid::ROOT, 1).await,
        Err(CallError::NoProc(Pid::ROOT))
    );
}

#[tokio::test(start_paused = true)]
async fn a_target_that_dies_mid_request_fails_the_caller_at_once_with_its_reason() {
    let server = spawn(|mut ctx| async move {
        let _req: Request<u64, u64> = ctx.receive().await;
        panic!("cannot handle this");
    });
    let start = Instant::now();
    let reply = request_timeout::<u64, u64>(server, 1, Duration::from_secs(60)).await;
    assert_eq!(
        reply,
        Err(CallError::Exited {
            pid: server,
            reason: ExitReason::Panic("cannot handle this".into())
        })
    );
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the caller must not wait for its timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn a_target_that_exits_with_the_request_unread_fails_the_caller_at_once() {
    let server = spawn(|mut ctx| async move {
        ctx.receive::<()>().await; // never looks at requests
        ExitReason::Shutdown
    });
    let caller = tokio::spawn(request_timeout::<u64, u64>(
        server,
        1,
        Duration::from_secs(60),
    ));
    tokio::task::yield_now().await; // the request is now queued
    let start = Instant::now();
    send(server, ());
    assert_eq!(
        caller.await.unwrap(),
        Err(CallError::Exited {
            pid: server,
            reason: ExitReason::Shutdown
        })
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_live_target_that_does_not_answer_times_out() {
    let silent = spawn(|mut ctx| async move {
        // Takes the request and drops the reply token: the caller waits for its timeout, as a
        // gen_server caller does when the server never replies.
        let _ignored: Request<u64, u64> = ctx.receive().await;
        ctx.receive::<()>().await;
    });
    let start = Instant::now();
    let reply = request_timeout::<u64, u64>(silent, 1, Duration::from_millis(300)).await;
    assert_eq!(
        reply,
        Err(CallError::Timeout {
            pid: silent,
            timeout: Duration::from_millis(300)
        })
    );
    assert_timed_out_after(start, 300);
    send(silent, ());
}

#[tokio::test]
async fn a_deferred_reply_can_come_from_another_process() {
    let server = spawn(|mut ctx| async move {
        let req: Request<&'static str, String> = ctx.receive().await;
        let Request { body, reply_to, .. } = req;
        // Hand the reply token to a helper, which answers later.
        let helper = spawn(|mut ctx| async move {
            let (body, reply_to): (&'static str, ReplyTo<String>) = ctx.receive().await;
            reply_to.send(body.to_uppercase());
        });
        send(helper, (body, reply_to));
        ctx.receive::<()>().await;
    });
    assert_eq!(
        request::<_, String>(server, "later").await,
        Ok("LATER".to_string())
    );
    send(server, ());
}

#[tokio::test]
async fn a_request_to_oneself_is_refused_instead_of_deadlocking() {
    let got =
        in_process(|ctx| async move { (ctx.pid(), request::<u8, u8>(ctx.pid(), 1).await) }).await;
    assert_eq!(got.1, Err(CallError::SelfCall(got.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_racing_a_crash_never_hangs() {
    for _ in 0..500 {
        let server = doubler();
        let killer = tokio::spawn(async move { exit(server, ExitReason::Kill) });
        match request_timeout::<u64, (u64, Option<Pid>)>(server, 2, Duration::from_secs(3600)).await
        {
            Ok((4, None)) => {}
            Err(CallError::NoProc(pid)) => assert_eq!(pid, server),
            Err(CallError::Exited { pid, reason }) => {
                assert_eq!((pid, reason), (server, ExitReason::Killed));
            }
            other => panic!("unexpected {other:?}"),
        }
        killer.await.unwrap();
    }
}

#[tokio::test]
async fn a_late_reply_after_the_caller_gave_up_is_discarded() {
    let server = ferrotp::spawn_handle(|mut ctx| async move {
        let req: Request<u8, u8> = ctx.receive().await;
        ctx.receive::<()>().await;
        req.reply(1)
    });
    let reply = request_timeout::<u8, u8>(server.pid(), 0, Duration::ZERO).await;
    assert_eq!(
        reply,
        Err(CallError::Timeout {
            pid: server.pid(),
            timeout: Duration::ZERO
        })
    );
    send(server.pid(), ());
    assert_eq!(
        server.join().await,
        Ok(false),
        "the reply found nobody waiting"
    );
}

/// Answers requests for `u64`s with the same number; keeps requests for `u32`s unanswered (a
/// dropped request would fail its caller at once, not time it out).
async fn answers_u64_only(mut ctx: ferrotp::Context) {
    let mut ignored = Vec::new();
    loop {
        let request = ctx
            .receive_matching(|m| m.is::<Request<u64, u64>>() || m.is::<Request<u32, u32>>())
            .await;
        match request.downcast::<Request<u64, u64>>() {
            Ok(request) => {
                let n = request.body;
                request.reply(n);
            }
            Err(other) => ignored.push(other),
        }
    }
}

/// Calls time out up to a millisecond late: calls in quick succession share a timer update.
fn assert_timed_out_after(start: Instant, millis: u64) {
    let waited = start.elapsed();
    let timeout = Duration::from_millis(millis);
    assert!(
        (timeout..=timeout + Duration::from_millis(1)).contains(&waited),
        "timed out after {waited:?}, not {timeout:?}"
    );
}

/// `call`, failing the test (rather than hanging it) if it has not ended within ten seconds.
async fn bounded<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call neither answered nor timed out")
}

#[tokio::test(start_paused = true)]
async fn a_call_times_out_on_time_right_after_answered_calls_from_the_same_task() {
    let server = spawn(answers_u64_only);
    for n in 0..3 {
        assert_eq!(request::<u64, u64>(server, n).await, Ok(n));
    }
    // A short timeout after longer ones: the thread's kept timer must come earlier, not stay.
    let start = Instant::now();
    let reply = bounded(request_timeout::<u32, u32>(
        server,
        1,
        Duration::from_millis(50),
    ))
    .await;
    assert_eq!(
        reply,
        Err(CallError::Timeout {
            pid: server,
            timeout: Duration::from_millis(50)
        })
    );
    assert_timed_out_after(start, 50);
    // And a longer one after it: the timer that fired is armed again.
    let start = Instant::now();
    let reply = bounded(request_timeout::<u32, u32>(
        server,
        2,
        Duration::from_millis(200),
    ))
    .await;
    assert!(matches!(reply, Err(CallError::Timeout { .. })));
    assert_timed_out_after(start, 200);
    assert_eq!(request::<u64, u64>(server, 7).await, Ok(7));
    exit(server, ExitReason::Kill);
}
