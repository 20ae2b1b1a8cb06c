use ferrotp::prelude::*;

struct Echo;

// One error at the borrowed type; the code calling the handler still type-checks.
#[gen_server]
impl Echo {
    async fn init(_: ()) -> Self {
        Echo
    }

    #[install("echo")]
    async fn echo(&mut self, text: &str) -> usize {
        text.len()
    }
}

#[tokio::main]
async fn main() {
    let server = Echo::start(()).await.unwrap();
    let _: Result<usize, CallError> = server.echo("hi").await;
}
