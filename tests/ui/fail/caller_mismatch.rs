use ferrotp::prelude::*;

struct Parking {
    parked: Vec<ReplyTo<String>>,
}

#[gen_server]
impl Parking {
    async fn init(_: ()) -> Self {
        Parking { parked: Vec::new() }
    }

    #[install("park")]
    async fn park(&mut self, caller: &mut Caller<String>) -> Reply<u32> {
        self.parked.push(caller.defer());
        Reply::NoReply
    }
}

#[tokio::main]
async fn main() {
    let server = Parking::start(()).await.unwrap();
    let _: Result<u32, CallError> = server.park().await;
}
