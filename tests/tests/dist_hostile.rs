//! A node keeps serving the peer it shares a cookie with while strangers hit its port: garbage,
//! a frame length far over the cap for unauthenticated peers, a frame cut short, and a flood of
//! connections that say nothing. Each test makes a call from node `a` to a server on node `b`
//! before and after (or during) the attack, through the public API; the attackers are raw TCP
//! sockets on 127.0.0.1.

use std::time::Duration;

use ferrotp::{
    CallError, Pid,
    dist::{DistConfig, LocalNode},
    prelude::*,
};
use ferrotp_tests::dist::{Counter, bounded};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const COOKIE: &str = "dist-hostile test cookie";

/// The incoming-handshake timeouts of a node under attack: far longer than [`LIMIT`], so a
/// hostile connection that the node closes within the test was closed for what it sent, not
/// because its time ran out.
const PATIENT: Duration = Duration::from_secs(60);

fn config(name: &str) -> DistConfig {
    DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE).unwrap()
}

async fn start(config: DistConfig) -> LocalNode {
    LocalNode::start(config).await.unwrap()
}

/// The address a node listens on: the `host:port` of its name.
fn addr(node: &LocalNode) -> &'static str {
    node.name().split_once('@').unwrap().1
}

/// Nodes `a` and `b` (`b` configured by `b_config`), and a counter on `b` that `a` has called
/// once, so that the two are connected when the attack starts.
async fn pair(tag: &str, b_config: DistConfig) -> (LocalNode, LocalNode, Pid) {
    let a = start(config(&format!("hostile-{tag}-a"))).await;
    let b = start(b_config).await;
    let counter = b.scope(async { Counter::start(()).await.unwrap() }).await;
    let pid = counter.pid();
    assert_eq!(add_from(&a, pid, 0).await, Ok(0));
    assert_eq!(a.nodes(), vec![b.name().to_owned()]);
    (a, b, pid)
}

/// A typed call from `node` to the counter `pid` on another node.
async fn add_from(node: &LocalNode, pid: Pid, n: i64) -> Result<i64, CallError> {
    let call = node.scope(async move { ServerRef::<Counter>::from_pid(pid).unwrap().add(n).await });
    bounded("a call to the counter", call).await
}

/// A call by handler name from `node` to the counter `pid`.
async fn add_by_name(
    node: &LocalNode,
    pid: Pid,
    n: i64,
) -> Result<i64, CallError<serde_json::Value>> {
    let call = node.scope(ferrotp::call::<i64>(pid, "add", n));
    bounded("a call by name to the counter", call).await
}

/// A stranger's connection to `node`'s port.
async fn stranger(node: &LocalNode) -> TcpStream {
    bounded("connecting to the node", TcpStream::connect(addr(node)))
        .await
        .unwrap()
}

