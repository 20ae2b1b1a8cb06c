//! The handshake's promises, one test each: a shared cookie connects, anything else is refused,
//! and no recorded, reflected or altered message gets a peer in.

use super::*;

fn id(name: &str, creation: u32) -> Identity {
    Identity {
        name: name.into(),
        creation,
    }
}

/// Distinct nonces per call, as the connection layer's random source gives.
fn nonce(seed: u8) -> [u8; NONCE_LEN] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

/// Every message crosses "the wire": encoded and decoded, as a frame would carry it.
fn wire(message: &Message) -> Message {
    Message::decode(&message.encode()).expect("a message decodes as it was encoded")
}

fn run(
    dialer_cookie: &str,
    acceptor_cookie: &str,
) -> (
    Result<Established, HandshakeError>,
    Result<Established, HandshakeError>,
) {
    let (dialer, hello) = Dialer::start(id("a@h:1", 7), "b@h:2", Cookie::new(dialer_cookie), 5, 1);
    let acceptor = Acceptor::new(id("b@h:2", 9), Cookie::new(acceptor_cookie), 2);
    let (awaiting_proof, challenge) = acceptor.on_hello(wire(&hello), nonce(1)).expect("hello");
    let (awaiting_welcome, proof) = dialer
        .on_challenge(wire(&challenge), nonce(2))
        .expect("challenge");
    match awaiting_proof.on_proof(wire(&proof)) {
        Ok(authenticated) => {
            // What admission decides on: the proven dialer and its last connection id.
            assert_eq!(authenticated.dialer(), &id("a@h:1", 7));
            assert_eq!(authenticated.last_conn(), 5);
            let (accepted, welcome) = authenticated.welcome(Status::Ok, 42);
            (awaiting_welcome.on_welcome(wire(&welcome)), Ok(accepted))
        }
        Err(error) => {
            let dialer_side = match &error {
                HandshakeError::Refused {
                    reply: Some(reply), ..
                } => awaiting_welcome.on_welcome(wire(reply)),
                _ => panic!("a refused proof is answered: {error:?}"),
            };
            (dialer_side, Err(error))
        }
    }
}

#[test]
fn a_shared_cookie_connects_both_sides_to_each_other() {
    let (dialer, acceptor) = run("secret", "secret");
    let dialer = dialer.expect("the dialer is in");
    let acceptor = acceptor.expect("the acceptor is in");
    assert_eq!(dialer.peer, id("b@h:2", 9));
    assert_eq!(acceptor.peer, id("a@h:1", 7));
    assert_eq!((dialer.version, acceptor.version), (1, 1));
    assert_eq!((dialer.peer_flags, acceptor.peer_flags), (2, 1));
    assert_eq!((dialer.status, dialer.conn_id), (Status::Ok, 42));
    assert_eq!((acceptor.status, acceptor.conn_id), (Status::Ok, 42));
}

#[test]
fn different_cookies_are_refused_on_both_sides() {
    let (dialer, acceptor) = run("secret", "other");
    assert_eq!(
        acceptor,
        Err(HandshakeError::Refused {
            refusal: Refusal::BadCookie,
            reply: Some(Message::Refused(Refusal::BadCookie)),
        })
    );
    assert_eq!(
        dialer,
        Err(HandshakeError::RefusedByPeer(Refusal::BadCookie))
    );
}

#[test]
fn the_cookie_never_crosses_the_wire() {
    let cookie = "a-cookie-long-enough-to-spot-in-the-bytes";
    let (dialer, hello) = Dialer::start(id("a@h:1", 1), "b@h:2", Cookie::new(cookie), 0, 0);
    let acceptor = Acceptor::new(id("b@h:2", 1), Cookie::new(cookie), 0);
    let (awaiting, challenge) = acceptor.on_hello(hello.clone(), nonce(1)).unwrap();
    let (_, proof) = dialer.on_challenge(challenge.clone(), nonce(2)).unwrap();
    let (_, welcome) = awaiting
        .on_proof(proof.clone())
        .unwrap()
        .welcome(Status::Ok, 1);
    for message in [hello, challenge, proof, welcome] {
        let bytes = message.encode();
        assert!(
            !bytes.windows(cookie.len()).any(|w| w == cookie.as_bytes()),
            "{message:?}"
        );
    }
    assert_eq!(format!("{:?}", Cookie::new(cookie)), "Cookie(<redacted>)");
}

