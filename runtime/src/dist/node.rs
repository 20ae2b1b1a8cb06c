//! A distributed node: [`LocalNode`], its listener, and its peers. The node plugs into the
//! process core as its `Remote`: every signal for another node's pid arrives here and goes to
//! that node's [`Peer`], which is created on first use.

use std::{
    any::Any,
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use super::{
    authenticate::{ConnectError, random_u64},
    config::{ConfigError, DistConfig, NodeName},
    frame::Codec,
    handshake::Identity,
    listen::serve,
    peer::Peer,
    transport::{Tcp, Transport},
};
use crate::{
    exit::ExitReason,
    mailbox::lock,
    message::Message,
    pid::Pid,
    process::{
        node_core::{self, DEFAULT_NODE, NodeId},
        remote::{self, Remote, Signal},
    },
    task::InNode,
};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node could not listen on its address.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: String,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// The default node is distributed already.
    #[error("this node is distributed already, as {0}")]
    AlreadyDistributed(String),
    /// No more nodes: this OS process has seen 65,535 node incarnations.
    #[error("too many node incarnations seen by this OS process (the limit is 65,535)")]
    TooManyNodes,
    /// No random number for the node's creation.
    #[error(transparent)]
    Random(#[from] ConnectError),
}

/// A distributed node's state: its identity, its listener and its peers.
pub(crate) struct Dist {
    pub(crate) node: NodeId,
    pub(crate) name: NodeName,
    /// The name as interned for pids.
    pub(crate) interned: &'static str,
    pub(crate) creation: u32,
    pub(crate) config: Arc<DistConfig>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) codec: Codec,
    /// The runtime the node started on: its connections run there, whichever thread (inside a
    /// runtime or not) sends to another node.
    pub(crate) runtime: tokio::runtime::Handle,
    peers: Mutex<HashMap<String, Arc<Peer>>>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Local processes told of every connection up and down ([`monitor_nodes`]).
    watchers: Mutex<Vec<Pid>>,
    /// Set by [`LocalNode::stop`]: no new connections.
    stopped: std::sync::atomic::AtomicBool,
}

impl Dist {
    pub(crate) fn identity(&self) -> Identity {
        // The name was validated when the configuration was made.
        Identity::new(self.name.as_str(), self.creation).unwrap_or_else(|_| {
            unreachable!("a node name from a valid configuration is a valid identity")
        })
    }

    /// The peer named `name`, made on first use.
    pub(crate) fn peer(self: &Arc<Self>, name: &str) -> Option<Arc<Peer>> {
        let mut peers = lock(&self.peers);
        if let Some(peer) = peers.get(name) {
            return Some(peer.clone());
        }
        let parsed = NodeName::parse(name).ok()?;
        let peer = Arc::new(Peer::new(Arc::downgrade(self), parsed)?);
        peers.insert(name.to_owned(), peer.clone());
        Some(peer)
    }

