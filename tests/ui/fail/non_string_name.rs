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

fn main() {}
