//! ferrotp's integration test crate.
//!
//! Its library holds the guide's chapters as doc-tests, so that `cargo test` compiles and runs
//! every code block of the guide, plus small helpers the tests in `tests/` share.

use std::future::Future;

use ferrotp::Context;

#[doc = include_str!("../../README.md")]
mod readme {}

#[doc = include_str!("../../guide/src/introduction.md")]
mod introduction {}

#[doc = include_str!("../../guide/src/processes.md")]
mod processes {}

#[doc = include_str!("../../guide/src/genserver.md")]
mod genserver {}

#[doc = include_str!("../../guide/src/dispatch.md")]
mod dispatch {}

/// Runs `f` as a process and returns what it returns; panics (failing the test) if the process
/// ends without returning, so a test body can use selective receive, links and monitors.
pub async fn in_process<F, Fut, T>(f: F) -> T
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    match ferrotp::spawn_handle(f).join().await {
        Ok(value) => value,
        Err(reason) => panic!("test process exited with {reason}"),
    }
}
