//! The cookie handshake that authenticates a new connection between two nodes, as a state machine
//! over messages: no I/O, no clock and no randomness of its own (the caller passes the nonces), so
//! the same code runs over TCP, TLS or a simulated network, and a fuzzer can drive it.
//!
//! Four messages, the dialer proving itself first (as in Erlang's `dist_util`), so the acceptor
//! never computes a MAC for a peer that has not shown it knows the cookie:
//!
//! | # | from | message |
//! | --- | --- | --- |
//! | 1 | dialer | `Hello`: protocol magic and version range, its name and creation, the name it wants to reach, its last connection id with that node, flags |
//! | 2 | acceptor | `Challenge`: the chosen version, its name and creation, a fresh 32-byte nonce; or `Refused` |
//! | 3 | dialer | `Proof`: its own fresh nonce and `HMAC-SHA256(cookie, "dialer" ‖ T)` |
//! | 4 | acceptor | `Welcome`: the admission status, a connection id and `HMAC-SHA256(cookie, "acceptor" ‖ T ‖ status ‖ id)`; or `Refused` |
//!
//! `T`, the transcript, binds everything both sides said: the protocol label, both version ranges
//! and the version chosen, both names and creations, both nonces, the last connection id and both
//! sides' flags. So:
//! - the cookie never crosses the wire, only MACs of fresh data;
//! - a recorded `Proof` or `Welcome` is useless later (the other side's nonce is new every time);
//! - one side's MAC cannot be reflected back as the other's (the labels differ);
//! - a man in the middle who alters any field (a name, a version range, a flag) breaks the MACs,
//!   so it cannot downgrade the version either;
//! - MACs are compared in constant time (`Mac::verify_slice`).
//!
//! What the MACs cannot prevent is an offline guess of a weak cookie from a recorded handshake
//! (every transcript field crosses in the clear): a [`Cookie`] has at least 16 bytes, and a
//! random one of 32 is the default to aim for.
//!
//! Nothing a peer claims is believed before its MAC checks: the acceptor's only state before the
//! `Proof` verifies is this machine, and what the connection layer does with a new peer (admit
//! it, settle a simultaneous dial) starts from [`Authenticated`]. Refusals are typed
//! ([`Refusal`]) so both sides can log them and the dialer can report them to whoever waited.
//!
//! A cookie alone authenticates peers that share a secret; it gives the traffic no
//! confidentiality or integrity. Mutual TLS under this handshake is for untrusted networks.

