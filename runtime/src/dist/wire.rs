//! What each frame kind carries after its kind and flags: a header, always postcard (small,
//! versioned with the protocol, fuzzed), then for the kinds that carry a value its body, in the
//! codec the frame's flags name (postcard, or JSON for debugging).
//!
//! | kind | header | body |
//! | --- | --- | --- |
//! | `SEND` | `from`, `to`, type tag | the message |
//! | `SEND_NAMED` | `from`, name, type tag | the message |
//! | `LINK`, `UNLINK` | `from`, `to` | – |
//! | `EXIT` | `from`, `to`, reason, over a link or not | – |
//! | `MONITOR`, `DEMONITOR` | watcher, target, reference | – |
//! | `DOWN` | watcher, target, reference, reason | – |
//! | `CALL` | call id, `from`, target (pid or name), handler | the argument |
//! | `CAST` | `from`, target, handler | the argument |
//! | `REPLY` | call id, outcome | the value or the handler's error |
//! | `ANSWER` | export id, answered or dropped | the reply, if answered |
//! | `DISCONNECT` | reason | – |
//!
//! A pid is written relative to the connection ([`WireNode`]): a pid of the sending node or of
//! the receiving one costs its two numbers and a byte or five; only a pid of a third node spells
//! out its node's name.

use bytes::BytesMut;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::frame::{Codec, Kind};
use crate::{
    exit::ExitReason,
    link::MonitorRef,
    pid::{INDEX_LIMIT, Pid, SERIAL_MASK},
    process::node_core::{self, NodeId},
};

/// A pid's node, as seen from one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireNode<'a> {
    /// The node that sent the frame, in the incarnation the connection is with.
    Sender,
    /// The node receiving the frame, in incarnation `creation` (an old one names dead pids).
    Receiver(u32),
    /// Any other node: its name and creation.
    Other(&'a str, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WirePid<'a> {
    #[serde(borrow)]
    pub(crate) node: WireNode<'a>,
    pub(crate) index: u32,
    pub(crate) serial: u32,
}

/// The two ends of a connection, for writing and reading pids relative to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ends {
    /// This node.
    pub(crate) me: NodeId,
    /// This node's name and creation.
    pub(crate) my_name: &'static str,
    pub(crate) my_creation: u32,
    /// The peer's incarnation on this connection.
    pub(crate) peer: NodeId,
    pub(crate) peer_name: &'static str,
}

impl Ends {
    pub(crate) fn write(&self, pid: Pid) -> WirePid<'static> {
        let node = match pid.node() {
            node if node == self.me => WireNode::Sender,
            node => match node_core::name_of(node) {
                (name, creation) if name == self.peer_name => WireNode::Receiver(creation),
                (name, creation) => WireNode::Other(name, creation),
            },
        };
        WirePid {
            node,
            index: pid.index(),
            serial: pid.serial(),
        }
    }

    pub(crate) fn read(&self, pid: WirePid<'_>) -> Result<Pid, WireError> {
        if pid.index >= INDEX_LIMIT || pid.serial > SERIAL_MASK {
            return Err(WireError::Pid);
        }
        let node = match pid.node {
            WireNode::Sender => self.peer,
            WireNode::Receiver(creation) if creation == self.my_creation => self.me,
            // An earlier incarnation of this node: its pids name nobody.
            WireNode::Receiver(creation) => node_core::intern(self.my_name, creation)?,
            WireNode::Other(name, creation) => {
                if super::config::NodeName::parse(name).is_err() {
                    return Err(WireError::Pid);
                }
                node_core::intern(name, creation)?
            }
        };
        Ok(Pid::new(node, pid.index, pid.serial))
    }
}

/// Why a frame's payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    #[error("a malformed header: {0}")]
    Header(String),
    #[error("a pid with numbers out of range or a malformed node name")]
    Pid,
    #[error(transparent)]
    Nodes(#[from] node_core::TooManyNodes),
}

