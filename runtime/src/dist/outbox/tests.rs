//! The outbox: every frame arrives, in each sender's order, in few writes; what waits is capped,
//! and the writer's progress shows a peer that reads nothing.

use std::{
    pin::{Pin, pin},
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::io::{AsyncReadExt, AsyncWrite};

use super::*;

/// A sink that keeps what it is given and counts the writes.
#[derive(Default)]
struct Recorder {
    bytes: Vec<u8>,
    writes: usize,
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.writes += 1;
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn push_number(outbox: &Outbox, sender: u8, n: u32) {
    outbox
        .push::<()>(Kind::Cast, Codec::Postcard, |out| {
            out.extend_from_slice(&[sender]);
            out.extend_from_slice(&n.to_be_bytes());
            Ok(())
        })
        .expect("queued");
}

/// The (sender, number) pairs in a recorded stream, in order.
fn numbers(bytes: &[u8]) -> Vec<(u8, u32)> {
    let mut codec = frame::codec();
    frame::authenticated(&mut codec, frame::DEFAULT_MAX);
    let mut buffer = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(next) = frame::next(&mut codec, &mut buffer).expect("well-formed") {
        match frame::parse(&next).expect("a frame") {
            frame::Frame::Message { payload, .. } => {
                let n = u32::from_be_bytes(payload[1..5].try_into().expect("four bytes"));
                out.push((payload[0], n));
            }
            frame::Frame::Tick => {}
        }
    }
    assert!(buffer.is_empty(), "a partial frame at the end");
    out
}

#[tokio::test]
async fn a_burst_queued_while_the_writer_is_busy_goes_out_in_one_write() {
    let outbox = Outbox::new(frame::DEFAULT_MAX);
    for n in 0..10_000 {
        push_number(&outbox, 0, n);
    }
    outbox.close();
    let mut sink = Recorder::default();
    outbox.write_to(&mut sink).await.expect("written");
    assert_eq!(sink.writes, 1);
    let sent = numbers(&sink.bytes);
    assert_eq!(sent, (0..10_000).map(|n| (0, n)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_each_keep_their_order_and_nothing_is_lost() {
    for _ in 0..20 {
        let outbox = Arc::new(Outbox::new(frame::DEFAULT_MAX));
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let mut sink = Recorder::default();
                outbox.write_to(&mut sink).await.map(|()| sink)
            })
        };
        let senders: Vec<_> = (0..4_u8)
            .map(|sender| {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    for n in 0..2_000 {
                        push_number(&outbox, sender, n);
                        if n % 100 == 0 {
                            outbox.tick();
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await.expect("a sender");
        }
        outbox.close();
        let sink = writer.await.expect("the writer").expect("written");
        let sent = numbers(&sink.bytes);
        assert_eq!(sent.len(), 8_000);
        for sender in 0..4 {
            let mine: Vec<u32> = sent
                .iter()
                .filter(|(s, _)| *s == sender)
                .map(|(_, n)| *n)
                .collect();
            assert_eq!(mine, (0..2_000).collect::<Vec<_>>(), "sender {sender}");
        }
        assert!(
            sink.writes < 8_000,
            "{} writes for 8,000 frames",
            sink.writes
        );
    }
}

#[tokio::test]
async fn refused_frames_leave_the_outbox_as_it_was() {
    let outbox = Outbox::new(16);
    push_number(&outbox, 1, 1);
    let too_large = outbox.push::<()>(Kind::Send, Codec::Postcard, |out| {
        out.extend_from_slice(&[0; 100]);
        Ok(())
    });
    assert_eq!(
        too_large,
        Err(PushError::Frame(FrameError::TooLarge { len: 102, max: 16 }))
    );
    let failed = outbox.push(Kind::Send, Codec::Postcard, |out| {
        out.extend_from_slice(&[0; 3]);
        Err("cannot encode")
    });
    assert_eq!(failed, Err(PushError::Payload("cannot encode")));
    outbox.close();
    assert_eq!(
        outbox.push::<()>(Kind::Send, Codec::Postcard, |_| Ok(())),
        Err(PushError::Closed)
    );
    let mut sink = Recorder::default();
    outbox.write_to(&mut sink).await.expect("written");
    assert_eq!(numbers(&sink.bytes), [(1, 1)]);
}

#[tokio::test]
async fn a_tick_goes_out_only_when_nothing_else_is_waiting() {
    let outbox = Outbox::new(frame::DEFAULT_MAX);
    outbox.tick();
    outbox.tick(); // the first is still waiting: no second
    push_number(&outbox, 2, 7);
    outbox.tick(); // a frame is waiting: no tick
    outbox.close();
    let mut sink = Recorder::default();
    outbox.write_to(&mut sink).await.expect("written");
    assert_eq!(&sink.bytes[..4], [0, 0, 0, 0]);
    assert_eq!(numbers(&sink.bytes[4..]), [(2, 7)]);
    assert_eq!(sink.bytes.len(), 4 + 4 + 2 + 5);
}

/// Polls `future` once, waking nobody: whether it is done.
fn ready(future: Pin<&mut impl Future>) -> bool {
    future
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_ready()
}

/// Bytes of one frame of `push_number`: length, kind, flags, sender, number.
const NUMBER_FRAME: usize = 4 + 2 + 5;

#[tokio::test]
async fn a_frame_over_the_cap_is_refused_the_overflow_reported_and_nothing_else_queued() {
    let outbox = Outbox::with_limits(frame::DEFAULT_MAX, 5 * NUMBER_FRAME);
    assert!(
        !ready(pin!(outbox.overflowed())),
        "nothing over the cap yet"
    );
    for n in 0..5 {
        push_number(&outbox, 1, n);
    }
    let over = outbox.push::<()>(Kind::Cast, Codec::Postcard, |out| {
        out.extend_from_slice(&[1, 0, 0, 0, 5]);
        Ok(())
    });
    assert_eq!(over, Err(PushError::Closed));
    // Reported, to whoever waits later (the connection may not be up yet).
    tokio::time::timeout(Duration::from_secs(10), outbox.overflowed())
        .await
        .expect("the overflow is reported");
    // Nothing after it either: a sender's later frames would arrive with one missing.
    assert_eq!(
        outbox.push::<()>(Kind::Cast, Codec::Postcard, |out| {
            out.extend_from_slice(&[1, 0, 0, 0, 6]);
            Ok(())
        }),
        Err(PushError::Closed)
    );
    outbox.tick();
    let queued = lock(&outbox.inner).buffer.clone();
    assert_eq!(
        queued.len(),
        5 * NUMBER_FRAME,
        "no tick, no part of a frame"
    );
    assert_eq!(numbers(&queued), (0..5).map(|n| (1, n)).collect::<Vec<_>>());
    // The writer sends nothing more: the connection is ending.
    let mut sink = Recorder::default();
    assert!(!ready(pin!(outbox.write_to(&mut sink))));
    assert!(sink.bytes.is_empty());
}

#[tokio::test]
async fn a_frame_larger_than_the_cap_goes_into_an_empty_outbox() {
    let outbox = Outbox::with_limits(frame::DEFAULT_MAX, NUMBER_FRAME - 1);
    push_number(&outbox, 3, 1);
    assert!(!ready(pin!(outbox.overflowed())));
    let over = outbox.push::<()>(Kind::Cast, Codec::Postcard, |out| {
        out.extend_from_slice(&[3, 0, 0, 0, 2]);
        Ok(())
    });
    assert_eq!(over, Err(PushError::Closed));
    assert_eq!(numbers(&lock(&outbox.inner).buffer), [(3, 1)]);
}

#[tokio::test]
async fn the_progress_is_odd_while_bytes_wait_and_moves_only_when_some_go_out() {
    let outbox = Outbox::new(frame::DEFAULT_MAX);
    for n in 0..10 {
        push_number(&outbox, 4, n);
    }
    // Room for 32 bytes until the far end reads.
    let (mut near, mut far) = tokio::io::duplex(32);
    let mut writer = pin!(outbox.write_to(&mut near));
    assert_eq!(outbox.progress(), 0);
    assert!(!ready(writer.as_mut()));
    let stuck = outbox.progress();
    assert_eq!(stuck % 2, 1, "bytes pending");
    assert!(!ready(writer.as_mut()));
    assert_eq!(outbox.progress(), stuck, "nothing went out");
    let mut received = Vec::new();
    for _ in 0..100 {
        let before = outbox.progress();
        if before % 2 == 0 {
            break;
        }
        let mut chunk = [0; 32];
        let n = far.read(&mut chunk).await.expect("read");
        received.extend_from_slice(&chunk[..n]);
        assert!(!ready(writer.as_mut()));
        assert!(outbox.progress() > before, "each read lets some out");
    }
    assert_eq!(
        outbox.progress() % 2,
        0,
        "nothing pending once all is written"
    );
    for _ in 0..100 {
        if received.len() == 10 * NUMBER_FRAME {
            break;
        }
        let mut chunk = [0; 32];
        let n = far.read(&mut chunk).await.expect("read");
        received.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(
        numbers(&received),
        (0..10).map(|n| (4, n)).collect::<Vec<_>>()
    );
}
