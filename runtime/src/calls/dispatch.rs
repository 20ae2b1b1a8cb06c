//! Dynamic calls: a handler reached by its `#[install("name")]` string, with a serde body.
//!
//! The typed client a `#[gen_server]` generates is the way to call a server from Rust code that
//! knows its type. Dynamic calls are for everything else: scripts, tools, and remote nodes. The
//! body travels as a [`serde_json::Value`]; the server decodes it into the handler's argument type
//! and encodes the handler's reply the same way.
//!
//! A name the server does not handle gets [`CallError::UnknownHandler`] (listing the names it does
//! handle), a body that does not decode gets [`CallError::BadRequest`] with serde's message, and a
//! handler's `Err(e)` arrives as [`CallError::Handler`] holding `e` encoded. The server goes on in
//! every case.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    message::Message,
    pid::Pid,
    reply::ReplyTo,
    request::{self, Addr, CallError, DEFAULT_TIMEOUT, Token, exchange},
    task::self_pid,
};

/// A reply as a dynamic caller receives it.
pub type Encoded = Result<Value, CallError<Value>>;

/// What a dynamic call or cast puts in the server's mailbox.
#[doc(hidden)]
#[derive(Debug)]
pub struct DynamicCall {
    pub name: String,
    pub body: Value,
    pub from: Option<Pid>,
    pub reply_to: ReplyTo<Encoded>,
}

/// Calls the handler installed as `name` on the server `pid`, with `body` encoded by serde, and
/// decodes its reply as `R`. Waits up to [`DEFAULT_TIMEOUT`].
///
/// # Errors
///
/// [`CallError`], with handler errors encoded as JSON values.
pub async fn call<R: DeserializeOwned>(
    pid: Pid,
    name: &str,
    body: impl Serialize,
) -> Result<R, CallError<Value>> {
    call_timeout(pid, name, body, DEFAULT_TIMEOUT).await
}

/// [`call`] with an explicit timeout.
///
/// # Errors
///
/// [`CallError`], with handler errors encoded as JSON values.
pub async fn call_timeout<R: DeserializeOwned>(
    pid: Pid,
    name: &str,
    body: impl Serialize,
    timeout: Duration,
) -> Result<R, CallError<Value>> {
    call_to(Addr::pid(pid), name, body, timeout).await
}

/// [`call_timeout`] to a pid or a registered name.
pub(crate) async fn call_to<R: DeserializeOwned>(
    to: Addr,
    name: &str,
    body: impl Serialize,
    timeout: Duration,
) -> Result<R, CallError<Value>> {
    let body = encode_body(name, body)?;
    let reply = call_value(to, name, body, timeout).await?;
    serde_json::from_value(reply).map_err(|e| CallError::BadReply {
        handler: name.to_owned(),
        message: e.to_string(),
    })
}

/// [`call_to`] with the body encoded already, and the reply left encoded.
pub(crate) async fn call_value(
    to: Addr,
    name: &str,
    body: Value,
    timeout: Duration,
) -> Result<Value, CallError<Value>> {
    let handler = name;
    let name = name.to_owned();
    let remote = to.is_remote();
    let token = match remote {
        true => Token::Remote,
        false => Token::Handler,
    };
    let call = exchange(to, timeout, token, |from, reply_to| {
        Message::new(DynamicCall {
            name,
            body,
            from,
            reply_to,
        })
    });
    let reply = match remote {
        true => crate::calls::spin::from_first_wait(call).await,
        false => call.await,
    };
    reply
        .map_err(CallError::widen)?
        .map_err(|error| match error {
            // A reply that did not decode on its way back from another node: the connection that
            // found it does not know which handler it came from.
            CallError::BadReply {
                handler: unnamed,
                message,
            } if unnamed.is_empty() => CallError::BadReply {
                handler: handler.to_owned(),
                message,
            },
            error => error,
        })
}

/// Casts to the handler installed as `name` on the server `pid`: the handler runs, its reply is
/// dropped. Like Erlang's `gen_server:cast`, a cast to a process that is not alive is dropped.
///
/// # Errors
///
/// [`CallError::BadRequest`] when `body` cannot be encoded.
pub fn cast(pid: Pid, name: &str, body: impl Serialize) -> Result<(), CallError<Value>> {
    cast_to(Addr::pid(pid), name, body)
}

