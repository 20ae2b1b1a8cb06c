use ferrotp::prelude::*;

struct Echo;

#[gen_server]
impl Echo {
    async fn init(_: ()) -> Self {
        Echo
    }

    #[install("echo")]
    fn echo(&mut self, text: String) -> String {
        text
    }
}

fn main() {}
