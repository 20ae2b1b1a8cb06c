//! The accept loop under load: silent connections do not lock real peers out.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

use super::*;
use crate::dist::{
    authenticate::dial,
    handshake::Cookie,
    transport::{Tcp, Transport},
};

const COOKIE: &str = "a-long-enough-cookie";
/// Only a hang takes this long on the real clock.
const LONG: Duration = Duration::from_secs(30);

fn id(name: &str) -> Identity {
    Identity::new(name, 1).expect("a valid name")
}

/// A node serving on 127.0.0.1 (OS-chosen port); its admitted peers' names come out of the
/// receiver.
async fn node(
    config: DistConfig,
) -> (
    String,
    mpsc::UnboundedReceiver<String>,
    tokio::task::JoinHandle<()>,
) {
    let listener = Tcp.listen("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve(
        listener,
        id("b@127.0.0.1:2"),
        Arc::new(config),
        Arc::new(|_| (Status::Ok, 1)),
        Arc::new(move |handshaken: Handshaken, _connection| {
            let _ = tx.send(handshaken.established.peer.name().to_owned());
        }),
    ));
    (addr, rx, server)
}

fn config() -> DistConfig {
    DistConfig::new("b@127.0.0.1:2", COOKIE).expect("valid")
}

async fn dial_as(addr: &str, name: &str) -> Result<Handshaken, authenticate::ConnectError> {
    let Connection { mut io, .. } = Tcp.connect(addr).await.expect("connect");
    let cookie = Cookie::new(COOKIE).expect("valid");
    dial(&mut *io, id(name), "b@127.0.0.1:2", cookie, 0, LONG).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_silent_connections_do_not_lock_a_real_peer_out() {
    let (addr, mut admitted, server) = node(config()).await;
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(Tcp.connect(&addr).await.expect("connect"));
    }
    dial_as(&addr, "a@127.0.0.1:1")
        .await
        .expect("the real peer connects");
    assert_eq!(admitted.recv().await.as_deref(), Some("a@127.0.0.1:1"));
    server.abort();
}

/// Reads until the peer closes; how long that took.
async fn closed_after(connection: &mut Connection) -> Duration {
    let start = Instant::now();
    let mut sink = [0; 64];
    loop {
        match tokio::time::timeout(LONG, connection.io.read(&mut sink)).await {
            Ok(Ok(0) | Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was never closed"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_the_first_frame_timeout() {
    let config = config().first_frame_timeout(Duration::from_millis(200));
    let (addr, _admitted, server) = node(config).await;
    let mut silent = Tcp.connect(&addr).await.expect("connect");
    let waited = closed_after(&mut silent).await;
    assert!(
        waited >= Duration::from_millis(150),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "closed after {waited:?}");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_handshake_cap_a_connection_is_closed_at_once_and_the_place_comes_back() {
    let config = config().max_handshakes(1).first_frame_timeout(LONG);
    let (addr, mut admitted, server) = node(config).await;
    // The listener accepts in arrival order, so the holder takes the one place before `over`
    // is accepted; the holder stays silent and keeps it (for up to LONG).
    let mut holder = Tcp.connect(&addr).await.expect("connect");
    let mut over = Tcp.connect(&addr).await.expect("connect");
    let waited = closed_after(&mut over).await;
    assert!(waited < LONG / 3, "closed after {waited:?}: not at once");
    // The holder sends garbage: its handshake fails, and the node gives its place back before it
    // closes the connection, so once the holder sees the close the place is free.
    holder.io.write_all(&[0xFF; 4]).await.expect("write");
    closed_after(&mut holder).await;
    dial_as(&addr, "a@127.0.0.1:1").await.expect("connects");
    assert_eq!(admitted.recv().await.as_deref(), Some("a@127.0.0.1:1"));
    server.abort();
}

#[tokio::test]
async fn a_declined_or_refused_peer_is_not_handed_on() {
    let (addr, mut admitted, server) = node(config()).await;
    let Connection { mut io, .. } = Tcp.connect(&addr).await.expect("connect");
    let wrong = Cookie::new("another-long-cookie").expect("valid");
    let refused = dial(
        &mut *io,
        id("a@127.0.0.1:1"),
        "b@127.0.0.1:2",
        wrong,
        0,
        LONG,
    )
    .await;
    assert!(refused.is_err());
    dial_as(&addr, "c@127.0.0.1:3").await.expect("connects");
    // The first admitted peer is the second dialer: the refused one was never handed on.
    assert_eq!(admitted.recv().await.as_deref(), Some("c@127.0.0.1:3"));
    server.abort();
}