/// A call's context as it crosses: how long its caller still waits (clocks differ between
/// nodes, so not when), and the processes blocked on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireCtx<'a> {
    pub(crate) remaining_ns: Option<u64>,
    #[serde(borrow)]
    pub(crate) chain: Vec<WirePid<'a>>,
    /// A plain call's context: its deadline only expires it (see `calls::context`).
    pub(crate) plain: bool,
    /// The caller's place in its trace, when the caller's node wants handlers' spans.
    pub(crate) trace: Option<WireTrace>,
}

/// A [`TraceContext`](crate::trace::TraceContext) as it crosses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireTrace {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) sampled: bool,
}

impl From<crate::trace::TraceContext> for WireTrace {
    fn from(context: crate::trace::TraceContext) -> Self {
        WireTrace {
            trace_id: context.trace_id,
            span_id: context.span_id,
            sampled: context.sampled,
        }
    }
}

impl From<WireTrace> for crate::trace::TraceContext {
    fn from(wire: WireTrace) -> Self {
        crate::trace::TraceContext {
            trace_id: wire.trace_id,
            span_id: wire.span_id,
            sampled: wire.sampled,
        }
    }
}

/// A target by pid or by registered name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireTarget<'a> {
    #[serde(borrow)]
    Pid(WirePid<'a>),
    Name(&'a str),
}

/// The header of each kind (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Header<'a> {
    Send {
        #[serde(borrow)]
        from: WirePid<'a>,
        to: WirePid<'a>,
        tag: u64,
    },
    SendNamed {
        #[serde(borrow)]
        from: WirePid<'a>,
        name: &'a str,
        tag: u64,
    },
    Link {
        #[serde(borrow)]
        from: WirePid<'a>,
        to: WirePid<'a>,
    },
    Unlink {
        #[serde(borrow)]
        from: WirePid<'a>,
        to: WirePid<'a>,
    },
    Exit {
        #[serde(borrow)]
        from: WirePid<'a>,
        to: WirePid<'a>,
        reason: ExitReason,
        link: bool,
    },
    Monitor {
        #[serde(borrow)]
        watcher: WirePid<'a>,
        target: WirePid<'a>,
        monitor: MonitorRef,
    },
    Demonitor {
        #[serde(borrow)]
        watcher: WirePid<'a>,
        target: WirePid<'a>,
        monitor: MonitorRef,
    },
    Down {
        #[serde(borrow)]
        watcher: WirePid<'a>,
        target: WirePid<'a>,
        monitor: MonitorRef,
        reason: ExitReason,
    },
    Call {
        id: u64,
        #[serde(borrow)]
        from: Option<WirePid<'a>>,
        to: WireTarget<'a>,
        handler: &'a str,
        /// What the call carries beyond its body (see `calls::context`), if anything.
        #[serde(borrow)]
        ctx: Option<WireCtx<'a>>,
    },
    Cast {
        #[serde(borrow)]
        from: Option<WirePid<'a>>,
        to: WireTarget<'a>,
        handler: &'a str,
        /// The caller's place in its trace, when its node wants handlers' spans.
        trace: Option<WireTrace>,
    },
    Reply {
        id: u64,
        outcome: Outcome,
    },
    /// An answer for a reply token this node exported; the body is the reply when `answered`.
    Answer {
        export: u64,
        answered: bool,
    },
    Disconnect {
        reason: &'a str,
    },
}

/// How a call ended, in a `REPLY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The body is the handler's reply.
    Ok,
    /// The body is the handler's error.
    Handler,
    /// The call failed before or without a reply; no body.
    Failed(WireCallError),
}

/// A call's failure, as it crosses the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum WireCallError {
    NoProc,
    Exited(ExitReason),
    NoReply,
    NotRegistered(String),
    UnknownHandler {
        name: String,
        available: Vec<String>,
    },
    BadRequest {
        handler: String,
        message: String,
    },
    BadReply {
        handler: String,
        message: String,
    },
    Other(String),
    Cancelled,
    Busy,
    /// Appended: earlier variants keep their postcard tags.
    MailboxFull,
}

