//! Calls and casts across nodes. They travel by handler name with serde bodies, as dynamic
//! calls do on one node: the caller's side keeps each call in flight in its peer's table until
//! the `REPLY` comes (or the connection is lost, which fails it at once with
//! [`CallError::NoConnection`]); the server's side turns a `CALL` into the same `DynamicCall` a
//! local caller would send, and answers its reply token with a `REPLY`.
//!
//! The server's answer is anything a local caller could get: the reply, the handler's error,
//! or the call's failure (no such process, its exit reason, no reply, an unknown handler, a bad
//! request), so a remote caller learns the same as a local one.

use std::any::Any;

use serde_json::Value;

use super::{
    frame::{Codec, Kind},
    outbound::report,
    outbox::{Outbox, PushError},
    peer::Peer,
    wire::{
        Ends, Header, Outcome, WireCallError, WireCtx, WireError, WireTarget, WireTrace,
        read_value, write_header, write_value,
    },
};
use crate::{
    calls::{
        context::{self, CallCtx, WithCtx},
        export::Answer,
        trace::TraceContext,
    },
    dispatch::{DynamicCall, Encoded},
    mailbox::Push,
    message::Message,
    pid::Pid,
    process::{self, Unsent, node_core::NodeId, remote::ToServer},
    registry,
    reply::{ReplyTo, Sink},
    request::{CallError, gone},
    task::InNode,
    unwind::drop_quietly,
};

/// The node a call, cast or answer from the layer above is for.
pub(crate) fn target(upper: &(dyn Any + Send)) -> Option<NodeId> {
    match upper.downcast_ref::<ToServer>() {
        Some(call) => Some(call.to.node()),
        None => upper.downcast_ref::<Answer>().map(|answer| answer.node),
    }
}

/// Fails a call that cannot reach its node: `NoProc` for a node that is gone for good (an
/// earlier incarnation), `NoConnection` otherwise. A cast is dropped.
pub(crate) fn fail(upper: Box<dyn Any + Send>, reason: &crate::ExitReason) {
    let Ok(call) = upper.downcast::<ToServer>() else {
        return;
    };
    let ToServer { to, message, .. } = *call;
    let error = match reason {
        crate::ExitReason::NoProc => CallError::NoProc(to),
        _ => CallError::NoConnection(to),
    };
    answer_unsent(message, error, "a call that could not cross");
}

/// Answers a call (by handler name, with or without its context) that never reached its callee
/// with `error`; anything else is dropped.
fn answer_unsent(message: Message, error: CallError<Value>, what: &'static str) {
    match context::bare(message).downcast::<DynamicCall>() {
        Ok(DynamicCall { reply_to, body, .. }) => {
            drop_quietly(body, what);
            reply_to.send(Err(error));
        }
        Err(other) => drop_quietly(other, what),
    }
}

/// Encodes a call or cast for `peer` into `outbox`, keeping a call in the peer's table.
pub(crate) fn push(
    peer: &Peer,
    ends: &Ends,
    outbox: &std::sync::Arc<Outbox>,
    upper: Box<dyn Any + Send>,
) {
    let upper = match upper.downcast::<Answer>() {
        Ok(answer) => return push_answer(outbox, *answer),
        Err(upper) => upper,
    };
    let ToServer {
        to,
        name: by_name,
        message,
    } = match upper.downcast::<ToServer>() {
        Ok(call) => *call,
        Err(other) => return drop_quietly(other, "an unknown signal"),
    };
    // A call with a context (see `calls::context`): the context goes in the header.
    let (ctx, message) = match message.downcast::<WithCtx>() {
        Ok(with) => (Some(with.ctx), with.message),
        Err(message) => (None, message),
    };
    let call = match message.downcast::<DynamicCall>() {
        Ok(call) => call,
        Err(other) => {
            // Typed clients check before they get here; a raw request cannot cross.
            tracing::error!(pid = %to, message_type = other.type_name(), "only calls by handler name can go to another node; dropped");
            return drop_quietly(other, "a call that could not cross");
        }
    };
    let DynamicCall {
        name,
        body,
        from,
        reply_to,
    } = call;
    let from = from.map(|from| ends.write(from));
    let target = match by_name {
        Some(registered) => WireTarget::Name(registered),
        None => WireTarget::Pid(ends.write(to)),
    };
    let pushed = match reply_to.is_waiting() {
        false => push_with_body(
            outbox,
            Kind::Cast,
            &body,
            &Header::Cast {
                from,
                to: target,
                handler: &name,
                trace: ctx.and_then(|ctx| ctx.trace).map(WireTrace::from),
            },
        ),
        true => {
            let Some(id) = peer.register_call(outbox, to, reply_to) else {
                return;
            };
            let pushed = push_with_body(
                outbox,
                Kind::Call,
                &body,
                &Header::Call {
                    id,
                    from,
                    to: target,
                    handler: &name,
                    ctx: ctx.map(|ctx| write_ctx(ends, &ctx)),
                },
            );
            match &pushed {
                Ok(()) | Err(PushError::Closed) => {}
                Err(PushError::Payload(message)) => peer.fail_call(id, bad_request(&name, message)),
                Err(PushError::Frame(error)) => {
                    peer.fail_call(id, bad_request(&name, &error.to_string()));
                }
            }
            pushed
        }
    };
    report(pushed);
}