#[test]
fn a_recorded_proof_is_useless_against_a_fresh_challenge() {
    let cookie = Cookie::new("secret");
    let (dialer, hello) = Dialer::start(id("a@h:1", 1), "b@h:2", cookie.clone(), 0, 0);
    let (awaiting, challenge) = Acceptor::new(id("b@h:2", 1), cookie.clone(), 0)
        .on_hello(hello.clone(), nonce(1))
        .unwrap();
    let (_, recorded) = dialer.on_challenge(challenge, nonce(2)).unwrap();
    assert!(awaiting.on_proof(recorded.clone()).is_ok());

    // An eavesdropper replays the Hello and the recorded Proof: the new challenge differs.
    let (awaiting, _) = Acceptor::new(id("b@h:2", 1), cookie, 0)
        .on_hello(hello, nonce(3))
        .unwrap();
    assert!(matches!(
        awaiting.on_proof(recorded),
        Err(HandshakeError::Refused {
            refusal: Refusal::BadCookie,
            ..
        })
    ));
}

#[test]
fn a_mac_cannot_be_reflected_to_the_other_side() {
    let cookie = Cookie::new("secret");
    let (dialer, hello) = Dialer::start(id("a@h:1", 1), "b@h:2", cookie.clone(), 0, 0);
    let (_, challenge) = Acceptor::new(id("b@h:2", 1), cookie, 0)
        .on_hello(hello, nonce(1))
        .unwrap();
    let (awaiting, proof) = dialer.on_challenge(challenge, nonce(2)).unwrap();
    let Message::Proof { mac, .. } = proof else {
        unreachable!()
    };
    // A fake acceptor sends the dialer's own MAC back as its Welcome.
    let reflected = Message::Welcome {
        status: Status::Ok,
        conn_id: 0,
        mac,
    };
    assert!(matches!(
        awaiting.on_welcome(reflected),
        Err(HandshakeError::Refused {
            refusal: Refusal::BadCookie,
            reply: None,
        })
    ));
}

#[test]
fn an_altered_field_breaks_the_macs() {
    let cookie = Cookie::new("secret");
    // A man in the middle changes the dialer's claimed creation on the way.
    let (dialer, hello) = Dialer::start(id("a@h:1", 1), "b@h:2", cookie.clone(), 0, 0);
    let Message::Hello {
        magic,
        min_version,
        max_version,
        name,
        to,
        last_conn,
        flags,
        ..
    } = hello
    else {
        unreachable!()
    };
    let altered = Message::Hello {
        magic,
        min_version,
        max_version,
        name,
        creation: 99,
        to,
        last_conn,
        flags,
    };
    let (awaiting, challenge) = Acceptor::new(id("b@h:2", 1), cookie.clone(), 0)
        .on_hello(altered, nonce(1))
        .unwrap();
    let (_, proof) = dialer.on_challenge(challenge, nonce(2)).unwrap();
    assert!(awaiting.on_proof(proof).is_err());

    // ... or the admission status in the Welcome.
    let (dialer, hello) = Dialer::start(id("a@h:1", 1), "b@h:2", cookie.clone(), 0, 0);
    let (awaiting, challenge) = Acceptor::new(id("b@h:2", 1), cookie, 0)
        .on_hello(hello, nonce(1))
        .unwrap();
    let (waiting, proof) = dialer.on_challenge(challenge, nonce(2)).unwrap();
    let (_, welcome) = awaiting.on_proof(proof).unwrap().welcome(Status::Stale, 5);
    let Message::Welcome { conn_id, mac, .. } = welcome else {
        unreachable!()
    };
    let forged = Message::Welcome {
        status: Status::Ok,
        conn_id,
        mac,
    };
    assert!(waiting.on_welcome(forged).is_err());
}

