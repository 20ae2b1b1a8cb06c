use ferrotp::prelude::*;

struct Job;

#[gen_server]
impl Job {
    async fn init(_: ()) -> Self {
        Job
    }

    async fn terminate(&mut self, reason: ExitReason) {
        let _ = reason;
    }
}

#[tokio::main]
async fn main() {
    let server = Job::start(()).await.unwrap();
    server.stop(ExitReason::Normal).await.unwrap();
}
