//! A process's life shows up in `tracing` at debug level, a crash at warn.

use std::{
    io,
    sync::{Arc, Mutex},
};

use ferrotp::{ExitReason, register, spawn, wait};
use ferrotp_tests::in_process;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut log = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures, on this thread, every event `filter` lets through. The current-thread runtime
    /// polls every process on this thread, so a thread-local default subscriber sees all their
    /// events.
    fn start(filter: &str) -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        use tracing_subscriber::{Layer, layer::SubscriberExt};
        let filter: tracing_subscriber::filter::Targets = filter.parse().unwrap();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .with_filter(filter);
        let subscriber = tracing_subscriber::registry().with(layer);
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Lines of log output that mention `pid`.
fn lines_about(log: &str, pid: ferrotp::Pid) -> Vec<String> {
    let pid = pid.to_string();
    log.lines()
        .filter(|l| l.contains(&pid))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn spawn_link_monitor_and_exit_are_traced_with_pid_and_name() {
    let (captured, _guard) = Captured::start("ferrotp=debug");

    let (parent, child) = in_process(|mut ctx| async move {
        ctx.trap_exit(true);
        let child = ctx.spawn_link(|mut ctx| async move {
            ctx.receive::<()>().await;
            panic!("traced crash");
        });
        register("traced-child", child).unwrap();
        ctx.monitor(child);
        ferrotp::send(child, ());
        ctx.receive::<ferrotp::Exit>().await;
        (ctx.pid(), child)
    })
    .await;
    let quiet = spawn(|_| async {});
    assert_eq!(wait(quiet).await, ExitReason::Normal);
    ferrotp::send(quiet, 5_u16);

    let log = captured.text();
    let child_lines = lines_about(&log, child);
    let has = |level: &str, what: &str| {
        child_lines
            .iter()
            .any(|l| l.contains(level) && l.contains(what))
    };
    assert!(has("DEBUG", "process spawned"), "{log}");
    assert!(has("DEBUG", "link"), "{log}");
    assert!(has("DEBUG", "monitor"), "{log}");
    assert!(has("DEBUG", "registered"), "{log}");
    assert!(
        has("WARN", "process crashed")
            && has("WARN", "traced-child")
            && has("WARN", "traced crash"),
        "{log}"
    );
    assert!(
        lines_about(&log, parent)
            .iter()
            .any(|l| l.contains("process exited")),
        "{log}"
    );
    assert!(
        lines_about(&log, quiet)
            .iter()
            .any(|l| l.contains("DEBUG") && l.contains("reason=normal")),
        "{log}"
    );
}

struct Quiet;

#[ferrotp::gen_server]
impl Quiet {
    async fn init(_: ()) -> Self {
        Quiet
    }

    #[install("sync")]
    async fn sync(&mut self) {}
}

#[tokio::test(flavor = "current_thread")]
async fn a_gen_server_logs_unexpected_info_at_warn() {
    let (captured, _guard) = Captured::start("ferrotp=warn");

    let server = Quiet::start(()).await.unwrap();
    ferrotp::send(server.pid(), 42_i128);
    server.sync().await.unwrap();

    let log = captured.text();
    let line = lines_about(&log, server.pid()).join("\n");
    assert!(
        line.contains("WARN")
            && line.contains("unexpected message dropped")
            && line.contains("i128"),
        "{log}"
    );
}

struct Fragile;

#[ferrotp::gen_server]
impl Fragile {
    async fn init(_: ()) -> Self {
        Fragile
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("fragile broke")
    }
}

#[tokio::test(flavor = "current_thread")]
async fn restarts_are_logged_with_child_id_reason_and_count() {
    use ferrotp::supervisor::{Child, Supervisor};
    let (captured, _guard) = Captured::start("ferrotp=warn");
    let sup = Supervisor::one_for_one()
        .intensity(5, std::time::Duration::from_secs(60))
        .child(Child::server::<Fragile>("fragile-child", ()))
        .start()
        .await
        .unwrap();
    for expected in 1..=2 {
        let child = sup.child::<Fragile>("fragile-child").await.unwrap();
        let _ = child.crash().await;
        // The restart is done once the supervisor answers with the new child.
        while sup.child::<Fragile>("fragile-child").await.is_err() {
            tokio::task::yield_now().await;
        }
        let log = captured.text();
        let restarts: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("restarting child"))
            .collect();
        assert_eq!(restarts.len(), expected, "{log}");
        let line = restarts[expected - 1];
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("child=fragile-child"), "{line}");
        assert!(line.contains("reason=panic: fragile broke"), "{line}");
        assert!(line.contains(&format!("restarts={expected}")), "{line}");
    }
}