use std::{fmt, sync::Arc};

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// "FERP": the first field of a `Hello`, so that a stray client is told apart from an old peer.
pub(crate) const MAGIC: u32 = 0x4645_5250;
/// The protocol versions this node speaks.
pub(crate) const VERSIONS: (u16, u16) = (3, 3);
/// The longest node name accepted, in bytes.
pub(crate) const MAX_NAME: usize = 255;
/// Bytes in a nonce and in a MAC.
pub(crate) const NONCE_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// The protocol's label, first in every MAC's input, so that no other use of the same cookie can
/// produce these MACs.
const LABEL: &[u8] = b"ferrotp-dist/1\0";
/// The fewest bytes a cookie may have.
pub(crate) const MIN_COOKIE: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret. Its `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Cookie(Arc<[u8]>);

impl Cookie {
    /// A cookie from a secret of at least [`MIN_COOKIE`] bytes: a shorter one could be guessed
    /// offline from one recorded handshake.
    pub(crate) fn new(secret: impl AsRef<[u8]>) -> Result<Self, WeakCookie> {
        let secret = secret.as_ref();
        if secret.len() < MIN_COOKIE {
            return Err(WeakCookie(secret.len()));
        }
        Ok(Cookie(secret.into()))
    }

    fn mac(&self, direction: &[u8], transcript: &[u8], tail: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length; the error case does not exist for it.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(LABEL);
        mac.update(direction);
        mac.update(transcript);
        mac.update(tail);
        mac
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cookie(<redacted>)")
    }
}

/// A secret too short to be a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a cookie needs at least {MIN_COOKIE} bytes, this one has {0}")]
pub struct WeakCookie(usize);

/// Who a node is on the wire: its name and its creation (a number that changes when the node
/// restarts, so its old pids are recognisably dead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    name: String,
    pub(crate) creation: u32,
}

impl Identity {
    /// An identity whose name the wire accepts ([`valid_name`]).
    pub(crate) fn new(name: &str, creation: u32) -> Result<Self, Refusal> {
        if !valid_name(name) {
            return Err(Refusal::BadName);
        }
        Ok(Identity {
            name: name.to_owned(),
            creation,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// A handshake message: the payload of one frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Message {
    Hello {
        magic: u32,
        min_version: u16,
        max_version: u16,
        name: String,
        creation: u32,
        to: String,
        last_conn: u64,
        flags: u32,
    },
    Challenge {
        version: u16,
        min_version: u16,
        max_version: u16,
        name: String,
        creation: u32,
        nonce: [u8; NONCE_LEN],
        flags: u32,
    },
    Proof {
        nonce: [u8; NONCE_LEN],
        mac: [u8; MAC_LEN],
    },
    Welcome {
        status: Status,
        conn_id: u64,
        mac: [u8; MAC_LEN],
    },
    Refused(Refusal),
}

impl Message {
    /// The message as a frame's payload.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // Every field has a fixed encoding; serialising into a growable buffer cannot fail.
        postcard::to_allocvec(self)
            .unwrap_or_else(|_| unreachable!("handshake messages always serialise"))
    }

    /// A frame's payload as a message: the whole payload, nothing left over, and in the one
    /// encoding this side would write (postcard also reads over-long integers; refusing them
    /// keeps one message one byte string, which fuzzing relies on).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Message, HandshakeError> {
        match postcard::take_from_bytes::<Message>(bytes) {
            Ok((message, [])) if message.encode() == bytes => Ok(message),
            Ok((_, [])) => Err(HandshakeError::Malformed(
                "a non-canonical encoding".to_owned(),
            )),
            Ok((_, rest)) => Err(HandshakeError::Malformed(format!(
                "{} bytes after the message",
                rest.len()
            ))),
            Err(error) => Err(HandshakeError::Malformed(error.to_string())),
        }
    }
}

/// What the acceptor decided about an authenticated dialer (authenticated too, in the `Welcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Status {
    /// The connection is admitted.
    Ok,
    /// Both nodes dialed each other at once and this connection loses: the dialer should wait for
    /// the one the acceptor is making.
    Simultaneous,
    /// The dialer's attempt predates the connection the two nodes already have.
    Stale,
}

/// Why a handshake was refused, as both sides report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The two nodes have different cookies.
    #[error("the cookies differ")]
    BadCookie,
    /// The two nodes speak no protocol version in common.
    #[error("no protocol version in common")]
    Version,
    /// The node that answered is not the one dialed.
    #[error("the node dialed is not this one")]
    WrongNode,
    /// A node name that is not valid.
    #[error("the node name is not valid")]
    BadName,
}

/// How a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// The peer sent something that is not the next handshake message: close without a word.
    #[error("not a handshake message here: {0}")]
    Malformed(String),
    /// The peer says it refuses this node. A refusal carries no MAC, so this is the peer's (or
    /// an attacker's) claim: report it, but do not remember it as a fact about the peer.
    #[error("refused by the peer: {0}")]
    RefusedByPeer(Refusal),
    /// This node refuses the peer; `reply` is the message to send it before closing, if any.
    #[error("refused: {refusal}")]
    Refused {
        refusal: Refusal,
        reply: Option<Message>,
    },
}

impl HandshakeError {
    fn refuse(refusal: Refusal) -> Self {
        HandshakeError::Refused {
            refusal,
            reply: Some(Message::Refused(refusal)),
        }
    }

    /// A refusal of ours that the peer is not told about (it could not verify it anyway).
    fn refuse_silently(refusal: Refusal) -> Self {
        HandshakeError::Refused {
            refusal,
            reply: None,
        }
    }
}

/// The end of a handshake on either side: both proved the cookie. A `status` other than
/// [`Status::Ok`] means the acceptor declined this connection (authentically): it must not be
/// used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Established {
    pub(crate) peer: Identity,
    pub(crate) version: u16,
    pub(crate) peer_flags: u32,
    pub(crate) status: Status,
    pub(crate) conn_id: u64,
}

