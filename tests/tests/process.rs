//! Processes and pids: spawn, exit reasons, waiting, message order, scale.

use ferrotp::{
    Down, ExitReason, Pid, is_alive, processes, self_pid, send, spawn, spawn_handle, wait,
};
use ferrotp_tests::in_process;

#[tokio::test]
async fn pid_is_small_printable_and_serialisable() {
    assert_eq!(size_of::<Pid>(), 8);
    let pid = spawn(|_| async {});
    let text = pid.to_string();
    let parts: Vec<&str> = text
        .trim_start_matches('<')
        .trim_end_matches('>')
        .split('.')
        .collect();
    assert_eq!(parts.len(), 3, "{text}");
    assert_eq!(parts[0], "0");
    assert!(
        parts[1..].iter().all(|n| n.parse::<u32>().is_ok()),
        "{text}"
    );

    let json = serde_json::to_string(&pid).unwrap();
    assert_eq!(serde_json::from_str::<Pid>(&json).unwrap(), pid);
    wait(pid).await;
}

#[tokio::test]
async fn the_current_pid_is_known_inside_a_process_only() {
    assert_eq!(self_pid(), None);
    let handle = spawn_handle(|ctx| async move { (ctx.pid(), self_pid()) });
    let pid = handle.pid();
    assert_eq!(handle.join().await, Ok((pid, Some(pid))));
}

#[tokio::test]
async fn arguments_are_passed_by_the_closure_and_results_come_back() {
    async fn add(_ctx: ferrotp::Context, a: u32, b: u32) -> u32 {
        a + b
    }
    let (a, b) = (40, 2);
    assert_eq!(spawn_handle(move |ctx| add(ctx, a, b)).join().await, Ok(42));
}

#[tokio::test]
async fn the_return_value_is_the_exit_reason() {
    assert_eq!(wait(spawn(|_| async {})).await, ExitReason::Normal);
    assert_eq!(
        wait(spawn(|_| async { ExitReason::Shutdown })).await,
        ExitReason::Shutdown
    );
    let failing = spawn(|_| async { Err::<(), _>("disk full") });
    assert_eq!(wait(failing).await, ExitReason::Error("disk full".into()));
}

#[tokio::test]
async fn a_panic_becomes_the_exit_reason_and_harms_no_one_else() {
    let bystander = spawn(|mut ctx| async move {
        ctx.receive::<u8>().await;
    });
    let crasher = spawn_handle(|_| async { panic!("boom {}", 42) });
    assert_eq!(
        crasher.join().await,
        Err::<(), _>(ExitReason::Panic("boom 42".into()))
    );
    assert!(is_alive(bystander));
    send(bystander, 1_u8);
    assert_eq!(wait(bystander).await, ExitReason::Normal);
}

#[tokio::test]
async fn sending_to_a_dead_pid_is_not_an_error() {
    let pid = spawn(|_| async {});
    wait(pid).await;
    assert!(!is_alive(pid));
    send(pid, "into the void");
    assert!(!is_alive(pid));
}

#[tokio::test]
async fn waiting_on_a_process_that_already_exited_gives_its_reason() {
    let pid = spawn(|_| async { Err::<(), _>("too late") });
    wait(pid).await;
    assert_eq!(wait(pid).await, ExitReason::Error("too late".into()));
    assert_eq!(wait(Pid::ROOT).await, ExitReason::NoProc);
}

#[tokio::test]
async fn a_dead_pid_is_never_reused() {
    let first = spawn(|_| async {});
    wait(first).await;
    let later: Vec<Pid> = (0..100)
        .map(|_| spawn(|mut ctx| async move { ctx.receive::<()>().await }))
        .collect();
    assert!(!later.contains(&first));
    for pid in later {
        send(pid, ());
        wait(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_senders_100_000_messages_arrive_in_order() {
    const N: u64 = 100_000;
    let receiver = spawn_handle(|mut ctx| async move {
        for expected in 0..N {
            let got: u64 = ctx.receive().await;
            assert_eq!(got, expected);
        }
        N
    });
    let to = receiver.pid();
    let sender = spawn_handle(move |_| async move {
        for i in 0..N {
            send(to, i);
        }
    });
    assert_eq!(receiver.join().await, Ok(N));
    assert_eq!(sender.join().await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_per_sender_with_many_senders() {
    const SENDERS: u64 = 8;
    const EACH: u64 = 10_000;
    let total = in_process(|mut ctx| async move {
        let me = ctx.pid();
        for s in 0..SENDERS {
            spawn(move |_| async move {
                for i in 0..EACH {
                    send(me, (s, i));
                }
            });
        }
        let mut next = [0; SENDERS as usize];
        for _ in 0..SENDERS * EACH {
            let (s, i): (u64, u64) = ctx.receive().await;
            assert_eq!(i, next[s as usize], "sender {s} out of order");
            next[s as usize] += 1;
        }
        next.iter().sum::<u64>()
    })
    .await;
    assert_eq!(total, SENDERS * EACH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_processes_spawn_and_all_exit_cleanly() {
    const N: usize = 100_000;
    let pids = in_process(|mut ctx| async move {
        let pids: Vec<Pid> = (0..N)
            .map(|_| spawn(|mut ctx| async move { ctx.receive::<()>().await }))
            .collect();
        let live = processes();
        assert!(pids.iter().all(|pid| live.binary_search(pid).is_ok()));
        for &pid in &pids {
            ctx.monitor(pid);
            send(pid, ());
        }
        for _ in 0..N {
            let down: Down = ctx.receive().await;
            assert_eq!(down.reason, ExitReason::Normal, "{}", down.pid);
        }
        pids
    })
    .await;
    assert!(pids.iter().all(|&pid| !is_alive(pid)));
    let live = processes();
    assert!(pids.iter().all(|pid| live.binary_search(pid).is_err()));
}
