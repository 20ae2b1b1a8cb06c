//! What a node's logging prints: one event per crash, carrying pid, name, message and location
//! (Rust's panic message only for panics outside processes, a backtrace only when asked for), no
//! colours off a terminal, and a warning for a `RUST_LOG` it cannot read.
//!
//! The node's subscriber and panic hook are process-wide and write to the real stderr, so each
//! check runs a scenario in a child process (this test binary again, running only [`scenario`])
//! and reads what it printed.

use std::process::{Command, Output};
use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::supervisor::AutoShutdown;

/// Names the scenario a child process runs.
const SCENARIO: &str = "FERROTP_NODE_LOGGING_SCENARIO";

/// Not a check of its own: the body of the child process the checks run (see [`run`]), which
/// does nothing unless `FERROTP_NODE_LOGGING_SCENARIO` names a scenario.
#[test]
fn scenario() {
    match std::env::var(SCENARIO).as_deref() {
        Ok("crashes") => crashes(),
        Ok("quiet") => quiet(),
        Ok("double-panic") => double_panic(),
        Ok(other) => panic!("unknown scenario {other}"),
        Err(_) => {}
    }
}

/// What a child process printed.
struct Printed {
    stdout: String,
    stderr: String,
}

/// Runs `scenario` in a child process with `env` (and without `RUST_LOG`, `RUST_BACKTRACE` and
/// `NO_COLOR` unless `env` sets them); it must succeed.
fn run(scenario: &str, env: &[(&str, &str)]) -> Printed {
    let (status, printed) = run_child(scenario, env);
    assert!(
        status.success(),
        "scenario {scenario} failed: {status}\n{}\n{}",
        printed.stdout,
        printed.stderr
    );
    printed
}

fn run_child(scenario: &str, env: &[(&str, &str)]) -> (std::process::ExitStatus, Printed) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["scenario", "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        // Where a core dump of the scenario that aborts would go, if any.
        .current_dir(env!("CARGO_TARGET_TMPDIR"));
    for var in ["RUST_LOG", "RUST_BACKTRACE", "NO_COLOR"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    let printed = Printed {
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    (status, printed)
}

impl Printed {
    /// The pid the scenario printed as `what <pid>` (libtest may print before it on its line).
    fn pid(&self, what: &str) -> String {
        let start = format!("{what} <");
        let at = self
            .stdout
            .find(&start)
            .unwrap_or_else(|| panic!("no {what} in\n{}", self.stdout));
        let pid = &self.stdout[at + start.len() - 1..];
        pid[..=pid.find('>').unwrap()].to_owned()
    }

    /// The crash reports of `pid`.
    fn crash_reports(&self, pid: &str) -> Vec<&str> {
        let pid = format!("pid={pid} ");
        self.stderr
            .lines()
            .filter(|line| line.contains("process crashed") && line.contains(&pid))
            .collect()
    }

    fn count(&self, text: &str) -> usize {
        self.stderr.matches(text).count()
    }
}

// ----- The scenarios, run in a child process -----

/// Defined here, not shared with other tests: the checks expect the panic's location in this file.
struct Fragile;

#[gen_server]
impl Fragile {
    async fn init(_: ()) -> Self {
        Fragile
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("fragile broke")
    }
}

/// Crashes a named gen_server and a plain process on a node, then panics outside any process.
fn crashes() {
    async fn client(_ctx: Context) -> Result<(), Box<dyn std::error::Error>> {
        let fragile = ServerRef::<Fragile>::named("logging-fragile");
        println!("server {}", fragile.lookup()?.pid());
        assert!(fragile.crash().await.is_err());
        let plain = spawn(|_ctx| async {
            // A panic the process catches itself is its own business: nothing is printed.
            assert!(std::panic::catch_unwind(|| panic!("caught by the process itself")).is_err());
            tokio::time::sleep(Duration::from_millis(1)).await;
            std::hint::black_box(None::<u8>).unwrap();
        });
        println!("plain {plain}");
        wait(plain).await;
        Ok(())
    }
    let app = Application::new(
        "logging",
        |()| {
            Supervisor::one_for_one()
                .auto_shutdown(AutoShutdown::AnySignificant)
                .child(Child::server::<Fragile>("fragile", ()).name("logging-fragile"))
                .child(Child::process("client", client).transient().significant())
        },
        (),
    );
    assert_eq!(node::run([app]), NodeExit::Completed);
    // The node's panic hook leaves this panic to Rust's (caught here, so the scenario passes).
    assert!(std::panic::catch_unwind(|| panic!("a panic outside any process")).is_err());
}

/// An application that starts and ends at once.
fn quiet() {
    let app = Application::new(
        "logging-quiet",
        |()| {
            Supervisor::one_for_one()
                .auto_shutdown(AutoShutdown::AnySignificant)
                .child(
                    Child::process("done", |_ctx| async {})
                        .transient()
                        .significant(),
                )
        },
        (),
    );
    assert_eq!(node::run([app]), NodeExit::Completed);
}

/// A process panics, and panics again in a `Drop` while unwinding: Rust aborts the program.
fn double_panic() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("second panic, in a Drop")
        }
    }
    async fn job(_ctx: Context) {
        let _bomb = Bomb;
        panic!("first panic");
    }
    let app = Application::new(
        "logging-double",
        |()| Supervisor::one_for_one().child(Child::process("job", job)),
        (),
    );
    node::run([app]);
}

