use ferrotp::prelude::*;

struct Ticker;

#[gen_server]
impl Ticker {
    async fn init(_: ()) -> Self {
        Ticker
    }

    #[background(every = "1.5s")]
    async fn fractional(&mut self) {}

    #[background(evry = "1s")]
    async fn misspelt(&mut self) {}

    #[background]
    async fn no_period(&mut self) {}

    #[background(every = "1s")]
    async fn with_body(&mut self, n: u32) {
        let _ = n;
    }

    #[background(every = "1s")]
    async fn with_reply(&mut self) -> u32 {
        1
    }
}

fn main() {}
