//! What a call carries beyond its body: its deadline and the chain of processes blocked on it.
//!
//! A call made by code that serves no call, with the default timeout, carries nothing: it costs
//! what it always did. Any other call travels wrapped in a [`WithCtx`]: a call made while
//! serving a call (a nested call) or with a timeout of its own. The server that takes such a
//! call keeps its context while it handles it (in the process's relations, with a flag in its
//! `Activity` that every poll copies into the thread's current state), and the calls its handler
//! makes read it:
//!
//! - **deadline**: a nested call waits at most until the call it serves is given up by its
//!   caller (its own timeout, if shorter); a handler reads it with [`Context::deadline`];
//! - **chain**: the processes blocked, each waiting for the next, down to the server; a call to
//!   one of them could only deadlock, and fails at once with [`CallError::Deadlock`].
//!
//! A call whose caller gives up (its timeout passes, or its future is dropped) before the server
//! takes it is not run: the caller sets a bit in the server's `Activity`, and the server loop
//! then checks the messages queued at that point for a caller still waiting (plain calls
//! included). A call with a context that arrives after its
//! deadline is not run either, and its caller gets [`CallError::Timeout`].
//!
//! A deferred reply ends the server's part: the next message it handles has its own context.
//! Task handlers' tasks are not processes: they carry the context of the request that made them,
//! without the server in the chain (the server is not blocked on its tasks).

use std::{any::Any, sync::Arc, time::Duration};

use tokio::time::Instant;
use tracing::Span;

use crate::{
    calls::{
        dispatch::DynamicCall,
        request::DEFAULT_TIMEOUT,
        trace::{self, TraceContext},
    },
    context::Context,
    mailbox::lock,
    message::Message,
    pid::Pid,
    process::Cell,
    process::task,
    request::CallError,
    table::table,
    unwind::drop_quietly,
};

/// How many processes a chain holds at most: a longer chain is cut at its oldest end (a cycle
/// through the cut part is not seen, and waits out its timeout as in OTP).
pub(crate) const CHAIN_LIMIT: usize = 64;

/// Serving bit: the process is handling a message (its nested calls start a chain with it).
const HANDLING: u8 = 1;
/// Serving bit: the message came with a context, kept in the process's relations.
const CONTEXT: u8 = 2;
/// Serving bit, set by other processes: a caller gave up on a call to this process (its timeout
/// passed, or its future was dropped), and the call may still wait in the mailbox. The server
/// loop checks the messages queued when it finds the bit (see [`checking`]), and does not run a
/// call whose caller is gone.
const GAVE_UP: u8 = 4;
/// Serving bit, the server's own: it is checking the messages that were in its mailbox when it
/// last found [`GAVE_UP`] set (and cleared it), and no more: a server whose mailbox never
/// empties does not check every message for good after one caller gave up.
const CHECKING: u8 = 8;

/// A call's context.
#[derive(Debug, Clone)]
pub(crate) struct CallCtx {
    /// When the caller gives up; `None`: never.
    pub(crate) deadline: Option<Instant>,
    /// The processes blocked on this call, the caller last.
    pub(crate) chain: Vec<Pid>,
    /// A plain call's context (one with the default timeout, from code that handles no
    /// message), there for its trace or because it went to another node: its deadline only
    /// expires it. The server neither shows it ([`Context::deadline`]) nor passes it on, and the
    /// chain is empty, as if the call carried nothing.
    pub(crate) plain: bool,
    /// The caller's span, when a subscriber wants handlers' spans (see `trace`): the parent of
    /// the server's span. `None` for a call from another node.
    pub(crate) span: Option<Span>,
    /// The trace the call is part of, and its parent's span id (see `trace`); once the server
    /// has made its span, its own.
    pub(crate) trace: Option<TraceContext>,
}

/// A call with its context, as it sits in the server's mailbox.
pub(crate) struct WithCtx {
    pub(crate) ctx: Arc<CallCtx>,
    pub(crate) message: Message,
}

/// The calling process, the context of a call about to be made from here with `timeout`
/// (`None` for a plain call), and the timeout the call really gets (the context's deadline may
/// be nearer).
#[inline]
pub(crate) fn outgoing(timeout: Duration) -> (Option<Pid>, Option<Arc<CallCtx>>, Duration) {
    let (me, serving) = task::self_and_serving();
    if serving & (HANDLING | CONTEXT) == 0 && timeout == DEFAULT_TIMEOUT && !trace::wanted() {
        return (me, None, timeout);
    }
    let (ctx, timeout) = outgoing_slow(me, serving, timeout);
    (me, ctx, timeout)
}

