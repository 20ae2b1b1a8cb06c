//! Traces that follow a call: every message a gen_server handles runs inside a `tracing` span,
//! the child of the span its caller was in, on this node or another.
//!
//! The spans are at `TRACE` level with the target [`TARGET`] (`ferrotp::handle`), so they cost
//! nothing unless a subscriber asks for them (`RUST_LOG=ferrotp::handle=trace`, or a filter
//! that lets them through): one check of tracing's level filter per message. When it is on:
//!
//! - a call or cast made while a subscriber wants the spans carries the caller's current span (a
//!   call made inside a handler: that handler's span, or a span the handler entered);
//! - the server makes its span, named `handle`, with the fields `server`, `handler`, `kind`
//!   (`call`, `cast` or `info`), `caller`, `trace_id` and `span_id` (and `otel.name`, which
//!   OpenTelemetry exporters use as the span's name), the caller's span as its parent, and runs
//!   the handler inside it, so that the calls the handler makes carry it on;
//! - across nodes a span cannot travel, so the call carries a [`TraceContext`] (a trace id, the
//!   parent's span id, as W3C's `traceparent` has them) in its frame. The server's span records
//!   it as `remote_parent`, and a [`Propagator`] (see [`set_propagator`]) can make it the span's
//!   real parent, as `tracing-opentelemetry`'s `set_parent` does.
//!
//! Without a propagator ferrotp numbers the traces itself: a call made outside any handler starts
//! a trace with a fresh id, and every span below it, on any node, records that id as
//! `trace_id`. So a plain `fmt` subscriber on each node already shows one trace across them.

use std::{
    fmt,
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use tracing::Span;

/// The target of the spans ferrotp makes around handled messages: turn them on with
/// `RUST_LOG=ferrotp::handle=trace` (or any filter that lets `TRACE` through for it).
pub const TARGET: &str = "ferrotp::handle";

/// Whether a subscriber wants the spans: a relaxed load of tracing's global level filter (and of
/// the callsite's interest, once that passes), called for every call, cast and handled message.
#[inline]
pub(crate) fn wanted() -> bool {
    tracing::enabled!(target: "ferrotp::handle", tracing::Level::TRACE)
}

/// A span's place in a trace, as it crosses nodes: W3C's `traceparent` without its version.
///
/// ```
/// use ferrotp::trace::TraceContext;
///
/// let context = TraceContext { trace_id: 0xabc, span_id: 0x12, sampled: true };
/// assert_eq!(
///     context.to_string(),
///     "00-00000000000000000000000000000abc-0000000000000012-01",
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace: the same for every span in it.
    pub trace_id: u128,
    /// The span that is the parent of the next one.
    pub span_id: u64,
    /// Whether the trace is recorded (W3C's `sampled` flag).
    pub sampled: bool,
}

impl fmt::Display for TraceContext {
    /// As W3C's `traceparent` header writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

/// Joins ferrotp's spans to a tracing system's own trace ids across nodes, OpenTelemetry's for
/// instance. Set one per OS process with [`set_propagator`].
///
/// With `tracing-opentelemetry`, `inject` reads `span.context().span().span_context()` (its
/// trace and span ids and its sampled flag) and `extract` calls `span.set_parent(..)` with a
/// remote `SpanContext` made from the [`TraceContext`]: a dozen lines, as tarpc does it.
pub trait Propagator: Send + Sync + 'static {
    /// The trace context of `span`, the caller's current span, for a call or cast leaving this
    /// node; `None` to let ferrotp number it.
    fn inject(&self, span: &Span) -> Option<TraceContext>;

    /// Makes `span`, a handler's span not yet entered, the child of `remote`, the span of a
    /// caller on another node.
    fn extract(&self, span: &Span, remote: &TraceContext);
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Sets the [`Propagator`] of this OS process, once; `Err` with the one given if one is set.
///
/// # Errors
///
/// The propagator given back, when one was set before.
pub fn set_propagator<P: Propagator>(propagator: P) -> Result<(), P> {
    let mut given = Some(propagator);
    PROPAGATOR.get_or_init(|| Box::new(given.take().expect("taken once")));
    match given {
        None => Ok(()),
        Some(propagator) => Err(propagator),
    }
}

/// What a call or cast made here carries for the span of the server that handles it: the
/// caller's current span, and its trace context (`served`: the context of the message this
/// process is handling, if any).
#[cold]
pub(crate) fn outgoing(served: Option<TraceContext>) -> (Span, TraceContext) {
    let span = Span::current();
    let injected = PROPAGATOR
        .get()
        .and_then(|p| guarded("inject", || p.inject(&span)).flatten());
    // A call from outside any handler starts a trace; its parent, the caller's span, has no id
    // of ferrotp's, so it gets one here (W3C's zero means none).
    let context = injected.or(served).unwrap_or_else(|| TraceContext {
        trace_id: fresh_trace(),
        span_id: fresh(),
        sampled: true,
    });
    (span, context)
}

/// Runs user code (a propagator's) where its panic cannot end a server or a caller: logged, and
/// then as if it had done nothing.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(done) => Some(done),
        Err(panic) => {
            let panic = crate::unwind::panic_message(&*panic);
            tracing::error!(%panic, "the trace propagator's {what} panicked; ignored");
            None
        }
    }
}

/// The trace context of a span made under `parent` (the caller's): the same trace, a new span.
pub(crate) fn child_of(parent: Option<TraceContext>) -> TraceContext {
    match parent {
        Some(parent) => TraceContext {
            span_id: fresh(),
            ..parent
        },
        None => TraceContext {
            trace_id: fresh_trace(),
            span_id: fresh(),
            sampled: true,
        },
    }
}

/// Lets the propagator make `span` the child of a caller's span on another node.
pub(crate) fn extract(span: &Span, remote: &TraceContext) {
    if let Some(propagator) = PROPAGATOR.get() {
        guarded("extract", || propagator.extract(span, remote));
    }
}

/// A new id: a counter through splitmix64's mix, from a random start, so ids from different OS
/// processes do not meet (they need to be unique, not secret).
fn fresh() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let mut bytes = [0; 8];
        // Without the OS's randomness, the time is start enough.
        if getrandom::fill(&mut bytes).is_err() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            bytes = (now.as_nanos() as u64).to_le_bytes();
        }
        u64::from_le_bytes(bytes)
    });
    let mut z = seed.wrapping_add(
        NEXT.fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    // Zero means "no span" in W3C's format.
    (z ^ (z >> 31)).max(1)
}

fn fresh_trace() -> u128 {
    (u128::from(fresh()) << 64) | u128::from(fresh())
}
