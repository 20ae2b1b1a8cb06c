//! A connection's incoming frames: read in large chunks, cut into frames under the authenticated
//! cap, and handed one by one to whoever applies them, on the reader's own task (no channel or
//! task per frame). It counts the bytes it reads, for the heartbeat to tell a silent peer from a
//! busy one.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::LengthDelimitedCodec;

use super::frame::{self, Frame, FrameError};

/// How much room a read asks for at least: a burst of small frames arrives in one read.
const READ_AHEAD: usize = 64 * 1024;

/// Why a connection's reading ended badly; the connection closes.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReadError<E> {
    #[error(transparent)]
    Frame(FrameError),
    #[error("the connection ended in the middle of a frame")]
    Truncated,
    #[error("reading failed: {0}")]
    Io(String),
    /// Whoever applies frames refused one.
    #[error("a frame could not be applied")]
    Apply(E),
}

/// Reads frames from `io` until the peer closes the stream (`Ok`) or something is wrong (`Err`),
/// starting with the bytes already in `buffer` (those that came with the handshake). Every byte
/// read is added to `read`; every frame, ticks included, goes to `apply`.
pub(crate) async fn read_frames<E>(
    io: &mut (impl AsyncRead + Unpin),
    codec: &mut LengthDelimitedCodec,
    buffer: &mut BytesMut,
    read: &AtomicU64,
    mut apply: impl FnMut(Frame<'_>) -> Result<(), E>,
) -> Result<(), ReadError<E>> {
    loop {
        while let Some(next) = frame::next(codec, buffer).map_err(ReadError::Frame)? {
            let parsed = frame::parse(&next).map_err(ReadError::Frame)?;
            apply(parsed).map_err(ReadError::Apply)?;
        }
        buffer.reserve(READ_AHEAD);
        let n = io
            .read_buf(buffer)
            .await
            .map_err(|error| ReadError::Io(error.to_string()))?;
        if n == 0 {
            return match buffer.is_empty() {
                true => Ok(()),
                false => Err(ReadError::Truncated),
            };
        }
        read.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::dist::{
        frame::{Codec, Kind},
        outbox::Outbox,
    };

    fn authenticated_codec() -> LengthDelimitedCodec {
        let mut codec = frame::codec();
        frame::authenticated(&mut codec, frame::DEFAULT_MAX);
        codec
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_the_outbox_writes_the_reader_reads_in_order() {
        let (mut near, mut far) = tokio::io::duplex(4096);
        let outbox = Arc::new(Outbox::new(frame::DEFAULT_MAX));
        let writer = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.write_to(&mut near).await })
        };
        let sender = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                for n in 0..10_000_u32 {
                    outbox
                        .push::<()>(Kind::Send, Codec::Postcard, |out| {
                            out.extend_from_slice(&n.to_be_bytes());
                            Ok(())
                        })
                        .expect("queued");
                    if n % 1_000 == 0 {
                        outbox.tick();
                    }
                }
                outbox.close();
            })
        };
        let read = AtomicU64::new(0);
        let (mut codec, mut buffer) = (authenticated_codec(), BytesMut::new());
        let (mut numbers, mut ticks) = (Vec::new(), 0);
        let ended = read_frames::<()>(&mut far, &mut codec, &mut buffer, &read, |frame| {
            match frame {
                Frame::Tick => ticks += 1,
                Frame::Message { payload, .. } => {
                    numbers.push(u32::from_be_bytes(payload.try_into().expect("four bytes")));
                }
            }
            Ok(())
        });
        // The writer ends when the outbox is closed and empty; dropping its stream ends ours.
        let (ended, written) = tokio::join!(ended, async {
            sender.await.expect("sender");
            writer.await.expect("writer")
        });
        written.expect("written");
        assert_eq!(ended, Ok(()));
        assert_eq!(numbers, (0..10_000).collect::<Vec<_>>());
        assert!(ticks <= 10);
        assert_eq!(read.load(Ordering::Relaxed), 10_000 * 10 + 4 * ticks as u64);
    }

    async fn outcome(bytes: &'static [u8]) -> Result<(), ReadError<()>> {
        let (mut near, mut far) = tokio::io::duplex(1024);
        near.write_all(bytes).await.expect("write");
        drop(near);
        read_frames(
            &mut far,
            &mut authenticated_codec(),
            &mut BytesMut::new(),
            &AtomicU64::new(0),
            |_| Ok(()),
        )
        .await
    }

    #[tokio::test]
    async fn a_bad_stream_ends_reading_with_the_reason() {
        assert_eq!(outcome(&[]).await, Ok(()));
        assert_eq!(outcome(&[0, 0, 0, 0]).await, Ok(()));
        assert_eq!(
            outcome(&[0, 0, 0, 3, 0x10, 0]).await,
            Err(ReadError::Truncated)
        );
        assert_eq!(
            outcome(&[0, 0, 0, 2, 0x01, 0]).await,
            Err(ReadError::Frame(FrameError::UnknownKind(1)))
        );
        assert!(matches!(
            outcome(&[0xFF, 0xFF, 0xFF, 0xFF]).await,
            Err(ReadError::Frame(FrameError::Stream(_)))
        ));
    }

    #[tokio::test]
    async fn a_frame_that_cannot_be_applied_ends_reading() {
        let (mut near, mut far) = tokio::io::duplex(1024);
        near.write_all(&[0, 0, 0, 3, 0x10, 0, 7, 0, 0, 0, 0])
            .await
            .expect("write");
        let mut seen = 0;
        let ended = read_frames(
            &mut far,
            &mut authenticated_codec(),
            &mut BytesMut::new(),
            &AtomicU64::new(0),
            |_| {
                seen += 1;
                Err("no such process")
            },
        )
        .await;
        assert_eq!(ended, Err(ReadError::Apply("no such process")));
        assert_eq!(seen, 1, "nothing after the refused frame is applied");
    }
}
