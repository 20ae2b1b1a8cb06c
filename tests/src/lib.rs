//! ferrotp's integration test crate.
//!
//! Its library holds the guide's chapters as doc-tests, so that `cargo test` compiles and runs
//! every code block of the guide, plus small helpers the tests in `tests/` share.

use std::future::Future;

use ferrotp::Context;

pub mod deadlines;
pub mod dist;
pub mod mailboxes;
pub mod workers;

#[doc = include_str!("../../README.md")]
mod readme {}

#[doc = include_str!("../../guide/src/introduction.md")]
mod introduction {}

#[doc = include_str!("../../guide/src/getting-started.md")]
mod getting_started {}

#[doc = include_str!("../../guide/src/processes.md")]
mod processes {}

#[doc = include_str!("../../guide/src/genserver.md")]
mod genserver {}

#[doc = include_str!("../../guide/src/dispatch.md")]
mod dispatch {}

#[doc = include_str!("../../guide/src/long-running.md")]
mod long_running {}

#[doc = include_str!("../../guide/src/calls.md")]
mod calls {}

#[doc = include_str!("../../guide/src/supervisors.md")]
mod supervisors {}

#[doc = include_str!("../../guide/src/applications.md")]
mod applications {}

#[doc = include_str!("../../guide/src/distribution.md")]
mod distribution {}

#[doc = include_str!("../../guide/src/groups.md")]
mod groups {}

#[doc = include_str!("../../guide/src/testing.md")]
mod testing {}

#[doc = include_str!("../../guide/src/performance.md")]
mod performance {}

#[doc = include_str!("../../guide/src/lineage.md")]
mod lineage {}

/// How long a test process may run before the test fails instead of hanging. Under a paused
/// clock a deadlocked test reaches it at once, since tokio advances the idle clock.
const TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `f` as a process and returns what it returns; panics (failing the test) if the process
/// ends without returning or takes longer than a minute, so a test body can use selective
/// receive, links and monitors.
pub async fn in_process<F, Fut, T>(f: F) -> T
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handle = ferrotp::spawn_handle(f);
    let pid = handle.pid();
    match tokio::time::timeout(TEST_LIMIT, handle.join()).await {
        Ok(Ok(value)) => value,
        Ok(Err(reason)) => panic!("test process exited with {reason}"),
        Err(_) => {
            ferrotp::exit(pid, ferrotp::ExitReason::Kill);
            panic!("test process {pid} did not finish within {TEST_LIMIT:?}: a deadlock?")
        }
    }
}
