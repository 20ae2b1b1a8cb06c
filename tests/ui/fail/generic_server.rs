use ferrotp::prelude::*;

struct Cache<T> {
    items: Vec<T>,
}

// One error at the generics; the code starting the server and calling its handlers still
// type-checks.
#[gen_server]
impl<T: Send + 'static> Cache<T> {
    async fn init(_: ()) -> Self {
        Cache { items: Vec::new() }
    }

    #[install("len")]
    async fn len(&mut self) -> usize {
        self.items.len()
    }

    #[install("push")]
    async fn push(&mut self, item: T) {
        self.items.push(item);
    }
}

#[tokio::main]
async fn main() {
    let server: ServerRef<Cache<u32>> = Cache::start(()).await.unwrap();
    let _: Result<usize, CallError> = server.len().await;
    let _: Result<(), CallError> = server.push(7).await;
}
