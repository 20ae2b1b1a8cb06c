//! Answering calls: the reply token, the caller, and what a handler returns.

use std::{
    fmt,
    sync::{Arc, Mutex, Weak},
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::process::{
    node_core::{self, NodeId, current_node},
    remote,
};
use crate::{
    dispatch::Encoded,
    exit::ExitReason,
    mailbox::{ExitWatch, lock},
    pid::Pid,
    reply_slot::{self, Channel, Waiting},
};

/// The right to answer one call or request, once.
///
/// It can be used at once, kept and used later, or sent to another process to answer (a deferred
/// reply: OTP's `noreply` followed by `gen_server:reply`). A reply that can no longer come fails
/// the caller at once, where OTP would leave it to its timeout:
/// - dropping the token unanswered, wherever it is (its holder returned without replying,
///   panicked or exited, or the message holding it was never read), fails the call with
///   [`CallError::NoReply`](crate::CallError::NoReply), or with
///   [`CallError::Exited`](crate::CallError::Exited) and the exit reason when the server it was
///   sent to is exiting;
/// - the server the call was sent to exiting fails the call with
///   [`CallError::Exited`](crate::CallError::Exited), even while another process holds the token.
///
/// A server keeps the token in its state and answers from another handler:
///
/// ```
/// use ferrotp::prelude::*;
///
/// struct Queue {
///     waiting: Option<ReplyTo<String>>,
/// }
///
/// #[gen_server]
/// impl Queue {
///     async fn init(_: ()) -> Self {
///         Queue { waiting: None }
///     }
///
///     /// Waits for the next job.
///     #[install("pop")]
///     async fn pop(&mut self, caller: &mut Caller<String>) -> Reply<String> {
///         self.waiting = Some(caller.defer());
///         Reply::NoReply
///     }
///
///     /// Hands `job` to the caller waiting in `pop`; whether one took it.
///     #[install("push")]
///     async fn push(&mut self, job: String) -> bool {
///         self.waiting.take().is_some_and(|token| token.send(job))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let queue = Queue::start(()).await.unwrap();
/// let worker = tokio::spawn(async move { queue.pop().await });
/// while queue.push("job 1".to_string()).await == Ok(false) {
///     tokio::task::yield_now().await; // until the worker's call has arrived
/// }
/// assert_eq!(worker.await.unwrap(), Ok("job 1".to_string()));
/// # }
/// ```
pub struct ReplyTo<R>(Route<R>);

enum Route<R> {
    /// A typed caller on this node waits for the value itself.
    Typed(Channel<R>),
    /// A dynamic (string-keyed) caller waits for the value encoded. Boxed, so that a token is 16
    /// bytes in every typed call and cast; a dynamic call allocates its JSON anyway.
    Encoded(Box<Encoding<R>>),
    /// The caller waits on another node, which exported the token (see `export`).
    Remote(Box<RemoteToken<R>>),
    /// The reply goes straight into a sink: a call from another node, answered on the
    /// connection it came by, with no task waiting for it.
    Sink(Box<SinkRoute<R>>),
    /// Nobody waits: the call was a cast, or the token was already used.
    Nobody,
}

/// A token exported by another node: the answer goes back there.
struct RemoteToken<R> {
    node: NodeId,
    export: u64,
    encode: fn(R) -> Result<serde_json::Value, String>,
    answered: bool,
}

impl<R> RemoteToken<R> {
    fn answer(&mut self, value: Option<serde_json::Value>) {
        self.answered = true;
        let here = current_node();
        if self.node == here {
            return crate::calls::export::answer(self.export, value);
        }
        let answer = crate::calls::export::Answer {
            node: self.node,
            export: self.export,
            value,
        };
        remote::route(here, remote::Signal::Upper(Box::new(answer)));
    }
}

impl<R> Drop for RemoteToken<R> {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(None);
        }
    }
}

/// Where the reply to a call from another node goes, encoded. Dropped without a reply, the sink
/// answers for itself (the call was dropped, or its callee exited).
pub(crate) trait Sink: Send {
    fn send(self: Box<Self>, reply: Encoded);

    /// The call is not run: its deadline passed before the server took it. Its caller, on
    /// another node, times out by its own clock, so nothing is sent (a `NoReply` would beat
    /// the caller's timer and misreport the timeout).
    fn expire(self: Box<Self>);
}

