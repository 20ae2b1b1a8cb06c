//! A gen_server's life: init (and its failures), names, links, info messages, terminate.

use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::supervisor::{Child, Supervisor, SupervisorProcess};
use ferrotp::{StartError, whereis};
use ferrotp_tests::in_process;

/// What a `Lab` tells its witness.
#[derive(Debug, PartialEq)]
enum Report {
    Terminated(ExitReason),
    Info(String),
    Exit(Pid, ExitReason),
    Down(Pid, ExitReason),
}

#[derive(Debug)]
struct Config {
    witness: Pid,
    trap_exits: bool,
    fail: Option<&'static str>,
}

struct Lab {
    witness: Pid,
}

struct Tick(&'static str);

#[gen_server]
impl Lab {
    async fn init(config: Config, ctx: &mut Context) -> Result<Self, String> {
        if let Some(why) = config.fail {
            return Err(why.to_string());
        }
        ctx.trap_exit(config.trap_exits);
        Ok(Lab {
            witness: config.witness,
        })
    }

    async fn terminate(&mut self, reason: &ExitReason) {
        send(self.witness, Report::Terminated(reason.clone()));
    }

    #[install("link", local)]
    async fn link_to(&mut self, pid: Pid, ctx: &mut Context) -> bool {
        ctx.link(pid).is_ok()
    }

    #[install("monitor", local)]
    async fn watch(&mut self, pid: Pid, ctx: &mut Context) {
        ctx.monitor(pid);
    }

    #[install("sync")]
    async fn sync(&mut self) {}

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("lab accident")
    }

    #[info]
    async fn on_tick(&mut self, tick: Tick) {
        send(self.witness, Report::Info(tick.0.to_string()));
    }

    #[info]
    async fn on_exit(&mut self, exit: Exit) {
        send(self.witness, Report::Exit(exit.from, exit.reason));
    }

    #[info]
    async fn on_down(&mut self, down: Down) -> Reply<()> {
        send(self.witness, Report::Down(down.pid, down.reason.clone()));
        if down.reason == ExitReason::Shutdown {
            Reply::Stop(ExitReason::Shutdown)
        } else {
            Reply::NoReply
        }
    }
}

fn config(witness: Pid) -> Config {
    Config {
        witness,
        trap_exits: false,
        fail: None,
    }
}

#[tokio::test]
async fn init_errors_reach_the_starter_and_free_the_name() {
    in_process(|ctx| async move {
        let failing = Config {
            fail: Some("no database"),
            ..config(ctx.pid())
        };
        let result = Lab::start(failing).name("lab-init-fails").await;
        assert_eq!(
            result.unwrap_err(),
            StartError::Init("no database".to_string())
        );
        assert_eq!(whereis("lab-init-fails"), None);
        let lab = Lab::start(config(ctx.pid()))
            .name("lab-init-fails")
            .await
            .unwrap();
        assert_eq!(whereis("lab-init-fails"), Some(lab.pid()));
    })
    .await;
}

#[tokio::test]
async fn a_failed_start_link_does_not_take_the_starter_down() {
    let survived = in_process(|ctx| async move {
        let failing = Config {
            fail: Some("nope"),
            ..config(ctx.pid())
        };
        let result = Lab::start_link(failing).await;
        matches!(result, Err(StartError::Init(_)))
    })
    .await;
    assert!(survived);
}

#[tokio::test]
async fn start_link_needs_a_process() {
    let result = Lab::start_link(config(Pid::ROOT)).await;
    assert!(matches!(result, Err(StartError::NotInProcess)));
}

#[tokio::test]
async fn an_init_that_panics_is_reported_as_an_exit() {
    struct Fragile;

    #[gen_server]
    impl Fragile {
        async fn init(_: ()) -> Self {
            panic!("init exploded")
        }
    }

    let result = Fragile::start(()).await;
    assert_eq!(
        result.unwrap_err(),
        StartError::Exited(ExitReason::Panic("init exploded".into()))
    );
}

#[tokio::test]
async fn terminate_runs_on_stop_with_the_reason() {
    in_process(|mut ctx| async move {
        let lab = Lab::start(config(ctx.pid())).await.unwrap();
        assert_eq!(lab.stop(ExitReason::Shutdown).await, Ok(()));
        assert_eq!(
            ctx.receive::<Report>().await,
            Report::Terminated(ExitReason::Shutdown)
        );
        let gone = Err(CallError::Exited {
            pid: lab.pid(),
            reason: ExitReason::Shutdown,
        });
        assert_eq!(lab.sync().await, gone);
        assert_eq!(lab.stop(ExitReason::Normal).await, gone);
    })
    .await;
}

