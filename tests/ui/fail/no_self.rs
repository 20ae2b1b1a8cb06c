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

fn main() {}