struct SinkRoute<R> {
    slot: SinkSlot,
    encode: fn(R) -> Encoded,
}

enum SinkSlot {
    Direct(Box<dyn Sink>),
    /// Shared with the callee's exit, as `Channel::Watched` is: whoever comes first takes it.
    Watched(Arc<SharedSink>),
}

struct SharedSink(Mutex<Option<Box<dyn Sink>>>);

impl ExitWatch for SharedSink {
    fn callee_exited(&self) {
        let sink = lock(&self.0).take();
        drop(sink);
    }
}

// A reply token sits in every typed call and cast message.
const _: () = assert!(std::mem::size_of::<ReplyTo<u64>>() == 16);

struct Encoding<R> {
    channel: Channel<Encoded>,
    encode: fn(R) -> Encoded,
}

impl ReplyTo<Encoded> {
    /// A token whose reply goes into `sink` (see [`Sink`]).
    pub(crate) fn sink(sink: Box<dyn Sink>) -> Self {
        ReplyTo(Route::Sink(Box::new(SinkRoute {
            slot: SinkSlot::Direct(sink),
            encode: |reply| reply,
        })))
    }
}

impl<R> ReplyTo<R> {
    /// A token and the caller's side of its call.
    pub(crate) fn channel() -> (Self, Waiting<R>) {
        let (channel, waiting) = reply_slot::channel();
        (ReplyTo(Route::Typed(channel)), waiting)
    }

    /// A token nobody waits on: sending through it does nothing.
    pub fn nobody() -> Self {
        ReplyTo(Route::Nobody)
    }

    /// Sends the reply; `false` if nobody waits for it (the caller timed out or exited, or the
    /// call was a cast).
    pub fn send(mut self, reply: R) -> bool {
        match std::mem::replace(&mut self.0, Route::Nobody) {
            Route::Typed(channel) => channel.send(reply),
            Route::Encoded(encoding) => encoding.channel.send((encoding.encode)(reply)),
            Route::Sink(route) => {
                let sink = match route.slot {
                    SinkSlot::Direct(sink) => Some(sink),
                    SinkSlot::Watched(shared) => lock(&shared.0).take(),
                };
                match sink {
                    Some(sink) => {
                        sink.send((route.encode)(reply));
                        true
                    }
                    None => false,
                }
            }
            Route::Remote(mut token) => match (token.encode)(reply) {
                Ok(value) => {
                    token.answer(Some(value));
                    true
                }
                Err(error) => {
                    tracing::error!(%error, "a reply for another node could not be encoded; the call fails as unanswered");
                    false
                }
            },
            Route::Nobody => false,
        }
    }

    /// Another token for the same call, if this one can be shared: one that watches its
    /// callee's exit (the first of the two to answer wins).
    fn share(&self) -> Option<Self> {
        fn share<T>(channel: &Channel<T>) -> Option<Channel<T>> {
            match channel {
                Channel::Watched(shared) => Some(Channel::Watched(shared.clone())),
                Channel::Direct(_) => None,
            }
        }
        match &self.0 {
            Route::Typed(channel) => Some(ReplyTo(Route::Typed(share(channel)?))),
            Route::Encoded(encoding) => Some(ReplyTo(Route::Encoded(Box::new(Encoding {
                channel: share(&encoding.channel)?,
                encode: encoding.encode,
            })))),
            Route::Sink(route) => match &route.slot {
                SinkSlot::Watched(shared) => Some(ReplyTo(Route::Sink(Box::new(SinkRoute {
                    slot: SinkSlot::Watched(shared.clone()),
                    encode: route.encode,
                })))),
                SinkSlot::Direct(_) => None,
            },
            Route::Remote(_) | Route::Nobody => None,
        }
    }

