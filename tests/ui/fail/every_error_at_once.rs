use ferrotp::prelude::*;

struct Messy;

// Three bad handlers, three errors in one compile.
#[gen_server]
impl Messy {
    async fn init(_: ()) -> Self {
        Messy
    }

    #[install("a")]
    fn not_async(&mut self) {}

    #[install(b)]
    async fn bad_name(&mut self) {}

    #[install("c")]
    async fn borrowed(&mut self, text: &str) {}
}

fn main() {}
