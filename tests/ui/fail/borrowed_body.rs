use ferrotp::prelude::*;

struct Echo;

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

fn main() {}