/// Writes `header` (always postcard) into `out`.
pub(crate) fn write_header(out: &mut BytesMut, header: &Header<'_>) -> Result<(), String> {
    postcard::serialize_with_flavor(header, Extend(out)).map_err(|error| error.to_string())
}

/// Reads a header and returns it with the body after it.
pub(crate) fn read_header(payload: &[u8]) -> Result<(Header<'_>, &[u8]), WireError> {
    postcard::take_from_bytes(payload).map_err(|error| WireError::Header(error.to_string()))
}

/// Writes a value in `codec`.
pub(crate) fn write_value<T: Serialize + ?Sized>(
    out: &mut BytesMut,
    codec: Codec,
    value: &T,
) -> Result<(), String> {
    match codec {
        Codec::Postcard => {
            postcard::serialize_with_flavor(value, Extend(out)).map_err(|error| error.to_string())
        }
        Codec::Json => {
            serde_json::to_writer(bytes::BufMut::writer(out), value).map_err(|e| e.to_string())
        }
    }
}

/// Reads a value written by [`write_value`]; the whole body must be the value.
pub(crate) fn read_value<T: DeserializeOwned>(codec: Codec, body: &[u8]) -> Result<T, String> {
    match codec {
        Codec::Postcard => match postcard::take_from_bytes(body) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(format!("{} bytes after the value", rest.len())),
            Err(error) => Err(error.to_string()),
        },
        Codec::Json => serde_json::from_slice(body).map_err(|error| error.to_string()),
    }
}

/// A postcard output that appends to a buffer.
struct Extend<'a>(&'a mut BytesMut);

