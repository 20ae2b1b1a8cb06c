//! Supervisors under hostile conditions: subtrees killed, restarts that fail, start functions
//! that panic, names already taken, thousands of finished jobs, busy supervisors.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};
use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::supervisor::{
    Child, ChildInfo, DynamicSupervisor, Shutdown, Supervisor, SupervisorError, SupervisorProcess,
    SupervisorRef,
};
use ferrotp::{LookupError, is_alive};
use ferrotp_tests::in_process;
use ferrotp_tests::workers::{Event, Setup, Worker};

const SECOND: Duration = Duration::from_secs(1);

/// A named worker that reports to `witness` and takes `slow` to run its `terminate`.
fn named_worker(id: &'static str, witness: Pid, slow: Duration) -> Child {
    let setup = Setup {
        slow_terminate: Some(slow),
        ..Setup::new(id, witness)
    };
    Child::server::<Worker>(id, setup).name(id)
}

/// root (OTP's default intensity: 1 restart in 5 s) → "sub" → three named workers whose
/// `terminate` takes a while, so that they outlive a killed "sub" for a moment.
fn tree(witness: Pid, names: [&'static str; 3], sub_shutdown: Shutdown) -> Supervisor {
    let slow = Duration::from_millis(2);
    let sub = names
        .into_iter()
        .fold(Supervisor::one_for_one(), |sub, name| {
            sub.child(named_worker(name, witness, slow))
        });
    Supervisor::one_for_one().child(Child::supervisor("sub", sub).shutdown(sub_shutdown))
}

async fn sub_pid(root: &SupervisorRef) -> Pid {
    root.child_pid("sub".into()).await.unwrap()
}

fn running(children: &[ChildInfo]) -> usize {
    children.iter().filter(|c| c.pid.is_some()).count()
}

/// Killing a subtree once never exhausts the budget: the restarted children find their names
/// free, because the old ones are stopped first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_subtree_once_never_exhausts_the_restart_budget() {
    let names = ["kill-sub-a", "kill-sub-b", "kill-sub-c"];
    in_process(move |ctx| async move {
        for _ in 0..30 {
            let root = tree(ctx.pid(), names, Shutdown::Infinity)
                .start()
                .await
                .unwrap();
            let old_sub = sub_pid(&root).await;
            let old: Vec<Pid> = names.iter().map(|n| ferrotp::whereis(n).unwrap()).collect();
            exit(old_sub, ExitReason::Kill);
            // The root has the exit signal once `wait` returns; its next call comes after it.
            wait(old_sub).await;
            let children = root.which_children().await.unwrap();
            assert!(is_alive(root.pid()), "the root escalated");
            assert_eq!(running(&children), 1);
            let new_sub = sub_pid(&root).await;
            assert_ne!(new_sub, old_sub);
            for (name, old) in names.iter().zip(old) {
                assert!(!is_alive(old), "an old child outlived the restart");
                let new = ferrotp::whereis(name).expect("the name resolves");
                assert!(is_alive(new) && new != old);
            }
            root.stop(ExitReason::Shutdown).await.unwrap();
        }
    })
    .await;
}

/// The same for a sub-supervisor stopped brutally, or whose shutdown times out, and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brutal_or_timed_out_subtree_shutdown_leaves_nothing_behind() {
    let names = ["brutal-sub-a", "brutal-sub-b", "brutal-sub-c"];
    in_process(move |ctx| async move {
        for shutdown in [
            Shutdown::BrutalKill,
            Shutdown::Timeout(Duration::from_micros(100)),
        ] {
            for _ in 0..15 {
                let root = tree(ctx.pid(), names, shutdown).start().await.unwrap();
                let old: Vec<Pid> = names.iter().map(|n| ferrotp::whereis(n).unwrap()).collect();
                root.terminate_child("sub".into()).await.unwrap();
                for old in &old {
                    assert!(!is_alive(*old), "{shutdown:?} left a child of the subtree");
                }
                root.restart_child("sub".into()).await.unwrap();
                for name in names {
                    assert!(ferrotp::whereis(name).is_some_and(is_alive));
                }
                root.stop(ExitReason::Shutdown).await.unwrap();
            }
        }
    })
    .await;
}

/// Starts fail while `broken` is set.
struct Fickle;

#[gen_server]
impl Fickle {
    async fn init(broken: Arc<AtomicBool>) -> Result<Self, String> {
        match broken.load(Ordering::SeqCst) {
            true => Err("broken".to_string()),
            false => Ok(Fickle),
        }
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("fickle crashed")
    }
}