/// A call's context for the wire: the time its caller still waits, and its chain.
fn write_ctx(ends: &Ends, ctx: &CallCtx) -> WireCtx<'static> {
    let remaining_ns = ctx.deadline.map(|deadline| {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)
    });
    WireCtx {
        remaining_ns,
        chain: ctx.chain.iter().map(|&pid| ends.write(pid)).collect(),
        plain: ctx.plain,
        trace: ctx.trace.map(WireTrace::from),
    }
}

/// A call's context from the wire, its deadline counted from now (a chain longer than this
/// node keeps is cut at its oldest end).
fn read_ctx(ends: &Ends, ctx: WireCtx<'_>) -> Result<CallCtx, WireError> {
    let deadline = ctx.remaining_ns.and_then(|ns| {
        tokio::time::Instant::now().checked_add(std::time::Duration::from_nanos(ns))
    });
    let skip = ctx.chain.len().saturating_sub(context::CHAIN_LIMIT);
    let chain = ctx.chain[skip..]
        .iter()
        .map(|&pid| ends.read(pid))
        .collect::<Result<_, _>>()?;
    Ok(CallCtx {
        deadline,
        chain,
        plain: ctx.plain,
        span: None,
        trace: ctx.trace.map(TraceContext::from),
    })
}

fn bad_request(handler: &str, message: &str) -> CallError<Value> {
    CallError::BadRequest {
        handler: handler.to_owned(),
        message: message.to_owned(),
    }
}

/// Queues a frame with a header and a JSON body (dynamic bodies are JSON values).
fn push_with_body(
    outbox: &Outbox,
    kind: Kind,
    body: &Value,
    header: &Header<'_>,
) -> Result<(), PushError<String>> {
    outbox.push(kind, Codec::Json, |out| {
        write_header(out, header)?;
        write_value(out, Codec::Json, body)
    })
}

/// Queues an answer for a reply token the peer exported.
fn push_answer(outbox: &Outbox, answer: Answer) {
    let header = Header::Answer {
        export: answer.export,
        answered: answer.value.is_some(),
    };
    report(outbox.push(Kind::Answer, Codec::Json, |out| {
        write_header(out, &header)?;
        match &answer.value {
            Some(value) => write_value(out, Codec::Json, value),
            None => Ok(()),
        }
    }));
}