impl postcard::ser_flavors::Flavor for Extend<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.extend_from_slice(&[data]);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Reads a frame's payload as the reader would, without applying it: the header, every pid in
/// it, and the body as its kind says (for the fuzzer, which must never see a panic here).
pub(crate) fn decode_payload(
    ends: &Ends,
    kind: Kind,
    codec: Codec,
    payload: &[u8],
) -> Result<(), WireError> {
    let (header, body) = read_header(payload)?;
    let pids = |pids: &[WirePid<'_>]| pids.iter().try_for_each(|pid| ends.read(*pid).map(drop));
    let value = |body| {
        read_value::<serde_json::Value>(codec, body)
            .map(drop)
            .map_err(WireError::Header)
    };
    match (kind, header) {
        (Kind::Send, Header::Send { from, to, tag }) => {
            pids(&[from, to])?;
            super::types::decode(tag, codec, body)
                .map(drop)
                .map_err(WireError::Header)
        }
        (Kind::SendNamed, Header::SendNamed { from, tag, .. }) => {
            pids(&[from])?;
            super::types::decode(tag, codec, body)
                .map(drop)
                .map_err(WireError::Header)
        }
        (Kind::Link, Header::Link { from, to })
        | (Kind::Unlink, Header::Unlink { from, to })
        | (Kind::Exit, Header::Exit { from, to, .. }) => pids(&[from, to]),
        (
            Kind::Monitor,
            Header::Monitor {
                watcher, target, ..
            },
        )
        | (
            Kind::Demonitor,
            Header::Demonitor {
                watcher, target, ..
            },
        )
        | (
            Kind::Down,
            Header::Down {
                watcher, target, ..
            },
        ) => pids(&[watcher, target]),
        (Kind::Call, Header::Call { from, to, ctx, .. }) => {
            pids(&from.into_iter().collect::<Vec<_>>())?;
            if let Some(ctx) = ctx {
                pids(&ctx.chain)?;
            }
            if let WireTarget::Pid(pid) = to {
                pids(&[pid])?;
            }
            value(body)
        }
        (Kind::Cast, Header::Cast { from, to, .. }) => {
            pids(&from.into_iter().collect::<Vec<_>>())?;
            if let WireTarget::Pid(pid) = to {
                pids(&[pid])?;
            }
            value(body)
        }
        (Kind::Reply, Header::Reply { outcome, .. }) => match outcome {
            Outcome::Failed(_) => Ok(()),
            _ => value(body),
        },
        (Kind::Answer, Header::Answer { answered, .. }) => match answered {
            true => value(body),
            false => Ok(()),
        },
        (Kind::Disconnect, Header::Disconnect { .. }) => Ok(()),
        (kind, _) => Err(WireError::Header(format!(
            "a {kind:?} frame with another header"
        ))),
    }
}

/// A valid payload of every kind, for the fuzzer's seeds.
pub(crate) fn payload_seeds() -> Vec<(Kind, Codec, Vec<u8>)> {
    let pid = |node| WirePid {
        node,
        index: 3,
        serial: 4,
    };
    let (sender, receiver) = (pid(WireNode::Sender), pid(WireNode::Receiver(1)));
    let other = pid(WireNode::Other("c@127.0.0.1:3", 9));
    let monitor = crate::link::MonitorRef::__for_tests(5);
    let u8_tag = super::types::fnv1a("u8");
    let headers = [
        (
            Kind::Send,
            Header::Send {
                from: sender,
                to: receiver,
                tag: u8_tag,
            },
        ),
        (
            Kind::SendNamed,
            Header::SendNamed {
                from: other,
                name: "log",
                tag: u8_tag,
            },
        ),
        (
            Kind::Link,
            Header::Link {
                from: sender,
                to: receiver,
            },
        ),
        (
            Kind::Unlink,
            Header::Unlink {
                from: sender,
                to: receiver,
            },
        ),
        (
            Kind::Exit,
            Header::Exit {
                from: sender,
                to: receiver,
                reason: ExitReason::error("boom"),
                link: true,
            },
        ),
        (
            Kind::Monitor,
            Header::Monitor {
                watcher: sender,
                target: receiver,
                monitor,
            },
        ),
        (
            Kind::Demonitor,
            Header::Demonitor {
                watcher: sender,
                target: receiver,
                monitor,
            },
        ),
        (
            Kind::Down,
            Header::Down {
                watcher: receiver,
                target: sender,
                monitor,
                reason: ExitReason::NoProc,
            },
        ),
        (
            Kind::Call,
            Header::Call {
                id: 1,
                from: Some(sender),
                to: WireTarget::Name("srv"),
                handler: "add",
                ctx: Some(WireCtx {
                    remaining_ns: Some(5_000_000_000),
                    chain: vec![sender],
                    plain: false,
                    trace: Some(WireTrace {
                        trace_id: u128::MAX - 1,
                        span_id: 7,
                        sampled: true,
                    }),
                }),
            },
        ),
        (
            Kind::Cast,
            Header::Cast {
                from: None,
                to: WireTarget::Pid(receiver),
                handler: "add",
                trace: None,
            },
        ),
        (
            Kind::Reply,
            Header::Reply {
                id: 1,
                outcome: Outcome::Ok,
            },
        ),
        (
            Kind::Answer,
            Header::Answer {
                export: 2,
                answered: true,
            },
        ),
        (Kind::Disconnect, Header::Disconnect { reason: "stopping" }),
    ];
    headers
        .into_iter()
        .map(|(kind, header)| {
            let mut out = BytesMut::new();
            let _ = write_header(&mut out, &header);
            let codec = match kind {
                Kind::Call | Kind::Cast | Kind::Reply | Kind::Answer => Codec::Json,
                _ => Codec::Postcard,
            };
            match kind {
                Kind::Send | Kind::SendNamed => out.extend_from_slice(&[0]),
                Kind::Call | Kind::Cast | Kind::Reply | Kind::Answer => {
                    out.extend_from_slice(b"[1,2]")
                }
                _ => {}
            }
            (kind, codec, out.to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests;
