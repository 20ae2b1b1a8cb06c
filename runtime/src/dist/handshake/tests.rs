//! The handshake's promises, one test each: a shared cookie connects, anything else is refused,
//! and no recorded, reflected or altered message gets a peer in.

use super::*;

fn id(name: &str, creation: u32) -> Identity {
    Identity::new(name, creation).expect("a valid name")
}

/// A cookie from a short word, padded to the minimum length.
fn cookie(word: &str) -> Cookie {
    Cookie::new(format!("{word:-<16}")).expect("long enough")
}

fn dial(me: Identity, to: &str, cookie: Cookie, last_conn: u64, flags: u32) -> (Dialer, Message) {
    Dialer::start(me, to, cookie, last_conn, flags).expect("a valid name to dial")
}

fn accept(cookie: Cookie) -> Acceptor {
    Acceptor::new(id("b@h:2", 9), cookie, 2)
}

/// Distinct nonces per call, as the connection layer's random source gives.
fn nonce(seed: u8) -> [u8; NONCE_LEN] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

/// Every message crosses "the wire": encoded and decoded, as a frame would carry it.
fn wire(message: &Message) -> Message {
    Message::decode(&message.encode()).expect("a message decodes as it was encoded")
}

/// The four messages of a successful handshake with the cookie `secret`.
fn messages(secret: &str) -> [Message; 4] {
    let (dialer, hello) = dial(id("a@h:1", 1), "b@h:2", cookie(secret), 0, 0);
    let (awaiting, challenge) = accept(cookie(secret))
        .on_hello(hello.clone(), nonce(1))
        .unwrap();
    let (_, proof) = dialer.on_challenge(challenge.clone(), nonce(2)).unwrap();
    let (_, welcome) = awaiting
        .on_proof(proof.clone())
        .unwrap()
        .welcome(Status::Ok, 1);
    [hello, challenge, proof, welcome]
}

