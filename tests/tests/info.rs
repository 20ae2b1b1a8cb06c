//! Introspection: live processes and a snapshot of each.

use ferrotp::{ExitReason, Status, exit, process_info, processes, register, send, spawn, wait};
use ferrotp_tests::in_process;

#[tokio::test]
async fn processes_lists_live_processes_only() {
    let live = spawn(|mut ctx| async move { ctx.receive::<()>().await });
    let dead = spawn(|_| async {});
    wait(dead).await;
    let all = processes();
    assert!(all.contains(&live));
    assert!(!all.contains(&dead));
    assert_eq!(process_info(dead), None);
    send(live, ());
}

#[tokio::test]
async fn process_info_reports_name_mailbox_counts_relations_and_status() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let watched = spawn(|mut ctx| async move { ctx.receive::<()>().await });
        let subject = ctx.spawn_link(move |mut ctx| async move {
            ctx.trap_exit(true);
            ctx.monitor(watched);
            ctx.receive::<u8>().await; // one message handled
            send(me, "ready");
            ctx.receive::<()>().await; // then it waits, and later messages pile up
        });
        register("info-subject", subject).unwrap();
        ctx.monitor(subject);
        send(subject, 1_u8);
        ctx.receive::<&str>().await;
        send(subject, "unexpected");
        send(subject, 2.5_f64);

        // Let the subject park in its receive before looking.
        while process_info(subject).unwrap().status != Status::Waiting {
            tokio::task::yield_now().await;
        }
        let info = process_info(subject).unwrap();
        assert_eq!(info.pid, subject);
        assert_eq!(info.name.as_deref(), Some("info-subject"));
        assert_eq!(info.mailbox_len, 2);
        assert_eq!(info.handled, 1);
        assert_eq!(info.links, vec![me]);
        assert_eq!(info.monitors, vec![watched]);
        assert_eq!(info.monitored_by, vec![me]);
        assert!(info.trap_exit);
        assert_eq!(info.status, Status::Waiting);

        let mine = process_info(me).unwrap();
        assert_eq!(mine.status, Status::Running);
        assert_eq!(
            (mine.links, mine.monitors, mine.trap_exit),
            (vec![subject], vec![subject], false)
        );

        ctx.unlink(subject);
        exit(subject, ExitReason::Kill);
        exit(watched, ExitReason::Kill);
    })
    .await;
}

/// Parked anywhere is waiting: in a timer, in a call, in a receive. Running is only while polled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_is_waiting_wherever_a_process_is_parked() {
    use std::time::Duration;
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        // Each tells the test it runs, then parks for good.
        let sleeper = spawn(move |_ctx| async move {
            send(me, "sleeper");
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let silent = spawn(move |mut ctx| async move {
            send(me, "silent");
            let mut held = Vec::new();
            loop {
                held.push(ctx.receive::<ferrotp::Request<(), ()>>().await);
            }
        });
        // Running until it reaches its await; parked, and so waiting, from then on.
        let assert_parked = |what: &str, pid| {
            let what = what.to_string();
            async move {
                let mut status = process_info(pid).unwrap().status;
                while status == Status::Running {
                    tokio::task::yield_now().await;
                    status = process_info(pid).unwrap().status;
                }
                for _ in 0..100 {
                    assert_eq!(process_info(pid).unwrap().status, Status::Waiting, "{what}");
                }
            }
        };
        for (what, pid) in [("sleeper", sleeper), ("silent", silent)] {
            ctx.receive_if(|s: &&str| *s == what).await;
            assert_parked(what, pid).await;
        }
        // Spawned only now: its request wakes `silent`.
        let caller = spawn(move |_ctx| async move {
            send(me, "caller");
            let _ = ferrotp::request_timeout::<(), ()>(silent, (), Duration::from_secs(3600)).await;
        });
        ctx.receive_if(|s: &&str| *s == "caller").await;
        assert_parked("caller", caller).await;
        // A process looking at itself is running.
        assert_eq!(process_info(me).unwrap().status, Status::Running);
        for pid in [sleeper, silent, caller] {
            exit(pid, ExitReason::Kill);
        }
    })
    .await;
}

/// The mailbox length is read at one instant, even while the process moves bursts of messages
/// from the shared queue to its own: it never counts a message twice, or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_length_is_a_true_snapshot_while_messages_move() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const BURST: usize = 200;
    const ROUNDS: usize = 40;
    // The subject takes the `u32`s of each burst and leaves the `u8`s, which pile up.
    let subject = spawn(|mut ctx| async move {
        loop {
            let driver: ferrotp::Pid = ctx.receive().await;
            for _ in 0..BURST {
                ctx.receive::<u32>().await;
            }
            send(driver, ());
        }
    });
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (started_d, finished_d) = (started.clone(), finished.clone());
    let driver = ferrotp::spawn_handle(move |mut ctx| async move {
        for _ in 0..ROUNDS {
            started_d.fetch_add(1, Ordering::SeqCst);
            for _ in 0..BURST {
                send(subject, 0_u8);
                send(subject, 0_u32);
            }
            send(subject, ctx.pid());
            ctx.receive::<()>().await;
            finished_d.fetch_add(1, Ordering::SeqCst);
        }
    });
    // Sample while the bursts move. At any instant the mailbox holds the `u8`s of every burst
    // sent so far (at least those of finished rounds, at most those of started ones) plus at most
    // one burst of `u32`s and the driver's pid.
    let mut samples = 0;
    while finished.load(Ordering::SeqCst) < ROUNDS {
        let low = finished.load(Ordering::SeqCst) * BURST;
        let Some(info) = process_info(subject) else {
            break;
        };
        let high = started.load(Ordering::SeqCst) * BURST + BURST + 1;
        assert!(
            (low..=high).contains(&info.mailbox_len),
            "mailbox length {} outside {low}..={high}",
            info.mailbox_len
        );
        samples += 1;
        tokio::task::yield_now().await;
    }
    driver.join().await.unwrap();
    assert!(samples > 0);
    assert_eq!(process_info(subject).unwrap().mailbox_len, ROUNDS * BURST);
    exit(subject, ExitReason::Kill);
}
