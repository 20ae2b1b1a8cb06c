//! Authentication between nodes, through the public API (and raw TCP for a forged handshake): a
//! node with another cookie is refused with a typed error, and everything sent towards it fails
//! as unreachable; failed attempts, however many and whoever they claim to be, leave an existing
//! connection alone (ractor issue #451: a failed handshake from a node claiming an existing
//! peer's name tore down the healthy connection); and both sides log the refusal.

use std::{
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use ferrotp::{
    CallError, Down, Exit, ExitReason, Pid,
    dist::{ConnectError, DistConfig, LocalNode, Refusal},
    prelude::*,
};
use ferrotp_tests::dist::{Counter, SpawnForTest, bounded, counter_on};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const COOKIE: &str = "dist-auth test cookie";
const WRONG_COOKIE: &str = "dist-auth: not the cookie";

async fn node(name: &str, cookie: &str) -> LocalNode {
    let config = DistConfig::new(&format!("{name}@127.0.0.1:0"), cookie).unwrap();
    LocalNode::start(config).await.unwrap()
}

/// The address a node listens on: the `host:port` of its name.
fn addr(node: &LocalNode) -> &'static str {
    node.name().split_once('@').unwrap().1
}

/// What comes before the `@` of a node's name.
fn short_name(node: &LocalNode) -> &'static str {
    node.name().split_once('@').unwrap().0
}

