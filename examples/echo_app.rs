//! triotp's tutorial, whole: an echo gen_server, a client, a supervisor running both as
//! transient children (at most 3 restarts in 5 seconds), an application, and the node entry point.
//! The node ends, and this program exits 0, once the client has finished and stopped the server.
//!
//! ```text
//! cargo run --example echo_app
//! RUST_LOG=ferrotp=debug cargo run --example echo_app   # watch every process start and stop
//! ```

use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::supervisor::AutoShutdown;

struct EchoServer;

#[gen_server]
impl EchoServer {
    async fn init(_: ()) -> Self {
        EchoServer
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        println!("exited with reason {reason}");
    }

    #[install("echo")]
    async fn echo(&mut self, message: String) -> String {
        message
    }

    #[install("stop")]
    async fn halt(&mut self) -> Reply<()> {
        Reply::Stop(ExitReason::Normal)
    }
}

async fn client(_ctx: Context) -> Result<(), Box<dyn std::error::Error>> {
    let server = ServerRef::<EchoServer>::lookup("echo_server")?;
    for text in ["hello", "world"] {
        let response = server.echo(text.into()).await?;
        assert_eq!(response, text);
        println!("echo: {response}");
    }
    server.cast_halt();
    Ok(())
}

fn echo_supervisor(_: ()) -> Supervisor {
    Supervisor::one_for_one()
        .intensity(3, Duration::from_secs(5))
        .auto_shutdown(AutoShutdown::AllSignificant)
        .child(
            Child::server::<EchoServer>("server", ())
                .name("echo_server")
                .transient()
                .significant(),
        )
        .child(Child::process("client", client).transient().significant())
}

fn main() -> NodeExit {
    node::run([Application::new("echo", echo_supervisor, ())])
}
