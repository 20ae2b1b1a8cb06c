//! Chaos: a three-level tree of named servers under client load, while a seeded chaos process
//! crashes, kills and stops workers and kills whole subtrees. Afterwards no process has leaked,
//! every name resolves to a live server, no call hung, and the root never escalated.
//!
//! In a test binary of its own, so that `processes()` counts this test's processes only. The
//! seed is fixed (and printed); `CHAOS_SEED=n` runs another one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::supervisor::{Child, Supervisor, SupervisorProcess, SupervisorRef};
use ferrotp::{NamedRef, processes};

const MIDS: [&str; 3] = ["mid-0", "mid-1", "mid-2"];
const WORKERS_PER_MID: usize = 4;
const ACTIONS: usize = 150;
const CLIENTS: usize = 4;
/// No call may take this long: a call that does has hung.
const CALL_LIMIT: Duration = Duration::from_secs(5);

fn worker_name(mid: usize, n: usize) -> &'static str {
    const NAMES: [[&str; WORKERS_PER_MID]; 3] = [
        ["w-0-0", "w-0-1", "w-0-2", "w-0-3"],
        ["w-1-0", "w-1-1", "w-1-2", "w-1-3"],
        ["w-2-0", "w-2-1", "w-2-2", "w-2-3"],
    ];
    NAMES[mid][n]
}

fn all_workers() -> impl Iterator<Item = &'static str> {
    (0..MIDS.len()).flat_map(|mid| (0..WORKERS_PER_MID).map(move |n| worker_name(mid, n)))
}

/// A worker: answers pings, crashes on demand.
struct Leaf;

#[gen_server]
impl Leaf {
    async fn init(_: ()) -> Self {
        Leaf
    }

    #[install("ping")]
    async fn ping(&mut self) -> u8 {
        1
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("chaos crashed a worker")
    }
}

fn tree() -> Supervisor {
    let intensity = (10_000, Duration::from_secs(1));
    MIDS.iter().enumerate().fold(
        Supervisor::one_for_one().intensity(intensity.0, intensity.1),
        |root, (mid, id)| {
            let sub = (0..WORKERS_PER_MID).fold(
                Supervisor::one_for_one().intensity(intensity.0, intensity.1),
                |sub, n| {
                    let name = worker_name(mid, n);
                    sub.child(Child::server::<Leaf>(name, ()).name(name))
                },
            );
            root.child(Child::supervisor(id, sub))
        },
    )
}

/// splitmix64: a seeded generator, enough for choosing actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Calls random workers by name until told to stop; returns how many calls succeeded. Panics
/// (failing the test) on a call that hung or failed in a way no chaos explains.
async fn client(seed: u64, stop: Arc<AtomicBool>) -> usize {
    let mut rng = Rng(seed);
    let workers: Vec<NamedRef<Leaf>> = all_workers().map(ServerRef::named).collect();
    let mut answered = 0;
    while !stop.load(Ordering::SeqCst) {
        let worker = workers[rng.below(workers.len())];
        let call = tokio::time::timeout(CALL_LIMIT, worker.ping()).await;
        match call.expect("a call hung") {
            Ok(1) => answered += 1,
            // The server died with the call in it, or its subtree is being restarted.
            Err(CallError::Exited { .. } | CallError::NotRegistered(_)) => {}
            other => panic!("{} answered {other:?}", worker.registered_name()),
        }
    }
    answered
}

async fn mid_pid(root: &SupervisorRef, mid: usize) -> Option<Pid> {
    root.child_pid(MIDS[mid].to_string()).await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_under_load_survives_chaos() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5EED_u64);
    println!("chaos seed {seed}");
    let before = processes().len();
    let root = tree().start().await.unwrap();
    let root_pid = root.pid();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let stop = stop.clone();
            ferrotp::spawn_handle(move |_ctx| client(seed + 1 + n as u64, stop))
        })
        .collect();

    let mut rng = Rng(seed);
    for _ in 0..ACTIONS {
        let mid = rng.below(MIDS.len());
        let name = worker_name(mid, rng.below(WORKERS_PER_MID));
        let worker = ServerRef::<Leaf>::named(name);
        match rng.below(10) {
            0..=2 => {
                let _ = tokio::time::timeout(CALL_LIMIT, worker.crash())
                    .await
                    .expect("a crash call hung");
            }
            3..=5 => {
                if let Some(pid) = ferrotp::whereis(name) {
                    exit(pid, ExitReason::Kill);
                }
            }
            6..=7 => {
                let _ = tokio::time::timeout(CALL_LIMIT, worker.stop(ExitReason::Shutdown))
                    .await
                    .expect("a stop hung");
            }
            _ => {
                if let Some(pid) = mid_pid(&root, mid).await {
                    exit(pid, ExitReason::Kill);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    stop.store(true, Ordering::SeqCst);
    let mut answered = 0;
    for client in clients {
        answered += client.join().await.expect("a client failed");
    }
    assert!(answered > 0, "the clients never got an answer");

    // Settle: each supervisor's next call comes after every exit signal it has been sent.
    let mut mids = Vec::new();
    for mid in 0..MIDS.len() {
        let pid = mid_pid(&root, mid).await.expect("a subtree is not running");
        let sup = ServerRef::<SupervisorProcess>::from_pid(pid).unwrap();
        sup.which_children().await.unwrap();
        mids.push(sup);
    }
    assert_eq!(root.pid(), root_pid);
    assert!(ferrotp::is_alive(root_pid), "the root escalated");
    for name in all_workers() {
        let pid = ferrotp::whereis(name).unwrap_or_else(|| panic!("`{name}` resolves to nobody"));
        assert!(ferrotp::is_alive(pid));
        assert_eq!(ServerRef::<Leaf>::named(name).ping().await, Ok(1));
    }
    let tree_size = 1 + MIDS.len() + MIDS.len() * WORKERS_PER_MID;
    assert_eq!(processes().len(), before + tree_size, "processes leaked");

    root.stop(ExitReason::Shutdown).await.unwrap();
    assert_eq!(processes().len(), before, "the tree left processes behind");
}