#[cold]
#[inline(never)]
fn outgoing_slow(
    me: Option<Pid>,
    serving: u8,
    timeout: Duration,
) -> (Option<Arc<CallCtx>>, Duration) {
    let now = Instant::now();
    let served = if serving & CONTEXT != 0 {
        current()
    } else {
        None
    };
    // The served call's deadline and chain carry on, unless it was plain itself.
    let inherited = served.as_deref().filter(|ctx| !ctx.plain);
    // A call with a context only for its trace carries what a plain call would.
    let plain = serving & HANDLING == 0 && inherited.is_none() && timeout == DEFAULT_TIMEOUT;
    let own = now.checked_add(timeout);
    let (deadline, mut chain) = match inherited {
        Some(ctx) => {
            let deadline = match (own, ctx.deadline) {
                (Some(own), Some(theirs)) => Some(own.min(theirs)),
                (own, theirs) => own.or(theirs),
            };
            (deadline, ctx.chain.clone())
        }
        None => (own, Vec::new()),
    };
    if let Some(me) = me.filter(|_| !plain) {
        if chain.len() >= CHAIN_LIMIT {
            chain.remove(0);
        }
        chain.push(me);
    }
    let timeout = match deadline {
        Some(deadline) => deadline.saturating_duration_since(now),
        None => timeout,
    };
    let (span, trace) = traced(served.as_deref());
    let ctx = CallCtx {
        deadline,
        chain,
        plain,
        span,
        trace,
    };
    (Some(Arc::new(ctx)), timeout)
}

/// The context of a plain call to another node: its deadline alone, so that the server there
/// does not run it once its caller has given up (this node cannot tell it when).
#[cold]
pub(crate) fn plain_remote(timeout: Duration) -> Option<Arc<CallCtx>> {
    let deadline = Instant::now().checked_add(timeout);
    Some(Arc::new(CallCtx::plain(deadline, None, None)))
}

/// `message` without the context it may travel with.
pub(crate) fn bare(message: Message) -> Message {
    match message.downcast::<WithCtx>() {
        Ok(with) => with.message,
        Err(message) => message,
    }
}

/// The caller's span and trace context for a call or cast, if a subscriber wants spans.
fn traced(served: Option<&CallCtx>) -> (Option<Span>, Option<TraceContext>) {
    if !trace::wanted() {
        return (None, None);
    }
    let (span, context) = trace::outgoing(served.and_then(|ctx| ctx.trace));
    (Some(span), Some(context))
}

/// A cast about to be made from here: wrapped with the caller's span, if a subscriber wants
/// handlers' spans (a cast carries nothing else: nobody waits for it).
#[inline]
pub(crate) fn cast(message: Message) -> Message {
    if !trace::wanted() {
        return message;
    }
    cast_traced(message)
}

#[cold]
#[inline(never)]
fn cast_traced(message: Message) -> Message {
    let served = match task::self_and_serving() {
        (_, serving) if serving & CONTEXT != 0 => current(),
        _ => None,
    };
    let (span, trace) = traced(served.as_deref());
    let ctx = CallCtx::plain(None, span, trace);
    Message::new(WithCtx {
        ctx: Arc::new(ctx),
        message,
    })
}

/// A subscriber wants handlers' spans, and the server is about to handle a message: the caller's
/// span and trace context (a local caller's span; a remote one's context alone), and the trace
/// context of the server's own span, which the calls its handler makes carry on.
pub(crate) fn handle_traced(cell: &Cell) -> (Option<Span>, Option<TraceContext>, TraceContext) {
    let incoming = match task::self_and_serving() {
        (_, serving) if serving & CONTEXT != 0 => current(),
        _ => None,
    };
    let (parent_span, parent, deadline, chain, plain) = match incoming.as_deref() {
        Some(ctx) => (
            ctx.span.clone(),
            ctx.trace,
            ctx.deadline,
            ctx.chain.clone(),
            ctx.plain,
        ),
        None => (None, None, None, Vec::new(), true),
    };
    let own = trace::child_of(parent);
    enter(
        cell,
        Arc::new(CallCtx {
            deadline,
            chain,
            plain,
            span: None,
            trace: Some(own),
        }),
    );
    (parent_span, parent, own)
}

impl CallCtx {
    /// A plain call's context (see the `plain` field): no chain, and a
    /// deadline that only expires it.
    pub(crate) fn plain(
        deadline: Option<Instant>,
        span: Option<Span>,
        trace: Option<TraceContext>,
    ) -> Self {
        CallCtx {
            deadline,
            chain: Vec::new(),
            plain: true,
            span,
            trace,
        }
    }

