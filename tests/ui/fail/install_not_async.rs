use ferrotp::prelude::*;

struct Counter {
    n: u64,
}

// One error at `fn`; the code starting, calling and casting to the server still type-checks.
#[gen_server]
impl Counter {
    async fn init(_: ()) -> Self {
        Counter { n: 0 }
    }

    #[install("bump")]
    fn bump(&mut self) -> u64 {
        self.n += 1;
        self.n
    }

    #[install("get")]
    async fn get(&mut self) -> u64 {
        self.n
    }
}

#[tokio::main]
async fn main() {
    let server: ServerRef<Counter> = Counter::start(()).await.unwrap();
    let _: Result<u64, CallError> = server.get().await;
    let _: Result<u64, CallError> = server.bump().await;
    server.cast_bump();
}
