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

fn main() {}
