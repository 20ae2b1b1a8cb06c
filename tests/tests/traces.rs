//! Traces follow a call: every handled message runs in a span that is the child of its caller's
//! span, through a chain of servers, for casts and task handlers' tasks, and across nodes (by the
//! trace context in the frame). Checked by a recording subscriber, global to this test binary.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Mutex, OnceLock},
};

use ferrotp::{
    dist::{DistConfig, LocalNode},
    prelude::*,
};
use ferrotp_tests::{
    deadlines::{Leaf, Mid},
    dist::bounded,
};
use tracing::{Instrument, field::Field, span};
use tracing_subscriber::{
    Registry, layer::Context as LayerContext, prelude::*, registry::LookupSpan,
};

/// A span as the recorder saw it: its name, its parent's serial, and its fields.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    parent: Option<usize>,
    fields: HashMap<String, String>,
}

/// Every span, by serial (span ids are reused once closed; serials are not).
static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

struct Serial(usize);

struct Recorder;

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: LayerContext<'_, S>) {
        let parent = attrs
            .parent()
            .cloned()
            .or_else(|| {
                attrs
                    .is_contextual()
                    .then(|| ctx.current_span().id().cloned())
                    .flatten()
            })
            .and_then(|parent| {
                let span = ctx.span(&parent)?;
                span.extensions().get::<Serial>().map(|s| s.0)
            });
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut seen = SEEN.lock().unwrap();
        seen.push(Seen {
            name: attrs.metadata().name().to_owned(),
            parent,
            fields,
        });
        let serial = seen.len() - 1;
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Serial(serial));
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(serial) = ctx
            .span(id)
            .and_then(|span| span.extensions().get::<Serial>().map(|s| s.0))
        else {
            return;
        };
        values.record(&mut Fields(&mut SEEN.lock().unwrap()[serial].fields));
    }
}

fn record() {
    static SET: OnceLock<()> = OnceLock::new();
    SET.get_or_init(|| {
        tracing::subscriber::set_global_default(Registry::default().with(Recorder)).unwrap();
    });
}

/// The serial of the one span named `name` (a span the test made).
fn serial_of(name: &str) -> usize {
    let seen = SEEN.lock().unwrap();
    let found: Vec<usize> = (0..seen.len()).filter(|&i| seen[i].name == name).collect();
    assert_eq!(found.len(), 1, "spans named {name}: {found:?}");
    found[0]
}

/// The one span below the span `parent` (by serial) that handles `handler`.
fn child(parent: usize, handler: &str) -> (usize, Seen) {
    let seen = SEEN.lock().unwrap();
    let found: Vec<(usize, Seen)> = seen
        .iter()
        .enumerate()
        .filter(|(_, span)| {
            span.parent == Some(parent)
                && span.name == "handle"
                && span.fields.get("handler").map(String::as_str) == Some(handler)
        })
        .map(|(i, span)| (i, span.clone()))
        .collect();
    assert_eq!(found.len(), 1, "{handler} below {parent}: {found:?}");
    found.into_iter().next().unwrap()
}

/// Passes a count down a chain of servers, which may live on other nodes.
struct Link {
    next: Option<Pid>,
}

#[gen_server]
impl Link {
    async fn init(next: Option<Pid>) -> Self {
        Link { next }
    }

    #[install("pass")]
    async fn pass(&mut self, n: u32) -> Result<u32, String> {
        match self
            .next
            .and_then(|pid| ServerRef::<Link>::from_pid(pid).ok())
        {
            Some(next) => next.pass(n + 1).await.map_err(|error| error.to_string()),
            None => Ok(n),
        }
    }

    #[install("note")]
    async fn note(&mut self) {}

    /// Its task calls the next server.
    #[install("pass_later", task)]
    fn pass_later(&mut self, n: u32) -> impl Future<Output = u32> + Send + 'static {
        let next = self
            .next
            .and_then(|pid| ServerRef::<Link>::from_pid(pid).ok());
        async move {
            match next {
                Some(next) => next.pass(n + 1).await.unwrap_or(0),
                None => n,
            }
        }
    }
}