/// Everything the transcript binds, in its order.
struct Transcript<'a> {
    dialer_versions: (u16, u16),
    acceptor_versions: (u16, u16),
    version: u16,
    dialer: &'a Identity,
    acceptor: &'a Identity,
    nonce_acceptor: &'a [u8; NONCE_LEN],
    nonce_dialer: &'a [u8; NONCE_LEN],
    last_conn: u64,
    dialer_flags: u32,
    acceptor_flags: u32,
}

impl Transcript<'_> {
    fn bytes(&self) -> Vec<u8> {
        let mut t = Vec::with_capacity(2 * MAX_NAME + 2 * NONCE_LEN + 48);
        for version in [
            self.dialer_versions.0,
            self.dialer_versions.1,
            self.acceptor_versions.0,
            self.acceptor_versions.1,
            self.version,
        ] {
            t.extend_from_slice(&version.to_be_bytes());
        }
        for identity in [self.dialer, self.acceptor] {
            // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ. An `Identity`'s name
            // has at most MAX_NAME (255) bytes, so one byte holds its length.
            let len = u8::try_from(identity.name.len())
                .unwrap_or_else(|_| unreachable!("Identity::new checks the length"));
            t.push(len);
            t.extend_from_slice(identity.name.as_bytes());
            t.extend_from_slice(&identity.creation.to_be_bytes());
        }
        t.extend_from_slice(self.nonce_acceptor);
        t.extend_from_slice(self.nonce_dialer);
        t.extend_from_slice(&self.last_conn.to_be_bytes());
        t.extend_from_slice(&self.dialer_flags.to_be_bytes());
        t.extend_from_slice(&self.acceptor_flags.to_be_bytes());
        t
    }
}

const DIALER: &[u8] = b"dialer\0";
const ACCEPTOR: &[u8] = b"acceptor\0";

fn welcome_tail(status: Status, conn_id: u64) -> [u8; 9] {
    let mut tail = [0; 9];
    tail[0] = match status {
        Status::Ok => 0,
        Status::Simultaneous => 1,
        Status::Stale => 2,
    };
    tail[1..].copy_from_slice(&conn_id.to_be_bytes());
    tail
}

/// A node name as the wire accepts it: 1 to [`MAX_NAME`] printable ASCII characters, no spaces
/// (so a name in a log line is what it looks like: no look-alike letters, no invisible or
/// direction-changing characters).
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic())
}

/// The dialer's side, before the `Challenge`.
#[derive(Debug)]
pub(crate) struct Dialer {
    me: Identity,
    to: String,
    cookie: Cookie,
    last_conn: u64,
    flags: u32,
}

impl Dialer {
    /// Starts a handshake with the node named `to`: the machine, and the `Hello` to send; or
    /// [`Refusal::BadName`] if `to` is not a valid name or is this node's own.
    pub(crate) fn start(
        me: Identity,
        to: &str,
        cookie: Cookie,
        last_conn: u64,
        flags: u32,
    ) -> Result<(Dialer, Message), Refusal> {
        if !valid_name(to) || to == me.name {
            return Err(Refusal::BadName);
        }
        let hello = Message::Hello {
            magic: MAGIC,
            min_version: VERSIONS.0,
            max_version: VERSIONS.1,
            name: me.name.clone(),
            creation: me.creation,
            to: to.to_owned(),
            last_conn,
            flags,
        };
        let dialer = Dialer {
            me,
            to: to.to_owned(),
            cookie,
            last_conn,
            flags,
        };
        Ok((dialer, hello))
    }

