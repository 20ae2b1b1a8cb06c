//! The span a server handles a message in, when a subscriber wants it (see
//! [`trace`](crate::trace)): made here, out of the server loop, so that a server whose messages
//! are not traced carries no span in its future.

use std::{any::type_name, future::Future, pin::Pin, sync::Arc};

use tracing::{Instrument, Span, field};

use super::{Dispatched, GenServer, Tasks};
use crate::{
    calls::{context, trace},
    context::Context,
    message::Message,
    process::{self, unwind::CatchUnwind},
};

/// The handled message's dispatch, in its span (boxed: see the module docs).
pub(super) fn dispatch<'a, S: GenServer>(
    server: &'a mut S,
    message: Message,
    ctx: &'a mut Context,
    tasks: &'a mut Tasks,
) -> Pin<Box<impl Future<Output = Result<Dispatched, Arc<str>>> + Send + 'a>> {
    let span = span::<S>(&message, ctx);
    let dispatch = CatchUnwind::with_hook(
        server.__dispatch(message, ctx, tasks),
        process::mark_stopping,
    );
    Box::pin(dispatch.instrument(span))
}

/// The span for `message`: a child of its caller's span, or (from another node) of the caller's
/// trace context, through the propagator.
#[cold]
fn span<S: GenServer>(message: &Message, ctx: &Context) -> Span {
    let described = S::__describe(message);
    let (parent, remote, own) = context::handle_traced(ctx.cell());
    let server = short(type_name::<S>());
    macro_rules! handle_span {
        ($parent:expr) => {
            tracing::trace_span!(
                target: "ferrotp::handle",
                parent: $parent,
                "handle",
                server = %server,
                handler = %described.handler,
                kind = %described.kind,
                pid = %ctx.pid(),
                caller = field::Empty,
                trace_id = %format_args!("{:032x}", own.trace_id),
                span_id = %format_args!("{:016x}", own.span_id),
                remote_parent = field::Empty,
                otel.name = %format_args!("{server}.{}", described.handler),
            )
        };
    }
    // Made by the parent's own subscriber: a caller's thread may have a subscriber of its own
    // (`tracing::subscriber::set_default`), which alone knows the parent's id.
    let span = parent
        .as_ref()
        .and_then(|parent| {
            parent.with_subscriber(|(_, subscriber)| {
                tracing::dispatcher::with_default(subscriber, || handle_span!(parent))
            })
        })
        .unwrap_or_else(|| handle_span!(None));
    if let Some(from) = described.from {
        span.record("caller", field::display(from));
    }
    if let (None, Some(remote)) = (parent, remote) {
        span.record("remote_parent", field::display(remote));
        trace::extract(&span, &remote);
    }
    span
}

/// A type's name without its path (`Counter` for `my_app::server::Counter`), generics kept.
pub(super) fn short(name: &str) -> &str {
    let end = name.find('<').unwrap_or(name.len());
    match name[..end].rfind("::") {
        Some(at) => &name[at + 2..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn a_server_is_named_without_its_path() {
        assert_eq!(short("my_app::server::Counter"), "Counter");
        assert_eq!(short("Counter"), "Counter");
        assert_eq!(
            short("app::Cache<alloc::string::String>"),
            "Cache<alloc::string::String>"
        );
    }
}
