//! What the code `#[gen_server]` generates calls: typed calls and casts on the client side, the
//! dispatch and the handlers on the server side. Hidden from the docs; not meant to be called by
//! hand.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    message::Message,
    pid::Pid,
    reply::{Caller, Reply, ReplyTo},
    request::{Addr, CallError, Token, exchange},
    task::self_pid,
};

use super::{Dispatched, TaskReply};

/// A typed call or cast as it sits in the server's mailbox: the generated call enum plus the
/// caller.
#[doc(hidden)]
#[derive(Debug)]
pub struct TypedCall<C> {
    /// The calling process, or [`Pid::ROOT`] for a caller outside any process (no process has
    /// that pid): 8 bytes rather than an `Option`'s 12, which keeps a typed cast in a 48-byte
    /// allocation.
    pub from: Pid,
    pub call: C,
}

/// Generated dispatch code: the value of a message already checked with [`Message::is`].
#[doc(hidden)]
pub fn __unbox<T: std::any::Any>(message: Message) -> Box<T> {
    // Checked once more, not twice (as `Message::downcast_box` would, to give the message back).
    match message.into_any().downcast::<T>() {
        Ok(value) => value,
        Err(_) => unreachable!("the dispatch checked the message's type first"),
    }
}

/// What a message is, for the span it is handled in (see [`trace`](crate::trace)).
#[doc(hidden)]
#[derive(Debug)]
pub struct Described {
    /// The handler's name, or the message's type for an info message.
    pub(crate) handler: std::borrow::Cow<'static, str>,
    pub(crate) from: Option<Pid>,
    pub(crate) kind: &'static str,
}

impl Described {
    /// A typed call or cast to the handler `name`.
    pub fn typed<R>(name: &'static str, from: Pid, reply_to: &ReplyTo<R>) -> Self {
        Described {
            handler: name.into(),
            from: __sender(from),
            kind: kind(reply_to),
        }
    }

    /// A call by name, or any other message.
    pub fn other(message: &Message) -> Self {
        match message.downcast_ref::<crate::dispatch::DynamicCall>() {
            Some(call) => Described {
                handler: call.name.clone().into(),
                from: call.from,
                kind: kind(&call.reply_to),
            },
            None => Described {
                handler: message.type_name().into(),
                from: None,
                kind: "info",
            },
        }
    }
}

fn kind<R>(reply_to: &ReplyTo<R>) -> &'static str {
    match reply_to.is_nobody() {
        true => "cast",
        false => "call",
    }
}

/// The caller a [`TypedCall`] records.
#[doc(hidden)]
pub fn __sender(from: Pid) -> Option<Pid> {
    (from != Pid::ROOT).then_some(from)
}

fn sender_pid(from: Option<Pid>) -> Pid {
    from.unwrap_or(Pid::ROOT)
}

/// Generated client code: a typed call. `make` builds the call enum around the reply token.
/// For a server on another node (`remote`), the call goes by handler name instead, its body
/// encoded already and its reply decoded with `decode`.
#[doc(hidden)]
#[inline]
pub fn __call<C: Send + 'static, X: Send + 'static>(
    to: Addr,
    timeout: Duration,
    remote: Option<__Remote>,
    decode: Option<Decode<X>>,
    make: impl FnOnce(ReplyTo<X>) -> C + Send + 'static,
) -> impl Future<Output = Result<X, CallError>> + Send + 'static {
    let build = |from, reply_to| {
        Message::new(TypedCall {
            from: sender_pid(from),
            call: make(reply_to),
        })
    };
    match remote {
        // One future type either way, no bigger than a local call's: the remote path is the
        // exchange's boxed slow path, built out of line so that the local one stays inlined.
        None => exchange(to, timeout, Token::Handler, build),
        Some(remote) => remote_call(to, timeout, remote, decode),
    }
}

