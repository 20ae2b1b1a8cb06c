//! Entry points for coverage-guided fuzzing (`fuzz/` at the repository root, run with
//! `cargo +nightly fuzz`): pure functions over bytes, no sockets, that must never panic. Each
//! also has an oracle for what must never happen, such as a handshake that succeeds without the
//! cookie. Reached from outside through the hidden `ferrotp::__fuzz`.

use super::{
    frame,
    handshake::{Acceptor, Cookie, Dialer, Identity, Message, NONCE_LEN},
    wire,
};

/// Splits `data` into up to `n` pieces, each prefixed by its length in one byte.
fn pieces(mut data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some((&len, rest)) = data.split_first() else {
            break;
        };
        let len = usize::from(len).min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

/// Decodes one message; whatever decodes must re-encode to the same bytes.
fn decode(bytes: &[u8]) -> Option<Message> {
    let message = Message::decode(bytes).ok()?;
    assert_eq!(
        message.encode(),
        bytes,
        "a decoded message re-encodes differently"
    );
    Some(message)
}

/// This node's and its peer's identities, and the cookie the fuzzer does not know.
fn fixed() -> (Identity, Identity, Cookie) {
    let a = Identity::new("a@127.0.0.1:1", 1);
    let b = Identity::new("b@127.0.0.1:2", 2);
    match (a, b, Cookie::new("fuzzing-cookie-0123456789")) {
        (Ok(a), Ok(b), Ok(cookie)) => (a, b, cookie),
        _ => unreachable!("the fuzzing identities and cookie are valid"),
    }
}

/// Drives one side of a handshake with messages taken from `data`. The first byte picks the
/// side (even: this node accepts; odd: it dials); the rest is length-prefixed messages. No input
/// may panic, and none may complete a handshake: the fuzzer does not know the cookie, so a
/// success would be a forgery.
pub fn handshake(data: &[u8]) {
    let Some((&side, data)) = data.split_first() else {
        return;
    };
    let (a, b, cookie) = fixed();
    let messages = pieces(data, 2);
    let mut messages = messages.iter().filter_map(|bytes| decode(bytes));
    let nonce = [7; NONCE_LEN];
    if side % 2 == 0 {
        let Some(hello) = messages.next() else { return };
        let Ok((awaiting, _challenge)) = Acceptor::new(b, cookie, 0).on_hello(hello, nonce) else {
            return;
        };
        let Some(proof) = messages.next() else { return };
        if let Ok(authenticated) = awaiting.on_proof(proof) {
            panic!(
                "a Proof forged without the cookie: {:?}",
                authenticated.dialer()
            );
        }
    } else {
        let Ok((dialer, _hello)) = Dialer::start(a, b.name(), cookie, 0, 0) else {
            unreachable!("the fuzzing dialer's target is valid")
        };
        let Some(challenge) = messages.next() else {
            return;
        };
        let Ok((awaiting, _proof)) = dialer.on_challenge(challenge, nonce) else {
            return;
        };
        let Some(welcome) = messages.next() else {
            return;
        };
        if let Ok(established) = awaiting.on_welcome(welcome) {
            panic!("a Welcome forged without the cookie: {established:?}");
        }
    }
}

/// Inputs that reach every step of [`handshake`] on both sides (a well-formed Hello to this node
/// and a Proof; a Challenge from the dialed node and a Welcome), for the fuzzer to start from:
/// it could not find the names by chance. `fuzz/seeds/handshake/` holds them as files; a unit
/// test keeps the files equal to this.
pub fn handshake_seeds() -> Vec<Vec<u8>> {
    let (a, b, cookie) = fixed();
    let framed = |side: u8, messages: &[Message]| {
        let mut input = vec![side];
        for message in messages {
            let bytes = message.encode();
            input.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
            input.extend_from_slice(&bytes);
        }
        input
    };
    let Ok((dialer, hello)) = Dialer::start(a, b.name(), cookie.clone(), 3, 0) else {
        unreachable!("the fuzzing dialer's target is valid")
    };
    let Ok((awaiting, challenge)) =
        Acceptor::new(b, cookie, 0).on_hello(hello.clone(), [9; NONCE_LEN])
    else {
        unreachable!("the fuzzing acceptor takes the fuzzing dialer's Hello")
    };
    let Ok((_, proof)) = dialer.on_challenge(challenge.clone(), [8; NONCE_LEN]) else {
        unreachable!("the fuzzing dialer takes the acceptor's Challenge")
    };
    let Ok(authenticated) = awaiting.on_proof(proof.clone()) else {
        unreachable!("the same cookie on both sides")
    };
    let (_, welcome) = authenticated.welcome(super::handshake::Status::Ok, 1);
    vec![
        framed(0, &[hello]),
        framed(0, &[hello_again(), proof]),
        framed(1, std::slice::from_ref(&challenge)),
        framed(1, &[challenge, welcome]),
    ]
}

/// A Hello like the seed dialer's, from another node, so that the acceptor seed with a Proof
/// needs the fuzzer to change one field to get further.
fn hello_again() -> Message {
    let (_, b, _) = fixed();
    Message::Hello {
        magic: super::handshake::MAGIC,
        min_version: 1,
        max_version: 1,
        name: "c@127.0.0.1:3".into(),
        creation: 3,
        to: b.name().to_owned(),
        last_conn: 0,
        flags: 0,
    }
}

/// Reads `data` as the byte stream of a connection: the handshake's frames under its cap, then,
/// from the frame the first byte of `data` chooses on, frames under the authenticated cap,
/// arriving in pieces whose sizes the input also chooses. No input may panic, and no frame may
/// come out larger than the cap in force.
pub fn frames(data: &[u8]) {
    let Some((&switch, data)) = data.split_first() else {
        return;
    };
    let (&chunk, data) = data.split_first().unwrap_or((&1, &[]));
    let mut codec = frame::codec();
    let mut buffer = bytes::BytesMut::new();
    let (mut seen, mut cap) = (0u8, frame::HANDSHAKE_MAX);
    for piece in data.chunks(usize::from(chunk.max(1))) {
        buffer.extend_from_slice(piece);
        loop {
            let next = match frame::next(&mut codec, &mut buffer) {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(_) => return,
            };
            assert!(
                next.len() <= cap,
                "a frame of {} bytes under a cap of {cap}",
                next.len()
            );
            if seen < switch {
                let _ = decode(&next);
            } else if let Ok(frame::Frame::Message {
                kind,
                codec,
                payload,
            }) = frame::parse(&next)
            {
                let _ = wire::decode_payload(&ends(), kind, codec, payload);
            }
            seen = seen.saturating_add(1);
            if seen == switch {
                cap = 64 * 1024;
                frame::authenticated(&mut codec, cap);
            }
        }
    }
}

/// The two ends of the connection the frames target reads.
fn ends() -> wire::Ends {
    wire::Ends {
        me: crate::process::node_core::DEFAULT_NODE,
        my_name: "a@127.0.0.1:1",
        my_creation: 1,
        peer: crate::process::node_core::DEFAULT_NODE,
        peer_name: "b@127.0.0.1:2",
    }
}

/// Inputs for [`frames`]: a handshake message, then a frame of every kind with a valid payload,
/// and a tick.
pub fn frames_seeds() -> Vec<Vec<u8>> {
    let mut stream = bytes::BytesMut::new();
    for message in handshake_seeds().into_iter().take(1) {
        let _ = frame::write_handshake(&mut stream, &message[2..]);
    }
    for (kind, codec, payload) in wire::payload_seeds() {
        let _ = frame::write::<()>(&mut stream, kind, codec, frame::DEFAULT_MAX, |out| {
            out.extend_from_slice(&payload);
            Ok(())
        });
    }
    frame::write_tick(&mut stream);
    let mut seed = vec![1, 7];
    seed.extend_from_slice(&stream);
    vec![seed]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed files the fuzzer starts from are what `handshake_seeds` makes (regenerate
    /// them with `FERROTP_WRITE_SEEDS=1 cargo test -p ferrotp seeds`).
    #[test]
    fn the_committed_seeds_are_current() {
        let write = std::env::var_os("FERROTP_WRITE_SEEDS").is_some();
        let targets = [("handshake", handshake_seeds()), ("frames", frames_seeds())];
        for (target, seeds) in targets {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fuzz/seeds")
                .join(target);
            for (i, seed) in seeds.iter().enumerate() {
                let path = dir.join(format!("seed-{i}"));
                if write {
                    std::fs::create_dir_all(&dir).expect("create the seed folder");
                    std::fs::write(&path, seed).expect("write a seed");
                }
                let committed = std::fs::read(&path).unwrap_or_default();
                assert!(
                    committed == *seed,
                    "{} is stale: regenerate the seeds with FERROTP_WRITE_SEEDS=1",
                    path.display()
                );
            }
        }
    }

    /// The frames target on stable, over its seed cut into pieces of every size and corrupted.
    #[test]
    fn the_frames_target_survives_seeded_inputs() {
        let seed = frames_seeds().remove(0);
        let mut next = crate::dist::xorshift(0x1234_5678_9abc_def1);
        for round in 0..5_000_usize {
            let mut input = seed.clone();
            input[1] = (round % 64) as u8;
            for _ in 0..next() % 4 {
                let at = usize::try_from(next()).unwrap_or(0) % input.len();
                input[at] = next() as u8;
            }
            frames(&input);
        }
    }

    /// The fuzz target on stable, over the seeds and seeded corruptions of them, so a
    /// regression shows in `cargo test` without the nightly fuzzer.
    #[test]
    fn the_handshake_target_survives_seeded_inputs() {
        let seeds = handshake_seeds();
        let mut next = crate::dist::xorshift(0x9e37_79b9_7f4a_7c15);
        for round in 0..20_000_usize {
            let mut input = seeds[round % seeds.len()].clone();
            for _ in 0..next() % 4 {
                let at = usize::try_from(next()).unwrap_or(0) % input.len();
                input[at] = next() as u8;
            }
            handshake(&input);
        }
    }
}
