use ferrotp::prelude::*;

struct Names {
    first: String,
}

#[gen_server]
impl Names {
    async fn init(first: String) -> Self {
        Names { first }
    }

    #[install("first")]
    async fn first(&mut self) -> &str {
        &self.first
    }
}

#[tokio::main]
async fn main() {
    let server = Names::start("ada".to_string()).await.unwrap();
    let _ = server.first().await;
}
