//! Frames: how bytes on a connection between nodes become messages, with a length cap checked
//! before anything is allocated.
//!
//! Every frame is a 4-byte big-endian length `N` and `N` bytes (tokio-util's
//! `LengthDelimitedCodec`, which refuses a length over its cap before it reserves any buffer).
//! The cap is [`HANDSHAKE_MAX`] until the handshake has authenticated the peer, then the node's
//! configured maximum ([`DEFAULT_MAX`] unless set): an unauthenticated peer cannot make a node
//! buffer more than 1 KiB.
//!
//! After the handshake, a frame of length 0 is a tick (a heartbeat) and any other is
//! `[kind][flags][payload]`: `kind` says what the payload is (a message, a link, a call, ...;
//! see [`Kind`]), bit 0 of `flags` the encoding of its body (postcard, or JSON for debugging), and
//! the other flag bits must be 0. Anything else is malformed and closes the connection.

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// The largest frame a peer may send before it has authenticated.
pub(crate) const HANDSHAKE_MAX: usize = 1024;
/// The largest frame an authenticated peer may send, unless the node is configured otherwise.
pub(crate) const DEFAULT_MAX: usize = 8 << 20;
/// Bytes of the length prefix.
const LENGTH: usize = 4;

/// What a frame carries. The numbers are the wire format: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Send = 0x10,
    SendNamed = 0x11,
    Link = 0x12,
    Unlink = 0x13,
    Exit = 0x14,
    Monitor = 0x15,
    Demonitor = 0x16,
    Down = 0x17,
    Call = 0x18,
    Cast = 0x19,
    Reply = 0x1A,
    Answer = 0x1B,
    Disconnect = 0x1C,
}

impl Kind {
    pub(crate) const ALL: [Kind; 13] = [
        Kind::Send,
        Kind::SendNamed,
        Kind::Link,
        Kind::Unlink,
        Kind::Exit,
        Kind::Monitor,
        Kind::Demonitor,
        Kind::Down,
        Kind::Call,
        Kind::Cast,
        Kind::Reply,
        Kind::Answer,
        Kind::Disconnect,
    ];

    fn from_byte(byte: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| *kind as u8 == byte)
    }
}

/// How the values a node sends to others (messages, call arguments and replies) are encoded.
/// Each frame says which, so two nodes need not agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// postcard: compact and fast, the default.
    #[default]
    Postcard,
    /// JSON: readable in a packet capture, for debugging.
    Json,
}

const FLAG_JSON: u8 = 1;

/// One frame received after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A heartbeat: the peer is alive and has nothing to say.
    Tick,
    Message {
        kind: Kind,
        codec: Codec,
        payload: &'a [u8],
    },
}

/// Why a frame or a stream of them was refused; the connection closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("a frame of {len} bytes is over the cap of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("unknown frame kind {0:#04x}")]
    UnknownKind(u8),
    #[error("unknown frame flags {0:#04x}")]
    UnknownFlags(u8),
    #[error("a frame of one byte has no flags")]
    Truncated,
    #[error("the stream is not a sequence of frames: {0}")]
    Stream(String),
}

/// The codec for a new connection, capped for the handshake.
pub(crate) fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(LENGTH)
        .big_endian()
        .max_frame_length(HANDSHAKE_MAX)
        .new_codec()
}

/// Raises the cap once the peer has authenticated.
pub(crate) fn authenticated(codec: &mut LengthDelimitedCodec, max: usize) {
    codec.set_max_frame_length(max);
}

/// Takes the next whole frame out of `buffer`, if one has arrived; an error for a length over
/// the codec's cap, before any room is made for it.
pub(crate) fn next(
    codec: &mut LengthDelimitedCodec,
    buffer: &mut BytesMut,
) -> Result<Option<BytesMut>, FrameError> {
    codec
        .decode(buffer)
        .map_err(|error| FrameError::Stream(error.to_string()))
}

/// Reads a frame received after the handshake.
pub(crate) fn parse(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    match frame {
        [] => Ok(Frame::Tick),
        [_] => Err(FrameError::Truncated),
        [kind, flags, payload @ ..] => {
            let kind = Kind::from_byte(*kind).ok_or(FrameError::UnknownKind(*kind))?;
            let codec = match *flags {
                0 => Codec::Postcard,
                FLAG_JSON => Codec::Json,
                other => return Err(FrameError::UnknownFlags(other)),
            };
            Ok(Frame::Message {
                kind,
                codec,
                payload,
            })
        }
    }
}

/// Appends a frame to `out`, its payload written by `payload`; if that fails, or the frame would
/// be over `max`, `out` is left as it was and the error says why.
pub(crate) fn write<E>(
    out: &mut BytesMut,
    kind: Kind,
    codec: Codec,
    max: usize,
    payload: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), WriteError<E>> {
    let start = out.len();
    out.put_u32(0); // the length, patched below
    out.put_u8(kind as u8);
    out.put_u8(match codec {
        Codec::Postcard => 0,
        Codec::Json => FLAG_JSON,
    });
    // A payload writer that panics (a user's `Serialize`) must not leave half a frame behind:
    // the peer would read garbage and close the connection under everyone else's frames.
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| payload(&mut *out)));
    let written = match written {
        Ok(written) => written,
        Err(panic) => {
            out.truncate(start);
            std::panic::resume_unwind(panic)
        }
    };
    if let Err(error) = written {
        out.truncate(start);
        return Err(WriteError::Payload(error));
    }
    let len = out.len() - start - LENGTH;
    let Some(len32) = u32::try_from(len).ok().filter(|_| len <= max) else {
        out.truncate(start);
        return Err(WriteError::Frame(FrameError::TooLarge { len, max }));
    };
    out[start..start + LENGTH].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Appends a tick (an empty frame) to `out`.
pub(crate) fn write_tick(out: &mut BytesMut) {
    out.put_u32(0);
}

/// Appends a handshake message's bytes as one frame (before the handshake's end, frames have no
/// kind: each is one handshake message).
pub(crate) fn write_handshake(out: &mut BytesMut, message: &[u8]) -> Result<(), FrameError> {
    let mut codec = codec();
    codec
        .encode(bytes::Bytes::copy_from_slice(message), out)
        .map_err(|_| FrameError::TooLarge {
            len: message.len(),
            max: HANDSHAKE_MAX,
        })
}

/// Why a frame was not written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteError<E> {
    /// Its payload could not be encoded.
    Payload(E),
    /// It would be too large.
    Frame(FrameError),
}

#[cfg(test)]
mod tests;
