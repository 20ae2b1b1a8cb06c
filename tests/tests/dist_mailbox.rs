//! A call from another node to a full mailbox is told so: `MailboxFull`, by pid and by name.

use std::{num::NonZeroUsize, sync::Arc, time::Duration};

use ferrotp::{
    CallError, MailboxLimit, Overflow,
    dist::{DistConfig, LocalNode},
    prelude::*,
    process_info,
};
use ferrotp_tests::mailboxes::Gated;
use tokio::sync::Semaphore;

const COOKIE: &str = "dist-mailbox test cookie";

async fn node(name: &str) -> LocalNode {
    let config = DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE).unwrap();
    LocalNode::start(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_another_node_to_a_full_mailbox_gets_mailbox_full() {
    let (a, b) = (node("mailbox-a").await, node("mailbox-b").await);
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let server = b
        .scope(async move {
            let limit = MailboxLimit::new(NonZeroUsize::MIN, Overflow::Refuse);
            let s = Gated::start(g).name("gated").mailbox(limit).await.unwrap();
            s.cast_hold();
            let pid = s.pid();
            for _ in 0..100_000 {
                let i = process_info(pid).unwrap();
                if i.handled != 0 && i.mailbox_len == 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            s.cast_echo(1); // full now
            s
        })
        .await;
    let pid = server.pid();
    let b_name = b.name();
    let (by_pid, by_name) = a
        .scope(async move {
            let remote = ServerRef::<Gated>::from_pid(pid).unwrap();
            let by_pid = tokio::time::timeout(Duration::from_secs(10), remote.echo(2)).await;
            let named = ServerRef::<Gated>::named_on("gated", b_name);
            let by_name = tokio::time::timeout(Duration::from_secs(10), named.echo(3)).await;
            (by_pid, by_name)
        })
        .await;
    let info = b.scope(async move { process_info(pid).unwrap() }).await;
    // Both callers were told: refused, not dropped.
    assert_eq!((info.mailbox_refused, info.mailbox_dropped), (2, 0));
    gate.add_permits(10);
    a.stop().await;
    b.stop().await;
    assert_eq!(by_pid.unwrap(), Err(CallError::MailboxFull(pid)), "by pid");
    // By name, the error names the node (its pid 0), as every by-name error from there does.
    assert!(
        matches!(by_name.unwrap(), Err(CallError::MailboxFull(_))),
        "by name"
    );
}