/// The remote path of [`__call`]: by handler name, boxed.
#[cold]
#[inline(never)]
fn remote_call<X: Send + 'static, B>(
    to: Addr,
    timeout: Duration,
    remote: __Remote,
    decode: Option<Decode<X>>,
) -> crate::request::Exchange<X, B>
where
    B: FnOnce(Option<Pid>, ReplyTo<X>) -> Message,
{
    crate::request::exchange_slow(
        to,
        timeout,
        Box::pin(async move {
            let handler = remote.handler;
            let value = remote.call(timeout, decode.is_some()).await;
            let value = value.map_err(|error| {
                error.split().unwrap_or_else(|_| CallError::BadReply {
                    handler: handler.to_owned(),
                    message: "an error from a handler that cannot fail".to_owned(),
                })
            })?;
            decoded(handler, decode, value)
        }),
    )
}

/// Generated client code: a typed call to a handler returning `Result<T, E>`.
#[doc(hidden)]
#[inline]
pub fn __call_fallible<C: Send + 'static, T: Send + 'static, E: Send + 'static>(
    to: Addr,
    timeout: Duration,
    remote: Option<__Remote>,
    decode: Option<(Decode<T>, Decode<E>)>,
    make: impl FnOnce(ReplyTo<Result<T, E>>) -> C + Send + 'static,
) -> impl Future<Output = Result<T, CallError<E>>> + Send + 'static {
    let local = match remote {
        None => Ok(__call(to, timeout, None, None, make)),
        Some(remote) => Err(remote),
    };
    async move {
        let remote = match local {
            Ok(call) => {
                return call
                    .await
                    .map_err(CallError::widen)?
                    .map_err(CallError::Handler);
            }
            Err(remote) => remote,
        };
        let handler = remote.handler;
        match remote.call(timeout, decode.is_some()).await {
            Ok(value) => {
                decoded(handler, decode.map(|(ok, _)| ok), value).map_err(CallError::widen)
            }
            Err(error) => Err(match error.split() {
                Ok(error) => error.widen(),
                Err(value) => match decoded(handler, decode.map(|(_, err)| err), value) {
                    Ok(error) => CallError::Handler(error),
                    Err(error) => error.widen(),
                },
            }),
        }
    }
}

/// Generated client code: a typed call to a task handler, whose reply may be a refusal.
#[doc(hidden)]
pub fn __call_task<C: Send + 'static, X: Send + 'static>(
    to: Addr,
    timeout: Duration,
    remote: Option<__Remote>,
    decode: Option<Decode<X>>,
    make: impl FnOnce(TaskReply<X>) -> C + Send + 'static,
) -> impl Future<Output = Result<X, CallError>> + Send + 'static {
    let local = match remote {
        None => Ok(__call(to, timeout, None, None, make)),
        Some(remote) => Err(remote),
    };
    async move {
        match local {
            Ok(call) => call.await?.map_err(CallError::from),
            // By name: the other node answers a refusal as the call's error already.
            Err(remote) => __call(to, timeout, Some(remote), decode, |_| ()).await,
        }
    }
}

/// Generated client code: a typed call to a task handler returning `Result<T, E>`.
#[doc(hidden)]
pub fn __call_task_fallible<C: Send + 'static, T: Send + 'static, E: Send + 'static>(
    to: Addr,
    timeout: Duration,
    remote: Option<__Remote>,
    decode: Option<(Decode<T>, Decode<E>)>,
    make: impl FnOnce(TaskReply<Result<T, E>>) -> C + Send + 'static,
) -> impl Future<Output = Result<T, CallError<E>>> + Send + 'static {
    let local = match remote {
        None => Ok(__call(to, timeout, None, None, make)),
        Some(remote) => Err(remote),
    };
    async move {
        match local {
            Ok(call) => match call.await.map_err(CallError::widen)? {
                Ok(reply) => reply.map_err(CallError::Handler),
                Err(refusal) => Err(refusal.into()),
            },
            Err(remote) => __call_fallible(to, timeout, Some(remote), decode, |_| ()).await,
        }
    }
}

/// Generated client code: a typed cast; `make` builds the call enum. For a server on another
/// node (`remote`), it goes by handler name instead.
#[doc(hidden)]
pub fn __cast<C: Send + 'static>(to: Addr, remote: Option<__Remote>, make: impl FnOnce() -> C) {
    let Some(remote) = remote else {
        let call = Message::new(TypedCall {
            from: sender_pid(self_pid()),
            call: make(),
        });
        return crate::request::cast_to_here(to, call);
    };
    match remote.body {
        Some(Ok(body)) => crate::dispatch::cast_value(remote.to, remote.handler, body),
        Some(Err(error)) => {
            tracing::error!(handler = remote.handler, %error, "a cast to another node could not be encoded; dropped")
        }
        None => tracing::error!(
            handler = remote.handler,
            "a cast to another node needs a handler whose argument is a serde type and that is \
             not `local`; dropped"
        ),
    }
}