/// Failed restarts go through the mailbox: the supervisor answers meanwhile, and restarts the
/// child once its start works again.
#[tokio::test(start_paused = true)]
async fn a_supervisor_answers_while_a_child_keeps_failing_to_restart() {
    let broken = Arc::new(AtomicBool::new(false));
    let sup = Supervisor::one_for_one()
        .intensity(1_000_000, SECOND)
        .child(Child::server::<Fickle>("fickle", broken.clone()))
        .start()
        .await
        .unwrap();
    let first = sup.child::<Fickle>("fickle").await.unwrap();
    broken.store(true, Ordering::SeqCst);
    let _ = first.crash().await;
    for _ in 0..10 {
        // Served between two attempts: the child is not running.
        let children = sup.which_children().await.unwrap();
        assert_eq!(children[0].pid, None);
        assert_eq!(
            sup.child::<Fickle>("fickle").await,
            Err(LookupError::NotRunning("fickle".into()))
        );
    }
    broken.store(false, Ordering::SeqCst);
    // Some attempt after this one works.
    let mut restarted = None;
    for _ in 0..100 {
        if let Ok(child) = sup.child::<Fickle>("fickle").await {
            restarted = Some(child);
            break;
        }
    }
    assert!(restarted.is_some_and(|child| child != first));
    // And stopping it works while it fails, too.
    broken.store(true, Ordering::SeqCst);
    let _ = sup.child::<Fickle>("fickle").await.unwrap().crash().await;
    sup.stop(ExitReason::Shutdown).await.unwrap();
}

/// An argument whose `clone` panics once armed.
#[derive(Debug)]
struct TrapArg(Arc<AtomicBool>);

impl Clone for TrapArg {
    fn clone(&self) -> Self {
        if self.0.load(Ordering::SeqCst) {
            panic!("clone failed");
        }
        TrapArg(self.0.clone())
    }
}

struct Plain;

#[gen_server]
impl Plain {
    async fn init(_: TrapArg) -> Self {
        Plain
    }

    #[install("ping")]
    async fn ping(&mut self) {}
}

#[tokio::test(start_paused = true)]
async fn a_panicking_template_or_argument_clone_fails_that_start_only() {
    in_process(|ctx| async move {
        let me = ctx.pid();
        let sibling = Child::server::<Worker>("sibling", Setup::new("sibling", me));
        let sup = Supervisor::one_for_one().child(sibling).start().await.unwrap();
        let armed = Arc::new(AtomicBool::new(true));
        let result = sup
            .start_child(Child::server::<Plain>("plain", TrapArg(armed.clone())))
            .await;
        assert!(
            matches!(&result, Err(CallError::Handler(SupervisorError::StartFailed { id, reason: ExitReason::Panic(_) })) if id == "plain"),
            "{result:?}"
        );
        assert!(sup.child::<Worker>("sibling").await.is_ok());

        let dynamic = DynamicSupervisor::new(|n: u32| {
            assert!(n != 13, "the template refuses 13");
            Child::server::<Worker>("job", Setup::new("job", Pid::ROOT)).temporary()
        })
        .start()
        .await
        .unwrap();
        let good = dynamic.start_child(1).await.unwrap();
        let bad = dynamic.start_child(13).await;
        assert!(
            matches!(&bad, Err(CallError::Handler(SupervisorError::StartFailed { reason: ExitReason::Panic(_), .. }))),
            "{bad:?}"
        );
        assert!(is_alive(good) && is_alive(dynamic.pid()));
        assert_eq!(dynamic.count_children().await.unwrap().active, 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_process_child_whose_name_is_taken_never_runs_and_leaves_nothing_behind() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let holder = spawn(|mut ctx| async move { ctx.receive::<()>().await });
        register("taken-name", holder).unwrap();
        let sup = Supervisor::one_for_one().start().await.unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let child = Child::process("p", move |_ctx: Context| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move { send(me, "ran") }
        })
        .name("taken-name");
        let result = sup.start_child(child).await;
        assert!(
            matches!(&result, Err(CallError::Handler(SupervisorError::StartFailed { id, .. })) if id == "p"),
            "{result:?}"
        );
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the process function ran");
        assert!(ctx.receive_timeout::<&str>(SECOND).await.is_err());
        let info = ferrotp::process_info(sup.pid()).unwrap();
        assert!(info.links.is_empty(), "the supervisor is linked to {:?}", info.links);
        assert_eq!(ferrotp::whereis("taken-name"), Some(holder));
        send(holder, ());
    })
    .await;
}

/// A job that finishes on its own: crashing, or done.
struct Job;