/// A call by handler name from `node` to the counter `pid`.
async fn add_from(node: &LocalNode, pid: Pid, n: i64) -> Result<i64, CallError<serde_json::Value>> {
    let call = node.scope(ferrotp::call::<i64>(pid, "add", n));
    bounded("a call to the counter", call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cookie_is_refused_and_whatever_is_sent_there_fails_as_unreachable() {
    let a = node("auth-refused-a", COOKIE).await;
    let b = node("auth-refused-b", WRONG_COOKIE).await;
    assert_eq!(
        bounded("connect", a.connect(b.name())).await,
        Err(ConnectError::RefusedByPeer(Refusal::BadCookie))
    );
    assert_eq!(
        bounded("connect", b.connect(a.name())).await,
        Err(ConnectError::RefusedByPeer(Refusal::BadCookie))
    );
    let counter = counter_on(&b).await;
    assert_eq!(
        add_from(&a, counter, 1).await,
        Err(CallError::NoConnection(counter))
    );
    let typed = a
        .scope(async move {
            ServerRef::<Counter>::from_pid(counter)
                .unwrap()
                .add(1)
                .await
        })
        .await;
    assert_eq!(typed, Err(CallError::NoConnection(counter)));
    let watcher = a.spawn_handle_for_test(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.link(counter).unwrap();
        let exit: Exit = ctx.receive().await;
        let monitor = ctx.monitor(counter);
        let down: Down = ctx.receive().await;
        assert_eq!(down.monitor, monitor);
        (exit, down)
    });
    let (exit, down) = bounded("the exit signal and the Down", watcher).await;
    assert_eq!(
        (exit.from, exit.reason),
        (counter, ExitReason::NoConnection)
    );
    assert_eq!((down.pid, down.reason), (counter, ExitReason::NoConnection));
    assert!(a.nodes().is_empty(), "{:?}", a.nodes());
    assert!(b.nodes().is_empty(), "{:?}", b.nodes());
    // The counter on b never heard of any of it.
    assert_eq!(add_from(&b, counter, 0).await, Ok(0));
    a.stop().await;
    b.stop().await;
}

/// A handshake `Hello`, forged: the frame a dialer named `name` (incarnation `creation`) sends
/// to reach the node named `to`. The handshake's messages are postcard-encoded (variant index,
/// then the fields; integers as LEB128 varints, strings with their length first) in a 4-byte
/// big-endian length-prefixed frame.
fn forged_hello(name: &str, creation: u32, to: &str, last_conn: u64) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    fn string(out: &mut Vec<u8>, s: &str) {
        varint(out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    let mut hello = vec![0]; // Hello
    varint(&mut hello, 0x4645_5250); // the magic, "FERP"
    varint(&mut hello, 1); // versions 1 to 9: the node picks its own from the range
    varint(&mut hello, 9);
    string(&mut hello, name);
    varint(&mut hello, u64::from(creation));
    string(&mut hello, to);
    varint(&mut hello, last_conn);
    varint(&mut hello, 0); // flags
    frame(&hello)
}

/// A forged `Proof`: a nonce and a MAC that no cookie made.
fn forged_proof() -> Vec<u8> {
    let mut proof = vec![2]; // Proof
    proof.extend_from_slice(&[0x11; 32]); // the dialer's nonce
    proof.extend_from_slice(&[0x22; 32]); // the MAC
    frame(&proof)
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// Reads one frame's payload from `stream`.
async fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    bounded("a frame from the node", async {
        let mut len = [0; 4];
        stream.read_exact(&mut len).await.unwrap();
        let len = u32::from_be_bytes(len);
        assert!(len <= 1024, "a handshake frame of {len} bytes");
        let mut payload = vec![0; len as usize];
        stream.read_exact(&mut payload).await.unwrap();
        payload
    })
    .await
}

/// Waits until the node at the other end closes `stream`.
async fn closed_by_node(stream: &mut TcpStream) {
    bounded("the node closing the connection", async {
        let mut buf = [0; 1024];
        for _ in 0..1_000 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        panic!("the node kept sending");
    })
    .await;
}

/// A stranger that claims to be the node named `claimed`, dialing `to` with a forged handshake:
/// the node answers the `Hello` with a `Challenge`, the forged `Proof` with a refusal
/// (`BadCookie`), and closes.
async fn impostor(to: &LocalNode, claimed: &str, creation: u32, last_conn: u64) {
    let mut stream = bounded("connecting", TcpStream::connect(addr(to)))
        .await
        .unwrap();
    stream
        .write_all(&forged_hello(claimed, creation, to.name(), last_conn))
        .await
        .unwrap();
    let challenge = read_frame(&mut stream).await;
    assert_eq!(challenge.first(), Some(&1), "a Challenge: {challenge:?}");
    stream.write_all(&forged_proof()).await.unwrap();
    // Refused(BadCookie).
    assert_eq!(read_frame(&mut stream).await, [4, 0]);
    closed_by_node(&mut stream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_in_a_peers_name_leave_its_connection_alone() {
    let a = node("auth-451-a", COOKIE).await;
    let b = node("auth-451-b", COOKIE).await;
    let counter = counter_on(&b).await;
    assert_eq!(add_from(&a, counter, 1).await, Ok(1));

    // A process on each side, linked and monitoring each other across the connection: were the
    // connection lost (even to be replaced at once), each would be told, by an exit signal and
    // a `Down`, before anything that comes after on a new connection.
    let on_b = b.spawn_handle_for_test(|mut ctx| async move {
        ctx.trap_exit(true);
        let on_a: Pid = ctx.receive().await;
        ctx.monitor(on_a);
        // Frames are applied in order: once `on_a` has this, a has the monitor.
        ferrotp::send(on_a, 0_u64);
        // Asked, once the attacks are over: how many messages arrived meanwhile.
        let asker: Pid = ctx.receive().await;
        ferrotp::send(asker, ctx.mailbox_len() as u64);
        ctx.receive::<String>().await
    });
    let on_b_pid = on_b.pid;
    let (ready, set_up) = tokio::sync::oneshot::channel();
    let (attacked, after_attacks) = tokio::sync::oneshot::channel::<()>();
    let on_a = a.spawn_handle_for_test(move |mut ctx| async move {
        ctx.trap_exit(true);
        ctx.link(on_b_pid).unwrap();
        ctx.monitor(on_b_pid);
        ferrotp::send(on_b_pid, ctx.pid());
        assert_eq!(ctx.receive::<u64>().await, 0);
        ready.send(()).unwrap();
        after_attacks.await.unwrap();
        // A round trip on the connection, then a look at the mailbox: a lost connection would
        // have left an `Exit` and a `Down` here before the reply.
        assert_eq!(ferrotp::call::<i64>(counter, "add", 1).await, Ok(102));
        let here = ctx.mailbox_len();
        ferrotp::send(on_b_pid, ctx.pid());
        let there: u64 = ctx.receive().await;
        ferrotp::send(on_b_pid, String::from("done"));
        (here, there)
    });
    bounded("the link and monitors set up", set_up)
        .await
        .unwrap();

    // A node with a's name before the `@` (on another port: one process cannot host two nodes
    // of one full name) and the wrong cookie, over and over.
    let evil = node(short_name(&a), WRONG_COOKIE).await;
    for _ in 0..10 {
        assert_eq!(
            bounded("the impostor node's connect", evil.connect(b.name())).await,
            Err(ConnectError::RefusedByPeer(Refusal::BadCookie))
        );
    }
    // Strangers claiming a's exact name, with creations and last connection ids of every kind
    // (one of them may even be a's): each is challenged, fails its proof, and is refused.
    for (creation, last_conn) in [(0, 0), (1, 0), (u32::MAX, 1), (12_345, u64::MAX)] {
        impostor(&b, a.name(), creation, last_conn).await;
    }
    // One that says Hello in a's name, then garbage where the proof should be.
    let mut stream = bounded("connecting", TcpStream::connect(addr(&b)))
        .await
        .unwrap();
    stream
        .write_all(&forged_hello(a.name(), 1, b.name(), 0))
        .await
        .unwrap();
    assert_eq!(read_frame(&mut stream).await.first(), Some(&1));
    stream.write_all(&[0, 0, 0, 3, 9, 9, 9]).await.unwrap();
    closed_by_node(&mut stream).await;
    // And one that replays a Hello in a's name and says no more.
    let mut stream = bounded("connecting", TcpStream::connect(addr(&b)))
        .await
        .unwrap();
    let hello = forged_hello(a.name(), 1, b.name(), 0);
    stream.write_all(&hello).await.unwrap();
    assert_eq!(read_frame(&mut stream).await.first(), Some(&1));
    stream.write_all(&hello).await.unwrap();
    closed_by_node(&mut stream).await;

    // The same connection still carries calls both ways.
    assert_eq!(a.nodes(), vec![b.name().to_owned()]);
    assert_eq!(b.nodes(), vec![a.name().to_owned()]);
    assert_eq!(add_from(&a, counter, 100).await, Ok(101));
    let counter_on_a = counter_on(&a).await;
    assert_eq!(add_from(&b, counter_on_a, 5).await, Ok(5));
    attacked.send(()).unwrap();
    assert_eq!(
        bounded("the processes' findings", on_a).await,
        (0, 0),
        "messages other than expected on a's and b's side: the connection was lost"
    );
    assert_eq!(bounded("on_b", on_b).await, "done");
    assert_eq!(a.nodes(), vec![b.name().to_owned()]);
    a.stop().await;
    b.stop().await;
    evil.stop().await;
}

/// Every line a subscriber wrote, for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The first line with `what` in it, once one is written.
    async fn line_with(&self, what: &str) -> String {
        bounded(&format!("a log line with `{what}`"), async {
            // Up to about 4 s, then the test fails showing what was written.
            for _ in 0..2_000 {
                if let Some(line) = self.text().lines().find(|l| l.contains(what)) {
                    return line.to_owned();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            panic!("no line with `{what}` in\n{}", self.text());
        })
        .await
    }
}

/// Both sides log a refused connection at `warn`: the acceptor with the dialer's address and
/// the reason, the dialer with the node it dialed and the reason.
///
/// The nodes run on a runtime of this test's own, whose threads have a name of their own; the
/// subscriber, global (with a thread-local one, `tracing` caches "no interest" for a callsite
/// that another test's thread reaches first), keeps only those threads' events.
#[test]
fn a_refusal_is_logged_at_warn_on_both_sides() {
    use tracing_subscriber::{Layer, filter::dynamic_filter_fn, layer::SubscriberExt};
    const THREADS: &str = "dist-auth-logged";
    let captured = Captured::default();
    let writer = captured.clone();
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        // Decided for each event (a `filter_fn` would decide once per callsite, on whichever
        // thread saw it first).
        .with_filter(dynamic_filter_fn(|_, _| {
            std::thread::current().name() == Some(THREADS)
        }));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("no other test of this binary sets a global subscriber");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(THREADS)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dialer = node("auth-log-dialer", COOKIE).await;
        let acceptor = node("auth-log-acceptor", WRONG_COOKIE).await;
        // Interest another thread cached for a callsite while the subscriber was being set,
        // computed afresh.
        tracing::callsite::rebuild_interest_cache();
        let refused = dialer.connect(acceptor.name());
        assert_eq!(
            bounded("connect", refused).await,
            Err(ConnectError::RefusedByPeer(Refusal::BadCookie))
        );
        let dialer_line = captured.line_with("could not connect to a node").await;
        assert!(dialer_line.contains("WARN"), "{dialer_line}");
        assert!(
            dialer_line.contains(&format!("node=\"{}\"", acceptor.name())),
            "{dialer_line}"
        );
        assert!(dialer_line.contains("the cookies differ"), "{dialer_line}");
        // The acceptor logs once it has sent the refusal, maybe after the dialer returned.
        let acceptor_line = captured.line_with("refused a connection").await;
        assert!(acceptor_line.contains("WARN"), "{acceptor_line}");
        assert!(acceptor_line.contains("peer=127.0.0.1:"), "{acceptor_line}");
        assert!(
            acceptor_line.contains("the cookies differ"),
            "{acceptor_line}"
        );
        dialer.stop().await;
        acceptor.stop().await;
    });
}