/// How a reply from another node becomes the caller's type.
#[doc(hidden)]
pub type Decode<T> = fn(Value) -> Result<T, String>;
/// How a body for another node is encoded.
#[doc(hidden)]
pub type Encode<T> = fn(&T) -> Result<Value, String>;

/// Generated client code: a typed call or cast as it goes to a server on another node, by its
/// handler's name with the body encoded (`None`: the body cannot cross).
#[doc(hidden)]
pub struct __Remote {
    to: Addr,
    handler: &'static str,
    body: Option<Result<Value, String>>,
}

/// Generated client code: the remote form of a call to `to`, or `None` when `to` is on this
/// node (the typed call goes as it is). `encode` is `None` for a handler that cannot be reached
/// from another node.
#[doc(hidden)]
#[inline]
pub fn __remote<B>(
    to: Addr,
    handler: &'static str,
    body: &B,
    encode: Option<Encode<B>>,
) -> Option<__Remote> {
    if !to.is_remote() {
        return None;
    }
    Some(__Remote {
        to,
        handler,
        body: encode.map(|encode| encode(body)),
    })
}

impl __Remote {
    async fn call(self, timeout: Duration, decodable: bool) -> Result<Value, CallError<Value>> {
        let handler = self.handler;
        let body = match self.body {
            Some(body) if decodable => body,
            _ => {
                return Err(CallError::NotRemotable {
                    handler: handler.to_owned(),
                });
            }
        };
        let body = body.map_err(|message| CallError::BadRequest {
            handler: handler.to_owned(),
            message,
        })?;
        crate::dispatch::call_value(self.to, handler, body, timeout).await
    }
}

fn decoded<T>(handler: &str, decode: Option<Decode<T>>, value: Value) -> Result<T, CallError> {
    let decode = decode.ok_or_else(|| CallError::NotRemotable {
        handler: handler.to_owned(),
    })?;
    decode(value).map_err(|message| CallError::BadReply {
        handler: handler.to_owned(),
        message,
    })
}

/// Generated client code: what a type can do across nodes, found by autoref specialization:
/// `(&&__Probe::<T>::new()).__encoder()` is `Some` when `T` is a serde type, `None` otherwise
/// (with the traits below in scope). No bound on the user's types, so a handler whose types are
/// not serde still compiles and is refused across nodes at run time with
/// [`CallError::NotRemotable`].
#[doc(hidden)]
pub struct __Probe<T>(std::marker::PhantomData<fn() -> T>);

impl<T> __Probe<T> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        __Probe(std::marker::PhantomData)
    }
}

#[doc(hidden)]
pub trait __CanEncode<T> {
    fn __encoder(&self) -> Option<Encode<T>>;
}

impl<T: Serialize> __CanEncode<T> for &__Probe<T> {
    fn __encoder(&self) -> Option<Encode<T>> {
        Some(|value| serde_json::to_value(value).map_err(|error| error.to_string()))
    }
}

#[doc(hidden)]
pub trait __CannotEncode<T> {
    fn __encoder(&self) -> Option<Encode<T>>;
}

impl<T> __CannotEncode<T> for __Probe<T> {
    fn __encoder(&self) -> Option<Encode<T>> {
        None
    }
}

#[doc(hidden)]
pub trait __CanDecode<T> {
    fn __decoder(&self) -> Option<Decode<T>>;
}

impl<T: DeserializeOwned> __CanDecode<T> for &__Probe<T> {
    fn __decoder(&self) -> Option<Decode<T>> {
        Some(|value| serde_json::from_value(value).map_err(|error| error.to_string()))
    }
}

#[doc(hidden)]
pub trait __CannotDecode<T> {
    fn __decoder(&self) -> Option<Decode<T>>;
}