/// What a job does first.
enum Next {
    Crash,
    Done,
}

#[gen_server]
impl Job {
    async fn init(crash: bool, ctx: &mut Context) -> Self {
        send(ctx.pid(), if crash { Next::Crash } else { Next::Done });
        Job
    }

    #[info]
    async fn on_next(&mut self, next: Next) -> Reply<()> {
        match next {
            Next::Crash => panic!("job crashed"),
            Next::Done => Reply::Stop(ExitReason::Normal),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_supervisor_forgets_children_it_will_not_restart() {
    for restart in [
        ferrotp::supervisor::Restart::Transient,
        ferrotp::supervisor::Restart::Temporary,
    ] {
        let jobs = DynamicSupervisor::new(move |crash: bool| {
            Child::server::<Job>("job", crash).restart(restart)
        })
        .intensity(100, SECOND)
        .start()
        .await
        .unwrap();
        let mut pids = Vec::new();
        for _ in 0..1000 {
            pids.push(jobs.start_child(false).await.unwrap());
        }
        for pid in pids {
            wait(pid).await;
        }
        let counts = jobs.count_children().await.unwrap();
        assert_eq!((counts.specs, counts.active), (0, 0), "{restart:?}");
    }
}

/// Ten children whose `terminate` takes a second each.
fn slow_jobs(witness: Pid, slow: Duration, shutdown: Shutdown) -> DynamicSupervisor<&'static str> {
    DynamicSupervisor::new(move |id: &'static str| {
        let setup = Setup {
            slow_terminate: Some(slow),
            ..Setup::new(id, witness)
        };
        Child::server::<Worker>("job", setup).shutdown(shutdown)
    })
}

const TEN: [&str; 10] = ["j0", "j1", "j2", "j3", "j4", "j5", "j6", "j7", "j8", "j9"];

/// Starts ten children whose `terminate` takes `slow`, with a five-second shutdown, and returns how
/// long stopping the dynamic supervisor takes.
async fn time_to_stop_ten(ctx: &mut Context, slow: Duration) -> Duration {
    let jobs = slow_jobs(ctx.pid(), slow, Shutdown::Timeout(5 * SECOND))
        .start()
        .await
        .unwrap();
    for id in TEN {
        jobs.start_child(id).await.unwrap();
        ctx.receive::<Event>().await;
    }
    let start = tokio::time::Instant::now();
    jobs.supervisor().stop(ExitReason::Shutdown).await.unwrap();
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_supervisor_stops_its_children_together_under_one_timer() {
    in_process(|mut ctx| async move {
        // Each takes a second to stop, within its five: together, a second, not ten.
        let took = time_to_stop_ten(&mut ctx, SECOND).await;
        assert!(took < 2 * SECOND, "took {took:?}");
        // Each would take a minute: all are killed when the one timer runs out, at five seconds.
        let took = time_to_stop_ten(&mut ctx, 60 * SECOND).await;
        assert!((5 * SECOND..6 * SECOND).contains(&took), "took {took:?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn looking_a_child_up_tells_busy_not_running_and_unknown_apart() {
    in_process(|ctx| async move {
        let me = ctx.pid();
        let sup = Supervisor::one_for_one()
            .child(named_worker("lookup-slow", me, 20 * SECOND).shutdown(Shutdown::Infinity))
            .child(Child::server::<Worker>("other", Setup::new("other", me)))
            .start()
            .await
            .unwrap();
        assert!(sup.child::<Worker>("other").await.is_ok());
        assert_eq!(
            sup.child::<Worker>("nobody").await,
            Err(LookupError::NoChild("nobody".into()))
        );
        // Busy for twenty seconds stopping the slow child: the lookup times out, and says so.
        let stopping = tokio::spawn(async move {
            sup.terminate_child_timeout("lookup-slow".into(), ferrotp::INFINITY)
                .await
        });
        tokio::task::yield_now().await;
        let busy = sup.child::<Worker>("other").await;
        assert!(
            matches!(busy, Err(LookupError::Timeout { pid, .. }) if pid == sup.pid()),
            "{busy:?}"
        );
        stopping.await.unwrap().unwrap();
        assert_eq!(
            sup.child::<Worker>("lookup-slow").await,
            Err(LookupError::NotRunning("lookup-slow".into()))
        );
        sup.stop(ExitReason::Shutdown).await.unwrap();
        assert!(matches!(
            sup.child::<Worker>("other").await,
            Err(LookupError::NoProc(pid)) if pid == sup.pid()
        ));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_that_gives_up_is_not_restarted_by_a_transient_parent() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let sub = Supervisor::one_for_one()
            .intensity(0, SECOND)
            .child(Child::server::<Worker>("w", Setup::new("w", me)));
        let root = Supervisor::one_for_one()
            .intensity(10, SECOND)
            .child(Child::supervisor("sub", sub).transient())
            .start()
            .await
            .unwrap();
        ctx.receive::<Event>().await;
        let sub = root.child::<SupervisorProcess>("sub").await.unwrap();
        let monitor = ctx.monitor(sub.pid());
        let _ = sub.child::<Worker>("w").await.unwrap().crash().await;
        // The distinct reason stays visible to monitors...
        let down: Down = ctx.receive_if(|d: &Down| d.monitor == monitor).await;
        assert_eq!(down.reason, ExitReason::MaxRestartIntensity);
        // ...but for restarts it is a shutdown: the transient parent lets it be.
        let counts = root.count_children().await.unwrap();
        assert_eq!((counts.specs, counts.active), (1, 0));
        assert!(is_alive(root.pid()));
    })
    .await;
}

struct Flaky;

#[gen_server]
impl Flaky {
    async fn init(_: ()) -> Self {
        Flaky
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("flaky")
    }
}

/// The Supervisors chapter's escalation example, many times on the multi-threaded runtime: a child
/// looked up right after a crash is the restarted one, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guide_escalation_example_holds_on_the_multi_threaded_runtime() {
    for _ in 0..100 {
        let sup = Supervisor::one_for_one()
            .intensity(2, Duration::from_secs(10))
            .child(Child::server::<Flaky>("flaky", ()))
            .start()
            .await
            .unwrap();
        for _ in 0..2 {
            let _ = sup.child::<Flaky>("flaky").await.unwrap().crash().await;
        }
        let _ = sup.child::<Flaky>("flaky").await.unwrap().crash().await;
        assert_eq!(wait(sup.pid()).await, ExitReason::MaxRestartIntensity);
    }
}

/// A named server whose `init` takes a second once `slow` is set. It traps exits, so it outlives a
/// dead supervisor until its `init` is over.
struct SlowStart;

#[gen_server]
impl SlowStart {
    async fn init(slow: Arc<AtomicBool>, ctx: &mut Context) -> Self {
        ctx.trap_exit(true);
        if slow.load(Ordering::SeqCst) {
            tokio::time::sleep(SECOND).await;
        }
        SlowStart
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("slow starter crashed")
    }
}

/// A supervisor killed while it restarts a child (the child still in its `init`) leaves that child
/// to its own supervisor to stop: the subtree is restarted once, and the new child finds its name
/// free, at OTP's default intensity.
#[tokio::test(start_paused = true)]
async fn a_supervisor_killed_while_a_child_starts_leaves_nothing_behind() {
    in_process(|mut ctx| async move {
        let slow = Arc::new(AtomicBool::new(false));
        let sub = Supervisor::one_for_one()
            .intensity(10, SECOND)
            .child(Child::server::<SlowStart>("w", slow.clone()).name("slow-start-w"));
        let root = Supervisor::one_for_one()
            .child(Child::supervisor("sub", sub))
            .start()
            .await
            .unwrap();
        let root_monitor = ctx.monitor(root.pid());
        let sub = root.child::<SupervisorProcess>("sub").await.unwrap();
        let first = ferrotp::whereis("slow-start-w").unwrap();
        // From now on a start takes a second: crash the child, and kill its supervisor while it
        // restarts it.
        slow.store(true, Ordering::SeqCst);
        let _ = ServerRef::<SlowStart>::from_pid(first)
            .unwrap()
            .crash()
            .await;
        tokio::time::sleep(SECOND / 2).await;
        let starting = ferrotp::whereis("slow-start-w").expect("registered before its init");
        assert_ne!(starting, first);
        exit(sub.pid(), ExitReason::Kill);
        wait(sub.pid()).await;
        // The root restarts the subtree once, after the child that was starting has gone.
        let children = root.which_children().await.unwrap();
        assert!(children[0].pid.is_some());
        assert!(
            !is_alive(starting),
            "the starting child outlived its supervisor's restart"
        );
        tokio::time::sleep(2 * SECOND).await;
        let new = ferrotp::whereis("slow-start-w").expect("the new child is registered");
        assert!(is_alive(new) && new != starting);
        assert!(
            ctx.receive_timeout::<Down>(Duration::ZERO)
                .await
                .map(|down| down.monitor != root_monitor)
                .unwrap_or(true),
            "the root escalated"
        );
        root.stop(ExitReason::Shutdown).await.unwrap();
    })
    .await;
}