    /// The same token, its call failed by the exit of the process `watch` is registered with
    /// (see [`reply_slot`](crate::reply_slot)), wherever the token is by then.
    pub(crate) fn watched(mut self) -> (Self, Option<Weak<dyn ExitWatch>>)
    where
        R: Send + 'static,
    {
        let (route, watch) = match std::mem::replace(&mut self.0, Route::Nobody) {
            Route::Typed(channel) => {
                let (channel, watch) = channel.watched();
                (Route::Typed(channel), Some(watch))
            }
            Route::Encoded(mut encoding) => {
                let (channel, watch) = encoding.channel.watched();
                encoding.channel = channel;
                (Route::Encoded(encoding), Some(watch))
            }
            Route::Sink(mut route) => {
                let shared = match route.slot {
                    SinkSlot::Direct(sink) => Arc::new(SharedSink(Mutex::new(Some(sink)))),
                    SinkSlot::Watched(shared) => shared,
                };
                let watch = Arc::downgrade(&shared) as Weak<dyn ExitWatch>;
                route.slot = SinkSlot::Watched(shared);
                (Route::Sink(route), Some(watch))
            }
            other @ (Route::Remote(_) | Route::Nobody) => (other, None),
        };
        (ReplyTo(route), watch)
    }

    /// Whether the caller gave up on this call: it waited for an answer and no longer does (its
    /// timeout passed, or its future was dropped). Never for a cast's token, nor for a caller on
    /// another node (whose giving up this node cannot see: its call carries a deadline instead).
    #[doc(hidden)]
    #[inline]
    pub fn __gave_up(&self) -> bool {
        match &self.0 {
            Route::Typed(channel) => !channel.is_waiting(),
            Route::Encoded(encoding) => !encoding.channel.is_waiting(),
            Route::Remote(_) | Route::Sink(_) | Route::Nobody => false,
        }
    }

    /// Ends the call unanswered, without running it, because its deadline has passed: its
    /// caller times out (a caller on this node sees the token dropped after its deadline and
    /// reports [`CallError::Timeout`](crate::CallError::Timeout); one on another node hears
    /// nothing and times out by its own clock).
    pub(crate) fn expire(mut self) {
        if let Route::Sink(route) = std::mem::replace(&mut self.0, Route::Nobody) {
            let sink = match route.slot {
                SinkSlot::Direct(sink) => Some(sink),
                SinkSlot::Watched(shared) => lock(&shared.0).take(),
            };
            if let Some(sink) = sink {
                sink.expire();
            }
        }
    }

    /// Whether this token answers nobody (a cast's, or one already used).
    pub(crate) fn is_nobody(&self) -> bool {
        matches!(self.0, Route::Nobody)
    }

    /// Whether a caller still waits for this reply.
    pub fn is_waiting(&self) -> bool {
        match &self.0 {
            Route::Typed(channel) => channel.is_waiting(),
            Route::Encoded(encoding) => encoding.channel.is_waiting(),
            Route::Remote(token) => !token.answered,
            Route::Sink(route) => match &route.slot {
                SinkSlot::Direct(_) => true,
                SinkSlot::Watched(shared) => lock(&shared.0).is_some(),
            },
            Route::Nobody => false,
        }
    }
}

impl<R> Drop for ReplyTo<R> {
    #[inline]
    fn drop(&mut self) {
        if matches!(self.0, Route::Nobody) {
            return;
        }
        // Dropped while its holder unwinds from a panic, which ends that process (a gen_server
        // stops, any other process exits): mark it before the caller is woken, so that a caller
        // of this very process waits for its exit reason instead of failing with `NoReply`.
        // Unless an error hook is to decide first whether the server stops at all.
        if std::thread::panicking() && !SURVIVABLE.get() {
            crate::process::mark_stopping();
        }
    }
}

