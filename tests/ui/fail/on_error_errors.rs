use ferrotp::prelude::*;

struct Guarded;

#[gen_server]
impl Guarded {
    async fn init(_: ()) -> Self {
        Guarded
    }

    // The failure is missing.
    #[on_error]
    async fn on_error(&mut self) -> OnError {
        OnError::Crash
    }

    // A second hook.
    #[on_error]
    async fn also(&mut self, failure: Failure) -> OnError {
        let _ = failure;
        OnError::Continue
    }
}

struct Wrong;

#[gen_server]
impl Wrong {
    async fn init(_: ()) -> Self {
        Wrong
    }

    // Not the decision.
    #[on_error]
    async fn on_error(&mut self, failure: Failure) -> bool {
        let _ = failure;
        true
    }
}

fn main() {}
