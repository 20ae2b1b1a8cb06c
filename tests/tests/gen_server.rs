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

/// Routes every name it does not install to a fallback (synapse's handler, Moebius's router).
struct Router {
    routed: Vec<String>,
}

#[gen_server]
impl Router {
    async fn init(_: ()) -> Self {
        Router { routed: Vec::new() }
    }

    #[install("routed")]
    async fn routed(&mut self) -> Vec<String> {
        self.routed.clone()
    }

    #[fallback]
    async fn route(
        &mut self,
        name: String,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        if name.starts_with("forbidden") {
            return Err(format!("{name} is not allowed"));
        }
        self.routed.push(name.clone());
        Ok(serde_json::json!({ "handled_by": "fallback", "name": name, "body": body }))
    }
}

#[tokio::test]
async fn a_fallback_takes_the_names_nothing_installs() {
    let router = Router::start(()).await.unwrap();
    let reply: serde_json::Value = router.call("anything", 5).await.unwrap();
    assert_eq!(
        reply,
        serde_json::json!({ "handled_by": "fallback", "name": "anything", "body": 5 })
    );
    assert_eq!(
        router.call::<serde_json::Value>("forbidden-op", ()).await,
        Err(CallError::Handler(serde_json::json!(
            "forbidden-op is not allowed"
        )))
    );
    router.cast("by-cast", "x").unwrap();
    assert_eq!(
        router.routed().await,
        Ok(vec!["anything".to_string(), "by-cast".to_string()])
    );
    let installed: Vec<String> = router.call("routed", ()).await.unwrap();
    assert_eq!(
        installed.len(),
        2,
        "installed names still win over the fallback"
    );
}

#[tokio::test]
async fn handlers_are_listed_for_tools() {
    assert_eq!(<Echo as GenServer>::HANDLERS, ["echo", "ping", "seen"]);
    assert_eq!(<Router as GenServer>::HANDLERS, ["routed"]);
}

#[tokio::test]
async fn a_typed_reference_is_a_copyable_pid() {
    let echo = Echo::start(0).await.unwrap();
    let copy = echo;
    assert_eq!(copy.pid(), echo.pid());
    assert!(format!("{echo:?}").contains("Echo"));
    echo.stop(ExitReason::Normal).await.unwrap();
    assert_eq!(
        copy.echo("late".into()).await,
        Err(CallError::Exited {
            pid: echo.pid(),
            reason: ExitReason::Normal
        })
    );
}

/// Reports who called it, as a handler sees the caller.
struct Whoami;

#[gen_server]
impl Whoami {
    async fn init(_: ()) -> Self {
        Whoami
    }

    #[install("who")]
    async fn who(&mut self, caller: &mut Caller<Option<Pid>>) -> Option<Pid> {
        caller.pid()
    }

    #[install("note")]
    async fn note(&mut self, report_to: Pid, caller: &mut Caller<()>) {
        send(report_to, caller.pid());
    }
}

#[tokio::test]
async fn a_handler_sees_the_calling_process_or_none_from_outside_processes() {
    let server = Whoami::start(()).await.unwrap();
    assert_eq!(server.who().await, Ok(None));
    let dynamic: Option<Pid> = server.call("who", ()).await.unwrap();
    assert_eq!(dynamic, None);

    let client = ferrotp::spawn_handle(move |_| async move { server.who().await });
    let client_pid = client.pid();
    assert_eq!(client.join().await, Ok(Ok(Some(client_pid))));
}

#[tokio::test]
async fn a_cast_handler_sees_the_casting_process() {
    let server = Whoami::start(()).await.unwrap();
    let (caster, seen) = ferrotp_tests::in_process(move |mut ctx| async move {
        server.cast_note(ctx.pid());
        (ctx.pid(), ctx.receive::<Option<Pid>>().await)
    })
    .await;
    assert_eq!(seen, Some(caster));
}

#[tokio::test]
async fn a_call_to_a_server_that_exited_since_the_last_call_fails_with_its_reason() {
    let server = Echo::start(0).await.unwrap();
    assert_eq!(server.echo("a".into()).await, Ok("a".into()));
    server.stop(ExitReason::Shutdown).await.unwrap();
    let pid = server.pid();
    let gone = Err(CallError::Exited {
        pid,
        reason: ExitReason::Shutdown,
    });
    assert_eq!(server.echo("b".into()).await, gone);
    server.cast_echo("c".into()); // dropped: the server has gone
    assert_eq!(
        server.seen().await,
        Err(CallError::Exited {
            pid,
            reason: ExitReason::Shutdown
        })
    );

    let other = Echo::start(0).await.unwrap();
    assert_eq!(other.echo("d".into()).await, Ok("d".into()));
    assert_eq!(server.echo("e".into()).await, gone);
}
