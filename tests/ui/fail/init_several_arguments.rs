use ferrotp::prelude::*;

struct Greeter {
    greeting: String,
}

#[gen_server]
impl Greeter {
    async fn init(greeting: String, times: u32) -> Self {
        Greeter {
            greeting: greeting.repeat(times as usize),
        }
    }

    #[install("greet")]
    async fn greet(&mut self) -> String {
        self.greeting.clone()
    }
}

#[tokio::main]
async fn main() {
    let server = Greeter::start(("hello".to_string(), 2)).await.unwrap();
    let _: Result<String, CallError> = server.greet().await;
}
