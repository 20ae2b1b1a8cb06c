use ferrotp::prelude::*;

struct Tick;

struct Clock {
    ticks: u64,
}

#[gen_server]
impl Clock {
    async fn init(_: ()) -> Self {
        Clock { ticks: 0 }
    }

    #[install("tick")]
    #[info]
    async fn tick(&mut self, _tick: Tick) -> u64 {
        self.ticks += 1;
        self.ticks
    }

    #[info]
    async fn other_tick(&mut self, _tick: Tick) {}
}

#[tokio::main]
async fn main() {
    let server = Clock::start(()).await.unwrap();
    let _: Result<u64, CallError> = server.tick(Tick).await;
}
