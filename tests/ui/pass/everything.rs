//! Every handler shape the macro accepts compiles together.

use ferrotp::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Ping(u32);
#[derive(Serialize, Deserialize)]
struct Pong(u32);
struct Tick;
struct NotSerde;

struct Everything {
    parked: Vec<ReplyTo<u32>>,
}

#[gen_server]
impl Everything {
    async fn init(_arg: u8, ctx: &mut Context) -> Result<Self, std::io::Error> {
        ctx.trap_exit(true);
        Ok(Everything { parked: Vec::new() })
    }

    async fn terminate(&mut self, _reason: &ExitReason, _ctx: &mut Context) {}

    #[install("none")]
    async fn none(&mut self) {}

    #[install("body")]
    async fn body(&mut self, n: u32) -> u32 {
        n
    }

    #[install("from")]
    async fn from(&mut self, from: Pid, body: Ping) -> Pong {
        let _ = from;
        Pong(body.0)
    }

    #[install("io", local)]
    async fn io(&mut self) -> std::io::Result<u8> {
        Ok(1)
    }

    #[install("defer")]
    async fn defer(&mut self, ctx: &mut Context, caller: &mut Caller<u32>) -> Reply<u32> {
        let _ = ctx.pid();
        self.parked.push(caller.defer());
        Reply::NoReply
    }

    #[install("local", local)]
    async fn local(&mut self, value: NotSerde) {
        let _ = value;
    }

    #[info]
    async fn tick(&mut self, _tick: Tick) {}

    #[info]
    async fn exit(&mut self, _exit: Exit) -> Reply<()> {
        Reply::Stop(ExitReason::Normal)
    }

    #[fallback]
    async fn other(&mut self, name: String, body: serde_json::Value) -> serde_json::Value {
        serde_json::json!([name, body])
    }
}

/// The shorter forms the guide's signature table lists: no `init` argument, `terminate` without
/// the reason, `&self` handlers, and `ctx` on an info handler and on a fallback with its caller.
struct Minimal;

#[gen_server]
impl Minimal {
    async fn init() -> Self {
        Minimal
    }

    async fn terminate(&mut self) {}

    #[install("read")]
    async fn read(&self) -> u8 {
        0
    }

    #[install("read_result")]
    async fn read_result(&self, caller: &mut Caller<Result<u8, String>>) -> Result<u8, String> {
        let _ = caller.pid();
        Ok(0)
    }

    #[info]
    async fn tick(&self, ctx: &mut Context, _tick: Tick) {
        let _ = ctx.pid();
    }

    #[fallback]
    async fn other(
        &mut self,
        ctx: &mut Context,
        caller: &mut Caller<serde_json::Value>,
        name: String,
        body: serde_json::Value,
    ) -> Reply<serde_json::Value> {
        let _ = (ctx.pid(), caller.pid());
        Reply::Reply(serde_json::json!([name, body]))
    }
}

#[allow(dead_code)]
async fn uses() {
    let minimal = Minimal::start(()).await.unwrap();
    let _: Result<u8, CallError> = minimal.read().await;
    let _: Result<u8, CallError<String>> = minimal.read_result().await;
}

fn main() {}
