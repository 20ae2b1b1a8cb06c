//! The Getting started chapter's program: a calculator server with a bug, a client that trips it,
//! and a supervisor that restarts the calculator so the client carries on. The node ends, and the
//! program exits 0, once the client has finished.
//!
//! ```text
//! cargo run --example calculator
//! RUST_LOG=ferrotp=debug cargo run --example calculator   # every process start, link and exit
//! ```

use ferrotp::prelude::*;
use ferrotp::supervisor::AutoShutdown;

/// A calculator that keeps a running total: the state a crash loses.
struct Calculator {
    total: i64,
}

#[gen_server]
impl Calculator {
    async fn init(start: i64) -> Self {
        Calculator { total: start }
    }

    #[install("add")]
    async fn add(&mut self, n: i64) -> i64 {
        self.total += n;
        self.total
    }

    #[install("divide")]
    async fn divide(&mut self, n: i64) -> i64 {
        self.total /= n; // a bug: panics when n is 0
        self.total
    }
}

/// The calculator's one client: it adds, divides by zero, and carries on.
async fn client(_ctx: Context) -> Result<(), CallError> {
    // By name: whichever process is the calculator right now, across restarts.
    let calculator = ServerRef::<Calculator>::named("calculator");
    println!("client: 10 + 5 = {}", calculator.add(5).await?);
    match calculator.divide(0).await {
        Ok(total) => println!("client: 15 / 0 = {total}"),
        Err(CallError::Exited { reason, .. }) => println!("client: 15 / 0 crashed it: {reason}"),
        Err(other) => return Err(other),
    }
    let total = calculator.add(1).await?;
    println!("client: 10 + 1 = {total}, a fresh calculator");
    Ok(())
}

/// The service: the calculator, restarted whenever it crashes, and its client. When the client
/// has finished, the whole tree stops.
fn service(_: ()) -> Supervisor {
    Supervisor::one_for_one()
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(Child::server::<Calculator>("calculator", 10).name("calculator"))
        .child(Child::process("client", client).transient().significant())
}

fn main() -> NodeExit {
    node::run([Application::new("calculator", service, ())])
}
