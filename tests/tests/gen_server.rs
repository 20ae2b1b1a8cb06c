//! #[gen_server]: typed and dynamic calls, casts, info, replies, lifecycle.

use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::{LookupError, StartError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping(u32);
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pong(u32);

struct Echo {
    seen: u64,
}

#[gen_server]
impl Echo {
    async fn init(seen: u64) -> Result<Self, String> {
        Ok(Echo { seen })
    }

    #[install("echo")]
    async fn echo(&mut self, text: String) -> String {
        self.seen += 1;
        text
    }

    #[install("ping")]
    async fn ping(&mut self, from: Pid, body: Ping) -> Pong {
        let _ = from;
        Pong(body.0 + 1)
    }

    #[install("seen")]
    async fn seen(&mut self) -> u64 {
        self.seen
    }
}

#[tokio::test]
async fn typed_calls_reach_their_handlers() {
    let echo = Echo::start(0).await.unwrap();
    assert_eq!(echo.echo("hi".into()).await, Ok("hi".to_string()));
    assert_eq!(echo.ping(Ping(1)).await, Ok(Pong(2)));
    echo.cast_echo("cast".into());
    assert_eq!(echo.seen().await, Ok(2));
    assert_eq!(echo.seen_timeout(Duration::from_secs(1)).await, Ok(2));
}

#[tokio::test]
async fn dynamic_calls_reach_their_handlers_by_name() {
    let echo = Echo::start(0).await.unwrap();
    let reply: String = ferrotp::call(echo.pid(), "echo", "dyn").await.unwrap();
    assert_eq!(reply, "dyn");
    let pong: Pong = echo.call("ping", Ping(41)).await.unwrap();
    assert_eq!(pong, Pong(42));
    let unknown = echo.call::<String>("ehco", "x").await;
    assert_eq!(
        unknown,
        Err(CallError::UnknownHandler {
            name: "ehco".into(),
            available: vec!["echo".into(), "ping".into(), "seen".into()]
        })
    );
    let bad = echo.call::<Pong>("ping", "not a ping").await;
    assert!(
        matches!(bad, Err(CallError::BadRequest { ref handler, .. }) if handler == "ping"),
        "{bad:?}"
    );
    assert_eq!(echo.seen().await, Ok(1), "the server keeps serving");
}

#[tokio::test]
async fn named_start_and_typed_lookup() {
    let echo = Echo::start(7).name("gs-echo").await.unwrap();
    let found = ServerRef::<Echo>::lookup("gs-echo").unwrap();
    assert_eq!(found, echo);
    assert_eq!(found.seen().await, Ok(7));
    let again = Echo::start(0).name("gs-echo").await;
    assert!(matches!(again, Err(StartError::AlreadyStarted { pid, .. }) if pid == echo.pid()));
    let not_server = spawn(|mut ctx| async move { ctx.receive::<()>().await });
    assert!(matches!(
        ServerRef::<Echo>::from_pid(not_server),
        Err(LookupError::WrongType { actual: None, .. })
    ));
    send(not_server, ());
}
