//! Entry points for coverage-guided fuzzing (`fuzz/` at the repository root, run with
//! `cargo +nightly fuzz`): pure functions over bytes, no sockets, that must never panic. Each
//! also has an oracle for what must never happen, such as a handshake that succeeds without the
//! cookie. Reached from outside through the hidden `ferrotp::__fuzz`.

use super::handshake::{Acceptor, Cookie, Dialer, Identity, Message, NONCE_LEN};

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed files the fuzzer starts from are what `handshake_seeds` makes (regenerate
    /// them with `FERROTP_WRITE_SEEDS=1 cargo test -p ferrotp seeds`).
    #[test]
    fn the_committed_seeds_are_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/handshake");
        let write = std::env::var_os("FERROTP_WRITE_SEEDS").is_some();
        for (i, seed) in handshake_seeds().iter().enumerate() {
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
