//! Calls by name across restarts: a supervised server's name stays reserved while it restarts, so
//! no call made meanwhile is lost; plain names keep OTP's semantics.

use std::collections::HashMap;
use std::time::Duration;

use ferrotp::prelude::*;
use ferrotp::supervisor::{Child, Supervisor};
use ferrotp::{INFINITY, NamedRef};
use tokio::time::Instant;

/// A small key-value store: the state is lost on a crash, as a restarted server's would be.
struct Kv {
    map: HashMap<String, String>,
    log: Vec<String>,
}

#[gen_server]
impl Kv {
    async fn init(slow_init: Duration) -> Self {
        tokio::time::sleep(slow_init).await;
        Kv {
            map: HashMap::new(),
            log: Vec::new(),
        }
    }

    #[install("put")]
    async fn put(&mut self, entry: (String, String)) {
        self.map.insert(entry.0, entry.1);
    }

    #[install("get")]
    async fn get(&mut self, key: String) -> Option<String> {
        self.map.get(&key).cloned()
    }

    #[install("note")]
    async fn note(&mut self, line: String) {
        self.log.push(line);
    }

    #[install("log")]
    async fn log(&mut self) -> Vec<String> {
        self.log.clone()
    }

    #[install("crash")]
    async fn crash(&mut self) {
        panic!("kv crashed")
    }

    #[install("quit")]
    async fn quit(&mut self) -> Reply<()> {
        Reply::Stop(ExitReason::Normal)
    }

    #[info]
    async fn on_line(&mut self, line: String) {
        self.log.push(line);
    }
}

fn kv_child(name: &str, slow_init: Duration) -> Child {
    Child::server::<Kv>("kv", slow_init).name(name)
}

#[tokio::test(start_paused = true)]
async fn a_named_reference_resolves_the_name_at_every_call() {
    let kv = ServerRef::<Kv>::named("names-plain");
    assert_eq!(
        kv.get("a".into()).await,
        Err(CallError::NotRegistered("names-plain".into()))
    );
    let first = Kv::start(Duration::ZERO).name("names-plain").await.unwrap();
    kv.put(("a".into(), "1".into())).await.unwrap();
    assert_eq!(kv.get("a".into()).await, Ok(Some("1".into())));
    assert_eq!(kv.lookup(), Ok(first));
    // A plain registered name of an unsupervised server keeps OTP's semantics: gone with it.
    first.stop(ExitReason::Shutdown).await.unwrap();
    assert_eq!(
        kv.get("a".into()).await,
        Err(CallError::NotRegistered("names-plain".into()))
    );
    let second = Kv::start(Duration::ZERO).name("names-plain").await.unwrap();
    assert_eq!(kv.get("a".into()).await, Ok(None));
    // Dynamic calls by name too.
    let value: Option<String> = kv.call("get", "a").await.unwrap();
    assert_eq!(value, None);
    kv.stop(ExitReason::Shutdown).await.unwrap();
    assert!(!ferrotp::is_alive(second.pid()));
}

/// The small supervised store, on the multi-threaded runtime: a call right after a crash
/// reaches the restarted server, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_by_name_right_after_a_crash_reaches_the_restarted_server() {
    let sup = Supervisor::one_for_one()
        .intensity(1000, Duration::from_secs(1))
        .child(kv_child("names-kv", Duration::ZERO))
        .start()
        .await
        .unwrap();
    let kv = ServerRef::<Kv>::named("names-kv");
    for round in 0..300 {
        kv.put(("round".into(), round.to_string())).await.unwrap();
        assert!(matches!(kv.crash().await, Err(CallError::Exited { .. })));
        // The restarted server has lost the state, and answers.
        assert_eq!(kv.get("round".into()).await, Ok(None), "round {round}");
    }
    sup.stop(ExitReason::Shutdown).await.unwrap();
}

