//! The handshake over TCP on 127.0.0.1 (ports chosen by the OS), against real and hostile peers.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::*;
use crate::dist::transport::{Connection, Listener, Tcp, Transport};

fn id(name: &str) -> Identity {
    Identity::new(name, 1).expect("a valid name")
}

fn cookie(word: &str) -> Cookie {
    Cookie::new(format!("{word:-<16}")).expect("long enough")
}

async fn listener() -> (Box<dyn Listener>, String) {
    let listener = Tcp.listen("127.0.0.1:0").await.expect("bind on 127.0.0.1");
    let addr = listener.local_addr().expect("its address");
    (listener, addr)
}

/// The acceptor's side as b@127.0.0.1:2, admitting with connection id `conn_id`.
async fn accept_as_b(
    io: &mut dyn crate::dist::transport::Io,
    cookie: Cookie,
    conn_id: u64,
) -> Result<Handshaken, ConnectError> {
    accept(io, id("b@127.0.0.1:2"), cookie, (LONG, LONG), |_| {
        (Status::Ok, conn_id)
    })
    .await
}

/// Generous: these tests run on the real clock, where only a hang would take this long.
const LONG: Duration = Duration::from_secs(30);

/// One dial and one accept with the given cookies, concurrently.
async fn pair(
    dialer_cookie: &str,
    acceptor_cookie: &str,
) -> (
    Result<Handshaken, ConnectError>,
    Result<Handshaken, ConnectError>,
) {
    let (mut listener, addr) = listener().await;
    let acceptor_cookie = cookie(acceptor_cookie);
    let acceptor = tokio::spawn(async move {
        let Connection { mut io, .. } = listener.accept().await.expect("accept");
        accept_as_b(&mut *io, acceptor_cookie, 7).await
    });
    let Connection { mut io, .. } = Tcp.connect(&addr).await.expect("connect");
    let dialer = dial(
        &mut *io,
        id("a@127.0.0.1:1"),
        "b@127.0.0.1:2",
        cookie(dialer_cookie),
        0,
        LONG,
    )
    .await;
    (dialer, acceptor.await.expect("the acceptor task"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_cookie_authenticates_both_ends_of_a_tcp_connection() {
    for _ in 0..20 {
        let (dialer, acceptor) = pair("secret", "secret").await;
        let (dialer, acceptor) = (dialer.expect("dialer"), acceptor.expect("acceptor"));
        assert_eq!(dialer.established.peer, id("b@127.0.0.1:2"));
        assert_eq!(acceptor.established.peer, id("a@127.0.0.1:1"));
        assert_eq!(dialer.established.conn_id, 7);
        assert_eq!(acceptor.established.status, Status::Ok);
    }
}

#[tokio::test]
async fn a_wrong_cookie_is_refused_and_both_sides_say_why() {
    let (dialer, acceptor) = pair("secret", "other").await;
    assert_eq!(
        dialer.err(),
        Some(ConnectError::RefusedByPeer(Refusal::BadCookie))
    );
    assert_eq!(
        acceptor.err(),
        Some(ConnectError::Refused(Refusal::BadCookie))
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_costs_one_timeout() {
    let (mut listener, addr) = listener().await;
    let silent = tokio::spawn(async move {
        let connection = listener.accept().await.expect("accept");
        // Holds the connection open and says nothing.
        std::future::pending::<()>().await;
        drop(connection);
    });
    let Connection { mut io, .. } = Tcp.connect(&addr).await.expect("connect");
    let timeout = DEFAULT_TIMEOUT;
    let dialed = dial(
        &mut *io,
        id("a@127.0.0.1:1"),
        "b@127.0.0.1:2",
        cookie("c"),
        0,
        timeout,
    )
    .await;
    assert_eq!(dialed.err(), Some(ConnectError::Timeout(timeout)));
    silent.abort();
}

/// A raw client writes `bytes` (then closes, if `close`); the acceptor's verdict.
async fn acceptor_given(bytes: &'static [u8], close: bool) -> ConnectError {
    let (mut listener, addr) = listener().await;
    let client = tokio::spawn(async move {
        let Connection { mut io, .. } = Tcp.connect(&addr).await.expect("connect");
        io.write_all(bytes).await.expect("write");
        if close {
            io.shutdown().await.expect("shutdown");
        } else {
            std::future::pending::<()>().await;
        }
    });
    let Connection { mut io, .. } = listener.accept().await.expect("accept");
    let verdict = accept_as_b(&mut *io, cookie("c"), 1)
        .await
        .err()
        .expect("refused");
    client.abort();
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_are_refused_at_once_without_a_large_buffer() {
    // An HTTP request: its first four bytes read as a length of about 1.2 GB.
    assert!(matches!(
        acceptor_given(b"GET / HTTP/1.1\r\n\r\n", false).await,
        ConnectError::Malformed(_)
    ));
    // The largest length there is.
    assert!(matches!(
        acceptor_given(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], false).await,
        ConnectError::Malformed(_)
    ));
    // A frame that is not a handshake message.
    assert!(matches!(
        acceptor_given(&[0, 0, 0, 3, 9, 9, 9], false).await,
        ConnectError::Malformed(_)
    ));
    // A truncated frame, then the end of the stream.
    assert!(matches!(
        acceptor_given(&[0, 0, 0, 50, 1, 2], true).await,
        ConnectError::Io(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_sent_right_after_the_welcome_are_not_lost() {
    let (mut listener, addr) = listener().await;
    let acceptor = tokio::spawn(async move {
        let Connection { mut io, peer } = listener.accept().await.expect("accept");
        assert!(peer.starts_with("127.0.0.1:"), "{peer}");
        accept_as_b(&mut *io, cookie("c"), 1)
            .await
            .expect("accepted");
        // The acceptor speaks first after the handshake: a tick and a frame, in one write.
        let mut out = BytesMut::new();
        frame::write_tick(&mut out);
        frame::write::<()>(
            &mut out,
            frame::Kind::Send,
            frame::Codec::Postcard,
            64,
            |out| {
                out.extend_from_slice(b"hello");
                Ok(())
            },
        )
        .expect("a small frame");
        io.write_all(&out).await.expect("write");
        std::future::pending::<()>().await;
    });
    let Connection { mut io, peer } = Tcp.connect(&addr).await.expect("connect");
    assert_eq!(peer, addr);
    let Handshaken {
        mut codec,
        mut buffer,
        ..
    } = dial(
        &mut *io,
        id("a@127.0.0.1:1"),
        "b@127.0.0.1:2",
        cookie("c"),
        0,
        LONG,
    )
    .await
    .expect("dialed");
    frame::authenticated(&mut codec, frame::DEFAULT_MAX);
    let mut frames = Vec::new();
    while frames.len() < 2 {
        match frame::next(&mut codec, &mut buffer).expect("well-formed") {
            Some(next) => frames.push(next),
            None => {
                use tokio::io::AsyncReadExt;
                assert!(io.read_buf(&mut buffer).await.expect("read") > 0);
            }
        }
    }
    assert_eq!(frame::parse(&frames[0]), Ok(frame::Frame::Tick));
    assert_eq!(
        frame::parse(&frames[1]),
        Ok(frame::Frame::Message {
            kind: frame::Kind::Send,
            codec: frame::Codec::Postcard,
            payload: b"hello",
        })
    );
    acceptor.abort();
}
