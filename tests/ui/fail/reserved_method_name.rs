use ferrotp::prelude::*;

struct Service;

#[gen_server]
impl Service {
    async fn init(_: ()) -> Self {
        Service
    }

    #[install("stop")]
    async fn stop(&mut self) -> Reply<()> {
        Reply::Stop(ExitReason::Normal)
    }
}

#[tokio::main]
async fn main() {
    let _: ServerRef<Service> = Service::start(()).await.unwrap();
}
