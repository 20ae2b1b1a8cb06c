use ferrotp::prelude::*;

struct Adder;

#[gen_server]
impl Adder {
    async fn init(_: ()) -> Self {
        Adder
    }

    #[install("add")]
    async fn add(&mut self, a: u32, b: u32, c: u32) -> u32 {
        a + b + c
    }
}

fn main() {}