thread_local! {
    /// Set while a panic on this thread may not end its process: a handler of a server with an
    /// error hook is being polled.
    static SURVIVABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` where a panic may not end the process: reply tokens dropped by its unwinding do not
/// mark the process stopping (their callers get `NoReply`).
pub(crate) fn survivable<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SURVIVABLE.set(self.0);
        }
    }
    let _restore = Restore(SURVIVABLE.replace(true));
    f()
}

impl ReplyTo<Encoded> {
    /// Turns a dynamic caller's token into one for the handler's own reply type, encoding the
    /// reply on the way.
    pub(crate) fn encoding<R>(mut self, encode: fn(R) -> Encoded) -> ReplyTo<R> {
        match std::mem::replace(&mut self.0, Route::Nobody) {
            Route::Typed(channel) => {
                ReplyTo(Route::Encoded(Box::new(Encoding { channel, encode })))
            }
            Route::Sink(route) => ReplyTo(Route::Sink(Box::new(SinkRoute {
                slot: route.slot,
                encode,
            }))),
            // Dynamic calls always carry a typed token; any other is dropped, as unanswered.
            Route::Encoded(_) | Route::Remote(_) | Route::Nobody => ReplyTo(Route::Nobody),
        }
    }
}

/// A token travels to another node inside a message (a deferred reply answered there): it is
/// exported, and the token read there answers the caller here. Only a token that watches its
/// callee can travel: one from [`Caller::defer`] or a [`Request`](crate::Request)'s; any other,
/// and one that came from another node already, fails to serialize, saying so.
impl<R: DeserializeOwned + Send + 'static> Serialize for ReplyTo<R> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shared = self.share().ok_or_else(|| {
            serde::ser::Error::custom(
                "only a deferred reply token (Caller::defer) or a Request's can cross nodes, once",
            )
        })?;
        let export = crate::calls::export::export(shared);
        let (name, creation) = node_core::name_of(current_node());
        (name, creation, export).serialize(serializer)
    }
}

impl<'de, R: Serialize + 'static> Deserialize<'de> for ReplyTo<R> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (name, creation, export) =
            <(std::borrow::Cow<'de, str>, u32, u64)>::deserialize(deserializer)?;
        let node = match (name.as_ref(), creation) {
            (node_core::NONODE, 0) => node_core::DEFAULT_NODE,
            _ => node_core::intern(&name, creation).map_err(serde::de::Error::custom)?,
        };
        Ok(ReplyTo(Route::Remote(Box::new(RemoteToken {
            node,
            export,
            encode: |reply| serde_json::to_value(reply).map_err(|error| error.to_string()),
            answered: false,
        }))))
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let route = match self.0 {
            Route::Typed(_) => "typed",
            Route::Encoded(..) => "encoded",
            Route::Remote(..) => "remote",
            Route::Sink(..) => "sink",
            Route::Nobody => "nobody",
        };
        write!(f, "ReplyTo({route})")
    }
}

/// What a handler returns when it needs more than "reply with this value" (OTP's
/// `{reply, ...}`, `{noreply, ...}` and `{stop, ...}`).
///
/// | variant | the caller | the server |
/// | --- | --- | --- |
/// | `Reply(x)` | gets `x` | goes on |
/// | `NoReply` | waits: answer later through [`Caller::defer`]'s token (without one, the caller gets [`CallError::NoReply`](crate::CallError::NoReply) at once) | goes on |
/// | `Stop(reason)` | gets [`CallError::Exited`](crate::CallError::Exited) | runs `terminate`, exits with `reason` |
/// | `StopReply(reason, x)` | gets `x` | runs `terminate`, exits with `reason` |
///
/// An `#[info]` handler may return `Reply<()>` too, to stop the server.
///
/// ```
/// use ferrotp::prelude::*;
///
/// /// Does three steps of work, then stops.
/// struct Job {
///     done: u32,
/// }
///
/// #[gen_server]
/// impl Job {
///     async fn init(_: ()) -> Self {
///         Job { done: 0 }
///     }
///
///     #[install("step")]
///     async fn step(&mut self) -> Reply<u32> {
///         self.done += 1;
///         match self.done {
///             3 => Reply::StopReply(ExitReason::Normal, self.done),
///             n => Reply::Reply(n),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let job = Job::start(()).await.unwrap();
/// assert_eq!(job.step().await, Ok(1));
/// assert_eq!(job.step().await, Ok(2));
/// assert_eq!(job.step().await, Ok(3)); // answered, then the server stopped
/// assert_eq!(wait(job.pid()).await, ExitReason::Normal);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Reply<X> {
    /// Answer now.
    Reply(X),
    /// Do not answer now; the handler took the reply token with [`Caller::defer`].
    NoReply,
    /// Stop the server without answering.
    Stop(ExitReason),
    /// Answer, then stop the server.
    StopReply(ExitReason, X),
}