    /// Answers the acceptor's `Challenge` with a `Proof` made with the fresh `nonce`.
    pub(crate) fn on_challenge(
        self,
        message: Message,
        nonce: [u8; NONCE_LEN],
    ) -> Result<(AwaitingWelcome, Message), HandshakeError> {
        let (version, their_versions, name, creation, their_nonce, their_flags) = match message {
            Message::Challenge {
                version,
                min_version,
                max_version,
                name,
                creation,
                nonce,
                flags,
            } => (
                version,
                (min_version, max_version),
                name,
                creation,
                nonce,
                flags,
            ),
            // What the acceptor refuses before any MAC; its claim is not verifiable.
            Message::Refused(
                refusal @ (Refusal::Version | Refusal::WrongNode | Refusal::BadName),
            ) => {
                return Err(HandshakeError::RefusedByPeer(refusal));
            }
            other => return Err(unexpected("a Challenge", &other)),
        };
        // The highest version both speak, as the acceptor must have chosen.
        if choose_version(VERSIONS, their_versions) != Some(version) {
            return Err(HandshakeError::refuse_silently(Refusal::Version));
        }
        if name != self.to {
            return Err(HandshakeError::refuse_silently(Refusal::WrongNode));
        }
        let peer = Identity { name, creation };
        let transcript = Transcript {
            dialer_versions: VERSIONS,
            acceptor_versions: their_versions,
            version,
            dialer: &self.me,
            acceptor: &peer,
            nonce_acceptor: &their_nonce,
            nonce_dialer: &nonce,
            last_conn: self.last_conn,
            dialer_flags: self.flags,
            acceptor_flags: their_flags,
        }
        .bytes();
        let mac = self.cookie.mac(DIALER, &transcript, &[]).finalize();
        let proof = Message::Proof {
            nonce,
            mac: mac.into_bytes().into(),
        };
        let waiting = AwaitingWelcome {
            cookie: self.cookie,
            transcript,
            peer,
            version,
            peer_flags: their_flags,
        };
        Ok((waiting, proof))
    }
}

/// The dialer's side after its `Proof`.
#[derive(Debug)]
pub(crate) struct AwaitingWelcome {
    cookie: Cookie,
    transcript: Vec<u8>,
    peer: Identity,
    version: u16,
    peer_flags: u32,
}

impl AwaitingWelcome {
    /// Checks the acceptor's `Welcome`: the handshake is done once its MAC verifies.
    pub(crate) fn on_welcome(self, message: Message) -> Result<Established, HandshakeError> {
        let (status, conn_id, mac) = match message {
            Message::Welcome {
                status,
                conn_id,
                mac,
            } => (status, conn_id, mac),
            // The one refusal after a Proof; the peer's claim, not verifiable.
            Message::Refused(Refusal::BadCookie) => {
                return Err(HandshakeError::RefusedByPeer(Refusal::BadCookie));
            }
            other => return Err(unexpected("a Welcome", &other)),
        };
        let expected = self
            .cookie
            .mac(ACCEPTOR, &self.transcript, &welcome_tail(status, conn_id));
        if expected.verify_slice(&mac).is_err() {
            return Err(HandshakeError::refuse_silently(Refusal::BadCookie));
        }
        Ok(Established {
            peer: self.peer,
            version: self.version,
            peer_flags: self.peer_flags,
            status,
            conn_id,
        })
    }
}

/// The acceptor's side, before the `Hello`.
#[derive(Debug)]
pub(crate) struct Acceptor {
    me: Identity,
    cookie: Cookie,
    flags: u32,
}

impl Acceptor {
    pub(crate) fn new(me: Identity, cookie: Cookie, flags: u32) -> Self {
        Acceptor { me, cookie, flags }
    }

    /// Answers a dialer's `Hello` with a `Challenge` carrying the fresh `nonce`, or refuses it.
    pub(crate) fn on_hello(
        self,
        message: Message,
        nonce: [u8; NONCE_LEN],
    ) -> Result<(AwaitingProof, Message), HandshakeError> {
        let Message::Hello {
            magic,
            min_version,
            max_version,
            name,
            creation,
            to,
            last_conn,
            flags,
        } = message
        else {
            return Err(unexpected("a Hello", &message));
        };
        if magic != MAGIC {
            return Err(HandshakeError::Malformed(format!(
                "magic {magic:#010x}, not ferrotp's"
            )));
        }
        let Some(version) = choose_version(VERSIONS, (min_version, max_version)) else {
            return Err(HandshakeError::refuse(Refusal::Version));
        };
        if !valid_name(&name) || name == self.me.name {
            return Err(HandshakeError::refuse(Refusal::BadName));
        }
        if to != self.me.name {
            return Err(HandshakeError::refuse(Refusal::WrongNode));
        }
        let challenge = Message::Challenge {
            version,
            min_version: VERSIONS.0,
            max_version: VERSIONS.1,
            name: self.me.name.clone(),
            creation: self.me.creation,
            nonce,
            flags: self.flags,
        };
        let waiting = AwaitingProof {
            acceptor: self,
            dialer: Identity { name, creation },
            dialer_versions: (min_version, max_version),
            version,
            nonce,
            last_conn,
            dialer_flags: flags,
        };
        Ok((waiting, challenge))
    }
}

