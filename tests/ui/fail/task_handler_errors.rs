use std::future::Future;

use ferrotp::prelude::*;

struct Sorter;

// Each task handler mistake at its own tokens; the code calling the server still type-checks.
#[gen_server]
impl Sorter {
    async fn init(_: ()) -> Self {
        Sorter
    }

    // `async`: a task handler returns its task instead.
    #[install("sort", task)]
    async fn sort(&mut self, data: Vec<u32>) -> Vec<u32> {
        data
    }

    // No `Send + 'static` on the task.
    #[install("sum", task)]
    fn sum(&self, data: Vec<u32>) -> impl Future<Output = u32> {
        async move { data.iter().sum() }
    }

    // A plain return type.
    #[install("len", task)]
    fn len(&self, data: Vec<u32>) -> usize {
        data.len()
    }

    // A caller parameter.
    #[install("first", task)]
    fn first(
        &self,
        _caller: &mut Caller<u32>,
        data: Vec<u32>,
    ) -> impl Future<Output = u32> + Send + 'static {
        async move { data[0] }
    }

    // A misspelt strategy, and a zero limit.
    #[install("max", task(replase))]
    fn max(&self, data: Vec<u32>) -> impl Future<Output = u32> + Send + 'static {
        async move { data.into_iter().max().unwrap_or(0) }
    }

    #[install("min", task(limit = 0))]
    fn min(&self, data: Vec<u32>) -> impl Future<Output = u32> + Send + 'static {
        async move { data.into_iter().min().unwrap_or(0) }
    }

    #[install("stop", task)]
    fn halt(&self) -> impl Future<Output = Reply<()>> + Send + 'static {
        async { Reply::Stop(ExitReason::Normal) }
    }
}

#[tokio::main]
async fn main() {
    let server: ServerRef<Sorter> = Sorter::start(()).await.unwrap();
    let _: Result<Vec<u32>, CallError> = server.sort(vec![2, 1]).await;
    let _: Result<u32, CallError> = server.max(vec![2, 1]).await;
}
