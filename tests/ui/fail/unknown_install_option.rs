use ferrotp::prelude::*;

struct Echo;

// A misspelt option: one error at the option, and the rest of the program (which starts the
// server and calls it) still type-checks.
#[gen_server]
impl Echo {
    async fn init(_: ()) -> Self {
        Echo
    }

    #[install("echo", locl)]
    async fn echo(&mut self, text: String) -> String {
        text
    }

    #[install("len")]
    async fn len(&mut self, text: String) -> usize {
        text.len()
    }
}

#[tokio::main]
async fn main() {
    let server: ServerRef<Echo> = Echo::start(()).await.unwrap();
    let _: Result<usize, CallError> = server.len("hi".to_string()).await;
    let _: Result<String, CallError> = server.echo("hi".to_string()).await;
}
