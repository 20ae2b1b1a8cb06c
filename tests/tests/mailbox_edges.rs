//! Bounded mailboxes at their edges: a bounded supervisor's retried restart, a sender in line
//! that is not polled, a hostile `Drop` in a call that gave up waiting for room, messages parked
//! for a restarting name.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use ferrotp::supervisor::SupervisorRef;
use ferrotp::{ExitReason, Overflow, SpawnOpts, prelude::*, send, send_wait, spawn_opt, try_send};
use ferrotp_tests::{
    in_process,
    mailboxes::{Gated, info, limit, until},
};
use std::future::Future;
use tokio::sync::Semaphore;

// ---------------------------------------------------------------------------------------------
// A bounded supervisor's retry of a failed restart is a signal: a full mailbox keeps it.

struct Flaky;

#[derive(Clone)]
struct FlakyArg {
    starts: Arc<AtomicU32>,
    gate: Arc<Semaphore>,
}

#[gen_server]
impl Flaky {
    async fn init(arg: FlakyArg) -> Result<Self, String> {
        let n = arg.starts.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 2 {
            // The first restart: blocks until the test lets it fail.
            arg.gate.acquire().await.unwrap().forget();
            return Err("second start fails".into());
        }
        Ok(Flaky)
    }

    #[install("ping")]
    async fn ping(&mut self) -> u32 {
        1
    }
}

#[tokio::test(start_paused = true)]
async fn a_bounded_supervisor_retries_a_failed_restart_through_a_full_mailbox() {
    let starts = Arc::new(AtomicU32::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let arg = FlakyArg {
        starts: starts.clone(),
        gate: gate.clone(),
    };
    let inner = Supervisor::one_for_one()
        .intensity(10, Duration::from_secs(5))
        .child(Child::server::<Flaky>("flaky", arg));
    let top = Supervisor::one_for_one()
        .child(Child::supervisor("inner", inner).mailbox(limit(1, Overflow::Block)))
        .start()
        .await
        .unwrap();
    let inner_pid = top.which_children().await.unwrap()[0].pid.unwrap();
    let inner_ref = SupervisorRef::from_pid(inner_pid).unwrap();
    let inner_pid = inner_ref.pid();
    let flaky = inner_ref.which_children().await.unwrap()[0].pid.unwrap();
    assert_eq!(starts.load(Ordering::SeqCst), 1);

    ferrotp::exit(flaky, ExitReason::Kill);
    until("the restart is in init", || {
        starts.load(Ordering::SeqCst) == 2
    })
    .await;
    // A query to the supervisor, queued while it waits on the child's init: its mailbox is full.
    let query = tokio::spawn(async move { inner_ref.count_children().await });
    until("the query is queued", || info(inner_pid).mailbox_len == 1).await;
    gate.add_permits(1); // the restart fails; the supervisor sends itself RetryRestart

    query.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let i = info(inner_pid);
    let children = inner_ref.which_children().await.unwrap();
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "the failed restart was never retried (RetryRestart dropped: {} dropped)",
        i.mailbox_dropped
    );
    assert!(children[0].pid.is_some());
    top.stop(ExitReason::Shutdown).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// A sender in line that is not polled holds one place: the mailbox stays open to the others.

#[tokio::test(start_paused = true)]
async fn a_sender_in_line_that_is_not_polled_holds_one_place_not_the_mailbox() {
    in_process(|_ctx| async move {
        let pid = spawn_opt(
            SpawnOpts::new().mailbox(limit(4, Overflow::Block)),
            |mut ctx| async move {
                loop {
                    let _: u32 = ctx.receive().await;
                }
            },
        );
        // Filled before the owner runs (nothing here yields): 4 messages fit.
        for n in 0..4_u32 {
            send(pid, n);
        }
        // Poll a send_wait once: if the owner has not yet drained, it registers a ticket.
        let mut fut = Box::pin(send_wait(pid, 100_u32));
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "the mailbox was full: the sender waits");
        // Let the owner drain everything; the future is kept but not polled.
        until("drained", || info(pid).mailbox_len == 0).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(info(pid).mailbox_len, 0);
        // The mailbox is empty, yet:
        let tried = try_send(pid, 7_u32);
        send(pid, 8_u32);
        let after = info(pid);
        drop(fut);
        assert_eq!(tried, Ok(()), "try_send refused by an empty mailbox");
        assert_eq!(
            after.mailbox_dropped, 0,
            "send dropped into an empty mailbox"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// A call that times out waiting for room drops its argument quietly: a hostile `Drop` does not
// unwind into its caller.

struct Hostile;
impl Drop for Hostile {
    fn drop(&mut self) {
        panic!("hostile drop");
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_giving_up_its_wait_for_room_drops_its_argument_quietly() {
    let gate = Arc::new(Semaphore::new(0));
    let server = Gated::start(gate.clone())
        .mailbox(limit(1, Overflow::Block))
        .await
        .unwrap();
    server.cast_hold();
    let pid = server.pid();
    until("holds", || {
        info(pid).handled != 0 && info(pid).mailbox_len == 0
    })
    .await;
    server.cast_echo(1); // full
    let caller = tokio::spawn(async move { server.take(Box::new(Hostile)).await });
    let r = caller.await;
    assert!(
        r.is_ok(),
        "the runtime let a message's Drop panic unwind through a call"
    );
}

// ---------------------------------------------------------------------------------------------
// Messages sent to a name while its process restarts meet the new process's bound.

struct Slow;

#[gen_server]
impl Slow {
    async fn init(arg: FlakyArg) -> Self {
        let n = arg.starts.fetch_add(1, Ordering::SeqCst) + 1;
        if n == 2 {
            arg.gate.acquire().await.unwrap().forget();
        }
        Slow
    }

    #[install("block")]
    async fn block(&mut self) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test(start_paused = true)]
async fn messages_for_a_restarting_name_meet_the_new_processs_bound() {
    let gate = Arc::new(Semaphore::new(0));
    let starts = Arc::new(AtomicU32::new(0));
    let arg = FlakyArg {
        starts: starts.clone(),
        gate: gate.clone(),
    };
    let sup = Supervisor::one_for_one()
        .child(
            Child::server::<Slow>("slow", arg)
                .name("edges-slow")
                .mailbox(limit(2, Overflow::DropNewest)),
        )
        .start()
        .await
        .unwrap();
    let first = ServerRef::<Slow>::lookup("edges-slow").unwrap().pid();
    ferrotp::exit(first, ExitReason::Kill);
    until("restarting", || starts.load(Ordering::SeqCst) == 2).await;
    for n in 0..10_000_u32 {
        let _ = ferrotp::send_named("edges-slow", n);
    }
    gate.add_permits(1);
    let second = loop {
        if let Ok(s) = ServerRef::<Slow>::lookup("edges-slow") {
            break s;
        }
        tokio::task::yield_now().await;
    };
    second.cast_block();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let i = info(second.pid());
    sup.stop(ExitReason::Shutdown).await.unwrap();
    assert!(
        i.mailbox_len <= 2,
        "a capacity-2 mailbox holds {} user messages",
        i.mailbox_len
    );
}