/// Waits until the node at the other end closes `stream` (an end of stream, or a reset if it
/// closed with bytes unread), reading and dropping whatever it sends meanwhile.
async fn closed_by_node(stream: &mut TcpStream) {
    bounded("the node closing a hostile connection", async {
        let mut buf = [0; 1024];
        for _ in 0..1_000 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        panic!("the node kept sending to a stranger");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_port_is_closed_and_the_peer_is_still_served() {
    let b_config = config("hostile-garbage-b")
        .first_frame_timeout(PATIENT)
        .handshake_timeout(PATIENT);
    let (a, b, counter) = pair("garbage", b_config).await;
    let garbage: [&[u8]; 5] = [
        // A client of another protocol: "GET " read as a length is far over the cap.
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        // Every bit set.
        &[0xFF; 64],
        // A well-framed payload that is no handshake message.
        &[0, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef],
        // A frame with a zero length: nothing to read as a `Hello`.
        &[0, 0, 0, 0],
        // A frame one byte over the 1 KiB cap, whole.
        &[[0, 0, 4, 1].as_slice(), &[7; 1025]].concat(),
    ];
    let mut strangers = Vec::new();
    for bytes in garbage {
        let mut stream = stranger(&b).await;
        stream.write_all(bytes).await.unwrap();
        strangers.push(stream);
    }
    // While the strangers' connections are open.
    assert_eq!(add_from(&a, counter, 1).await, Ok(1));
    for stream in &mut strangers {
        closed_by_node(stream).await;
    }
    assert_eq!(add_by_name(&a, counter, 1).await, Ok(2));
    assert_eq!(a.nodes(), vec![b.name().to_owned()]);
    assert_eq!(b.nodes(), vec![a.name().to_owned()]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_prefix_of_four_gigabytes_is_refused_before_it_is_read() {
    let b_config = config("hostile-huge-b")
        .first_frame_timeout(PATIENT)
        .handshake_timeout(PATIENT);
    let (a, b, counter) = pair("huge", b_config).await;
    let mut stream = stranger(&b).await;
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    // The first bytes of the promised 4 GiB; the node must not wait for (or make room for) the
    // rest. It may close before they are all written.
    let _ = stream.write_all(&[0x5A; 64 * 1024]).await;
    assert_eq!(add_from(&a, counter, 1).await, Ok(1));
    closed_by_node(&mut stream).await;
    assert_eq!(add_by_name(&a, counter, 1).await, Ok(2));
    assert_eq!(a.nodes(), vec![b.name().to_owned()]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_cut_short_by_the_end_of_the_stream_is_closed() {
    let b_config = config("hostile-truncated-b")
        .first_frame_timeout(PATIENT)
        .handshake_timeout(PATIENT);
    let (a, b, counter) = pair("truncated", b_config).await;
    let mut stream = stranger(&b).await;
    // A frame of 50 bytes, three of them sent, then the end of the stream.
    stream.write_all(&[0, 0, 0, 50, 1, 2, 3]).await.unwrap();
    stream.shutdown().await.unwrap();
    assert_eq!(add_from(&a, counter, 1).await, Ok(1));
    closed_by_node(&mut stream).await;
    assert_eq!(add_by_name(&a, counter, 1).await, Ok(2));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_never_finishes_is_closed_after_the_first_frame_timeout() {
    let b_config = config("hostile-stalled-b")
        .first_frame_timeout(Duration::from_millis(300))
        .handshake_timeout(PATIENT);
    let (a, b, counter) = pair("stalled", b_config).await;
    let mut stream = stranger(&b).await;
    // Three bytes of a frame of 50, and the connection left open.
    stream.write_all(&[0, 0, 0, 50, 1, 2, 3]).await.unwrap();
    assert_eq!(add_from(&a, counter, 1).await, Ok(1));
    closed_by_node(&mut stream).await;
    assert_eq!(add_from(&a, counter, 1).await, Ok(2));
    a.stop().await;
    b.stop().await;
}

/// How many silent connections a flood opens.
const FLOOD: usize = 250;

/// `FLOOD` connections to `node` that say nothing.
async fn flood(node: &LocalNode) -> Vec<TcpStream> {
    let mut silent = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        silent.push(stranger(node).await);
    }
    silent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_peer_connects_while_a_flood_of_silent_connections_is_held_open() {
    let handshake = Duration::from_secs(3);
    // The silent connections would be held for a minute: every one of them is open while the
    // new peer connects.
    let b_config = config("hostile-flood-b")
        .first_frame_timeout(PATIENT)
        .handshake_timeout(handshake);
    let (a, b, counter) = pair("flood", b_config).await;
    let silent = flood(&b).await;
    assert_eq!(add_from(&a, counter, 1).await, Ok(1));

    let c = start(config("hostile-flood-c").handshake_timeout(handshake)).await;
    let connected = tokio::time::timeout(handshake, c.connect(b.name())).await;
    assert_eq!(
        connected.map_err(|_| "timed out"),
        Ok(Ok(())),
        "a peer with the cookie must get through a flood of {FLOOD} silent connections"
    );
    assert_eq!(add_from(&c, counter, 1).await, Ok(2));
    assert_eq!(add_by_name(&a, counter, 1).await, Ok(3));
    assert_eq!(b.nodes(), {
        let mut both = vec![a.name().to_owned(), c.name().to_owned()];
        both.sort();
        both
    });
    drop(silent);
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_over_the_handshake_limit_is_closed_and_the_places_come_back() {
    // Room for 16 handshakes: the flood fills it, the rest of the flood is closed at once, and
    // the 16 that hold a place are closed after the first-frame timeout.
    let b_config = config("hostile-limit-b")
        .max_handshakes(16)
        .first_frame_timeout(Duration::from_millis(300))
        .handshake_timeout(Duration::from_secs(3));
    let (a, b, counter) = pair("limit", b_config).await;
    let mut silent = flood(&b).await;
    // The authenticated peer's connection takes no place.
    assert_eq!(add_from(&a, counter, 1).await, Ok(1));
    for stream in &mut silent {
        closed_by_node(stream).await;
    }
    let c = start(config("hostile-limit-c")).await;
    assert_eq!(bounded("connecting c", c.connect(b.name())).await, Ok(()));
    assert_eq!(add_from(&c, counter, 1).await, Ok(2));
    assert_eq!(add_from(&a, counter, 1).await, Ok(3));
    a.stop().await;
    b.stop().await;
    c.stop().await;
}
