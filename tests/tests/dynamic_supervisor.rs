//! Dynamic supervisors: children from a template, at run time, at scale.

use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::supervisor::{Child, DynamicRef, DynamicSupervisor, Supervisor, SupervisorError};
use ferrotp_tests::in_process;
use ferrotp_tests::workers::{Event, Setup, Worker, next_event};

/// A session server started with its user's name.
struct Session {
    user: u32,
}

#[gen_server]
impl Session {
    async fn init(user: u32) -> Self {
        Session { user }
    }

    #[install("user")]
    async fn user(&mut self) -> u32 {
        self.user
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("session {} crashed", self.user)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_children_start_and_stop() {
    const N: u32 = 10_000;
    let sessions =
        DynamicSupervisor::new(|user: u32| Child::server::<Session>("session", user).temporary())
            .start()
            .await
            .unwrap();
    let mut pids = Vec::with_capacity(N as usize);
    for user in 0..N {
        pids.push(sessions.start_child(user).await.unwrap());
    }
    assert_eq!(sessions.count_children().await.unwrap().active, N as usize);
    let sample = ServerRef::<Session>::from_pid(pids[1234]).unwrap();
    assert_eq!(sample.user().await, Ok(1234));
    for &pid in &pids {
        sessions.terminate_child(pid).await.unwrap();
    }
    let counts = sessions.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (0, 0));
    assert!(pids.iter().all(|&pid| !ferrotp::is_alive(pid)));
    assert_eq!(
        sessions.terminate_child(pids[0]).await,
        Err(CallError::Handler(SupervisorError::NotFound(
            pids[0].to_string()
        )))
    );
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_child_is_restarted_with_its_own_argument() {
    let sessions =
        DynamicSupervisor::new(|user: u32| Child::server::<Session>("session", user).transient())
            .intensity(5, Duration::from_secs(1))
            .name("dyn-sessions")
            .start()
            .await
            .unwrap();
    let pid = sessions.start_child(7).await.unwrap();
    let _ = ServerRef::<Session>::from_pid(pid).unwrap().crash().await;
    // The restart is asynchronous: ask until the replacement answers.
    let replacement = loop {
        let children = sessions.supervisor().which_children().await.unwrap();
        if let Some(pid) = children.first().and_then(|c| c.pid).filter(|&p| p != pid) {
            break pid;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(
        ServerRef::<Session>::from_pid(replacement)
            .unwrap()
            .user()
            .await,
        Ok(7)
    );
    let found: DynamicRef<u32> = DynamicRef::lookup("dyn-sessions").unwrap();
    assert_eq!(found.pid(), sessions.pid());
}

#[tokio::test(start_paused = true)]
async fn a_wrong_argument_type_is_a_typed_error() {
    let sessions = DynamicSupervisor::new(|user: u32| Child::server::<Session>("session", user))
        .name("dyn-typed")
        .start()
        .await
        .unwrap();
    let wrong: DynamicRef<String> = DynamicRef::lookup("dyn-typed").unwrap();
    assert_eq!(
        wrong.start_child("nope".into()).await,
        Err(CallError::Handler(SupervisorError::WrongArgument))
    );
    assert_eq!(sessions.count_children().await.unwrap().specs, 0);
    let plain = Supervisor::one_for_one()
        .name("dyn-static")
        .start()
        .await
        .unwrap();
    let not_dynamic: DynamicRef<u32> = DynamicRef::lookup("dyn-static").unwrap();
    assert_eq!(
        not_dynamic.start_child(1).await,
        Err(CallError::Handler(SupervisorError::NotDynamic))
    );
    plain.stop(ExitReason::Shutdown).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dynamic_supervisor_nests_in_a_tree_and_stops_its_children() {
    in_process(|mut ctx| async move {
        let me = ctx.pid();
        let pool = DynamicSupervisor::new(move |id: &'static str| {
            Child::server::<Worker>(id, Setup::new(id, me))
        });
        let root = Supervisor::one_for_one()
            .child(Child::supervisor("pool", pool).name("dyn-pool"))
            .start()
            .await
            .unwrap();
        let pool: DynamicRef<&'static str> = DynamicRef::lookup("dyn-pool").unwrap();
        pool.start_child("w1").await.unwrap();
        pool.start_child("w2").await.unwrap();
        assert_eq!(next_event(&mut ctx).await, Event::Started("w1"));
        assert_eq!(next_event(&mut ctx).await, Event::Started("w2"));
        root.stop(ExitReason::Shutdown).await.unwrap();
        assert_eq!(
            next_event(&mut ctx).await,
            Event::Terminated("w2", ExitReason::Shutdown)
        );
        assert_eq!(
            next_event(&mut ctx).await,
            Event::Terminated("w1", ExitReason::Shutdown)
        );
    })
    .await;
}
