//! Servers that report the deadline they see, for the tests of what calls carry.

use std::future::Future;

use ferrotp::{Caller, Context, Reply, ServerRef, gen_server};

/// Milliseconds from now to the deadline of the call being handled, if it has one.
fn left(ctx: &Context) -> Option<u64> {
    ctx.deadline().map(|deadline| {
        deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_millis() as u64
    })
}

/// Answers the deadline it sees.
pub struct Leaf;

#[gen_server]
impl Leaf {
    async fn init(_: ()) -> Self {
        Leaf
    }

    /// The deadline of this call, in milliseconds from now.
    #[install("deadline", local)]
    async fn deadline(&mut self, ctx: &mut Context) -> Option<u64> {
        left(ctx)
    }
}

/// Asks a [`Leaf`] the deadline it sees, from a task or after deferring its own reply.
pub struct Mid {
    leaf: ServerRef<Leaf>,
}

#[gen_server]
impl Mid {
    async fn init(leaf: ServerRef<Leaf>) -> Self {
        Mid { leaf }
    }

    /// Its task asks the leaf, with the default timeout.
    #[install("ask_later", task, local)]
    fn ask_later(&mut self) -> impl Future<Output = Option<u64>> + Send + 'static {
        let leaf = self.leaf;
        async move { leaf.deadline().await.unwrap() }
    }

    /// Defers its reply, then asks the leaf, then answers.
    #[install("deferred", local)]
    async fn deferred(&mut self, caller: &mut Caller<Option<u64>>) -> Reply<Option<u64>> {
        let token = caller.defer();
        let seen = self.leaf.deadline().await.unwrap();
        token.send(seen);
        Reply::NoReply
    }
}
