//! The exit sequence: whoever learns of an exit sees all of it (the name released, the pid gone
//! from `processes()`), however they learn of it, and the sequence runs to its end whatever user
//! code does in `Drop`. The races run on the multi-threaded runtime, many times over.

use std::sync::Arc;

use ferrotp::prelude::*;
use ferrotp::{StartError, is_alive, processes, whereis};
use ferrotp_tests::in_process;

/// How many times each race is run.
const ROUNDS: usize = 200;

/// Everything an observer told of `pid`'s exit must see.
fn assert_fully_gone(pid: Pid, name: &str) {
    assert_eq!(whereis(name), None, "{pid} still holds `{name}`");
    assert!(!is_alive(pid), "{pid} is still alive");
    assert!(!processes().contains(&pid), "{pid} is still in processes()");
}

/// A process registered as `name` that exits when told to.
fn named_process(name: &'static str) -> Pid {
    let pid = spawn(|mut ctx| async move {
        ctx.receive::<()>().await;
    });
    register(name, pid).unwrap();
    pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_after_the_name_is_released_and_the_pid_is_gone() {
    for _ in 0..ROUNDS {
        let pid = named_process("exit-seq-wait");
        send(pid, ());
        assert_eq!(wait(pid).await, ExitReason::Normal);
        assert_fully_gone(pid, "exit-seq-wait");
        // A restart right after `wait` finds the name free.
        let next = named_process("exit-seq-wait");
        exit(next, ExitReason::Kill);
        wait(next).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_returns_after_the_process_has_gone() {
    for round in 0..ROUNDS {
        let handle = ferrotp::spawn_handle(move |ctx| async move {
            register("exit-seq-join", ctx.pid()).unwrap();
            round
        });
        let pid = handle.pid();
        assert_eq!(handle.join().await, Ok(round));
        assert_fully_gone(pid, "exit-seq-join");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_monitors_are_told_after_the_name_is_released() {
    in_process(|mut ctx| async move {
        ctx.trap_exit(true);
        for _ in 0..ROUNDS {
            let linked = named_process("exit-seq-linked");
            ctx.link(linked).unwrap();
            let watched = named_process("exit-seq-watched");
            let monitor = ctx.monitor(watched);
            exit(linked, ExitReason::error("down"));
            send(watched, ());
            let exit: Exit = ctx.receive_if(|e: &Exit| e.from == linked).await;
            assert_eq!(exit.reason, ExitReason::error("down"));
            assert_fully_gone(linked, "exit-seq-linked");
            let down: Down = ctx.receive_if(|d: &Down| d.monitor == monitor).await;
            assert_eq!(down.reason, ExitReason::Normal);
            assert_fully_gone(watched, "exit-seq-watched");
        }
    })
    .await;
}

struct Named;

#[gen_server]
impl Named {
    async fn init(fail: bool) -> Result<Self, String> {
        match fail {
            true => Err("refused".to_string()),
            false => Ok(Named),
        }
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("crashed on purpose")
    }

    #[install("ping")]
    async fn ping(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_stop_and_start_return_after_the_name_is_released() {
    for _ in 0..ROUNDS {
        // A call that fails because its server crashed.
        let server = Named::start(false).name("exit-seq-srv").await.unwrap();
        let crash = server.crash().await;
        assert!(
            matches!(
                &crash,
                Err(CallError::Exited {
                    reason: ExitReason::Panic(_),
                    ..
                })
            ),
            "{crash:?}"
        );
        assert_fully_gone(server.pid(), "exit-seq-srv");

        // stop.
        let server = Named::start(false).name("exit-seq-srv").await.unwrap();
        server.stop(ExitReason::Shutdown).await.unwrap();
        assert_fully_gone(server.pid(), "exit-seq-srv");

        // A start whose init fails: the name it took is free when the error arrives.
        let failed = Named::start(true).name("exit-seq-srv").await;
        assert_eq!(failed, Err(StartError::Init("refused".to_string())));
        assert_eq!(whereis("exit-seq-srv"), None);

        // A call to a server that has gone fails at once with its reason, and the name is free.
        assert!(matches!(
            server.ping().await,
            Err(CallError::Exited {
                reason: ExitReason::Shutdown,
                ..
            })
        ));
    }
}

/// A value whose `Drop` panics: hostile user code.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("a hostile Drop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftover_messages_with_panicking_drops_do_not_cut_the_sequence_short() {
    in_process(|mut ctx| async move {
        for reason in [ExitReason::Normal, ExitReason::Killed] {
            let pid = spawn(|mut ctx| async move {
                ctx.receive::<()>().await;
            });
            register("exit-seq-hostile-mail", pid).unwrap();
            let monitor = ctx.monitor(pid);
            // Two of them: each is dropped on its own, so the second panic is not a double panic.
            send(pid, PanicOnDrop);
            send(pid, PanicOnDrop);
            match reason {
                ExitReason::Normal => send(pid, ()),
                _ => exit(pid, ExitReason::Kill),
            }
            let down: Down = ctx.receive_if(|d: &Down| d.monitor == monitor).await;
            assert_eq!(down.reason, reason);
            assert_fully_gone(pid, "exit-seq-hostile-mail");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_holding_a_hostile_value_exits_killed() {
    in_process(|mut ctx| async move {
        ctx.trap_exit(true);
        for _ in 0..ROUNDS / 10 {
            let pid = ctx.spawn_link(|mut ctx| async move {
                let _hostile = PanicOnDrop;
                ctx.receive::<()>().await;
            });
            register("exit-seq-hostile-kill", pid).unwrap();
            ferrotp::exit(pid, ExitReason::Kill);
            // The panic of the drop is logged; the reason stays, and links learn it.
            let exit: Exit = ctx.receive_if(|e: &Exit| e.from == pid).await;
            assert_eq!(exit.reason, ExitReason::Killed);
            assert_fully_gone(pid, "exit-seq-hostile-kill");
        }
    })
    .await;
}

/// A server whose state panics when dropped.
struct Hostile {
    _state: PanicOnDrop,
}

#[gen_server]
impl Hostile {
    async fn init(_: ()) -> Self {
        Hostile {
            _state: PanicOnDrop,
        }
    }

    #[install("noop")]
    async fn noop(&mut self) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_hostile_state_stops_and_its_supervisor_does_not_hang() {
    use ferrotp::supervisor::{Child, Shutdown, Supervisor};
    let server = Hostile::start(()).name("exit-seq-hostile").await.unwrap();
    server.stop(ExitReason::Shutdown).await.unwrap();
    assert_fully_gone(server.pid(), "exit-seq-hostile");

    let sup = Supervisor::one_for_one()
        .child(Child::server::<Hostile>("h", ()).shutdown(Shutdown::Infinity))
        .start()
        .await
        .unwrap();
    let child = sup.child::<Hostile>("h").await.unwrap();
    assert_eq!(child.noop().await, Ok(()));
    // Stopping the child drops its state: the Down still comes, so this returns.
    sup.stop(ExitReason::Shutdown).await.unwrap();
    assert!(!is_alive(child.pid()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_message_to_a_dead_process_does_not_panic_the_sender() {
    let pid = spawn(|_ctx| async {});
    wait(pid).await;
    send(pid, PanicOnDrop);
    let result = ferrotp::request::<PanicOnDrop, ()>(pid, PanicOnDrop).await;
    assert!(matches!(result, Err(CallError::Exited { .. })));
    let shared = Arc::new(());
    send(pid, shared.clone());
    assert_eq!(
        Arc::strong_count(&shared),
        1,
        "the undelivered message was dropped"
    );
}
