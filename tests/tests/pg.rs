//! Process groups on one node, through the public API: joining and leaving, membership ending
//! with the process, broadcast with and without a filter, and its ordering.
//!
//! Every test runs on the default node, which is not distributed here; each uses its own group
//! names, since the tests of this binary share that node.

use std::collections::HashSet;

use ferrotp::{
    ExitReason, Pid,
    pg::{self, JoinError, LeaveError, MAX_NAME},
    prelude::*,
};
use ferrotp_tests::dist::bounded;

/// A process that waits for a `()` and then ends.
fn idle() -> Pid {
    spawn(|mut ctx| async move {
        ctx.receive::<()>().await;
    })
}

async fn end(pid: Pid) {
    send(pid, ());
    bounded("the process ends", wait(pid)).await;
}

#[tokio::test]
async fn a_member_is_listed_until_it_leaves() {
    let (a, b) = (idle(), idle());
    pg::join("join-leave", a).unwrap();
    pg::join("join-leave", b).unwrap();
    let members: HashSet<Pid> = pg::members("join-leave").into_iter().collect();
    assert_eq!(members, HashSet::from([a, b]));
    assert_eq!(pg::local_members("join-leave").len(), 2);
    assert!(pg::groups().contains(&"join-leave".to_string()));
    assert!(pg::local_groups().contains(&"join-leave".to_string()));

    pg::leave("join-leave", a).unwrap();
    assert_eq!(pg::members("join-leave"), [b]);
    assert_eq!(
        pg::leave("join-leave", a),
        Err(LeaveError::NotJoined {
            group: "join-leave".into(),
            pid: a
        })
    );
    pg::leave("join-leave", b).unwrap();
    // A group without members is no group.
    assert!(pg::members("join-leave").is_empty());
    assert!(!pg::groups().contains(&"join-leave".to_string()));
    end(a).await;
    end(b).await;
}

#[tokio::test]
async fn joining_twice_needs_leaving_twice() {
    let a = idle();
    pg::join("twice", a).unwrap();
    pg::join("twice", a).unwrap();
    // Listed once, however often it joined.
    assert_eq!(pg::members("twice"), [a]);
    pg::leave("twice", a).unwrap();
    assert_eq!(pg::members("twice"), [a]);
    pg::leave("twice", a).unwrap();
    assert!(pg::members("twice").is_empty());
    assert!(pg::leave("twice", a).is_err());
    end(a).await;
}

#[tokio::test]
async fn bad_names_and_dead_processes_are_typed_errors() {
    let a = idle();
    assert_eq!(pg::join("", a), Err(JoinError::BadName(0)));
    let long = "x".repeat(MAX_NAME + 1);
    assert_eq!(pg::join(&long, a), Err(JoinError::BadName(MAX_NAME + 1)));
    pg::join(&"y".repeat(MAX_NAME), a).unwrap();
    assert!(pg::leave("", a).is_err());
    assert!(pg::members("").is_empty());
    end(a).await;
    assert_eq!(pg::join("dead", a), Err(JoinError::NoProc(a)));
    assert_eq!(
        pg::join("dead", Pid::ROOT),
        Err(JoinError::NoProc(Pid::ROOT))
    );
    assert!(pg::members("dead").is_empty());
    // The exit took it out of the group it was in.
    assert!(pg::members(&"y".repeat(MAX_NAME)).is_empty());
}

/// Whichever way a member ends, it has left all its groups once `wait` on it returns; repeated
/// on two threads, where the exit races the join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaves_all_its_groups_when_it_exits() {
    for round in 0..200 {
        let normal = spawn(|mut ctx| async move {
            pg::join("exit-a", ctx.pid()).unwrap();
            pg::join("exit-b", ctx.pid()).unwrap();
            pg::join("exit-b", ctx.pid()).unwrap();
            ctx.receive::<()>().await;
        });
        let panics = spawn(|mut ctx| async move {
            pg::join("exit-a", ctx.pid()).unwrap();
            ctx.receive::<()>().await;
            panic!("a member panics");
        });
        let killed = idle();
        // Joined from outside, while it may be exiting already: either refused or removed.
        send(killed, ());
        let _ = pg::join("exit-b", killed);
        bounded("joined", async {
            while pg::local_members("exit-a").len() < 2 || pg::members("exit-b").is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        send(normal, ());
        send(panics, ());
        assert_eq!(wait(normal).await, ExitReason::Normal);
        assert!(matches!(wait(panics).await, ExitReason::Panic(_)));
        wait(killed).await;
        assert!(pg::members("exit-a").is_empty(), "round {round}");
        assert!(pg::members("exit-b").is_empty(), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_member_or_those_the_filter_picks() {
    let members: Vec<_> = (0..5)
        .map(|_| spawn_handle(|mut ctx| async move { ctx.receive::<u32>().await }))
        .collect();
    let pids: Vec<Pid> = members.iter().map(|member| member.pid()).collect();
    for &pid in &pids {
        pg::join("broadcast-filter", pid).unwrap();
    }
    // The first two by filter, then everyone; each takes the first number it gets.
    let picked: HashSet<Pid> = pids[..2].iter().copied().collect();
    assert_eq!(
        pg::broadcast_if("broadcast-filter", 1_u32, |pid| picked.contains(&pid)),
        2
    );
    assert_eq!(pg::broadcast("broadcast-filter", 2_u32), 5);
    for (i, member) in members.into_iter().enumerate() {
        let expected = if i < 2 { 1 } else { 2 };
        assert_eq!(bounded("a member", member.join()).await, Ok(expected));
    }
    assert_eq!(pg::broadcast("broadcast-filter", 3_u32), 0);
    assert_eq!(pg::broadcast("no-such-group", 3_u32), 0);
}

/// What one process broadcasts and then sends to a member arrives in that order; repeated, with
/// the sender and the member on two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_then_a_send_arrive_in_order() {
    for _ in 0..100 {
        let member = spawn_handle(|mut ctx| async move {
            let mut got = Vec::new();
            for _ in 0..20 {
                got.push(ctx.receive::<u32>().await);
            }
            got
        });
        let pid = member.pid();
        pg::join("order", pid).unwrap();
        let sender = spawn_handle(move |_ctx| async move {
            for n in 0..10_u32 {
                pg::broadcast("order", n * 2);
                send(pid, n * 2 + 1);
            }
        });
        bounded("the sender", sender.join()).await.unwrap();
        let got = bounded("the member", member.join()).await.unwrap();
        assert_eq!(got, (0..20).collect::<Vec<u32>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_members_each_get_a_broadcast_once() {
    const N: usize = 10_000;
    let collector = spawn_handle(|mut ctx| async move {
        let mut seen = HashSet::new();
        while seen.len() < N {
            let from: Pid = ctx.receive().await;
            assert!(seen.insert(from), "{from} answered twice");
        }
        seen.len()
    });
    let to = collector.pid();
    let members: Vec<Pid> = (0..N)
        .map(|_| {
            spawn(move |mut ctx| async move {
                let _: u64 = ctx.receive().await;
                send(to, ctx.pid());
            })
        })
        .collect();
    for &pid in &members {
        pg::join("ten-thousand", pid).unwrap();
    }
    assert_eq!(pg::members("ten-thousand").len(), N);
    assert_eq!(pg::broadcast("ten-thousand", 42_u64), N);
    assert_eq!(bounded("every answer", collector.join()).await, Ok(N));
    for pid in members {
        bounded("a member ends", wait(pid)).await;
    }
    assert!(pg::members("ten-thousand").is_empty());
}
