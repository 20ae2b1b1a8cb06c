//! A node in another OS process: this test binary runs itself again as the child node
//! (`child_node`, which does nothing unless `FERROTP_TEST_CHILD` is set), reads its name from a
//! `READY <name>` line, and talks to it over 127.0.0.1. Then it freezes the child (SIGSTOP): the
//! heartbeat must notice within the tick time, and the link must fire with `NoConnection`.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use ferrotp::{
    Exit, ExitReason, Pid,
    dist::{DistConfig, LocalNode},
};

const COOKIE: &str = "two processes test cookie";
const TICKTIME: Duration = Duration::from_secs(1);

/// The child node: an echo process registered as `echo` that answers `(pid, n)` with `n + 1`
/// and its own pid. Runs until its stdin closes.
#[test]
fn child_node() {
    if std::env::var_os("FERROTP_TEST_CHILD").is_none() {
        return;
    }
    register();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = DistConfig::new("child@127.0.0.1:0", COOKIE)
            .unwrap()
            .net_ticktime(TICKTIME);
        let node = LocalNode::distribute(config).await.unwrap();
        ferrotp::spawn(|mut ctx| async move {
            ferrotp::register("echo", ctx.pid()).unwrap();
            loop {
                let (from, n): (Pid, u64) = receive_pair(&mut ctx).await;
                ferrotp::send(from, Pair(ctx.pid(), n + 1));
            }
        });
        while ferrotp::whereis("echo").is_none() {
            tokio::task::yield_now().await;
        }
        println!("READY {}", node.name());
        std::io::stdout().flush().unwrap();
        // Until the parent closes our stdin (or kills us).
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_line(&mut String::new());
        })
        .await
        .unwrap();
    });
}

/// Pairs travel as a registered type: `(Pid, u64)` is not built in.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pair(Pid, u64);

async fn receive_pair(ctx: &mut ferrotp::Context) -> (Pid, u64) {
    let Pair(pid, n) = ctx.receive().await;
    (pid, n)
}

fn register() {
    let _ = ferrotp::dist::register::<Pair>("dist_two_processes::Pair");
}

/// The child process, killed when dropped.
struct ChildNode(Child);

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_child() -> (ChildNode, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_node", "--nocapture", "--test-threads=1"])
        .env("FERROTP_TEST_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = ChildNode(child);
    // Bounded: the harness prints a few lines before ours.
    let name = BufReader::new(stdout)
        .lines()
        .take(20)
        .map_while(Result::ok)
        // The harness may print `test child_node ... ` on the same line first.
        .find_map(|line| Some(line.split_once("READY ")?.1.trim().to_owned()))
        .expect("the child node said READY");
    (child, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_in_another_os_process_answers_and_a_frozen_one_is_noticed() {
    register();
    let (child, child_name) = tokio::task::spawn_blocking(start_child).await.unwrap();
    let config = DistConfig::new("parent@127.0.0.1:0", COOKIE)
        .unwrap()
        .net_ticktime(TICKTIME);
    let parent = LocalNode::start(config).await.unwrap();
    let child_pid = child.0.id();
    let outcome = parent.spawn_handle_for(move |mut ctx| async move {
        ctx.trap_exit(true);
        ferrotp::dist::send_named(&child_name, "echo", Pair(ctx.pid(), 41));
        let (echo, n) = receive_pair(&mut ctx).await;
        assert_eq!(n, 42);
        assert_eq!(echo.node_name(), child_name);
        ctx.link(echo).unwrap();
        // Round trip once more: the link is in place on the other side before we freeze it.
        ferrotp::send(echo, Pair(ctx.pid(), 1));
        assert_eq!(receive_pair(&mut ctx).await.1, 2);
        let status = Command::new("kill")
            .args(["-STOP", &child_pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let frozen = Instant::now();
        let exit: Exit = ctx.receive().await;
        (echo, exit, frozen.elapsed())
    });
    let (echo, exit, noticed) = tokio::time::timeout(Duration::from_secs(20), outcome)
        .await
        .expect("the frozen node was noticed")
        .expect("the process returned");
    assert_eq!(exit.from, echo);
    assert_eq!(exit.reason, ExitReason::NoConnection);
    // Within one tick time and a tick (with room for a loaded machine), not a TCP timeout.
    assert!(noticed < TICKTIME * 4, "noticed after {noticed:?}");
    let _ = Command::new("kill")
        .args(["-CONT", &child_pid.to_string()])
        .status();
    drop(child);
    parent.stop().await;
}

/// Spawns a process on a node and returns a future of its result.
trait SpawnFor {
    fn spawn_handle_for<F, Fut, T>(&self, f: F) -> tokio::sync::oneshot::Receiver<T>
    where
        F: FnOnce(ferrotp::Context) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static;
}

impl SpawnFor for LocalNode {
    fn spawn_handle_for<F, Fut, T>(&self, f: F) -> tokio::sync::oneshot::Receiver<T>
    where
        F: FnOnce(ferrotp::Context) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.spawn(move |ctx| async move {
            let _ = tx.send(f(ctx).await);
        });
        rx
    }
}