    /// The live processes watching every node ([`monitor_nodes`]).
    pub(crate) fn node_watchers(&self) -> Vec<Pid> {
        let mut watchers = lock(&self.watchers);
        watchers.retain(|&pid| crate::process::alive_here(pid));
        watchers.clone()
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The node a signal is for.
fn target(signal: &Signal) -> Option<NodeId> {
    Some(match signal {
        Signal::Send { to, .. } | Signal::Link { to, .. } | Signal::Unlink { to, .. } => to.node(),
        Signal::Exit { to, .. } => to.node(),
        Signal::Monitor { target, .. } | Signal::Demonitor { target, .. } => target.node(),
        Signal::Down { watcher, .. } => watcher.node(),
        Signal::SendNamed { node, .. } => *node,
        Signal::Upper(upper) => super::call::target(&**upper)?,
    })
}

/// Answers a signal that cannot reach its node as the core does, and a call with the error.
pub(crate) fn unreachable(signal: Signal, reason: ExitReason) {
    match signal {
        Signal::Upper(upper) => super::call::fail(upper, &reason),
        signal => remote::unreachable_node(signal, reason),
    }
}

/// The [`Remote`] of a distributed node: holds it weakly, so a stopped node is dropped.
struct Route(Weak<Dist>);

impl Remote for Route {
    fn route(&self, _here: NodeId, signal: Signal) {
        let Some(dist) = self.0.upgrade().filter(|dist| !dist.is_stopped()) else {
            return unreachable(signal, ExitReason::NoConnection);
        };
        let Some(node) = target(&signal) else {
            return unreachable(signal, ExitReason::NoConnection);
        };
        let (name, creation) = node_core::name_of(node);
        if name == dist.interned || name == node_core::NONODE {
            // An earlier incarnation of this very node, or a node that was never distributed.
            return unreachable(signal, ExitReason::NoProc);
        }
        match dist.peer(name) {
            Some(peer) => peer.send(&dist, signal, creation),
            None => unreachable(signal, ExitReason::NoConnection),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A node hosted by this OS process.
///
/// Code runs on a node: a process on its own, other code on the node it entered with
/// [`scope`](LocalNode::scope) (or [`spawn`](LocalNode::spawn)), and everything else on the
/// default node, the one every program has. Each node has its own processes and registered
/// names; a pid of another node, even one in the same OS process, is reached over the network,
/// exactly as a pid of a node elsewhere.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ferrotp::{Pid, dist::{DistConfig, LocalNode}};
///
/// // Every node that sends or receives a type registers it under the same tag.
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Hello { from: Pid, text: String }
/// ferrotp::dist::register::<Hello>("doc::Hello")?;
///
/// let cookie = "a secret of 16 bytes or more";
/// let a = LocalNode::start(DistConfig::new("a@127.0.0.1:0", cookie)?).await?;
/// let b = LocalNode::start(DistConfig::new("b@127.0.0.1:0", cookie)?).await?;
///
/// let echo = b.spawn(|mut ctx| async move {
///     let hello: Hello = ctx.receive().await;
///     ferrotp::send(hello.from, hello.text);
/// });
/// let client = a.scope(async move {
///     ferrotp::spawn_handle(move |mut ctx| async move {
///         ferrotp::send(echo, Hello { from: ctx.pid(), text: "hello".into() });
///         ctx.receive::<String>().await
///     })
/// });
/// assert_eq!(client.await.join().await, Ok("hello".to_string()));
/// # a.stop().await; b.stop().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LocalNode {
    id: NodeId,
}

impl std::fmt::Debug for LocalNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalNode({})", self.name())
    }
}

impl LocalNode {
    /// The node the calling code runs on.
    pub fn current() -> LocalNode {
        LocalNode {
            id: node_core::current_node(),
        }
    }

    /// Starts a new node in this OS process, listening on its name's address, with its own
    /// processes and names.
    ///
    /// # Errors
    ///
    /// [`DistError`] when it cannot listen there, or runs out of node numbers.
    pub async fn start(config: DistConfig) -> Result<LocalNode, DistError> {
        launch(config, Launch::New).await
    }

    /// Makes the default node (the one code outside any other node runs on) distributed under
    /// `config`. [`node::run`](crate::node::run) does this when `FERROTP_NODE` is set.
    ///
    /// # Errors
    ///
    /// [`DistError`] when it cannot listen there, or the default node is distributed already.
    pub async fn distribute(config: DistConfig) -> Result<LocalNode, DistError> {
        launch(config, Launch::Default).await
    }

    /// The node's full name, `name@host:port` (with the port the OS chose, for port 0), or
    /// `nonode@nohost` for a node that is not distributed.
    pub fn name(&self) -> &'static str {
        node_core::name_of(self.id).0
    }

    /// Runs `future` on this node: the processes it spawns are this node's, and what it sends
    /// goes out from this node.
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        InNode::new(self.id, future)
    }

    /// Spawns a process on this node (see [`spawn`](crate::spawn)).
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn spawn<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(crate::Context) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: crate::ProcessOutput,
    {
        crate::task::enter(self.id, || crate::spawn(f))
    }

    /// Connects to `node` now, rather than on first use (Erlang's `net_adm:ping`).
    ///
    /// # Errors
    ///
    /// [`ConnectError`] saying why not (this node is not distributed: [`ConnectError::Io`]).
    pub async fn connect(&self, node: &str) -> Result<(), ConnectError> {
        let dist = dist_of(self.id)
            .ok_or_else(|| ConnectError::Io("this node is not distributed".to_owned()))?;
        let peer = dist
            .peer(node)
            .ok_or_else(|| ConnectError::Io(format!("`{node}` is not a node name")))?;
        let timeout = dist
            .config
            .handshake_timeout
            .saturating_add(Duration::from_secs(1));
        peer.wait_up(&dist, timeout).await
    }

