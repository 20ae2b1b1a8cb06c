//! Links, monitors and exit signals, with Erlang's semantics.

use ferrotp::{
    Down, Exit, ExitReason, NoProc, Pid, exit, is_alive, send, spawn, spawn_handle, wait,
};
use ferrotp_tests::in_process;

/// A process that waits for a `()` and then exits normally.
fn idle() -> Pid {
    spawn(|mut ctx| async move {
        ctx.receive::<()>().await;
    })
}

#[tokio::test]
async fn a_panic_reaches_a_trapping_linked_process_as_an_exit_message() {
    let (crasher, exit_message) = in_process(|mut ctx| async move {
        ctx.trap_exit(true);
        let crasher = ctx.spawn_link(|_| async { panic!("kaboom") });
        (crasher, ctx.receive::<Exit>().await)
    })
    .await;
    assert_eq!(
        exit_message,
        Exit {
            from: crasher,
            reason: ExitReason::Panic("kaboom".into())
        }
    );
}

#[tokio::test]
async fn a_linked_process_that_does_not_trap_dies_with_the_same_reason() {
    let parent = spawn_handle(|mut ctx| async move {
        ctx.spawn_link(|_| async { Err::<(), _>("bad config") });
        ctx.receive::<()>().await;
    });
    assert_eq!(
        parent.join().await,
        Err(ExitReason::Error("bad config".into()))
    );
}

#[tokio::test]
async fn exit_signals_travel_along_a_chain_of_links() {
    // root (trapping) — middle — leaf; the leaf crashes.
    let (middle, exit_message) = in_process(|mut ctx| async move {
        ctx.trap_exit(true);
        let middle = ctx.spawn_link(|mut ctx| async move {
            ctx.spawn_link(|_| async { panic!("leaf") });
            ctx.receive::<()>().await;
        });
        (middle, ctx.receive::<Exit>().await)
    })
    .await;
    assert_eq!(
        exit_message,
        Exit {
            from: middle,
            reason: ExitReason::Panic("leaf".into())
        }
    );
}

#[tokio::test]
async fn a_normal_exit_does_not_kill_linked_processes() {
    let got = in_process(|mut ctx| async move {
        let watcher = ctx.spawn_link(|mut ctx| async move {
            let child = ctx.spawn_link(|_| async {});
            let down = ctx.monitor(child);
            let _: Down = ctx.receive_if(|d: &Down| d.monitor == down).await;
            ctx.receive::<u8>().await;
        });
        send(watcher, 9_u8);
        ctx.trap_exit(true);
        ctx.receive::<Exit>().await
    })
    .await;
    assert_eq!(got.reason, ExitReason::Normal);
}

#[tokio::test]
async fn a_trapping_process_sees_normal_exits_of_linked_processes() {
    let (child, got) = in_process(|mut ctx| async move {
        ctx.trap_exit(true);
        let child = ctx.spawn_link(|_| async {});
        (child, ctx.receive::<Exit>().await)
    })
    .await;
    assert_eq!(
        got,
        Exit {
            from: child,
            reason: ExitReason::Normal
        }
    );
}

#[tokio::test]
async fn kill_cannot_be_trapped_and_links_see_killed() {
    let (victim, got) = in_process(|mut ctx| async move {
        ctx.trap_exit(true);
        let victim = ctx.spawn_link(|mut ctx| async move {
            ctx.trap_exit(true);
            ctx.receive::<()>().await;
        });
        exit(victim, ExitReason::Kill);
        (victim, ctx.receive::<Exit>().await)
    })
    .await;
    assert_eq!(
        got,
        Exit {
            from: victim,
            reason: ExitReason::Killed
        }
    );
    assert!(!is_alive(victim));
}

#[tokio::test]
async fn exit_delivers_a_message_to_a_trapping_process_and_kills_one_that_does_not() {
    let (ready, trapping) = tokio::sync::oneshot::channel();
    let trapper = spawn_handle(|mut ctx| async move {
        ctx.trap_exit(true);
        ready.send(()).unwrap();
        ctx.receive::<Exit>().await
    });
    trapping.await.unwrap();
    exit(trapper.pid(), ExitReason::Shutdown);
    assert_eq!(
        trapper.join().await,
        Ok(Exit {
            from: Pid::ROOT,
            reason: ExitReason::Shutdown
        })
    );

    let plain = idle();
    exit(plain, ExitReason::Shutdown);
    assert_eq!(wait(plain).await, ExitReason::Shutdown);
}

#[tokio::test]
async fn exit_with_normal_is_ignored_unless_sent_to_oneself() {
    let survivor = spawn_handle(|mut ctx| async move { ctx.receive::<u8>().await });
    exit(survivor.pid(), ExitReason::Normal);
    send(survivor.pid(), 3_u8);
    assert_eq!(survivor.join().await, Ok(3));

    let quitter = spawn_handle(|mut ctx| async move {
        exit(ctx.pid(), ExitReason::Normal);
        ctx.receive::<()>().await; // the exit takes effect at this suspension point
    });
    assert_eq!(quitter.join().await, Err(ExitReason::Normal));
}

