//! ferrotp on the workloads of `../shared/peer-bench` (its README defines each one exactly), with
//! the same JSON line output, so `../shared/peer-bench/compare.sh` can put ferrotp beside ractor,
//! kameo, actix and Erlang from one run.
//!
//! ```text
//! cargo build --release -p ferrotp-bench
//! target/release/ferrotp-bench ring|call|cast|spawn|restart|remote_call|remote_cast
//! target/release/ferrotp-bench --single-thread call   # a one-thread node, as "ferrotp-1t"
//! target/release/ferrotp-bench --quick call           # small sizes, for CI
//! ```
//!
//! Every workload is written the way the guide teaches: plain processes for the ring,
//! `#[gen_server]` servers for call, cast and spawn, and the real supervisor for restart.
//! The remote workloads start a second `ferrotp-bench` process, `ferrotp-bench server`, for
//! their server's node (see `remote`).

mod remote;
mod workloads;

use std::process::ExitCode;

const USAGE: &str = "usage: ferrotp-bench [--single-thread] [--quick] ring|call|cast|spawn|restart|remote_call|remote_cast
  --single-thread  run on a one-thread (current_thread) node; the lines say \"ferrotp-1t\"
  --quick          small sizes, to check that the workloads run (CI)";

/// The workload sizes of peer-bench's README, or small ones for `--quick`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// ring: processes in the ring.
    pub(crate) ring_n: u64,
    /// ring: hops the token makes.
    pub(crate) ring_hops: u64,
    /// call: sequential calls.
    pub(crate) call_k: u64,
    /// cast: concurrent producers.
    pub(crate) cast_producers: u64,
    /// cast: casts per producer.
    pub(crate) cast_per_producer: u64,
    /// spawn: servers alive at once.
    pub(crate) spawn_n: u64,
    /// restart: crash-and-ping cycles.
    pub(crate) restart_r: u64,
    /// remote_call: sequential calls to the other node.
    pub(crate) remote_call_k: u64,
    /// remote_cast: concurrent producers.
    pub(crate) remote_cast_producers: u64,
    /// remote_cast: casts per producer to the other node.
    pub(crate) remote_cast_per_producer: u64,
}

impl Sizes {
    const FULL: Sizes = Sizes {
        ring_n: 10_000,
        ring_hops: 1_000_000,
        call_k: 200_000,
        cast_producers: 2,
        cast_per_producer: 1_000_000,
        spawn_n: 100_000,
        restart_r: 2_000,
        remote_call_k: 200_000,
        remote_cast_producers: 2,
        remote_cast_per_producer: 1_000_000,
    };

    const QUICK: Sizes = Sizes {
        ring_n: 1_000,
        ring_hops: 10_000,
        call_k: 2_000,
        cast_producers: 2,
        cast_per_producer: 10_000,
        spawn_n: 2_000,
        restart_r: 50,
        remote_call_k: 1_000,
        remote_cast_producers: 2,
        remote_cast_per_producer: 10_000,
    };
}

/// Where results go: one JSON line per metric, as peer-bench's `emit`.
pub(crate) struct Report {
    system: &'static str,
}

impl Report {
    pub(crate) fn emit(&self, workload: &str, metric: &str, value: f64, params: &str) {
        println!(
            "{{\"system\":\"{}\",\"version\":\"{}\",\"workload\":\"{workload}\",\"metric\":\"{metric}\",\"value\":{value:.3},\"params\":{params}}}",
            self.system,
            env!("CARGO_PKG_VERSION"),
        );
    }
}

fn main() -> ExitCode {
    let mut single_thread = false;
    let mut sizes = Sizes::FULL;
    let mut workload = None;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--single-thread" => single_thread = true,
            "--quick" => sizes = Sizes::QUICK,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            name if workload.is_none() && !name.starts_with('-') => {
                workload = Some(name.to_owned())
            }
            other => {
                eprintln!("unexpected argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(workload) = workload else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    // Restarts are real panics; do not measure the printing of 2,000 of them.
    std::panic::set_hook(Box::new(|_| {}));
    let report = Report {
        system: if single_thread {
            "ferrotp-1t"
        } else {
            "ferrotp"
        },
    };
    let runtime = if single_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot build the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match workload.as_str() {
        remote::SERVER => runtime.block_on(remote::server()),
        _ => runtime.block_on(workloads::run(&workload, sizes, single_thread, &report)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ferrotp-bench {workload}: {error}");
            ExitCode::FAILURE
        }
    }
}
