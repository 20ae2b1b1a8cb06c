use ferrotp::prelude::*;

struct NotSerde;

struct Store;

#[gen_server]
impl Store {
    async fn init(_: ()) -> Self {
        Store
    }

    // Dynamic calls decode the body with serde; mark the handler `local` to skip that.
    #[install("put")]
    async fn put(&mut self, value: NotSerde) {
        let _ = value;
    }
}

#[tokio::main]
async fn main() {
    let server = Store::start(()).await.unwrap();
    let _: Result<(), CallError> = server.put(NotSerde).await;
}