#[tokio::test]
async fn terminate_runs_on_a_trapped_exit_from_the_parent() {
    let (lab, report) = in_process(|mut ctx| async move {
        let me = ctx.pid();
        let (ready, started) = tokio::sync::oneshot::channel();
        // The parent links the lab, then exits abnormally; the lab traps exits.
        let parent = spawn(move |mut ctx| async move {
            let lab = Lab::start_link(Config {
                trap_exits: true,
                ..config(me)
            })
            .await
            .unwrap();
            let _ = ready.send(lab);
            ctx.receive::<()>().await;
            ExitReason::error("parent gave up")
        });
        let lab = started.await.unwrap();
        send(parent, ());
        (lab, ctx.receive::<Report>().await)
    })
    .await;
    assert_eq!(
        report,
        Report::Terminated(ExitReason::error("parent gave up"))
    );
    assert!(!ferrotp::is_alive(lab.pid()));
}

#[tokio::test]
async fn terminate_does_not_run_on_kill() {
    in_process(|mut ctx| async move {
        let lab = Lab::start(config(ctx.pid())).await.unwrap();
        exit(lab.pid(), ExitReason::Kill);
        assert_eq!(wait(lab.pid()).await, ExitReason::Killed);
        let nothing = ctx.receive_timeout::<Report>(Duration::ZERO).await;
        assert!(nothing.is_err(), "{nothing:?}");
    })
    .await;
}

#[tokio::test]
async fn info_handlers_get_raw_messages_and_signals_when_trapping() {
    in_process(|mut ctx| async move {
        let lab = Lab::start(Config {
            trap_exits: true,
            ..config(ctx.pid())
        })
        .await
        .unwrap();
        send(lab.pid(), Tick("tock"));
        assert_eq!(ctx.receive::<Report>().await, Report::Info("tock".into()));

        let doomed = spawn(|mut ctx| async move { ctx.receive::<()>().await });
        assert_eq!(lab.link_to(doomed).await, Ok(true));
        exit(doomed, ExitReason::Kill);
        assert_eq!(
            ctx.receive::<Report>().await,
            Report::Exit(doomed, ExitReason::Killed)
        );

        let watched = spawn(|mut ctx| async move { ctx.receive::<()>().await });
        lab.watch(watched).await.unwrap();
        send(watched, ());
        assert_eq!(
            ctx.receive::<Report>().await,
            Report::Down(watched, ExitReason::Normal)
        );
        assert_eq!(lab.sync().await, Ok(()), "still serving");
    })
    .await;
}

#[tokio::test]
async fn an_info_handler_can_stop_the_server() {
    in_process(|mut ctx| async move {
        let lab = Lab::start(config(ctx.pid())).await.unwrap();
        let watched = spawn(|mut ctx| async move {
            ctx.receive::<()>().await;
            ExitReason::Shutdown
        });
        lab.watch(watched).await.unwrap();
        send(watched, ());
        assert_eq!(
            ctx.receive::<Report>().await,
            Report::Down(watched, ExitReason::Shutdown)
        );
        assert_eq!(
            ctx.receive::<Report>().await,
            Report::Terminated(ExitReason::Shutdown)
        );
    })
    .await;
}

#[tokio::test]
async fn unexpected_info_is_dropped_and_the_server_goes_on() {
    in_process(|ctx| async move {
        let lab = Lab::start(config(ctx.pid())).await.unwrap();
        send(lab.pid(), 3.5_f64);
        send(lab.pid(), "nobody handles &str");
        assert_eq!(lab.sync().await, Ok(()));
        assert_eq!(ferrotp::process_info(lab.pid()).unwrap().mailbox_len, 0);
    })
    .await;
}

#[tokio::test]
async fn a_call_to_a_crashed_server_fails_with_its_reason() {
    in_process(|ctx| async move {
        let lab = Lab::start(config(ctx.pid())).await.unwrap();
        let crash = lab.crash().await;
        assert_eq!(
            crash,
            Err(CallError::Exited {
                pid: lab.pid(),
                reason: ExitReason::Panic("lab accident".into())
            })
        );
        // Later calls fail at once with the reason too.
        let reason = ExitReason::Panic("lab accident".into());
        assert_eq!(
            lab.sync().await,
            Err(CallError::Exited {
                pid: lab.pid(),
                reason
            })
        );
    })
    .await;
}

