use ferrotp::prelude::*;

struct Echo;

// One error at the type; `start` and the handlers are still there for the code using them.
#[gen_server]
impl Echo {
    #[install("echo")]
    async fn echo(&mut self, text: String) -> String {
        text
    }
}

#[tokio::main]
async fn main() {
    let server: ServerRef<Echo> = Echo::start(()).await.unwrap();
    let _: Result<String, CallError> = server.echo("hi".to_string()).await;
}
