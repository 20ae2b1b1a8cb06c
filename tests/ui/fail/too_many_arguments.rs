use ferrotp::prelude::*;

struct Adder;

// The error suggests one tuple; the call written for three arguments still type-checks, so the
// error is the only one until the handler changes.
#[gen_server]
impl Adder {
    async fn init(_: ()) -> Self {
        Adder
    }

    #[install("add")]
    async fn add(&mut self, a: u32, b: u32, c: u32) -> u32 {
        a + b + c
    }
}

#[tokio::main]
async fn main() {
    let server = Adder::start(()).await.unwrap();
    let _: Result<u32, CallError> = server.add(1, 2, 3).await;
}
