//! A node stops its applications on SIGTERM. In a test binary of its own: the signal handler it
//! installs is process-wide.

#![cfg(unix)]

use ferrotp::application::Application;
use ferrotp::node::{Node, NodeExit};
use ferrotp::prelude::*;
use ferrotp::supervisor::{Child, Supervisor};
use ferrotp_tests::in_process;
use ferrotp_tests::workers::{Event, Setup, Worker, next_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_an_orderly_stop_with_status_0() {
    let (exit, stopped) = in_process(|mut ctx| async move {
        let me = ctx.pid();
        let app = Application::new(
            "signal-app",
            move |()| {
                Supervisor::one_for_one()
                    .child(Child::server::<Worker>("w", Setup::new("signal-w", me)))
            },
            (),
        );
        let node = tokio::spawn(Node::new().app(app).default_subscriber(false).run_async());
        assert_eq!(next_event(&mut ctx).await, Event::Started("signal-w"));
        // The handler is installed before the applications start; the worker is up, so it is.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = node.await.unwrap();
        (exit, next_event(&mut ctx).await)
    })
    .await;
    // Every application stopped cleanly: an orderly stop, which service managers must not read
    // as a failure (143 would be).
    assert_eq!(exit, NodeExit::Signal("SIGTERM"));
    assert_eq!(exit.code(), 0);
    assert_eq!(stopped, Event::Terminated("signal-w", ExitReason::Shutdown));
}
