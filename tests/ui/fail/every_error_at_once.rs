use ferrotp::prelude::*;

struct Messy;

// Three bad handlers, three errors in one compile, and none from the code that calls them.
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
    async fn borrowed(&mut self, _text: &str) {}
}

#[tokio::main]
async fn main() {
    let server = Messy::start(()).await.unwrap();
    let _: Result<(), CallError> = server.not_async().await;
    let _: Result<(), CallError> = server.bad_name().await;
    let _: Result<(), CallError> = server.borrowed("hi").await;
    server.cast_bad_name();
}
