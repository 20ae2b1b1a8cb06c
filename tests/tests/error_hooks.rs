//! `#[on_error]`: a hook that decides whether a failed handler crashes its server or not.

use std::{future::Future, time::Duration};

use ferrotp::prelude::*;

/// Crashes on failures of handlers whose name starts with "fatal", goes on after the others,
/// and remembers every failure it saw.
struct Guarded {
    count: u32,
    seen: Vec<Failure>,
}

#[gen_server]
impl Guarded {
    async fn init(_: ()) -> Self {
        Guarded {
            count: 0,
            seen: Vec::new(),
        }
    }

    #[install("bump")]
    async fn bump(&mut self) -> u32 {
        self.count += 1;
        self.count
    }

    #[install("check")]
    async fn check(&mut self, n: i32) -> Result<i32, String> {
        if n < 0 {
            Err(format!("{n} < 0"))
        } else {
            Ok(n)
        }
    }

    #[install("fatal_check")]
    async fn fatal_check(&mut self, n: i32) -> Result<i32, String> {
        if n < 0 {
            Err(format!("{n} < 0"))
        } else {
            Ok(n)
        }
    }

    #[install("boom")]
    async fn boom(&mut self) -> u32 {
        self.count += 100;
        panic!("boom");
    }

    #[install("fatal_boom")]
    async fn fatal_boom(&mut self) -> u32 {
        panic!("fatal boom");
    }

    #[install("task_boom", task)]
    fn task_boom(&self) -> impl Future<Output = u32> + Send + 'static {
        async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            panic!("task boom")
        }
    }

    #[install("seen")]
    async fn seen(&self) -> Vec<String> {
        self.seen.iter().map(ToString::to_string).collect()
    }

    #[on_error]
    async fn on_error(&mut self, failure: Failure) -> OnError {
        let fatal = failure.handler.starts_with("fatal");
        self.seen.push(failure);
        if fatal {
            OnError::Crash
        } else {
            OnError::Continue
        }
    }
}

#[tokio::test]
async fn continue_after_an_error_replies_it_and_goes_on() {
    let server = Guarded::start(()).await.unwrap();
    assert_eq!(
        server.check(-1).await,
        Err(CallError::Handler("-1 < 0".to_owned()))
    );
    assert_eq!(server.bump().await, Ok(1));
    assert_eq!(
        server.seen().await.unwrap(),
        ["handler `check` failed: \"-1 < 0\""]
    );
}

#[tokio::test]
async fn continue_after_a_panic_fails_the_call_and_keeps_the_state_as_left() {
    let server = Guarded::start(()).await.unwrap();
    assert_eq!(server.boom().await, Err(CallError::NoReply(server.pid())));
    // The state as the handler left it: its change before the panic stays.
    assert_eq!(server.bump().await, Ok(101));
    assert_eq!(
        server.seen().await.unwrap(),
        ["handler `boom` panicked: boom"]
    );
}

#[tokio::test]
async fn crash_after_an_error_stops_the_server_with_an_error_reason() {
    let server = Guarded::start(()).await.unwrap();
    let reason = ExitReason::error("handler `fatal_check` failed: \"-1 < 0\"");
    assert_eq!(
        server.fatal_check(-1).await,
        Err(CallError::Exited {
            pid: server.pid(),
            reason: reason.clone()
        })
    );
    assert_eq!(wait(server.pid()).await, reason);
}

#[tokio::test]
async fn crash_after_a_panic_stops_the_server_with_the_panic() {
    let server = Guarded::start(()).await.unwrap();
    let reason = ExitReason::Panic("fatal boom".into());
    assert_eq!(
        server.fatal_boom().await,
        Err(CallError::Exited {
            pid: server.pid(),
            reason: reason.clone()
        })
    );
    assert_eq!(wait(server.pid()).await, reason);
}

#[tokio::test]
async fn a_task_s_panic_goes_to_the_hook_too() {
    let server = Guarded::start(()).await.unwrap();
    assert_eq!(
        server.task_boom().await,
        Err(CallError::NoReply(server.pid()))
    );
    assert_eq!(server.bump().await, Ok(1));
    assert_eq!(
        server.seen().await.unwrap(),
        ["handler `task_boom` panicked: task boom"]
    );
}

#[tokio::test]
async fn a_cast_s_failure_goes_to_the_hook() {
    let server = Guarded::start(()).await.unwrap();
    server.cast_check(-5);
    server.cast_boom();
    assert_eq!(
        server.seen().await.unwrap(),
        [
            "handler `check` failed: \"-5 < 0\"",
            "handler `boom` panicked: boom"
        ]
    );
}

/// Without a hook: an error goes on, a panic crashes.
struct Plain;

#[gen_server]
impl Plain {
    async fn init(_: ()) -> Self {
        Plain
    }

    #[install("task_boom", task)]
    fn task_boom(&self) -> impl Future<Output = u32> + Send + 'static {
        async { panic!("task boom") }
    }
}

#[tokio::test]
async fn without_a_hook_a_task_s_panic_stops_the_server() {
    let server = Plain::start(()).await.unwrap();
    let reason = ExitReason::Panic("task boom".into());
    assert_eq!(
        server.task_boom().await,
        Err(CallError::Exited {
            pid: server.pid(),
            reason: reason.clone()
        })
    );
    assert_eq!(wait(server.pid()).await, reason);
}