/// A whole handshake between a@h:1 (dialer) and b@h:2 (acceptor), with `tamper` applied to each
/// message in transit (the index is the message's step, 1 to 4).
fn run_with(
    dialer_cookie: &str,
    acceptor_cookie: &str,
    tamper: impl Fn(usize, Message) -> Message,
) -> (
    Result<Established, HandshakeError>,
    Result<Established, HandshakeError>,
) {
    let (dialer, hello) = dial(id("a@h:1", 7), "b@h:2", cookie(dialer_cookie), 5, 1);
    let (awaiting_proof, challenge) =
        match accept(cookie(acceptor_cookie)).on_hello(tamper(1, wire(&hello)), nonce(1)) {
            Ok(next) => next,
            Err(error) => return (Err(error.clone()), Err(error)),
        };
    let (awaiting_welcome, proof) = match dialer.on_challenge(tamper(2, wire(&challenge)), nonce(2))
    {
        Ok(next) => next,
        Err(error) => return (Err(error.clone()), Err(error)),
    };
    match awaiting_proof.on_proof(tamper(3, wire(&proof))) {
        Ok(authenticated) => {
            // What admission decides on: the proven dialer and its last connection id.
            assert_eq!(authenticated.dialer(), &id("a@h:1", 7));
            assert_eq!(authenticated.last_conn(), 5);
            let (accepted, welcome) = authenticated.welcome(Status::Ok, 42);
            let dialer_side = awaiting_welcome.on_welcome(tamper(4, wire(&welcome)));
            (dialer_side, Ok(accepted))
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

fn run(
    dialer_cookie: &str,
    acceptor_cookie: &str,
) -> (
    Result<Established, HandshakeError>,
    Result<Established, HandshakeError>,
) {
    run_with(dialer_cookie, acceptor_cookie, |_, message| message)
}

fn is_bad_cookie(result: &Result<Established, HandshakeError>) -> bool {
    matches!(
        result,
        Err(HandshakeError::Refused {
            refusal: Refusal::BadCookie,
            ..
        })
    )
}

#[test]
fn a_shared_cookie_connects_both_sides_to_each_other() {
    let (dialer, acceptor) = run("secret", "secret");
    let dialer = dialer.expect("the dialer is in");
    let acceptor = acceptor.expect("the acceptor is in");
    assert_eq!(dialer.peer, id("b@h:2", 9));
    assert_eq!(acceptor.peer.name(), "a@h:1");
    assert_eq!(acceptor.peer, id("a@h:1", 7));
    assert_eq!((dialer.version, acceptor.version), (VERSIONS.1, VERSIONS.1));
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
fn a_short_secret_is_not_a_cookie() {
    assert_eq!(Cookie::new("").err(), Some(WeakCookie(0)));
    assert_eq!(Cookie::new("fifteen-bytes!!").err(), Some(WeakCookie(15)));
    assert!(Cookie::new("sixteen-bytes!!!").is_ok());
}

#[test]
fn the_cookie_never_crosses_the_wire() {
    let secret = "a-cookie-long-enough-to-spot-in-the-bytes";
    for message in messages(secret) {
        let bytes = message.encode();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{message:?}"
        );
    }
    assert_eq!(format!("{:?}", cookie(secret)), "Cookie(<redacted>)");
}

#[test]
fn a_recorded_proof_is_useless_against_a_fresh_challenge() {
    let (dialer, hello) = dial(id("a@h:1", 1), "b@h:2", cookie("secret"), 0, 0);
    let (awaiting, challenge) = accept(cookie("secret"))
        .on_hello(hello.clone(), nonce(1))
        .unwrap();
    let (_, recorded) = dialer.on_challenge(challenge, nonce(2)).unwrap();
    assert!(awaiting.on_proof(recorded.clone()).is_ok());

    // An eavesdropper replays the Hello and the recorded Proof: the new challenge differs.
    let (awaiting, _) = accept(cookie("secret")).on_hello(hello, nonce(3)).unwrap();
    assert!(matches!(
        awaiting.on_proof(recorded),
        Err(HandshakeError::Refused {
            refusal: Refusal::BadCookie,
            ..
        })
    ));
}

#[test]
fn a_recorded_welcome_is_useless_against_a_fresh_proof() {
    let handshake = |dialer_nonce| {
        let (dialer, hello) = dial(id("a@h:1", 1), "b@h:2", cookie("secret"), 0, 0);
        let (awaiting, challenge) = accept(cookie("secret")).on_hello(hello, nonce(1)).unwrap();
        let (waiting, proof) = dialer.on_challenge(challenge, dialer_nonce).unwrap();
        (waiting, awaiting.on_proof(proof).unwrap())
    };
    let (_, authenticated) = handshake(nonce(2));
    let (_, recorded) = authenticated.welcome(Status::Ok, 1);
    // A fake acceptor that reuses the acceptor's nonce and plays the recorded Welcome back.
    let (waiting, _) = handshake(nonce(3));
    assert!(waiting.on_welcome(recorded).is_err());
}

#[test]
fn a_mac_cannot_be_reflected_to_the_other_side() {
    let (dialer, hello) = dial(id("a@h:1", 1), "b@h:2", cookie("secret"), 0, 0);
    let (_, challenge) = accept(cookie("secret")).on_hello(hello, nonce(1)).unwrap();
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
    // And the direction labels alone make the two sides' MACs differ over the same input.
    let key = cookie("secret");
    assert_ne!(
        key.mac(DIALER, b"t", &[]).finalize().into_bytes(),
        key.mac(ACCEPTOR, b"t", &[]).finalize().into_bytes()
    );
}

#[test]
fn the_transcript_tells_name_boundaries_apart() {
    let transcript = |dialer: &Identity, acceptor: &Identity| {
        Transcript {
            dialer_versions: (1, 1),
            acceptor_versions: (1, 1),
            version: 1,
            dialer,
            acceptor,
            nonce_acceptor: &nonce(1),
            nonce_dialer: &nonce(2),
            last_conn: 0,
            dialer_flags: 0,
            acceptor_flags: 0,
        }
        .bytes()
    };
    assert_ne!(
        transcript(&id("ab", 1), &id("c", 1)),
        transcript(&id("a", 1), &id("bc", 1))
    );
}

/// Rebuilds a Hello with one change.
fn altered_hello(
    message: Message,
    change: impl FnOnce(&mut String, &mut u16, &mut u32, &mut u64),
) -> Message {
    let Message::Hello {
        magic,
        mut min_version,
        max_version,
        mut name,
        mut creation,
        to,
        mut last_conn,
        flags,
    } = message
    else {
        return message;
    };
    change(&mut name, &mut min_version, &mut creation, &mut last_conn);
    Message::Hello {
        magic,
        min_version,
        max_version,
        name,
        creation,
        to,
        last_conn,
        flags,
    }
}

#[test]
fn altering_any_field_in_transit_breaks_the_handshake() {
    // The dialer's name (identity misbinding), its version range (a downgrade), its creation,
    // its last connection id.
    let hello_changes: [fn(&mut String, &mut u16, &mut u32, &mut u64); 4] = [
        |name, _, _, _| *name = "c@h:3".into(),
        |_, min_version, _, _| *min_version = 0,
        |_, _, creation, _| *creation += 1,
        |_, _, _, last_conn| *last_conn += 1,
    ];
    for change in hello_changes {
        let (_, acceptor) = run_with("secret", "secret", |step, message| {
            if step == 1 {
                altered_hello(message, change)
            } else {
                message
            }
        });
        assert!(is_bad_cookie(&acceptor), "{acceptor:?}");
    }
    // The acceptor's nonce, creation or flags in the Challenge.
    let challenge_changes: [fn(&mut [u8; NONCE_LEN], &mut u32, &mut u32); 3] = [
        |nonce, _, _| nonce[0] ^= 1,
        |_, creation, _| *creation += 1,
        |_, _, flags| *flags ^= 4,
    ];
    for change in challenge_changes {
        let (_, acceptor) = run_with("secret", "secret", |step, message| match message {
            Message::Challenge {
                version,
                min_version,
                max_version,
                name,
                mut creation,
                mut nonce,
                mut flags,
            } if step == 2 => {
                change(&mut nonce, &mut creation, &mut flags);
                Message::Challenge {
                    version,
                    min_version,
                    max_version,
                    name,
                    creation,
                    nonce,
                    flags,
                }
            }
            other => other,
        });
        assert!(is_bad_cookie(&acceptor), "{acceptor:?}");
    }
    // The Proof's nonce or a bit of its MAC.
    for flip_mac in [false, true] {
        let (_, acceptor) = run_with("secret", "secret", |step, message| match message {
            Message::Proof { mut nonce, mut mac } if step == 3 => {
                if flip_mac {
                    mac[31] ^= 1
                } else {
                    nonce[5] ^= 1
                }
                Message::Proof { nonce, mac }
            }
            other => other,
        });
        assert!(is_bad_cookie(&acceptor), "{acceptor:?}");
    }
    // The Welcome's status or connection id.
    let welcome_changes: [fn(&mut Status, &mut u64); 2] = [
        |status, _| *status = Status::Stale,
        |_, conn_id| *conn_id += 1,
    ];
    for change in welcome_changes {
        let (dialer, acceptor) = run_with("secret", "secret", |step, message| match message {
            Message::Welcome {
                mut status,
                mut conn_id,
                mac,
            } if step == 4 => {
                change(&mut status, &mut conn_id);
                Message::Welcome {
                    status,
                    conn_id,
                    mac,
                }
            }
            other => other,
        });
        assert!(acceptor.is_ok());
        assert!(is_bad_cookie(&dialer), "{dialer:?}");
    }
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
    match accept(cookie("c")).on_hello(message, nonce(1)) {
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
        refusal_of(hello(VERSIONS.1 + 1, VERSIONS.1 + 2, "a@h:1", "b@h:2")),
        Ok(Refusal::Version)
    );
    assert_eq!(
        refusal_of(hello(VERSIONS.0, VERSIONS.1, "a@h:1", "c@h:3")),
        Ok(Refusal::WrongNode)
    );
    assert_eq!(
        refusal_of(hello(VERSIONS.0, VERSIONS.1, "b@h:2", "b@h:2")),
        Ok(Refusal::BadName)
    );
    for bad in [
        "",
        "a b",
        "a\u{202e}b",
        "a\u{200b}b",
        "ä@h",
        &"a".repeat(256),
    ] {
        assert_eq!(
            refusal_of(hello(VERSIONS.0, VERSIONS.1, bad, "b@h:2")),
            Ok(Refusal::BadName),
            "{bad:?}"
        );
        assert_eq!(Identity::new(bad, 1), Err(Refusal::BadName), "{bad:?}");
    }
    assert!(Identity::new(&"a".repeat(255), 1).is_ok());
    // A version range that includes ours is served with the highest version both speak.
    let accepted = accept(cookie("c")).on_hello(hello(0, 9, "a@h:1", "b@h:2"), nonce(1));
    assert!(matches!(
        accepted,
        Ok((_, Message::Challenge { version, .. })) if version == VERSIONS.1
    ));
}

#[test]
fn the_dialer_refuses_a_bad_target_a_wrong_node_and_a_wrong_version() {
    let start = |to: &str| Dialer::start(id("a@h:1", 1), to, cookie("c"), 0, 0).err();
    assert_eq!(start("a@h:1"), Some(Refusal::BadName));
    assert_eq!(start("b h"), Some(Refusal::BadName));

    let challenge = |name: &str, version, range: (u16, u16)| Message::Challenge {
        version,
        min_version: range.0,
        max_version: range.1,
        name: name.into(),
        creation: 1,
        nonce: nonce(1),
        flags: 0,
    };
    let answer = |message| {
        let (dialer, _) = dial(id("a@h:1", 1), "b@h:2", cookie("c"), 0, 0);
        dialer.on_challenge(message, nonce(2)).err()
    };
    let refused = |refusal| {
        Some(HandshakeError::Refused {
            refusal,
            reply: None,
        })
    };
    assert_eq!(
        answer(challenge("z@h:9", VERSIONS.1, VERSIONS)),
        refused(Refusal::WrongNode)
    );
    assert_eq!(
        answer(challenge(
            "b@h:2",
            VERSIONS.1 + 1,
            (VERSIONS.0, VERSIONS.1 + 1)
        )),
        refused(Refusal::Version)
    );
    // Lower than both could speak: a downgrade the dialer notices even before the MACs.
    assert_eq!(
        answer(challenge(
            "b@h:2",
            VERSIONS.0 - 1,
            (VERSIONS.0 - 1, VERSIONS.1)
        )),
        refused(Refusal::Version)
    );
    assert_eq!(answer(challenge("b@h:2", VERSIONS.1, VERSIONS)), None);
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

    let (dialer, _) = dial(id("a@h:1", 1), "b@h:2", cookie("c"), 0, 0);
    assert!(matches!(
        dialer.on_challenge(hello(1, 1, "x", "y"), nonce(2)),
        Err(HandshakeError::Malformed(_))
    ));
    // A refusal only the acceptor's first answer can carry, arriving after the Proof.
    let (dialer, _) = run_with("secret", "secret", |step, message| {
        if step == 4 {
            Message::Refused(Refusal::Version)
        } else {
            message
        }
    });
    assert!(
        matches!(dialer, Err(HandshakeError::Malformed(_))),
        "{dialer:?}"
    );
}

#[test]
fn the_wire_format_is_pinned() {
    // Changing these bytes changes protocol version 1: old and new nodes would not understand
    // each other. Bump the version instead.
    assert_eq!(Message::Refused(Refusal::BadCookie).encode(), [4, 0]);
    assert_eq!(
        hello(1, 1, "a", "b").encode(),
        [
            0, 0xd0, 0xa4, 0x95, 0xb2, 4, 1, 1, 1, b'a', 1, 1, b'b', 0, 0
        ]
    );
    // HMAC-SHA256(key, "ferrotp-dist/1\0" ‖ "dialer\0" ‖ input), as Python's hmac module
    // computes it: the labels and their order are part of the protocol too.
    let key = cookie("golden");
    let mac = key.mac(DIALER, b"transcript", &[]).finalize().into_bytes();
    assert_eq!(
        mac.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "27a1ab360adfd023fc9312068c6af4f16fa88783234c53c752cdf5a291a2332e"
    );
}

#[test]
fn decoding_accepts_only_whole_canonical_messages_and_never_panics() {
    let bytes = hello(1, 1, "a@h:1", "b@h:2").encode();
    for end in 0..bytes.len() {
        assert!(Message::decode(&bytes[..end]).is_err(), "{end} bytes");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Message::decode(&longer).is_err());
    // The same value with an over-long integer: postcard reads it, the handshake does not.
    assert_eq!(
        Message::decode(&[4, 0]),
        Ok(Message::Refused(Refusal::BadCookie))
    );
    assert!(Message::decode(&[0x84, 0x00, 0x00]).is_err());

    // Valid encodings with seeded random corruption, fed to every step: errors, never a panic.
    let valid: Vec<Vec<u8>> = messages("secret").iter().map(Message::encode).collect();
    let mut next = crate::dist::xorshift(0x2545_f491_4f6c_dd1d);
    let mut decoded = 0;
    for round in 0..20_000 {
        let mut input = valid[round % valid.len()].clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % input.len();
            input[at] = next() as u8;
        }
        let Ok(message) = Message::decode(&input) else {
            continue;
        };
        decoded += 1;
        assert_eq!(message.encode(), input);
        let _ = accept(cookie("secret")).on_hello(message.clone(), nonce(1));
        let (dialer, _) = dial(id("a@h:1", 1), "b@h:2", cookie("secret"), 0, 0);
        if let Ok((waiting, _)) = dialer.on_challenge(message.clone(), nonce(2)) {
            let _ = waiting.on_welcome(message);
        }
    }
    // Most corruptions of a field's value still decode: the steps above saw real messages.
    assert!(decoded > 5_000, "only {decoded} corrupted messages decoded");
}
