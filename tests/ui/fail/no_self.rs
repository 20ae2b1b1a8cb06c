use ferrotp::prelude::*;

struct Echo;

#[gen_server]
impl Echo {
    async fn init(_: ()) -> Self {
        Echo
    }

    #[install("echo")]
    async fn echo(text: String) -> String {
        text
    }
}

#[tokio::main]
async fn main() {
    let server = Echo::start(()).await.unwrap();
    let _: Result<String, CallError> = server.echo("hi".to_string()).await;
}
