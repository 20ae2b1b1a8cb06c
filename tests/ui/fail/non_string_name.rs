use ferrotp::prelude::*;

struct Echo;

#[gen_server]
impl Echo {
    async fn init(_: ()) -> Self {
        Echo
    }

    #[install(echo)]
    async fn echo(&mut self, text: String) -> String {
        text
    }

    #[install]
    async fn ping(&mut self) {}
}

#[tokio::main]
async fn main() {
    let server = Echo::start(()).await.unwrap();
    let _: Result<String, CallError> = server.echo("hi".to_string()).await;
    let _: Result<(), CallError> = server.ping().await;
}
