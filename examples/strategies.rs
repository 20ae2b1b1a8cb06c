//! Moebius's tutorial in ferrotp: one server, three clients, each strategy shown with what the
//! clients see; a broadcast to a filtered group of clients; a background ticker.
//!
//! ```text
//! cargo run --example strategies
//! ```

use std::{future::Future, time::Duration};

use ferrotp::prelude::*;

/// Each request takes `ms` milliseconds of work, which runs beside the server's loop.
struct Server {
    ticks: u32,
    /// The clients that want the news.
    subscribed: Vec<Pid>,
}

/// What the ticker broadcasts to the clients that want it.
#[derive(Debug, Clone)]
struct News(u32);

#[gen_server]
impl Server {
    async fn init(_: ()) -> Self {
        Server {
            ticks: 0,
            subscribed: Vec::new(),
        }
    }

    /// Queue: one client's requests run one after another, in order.
    #[install("queued", task)]
    fn queued(&self, ms: u64) -> impl Future<Output = String> + Send + 'static {
        work("queued", ms)
    }

    /// Replace: a client's new request cancels the one it has in flight.
    #[install("latest", task(replace))]
    fn latest(&self, ms: u64) -> impl Future<Output = String> + Send + 'static {
        work("latest", ms)
    }

    /// Ignore: a client's new request is refused while one is in flight.
    #[install("once", task(ignore))]
    fn once(&self, ms: u64) -> impl Future<Output = String> + Send + 'static {
        work("once", ms)
    }

    #[install("subscribe")]
    async fn subscribe(&mut self, client: Pid) {
        self.subscribed.push(client);
    }

    /// Every 100 ms, news for the clients of the group that subscribed: a filtered broadcast,
    /// as Moebius's `broadcast(message, filter)`.
    #[background(every = "100ms")]
    async fn tick(&mut self) {
        self.ticks += 1;
        let sent = ferrotp::pg::broadcast_if("clients", News(self.ticks), |pid| {
            self.subscribed.contains(&pid)
        });
        if self.ticks <= 2 {
            println!("server: tick {} broadcast to {sent} client(s)", self.ticks);
        }
    }
}

async fn work(what: &'static str, ms: u64) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("{what}({ms}) done")
}

/// A client: sends two requests at once (the second 10 ms after the first) and prints what each
/// gets back.
async fn client(name: &'static str, server: ServerRef<Server>, ctx: &mut Context) {
    ferrotp::pg::join("clients", ctx.pid()).expect("a live local process");
    if name != "ignore" {
        server.subscribe(ctx.pid()).await.expect("subscribed");
    }
    let (first, second) = match name {
        "queue" => tokio::join!(server.queued(50), later(server.queued(20))),
        "replace" => tokio::join!(server.latest(50), later(server.latest(20))),
        _ => tokio::join!(server.once(50), later(server.once(20))),
    };
    println!("{name:>8}: first {}, second {}", show(first), show(second));
    // Whatever news reached this client while it waited.
    match ctx
        .receive_timeout::<News>(Duration::from_millis(300))
        .await
    {
        Ok(News(tick)) => println!("{name:>8}: news from tick {tick}"),
        Err(_) => println!("{name:>8}: no news (not subscribed)"),
    }
}

async fn later<T>(call: impl Future<Output = T>) -> T {
    tokio::time::sleep(Duration::from_millis(10)).await;
    call.await
}

fn show(reply: Result<String, CallError>) -> String {
    match reply {
        Ok(text) => text,
        Err(CallError::Cancelled(_)) => "cancelled".to_owned(),
        Err(CallError::Busy(_)) => "refused: busy".to_owned(),
        Err(other) => format!("failed: {other}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::start(()).await?;
    let clients: Vec<_> = ["queue", "replace", "ignore"]
        .into_iter()
        .map(|name| {
            spawn_handle(move |mut ctx| async move { client(name, server, &mut ctx).await })
        })
        .collect();
    for client in clients {
        client
            .join()
            .await
            .map_err(|reason| format!("a client failed: {reason}"))?;
    }
    server.stop(ExitReason::Normal).await?;
    Ok(())
}