/// Applies a `CALL`, `CAST`, `REPLY` or `ANSWER` from `peer`.
pub(crate) fn apply(
    peer: &Peer,
    ends: &Ends,
    outbox: &std::sync::Arc<Outbox>,
    kind: Kind,
    codec: Codec,
    header: Header<'_>,
    body: &[u8],
) -> Result<(), WireError> {
    match (kind, header) {
        (
            Kind::Call,
            Header::Call {
                id,
                from,
                to,
                handler,
                ctx,
            },
        ) => {
            let from = from.map(|from| ends.read(from)).transpose()?;
            let to = read_target(ends, to)?;
            let ctx = ctx.map(|ctx| read_ctx(ends, ctx)).transpose()?;
            let value = match read_value::<Value>(codec, body) {
                Ok(value) => value,
                Err(message) => {
                    let error = WireCallError::BadRequest {
                        handler: handler.to_owned(),
                        message,
                    };
                    reply(outbox, id, Outcome::Failed(error), None);
                    return Ok(());
                }
            };
            // Where it goes, before the call is built: a call that was built answers for
            // itself through its sink, even if it never reaches a mailbox.
            let callee = match to {
                Local::Pid(pid) if pid.node() != ends.me => {
                    reply(outbox, id, Outcome::Failed(WireCallError::NoProc), None);
                    return Ok(());
                }
                Local::Pid(pid) => Some(pid),
                Local::Name(ref name) => match registry::resolve_on(ends.me, name) {
                    registry::Resolved::Held(pid) => Some(pid),
                    registry::Resolved::Reserved(_) => None,
                    registry::Resolved::Unknown => {
                        let error = WireCallError::NotRegistered(name.clone());
                        reply(outbox, id, Outcome::Failed(error), None);
                        return Ok(());
                    }
                },
            };
            let sink = CallSink {
                outbox: outbox.clone(),
                id,
                callee,
                node: ends.me,
                sent: false,
            };
            let call = DynamicCall {
                name: handler.to_owned(),
                body: value,
                from,
                reply_to: ReplyTo::sink(Box::new(sink)),
            };
            let to = match callee {
                Some(pid) => Local::Pid(pid),
                None => to,
            };
            let message = match ctx {
                Some(ctx) => Message::new(WithCtx {
                    ctx: std::sync::Arc::new(ctx),
                    message: Message::new(call),
                }),
                None => Message::new(call),
            };
            // A failure here drops the call, whose sink then answers with the reason.
            let _ = deliver(ends, to, message, Push::Call);
        }
        (
            Kind::Cast,
            Header::Cast {
                from,
                to,
                handler,
                trace,
            },
        ) => {
            let from = from.map(|from| ends.read(from)).transpose()?;
            let to = read_target(ends, to)?;
            match read_value::<Value>(codec, body) {
                Ok(value) => {
                    let call = DynamicCall {
                        name: handler.to_owned(),
                        body: value,
                        from,
                        reply_to: ReplyTo::nobody(),
                    };
                    let message = match trace {
                        Some(trace) => Message::new(WithCtx {
                            ctx: std::sync::Arc::new(CallCtx::plain(
                                None,
                                None,
                                Some(trace.into()),
                            )),
                            message: Message::new(call),
                        }),
                        None => Message::new(call),
                    };
                    if let Err(error) = deliver(ends, to, message, Push::Send) {
                        tracing::debug!(handler, ?error, "cast from another node dropped");
                    }
                }
                Err(error) => {
                    tracing::warn!(handler, %error, "cast from another node with a bad body; dropped")
                }
            }
        }
        (Kind::Reply, Header::Reply { id, outcome }) => {
            let Some((pid, reply_to)) = peer.take_call(id) else {
                // The caller gave up and its entry was pruned, or a peer sent nonsense.
                return Ok(());
            };
            let answer = match outcome {
                Outcome::Ok => {
                    read_value::<Value>(codec, body).map_err(|message| CallError::BadReply {
                        handler: String::new(),
                        message,
                    })
                }
                Outcome::Handler => match read_value::<Value>(codec, body) {
                    Ok(value) => Err(CallError::Handler(value)),
                    Err(message) => Err(CallError::BadReply {
                        handler: String::new(),
                        message,
                    }),
                },
                Outcome::Failed(error) => Err(from_wire(error, pid)),
            };
            reply_to.send(answer);
        }
        (Kind::Answer, Header::Answer { export, answered }) => {
            let value = match answered {
                false => None,
                true => match read_value::<Value>(codec, body) {
                    Ok(value) => Some(value),
                    Err(error) => {
                        tracing::error!(%error, "an answer from another node could not be decoded; the call fails as unanswered");
                        None
                    }
                },
            };
            crate::calls::export::answer(export, value);
        }
        (kind, _) => {
            return Err(WireError::Header(format!(
                "a {kind:?} frame with another header"
            )));
        }
    }
    Ok(())
}

/// A call's target on this node.
enum Local {
    Pid(Pid),
    Name(String),
}

fn read_target(ends: &Ends, to: WireTarget<'_>) -> Result<Local, WireError> {
    Ok(match to {
        WireTarget::Pid(pid) => Local::Pid(ends.read(pid)?),
        WireTarget::Name(name) => Local::Name(name.to_owned()),
    })
}

/// Answers a call from another node that a full mailbox turned away with `MailboxFull` (its
/// sink would otherwise answer for itself, as a call dropped unanswered).
fn refuse_full(message: Message, pid: Pid) {
    answer_unsent(
        message,
        CallError::MailboxFull(pid),
        "a call to a full mailbox",
    );
}

/// Puts a call or cast into its target's mailbox (by name: parked while the name is reserved
/// for a restart); the pid it went to, when known. `push` is [`Push::Call`] for a call: a full
/// mailbox refuses it even under [`Overflow::Block`](crate::Overflow::Block), since the
/// connection cannot wait.
fn deliver(
    ends: &Ends,
    to: Local,
    message: Message,
    push: Push,
) -> Result<Option<Pid>, WireCallError> {
    match to {
        Local::Pid(pid) if pid.node() != ends.me => Err(WireCallError::NoProc),
        Local::Pid(pid) => match process::push_to_server_here(pid, message, push) {
            Ok(()) => Ok(Some(pid)),
            Err(Unsent::Full { message, .. }) => {
                refuse_full(message, pid);
                Err(WireCallError::MailboxFull)
            }
            Err(unsent) => {
                drop_quietly(unsent.into_message(), "a call to a dead process");
                Err(to_wire(gone(pid).widen()))
            }
        },
        Local::Name(name) => {
            let mut found = None;
            let sent = registry::send_to_name_on(ends.me, &name, message, |pid, message| {
                found = Some(pid);
                match process::push_to_server_here(pid, message, push) {
                    Ok(()) => true,
                    // Answered here: taken care of.
                    Err(Unsent::Full { message, .. }) => {
                        refuse_full(message, pid);
                        true
                    }
                    Err(_) => false,
                }
            });
            match sent {
                Ok(()) => Ok(found),
                Err(_) => Err(WireCallError::NotRegistered(name)),
            }
        }
    }
}

