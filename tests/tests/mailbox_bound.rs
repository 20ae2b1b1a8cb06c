//! Bounded mailboxes: each overflow policy for each way of sending, signals passing a full
//! mailbox, back-pressure (first come first served, woken by the owner, ended by its exit), and a
//! supervisor restarting or stopping a bounded child with senders waiting on it.

use std::{num::NonZeroUsize, sync::Arc, time::Duration};

use ferrotp::{
    Down, Exit, ExitReason, MailboxLimit, Message, Overflow, Pid, SendError, SpawnOpts, prelude::*,
    send, send_wait, spawn_opt, try_send,
};
use ferrotp_tests::{
    in_process,
    mailboxes::{Gated, info, limit, until},
};
use tokio::sync::Semaphore;

/// A process with a bounded mailbox that reads nothing until it gets a permit, then takes every
/// `u32` and reports them to `report`, in order, as one `Vec`.
fn reader(overflow: Overflow, capacity: usize, gate: Arc<Semaphore>, report: Pid) -> Pid {
    spawn_opt(
        SpawnOpts::new().mailbox(limit(capacity, overflow)),
        move |mut ctx| async move {
            gate.acquire().await.unwrap().forget();
            let mut got = Vec::new();
            while let Ok(n) = ctx.receive_timeout::<u32>(Duration::from_millis(10)).await {
                got.push(n);
            }
            send(report, got);
        },
    )
}

/// Lets the other tasks run until `condition` holds; fails the test (rather than hanging it) if
/// it never does.
/// Waits until `pid` has `n` senders waiting for room.
async fn waiting(pid: Pid, n: usize) {
    until("senders waiting", || info(pid).mailbox_waiting == n).await;
}

