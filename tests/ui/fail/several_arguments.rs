use ferrotp::prelude::*;

struct Store;

// Several body arguments: the error is at the extra ones and suggests one tuple, after the
// caller's pid when the handler takes it.
#[gen_server]
impl Store {
    async fn init(_: ()) -> Self {
        Store
    }

    #[install("put")]
    async fn put(&mut self, key: u32, value: String) {
        let _ = (key, value);
    }

    #[install("put_from")]
    async fn put_from(&mut self, from: Pid, key: u32, value: Vec<u8>) {
        let _ = (from, key, value);
    }

    #[install("get")]
    async fn get(&mut self, key: u32) -> Option<String> {
        let _ = key;
        None
    }
}

#[tokio::main]
async fn main() {
    let server = Store::start(()).await.unwrap();
    let _: Result<Option<String>, CallError> = server.get(1).await;
    let _: Result<(), CallError> = server.put(1, "one".to_string()).await;
}
