//! A peer that stops reading: the heartbeat notices a write stuck for a whole tick time, the
//! outbox's cap a peer that reads too slowly, and either ends the connection, so that what rode
//! on it fails with `NoConnection` instead of hanging. The end-to-end tests authenticate a raw
//! peer over TCP on 127.0.0.1 that keeps ticking and never reads.

use std::{future::Future, net::SocketAddr, time::Instant};

use bytes::BytesMut;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpSocket,
    sync::oneshot,
};

use super::*;
use crate::{
    CallError, Down, ExitReason, Pid,
    dist::{
        LocalNode, NodeDown,
        authenticate::dial,
        frame::{Codec, Kind},
        handshake::{Cookie, Identity, Status},
        monitor_node,
    },
    process::node_core,
};

/// How long any one wait may take before a test fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(what: &str, work: F) -> F::Output {
    tokio::time::timeout(LIMIT, work)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {LIMIT:?}"))
}

/// Queues one frame with a payload of `len` bytes.
fn push(outbox: &Outbox, len: usize) {
    outbox
        .push::<()>(Kind::Send, Codec::Postcard, |out| {
            out.extend_from_slice(&vec![7; len]);
            Ok(())
        })
        .expect("queued");
}

#[tokio::test(start_paused = true)]
async fn a_write_stuck_for_a_tick_time_ends_the_heartbeat_though_the_peer_ticks() {
    let ticktime = Duration::from_millis(200);
    let outbox = Outbox::new(frame::DEFAULT_MAX);
    push(&outbox, 1024);
    // Room for 64 bytes, and nobody reads them.
    let (mut near, _far) = tokio::io::duplex(64);
    let received = AtomicU64::new(0);
    let peer_ticks = async {
        for _ in 0..1_000 {
            tokio::time::sleep(ticktime / 8).await;
            received.fetch_add(4, Ordering::Relaxed);
        }
    };
    let started = tokio::time::Instant::now();
    tokio::select! {
        dead = heartbeat(&outbox, &received, ticktime) => assert_eq!(dead, Dead::Deaf),
        written = outbox.write_to(&mut near) => panic!("nobody reads, yet: {written:?}"),
        () = peer_ticks => panic!("the heartbeat went on"),
    }
    let took = started.elapsed();
    assert!(took >= ticktime && took <= ticktime * 3 / 2, "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_reads_slowly_but_steadily_is_not_taken_for_deaf() {
    let ticktime = Duration::from_millis(200);
    let outbox = Outbox::new(frame::DEFAULT_MAX);
    // One batch that takes the peer many tick times to read, 64 bytes every half tick time.
    push(&outbox, 4096);
    outbox.close();
    let total = 4 + 2 + 4096;
    let (mut near, mut far) = tokio::io::duplex(64);
    let reading = async {
        let mut read = 0;
        for _ in 0..1_000 {
            if read == total {
                break;
            }
            tokio::time::sleep(ticktime / 2).await;
            read += far.read(&mut [0; 64]).await.expect("read");
        }
        read
    };
    let received = AtomicU64::new(0);
    let peer_ticks = async {
        for _ in 0..10_000 {
            tokio::time::sleep(ticktime / 8).await;
            received.fetch_add(4, Ordering::Relaxed);
        }
    };
    let started = tokio::time::Instant::now();
    tokio::select! {
        dead = heartbeat(&outbox, &received, ticktime) => panic!("taken for {dead:?}"),
        () = peer_ticks => panic!("the batch was never read"),
        (written, read) = async { tokio::join!(outbox.write_to(&mut near), reading) } => {
            written.expect("written");
            assert_eq!(read, total);
        }
    }
    assert!(started.elapsed() > ticktime * 10);
}

const COOKIE: &str = "connection tests cookie";
/// The deaf peer's incarnation.
const CREATION: u32 = 7;
/// The size of each message sent to the deaf peer.
const CHUNK: usize = 256 << 10;

fn config(name: &str) -> DistConfig {
    DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE)
        .expect("valid")
        .max_frame(2 * CHUNK)
        .expect("over the handshake's")
}

/// A peer that has authenticated with a node and reads nothing from it.
struct Deaf {
    name: String,
    /// A pid of the peer: nothing ever answers for it.
    pid: Pid,
    /// Sends a tick now and then, so that the node never finds the peer silent.
    ticking: tokio::task::JoinHandle<()>,
}