#[tokio::test]
async fn a_local_handler_is_not_reachable_by_name() {
    in_process(|ctx| async move {
        let lab = Lab::start(config(ctx.pid())).await.unwrap();
        let result = lab.call::<bool>("link", ctx.pid()).await;
        assert!(matches!(result, Err(CallError::UnknownHandler { ref available, .. }) if available == &["sync", "crash"]), "{result:?}");
    })
    .await;
}

/// A server that stops another from inside a handler.
struct Peer;

/// Lets a `Peer` go on.
struct Go;

#[gen_server]
impl Peer {
    async fn init(_: ()) -> Self {
        Peer
    }

    #[install("stop_peer", local)]
    async fn stop_peer(&mut self, peer: ServerRef<Peer>) -> Result<(), CallError> {
        peer.stop(ExitReason::Shutdown).await
    }

    /// Waits for `Go`, then stops `peer`.
    #[install("stop_peer_on_go", local)]
    async fn stop_peer_on_go(
        &mut self,
        peer: ServerRef<Peer>,
        ctx: &mut Context,
    ) -> Result<(), CallError> {
        ctx.receive::<Go>().await;
        peer.stop(ExitReason::Shutdown).await
    }
}

/// Two servers stopping each other would wait for each other forever (OTP's `infinity` does):
/// the stop that would close the cycle fails at once instead, and the other one completes.
#[tokio::test(start_paused = true)]
async fn two_servers_stopping_each_other_do_not_deadlock() {
    let a = Peer::start(()).await.unwrap();
    let b = Peer::start(()).await.unwrap();
    let by_b = tokio::spawn(async move { b.stop_peer_on_go_timeout(a, ferrotp::INFINITY).await });
    tokio::task::yield_now().await;
    let by_a = tokio::spawn(async move { a.stop_peer_timeout(b, ferrotp::INFINITY).await });
    tokio::task::yield_now().await;
    // `a` now waits for `b` to stop, and `b` is about to stop `a`.
    send(b.pid(), Go);
    let start = tokio::time::Instant::now();
    assert_eq!(
        by_b.await.unwrap(),
        Err(CallError::Handler(CallError::Deadlock(vec![
            b.pid(),
            a.pid()
        ])))
    );
    assert_eq!(by_a.await.unwrap(), Ok(()));
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(wait(b.pid()).await, ExitReason::Shutdown);
    assert!(ferrotp::is_alive(a.pid()));
}

/// The same race, unarranged, on the multi-threaded runtime: it never hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_stopping_each_other_at_once_never_hang() {
    for _ in 0..100 {
        let a = Peer::start(()).await.unwrap();
        let b = Peer::start(()).await.unwrap();
        let both = async {
            tokio::join!(
                a.stop_peer_timeout(b, ferrotp::INFINITY),
                b.stop_peer_timeout(a, ferrotp::INFINITY)
            )
        };
        let (by_a, by_b) = tokio::time::timeout(Duration::from_secs(20), both)
            .await
            .expect("the two stops deadlocked");
        for outcome in [by_a, by_b] {
            // Stopped the other, found the cycle, or was stopped before its call was read.
            assert!(
                matches!(
                    outcome,
                    Ok(())
                        | Err(CallError::Handler(CallError::Deadlock(_)))
                        | Err(CallError::Exited { .. })
                ),
                "{outcome:?}"
            );
        }
        for pid in [a.pid(), b.pid()] {
            exit(pid, ExitReason::Kill);
        }
    }
}

/// A child whose `init` stops its own supervisor.
struct Rebel;

#[gen_server]
impl Rebel {
    async fn init(witness: Pid) -> Self {
        let sup = ServerRef::<SupervisorProcess>::lookup("rebel-sup").unwrap();
        send(witness, sup.stop(ExitReason::Shutdown).await);
        Rebel
    }
}

#[tokio::test(start_paused = true)]
async fn a_child_stopping_its_supervisor_from_init_fails_at_once() {
    in_process(|mut ctx| async move {
        let sup = Supervisor::one_for_one()
            .name("rebel-sup")
            .child(Child::server::<Rebel>("rebel", ctx.pid()))
            .start()
            .await
            .unwrap();
        let rebel = sup.child_pid("rebel".into()).await.unwrap();
        let stopped: Result<(), CallError> = ctx.receive().await;
        assert_eq!(stopped, Err(CallError::Deadlock(vec![rebel, sup.pid()])));
        sup.stop(ExitReason::Shutdown).await.unwrap();
    })
    .await;
}