    /// The cycle a call from the end of this chain to `target` would close, as
    /// [`CallError::Deadlock`] names one: the caller first, then each process it would wait for
    /// in turn, the last blocked on the caller.
    pub(crate) fn cycle_to(&self, target: Pid) -> Option<Vec<Pid>> {
        let at = self.chain.iter().position(|&pid| pid == target)?;
        let (&caller, blocked) = self.chain.split_last()?;
        let mut cycle = vec![caller];
        cycle.extend_from_slice(&blocked[at.min(blocked.len())..]);
        Some(cycle)
    }
}

thread_local! {
    /// The context a task handler's task carries, while it is polled (a task is no process).
    static TASK: std::cell::RefCell<Option<Arc<CallCtx>>> = const { std::cell::RefCell::new(None) };
}

pin_project_lite::pin_project! {
    /// A task handler's task, carrying the context of the request that made it.
    pub(crate) struct Carrying<F> {
        ctx: Option<Arc<CallCtx>>,
        // The span of the handler that made the task, if a subscriber wants spans.
        span: Option<Span>,
        #[pin]
        future: F,
    }
}

impl<F> Carrying<F> {
    /// `future` carrying the context of the request the current process serves, if any.
    pub(crate) fn current(future: F) -> Self {
        let ctx = match task::self_and_serving() {
            (_, serving) if serving & CONTEXT != 0 => current(),
            _ => None,
        };
        let span = trace::wanted().then(Span::current);
        Carrying { ctx, span, future }
    }
}

impl<F: std::future::Future> std::future::Future for Carrying<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.as_ref().map(Span::enter);
        let Some(ctx) = this.ctx.as_ref() else {
            return this.future.poll(cx);
        };
        struct Restore(Option<Arc<CallCtx>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let _ = TASK.try_with(|task| task.replace(self.0.take()));
                task::set_serving(0);
            }
        }
        let _restore = Restore(TASK.with(|task| task.replace(Some(ctx.clone()))));
        task::set_serving(CONTEXT);
        this.future.poll(cx)
    }
}

/// The context of the request the current process (or task handler's task) serves, if any.
pub(crate) fn current() -> Option<Arc<CallCtx>> {
    let Some(me) = task::self_pid() else {
        return TASK.with(|task| task.borrow().clone());
    };
    table().with(me, |cell| held(cell))?
}

/// The context the server `cell` holds for the message it handles, if any.
fn held(cell: &Cell) -> Option<Arc<CallCtx>> {
    let held = lock(&cell.state)
        .relations_ref()
        .and_then(|relations| relations.serving.clone())?;
    held.downcast::<CallCtx>().ok()
}

/// The server loop takes a call with a context: the call, its context entered so that calls
/// made while it is handled carry it on; or `None` if its deadline has passed, and the call is
/// ended without running (its caller has given up, or is about to: it gets
/// [`CallError::Timeout`]).
pub(crate) fn arrived(cell: &Cell, with: WithCtx) -> Option<Message> {
    let WithCtx { ctx, message } = with;
    if ctx
        .deadline
        .is_some_and(|deadline| deadline <= Instant::now())
    {
        expire(message);
        return None;
    }
    enter(cell, ctx);
    Some(message)
}

#[cold]
fn expire(message: Message) {
    tracing::debug!(
        pid = ?task::self_pid(),
        "a call arrived after its deadline; not run"
    );
    match message.downcast::<DynamicCall>() {
        Ok(DynamicCall { reply_to, body, .. }) => {
            drop_quietly(body, "a call past its deadline");
            reply_to.expire();
        }
        Err(message) => drop_quietly(message, "a call past its deadline"),
    }
}

/// Calls made while the current message of the server `cell` is handled carry `ctx` on.
fn enter(cell: &Cell, ctx: Arc<CallCtx>) {
    let was = lock(&cell.state)
        .relations()
        .serving
        .replace(ctx as Arc<dyn Any + Send + Sync>);
    cell.activity.mark_serving(HANDLING | CONTEXT);
    task::set_serving(HANDLING | CONTEXT);
    // Dropped out of the lock: it may be the last reference to a context.
    drop(was);
}

/// The server loop is about to take messages: the calls its handlers make start a chain with
/// this process (or carry on a message's context, if it has one). Set once, for the server's
/// life, so that a message without a context costs nothing more.
#[inline]
pub(crate) fn handling(activity: &crate::mailbox::Activity) {
    activity.mark_serving(HANDLING);
    task::set_serving(task::self_and_serving().1 | HANDLING);
}

