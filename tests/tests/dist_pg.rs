//! Process groups across nodes in one test binary, over 127.0.0.1 on ports the OS chose: what
//! one node's joins, leaves and exits look like from another, a node going down, broadcast
//! across nodes, and a scope that starts after the connection.

use std::collections::HashSet;

use ferrotp::{
    Pid,
    dist::{DistConfig, LocalNode},
    pg::{self, JoinError},
    prelude::*,
};
use ferrotp_tests::dist::{SpawnForTest, bounded, eventually};

const COOKIE: &str = "dist-pg test cookie, 16+";

async fn node(name: &str) -> LocalNode {
    let config = DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE).unwrap();
    LocalNode::start(config).await.unwrap()
}

/// `group`'s members as seen from `node`.
fn members_on(node: &LocalNode, group: &str) -> HashSet<Pid> {
    // Reads never wait: one poll of the node's scope around one is enough.
    now(node.scope(async { pg::members(group) }))
        .into_iter()
        .collect()
}

/// The output of a future that never waits, from one poll.
fn now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a read waited"),
    }
}

/// A process on `node` that waits for a `()` and then ends.
fn idle_on(node: &LocalNode) -> Pid {
    node.spawn(|mut ctx| async move {
        ctx.receive::<()>().await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_and_an_exit_on_one_node_are_seen_on_the_other() {
    let (a, b) = (node("pg_a1").await, node("pg_b1").await);
    bounded("connect", a.connect(b.name())).await.unwrap();
    // Both scopes have run and synced before the join, which b then learns of as a change: each
    // has seen a member of the other.
    let (warm_a, warm_b) = (idle_on(&a), idle_on(&b));
    a.scope(async { pg::join("warm", warm_a) }).await.unwrap();
    b.scope(async { pg::join("warm", warm_b) }).await.unwrap();
    eventually("the scopes sync", || {
        members_on(&a, "warm").len() == 2 && members_on(&b, "warm").len() == 2
    })
    .await;
    assert!(members_on(&b, "chat").is_empty());
    let member = idle_on(&a);
    a.scope(async { pg::join("chat", member) }).await.unwrap();
    eventually("the join reaches b", || {
        members_on(&b, "chat") == HashSet::from([member])
    })
    .await;
    // On b it is a member of another node.
    assert!(
        b.scope(async { pg::local_members("chat") })
            .await
            .is_empty()
    );
    assert_eq!(
        b.scope(async { pg::groups() }).await,
        vec!["chat".to_string(), "warm".to_string()]
    );

    a.scope(async { send(member, ()) }).await;
    bounded("the member ends", a.scope(wait(member))).await;
    assert!(members_on(&a, "chat").is_empty());
    eventually("the exit reaches b", || members_on(&b, "chat").is_empty()).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_started_after_the_connection_learns_the_groups_there() {
    for round in 0..3 {
        let (a, b) = (
            node(&format!("pg_a2_{round}")).await,
            node(&format!("pg_b2_{round}")).await,
        );
        bounded("connect", a.connect(b.name())).await.unwrap();
        // b has never used pg when a's members join.
        let members: Vec<Pid> = (0..3).map(|_| idle_on(&a)).collect();
        for &member in &members {
            a.scope(async { pg::join("late", member) }).await.unwrap();
        }
        eventually("b learns a's groups", || {
            members_on(&b, "late") == members.iter().copied().collect()
        })
        .await;
        // And a learns b's, joined after.
        let theirs = idle_on(&b);
        b.scope(async { pg::join("late", theirs) }).await.unwrap();
        eventually("a learns b's member", || {
            members_on(&a, "late").contains(&theirs)
        })
        .await;
        a.stop().await;
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_s_members_disappear_from_the_others() {
    let (a, b, c) = (
        node("pg_a3").await,
        node("pg_b3").await,
        node("pg_c3").await,
    );
    bounded("connect a-b", a.connect(b.name())).await.unwrap();
    bounded("connect a-c", a.connect(c.name())).await.unwrap();
    let on_b = idle_on(&b);
    let on_c = idle_on(&c);
    let on_a = idle_on(&a);
    b.scope(async { pg::join("three", on_b) }).await.unwrap();
    c.scope(async { pg::join("three", on_c) }).await.unwrap();
    a.scope(async { pg::join("three", on_a) }).await.unwrap();
    eventually("a sees every member", || {
        members_on(&a, "three") == HashSet::from([on_a, on_b, on_c])
    })
    .await;
    b.stop().await;
    eventually("b's member goes with b", || {
        members_on(&a, "three") == HashSet::from([on_a, on_c])
    })
    .await;
    // c is connected to a, not to b: it never saw b's member.
    eventually("c sees a's member", || {
        members_on(&c, "three") == HashSet::from([on_a, on_c])
    })
    .await;
    a.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_members_on_other_nodes() {
    let (a, b) = (node("pg_a4").await, node("pg_b4").await);
    bounded("connect", a.connect(b.name())).await.unwrap();
    let remote = b.spawn_handle_for_test(|mut ctx| async move {
        pg::join("everyone", ctx.pid()).unwrap();
        ctx.receive::<u64>().await
    });
    let local = a.spawn_handle_for_test(|mut ctx| async move {
        pg::join("everyone", ctx.pid()).unwrap();
        ctx.receive::<u64>().await
    });
    let (remote_pid, local_pid) = (remote.pid, local.pid);
    eventually("a sees both members", || {
        members_on(&a, "everyone") == HashSet::from([remote_pid, local_pid])
    })
    .await;
    let sent = a.scope(async { pg::broadcast("everyone", 7_u64) }).await;
    assert_eq!(sent, 2);
    assert_eq!(bounded("the remote member", remote).await, 7);
    assert_eq!(bounded("the local member", local).await, 7);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_node_s_own_processes_join_its_groups() {
    let (a, b) = (node("pg_a5").await, node("pg_b5").await);
    let on_b = idle_on(&b);
    assert_eq!(
        a.scope(async { pg::join("own", on_b) }).await,
        Err(JoinError::NotLocal(on_b))
    );
    assert!(a.scope(async { pg::leave("own", on_b) }).await.is_err());
    a.stop().await;
    b.stop().await;
}