async fn chain_of_three() -> [ServerRef<Link>; 3] {
    let c = Link::start(None).await.unwrap();
    let b = Link::start(Some(c.pid())).await.unwrap();
    let a = Link::start(Some(b.pid())).await.unwrap();
    [a, b, c]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_three_servers_is_one_trace_each_span_the_child_of_its_caller() {
    record();
    let [a, b, c] = chain_of_three().await;
    let root = tracing::info_span!("client through three");
    assert_eq!(a.pass(0).instrument(root).await, Ok(2));
    let root = serial_of("client through three");
    let (sa, span_a) = child(root, "pass");
    let (sb, span_b) = child(sa, "pass");
    let (_, span_c) = child(sb, "pass");
    assert_eq!(span_a.fields["pid"], a.pid().to_string());
    assert_eq!(span_b.fields["pid"], b.pid().to_string());
    assert_eq!(span_c.fields["pid"], c.pid().to_string());
    assert_eq!(span_a.fields["kind"], "call");
    assert_eq!(span_a.fields["server"], "Link");
    assert_eq!(span_b.fields["caller"], a.pid().to_string());
    assert_eq!(span_c.fields["caller"], b.pid().to_string());
    let trace = &span_a.fields["trace_id"];
    assert_eq!(&span_b.fields["trace_id"], trace);
    assert_eq!(&span_c.fields["trace_id"], trace);
    assert_ne!(span_a.fields["span_id"], span_b.fields["span_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_and_a_task_handlers_task_carry_the_span_on() {
    record();
    let [a, b, c] = chain_of_three().await;
    let root = tracing::info_span!("client casting");
    root.in_scope(|| a.cast_note());
    assert_eq!(a.pass(0).await, Ok(2)); // the cast has been handled: it came first
    let root = serial_of("client casting");
    let (_, cast) = child(root, "note");
    assert_eq!(cast.fields["pid"], a.pid().to_string());
    assert_eq!(cast.fields["kind"], "cast");

    // The task runs in the span of the handler that made it, so the call it makes is that
    // span's child.
    let root = tracing::info_span!("client of a task");
    assert_eq!(a.pass_later(0).instrument(root).await, Ok(2));
    let (task_handler, _) = child(serial_of("client of a task"), "pass_later");
    let (_, from_task) = child(task_handler, "pass");
    assert_eq!(from_task.fields["pid"], b.pid().to_string());
    // A task is no process: its calls have no caller.
    assert!(!from_task.fields.contains_key("caller"));
    let _ = c;
}

const COOKIE: &str = "traces test cookie";

async fn node(name: &str) -> LocalNode {
    let config = DistConfig::new(&format!("{name}@127.0.0.1:0"), COOKIE).unwrap();
    bounded("start a node", LocalNode::start(config))
        .await
        .unwrap()
}

/// The span id a `traceparent` names.
fn parent_span_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(2).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_three_servers_across_two_nodes_is_one_trace() {
    record();
    let one_node = node("traces-one").await;
    let other = node("traces-other").await;
    // x (first node) -> y (second node) -> z (first node)
    let z = one_node
        .scope(async { Link::start(None).await })
        .await
        .unwrap();
    let y = other
        .scope(async move { Link::start(Some(z.pid())).await })
        .await
        .unwrap();
    let x = one_node
        .scope(async move { Link::start(Some(y.pid())).await })
        .await
        .unwrap();
    let root = tracing::info_span!("client across nodes");
    let passed = one_node.scope(x.pass(0)).instrument(root);
    assert_eq!(bounded("the chain", passed).await, Ok(2));

    let root = serial_of("client across nodes");
    // Pids as their nodes show them.
    let [x_here, z_here] = one_node
        .scope(async move { [x.pid().to_string(), z.pid().to_string()] })
        .await;
    let [y_here, x_there] = other
        .scope(async move { [y.pid().to_string(), x.pid().to_string()] })
        .await;
    let seen = SEEN.lock().unwrap().clone();
    let child_of = |parent: &Seen| -> Seen {
        // A span cannot cross: the context in the frame names its parent.
        let below: Vec<&Seen> =
            seen.iter()
                .filter(|span| {
                    span.parent.is_none()
                        && span.fields.get("remote_parent").is_some_and(|remote| {
                            parent_span_id(remote) == parent.fields["span_id"]
                        })
                })
                .collect();
        assert_eq!(below.len(), 1, "{below:?}");
        below[0].clone()
    };
    let span_x = seen
        .iter()
        .find(|span| span.name == "handle" && span.parent == Some(root))
        .expect("x's span, the client's child")
        .clone();
    let span_y = child_of(&span_x);
    let span_z = child_of(&span_y);
    assert_eq!(span_x.fields["pid"], x_here);
    assert_eq!(span_y.fields["pid"], y_here);
    assert_eq!(span_z.fields["pid"], z_here);
    assert_eq!(span_y.fields["caller"], x_there);
    let trace = &span_x.fields["trace_id"];
    assert_eq!(&span_y.fields["trace_id"], trace);
    assert_eq!(&span_z.fields["trace_id"], trace);
    assert!(span_y.fields["remote_parent"].contains(trace.as_str()));
    one_node.stop().await;
    other.stop().await;
}

/// Spans change no deadline: a task's plain call carries none, as without a subscriber
/// (`gave_up.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_leaves_the_deadline_of_a_tasks_call_alone() {
    record();
    let leaf = Leaf::start(()).await.unwrap();
    let mid = Mid::start(leaf).await.unwrap();
    assert_eq!(mid.ask_later().await, Ok(None));
}

/// A call made after `defer` is still part of the handler's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_made_after_defer_keeps_the_trace() {
    record();
    let leaf = Leaf::start(()).await.unwrap();
    let mid = Mid::start(leaf).await.unwrap();
    let root = tracing::info_span!("client deferring");
    assert!(mid.deferred().instrument(root).await.is_ok());
    let root = serial_of("client deferring");
    let (sm, span_m) = child(root, "deferred");
    let (_, span_l) = child(sm, "deadline");
    assert_eq!(
        span_m.fields["trace_id"], span_l.fields["trace_id"],
        "parent and child in different traces"
    );
}

/// The caller's span belongs to a subscriber the server's thread does not have.
struct Plain;

#[gen_server]
impl Plain {
    async fn init(_: ()) -> Self {
        Plain
    }

    #[install("plain")]
    async fn plain(&mut self, n: u32) -> u32 {
        n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_with_a_subscriber_of_its_own_thread_is_answered() {
    record();
    let plain = Plain::start(()).await.unwrap();
    let pid = plain.pid();
    let _local = tracing::subscriber::set_default(tracing_subscriber::registry());
    let client = tracing::info_span!("client");
    let plained = plain.plain(5).instrument(client).await;
    drop(_local);
    assert_eq!(plained, Ok(5));
    assert!(ferrotp::is_alive(pid));
}
