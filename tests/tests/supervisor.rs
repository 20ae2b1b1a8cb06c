//! Supervisors: strategies, restart types, intensity, order, shutdown, the run-time API.
//! Timing runs on tokio's paused clock.

use std::time::Duration;

use ferrotp::StartError;
use ferrotp::prelude::*;
use ferrotp::supervisor::{
    AutoShutdown, Child, ChildCounts, Restart, Shutdown, Supervisor, SupervisorError,
};
use ferrotp_tests::in_process;
use ferrotp_tests::workers::{Event, Setup, Worker, assert_quiet, events, next_event};

const SECOND: Duration = Duration::from_secs(1);

fn worker(id: &'static str, witness: Pid) -> Child {
    Child::server::<Worker>(id, Setup::new(id, witness))
}

/// Starts `spec` with workers `a`, `b` and `c` reporting to the test process, and waits until
/// all three have started.
async fn abc(ctx: &mut Context, spec: Supervisor) -> ferrotp::supervisor::SupervisorRef {
    let me = ctx.pid();
    let sup = spec
        .child(worker("a", me))
        .child(worker("b", me))
        .child(worker("c", me))
        .start()
        .await
        .unwrap();
    assert_eq!(
        events(ctx, 3).await,
        [
            Event::Started("a"),
            Event::Started("b"),
            Event::Started("c")
        ]
    );
    sup
}

/// Crashes child `id`, and checks that its `terminate` ran with the panic.
async fn crash(ctx: &mut Context, sup: &ferrotp::supervisor::SupervisorRef, id: &'static str) {
    let child = sup.child::<Worker>(id).await.unwrap();
    let _ = child.crash().await;
    assert_eq!(next_event(ctx).await, Event::crashed(id));
}