    /// The nodes this one has a connection with, by name.
    pub fn nodes(&self) -> Vec<String> {
        let Some(dist) = dist_of(self.id) else {
            return Vec::new();
        };
        let mut names: Vec<String> = lock(&dist.peers)
            .iter()
            .filter(|(_, peer)| peer.is_up())
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Stops the node: it stops listening, tells its peers it is going and closes its
    /// connections (their links and monitors fire with [`ExitReason::NoConnection`] there), and
    /// kills its processes. The default node's processes are left running; it only leaves the
    /// network.
    pub async fn stop(&self) {
        let Some(dist) = dist_of(self.id) else {
            return;
        };
        dist.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        let listener = lock(&dist.listener).take();
        if let Some(listener) = listener {
            listener.abort();
            // Closed when this returns: the port is free for a node started right after.
            let _ = listener.await;
        }
        let peers: Vec<_> = lock(&dist.peers).drain().map(|(_, peer)| peer).collect();
        for peer in peers {
            peer.disconnect("the node stopped").await;
        }
        if self.id != DEFAULT_NODE {
            let pids = crate::task::enter(self.id, || {
                let pids = crate::processes();
                for pid in &pids {
                    crate::exit(*pid, ExitReason::Kill);
                }
                pids
            });
            for pid in pids {
                self.scope(crate::wait(pid)).await;
            }
        }
    }
}

/// Sends `message` to the process registered as `name` on node `node` (Erlang's
/// `{Name, Node} ! Message`). As in Erlang, nothing says whether anyone has the name there.
pub fn send_named<M: Any + Send>(node: &str, name: &str, message: M) {
    let here = node_core::current_node();
    let message = Message::new(message);
    if node == node_core::name_of(here).0 {
        let _ = crate::registry::send_to_name(name, message, crate::process::deliver_local);
        return;
    }
    // Whichever incarnation is current there (creation 0): the connection knows it.
    let node_id = NodeName::parse(node)
        .ok()
        .and_then(|_| node_core::intern(node, 0).ok());
    let Some(node_id) = node_id else {
        tracing::debug!(
            node,
            name,
            "message to a name on a node that is not a node name dropped"
        );
        return crate::unwind::drop_quietly(message, "a message to an unreachable node");
    };
    let from = crate::self_pid().unwrap_or(Pid::root(here));
    let signal = Signal::SendNamed {
        from,
        node: node_id,
        name: name.into(),
        message,
    };
    remote::route(here, signal);
}

/// The message [`monitor_node`] and [`monitor_nodes`] deliver when the connection with a node
/// goes down, or cannot be made (Erlang's `{nodedown, Node}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDown {
    /// The node's name.
    pub node: String,
    /// Why the connection went down.
    pub reason: String,
}

/// The message [`monitor_nodes`] delivers when a connection with a node comes up (Erlang's
/// `{nodeup, Node}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUp {
    /// The node's name.
    pub node: String,
}

/// Monitors the connection with `node` from the calling process (Erlang's
/// `monitor_node(Node, true)`): a [`NodeDown`] arrives once, when the connection goes down, or
/// at once if it cannot be made (this dials it when there is none). Call it again after a
/// `NodeDown` to keep watching.
///
/// Outside a process, or on a node that is not distributed, it does nothing but say so in a
/// `warn` event (a process on a node that is not distributed gets a `NodeDown` at once).
pub fn monitor_node(node: &str) {
    let Some(me) = crate::self_pid() else {
        tracing::warn!(
            node,
            "monitor_node called outside a process; nothing to tell"
        );
        return;
    };
    let reachable = dist_of(me.node())
        .and_then(|dist| Some((dist.peer(node)?, dist)))
        .filter(|(_, dist)| !dist.is_stopped());
    match reachable {
        Some((peer, dist)) => peer.monitor(&dist, me),
        None => {
            let down = NodeDown {
                node: node.to_owned(),
                reason: "no connection can be made: this node is not distributed, or `node` is not a node name".to_owned(),
            };
            crate::process::deliver_local_as(me, Message::new(down), crate::mailbox::Push::Signal);
        }
    }
}

