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

    #[install("deferred_boom")]
    async fn deferred_boom(&mut self, caller: &mut Caller<u32>) -> Reply<u32> {
        let _token = caller.defer();
        panic!("boom after defer");
    }

    #[install("task_err", task)]
    fn task_err(&self, n: i32) -> impl Future<Output = Result<i32, String>> + Send + 'static {
        async move {
            if n < 0 {
                Err(format!("{n} < 0"))
            } else {
                Ok(n)
            }
        }
    }

    #[install("fatal_task_err", task)]
    fn fatal_task_err(&self, n: i32) -> impl Future<Output = Result<i32, String>> + Send + 'static {
        async move {
            if n < 0 {
                Err(format!("{n} < 0"))
            } else {
                Ok(n)
            }
        }
    }

    #[install("method_boom", task)]
    fn method_boom(&self) -> impl Future<Output = u32> + Send + 'static {
        if self.count < 1_000 {
            panic!("in the method");
        }
        async { 1 }
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

#[tokio::test]
async fn continue_after_a_panic_that_dropped_a_deferred_token_leaves_the_server_serving() {
    let server = Guarded::start(()).await.unwrap();
    assert_eq!(
        server.deferred_boom().await,
        Err(CallError::NoReply(server.pid()))
    );
    // Not left half-stopped: a later failure is answered at once too.
    assert_eq!(server.boom().await, Err(CallError::NoReply(server.pid())));
    assert_eq!(server.bump().await, Ok(101));
}

#[tokio::test]
async fn a_task_s_error_waits_for_the_hook_continue_replies_it() {
    let server = Guarded::start(()).await.unwrap();
    assert_eq!(
        server.task_err(-1).await,
        Err(CallError::Handler("-1 < 0".to_owned()))
    );
    assert_eq!(server.task_err(3).await, Ok(3));
    assert_eq!(
        server.seen().await.unwrap(),
        ["handler `task_err` failed: \"-1 < 0\""]
    );
}

#[tokio::test]
async fn a_task_s_error_waits_for_the_hook_crash_stops_the_server_first() {
    let server = Guarded::start(()).await.unwrap();
    let reason = ExitReason::error("handler `fatal_task_err` failed: \"-1 < 0\"");
    assert_eq!(
        server.fatal_task_err(-1).await,
        Err(CallError::Exited {
            pid: server.pid(),
            reason: reason.clone()
        })
    );
    assert_eq!(wait(server.pid()).await, reason);
}

#[tokio::test]
async fn a_panic_in_a_task_handlers_method_goes_to_the_hook() {
    let server = Guarded::start(()).await.unwrap();
    assert_eq!(
        server.method_boom().await,
        Err(CallError::NoReply(server.pid()))
    );
    assert_eq!(server.bump().await, Ok(1));
    assert_eq!(
        server.seen().await.unwrap(),
        ["handler `method_boom` panicked: in the method"]
    );
}