// ----- The checks -----

#[test]
fn a_crash_is_one_event_with_pid_name_message_and_location() {
    let printed = run("crashes", &[]);
    let log = &printed.stderr;

    let server = printed.pid("server");
    let reports = printed.crash_reports(&server);
    assert_eq!(reports.len(), 1, "{log}");
    let report = reports[0];
    assert!(report.contains(" WARN "), "{report}");
    assert!(report.contains(r#"name="logging-fragile""#), "{report}");
    assert!(report.contains("reason=panic: fragile broke"), "{report}");
    assert!(
        report.contains("location=tests/tests/node_logging.rs:"),
        "{report}"
    );
    assert!(!report.contains("backtrace"), "{report}");

    let plain = printed.pid("plain");
    let reports = printed.crash_reports(&plain);
    assert_eq!(reports.len(), 1, "{log}");
    assert!(
        reports[0].contains("reason=panic: called `Option::unwrap()` on a `None` value"),
        "{log}"
    );
    assert!(!reports[0].contains("name="), "{log}");

    // Rust's panic message is printed for the panic outside any process only.
    assert_eq!(printed.count("panicked at"), 1, "{log}");
    assert_eq!(printed.count("a panic outside any process"), 1, "{log}");
    assert_eq!(printed.count("RUST_BACKTRACE=1"), 1, "{log}");
    assert_eq!(printed.count("caught by the process itself"), 0, "{log}");
    // Each crash's message appears in its report, and in the supervisor's decision about it.
    assert_eq!(printed.count("fragile broke"), 2, "{log}");
    assert_eq!(printed.count("restarting child"), 1, "{log}");
    // stderr is not a terminal here.
    assert!(!log.contains('\x1b'), "{log}");
}

#[test]
fn a_crash_report_carries_the_backtrace_when_rust_backtrace_asks() {
    let printed = run("crashes", &[("RUST_BACKTRACE", "1")]);
    let log = &printed.stderr;
    let plain = printed.pid("plain");
    let report = printed.crash_reports(&plain)[0];
    assert!(report.ends_with("backtrace="), "{log}");
    // The frames follow the report, from the panic to the process's task.
    let frames = &log[log.find(report).unwrap() + report.len()..];
    let frames = &frames[..frames.find(" WARN ").unwrap_or(frames.len())];
    assert!(frames.contains("node_logging::crashes::client"), "{frames}");
    assert!(frames.contains("::task::ProcessTask<"), "{frames}");
    assert!(!frames.contains("tokio::runtime"), "{frames}");
    // Still one report per crash: Rust's panic message only for the panic outside.
    assert_eq!(printed.count("panicked at"), 1, "{log}");
}

#[test]
fn an_invalid_rust_log_is_reported_and_info_used_instead() {
    let printed = run("quiet", &[("RUST_LOG", "info,ferrotp=verbose")]);
    let log = &printed.stderr;
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("RUST_LOG")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let warning = warnings[0];
    assert!(warning.contains(" WARN "), "{warning}");
    assert!(
        warning.contains(r#"RUST_LOG="info,ferrotp=verbose""#),
        "{warning}"
    );
    assert!(warning.contains("`ferrotp=verbose`"), "{warning}");
    assert!(warning.contains("logging at `info` instead"), "{warning}");
    assert!(
        log.contains(" INFO ") && log.contains("starting application"),
        "{log}"
    );
    assert!(!log.contains(" DEBUG "), "{log}");
}

#[test]
fn a_valid_rust_log_is_used_without_a_word() {
    let printed = run("quiet", &[("RUST_LOG", "ferrotp=debug")]);
    let log = &printed.stderr;
    assert!(!log.contains("RUST_LOG"), "{log}");
    assert!(
        log.contains(" DEBUG ") && log.contains("process spawned"),
        "{log}"
    );
}

#[test]
fn a_panic_while_unwinding_from_another_is_printed_with_the_first_before_the_abort() {
    let (status, printed) = run_child("double-panic", &[]);
    let log = &printed.stderr;
    assert!(!status.success(), "{log}");
    // The hook kept the first panic for a crash report that the abort prevents: it prints it.
    assert!(log.contains("first panic"), "{log}");
    assert!(log.contains("second panic, in a Drop"), "{log}");
    assert!(!log.contains("process crashed"), "{log}");
}
