use ferrotp::prelude::*;

struct Echo;

impl Echo {
    #[install("echo")]
    async fn echo(&mut self, text: String) -> String {
        text
    }
}

fn main() {}