#[tokio::test(start_paused = true)]
async fn children_start_in_order_and_stop_in_reverse() {
    in_process(|mut ctx| async move {
        let sup = abc(&mut ctx, Supervisor::one_for_one()).await;
        sup.stop(ExitReason::Shutdown).await.unwrap();
        assert_eq!(
            events(&mut ctx, 3).await,
            [
                Event::Terminated("c", ExitReason::Shutdown),
                Event::Terminated("b", ExitReason::Shutdown),
                Event::Terminated("a", ExitReason::Shutdown),
            ]
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_crashed_child() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let sup = Supervisor::one_for_one()
            .intensity(5, SECOND)
            .child(worker("a", me))
            .child(worker("b", me))
            .start()
            .await
            .unwrap();
        events(&mut ctx, 2).await;
        let before = sup.child_pid("a".into()).await.unwrap();
        crash(&mut ctx, &sup, "a").await;
        assert_eq!(next_event(&mut ctx).await, Event::Started("a"));
        let after = sup.child_pid("a".into()).await.unwrap();
        assert_ne!(before, after, "a new process");
        assert_eq!(
            sup.child::<Worker>("a").await.unwrap().id().await,
            Ok("a".to_string())
        );
        assert_quiet(&ctx);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn one_for_all_restarts_everyone() {
    in_process(|mut ctx| async move {
        let sup = abc(&mut ctx, Supervisor::one_for_all().intensity(5, SECOND)).await;
        crash(&mut ctx, &sup, "b").await;
        assert_eq!(
            events(&mut ctx, 5).await,
            [
                Event::Terminated("c", ExitReason::Shutdown),
                Event::Terminated("a", ExitReason::Shutdown),
                Event::Started("a"),
                Event::Started("b"),
                Event::Started("c"),
            ]
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_child_and_those_after_it() {
    in_process(|mut ctx| async move {
        let sup = abc(&mut ctx, Supervisor::rest_for_one().intensity(5, SECOND)).await;
        crash(&mut ctx, &sup, "b").await;
        assert_eq!(
            events(&mut ctx, 3).await,
            [
                Event::Terminated("c", ExitReason::Shutdown),
                Event::Started("b"),
                Event::Started("c")
            ]
        );
        assert_quiet(&ctx);
    })
    .await;
}

/// Every strategy with every restart type: a child that crashes and one that exits normally.
#[tokio::test(start_paused = true)]
async fn restart_types_decide_after_crashes_and_normal_exits() {
    for strategy in [
        Supervisor::one_for_one,
        Supervisor::one_for_all,
        Supervisor::rest_for_one,
    ] {
        for restart in [Restart::Permanent, Restart::Transient, Restart::Temporary] {
            in_process(move |mut ctx| async move {
                let me = ctx.pid();
                let sup = strategy()
                    .intensity(10, SECOND)
                    .child(worker("x", me).restart(restart))
                    .start()
                    .await
                    .unwrap();
                events(&mut ctx, 1).await;

                crash(&mut ctx, &sup, "x").await;
                let restarted_after_crash = restart != Restart::Temporary;
                if restarted_after_crash {
                    assert_eq!(
                        next_event(&mut ctx).await,
                        Event::Started("x"),
                        "{restart:?}"
                    );
                }
                let counts = sup.count_children().await.unwrap();
                assert_eq!(
                    counts.specs,
                    usize::from(restarted_after_crash),
                    "{restart:?} specs after a crash"
                );

                if restarted_after_crash {
                    let child = sup.child::<Worker>("x").await.unwrap();
                    let _ = child.finish().await;
                    assert_eq!(
                        next_event(&mut ctx).await,
                        Event::Terminated("x", ExitReason::Normal)
                    );
                    if restart == Restart::Permanent {
                        assert_eq!(next_event(&mut ctx).await, Event::Started("x"));
                        assert_eq!(sup.count_children().await.unwrap().active, 1);
                    } else {
                        // A transient child's normal exit is not restarted; its spec stays.
                        let counts = sup.count_children().await.unwrap();
                        assert_eq!((counts.specs, counts.active), (1, 0));
                    }
                }
                sup.stop(ExitReason::Shutdown).await.unwrap();
            })
            .await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn exactly_max_restarts_in_the_window_are_tolerated_and_one_more_escalates() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let sup = Supervisor::one_for_one()
            .intensity(3, 5 * SECOND)
            .child(worker("x", me))
            .start()
            .await
            .unwrap();
        events(&mut ctx, 1).await;
        for _ in 0..3 {
            crash(&mut ctx, &sup, "x").await;
            assert_eq!(next_event(&mut ctx).await, Event::Started("x"));
            tokio::time::advance(SECOND).await;
        }
        // Four restarts within five seconds: one too many.
        let monitor = ctx.monitor(sup.pid());
        crash(&mut ctx, &sup, "x").await;
        let down: Down = ctx.receive_if(|d: &Down| d.monitor == monitor).await;
        assert_eq!(down.reason, ExitReason::MaxRestartIntensity);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn old_restarts_age_out_of_the_window() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let sup = Supervisor::one_for_one()
            .intensity(2, 5 * SECOND)
            .child(worker("x", me))
            .start()
            .await
            .unwrap();
        events(&mut ctx, 1).await;
        for _ in 0..10 {
            crash(&mut ctx, &sup, "x").await;
            assert_eq!(next_event(&mut ctx).await, Event::Started("x"));
            // Three seconds apart: never more than two restarts within five seconds.
            tokio::time::advance(3 * SECOND).await;
        }
        assert!(ferrotp::is_alive(sup.pid()));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn escalation_goes_up_a_three_level_tree() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let tree = Supervisor::one_for_one()
            .intensity(1, 60 * SECOND)
            .name("esc-top")
            .child(Child::supervisor(
                "middle",
                Supervisor::one_for_one()
                    .intensity(1, 60 * SECOND)
                    .child(Child::supervisor(
                        "bottom",
                        Supervisor::one_for_one()
                            .intensity(1, 60 * SECOND)
                            .child(worker("leaf", me)),
                    )),
            ));
        let top = tree.start().await.unwrap();
        events(&mut ctx, 1).await;
        let top_monitor = ctx.monitor(top.pid());
        let leaf_of = |top: ferrotp::supervisor::SupervisorRef| async move {
            let middle = top
                .child::<ferrotp::supervisor::SupervisorProcess>("middle")
                .await
                .unwrap();
            let bottom = middle
                .child::<ferrotp::supervisor::SupervisorProcess>("bottom")
                .await
                .unwrap();
            bottom.child::<Worker>("leaf").await.unwrap()
        };
        // Each supervisor tolerates one restart a minute, and a restarted supervisor starts with
        // a clean count. Leaf crashes 1-7 are each absorbed somewhere in the tree:
        //   1 bottom restarts the leaf        5 bottom restarts the leaf
        //   2 bottom gives up, middle         6 bottom gives up, middle restarts it
        //     restarts it                     7 bottom restarts the leaf
        //   3 bottom restarts the leaf
        //   4 bottom gives up, middle gives up, top restarts middle
        // and the 8th makes bottom, middle and top give up in turn.
        for crash in 1..=7 {
            let leaf = leaf_of(top).await;
            let _ = leaf.crash().await;
            assert_eq!(next_event(&mut ctx).await, Event::crashed("leaf"));
            assert_eq!(
                ctx.receive::<Event>().await,
                Event::Started("leaf"),
                "after crash {crash}"
            );
        }
        let leaf = leaf_of(top).await;
        let _ = leaf.crash().await;
        let down: Down = ctx.receive_if(|d: &Down| d.monitor == top_monitor).await;
        assert_eq!(down.reason, ExitReason::MaxRestartIntensity);
        assert_eq!(ferrotp::whereis("esc-top"), None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_ignores_shutdown_is_killed_after_its_timeout() {
    in_process(|mut ctx| async move {
        let stubborn = Child::process("stubborn", |mut ctx: Context| async move {
            ctx.trap_exit(true);
            loop {
                // Ignores the exit signal asking it to stop.
                let _ = ctx.receive::<Exit>().await;
            }
        })
        .shutdown(Shutdown::Timeout(2 * SECOND));
        let sup = Supervisor::one_for_one()
            .child(stubborn)
            .start()
            .await
            .unwrap();
        let pid = sup.child_pid("stubborn".into()).await.unwrap();
        let monitor = ctx.monitor(pid);
        let started = tokio::time::Instant::now();
        sup.stop(ExitReason::Shutdown).await.unwrap();
        assert_eq!(started.elapsed(), 2 * SECOND);
        let down: Down = ctx.receive_if(|d: &Down| d.monitor == monitor).await;
        assert_eq!(down.reason, ExitReason::Killed);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_terminate_within_the_timeout_completes_and_brutal_kill_skips_it() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let slow = Setup {
            slow_terminate: Some(SECOND),
            ..Setup::new("slow", me)
        };
        let sup = Supervisor::one_for_one()
            .child(Child::server::<Worker>("slow", slow).shutdown(Shutdown::Timeout(5 * SECOND)))
            .child(worker("brutal", me).shutdown(Shutdown::BrutalKill))
            .start()
            .await
            .unwrap();
        events(&mut ctx, 2).await;
        let started = tokio::time::Instant::now();
        sup.stop(ExitReason::Shutdown).await.unwrap();
        assert_eq!(started.elapsed(), SECOND);
        assert_eq!(
            next_event(&mut ctx).await,
            Event::Terminated("slow", ExitReason::Shutdown)
        );
        assert_quiet(&ctx);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_child_start_fails_the_supervisor_start_and_stops_the_others() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let broken = Setup {
            fail: Some("no config"),
            ..Setup::new("broken", me)
        };
        let result = Supervisor::one_for_one()
            .name("sup-failing-start")
            .child(worker("first", me))
            .child(Child::server::<Worker>("broken", broken))
            .child(worker("never", me))
            .start()
            .await;
        let Err(StartError::Init(SupervisorError::StartFailed { id, reason })) = result else {
            panic!("unexpected {result:?}");
        };
        assert_eq!(id, "broken");
        assert_eq!(reason, ExitReason::error("init failed: no config"));
        assert_eq!(
            events(&mut ctx, 2).await,
            [
                Event::Started("first"),
                Event::Terminated("first", ExitReason::Shutdown)
            ]
        );
        assert_eq!(ferrotp::whereis("sup-failing-start"), None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_run_time_api_manages_children() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let sup = Supervisor::one_for_one()
            .child(worker("a", me))
            .start()
            .await
            .unwrap();
        events(&mut ctx, 1).await;

        let b = sup.start_child(worker("b", me)).await.unwrap();
        assert_eq!(next_event(&mut ctx).await, Event::Started("b"));
        assert_eq!(
            sup.start_child(worker("b", me)).await,
            Err(CallError::Handler(SupervisorError::AlreadyPresent(
                "b".into()
            )))
        );

        let children = sup.which_children().await.unwrap();
        assert_eq!(
            children.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(children[1].pid, Some(b));
        assert_eq!(
            sup.count_children().await.unwrap(),
            sup.call::<ChildCounts>("count_children", ()).await.unwrap(),
            "also reachable by name"
        );

        assert_eq!(
            sup.delete_child("b".into()).await,
            Err(CallError::Handler(SupervisorError::Running("b".into())))
        );
        sup.terminate_child("b".into()).await.unwrap();
        assert_eq!(
            next_event(&mut ctx).await,
            Event::Terminated("b", ExitReason::Shutdown)
        );
        assert_eq!(
            sup.child_pid("b".into()).await,
            Err(CallError::Handler(SupervisorError::NotRunning("b".into())))
        );

        let b2 = sup.restart_child("b".into()).await.unwrap();
        assert_ne!(b2, b);
        assert_eq!(next_event(&mut ctx).await, Event::Started("b"));

        sup.terminate_child("b".into()).await.unwrap();
        next_event(&mut ctx).await;
        sup.delete_child("b".into()).await.unwrap();
        assert_eq!(
            sup.restart_child("b".into()).await,
            Err(CallError::Handler(SupervisorError::NotFound("b".into())))
        );
        assert_eq!(sup.count_children().await.unwrap().specs, 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_named_child_is_found_by_name_after_a_restart() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let sup = Supervisor::one_for_one()
            .intensity(5, SECOND)
            .child(worker("db", me).name("sup-named-db"))
            .start()
            .await
            .unwrap();
        events(&mut ctx, 1).await;
        let first = ServerRef::<Worker>::lookup("sup-named-db").unwrap();
        let _ = first.crash().await;
        assert_eq!(next_event(&mut ctx).await, Event::crashed("db"));
        assert_eq!(next_event(&mut ctx).await, Event::Started("db"));
        let second = ServerRef::<Worker>::lookup("sup-named-db").unwrap();
        assert_ne!(first, second);
        assert_eq!(second.id().await, Ok("db".to_string()));
        sup.stop(ExitReason::Shutdown).await.unwrap();
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn auto_shutdown_ends_the_supervisor_when_significant_children_are_done() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let sup = Supervisor::one_for_one()
            .auto_shutdown(AutoShutdown::AllSignificant)
            .child(worker("a", me).transient().significant())
            .child(worker("b", me).transient().significant())
            .start()
            .await
            .unwrap();
        events(&mut ctx, 2).await;
        let monitor = ctx.monitor(sup.pid());
        let _ = sup.child::<Worker>("a").await.unwrap().finish().await;
        next_event(&mut ctx).await;
        assert!(
            ferrotp::is_alive(sup.pid()),
            "one significant child is still running"
        );
        let _ = sup.child::<Worker>("b").await.unwrap().finish().await;
        next_event(&mut ctx).await;
        let down: Down = ctx.receive_if(|d: &Down| d.monitor == monitor).await;
        assert_eq!(down.reason, ExitReason::Shutdown);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_exits_when_its_parent_does() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let parent = spawn(move |mut ctx| async move {
            let sup = Supervisor::one_for_one()
                .child(worker("a", me))
                .start_link()
                .await
                .unwrap();
            let _ = tx.send(sup);
            ctx.receive::<()>().await;
            ExitReason::error("parent failed")
        });
        let sup = rx.await.unwrap();
        events(&mut ctx, 1).await;
        send(parent, ());
        assert_eq!(
            next_event(&mut ctx).await,
            Event::Terminated("a", ExitReason::Shutdown)
        );
        assert_eq!(wait(sup.pid()).await, ExitReason::error("parent failed"));
    })
    .await;
}
