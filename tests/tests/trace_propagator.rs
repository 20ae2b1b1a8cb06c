//! A propagator joins ferrotp's spans to another tracing system's ids across nodes: `inject`
//! gives the context a call leaves its node with, `extract` sees it on the other side.

use std::sync::Mutex;

use ferrotp::{
    dist::{DistConfig, LocalNode},
    prelude::*,
    trace::{Propagator, TraceContext},
};
use ferrotp_tests::dist::bounded;
use tracing::{Instrument, Span};
use tracing_subscriber::prelude::*;

/// What `extract` was given.
static EXTRACTED: Mutex<Vec<TraceContext>> = Mutex::new(Vec::new());

const TRACE: u128 = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef;

/// Set: the propagator panics, in `inject` and in `extract`.
static HOSTILE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn hostile() -> bool {
    HOSTILE.load(std::sync::atomic::Ordering::SeqCst)
}

struct Fixed;

impl Propagator for Fixed {
    fn inject(&self, span: &Span) -> Option<TraceContext> {
        assert!(!hostile(), "inject panics");
        Some(TraceContext {
            trace_id: TRACE,
            span_id: span.id()?.into_u64(),
            sampled: true,
        })
    }

    fn extract(&self, span: &Span, remote: &TraceContext) {
        assert!(!hostile(), "extract panics");
        assert!(!span.is_disabled());
        EXTRACTED.lock().unwrap().push(*remote);
    }
}

struct Echo;

#[gen_server]
impl Echo {
    async fn init(_: ()) -> Self {
        Echo
    }

    #[install("echo")]
    async fn echo(&mut self, n: u32) -> u32 {
        n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_another_node_goes_with_the_propagators_context_and_survives_its_panics() {
    tracing_subscriber::registry().init();
    assert!(ferrotp::trace::set_propagator(Fixed).is_ok());
    assert!(ferrotp::trace::set_propagator(Fixed).is_err(), "set once");
    let cookie = "trace propagator test cookie";
    let config = |name: &str| DistConfig::new(&format!("{name}@127.0.0.1:0"), cookie).unwrap();
    let one = bounded("start", LocalNode::start(config("prop-one")))
        .await
        .unwrap();
    let two = bounded("start", LocalNode::start(config("prop-two")))
        .await
        .unwrap();
    let echo = two.scope(async { Echo::start(()).await.unwrap() }).await;

    let client = tracing::info_span!("client");
    let client_id = client.id().unwrap().into_u64();
    let echoed = one.scope(echo.echo(5)).instrument(client);
    assert_eq!(bounded("the call", echoed).await, Ok(5));
    assert_eq!(
        *EXTRACTED.lock().unwrap(),
        [TraceContext {
            trace_id: TRACE,
            span_id: client_id,
            sampled: true,
        }]
    );

    // A propagator that panics is user code like any: the call goes on without it.
    HOSTILE.store(true, std::sync::atomic::Ordering::SeqCst);
    let pid = echo.pid();
    let echoed = one
        .scope(echo.echo(6))
        .instrument(tracing::info_span!("hostile"));
    assert_eq!(bounded("the call", echoed).await, Ok(6));
    assert!(two.scope(async move { ferrotp::is_alive(pid) }).await);
    one.stop().await;
    two.stop().await;
}