/// The acceptor's side after its `Challenge`: it knows what the dialer claims, and believes none
/// of it yet.
#[derive(Debug)]
pub(crate) struct AwaitingProof {
    acceptor: Acceptor,
    dialer: Identity,
    dialer_versions: (u16, u16),
    version: u16,
    nonce: [u8; NONCE_LEN],
    last_conn: u64,
    dialer_flags: u32,
}

impl AwaitingProof {
    /// Checks the dialer's `Proof`. Only once it verifies does the dialer's claim count.
    pub(crate) fn on_proof(self, message: Message) -> Result<Authenticated, HandshakeError> {
        let (their_nonce, mac) = match message {
            Message::Proof { nonce, mac } => (nonce, mac),
            other => return Err(unexpected("a Proof", &other)),
        };
        let transcript = Transcript {
            dialer_versions: self.dialer_versions,
            acceptor_versions: VERSIONS,
            version: self.version,
            dialer: &self.dialer,
            acceptor: &self.acceptor.me,
            nonce_acceptor: &self.nonce,
            nonce_dialer: &their_nonce,
            last_conn: self.last_conn,
            dialer_flags: self.dialer_flags,
            acceptor_flags: self.acceptor.flags,
        }
        .bytes();
        if self
            .acceptor
            .cookie
            .mac(DIALER, &transcript, &[])
            .verify_slice(&mac)
            .is_err()
        {
            return Err(HandshakeError::refuse(Refusal::BadCookie));
        }
        Ok(Authenticated {
            cookie: self.acceptor.cookie,
            transcript,
            dialer: self.dialer,
            version: self.version,
            last_conn: self.last_conn,
            dialer_flags: self.dialer_flags,
        })
    }
}

/// A dialer whose `Proof` verified: the connection layer decides its admission, then welcomes it.
#[derive(Debug)]
pub(crate) struct Authenticated {
    cookie: Cookie,
    transcript: Vec<u8>,
    dialer: Identity,
    version: u16,
    last_conn: u64,
    dialer_flags: u32,
}

impl Authenticated {
    /// Who the dialer is, now proven.
    pub(crate) fn dialer(&self) -> &Identity {
        &self.dialer
    }

    /// The last connection id the dialer had with this node (0 for none), for admission.
    pub(crate) fn last_conn(&self) -> u64 {
        self.last_conn
    }

    /// Ends the handshake with the admission `status` and, for an admitted connection, its id.
    pub(crate) fn welcome(self, status: Status, conn_id: u64) -> (Established, Message) {
        let mac = self
            .cookie
            .mac(ACCEPTOR, &self.transcript, &welcome_tail(status, conn_id))
            .finalize();
        let welcome = Message::Welcome {
            status,
            conn_id,
            mac: mac.into_bytes().into(),
        };
        let established = Established {
            peer: self.dialer,
            version: self.version,
            peer_flags: self.dialer_flags,
            status,
            conn_id,
        };
        (established, welcome)
    }
}

/// The highest version two ranges share, if any.
fn choose_version(ours: (u16, u16), theirs: (u16, u16)) -> Option<u16> {
    let version = ours.1.min(theirs.1);
    (version >= ours.0.max(theirs.0)).then_some(version)
}

fn unexpected(wanted: &str, got: &Message) -> HandshakeError {
    let got = match got {
        Message::Hello { .. } => "a Hello",
        Message::Challenge { .. } => "a Challenge",
        Message::Proof { .. } => "a Proof",
        Message::Welcome { .. } => "a Welcome",
        Message::Refused(_) => "a refusal",
    };
    HandshakeError::Malformed(format!("expected {wanted}, got {got}"))
}

#[cfg(test)]
mod tests;
