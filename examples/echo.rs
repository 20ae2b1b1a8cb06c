//! triotp's echo server and its client, ported: a gen_server registered under a name, and a
//! client process that finds it by name, calls it twice and then stops it.
//!
//! ```text
//! cargo run --example echo
//! ```

use ferrotp::prelude::*;

/// The echo server: it has no state to speak of.
struct EchoServer;

#[gen_server]
impl EchoServer {
    async fn init(_: ()) -> Self {
        EchoServer
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        println!("echo server exited with reason {reason}");
    }

    /// triotp's `handle_call(('echo', message), ...)`.
    #[install("echo")]
    async fn echo(&mut self, message: String) -> String {
        message
    }

    /// triotp's `handle_cast('stop', ...)`: the client casts it.
    #[install("stop")]
    async fn halt(&mut self) -> Reply<()> {
        Reply::Stop(ExitReason::Normal)
    }
}

/// The client: finds the server by name, as triotp's `gen_server.call(__name__, ...)` does.
async fn client(_ctx: Context) -> Result<(), Error> {
    let server = ServerRef::<EchoServer>::lookup("echo_server")?;

    let response = server.echo("hello".into()).await?;
    assert_eq!(response, "hello");
    println!("client got {response:?}");

    let response = server.echo("world".into()).await?;
    assert_eq!(response, "world");
    println!("client got {response:?}");

    server.cast_halt();
    // Wait for the server to go, as triotp's client returns after its stop cast is handled.
    wait(server.pid()).await;
    Ok(())
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let server = EchoServer::start(()).name("echo_server").await?;
    let client = ferrotp::spawn_handle(client);
    match client.join().await {
        Ok(result) => result?,
        Err(reason) => return Err(format!("client crashed: {reason}").into()),
    }
    println!(
        "client done; the server is alive: {}",
        ferrotp::is_alive(server.pid())
    );
    Ok(())
}
