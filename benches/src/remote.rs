//! The two remote workloads, `remote_call` and `remote_cast`, as `../shared/peer-bench/README.md`
//! defines them: the counter server in a second OS process, reached over ferrotp distribution
//! on 127.0.0.1.
//!
//! The client re-executes its own binary as `ferrotp-bench [--single-thread] server`, as the
//! peers' Rust clients do. The server makes its default node distributed on a port the OS
//! chooses, registers the counter as `counter`, prints `READY <node name>` on stdout, and exits
//! when its stdin reaches end of file: the client closes it at the end, or dies. Hard deadlines
//! on both sides (300 s for the server, 280 s for the client) make sure nothing outlives a run.
//!
//! Connecting, and resolving `counter` to the server's pid, happen before the timer starts; the
//! timed loops call and cast that pid, as ractor's client uses the actor ref it resolved and
//! Erlang's the pid `whereis` gave.

use std::{
    io::BufRead,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use ferrotp::dist::{DistConfig, LocalNode};
use ferrotp::prelude::*;

use crate::{
    Sizes,
    workloads::{Counter, Line, failed, ns_per, time_calls, time_casts},
};

/// The argument that makes `ferrotp-bench` the server process.
pub(crate) const SERVER: &str = "server";

/// Both nodes' cookie: they run on one machine, for one run.
const COOKIE: &str = "ferrotp-bench remote workloads";
/// The name the counter is registered under on the server's node.
const COUNTER: &str = "counter";
/// What the lines' params say the messages travel over.
const TRANSPORT: &str = "ferrotp distribution, TCP over 127.0.0.1";

const SERVER_DEADLINE: Duration = Duration::from_secs(300);
const CLIENT_DEADLINE: Duration = Duration::from_secs(280);
/// How long the server may take to print its `READY` line.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long the server may take to exit once its stdin is closed, before it is killed.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// Exits this process `code` after `after`, whatever it is doing.
fn deadline(after: Duration, who: &'static str, code: i32) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        eprintln!("ferrotp-bench {who}: deadline of {after:?} reached, exiting");
        std::process::exit(code)
    });
}

// ------------------------------------------------------------------------------------- server

/// The server process: the counter, registered, on a distributed node. Returns only on failure;
/// otherwise the process exits on stdin's end of file (or the deadline).
pub(crate) async fn server() -> Result<(), String> {
    deadline(SERVER_DEADLINE, "server", 3);
    // A thread, not a task: it blocks on stdin, and must also work on a one-thread runtime.
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        // `read_until` returns once stdin has ended (or failed): the client has gone.
        while std::io::stdin()
            .lock()
            .read_until(b'\n', &mut sink)
            .is_ok_and(|n| n > 0)
        {
            sink.clear();
        }
        std::process::exit(0)
    });
    let node = LocalNode::distribute(
        DistConfig::new("ferrotp_bench_srv@127.0.0.1:0", COOKIE).map_err(failed)?,
    )
    .await
    .map_err(failed)?;
    Counter::start(()).name(COUNTER).await.map_err(failed)?;
    // The node listens already: the client may connect as soon as it reads this line.
    println!("READY {}", node.name());
    std::future::pending().await
}

// ------------------------------------------------------------------------------------- client

/// The server process, seen from the client: killed if dropped before [`stop`](Self::stop)
/// (when the workload fails), so that it never outlives the client.
struct ServerProcess {
    child: Child,
    /// The server's node name, from its `READY` line.
    node: String,
}

impl ServerProcess {
    /// Starts `<this binary> [--single-thread] server` and waits for its `READY` line.
    async fn start(single_thread: bool) -> Result<ServerProcess, String> {
        let exe = std::env::current_exe().map_err(|error| format!("current_exe: {error}"))?;
        let mut command = Command::new(exe);
        if single_thread {
            command.arg("--single-thread");
        }
        let mut child = command
            .arg(SERVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot start the server process: {error}"))?;
        let stdout = child.stdout.take();
        // Owned from here on, so that every early return below kills it.
        let mut server = ServerProcess {
            child,
            node: String::new(),
        };
        let stdout = stdout.ok_or("the server process has no stdout")?;
        // Read on a thread (the read blocks), handed over through a oneshot so that the runtime's
        // threads stay free; the thread goes on draining stdout so the server never blocks on it.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            lines.for_each(drop);
        });
        let line = match tokio::time::timeout(READY_WITHIN, rx).await {
            Ok(Ok(Some(Ok(line)))) => line,
            Err(_) => return Err(format!("the server was not ready within {READY_WITHIN:?}")),
            Ok(_) => return Err("the server exited before it was ready".to_owned()),
        };
        let node = line
            .strip_prefix("READY ")
            .ok_or_else(|| format!("the server said {line:?}, not READY <node>"))?;
        server.node = node.to_owned();
        Ok(server)
    }

    /// Closes the server's stdin, so that it exits, and waits for it (killing it after
    /// [`EXIT_WITHIN`]).
    async fn stop(mut self) -> Result<(), String> {
        drop(self.child.stdin.take());
        let asked = Instant::now();
        while asked.elapsed() < EXIT_WITHIN {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("the server process exited {status}")),
                Ok(None) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(error) => return Err(format!("the server process: {error}")),
            }
        }
        // Dropping `self` kills it.
        Err(format!(
            "the server did not exit within {EXIT_WITHIN:?} of its stdin closing; killed"
        ))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Still running: the workload failed, or the server ignored its stdin closing.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the server process, makes this node distributed, connects to the server's and
/// resolves the counter's name there to its pid: all that the timed part does not include.
async fn connect(single_thread: bool) -> Result<(ServerProcess, ServerRef<Counter>), String> {
    deadline(CLIENT_DEADLINE, "client", 4);
    let server = ServerProcess::start(single_thread).await?;
    let node = LocalNode::distribute(
        DistConfig::new("ferrotp_bench_cli@127.0.0.1:0", COOKIE).map_err(failed)?,
    )
    .await
    .map_err(failed)?;
    node.connect(&server.node).await.map_err(failed)?;
    let pid = ServerRef::<Counter>::named_on(COUNTER, &server.node)
        .whereis()
        .await
        .map_err(failed)?;
    let counter = ServerRef::<Counter>::from_pid(pid).map_err(failed)?;
    Ok((server, counter))
}

/// remote_call: `k` sequential `inc` calls on the remote counter.
pub(crate) async fn call(sizes: Sizes, single_thread: bool) -> Result<Vec<Line>, String> {
    let k = sizes.remote_call_k;
    let (server, counter) = connect(single_thread).await?;
    let elapsed = time_calls(counter, k).await?;
    server.stop().await?;
    Ok(vec![(
        "ns_per_call",
        ns_per(elapsed, k),
        format!("{{\"k\":{k},\"transport\":\"{TRANSPORT}\"}}"),
    )])
}

/// remote_cast: concurrent producers each cast `add(1)` `per_producer` times to the remote
/// counter, then call `get`; the driver then calls `get` itself and checks the total.
pub(crate) async fn cast(sizes: Sizes, single_thread: bool) -> Result<Vec<Line>, String> {
    let (producers, per_producer) = (sizes.remote_cast_producers, sizes.remote_cast_per_producer);
    let (server, counter) = connect(single_thread).await?;
    let elapsed = time_casts(counter, producers, per_producer).await?;
    let expected = producers * per_producer;
    server.stop().await?;
    let params = format!(
        "{{\"producers\":{producers},\"per_producer\":{per_producer},\"transport\":\"{TRANSPORT}\"}}"
    );
    Ok(vec![("ns_per_msg", ns_per(elapsed, expected), params)])
}
