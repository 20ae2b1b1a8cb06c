//! libprocess's leader and follower (as compactor, its Python port, shows them), on two nodes.
//! The leader is a gen_server registered as `leader` on its node, restarted by its supervisor
//! whenever it steps down. A follower on another node calls it by that name to join, learns its
//! pid from the answer, and links to it with exits trapped: when the leader's process ends, the
//! follower gets an `Exit` with the reason and joins the next leader; when the leader's whole
//! node goes away, the reason is `noconnection` and the follower stops.
//!
//! In two terminals, with the same cookie (any secret of 16 bytes or more) in both:
//!
//! ```text
//! FERROTP_NODE=leader@127.0.0.1:4370 FERROTP_COOKIE=a-shared-secret-16+ cargo run --example leader_follower -- leader
//! FERROTP_NODE=follower@127.0.0.1:4371 FERROTP_COOKIE=a-shared-secret-16+ cargo run --example leader_follower -- follower leader@127.0.0.1:4370
//! ```
//!
//! The leader steps down every 10 seconds (`reason=normal`, and a new leader starts). Ctrl-C on
//! the leader stops it in order (`reason=shutdown`; the follower then finds no leader and stops);
//! killing it (`kill -9`) takes its node away at once (`reason=noconnection`).
//!
//! Or both nodes in this one OS process, on ports the OS chooses, with a director process playing
//! the operator: it ends the first leader's term early, then stops the leader's node.
//!
//! ```text
//! cargo run --example leader_follower -- --one-process
//! ```

use std::process::{ExitCode, Termination};
use std::time::Duration;

use ferrotp::dist::{DistConfig, LocalNode};
use ferrotp::prelude::*;
use ferrotp::supervisor::AutoShutdown;
use serde::{Deserialize, Serialize};

/// How long a leader leads before it steps down for the next one.
const TERM: Duration = Duration::from_secs(10);

/// Ends a leader's term. It crosses nodes (the director sends it), so it is registered with
/// `ferrotp::dist::register` on every node, under the same tag.
#[derive(Serialize, Deserialize)]
struct StepDown;

/// The leader: a gen_server that answers followers' registrations.
struct Leader;

#[gen_server]
impl Leader {
    async fn init(term: Duration, ctx: &mut Context) -> Self {
        send_after(term, ctx.pid(), StepDown);
        Leader
    }

    /// compactor's `register`: a follower introduces itself, and learns whom to link to.
    #[install("join")]
    async fn join(&mut self, ctx: &mut Context, follower: String) -> Pid {
        println!("leader: {follower} joined");
        ctx.pid()
    }

    /// The term is over: stop, normally; the supervisor starts the next leader.
    #[info]
    async fn on_step_down(&mut self, _: StepDown) -> Reply<()> {
        Reply::Stop(ExitReason::Normal)
    }
}

/// The leader's node: one leader at a time, registered as `leader`.
fn leader_tree(term: Duration) -> Supervisor {
    Supervisor::one_for_one().child(Child::server::<Leader>("leader", term).name("leader"))
}

/// Tells a watcher which leader the follower follows now. It stays on the follower's node, so
/// it needs no registration.
struct Following(Pid);

/// The follower: joins whoever is `leader` on `node`, links to it, and joins the next leader each
/// time one exits, until the leader's node is gone. Each leader it follows is reported to
/// `watcher`, if there is one.
async fn follower(mut ctx: Context, node: String, watcher: Option<Pid>) {
    ctx.trap_exit(true);
    let leader = ServerRef::<Leader>::named_on("leader", &node);
    loop {
        let pid = match leader.join("follower".into()).await {
            Ok(pid) => pid,
            Err(error) => {
                println!("follower: no leader at {node}: {error}");
                return;
            }
        };
        // The leader is on another node, so `link` returns `Ok` at once; a leader already gone
        // answers with an `Exit` whose reason is `noproc`.
        let _ = ctx.link(pid);
        println!("follower: following {pid}");
        if let Some(watcher) = watcher {
            send(watcher, Following(pid));
        }
        let Exit { from, reason } = ctx.receive().await;
        if from != pid {
            return; // its supervisor, stopping it (Ctrl-C on this node)
        }
        println!("follower: exited: {from} reason={reason}");
        if reason == ExitReason::NoConnection {
            return; // the leader's node is gone
        }
    }
}

/// The follower's node: the follower, and the node ends when it does.
fn follower_tree(node: String) -> Supervisor {
    Supervisor::one_for_one()
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(
            Child::process("follower", move |ctx| follower(ctx, node.clone(), None))
                .transient()
                .significant(),
        )
}

/// Both nodes in this OS process: the same leader and follower, and a director in the
/// operator's part.
async fn one_process() -> Result<(), Box<dyn std::error::Error>> {
    const COOKIE: &str = "one-process demo cookie";
    let leader_node = LocalNode::start(DistConfig::new("leader@127.0.0.1:0", COOKIE)?).await?;
    let follower_node = LocalNode::start(DistConfig::new("follower@127.0.0.1:0", COOKIE)?).await?;
    leader_node.scope(leader_tree(TERM).start()).await?;
    let director = follower_node.spawn(move |ctx| director(ctx, leader_node));
    let reason = wait(director).await;
    follower_node.stop().await;
    match reason {
        ExitReason::Normal => Ok(()),
        reason => Err(format!("the director exited: {reason}").into()),
    }
}

/// Ends the first leader's term early, then stops the leader's node, and waits for the follower
/// to finish.
async fn director(mut ctx: Context, leader_node: LocalNode) {
    let me = ctx.pid();
    let node = leader_node.name().to_owned();
    ctx.spawn_monitor(move |ctx| follower(ctx, node, Some(me)));

    let Following(first) = ctx.receive().await;
    println!("director: the first leader's term ends early");
    send(first, StepDown);

    let Following(_) = ctx.receive().await;
    println!("director: the leader's node stops");
    leader_node.stop().await;

    let _: Down = ctx.receive().await;
}

fn main() -> ExitCode {
    ferrotp::dist::register::<StepDown>("leader_follower::StepDown").expect("a tag of its own");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let distributed = std::env::var_os("FERROTP_NODE").is_some();
    match args[..] {
        ["--one-process"] => {
            ferrotp::node::init_logging();
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
            runtime.block_on(one_process()).report()
        }
        ["leader"] if distributed => {
            node::run([Application::new("leader", leader_tree, TERM)]).report()
        }
        ["follower", leader] if distributed => node::run([Application::new(
            "follower",
            follower_tree,
            leader.to_owned(),
        )])
        .report(),
        _ => {
            eprintln!(
                "usage: FERROTP_NODE=name@host:port FERROTP_COOKIE=secret leader_follower \
                 (leader | follower LEADER_NODE), or: leader_follower --one-process"
            );
            ExitCode::from(2)
        }
    }
}