fn hello(min_version: u16, max_version: u16, name: &str, to: &str) -> Message {
    Message::Hello {
        magic: MAGIC,
        min_version,
        max_version,
        name: name.into(),
        creation: 1,
        to: to.into(),
        last_conn: 0,
        flags: 0,
    }
}

fn refusal_of(message: Message) -> Result<Refusal, HandshakeError> {
    match Acceptor::new(id("b@h:2", 1), Cookie::new("c"), 0).on_hello(message, nonce(1)) {
        Err(HandshakeError::Refused {
            refusal,
            reply: Some(Message::Refused(replied)),
        }) if replied == refusal => Ok(refusal),
        Err(other) => Err(other),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn the_acceptor_refuses_what_it_cannot_serve_before_any_mac() {
    assert_eq!(
        refusal_of(hello(2, 3, "a@h:1", "b@h:2")),
        Ok(Refusal::Version)
    );
    assert_eq!(
        refusal_of(hello(1, 1, "a@h:1", "c@h:3")),
        Ok(Refusal::WrongNode)
    );
    assert_eq!(refusal_of(hello(1, 1, "", "b@h:2")), Ok(Refusal::BadName));
    assert_eq!(
        refusal_of(hello(1, 1, "a b", "b@h:2")),
        Ok(Refusal::BadName)
    );
    assert_eq!(
        refusal_of(hello(1, 1, &"a".repeat(256), "b@h:2")),
        Ok(Refusal::BadName)
    );
    assert_eq!(
        refusal_of(hello(1, 1, "b@h:2", "b@h:2")),
        Ok(Refusal::BadName)
    );
    // A version range that includes ours is served with our version.
    let accepted = Acceptor::new(id("b@h:2", 1), Cookie::new("c"), 0)
        .on_hello(hello(0, 9, "a@h:1", "b@h:2"), nonce(1));
    assert!(matches!(
        accepted,
        Ok((_, Message::Challenge { version: 1, .. }))
    ));
}

#[test]
fn anything_but_the_next_message_is_malformed_and_gets_no_reply() {
    let not_ferrotp = Message::Hello {
        magic: 0xdead_beef,
        min_version: 1,
        max_version: 1,
        name: "a@h:1".into(),
        creation: 1,
        to: "b@h:2".into(),
        last_conn: 0,
        flags: 0,
    };
    assert!(matches!(
        refusal_of(not_ferrotp),
        Err(HandshakeError::Malformed(_))
    ));
    let proof_first = Message::Proof {
        nonce: nonce(1),
        mac: [0; MAC_LEN],
    };
    assert!(matches!(
        refusal_of(proof_first),
        Err(HandshakeError::Malformed(_))
    ));

    let (dialer, _) = Dialer::start(id("a@h:1", 1), "b@h:2", Cookie::new("c"), 0, 0);
    assert!(matches!(
        dialer.on_challenge(hello(1, 1, "x", "y"), nonce(2)),
        Err(HandshakeError::Malformed(_))
    ));
    // A challenge from another node than the one dialed.
    let (dialer, _) = Dialer::start(id("a@h:1", 1), "b@h:2", Cookie::new("c"), 0, 0);
    let impostor = Message::Challenge {
        version: 1,
        name: "z@h:9".into(),
        creation: 1,
        nonce: nonce(1),
        flags: 0,
    };
    assert!(matches!(
        dialer.on_challenge(impostor, nonce(2)),
        Err(HandshakeError::Refused {
            refusal: Refusal::WrongNode,
            reply: None,
        })
    ));
}

#[test]
fn decoding_rejects_truncated_and_trailing_bytes_and_never_panics() {
    let bytes = hello(1, 1, "a@h:1", "b@h:2").encode();
    for end in 0..bytes.len() {
        assert!(Message::decode(&bytes[..end]).is_err(), "{end} bytes");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Message::decode(&longer).is_err());

    // Seeded pseudo-random input: errors, never a panic or a huge allocation.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for len in 0..20_000_usize {
        let input: Vec<u8> = (0..len % 300)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        if let Ok(message) = Message::decode(&input) {
            // Whatever decodes re-encodes to the same bytes.
            assert_eq!(message.encode(), input);
        }
    }
}
