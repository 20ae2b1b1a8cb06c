use ferrotp::prelude::*;

struct Echo;

#[gen_server]
impl Echo {
    #[install("echo")]
    async fn echo(&mut self, text: String) -> String {
        text
    }
}

fn main() {}
