//! Frames: what is written is read back whole, caps hold before anything is allocated, and
//! every malformed frame is a typed error.

use super::*;

fn written(kind: Kind, codec: Codec, payload: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    write::<()>(&mut out, kind, codec, DEFAULT_MAX, |out| {
        out.extend_from_slice(payload);
        Ok(())
    })
    .expect("a small frame is written");
    out
}

#[test]
fn every_kind_and_codec_is_read_back_as_written() {
    let mut stream = BytesMut::new();
    for kind in Kind::ALL {
        for codec in [Codec::Postcard, Codec::Json] {
            stream.extend_from_slice(&written(kind, codec, &[kind as u8, 1, 2]));
        }
    }
    write_tick(&mut stream);
    let mut codec_ = codec();
    authenticated(&mut codec_, DEFAULT_MAX);
    for kind in Kind::ALL {
        for codec in [Codec::Postcard, Codec::Json] {
            let frame = next(&mut codec_, &mut stream)
                .unwrap()
                .expect("a whole frame");
            assert_eq!(
                parse(&frame),
                Ok(Frame::Message {
                    kind,
                    codec,
                    payload: &[kind as u8, 1, 2],
                })
            );
        }
    }
    let tick = next(&mut codec_, &mut stream).unwrap().expect("the tick");
    assert_eq!(parse(&tick), Ok(Frame::Tick));
    assert_eq!(next(&mut codec_, &mut stream), Ok(None));
}

#[test]
fn the_wire_format_is_pinned() {
    // Length 5 (kind, flags, three payload bytes), big-endian; then kind 0x10, postcard.
    assert_eq!(
        &written(Kind::Send, Codec::Postcard, &[1, 2, 3])[..],
        [0, 0, 0, 5, 0x10, 0, 1, 2, 3]
    );
    assert_eq!(
        &written(Kind::Down, Codec::Json, &[])[..],
        [0, 0, 0, 2, 0x17, 1]
    );
    let mut tick = BytesMut::new();
    write_tick(&mut tick);
    assert_eq!(&tick[..], [0, 0, 0, 0]);
}

#[test]
fn a_frame_arrives_whole_or_not_at_all() {
    let frame = written(Kind::Send, Codec::Postcard, &[9; 100]);
    let mut codec_ = codec();
    let mut buffer = BytesMut::new();
    for byte in &frame[..frame.len() - 1] {
        buffer.put_u8(*byte);
        assert_eq!(next(&mut codec_, &mut buffer), Ok(None));
    }
    buffer.put_u8(frame[frame.len() - 1]);
    let whole = next(&mut codec_, &mut buffer).unwrap().expect("now whole");
    assert_eq!(whole.len(), 102);
}

#[test]
fn an_oversized_length_is_refused_before_anything_is_allocated() {
    for (authenticated_, claimed) in [
        (false, HANDSHAKE_MAX as u32 + 1),
        (false, u32::MAX),
        (true, DEFAULT_MAX as u32 + 1),
        (true, u32::MAX),
    ] {
        let mut codec_ = codec();
        if authenticated_ {
            authenticated(&mut codec_, DEFAULT_MAX);
        }
        let mut buffer = BytesMut::with_capacity(64);
        buffer.put_u32(claimed);
        buffer.put_slice(&[0; 8]);
        assert!(
            matches!(next(&mut codec_, &mut buffer), Err(FrameError::Stream(_))),
            "{claimed} bytes claimed"
        );
        assert!(
            buffer.capacity() < 4096,
            "{} bytes reserved for a claim of {claimed}",
            buffer.capacity()
        );
    }
    // At the cap exactly, a frame is taken.
    let mut codec_ = codec();
    let mut buffer = BytesMut::new();
    write_handshake(&mut buffer, &[7; HANDSHAKE_MAX]).expect("at the cap");
    assert_eq!(
        next(&mut codec_, &mut buffer).unwrap().map(|f| f.len()),
        Some(HANDSHAKE_MAX)
    );
    assert!(write_handshake(&mut buffer, &[7; HANDSHAKE_MAX + 1]).is_err());
}

#[test]
fn malformed_frames_are_typed_errors() {
    assert_eq!(parse(&[0x10]), Err(FrameError::Truncated));
    assert_eq!(parse(&[0x01, 0]), Err(FrameError::UnknownKind(0x01)));
    assert_eq!(parse(&[0xFF, 0, 1]), Err(FrameError::UnknownKind(0xFF)));
    assert_eq!(parse(&[0x10, 2]), Err(FrameError::UnknownFlags(2)));
    assert_eq!(parse(&[0x10, 0x81]), Err(FrameError::UnknownFlags(0x81)));
}

#[test]
fn a_frame_that_cannot_be_written_leaves_the_buffer_as_it_was() {
    let mut out = written(Kind::Link, Codec::Postcard, &[1]);
    let before = out.clone();
    let failed = write(&mut out, Kind::Send, Codec::Postcard, DEFAULT_MAX, |out| {
        out.extend_from_slice(&[5; 10]);
        Err("no encoding for this")
    });
    assert_eq!(failed, Err(WriteError::Payload("no encoding for this")));
    assert_eq!(out, before);
    let too_large = write::<()>(&mut out, Kind::Send, Codec::Postcard, 16, |out| {
        out.extend_from_slice(&[5; 15]);
        Ok(())
    });
    assert_eq!(
        too_large,
        Err(WriteError::Frame(FrameError::TooLarge { len: 17, max: 16 }))
    );
    assert_eq!(out, before);
}