impl<T> __CannotDecode<T> for __Probe<T> {
    fn __decoder(&self) -> Option<Decode<T>> {
        None
    }
}

pin_project_lite::pin_project! {
    /// Generated server code: a handler at work. The user's method future is polled where it
    /// lies, so that it is stored once (an `async` block awaiting it would keep it both as a
    /// capture and as the awaited value), and `finish` applies its output to the caller.
    #[doc(hidden)]
    pub struct Handling<W, X, F> {
        #[pin]
        work: W,
        done: Option<(Caller<X>, F)>,
    }
}

/// Generated server code: see [`Handling`].
#[doc(hidden)]
pub fn __handling<W, X, F>(work: W, caller: Caller<X>, finish: F) -> Handling<W, X, F>
where
    W: Future,
    F: FnOnce(Caller<X>, W::Output) -> Dispatched,
{
    Handling {
        work,
        done: Some((caller, finish)),
    }
}

impl<W, X, F> Future for Handling<W, X, F>
where
    W: Future,
    F: FnOnce(Caller<X>, W::Output) -> Dispatched,
{
    type Output = Dispatched;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Dispatched> {
        let this = self.project();
        let output = std::task::ready!(this.work.poll(cx));
        match this.done.take() {
            Some((caller, finish)) => std::task::Poll::Ready(finish(caller, output)),
            // Polled after completion.
            None => std::task::Poll::Pending,
        }
    }
}

/// Generated server code: applies a handler's return value to its caller.
#[doc(hidden)]
pub fn __finish<X>(caller: Caller<X>, reply: Reply<X>) -> Dispatched {
    match caller.__finish(reply) {
        Some(reason) => Dispatched::Stop(reason),
        None => Dispatched::Continue,
    }
}

/// Generated server code: as [`__finish`], logging an `Err` nobody waits for (a failed cast), so
/// that it is not lost silently.
#[doc(hidden)]
pub fn __finish_fallible<T, E: fmt::Debug>(
    handler: &str,
    caller: Caller<Result<T, E>>,
    reply: Reply<Result<T, E>>,
) -> Dispatched {
    if let Reply::Reply(Err(error)) | Reply::StopReply(_, Err(error)) = &reply {
        if !caller.__is_waiting() {
            tracing::warn!(handler, ?error, "a cast handler failed");
        }
    }
    __finish(caller, reply)
}

/// Generated server code: what an `#[info]` handler's return value means for the server.
#[doc(hidden)]
pub fn __info(reply: Reply<()>) -> Dispatched {
    match reply {
        Reply::Reply(()) | Reply::NoReply => Dispatched::Continue,
        Reply::Stop(reason) | Reply::StopReply(reason, ()) => Dispatched::Stop(reason),
    }
}

/// A handler's `&mut Caller<X>` parameter, checked against the handler's reply type `R`: the
/// generated code holds a `Caller<R>`, so `X` must be `R`. Generated code hands the caller over
/// through this trait, naming the parameter's type with the user's own tokens, so that a mismatch
/// is reported at the parameter and in these words rather than as a type mismatch inside the
/// macro's output.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "this handler replies with `{R}`, so its caller parameter must be `&mut Caller<{R}>`",
    label = "expected `&mut Caller<{R}>`",
    note = "a handler's reply type is its return type, or `X` when it returns `Reply<X>`: change the parameter to `caller: &mut Caller<{R}>`, or the return type to match the caller"
)]
pub trait CallerOf<'a, R> {
    /// The caller as the handler's parameter: the same reference.
    fn __of(caller: &'a mut Caller<R>) -> Self;
}

impl<'a, R> CallerOf<'a, R> for &'a mut Caller<R> {
    fn __of(caller: &'a mut Caller<R>) -> Self {
        caller
    }
}

/// The parts of a `Result` type, so generated code can name them through a type alias such as
/// `io::Result<T>`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is named `Result` but is not a `std::result::Result`",
    note = "ferrotp reads a handler return type named `Result` as a fallible reply; rename the type"
)]
pub trait IsResult {
    type Ok;
    type Err;
}

impl<T, E> IsResult for Result<T, E> {
    type Ok = T;
    type Err = E;
}