/// [`cast`] to a pid or a registered name.
pub(crate) fn cast_to(to: Addr, name: &str, body: impl Serialize) -> Result<(), CallError<Value>> {
    let body = encode_body(name, body)?;
    cast_value(to, name, body);
    Ok(())
}

/// [`cast_to`] with the body encoded already.
pub(crate) fn cast_value(to: Addr, name: &str, body: Value) {
    let call = DynamicCall {
        name: name.to_owned(),
        body,
        from: self_pid(),
        reply_to: ReplyTo::nobody(),
    };
    request::cast_to(to, Message::new(call));
}

fn encode_body(name: &str, body: impl Serialize) -> Result<Value, CallError<Value>> {
    serde_json::to_value(body).map_err(|e| CallError::BadRequest {
        handler: name.to_owned(),
        message: e.to_string(),
    })
}

/// A handler argument that dynamic calls can decode: any serde type. Its own name lets the
/// compiler say what to do when a handler's argument is not one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a serde type, so dynamic calls cannot decode it for this handler",
    label = "needs `#[derive(serde::Deserialize)]`",
    note = "derive `serde::Deserialize` for it, or mark the handler `#[install(\"name\", local)]` to reach it through the typed client only"
)]
pub trait DynamicBody: DeserializeOwned {}

impl<T: DeserializeOwned> DynamicBody for T {}

/// A handler reply that dynamic calls can encode: any serde type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a serde type, so dynamic calls cannot encode this handler's reply",
    label = "needs `#[derive(serde::Serialize)]`",
    note = "derive `serde::Serialize` for it, or mark the handler `#[install(\"name\", local)]` to reach it through the typed client only"
)]
pub trait DynamicReply: Serialize {}

impl<T: Serialize> DynamicReply for T {}

/// Generated dispatch code: decodes a handler's argument, answering the caller if it cannot.
#[doc(hidden)]
pub fn __decode<T: DynamicBody>(call: &mut DynamicCall) -> Option<T> {
    match serde_json::from_value(std::mem::take(&mut call.body)) {
        Ok(body) => Some(body),
        Err(e) => {
            let error = CallError::BadRequest {
                handler: call.name.clone(),
                message: e.to_string(),
            };
            tracing::warn!(handler = %call.name, %error, "dynamic call rejected");
            std::mem::replace(&mut call.reply_to, ReplyTo::nobody()).send(Err(error));
            None
        }
    }
}

/// Generated dispatch code: the reply token for a handler whose reply type is `X`.
#[doc(hidden)]
pub fn __reply_to<X>(call: &mut DynamicCall, encode: fn(X) -> Encoded) -> ReplyTo<X> {
    std::mem::replace(&mut call.reply_to, ReplyTo::nobody()).encoding(encode)
}

/// Generated dispatch code: encodes an infallible handler's reply.
#[doc(hidden)]
pub fn __encode<T: DynamicReply>(handler: &str, reply: T) -> Encoded {
    serde_json::to_value(reply).map_err(|e| bad_reply(handler, e))
}

/// Generated dispatch code: encodes a fallible handler's reply; `Err(e)` becomes
/// [`CallError::Handler`] holding `e` encoded.
#[doc(hidden)]
pub fn __encode_result<T: DynamicReply, E: DynamicReply>(
    handler: &str,
    reply: Result<T, E>,
) -> Encoded {
    match reply {
        Ok(value) => __encode(handler, value),
        Err(error) => Err(CallError::Handler(
            serde_json::to_value(error).map_err(|e| bad_reply(handler, e))?,
        )),
    }
}

fn bad_reply(handler: &str, error: serde_json::Error) -> CallError<Value> {
    CallError::BadReply {
        handler: handler.to_owned(),
        message: error.to_string(),
    }
}

/// Generated dispatch code: answers a call for a name the server does not handle.
#[doc(hidden)]
pub fn __unknown(call: DynamicCall, available: &[&str]) {
    let error = CallError::UnknownHandler {
        name: call.name,
        available: available.iter().map(|&name| name.to_owned()).collect(),
    };
    tracing::warn!(%error, from = ?call.from, "dynamic call for an unknown handler");
    call.reply_to.send(Err(error));
}
