use super::*;

#[test]
fn headers_round_trip() {
    let pid = WirePid {
        node: WireNode::Other("a@127.0.0.1:1", 7),
        index: 3,
        serial: 4,
    };
    let header = Header::Send {
        from: pid,
        to: WirePid {
            node: WireNode::Receiver(9),
            ..pid
        },
        tag: 42,
    };
    let mut out = BytesMut::new();
    write_header(&mut out, &header).unwrap();
    out.extend_from_slice(b"body");
    let (back, body) = read_header(&out).unwrap();
    assert_eq!(back, header);
    assert_eq!(body, b"body");
}

#[test]
fn values_round_trip_in_both_codecs_and_trailing_bytes_are_refused() {
    for codec in [Codec::Postcard, Codec::Json] {
        let mut out = BytesMut::new();
        write_value(&mut out, codec, &(1_u32, "two".to_owned())).unwrap();
        assert_eq!(
            read_value::<(u32, String)>(codec, &out),
            Ok((1, "two".to_owned()))
        );
        out.extend_from_slice(b"x");
        assert!(read_value::<(u32, String)>(codec, &out).is_err());
    }
}