/// Subscribes the calling process to [`NodeUp`] and [`NodeDown`] for every node this one
/// connects to or loses (Erlang's `net_kernel:monitor_nodes(true)`), or unsubscribes it (`false`).
/// Outside a process, or on a node that is not distributed, it does nothing.
pub fn monitor_nodes(on: bool) {
    let Some(me) = crate::self_pid() else {
        return;
    };
    if let Some(dist) = dist_of(me.node()) {
        let mut watchers = lock(&dist.watchers);
        watchers.retain(|&pid| pid != me);
        if on {
            watchers.push(me);
        }
    }
}

/// The distribution state of hosted node `id`, if it is distributed.
pub(crate) fn dist_of(id: NodeId) -> Option<Arc<Dist>> {
    let remote = node_core::core(id)?.remote.get()?.clone();
    remote.as_any().downcast_ref::<Route>()?.0.upgrade()
}

enum Launch {
    New,
    Default,
}

async fn launch(config: DistConfig, how: Launch) -> Result<LocalNode, DistError> {
    let transport: Arc<dyn Transport> = match &config {
        #[cfg(feature = "tls")]
        DistConfig { tls: Some(tls), .. } => Arc::new(super::tls::Tls(tls.clone())),
        _ => Arc::new(Tcp),
    };
    let addr = config.name.addr().to_owned();
    let listener = transport
        .listen(&addr)
        .await
        .map_err(|error| DistError::Listen {
            addr: addr.clone(),
            error,
        })?;
    let port = listener
        .local_addr()
        .ok()
        .and_then(|addr| addr.rsplit_once(':')?.1.parse().ok())
        .unwrap_or(config.name.port());
    let name = config.name.with_port(port);
    // Never 0: that marks "whichever incarnation" inside this crate.
    let creation = (random_u64()? as u32).max(1);
    let id = match how {
        Launch::New => {
            node_core::host(name.as_str(), creation).map_err(|_| DistError::TooManyNodes)?
        }
        Launch::Default => {
            if dist_of(DEFAULT_NODE).is_some() {
                return Err(DistError::AlreadyDistributed(
                    node_core::name_of(DEFAULT_NODE).0.to_owned(),
                ));
            }
            node_core::name_default(name.as_str(), creation);
            DEFAULT_NODE
        }
    };
    let dist = Arc::new(Dist {
        node: id,
        interned: node_core::name_of(id).0,
        name,
        creation,
        codec: config.codec,
        runtime: tokio::runtime::Handle::current(),
        config: Arc::new(config),
        transport,
        peers: Mutex::new(HashMap::new()),
        listener: Mutex::new(None),
        watchers: Mutex::new(Vec::new()),
        stopped: Default::default(),
    });
    let installed = node_core::core(id)
        .map(|core| {
            core.remote
                .set(Arc::new(Route(Arc::downgrade(&dist))))
                .is_ok()
        })
        .unwrap_or(false);
    if !installed {
        return Err(DistError::AlreadyDistributed(dist.name.as_str().to_owned()));
    }
    let accepting = {
        let (admit_dist, established_dist) = (Arc::downgrade(&dist), Arc::downgrade(&dist));
        serve(
            listener,
            dist.identity(),
            dist.config.clone(),
            Arc::new(move |dialer| {
                let Some(dist) = admit_dist.upgrade().filter(|dist| !dist.is_stopped()) else {
                    return (super::handshake::Status::Stale, 0);
                };
                match dist.peer(dialer.dialer().name()) {
                    Some(peer) => peer.admit(&dist, dialer),
                    None => (super::handshake::Status::Stale, 0),
                }
            }),
            Arc::new(move |handshaken, connection| {
                let Some(dist) = established_dist.upgrade() else {
                    return;
                };
                if let Some(peer) = dist.peer(handshaken.established.peer.name()) {
                    peer.establish(&dist, None, handshaken, connection);
                }
            }),
        )
    };
    let listener = dist.runtime.spawn(InNode::new(id, accepting));
    *lock(&dist.listener) = Some(listener);
    // The node lives as long as its routes' target: keep it in the core.
    keep(dist.clone());
    tracing::info!(node = dist.name.as_str(), "node started");
    Ok(LocalNode { id })
}

/// Keeps every distributed node's state alive for the life of the program (the core holds
/// its route weakly); a stopped node's state stays, answering as a node without connections.
fn keep(dist: Arc<Dist>) {
    static ALL: Mutex<Vec<Arc<Dist>>> = Mutex::new(Vec::new());
    lock(&ALL).push(dist);
}