#[tokio::test]
async fn linking_to_a_dead_process_fails_with_noproc() {
    let dead = spawn(|_| async {});
    wait(dead).await;
    let (plain, trapping) = in_process(move |mut ctx| async move {
        let plain = ctx.link(dead);
        ctx.trap_exit(true);
        let trapping = ctx.link(dead);
        let message = ctx.receive::<Exit>().await;
        (plain, (trapping, message))
    })
    .await;
    assert_eq!(plain, Err(NoProc(dead)));
    assert_eq!(
        trapping,
        (
            Err(NoProc(dead)),
            Exit {
                from: dead,
                reason: ExitReason::NoProc
            }
        )
    );
}

#[tokio::test]
async fn link_and_unlink_after_spawn() {
    let got = in_process(|mut ctx| async move {
        ctx.trap_exit(true);
        let (a, b) = (idle(), idle());
        ctx.link(a).unwrap();
        ctx.link(b).unwrap();
        ctx.link(b).unwrap(); // idempotent
        ctx.link(ctx.pid()).unwrap(); // linking to oneself does nothing
        ctx.unlink(a);
        let links = ferrotp::process_info(ctx.pid()).unwrap().links;
        exit(a, ExitReason::Shutdown);
        exit(b, ExitReason::Shutdown);
        let only = ctx.receive::<Exit>().await;
        let none = ctx.receive_timeout::<Exit>(std::time::Duration::ZERO).await;
        (
            links == vec![b],
            only.from == b,
            none.is_err(),
            wait(a).await,
        )
    })
    .await;
    assert_eq!(got, (true, true, true, ExitReason::Shutdown));
}

#[tokio::test]
async fn a_monitor_delivers_exactly_one_down() {
    let got = in_process(|mut ctx| async move {
        let watched = idle();
        let first = ctx.monitor(watched);
        let second = ctx.monitor(watched);
        exit(watched, ExitReason::Shutdown);
        let mut downs = vec![ctx.receive::<Down>().await, ctx.receive::<Down>().await];
        downs.sort_by_key(|d| d.monitor);
        let extra = ctx.receive_timeout::<Down>(std::time::Duration::ZERO).await;
        (watched, [first, second], downs, extra.is_err())
    })
    .await;
    let (watched, refs, downs, no_more) = got;
    assert!(no_more);
    for (monitor, down) in refs.into_iter().zip(downs) {
        assert_eq!(
            down,
            Down {
                monitor,
                pid: watched,
                reason: ExitReason::Shutdown
            }
        );
    }
}

#[tokio::test]
async fn monitoring_a_dead_pid_delivers_down_noproc_at_once() {
    let dead = spawn(|_| async {});
    wait(dead).await;
    let (monitor, down) = in_process(move |mut ctx| async move {
        let monitor = ctx.monitor(dead);
        (
            monitor,
            ctx.receive_timeout::<Down>(std::time::Duration::ZERO).await,
        )
    })
    .await;
    assert_eq!(
        down,
        Ok(Down {
            monitor,
            pid: dead,
            reason: ExitReason::NoProc
        })
    );
}

#[tokio::test]
async fn demonitor_stops_the_down() {
    let got = in_process(|mut ctx| async move {
        let watched = idle();
        let monitor = ctx.monitor(watched);
        let was_active = ctx.demonitor(monitor);
        send(watched, ());
        wait(watched).await;
        let down = ctx.receive_timeout::<Down>(std::time::Duration::ZERO).await;
        (was_active, down.is_err(), ctx.demonitor(monitor))
    })
    .await;
    assert_eq!(got, (true, true, false));
}

#[tokio::test]
async fn demonitor_flushes_a_down_already_delivered() {
    let got = in_process(|mut ctx| async move {
        let watched = idle();
        let monitor = ctx.monitor(watched);
        send(watched, ());
        wait(watched).await; // the Down is now in our mailbox
        let queued = ctx.mailbox_len();
        ctx.demonitor(monitor);
        (queued, ctx.mailbox_len())
    })
    .await;
    assert_eq!(got, (1, 0));
}

#[tokio::test]
async fn spawn_monitor_watches_from_the_first_instant() {
    let got = in_process(|mut ctx| async move {
        let (pid, monitor) = ctx.spawn_monitor(|_| async { panic!("at once") });
        (pid, monitor, ctx.receive::<Down>().await)
    })
    .await;
    let (pid, monitor, down) = got;
    assert_eq!(
        down,
        Down {
            monitor,
            pid,
            reason: ExitReason::Panic("at once".into())
        }
    );
}

#[tokio::test]
async fn a_monitor_held_by_an_exited_process_is_removed() {
    let watched = idle();
    let watcher = spawn(move |ctx| async move {
        ctx.monitor(watched);
    });
    wait(watcher).await;
    let info = ferrotp::process_info(watched).unwrap();
    assert!(info.monitored_by.is_empty(), "{info:?}");
    send(watched, ());
    wait(watched).await;
}