#[tokio::test(start_paused = true)]
async fn unbounded_is_the_default_and_reports_no_limit() {
    in_process(|_ctx| async move {
        let pid = ferrotp::spawn(|mut ctx| async move { ctx.receive::<()>().await });
        for n in 0..1000_u32 {
            assert_eq!(try_send(pid, n), Ok(()));
        }
        let info = info(pid);
        assert_eq!(info.mailbox_len, 1000);
        assert_eq!(info.mailbox_limit, None);
        assert_eq!(
            (
                info.mailbox_dropped,
                info.mailbox_refused,
                info.mailbox_waiting
            ),
            (0, 0, 0)
        );
        send(pid, ());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn refuse_hands_back_to_those_told_and_counts_what_send_loses() {
    in_process(|mut ctx| async move {
        let gate = Arc::new(Semaphore::new(0));
        let pid = reader(Overflow::Refuse, 2, gate.clone(), ctx.pid());
        assert_eq!(try_send(pid, 1_u32), Ok(()));
        assert_eq!(send_wait(pid, 2_u32).await, Ok(()));
        assert_eq!(try_send(pid, 3_u32), Err(SendError::Full(3)));
        assert_eq!(send_wait(pid, 4_u32).await, Err(SendError::Full(4)));
        send(pid, 5_u32); // cannot be told: dropped and counted
        let info = info(pid);
        assert_eq!(info.mailbox_len, 2);
        assert_eq!(info.mailbox_limit, Some(limit(2, Overflow::Refuse)));
        assert_eq!((info.mailbox_dropped, info.mailbox_refused), (1, 2));
        gate.add_permits(1);
        assert_eq!(ctx.receive::<Vec<u32>>().await, [1, 2]);
        // Gone: the message comes back as NoProc.
        ferrotp::wait(pid).await;
        assert_eq!(try_send(pid, 6_u32), Err(SendError::NoProc(6)));
        assert_eq!(send_wait(pid, 7_u32).await, Err(SendError::NoProc(7)));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn drop_newest_keeps_the_first_and_counts_the_rest() {
    in_process(|mut ctx| async move {
        let gate = Arc::new(Semaphore::new(0));
        let pid = reader(Overflow::DropNewest, 3, gate.clone(), ctx.pid());
        for n in 1..=10_u32 {
            send(pid, n);
        }
        // A sender that can be told gets its message back rather than losing it.
        assert_eq!(try_send(pid, 11_u32), Err(SendError::Full(11)));
        let info = info(pid);
        assert_eq!(
            (info.mailbox_len, info.mailbox_dropped, info.mailbox_refused),
            (3, 7, 1)
        );
        gate.add_permits(1);
        assert_eq!(ctx.receive::<Vec<u32>>().await, [1, 2, 3]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_keeps_the_last_and_counts_the_rest() {
    in_process(|mut ctx| async move {
        let gate = Arc::new(Semaphore::new(0));
        let pid = reader(Overflow::DropOldest, 3, gate.clone(), ctx.pid());
        for n in 1..=10_u32 {
            send(pid, n);
        }
        // Makes room too: the oldest goes.
        assert_eq!(try_send(pid, 11_u32), Ok(()));
        let info = info(pid);
        assert_eq!(
            (info.mailbox_len, info.mailbox_dropped, info.mailbox_refused),
            (3, 8, 0)
        );
        gate.add_permits(1);
        assert_eq!(ctx.receive::<Vec<u32>>().await, [9, 10, 11]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_never_drops_a_signal() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let gate = Arc::new(Semaphore::new(0));
        let opts = SpawnOpts::new().mailbox(limit(2, Overflow::DropOldest));
        let doomed = ferrotp::spawn(|mut ctx| async move { ctx.receive::<()>().await });
        let g = gate.clone();
        let pid = spawn_opt(opts, move |mut ctx| async move {
            ctx.trap_exit(true);
            ctx.monitor(doomed);
            send(me, "ready");
            g.acquire().await.unwrap().forget();
            let mut got = Vec::new();
            while let Ok(message) = ctx.receive_any_timeout(Duration::from_millis(10)).await {
                got.push(message);
            }
            send(me, got);
        });
        ctx.receive::<&str>().await;
        send(pid, 1_u32);
        ferrotp::exit(doomed, ExitReason::Kill); // a Down, queued second
        ferrotp::wait(doomed).await;
        for n in 2..=6_u32 {
            send(pid, n);
        }
        let info = info(pid);
        // The Down stays, over the capacity if need be; only messages make room.
        assert_eq!((info.mailbox_len, info.mailbox_dropped), (2, 5));
        gate.add_permits(1);
        let got: Vec<Message> = ctx.receive().await;
        assert_eq!(got.len(), 2);
        assert!(got[0].is::<Down>(), "the signal kept its place: {got:?}");
        assert_eq!(got[1].downcast_ref::<u32>(), Some(&6));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn signals_pass_a_full_mailbox_under_every_policy() {
    for overflow in [
        Overflow::Block,
        Overflow::Refuse,
        Overflow::DropNewest,
        Overflow::DropOldest,
    ] {
        in_process(move |mut ctx| async move {
            let me = ctx.pid();
            let gate = Arc::new(Semaphore::new(0));
            let g = gate.clone();
            let watched = ferrotp::spawn(|mut ctx| async move { ctx.receive::<()>().await });
            let opts = SpawnOpts::new().mailbox(limit(1, overflow));
            let pid = spawn_opt(opts, move |mut ctx| async move {
                ctx.trap_exit(true);
                ctx.monitor(watched);
                send(me, "ready");
                g.acquire().await.unwrap().forget();
                let exit = ctx.receive::<Exit>().await;
                let down = ctx.receive::<Down>().await;
                send(me, (exit.reason, down.reason));
            });
            ctx.receive::<&str>().await;
            send(pid, 0_u8); // full now, with a message it will never take
            let (tried, dropped) = match overflow {
                Overflow::DropOldest => (Ok(()), 1), // room made by dropping the 0
                _ => (Err(SendError::Full(1)), 0),
            };
            assert_eq!(try_send(pid, 1_u8), tried, "{overflow:?}");

            // An exit signal (trapped: a message) and a `Down`, both past the bound.
            ferrotp::exit(pid, ExitReason::Error("signal".into()));
            ferrotp::exit(watched, ExitReason::Kill);
            ferrotp::wait(watched).await;
            let full = info(pid);
            assert_eq!(
                (full.mailbox_len, full.mailbox_dropped),
                (3, dropped),
                "{overflow:?}"
            );

            gate.add_permits(1);
            let reasons = ctx.receive::<(ExitReason, ExitReason)>().await;
            assert_eq!(
                reasons,
                (ExitReason::Error("signal".into()), ExitReason::Killed),
                "{overflow:?}"
            );
        })
        .await;
    }
}

#[tokio::test(start_paused = true)]
async fn block_serves_waiting_senders_first_come_first_served() {
    in_process(|mut ctx| async move {
        let gate = Arc::new(Semaphore::new(0));
        let pid = reader(Overflow::Block, 1, gate.clone(), ctx.pid());
        send_wait(pid, 0_u32).await.unwrap(); // full now
        let mut senders = Vec::new();
        for n in 1..=3_u32 {
            senders.push(tokio::spawn(send_wait(pid, n)));
            waiting(pid, n as usize).await;
        }
        // Newcomers do not overtake those waiting: refused, or dropped and counted.
        assert_eq!(try_send(pid, 10_u32), Err(SendError::Full(10)));
        send(pid, 11_u32);
        let info = info(pid);
        assert_eq!(
            (
                info.mailbox_len,
                info.mailbox_waiting,
                info.mailbox_dropped,
                info.mailbox_refused
            ),
            (1, 3, 1, 1)
        );
        gate.add_permits(1);
        for sender in senders {
            assert_eq!(sender.await.unwrap(), Ok(()));
        }
        assert_eq!(ctx.receive::<Vec<u32>>().await, [0, 1, 2, 3]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_sender_that_gives_up_passes_its_turn_on() {
    in_process(|mut ctx| async move {
        let gate = Arc::new(Semaphore::new(0));
        let pid = reader(Overflow::Block, 1, gate.clone(), ctx.pid());
        send(pid, 0_u32);
        let first = tokio::spawn(send_wait(pid, 1_u32));
        waiting(pid, 1).await;
        let second = tokio::spawn(send_wait(pid, 2_u32));
        waiting(pid, 2).await;
        // The first in line gives up (its future is dropped): the message goes with it.
        first.abort();
        let _ = first.await;
        waiting(pid, 1).await;
        gate.add_permits(1);
        assert_eq!(second.await.unwrap(), Ok(()));
        assert_eq!(ctx.receive::<Vec<u32>>().await, [0, 2]);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn waiting_senders_get_their_message_back_when_the_process_exits() {
    in_process(|_ctx| async move {
        let pid = spawn_opt(
            SpawnOpts::new().mailbox(limit(1, Overflow::Block)),
            |mut ctx| async move { ctx.receive::<()>().await },
        );
        send(pid, 0_u32);
        let senders: Vec<_> = (1..=3_u32)
            .map(|n| tokio::spawn(send_wait(pid, n)))
            .collect();
        waiting(pid, 3).await;
        ferrotp::exit(pid, ExitReason::Kill);
        for (n, sender) in (1..=3_u32).zip(senders) {
            assert_eq!(sender.await.unwrap(), Err(SendError::NoProc(n)));
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_process_waiting_on_its_own_full_mailbox_is_refused_at_once() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let pid = spawn_opt(
            SpawnOpts::new().mailbox(limit(1, Overflow::Block)),
            move |mut ctx| async move {
                let own = ctx.pid();
                send(own, 0_u32);
                send(me, send_wait(own, 1_u32).await);
                ctx.receive::<u32>().await;
            },
        );
        assert_eq!(
            ctx.receive::<Result<(), SendError<u32>>>().await,
            Err(SendError::Full(1))
        );
        assert_eq!(ferrotp::wait(pid).await, ExitReason::Normal);
    })
    .await;
}

/// Casts `hold` and waits until the server is inside it, its mailbox empty.
async fn hold(server: &ServerRef<Gated>) {
    server.cast_hold();
    let pid = server.pid();
    until("the server holds", || {
        let info = info(pid);
        info.handled != 0 && info.mailbox_len == 0
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn calls_to_a_full_refusing_server_fail_at_once_and_casts_are_counted() {
    for overflow in [Overflow::Refuse, Overflow::DropNewest] {
        let gate = Arc::new(Semaphore::new(0));
        let server = Gated::start(gate.clone())
            .mailbox(limit(1, overflow))
            .await
            .unwrap();
        let pid = server.pid();
        hold(&server).await;
        server.cast_echo(1); // full now
        assert_eq!(
            server.echo(2).await,
            Err(CallError::MailboxFull(pid)),
            "{overflow:?}"
        );
        server.cast_echo(3); // its sender cannot be told: dropped and counted
        let full = info(pid);
        assert_eq!(
            (full.mailbox_dropped, full.mailbox_refused),
            (1, 1),
            "{overflow:?}"
        );
        gate.add_permits(1);
        until("the mailbox drains", || info(pid).mailbox_len == 0).await;
        assert_eq!(server.echo(4).await, Ok(4));
    }
}

#[tokio::test(start_paused = true)]
async fn under_drop_oldest_a_call_makes_room_but_is_never_dropped() {
    let gate = Arc::new(Semaphore::new(0));
    let server = Gated::start(gate.clone())
        .mailbox(limit(1, Overflow::DropOldest))
        .await
        .unwrap();
    let pid = server.pid();
    hold(&server).await;
    server.cast_echo(1); // full now
    let call = tokio::spawn(async move { server.echo(2).await });
    until("the cast is dropped", || info(pid).mailbox_dropped != 0).await;
    assert_eq!(info(pid).mailbox_len, 1, "the call took the cast's place");
    // Only a call is queued now: nothing may make room for another, nor for a cast.
    assert_eq!(server.echo(3).await, Err(CallError::MailboxFull(pid)));
    server.cast_echo(4);
    let info = info(pid);
    assert_eq!(
        (info.mailbox_len, info.mailbox_dropped, info.mailbox_refused),
        (1, 2, 1)
    );
    gate.add_permits(1);
    assert_eq!(call.await.unwrap(), Ok(2));
}

#[tokio::test(start_paused = true)]
async fn under_block_a_call_waits_for_room_within_its_timeout() {
    let gate = Arc::new(Semaphore::new(0));
    let server = Gated::start(gate.clone())
        .mailbox(limit(1, Overflow::Block))
        .await
        .unwrap();
    let pid = server.pid();
    hold(&server).await;
    server.cast_echo(1); // full now
    let call = tokio::spawn(async move { server.echo(2).await });
    waiting(pid, 1).await;
    // One that gives up waiting times out, and leaves the line.
    let timeout = Duration::from_secs(1);
    assert_eq!(
        server.echo_timeout(3, timeout).await,
        Err(CallError::Timeout { pid, timeout })
    );
    waiting(pid, 1).await;
    // A cast cannot wait: dropped and counted.
    server.cast_echo(4);
    assert_eq!(info(pid).mailbox_dropped, 1);
    gate.add_permits(1);
    assert_eq!(call.await.unwrap(), Ok(2));
    let info = info(pid);
    // Waiting is not being refused.
    assert_eq!((info.mailbox_waiting, info.mailbox_refused), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_stop_passes_a_full_mailbox_and_waiting_callers_learn_the_exit() {
    let gate = Arc::new(Semaphore::new(0));
    let server = Gated::start(gate.clone())
        .mailbox(limit(1, Overflow::Block))
        .await
        .unwrap();
    let pid = server.pid();
    hold(&server).await;
    server.cast_echo(1); // full now
    let callers: Vec<_> = (2..=4_u32)
        .map(|n| tokio::spawn(async move { server.echo(n).await }))
        .collect();
    waiting(pid, 3).await;
    let stop = tokio::spawn(async move { server.stop(ExitReason::Shutdown).await });
    // The stop is queued past the bound, behind the cast and ahead of the waiting callers.
    until("the stop is queued", || info(pid).mailbox_len == 2).await;
    gate.add_permits(1);
    assert_eq!(stop.await.unwrap(), Ok(()));
    for caller in callers {
        assert_eq!(
            caller.await.unwrap(),
            Err(CallError::Exited {
                pid,
                reason: ExitReason::Shutdown
            })
        );
    }
}

/// A supervisor with one bounded `Gated` child, named `name`.
async fn supervised(name: &str, gate: &Arc<Semaphore>) -> ferrotp::supervisor::SupervisorRef {
    Supervisor::one_for_one()
        .child(
            Child::server::<Gated>("gated", gate.clone())
                .name(name)
                .mailbox(limit(1, Overflow::Block)),
        )
        .start()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_restart_under_back_pressure_fails_the_waiting_and_serves_the_next() {
    restart_under_back_pressure("gated-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_back_pressure_on_threads() {
    for round in 0..20 {
        let name = format!("gated-restart-{round}");
        tokio::time::timeout(Duration::from_secs(30), restart_under_back_pressure(&name))
            .await
            .expect("the restart hung");
    }
}

/// A supervised bounded server dies with callers and a sender waiting on its full mailbox.
async fn restart_under_back_pressure(name: &str) {
    let gate = Arc::new(Semaphore::new(0));
    let sup = supervised(name, &gate).await;
    let named = ServerRef::<Gated>::named(name);
    let first = named.lookup().unwrap();
    let pid = first.pid();
    assert_eq!(info(pid).mailbox_limit, Some(limit(1, Overflow::Block)));
    hold(&first).await;
    first.cast_echo(1); // full now
    let callers: Vec<_> = (2..=3_u32)
        .map(|n| tokio::spawn(async move { first.echo(n).await }))
        .collect();
    let sender = tokio::spawn(send_wait(pid, 9_u32));
    waiting(pid, 3).await;

    // The child dies with senders waiting on its full mailbox: none hangs.
    ferrotp::exit(pid, ExitReason::Kill);
    // A call by name made now waits for the restart and reaches the new child.
    let by_name = tokio::spawn(async move { named.echo(5).await });
    for caller in callers {
        assert_eq!(
            caller.await.unwrap(),
            Err(CallError::Exited {
                pid,
                reason: ExitReason::Killed
            })
        );
    }
    assert_eq!(sender.await.unwrap(), Err(SendError::NoProc(9)));
    assert_eq!(by_name.await.unwrap(), Ok(5));

    // The supervisor was never held up, and the new child is bounded too.
    let children = sup.which_children().await.unwrap();
    let second = children[0].pid.unwrap();
    assert_ne!(second, pid);
    assert_eq!(info(second).mailbox_limit, Some(limit(1, Overflow::Block)));
    assert_eq!(sup.stop(ExitReason::Shutdown).await, Ok(()));
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_stops_a_child_whose_full_mailbox_has_senders_waiting() {
    let gate = Arc::new(Semaphore::new(0));
    let sup = supervised("gated-stop", &gate).await;
    let child = ServerRef::<Gated>::lookup("gated-stop").unwrap();
    let pid = child.pid();
    hold(&child).await;
    child.cast_echo(1); // full now
    let callers: Vec<_> = (2..=4_u32)
        .map(|n| tokio::spawn(async move { child.echo(n).await }))
        .collect();
    waiting(pid, 3).await;

    let started = tokio::time::Instant::now();
    let stop = tokio::spawn(async move { sup.stop(ExitReason::Shutdown).await });
    // The supervisor's stop request passes the full mailbox...
    until("the stop is queued", || info(pid).mailbox_len == 2).await;
    // ...and is taken as soon as the handler before it returns: no shutdown timeout, no kill.
    gate.add_permits(1);
    assert_eq!(stop.await.unwrap(), Ok(()));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(ferrotp::wait(pid).await, ExitReason::Shutdown);
    for caller in callers {
        assert!(matches!(
            caller.await.unwrap(),
            Err(CallError::Exited {
                reason: ExitReason::Shutdown,
                ..
            })
        ));
    }
}

// The same races on real threads, repeated.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_senders_never_hang_when_the_process_exits_concurrently() {
    for round in 0..200_u32 {
        let pid = spawn_opt(
            SpawnOpts::new().mailbox(limit(2, Overflow::Block)),
            move |mut ctx| async move {
                // Takes a few, then dies while others wait or arrive.
                for _ in 0..(round % 5) {
                    ctx.receive::<u32>().await;
                }
                Err::<(), _>("gone")
            },
        );
        let senders: Vec<_> = (0..8_u32)
            .map(|n| tokio::spawn(send_wait(pid, n)))
            .collect();
        for sender in senders {
            let sent = tokio::time::timeout(Duration::from_secs(10), sender)
                .await
                .expect("a waiting sender hung")
                .unwrap();
            assert!(
                matches!(sent, Ok(()) | Err(SendError::NoProc(_))),
                "{sent:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_pressure_loses_nothing_and_keeps_each_senders_order() {
    for _ in 0..20 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pid = spawn_opt(
            SpawnOpts::new().mailbox(limit(3, Overflow::Block)),
            move |mut ctx| async move {
                let mut last = [None::<u32>; 4];
                for _ in 0..4 * 200 {
                    let (sender, n) = ctx.receive::<(usize, u32)>().await;
                    assert!(
                        last[sender].is_none_or(|last| last + 1 == n),
                        "out of order"
                    );
                    last[sender] = Some(n);
                }
                let _ = tx.send(last);
            },
        );
        let senders: Vec<_> = (0..4_usize)
            .map(|sender| {
                tokio::spawn(async move {
                    for n in 0..200_u32 {
                        send_wait(pid, (sender, n)).await.unwrap();
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        let last = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("the reader hung")
            .unwrap();
        assert_eq!(last, [Some(199); 4]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_counts_exactly_under_concurrent_senders() {
    for _ in 0..50 {
        let gate = Arc::new(Semaphore::new(0));
        let g = gate.clone();
        let pid = spawn_opt(
            SpawnOpts::new().mailbox(limit(5, Overflow::DropOldest)),
            move |_ctx| async move {
                g.acquire().await.unwrap().forget();
            },
        );
        let senders: Vec<_> = (0..4_u32)
            .map(|_| {
                tokio::spawn(async move {
                    for n in 0..250_u32 {
                        if n % 2 == 0 {
                            send(pid, n);
                        } else {
                            assert_eq!(try_send(pid, n), Ok(()));
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.unwrap();
        }
        let info = info(pid);
        assert_eq!(
            (info.mailbox_len, info.mailbox_dropped, info.mailbox_refused),
            (5, 1000 - 5, 0)
        );
        gate.add_permits(1);
        ferrotp::wait(pid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_senders_are_served_in_order_on_threads() {
    for _ in 0..20 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gate = Arc::new(Semaphore::new(0));
        let g = gate.clone();
        let pid = spawn_opt(
            SpawnOpts::new().mailbox(limit(1, Overflow::Block)),
            move |mut ctx| async move {
                g.acquire().await.unwrap().forget();
                let mut got = Vec::new();
                for _ in 0..6 {
                    got.push(ctx.receive::<u32>().await);
                }
                let _ = tx.send(got);
            },
        );
        send(pid, 0_u32);
        let mut senders = Vec::new();
        for n in 1..=5_u32 {
            senders.push(tokio::spawn(send_wait(pid, n)));
            waiting(pid, n as usize).await;
        }
        gate.add_permits(1);
        for sender in senders {
            assert_eq!(sender.await.unwrap(), Ok(()));
        }
        assert_eq!(rx.await.unwrap(), [0, 1, 2, 3, 4, 5]);
    }
}

/// A server with a background turn, to see its ticks pass a full mailbox.
struct Sweeper {
    gate: Arc<Semaphore>,
    sweeps: u32,
}

#[gen_server]
impl Sweeper {
    async fn init(gate: Arc<Semaphore>) -> Self {
        Sweeper { gate, sweeps: 0 }
    }

    #[install("hold")]
    async fn hold(&mut self) {
        self.gate.acquire().await.unwrap().forget();
    }

    #[install("sweeps")]
    async fn sweeps(&mut self) -> u32 {
        self.sweeps
    }

    #[background(every = "1s")]
    async fn sweep(&mut self) {
        self.sweeps += 1;
    }
}

#[tokio::test(start_paused = true)]
async fn a_background_tick_passes_a_full_mailbox() {
    let gate = Arc::new(Semaphore::new(0));
    let server = Sweeper::start(gate.clone())
        .mailbox(limit(1, Overflow::Refuse))
        .await
        .unwrap();
    let pid = server.pid();
    server.cast_hold();
    until("the server holds", || {
        let info = info(pid);
        info.handled != 0 && info.mailbox_len == 0
    })
    .await;
    server.cast_sweeps(); // full now
    // A turn comes due while the mailbox is full: it is queued past the bound, not dropped.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let full = info(pid);
    assert_eq!((full.mailbox_len, full.mailbox_dropped), (2, 0));
    gate.add_permits(1);
    until("the mailbox drains", || info(pid).mailbox_len == 0).await;
    assert_eq!(server.sweeps().await, Ok(1));
}

#[tokio::test(start_paused = true)]
async fn messages_a_selective_receive_left_aside_count_toward_the_capacity() {
    let pid = spawn_opt(
        SpawnOpts::new().mailbox(limit(2, Overflow::Refuse)),
        |mut ctx| async move {
            ctx.receive::<&str>().await;
        },
    );
    send(pid, 1_u32);
    send(pid, 2_u32);
    // The process looks at both, takes neither, and waits for a `&str` (on this one thread, a
    // yield lets it run until it parks).
    tokio::task::yield_now().await;
    until("the process waits", || {
        info(pid).status == ferrotp::Status::Waiting
    })
    .await;
    assert_eq!(try_send(pid, 3_u32), Err(SendError::Full(3)));
    assert_eq!(info(pid).mailbox_len, 2);
    // Signals still pass.
    ferrotp::exit(pid, ExitReason::Kill);
    assert_eq!(ferrotp::wait(pid).await, ExitReason::Killed);
}

#[tokio::test(start_paused = true)]
async fn the_largest_capacity_behaves_as_unbounded_and_still_reports() {
    let huge = MailboxLimit::new(NonZeroUsize::MAX, Overflow::Refuse);
    let pid = spawn_opt(SpawnOpts::new().mailbox(huge), |mut ctx| async move {
        ctx.receive::<()>().await;
    });
    for n in 0..1000_u32 {
        assert_eq!(try_send(pid, n), Ok(()));
    }
    let info = info(pid);
    assert_eq!(info.mailbox_len, 1000);
    assert_eq!(info.mailbox_limit, Some(huge));
    assert_eq!((info.mailbox_dropped, info.mailbox_refused), (0, 0));
    send(pid, ());
    ferrotp::wait(pid).await;
}