/// The caller of a handler: who called, and the right to answer later.
///
/// A handler that declares a `&mut Caller<X>` parameter (`X` being its reply type) can take the
/// reply token with [`defer`](Caller::defer), return [`Reply::NoReply`], and answer later from any
/// handler or any process.
///
/// Here the server hands the slow part of each call to a process of its own, so it goes on
/// serving meanwhile, and the caller waits for the answer as for any other:
///
/// ```
/// use std::time::Duration;
/// use ferrotp::prelude::*;
///
/// struct Resolver;
///
/// #[gen_server]
/// impl Resolver {
///     async fn init(_: ()) -> Self {
///         Resolver
///     }
///
///     #[install("resolve")]
///     async fn resolve(&mut self, host: String, caller: &mut Caller<String>) -> Reply<String> {
///         let reply_to = caller.defer();
///         spawn(move |_ctx| async move {
///             tokio::time::sleep(Duration::from_millis(10)).await; // the slow part
///             reply_to.send(format!("{host} is 192.0.2.1"));
///         });
///         Reply::NoReply
///     }
///
///     /// Whether the call came from a process.
///     #[install("from_process")]
///     async fn from_process(&mut self, caller: &mut Caller<bool>) -> bool {
///         caller.pid().is_some()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let resolver = Resolver::start(()).await.unwrap();
/// assert_eq!(resolver.resolve("example.org".into()).await, Ok("example.org is 192.0.2.1".into()));
/// assert_eq!(resolver.from_process().await, Ok(false)); // `main` is not a process
/// let inside = spawn_handle(move |_ctx| async move { resolver.from_process().await });
/// assert_eq!(inside.join().await, Ok(Ok(true)));
/// # }
/// ```
pub struct Caller<X> {
    from: Option<Pid>,
    reply_to: Option<ReplyTo<X>>,
}

impl<X> Caller<X> {
    #[doc(hidden)]
    pub fn __new(from: Option<Pid>, reply_to: ReplyTo<X>) -> Self {
        Caller {
            from,
            reply_to: Some(reply_to),
        }
    }

    /// The calling process; `None` for a call made from outside any process.
    pub fn pid(&self) -> Option<Pid> {
        self.from
    }

    /// Takes the reply token, to answer later. For a cast, or when taken already, the token
    /// answers nobody. From here on the server's exit fails the call at once, even while another
    /// process holds the token.
    pub fn defer(&mut self) -> ReplyTo<X>
    where
        X: Send + 'static,
    {
        let Some(token) = self.reply_to.take() else {
            return ReplyTo::nobody();
        };
        // The caller no longer waits on this handler, but on whoever answers the token.
        crate::calls::context::release();
        // The token may now leave this server: its exit must still fail the call.
        let (token, watch) = token.watched();
        if let Some(watch) = watch {
            crate::process::watch_here(watch);
        }
        token
    }

    /// Whether a caller waits for the reply (a call, not a cast) and the token is still here.
    #[doc(hidden)]
    pub fn __is_waiting(&self) -> bool {
        self.reply_to.as_ref().is_some_and(ReplyTo::is_waiting)
    }

    /// Applies a handler's return value: replies if it says so and the token is still here, and
    /// tells the server loop whether to go on.
    #[doc(hidden)]
    pub fn __finish(mut self, reply: Reply<X>) -> Option<ExitReason> {
        // Each arm moves only what it needs: gathering the reason into a local first costs a
        // stalled copy of it on every reply, the common case that has none.
        match reply {
            Reply::Reply(value) => {
                self.answer(value);
                None
            }
            Reply::NoReply => None,
            Reply::Stop(reason) => {
                if self
                    .reply_to
                    .as_ref()
                    .is_some_and(|token| !token.is_nobody())
                {
                    // Before the token is dropped with `self`, so that its caller, woken by the
                    // drop, waits for the exit reason instead of failing with `NoReply`. (A cast
                    // has no caller to wake.)
                    crate::process::mark_stopping();
                }
                Some(reason)
            }
            Reply::StopReply(reason, value) => {
                self.answer(value);
                Some(reason)
            }
        }
    }

    /// Replies with a handler's returned value, if the token is still here.
    #[inline]
    fn answer(&mut self, value: X) {
        match self.reply_to.take() {
            Some(token) => {
                token.send(value);
            }
            None => tracing::warn!(
                "a handler returned a reply after deferring it; the returned value is dropped"
            ),
        }
    }
}

impl<X> fmt::Debug for Caller<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("from", &self.from)
            .field("reply_to", &self.reply_to)
            .finish()
    }
}