/// Whether a caller may have given up on a call still in this server's mailbox (see
/// [`GAVE_UP`]): one relaxed load per message.
#[inline]
pub(crate) fn gave_up_on(activity: &crate::mailbox::Activity) -> bool {
    activity.serving() & (GAVE_UP | CHECKING) != 0
}

/// The caller of a call to `pid` gave up on it (see [`GAVE_UP`]).
#[cold]
pub(crate) fn gave_up(pid: Pid) {
    if pid.node() != crate::process::node_core::current_node() {
        return;
    }
    table().with(pid, |cell| cell.activity.mark_serving(GAVE_UP));
}

/// The server checks the message it took for a caller that gave up, `to_check` counting the
/// messages left to check. When [`GAVE_UP`] is set, the count starts again from every message
/// queued now: a call given up on was queued before its caller gave up. The bit is cleared
/// before the mailbox is counted, so that a caller giving up meanwhile sets it again (the
/// acquire pairs with that caller's release: its call, pushed before, is counted).
#[cold]
pub(crate) fn checking(cell: &Cell, to_check: &mut usize) {
    if cell.activity.serving() & GAVE_UP != 0 {
        cell.activity.unmark_serving(GAVE_UP);
        // This message, and every one queued behind it.
        *to_check = cell.mailbox.len(&cell.activity) + 1;
        cell.activity.mark_serving(CHECKING);
    }
    *to_check = to_check.saturating_sub(1);
    if *to_check == 0 {
        cell.activity.unmark_serving(CHECKING);
    }
}

/// The message is handled (answered, deferred, or it stopped the server): its context, if it had
/// one, goes.
#[inline]
pub(crate) fn handled(cell: &Cell) {
    if task::self_and_serving().1 & CONTEXT != 0 {
        release_from(cell);
    }
}

#[cold]
fn release_from(cell: &Cell) {
    cell.activity.unmark_serving(CONTEXT);
    task::set_serving(HANDLING);
    forget(cell);
}

/// The current handler no longer holds up its caller (it deferred its reply): calls it makes
/// from here on are no part of the caller's chain, nor bound by its deadline.
pub(crate) fn release() {
    if task::self_and_serving().1 & CONTEXT == 0 {
        return;
    }
    let Some(me) = task::self_pid() else {
        return;
    };
    table().with(me, |cell| {
        let trace = held(cell).and_then(|ctx| ctx.trace);
        release_from(cell);
        // The trace goes on: calls made from here on are still part of it.
        if trace.is_some() {
            enter(cell, Arc::new(CallCtx::plain(None, None, trace)));
        }
    });
}

#[cold]
fn forget(cell: &Cell) {
    let held = lock(&cell.state)
        .relations
        .as_mut()
        .and_then(|relations| relations.serving.take());
    // Dropped out of the lock: it may be the last reference to a context.
    drop(held);
}

impl Context {
    /// When the caller of the call this process is handling gives up on it, if the call says:
    /// a call made with a timeout other than the default (`_timeout`, `call_timeout`; a timeout
    /// equal to [`DEFAULT_TIMEOUT`], however it was written, is the default), or made by code
    /// that was itself handling a message. `None` outside a handler, for a cast, once
    /// the handler has deferred its reply, for a call that waits as long as it takes
    /// (`INFINITY`), and for a call with the default timeout from code that is not handling a
    /// message (whose caller gives up [`DEFAULT_TIMEOUT`] after it called: such a call carries
    /// nothing, to cost nothing).
    ///
    /// Calls the handler makes inherit it: they wait at most until then (or their own timeout,
    /// if it is nearer). It is on tokio's clock, as call timeouts are: a test on the paused clock
    /// (`start_paused`) sees it come closer as `tokio::time` advances.
    pub fn deadline(&self) -> Option<Instant> {
        current()
            .filter(|ctx| !ctx.plain)
            .and_then(|ctx| ctx.deadline)
    }
}

/// Fails a call whose context says it would close a cycle of blocked processes.
pub(crate) fn check(ctx: &Option<Arc<CallCtx>>, target: Pid) -> Result<(), CallError> {
    let Some(ctx) = ctx else {
        return Ok(());
    };
    // A process calling itself gets `CallError::SelfCall`, as before.
    if task::self_pid() == Some(target) {
        return Ok(());
    }
    match ctx.cycle_to(target) {
        Some(cycle) => Err(CallError::Deadlock(cycle)),
        None => Ok(()),
    }
}