/// Dials `node` as `deaf-<tag>@127.0.0.1:<port>`, the port its own end of the connection (nobody
/// listens there, so the node cannot dial it back), and ticks every `every` from then on.
async fn deaf(node: &LocalNode, tag: &str, every: Duration) -> Deaf {
    let addr: SocketAddr = node
        .name()
        .split_once('@')
        .expect("a node name")
        .1
        .parse()
        .expect("an address");
    let socket = TcpSocket::new_v4().expect("a socket");
    // A small window, fixed: the node's writes fill it at once, however far the system would
    // let the buffer grow.
    socket
        .set_recv_buffer_size(16 << 10)
        .expect("a receive buffer");
    let mut stream = bounded("connecting", socket.connect(addr))
        .await
        .expect("connected");
    let port = stream.local_addr().expect("its address").port();
    let name = format!("deaf-{tag}@127.0.0.1:{port}");
    let me = Identity::new(&name, CREATION).expect("a valid name");
    let cookie = Cookie::new(COOKIE).expect("long enough");
    let handshaken = dial(&mut stream, me, node.name(), cookie, 0, LIMIT)
        .await
        .expect("authenticated");
    assert_eq!(handshaken.established.status, Status::Ok);
    let (unread, mut write) = stream.into_split();
    let ticking = tokio::spawn(async move {
        let _unread = unread;
        let mut tick = BytesMut::new();
        frame::write_tick(&mut tick);
        for _ in 0..1_000 {
            tokio::time::sleep(every).await;
            if write.write_all(&tick).await.is_err() {
                return;
            }
        }
    });
    let node_id = node_core::intern(&name, CREATION).expect("a node number");
    Deaf {
        name,
        pid: Pid::new(node_id, 1, 1),
        ticking,
    }
}

/// What a process on the node saw of the deaf peer.
struct Seen {
    down: Option<Down>,
    node_down: Option<NodeDown>,
    sent: usize,
}

/// From a process on `node`: monitors the deaf peer's pid and its node, then sends the pid up to
/// `chunks` messages of [`CHUNK`] bytes, until the `Down` comes (within [`LIMIT`] of the last).
async fn flood(node: &LocalNode, deaf: &Deaf, chunks: usize) -> Seen {
    let (pid, name) = (deaf.pid, deaf.name.clone());
    let (tx, rx) = oneshot::channel();
    node.spawn(move |mut ctx| async move {
        monitor_node(&name);
        ctx.monitor(pid);
        let chunk = "x".repeat(CHUNK);
        let mut sent = 0;
        let down = loop {
            if let Ok(down) = ctx.receive_timeout::<Down>(Duration::ZERO).await {
                break Some(down);
            }
            if sent == chunks {
                break ctx.receive_timeout::<Down>(LIMIT).await.ok();
            }
            crate::send(pid, chunk.clone());
            sent += 1;
            tokio::task::yield_now().await;
        };
        // Told under the peer's lock before the `Down`: here already, if that came.
        let node_down = match down {
            Some(_) => ctx.receive_timeout::<NodeDown>(Duration::ZERO).await.ok(),
            None => None,
        };
        let _ = tx.send(Seen {
            down,
            node_down,
            sent,
        });
    });
    tokio::time::timeout(2 * LIMIT, rx)
        .await
        .expect("the flooding process ended")
        .expect("the process answered")
}

/// The flood ended with the connection: a `Down` with `NoConnection`, and a `NodeDown` whose
/// reason says `why`.
fn cut_off(seen: Seen, started: Instant, why: &str) {
    assert_eq!(
        seen.down.map(|down| down.reason),
        Some(ExitReason::NoConnection),
        "after {} messages of {CHUNK} bytes, {:?}",
        seen.sent,
        started.elapsed()
    );
    let reason = seen.node_down.expect("a NodeDown").reason;
    assert!(reason.contains(why), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_off_when_its_outbox_is_full() {
    // The tick time is the default minute: only the cap can end the connection in time.
    let config = config("connection-full").max_outbox(4 * CHUNK);
    let node = LocalNode::start(config).await.expect("started");
    let deaf = deaf(&node, "full", Duration::from_millis(50)).await;
    let call = tokio::spawn(node.scope(crate::call::<i64>(deaf.pid, "add", 1)));
    let started = Instant::now();
    cut_off(
        flood(&node, &deaf, 256).await,
        started,
        "not reading fast enough",
    );
    let called = bounded("the call", call).await.expect("the caller");
    assert!(
        matches!(called, Err(CallError::NoConnection(pid)) if pid == deaf.pid),
        "{called:?}"
    );
    deaf.ticking.abort();
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_off_after_a_tick_time() {
    let ticktime = Duration::from_millis(200);
    // The cap is the default 64 MiB, twice what is sent: only the heartbeat can end it.
    let config = config("connection-deaf").net_ticktime(ticktime);
    let node = LocalNode::start(config).await.expect("started");
    // Ticks far more often than the node needs: only the heartbeat's other half can fire.
    let deaf = deaf(&node, "deaf", ticktime / 10).await;
    let started = Instant::now();
    cut_off(flood(&node, &deaf, 128).await, started, "has not read");
    deaf.ticking.abort();
    node.stop().await;
}
