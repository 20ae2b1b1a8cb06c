use ferrotp::prelude::*;

struct Greeter {
    name: String,
}

#[gen_server]
impl Greeter {
    async fn init(name: &str) -> Self {
        Greeter {
            name: name.to_string(),
        }
    }

    #[install("greet")]
    async fn greet(&mut self) -> String {
        format!("hello, {}", self.name)
    }
}

#[tokio::main]
async fn main() {
    let server = Greeter::start("world").await.unwrap();
    let _: Result<String, CallError> = server.greet().await;
}