/// Where the reply to a call from the peer goes: a `REPLY` on the connection it came by, sent
/// from whichever thread answers, with no task waiting for it. Dropped unanswered, it says why:
/// the callee's exit reason if it is exiting or gone, otherwise that nobody replied.
struct CallSink {
    outbox: std::sync::Arc<Outbox>,
    id: u64,
    /// The callee, when known before delivery (not for a name reserved for a restart).
    callee: Option<Pid>,
    node: NodeId,
    sent: bool,
}

impl Sink for CallSink {
    fn send(mut self: Box<Self>, answer: Encoded) {
        self.sent = true;
        self.outbox
            .replies
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match answer {
            Ok(value) => reply(&self.outbox, self.id, Outcome::Ok, Some(&value)),
            Err(CallError::Handler(value)) => {
                reply(&self.outbox, self.id, Outcome::Handler, Some(&value));
            }
            Err(other) => reply(&self.outbox, self.id, Outcome::Failed(to_wire(other)), None),
        }
    }

    fn expire(mut self: Box<Self>) {
        self.sent = true;
    }
}

impl Drop for CallSink {
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        let (outbox, id) = (self.outbox.clone(), self.id);
        let Some(pid) = self.callee else {
            return reply(&outbox, id, Outcome::Failed(WireCallError::NoReply), None);
        };
        let state = crate::table::table().with(pid, |cell| {
            let state = crate::mailbox::lock(&cell.state);
            (state.exit().cloned(), state.leaving())
        });
        let error = match state {
            Some((Some(reason), _)) => WireCallError::Exited(reason),
            Some((None, false)) => WireCallError::NoReply,
            None => to_wire(gone(pid).widen()),
            // Stopping, its reason not fixed yet (a gen_server running `terminate`): it follows.
            Some((None, true)) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(InNode::new(self.node, async move {
                        let reason = crate::wait(pid).await;
                        let error = WireCallError::Exited(reason);
                        reply(&outbox, id, Outcome::Failed(error), None);
                    }));
                    return;
                }
                Err(_) => WireCallError::NoReply,
            },
        };
        reply(&outbox, id, Outcome::Failed(error), None);
    }
}

fn reply(outbox: &Outbox, id: u64, outcome: Outcome, value: Option<&Value>) {
    let header = Header::Reply { id, outcome };
    report(outbox.push(Kind::Reply, Codec::Json, |out| {
        write_header(out, &header)?;
        match value {
            Some(value) => write_value(out, Codec::Json, value),
            None => Ok(()),
        }
    }));
}

fn to_wire(error: CallError<Value>) -> WireCallError {
    match error {
        CallError::NoProc(_) => WireCallError::NoProc,
        CallError::Exited { reason, .. } => WireCallError::Exited(reason),
        CallError::NoReply(_) => WireCallError::NoReply,
        CallError::NotRegistered(name) => WireCallError::NotRegistered(name.to_string()),
        CallError::UnknownHandler { name, available } => {
            WireCallError::UnknownHandler { name, available }
        }
        CallError::BadRequest { handler, message } => {
            WireCallError::BadRequest { handler, message }
        }
        CallError::BadReply { handler, message } => WireCallError::BadReply { handler, message },
        CallError::Cancelled(_) => WireCallError::Cancelled,
        CallError::Busy(_) => WireCallError::Busy,
        CallError::MailboxFull(_) => WireCallError::MailboxFull,
        other => WireCallError::Other(other.to_string()),
    }
}

fn from_wire(error: WireCallError, pid: Pid) -> CallError<Value> {
    match error {
        WireCallError::NoProc => CallError::NoProc(pid),
        WireCallError::Exited(reason) => CallError::Exited { pid, reason },
        WireCallError::NoReply => CallError::NoReply(pid),
        WireCallError::NotRegistered(name) => CallError::NotRegistered(name.into()),
        WireCallError::UnknownHandler { name, available } => {
            CallError::UnknownHandler { name, available }
        }
        WireCallError::BadRequest { handler, message } => {
            CallError::BadRequest { handler, message }
        }
        WireCallError::BadReply { handler, message } => CallError::BadReply { handler, message },
        WireCallError::Cancelled => CallError::Cancelled(pid),
        WireCallError::Busy => CallError::Busy(pid),
        WireCallError::MailboxFull => CallError::MailboxFull(pid),
        WireCallError::Other(message) => CallError::BadReply {
            handler: String::new(),
            message,
        },
    }
}
