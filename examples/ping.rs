//! libprocess's ping, ported: a process with a handler installed as "ping", and a client that
//! pings it, first through the typed client, then by name as a remote libprocess peer would.
//!
//! ```text
//! cargo run --example ping
//! ```

use ferrotp::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Ping {
    seq: u32,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Pong {
    seq: u32,
}

/// libprocess's `PingProcess`: remembers who pinged it.
struct PingProcess {
    pinged_by: Vec<Pid>,
}

#[gen_server]
impl PingProcess {
    /// libprocess's `initialize`.
    async fn init(_: ()) -> Self {
        PingProcess {
            pinged_by: Vec::new(),
        }
    }

    /// `@install('ping') def ping(self, from_pid, body)`.
    #[install("ping")]
    async fn ping(&mut self, from: Pid, body: Ping) -> Pong {
        self.pinged_by.push(from);
        Pong { seq: body.seq }
    }

    #[install("pinged")]
    async fn pinged(&mut self) -> usize {
        self.pinged_by.len()
    }
}

async fn client(
    _ctx: Context,
    server: ServerRef<PingProcess>,
) -> Result<(), CallError<serde_json::Value>> {
    // Typed: the compiler checks the handler's name and types.
    let pong = server
        .ping(Ping { seq: 1 })
        .await
        .map_err(CallError::widen)?;
    println!("typed ping 1 -> {pong:?}");

    // By name, with a serde body: what a script or a remote node does.
    let pong: Pong = ferrotp::call(server.pid(), "ping", Ping { seq: 2 }).await?;
    println!("dynamic ping 2 -> {pong:?}");

    // A name the process does not install is an error that lists the ones it does.
    if let Err(error) = ferrotp::call::<Pong>(server.pid(), "pong", ()).await {
        println!("dynamic \"pong\" -> {error}");
    }

    let count = server.pinged().await.map_err(CallError::widen)?;
    println!("the ping process was pinged {count} times");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = PingProcess::start(()).await?;
    let client = ferrotp::spawn_handle(move |ctx| client(ctx, server));
    let outcome = client.join().await;
    server.stop(ExitReason::Normal).await?;
    match outcome {
        Ok(result) => Ok(result?),
        Err(reason) => Err(format!("client crashed: {reason}").into()),
    }
}