/// A one-for-all supervisor restarting the store takes a second to stop its sibling first:
/// meanwhile the name is reserved. Calls made then wait for the new server; casts and plain
/// messages to the name are parked and delivered to it, in the order they were sent; nobody else
/// can take the name.
#[tokio::test(start_paused = true)]
async fn during_a_restart_the_name_is_reserved_and_nothing_sent_to_it_is_lost() {
    use ferrotp_tests::workers::{Setup, Worker};
    let sibling = Setup {
        slow_terminate: Some(Duration::from_secs(1)),
        ..Setup::new("sibling", Pid::ROOT)
    };
    let sup = Supervisor::one_for_all()
        .intensity(10, Duration::from_secs(10))
        .child(kv_child("names-slow", Duration::ZERO))
        .child(Child::server::<Worker>("sibling", sibling))
        .start()
        .await
        .unwrap();
    let kv = ServerRef::<Kv>::named("names-slow");
    let _ = kv.crash().await;
    let start = Instant::now();
    assert_eq!(
        ferrotp::whereis("names-slow"),
        None,
        "reserved, not registered"
    );
    let squatter = Kv::start(Duration::ZERO).name("names-slow").await;
    assert!(
        matches!(squatter, Err(ferrotp::StartError::AlreadyStarted { pid, .. }) if pid == sup.pid()),
        "{squatter:?}"
    );
    kv.cast_note("one".into());
    send_named("names-slow", "two".to_string()).unwrap();
    kv.cast_note("three".into());
    let log = kv.log().await.unwrap();
    assert_eq!(log, ["one", "two", "three"]);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited for the new server"
    );
    sup.stop(ExitReason::Shutdown).await.unwrap();
}

/// When the supervisor gives up, or will not restart the child, calls waiting for the name fail
/// at once with the reason.
#[tokio::test(start_paused = true)]
async fn calls_by_name_fail_at_once_when_there_will_be_no_new_server() {
    use ferrotp_tests::workers::{Setup, Worker};
    // Busy for a second stopping a sibling when the store crashes; then gives up on it.
    let sibling = Setup {
        slow_terminate: Some(Duration::from_secs(1)),
        ..Setup::new("sibling", Pid::ROOT)
    };
    let sup = Supervisor::one_for_one()
        .intensity(0, Duration::from_secs(5))
        .child(Child::server::<Worker>("sibling", sibling))
        .child(kv_child("names-giveup", Duration::ZERO))
        .start()
        .await
        .unwrap();
    let kv = ServerRef::<Kv>::named("names-giveup");
    let busy = tokio::spawn(async move {
        sup.terminate_child_timeout("sibling".into(), INFINITY)
            .await
    });
    tokio::task::yield_now().await;
    let _ = kv.crash().await;
    // Made while the name is reserved: it waits for the supervisor's decision, and fails as soon
    // as it gives up, with its reason.
    let start = Instant::now();
    let result = kv.get_timeout("a".into(), INFINITY).await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(
        matches!(
            &result,
            Err(CallError::Exited {
                reason: ExitReason::MaxRestartIntensity,
                ..
            })
        ),
        "{result:?}"
    );
    busy.await.unwrap().unwrap();
    assert_eq!(wait(sup.pid()).await, ExitReason::MaxRestartIntensity);
    assert_eq!(
        kv.get("a".into()).await,
        Err(CallError::NotRegistered("names-giveup".into()))
    );

    // A transient child that ends normally is not restarted: its callers learn why.
    let sup = Supervisor::one_for_one()
        .child(kv_child("names-done", Duration::ZERO).transient())
        .start()
        .await
        .unwrap();
    let kv: NamedRef<Kv> = ServerRef::named("names-done");
    let quitting = kv.quit();
    let asking = kv.get_timeout("a".into(), INFINITY);
    let (quit, asked) = tokio::join!(quitting, asking);
    assert!(matches!(
        quit,
        Err(CallError::Exited {
            reason: ExitReason::Normal,
            ..
        })
    ));
    assert!(
        matches!(
            &asked,
            Err(CallError::Exited {
                reason: ExitReason::Normal,
                ..
            })
        ),
        "{asked:?}"
    );
    let start = Instant::now();
    let late = kv.get_timeout("a".into(), INFINITY).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(late, Err(CallError::NotRegistered("names-done".into())));
    sup.stop(ExitReason::Shutdown).await.unwrap();
}
