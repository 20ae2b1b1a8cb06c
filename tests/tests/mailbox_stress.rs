//! Senders waiting for room, given up at random on a multi-threaded runtime: none hangs, and
//! the process receives exactly the messages acknowledged.

use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use ferrotp::{MailboxLimit, Overflow, SpawnOpts, process_info, send_wait, spawn_opt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_given_up_at_random_never_hang_and_lose_nothing_acknowledged() {
    for round in 0..10_u64 {
        let received = Arc::new(AtomicU64::new(0));
        let r = received.clone();
        let cap = 1 + (round as usize % 3);
        let pid = spawn_opt(
            SpawnOpts::new().mailbox(MailboxLimit::new(
                NonZeroUsize::new(cap).unwrap(),
                Overflow::Block,
            )),
            // Counts numbers until `()`, sent once every sender is done.
            move |mut ctx| async move {
                while ctx.receive_any().await.is::<u64>() {
                    if r.fetch_add(1, Ordering::SeqCst) % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            },
        );
        let ok = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..8_u64)
            .map(|s| {
                let ok = ok.clone();
                tokio::spawn(async move {
                    for i in 0..300_u64 {
                        let t = Duration::from_micros(((s * 31 + i * 17 + round) % 50) * 10);
                        match tokio::time::timeout(t, send_wait(pid, i)).await {
                            Ok(Ok(())) => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(Err(e)) => panic!("unexpected {e:?}"),
                            Err(_) => {}
                        }
                    }
                })
            })
            .collect();
        let all = async {
            for t in tasks {
                t.await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .expect("senders hung");
        let info = process_info(pid).unwrap();
        assert_eq!(info.mailbox_waiting, 0, "stale waiters");
        assert_eq!((info.mailbox_dropped, info.mailbox_refused), (0, 0));
        send_wait(pid, ()).await.unwrap();
        ferrotp::wait(pid).await;
        assert_eq!(
            received.load(Ordering::SeqCst),
            ok.load(Ordering::SeqCst),
            "round {round}"
        );
    }
}
