//! One peer node, as this node sees it: the connection's state, and what rides on it.
//!
//! All of a peer's state sits behind one lock: whether it is idle, being dialed, being
//! accepted or up; the outbox frames go into; and the links and monitors that cross to it. A
//! signal records its link or monitor under the same lock that gives it the outbox, and a
//! teardown takes the sets under that lock too, so every link and monitor that may have been
//! carried by a lost connection is told [`NoConnection`](ExitReason::NoConnection), exactly once.
//!
//! States, and what moves between them (each attempt has a generation number, so a dial or a
//! connection that was superseded finds out and goes quietly):
//!
//! | state | entered when | frames |
//! | --- | --- | --- |
//! | idle | at first, and after a teardown | the next signal starts a dial |
//! | dialing | a signal found the peer idle | queued in the outbox, sent once up |
//! | accepting | the peer's dial authenticated and was admitted | queued likewise |
//! | up | the handshake finished | the writer sends them |
//!
//! Nothing is replayed after a teardown: what the lost connection carried is reported by exit
//! signals, `Down` messages and failed calls, and later frames go on a fresh connection, so no
//! message is ever duplicated or reordered.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio::task::AbortHandle;

use super::{
    admission::{self, Decision, PeerState},
    authenticate::{ConnectError, Handshaken},
    config::NodeName,
    connect::connect,
    connection,
    handshake::{Authenticated, Status},
    node::Dist,
    outbound,
    outbox::Outbox,
    transport::Connection,
    wire::Ends,
};
use crate::{
    dispatch::Encoded,
    exit::ExitReason,
    link::MonitorRef,
    mailbox::lock,
    pid::Pid,
    process::{
        node_core,
        remote::{self, Signal},
    },
    reply::ReplyTo,
    request::CallError,
    task::InNode,
};

pub(crate) struct Peer {
    pub(crate) dist: Weak<Dist>,
    pub(crate) name: NodeName,
    /// The name as interned for pids.
    pub(crate) interned: &'static str,
    inner: Mutex<Inner>,
    /// Woken whenever the state changes, for [`Peer::wait_up`].
    changed: tokio::sync::Notify,
    /// The current attempt's generation, readable without the lock: a reader whose connection
    /// was superseded stops at its next frame.
    current: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Inner {
    state: State,
    generation: u64,
    /// The id of the last connection this node had with the peer (0 for none), for admission.
    last_conn: u64,
    /// (local, remote) pairs of linked processes.
    links: HashSet<(Pid, Pid)>,
    /// Monitors local processes hold on the peer's: reference → (watcher, target).
    monitors: HashMap<MonitorRef, (Pid, Pid)>,
    /// Monitors the peer's processes hold on local ones: (target, watcher, reference).
    watched: HashSet<(Pid, Pid, MonitorRef)>,
    /// Calls in flight to the peer's processes: id → (target, reply token).
    calls: HashMap<u64, (Pid, ReplyTo<Encoded>)>,
    next_call: u64,
    /// Why the last dial failed, for [`LocalNode::connect`](super::LocalNode::connect).
    last_error: Option<ConnectError>,
    /// Local processes told once when the connection goes down ([`super::monitor_node`]).
    node_monitors: Vec<Pid>,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    Dialing {
        outbox: Arc<Outbox>,
    },
    Accepting {
        outbox: Arc<Outbox>,
        conn_id: u64,
    },
    Up {
        outbox: Arc<Outbox>,
        conn_id: u64,
        creation: u32,
        task: Option<AbortHandle>,
    },
}

impl State {
    fn outbox(&self) -> Option<&Arc<Outbox>> {
        match self {
            State::Idle => None,
            State::Dialing { outbox }
            | State::Accepting { outbox, .. }
            | State::Up { outbox, .. } => Some(outbox),
        }
    }
}

/// What a teardown took from the peer, to be told outside its lock.
struct Lost {
    calls: HashMap<u64, (Pid, ReplyTo<Encoded>)>,
    links: HashSet<(Pid, Pid)>,
    monitors: HashMap<MonitorRef, (Pid, Pid)>,
    watched: HashSet<(Pid, Pid, MonitorRef)>,
    outbox: Option<Arc<Outbox>>,
    task: Option<AbortHandle>,
    was_up: bool,
}

impl Peer {
    /// `None` when the node cannot be numbered (see `node_core::intern`).
    pub(crate) fn new(dist: Weak<Dist>, name: NodeName) -> Option<Self> {
        let id = node_core::intern(name.as_str(), 0).ok()?;
        Some(Peer {
            dist,
            interned: node_core::name_of(id).0,
            name,
            inner: Mutex::new(Inner::default()),
            changed: tokio::sync::Notify::new(),
            current: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Sends `signal`, whose target lives on this peer in incarnation `creation` (0: whichever
    /// is current), dialing first if there is no connection.
    pub(crate) fn send(self: &Arc<Self>, dist: &Dist, signal: Signal, creation: u32) {
        let outbox = {
            let mut inner = lock(&self.inner);
            if let State::Up { creation: now, .. } = inner.state {
                if creation != 0 && creation != now {
                    // A pid of an incarnation that has gone: nobody is there.
                    drop(inner);
                    return super::node::unreachable(signal, ExitReason::NoProc);
                }
            }
            inner.record(&signal);
            self.outbox_or_dial(&mut inner, dist)
        };
        outbound::push(dist, self, &self.ends(dist), &outbox, signal);
    }

    /// The ends of a connection with this peer, for writing pids (reading them needs the peer's
    /// incarnation: see [`Peer::establish`]).
    pub(crate) fn ends(&self, dist: &Dist) -> Ends {
        Ends {
            me: dist.node,
            my_name: dist.interned,
            my_creation: dist.creation,
            peer: node_core::DEFAULT_NODE,
            peer_name: self.interned,
        }
    }

    /// Dials the peer for attempt `generation`.
    ///
    /// `last_conn` is the connection id this node had last when the attempt began: read later,
    /// it could be that of a connection the peer's own dial made meanwhile, and the peer would
    /// take this dial for a reconnection and drop that healthy connection.
    async fn dial(self: Arc<Self>, generation: u64, last_conn: u64) {
        let Some(dist) = self.dist.upgrade() else {
            return;
        };
        // Superseded before it began (the peer's dial was admitted meanwhile): nothing to do.
        if lock(&self.inner).generation != generation {
            return;
        }
        let dialed = connect(
            &*dist.transport,
            &dist.config,
            dist.identity(),
            &self.name,
            last_conn,
        )
        .await;
        match dialed {
            Ok((handshaken, connection)) => match handshaken.established.status {
                Status::Ok => self.establish(&dist, Some(generation), handshaken, connection),
                // The peer's dial to this node wins; it is on its way. If it never comes, give up.
                Status::Simultaneous => {
                    tokio::time::sleep(dist.config.handshake_timeout).await;
                    self.teardown(generation, "the peer's connection did not come");
                }
                Status::Stale => self.teardown(generation, "the peer refused a stale dial"),
            },
            Err(error) => {
                lock(&self.inner).last_error = Some(error.clone());
                self.teardown(generation, &error.to_string());
            }
        }
    }

    /// Keeps a call to `to` in flight on `outbox`'s connection; its id, or `None` (the call
    /// failed at once) if that connection has gone meanwhile.
    pub(crate) fn register_call(
        &self,
        outbox: &Arc<Outbox>,
        to: Pid,
        reply_to: ReplyTo<Encoded>,
    ) -> Option<u64> {
        let mut inner = lock(&self.inner);
        let current = inner
            .state
            .outbox()
            .is_some_and(|now| Arc::ptr_eq(now, outbox));
        if !current {
            drop(inner);
            reply_to.send(Err(CallError::NoConnection(to)));
            return None;
        }
        // Callers that gave up leave their entries until a reply or a teardown: prune them
        // whenever the table doubles, so it stays about twice the calls still waited for.
        if inner.calls.len() >= 64 && inner.calls.len().is_power_of_two() {
            inner.calls.retain(|_, (_, reply_to)| reply_to.is_waiting());
        }
        inner.next_call += 1;
        let id = inner.next_call;
        inner.calls.insert(id, (to, reply_to));
        Some(id)
    }

    /// The call `id`, answered now: its target and reply token.
    pub(crate) fn take_call(&self, id: u64) -> Option<(Pid, ReplyTo<Encoded>)> {
        lock(&self.inner).calls.remove(&id)
    }

    /// Fails the call `id` with `error`.
    pub(crate) fn fail_call(&self, id: u64, error: CallError<serde_json::Value>) {
        if let Some((_, reply_to)) = self.take_call(id) {
            reply_to.send(Err(error));
        }
    }

    /// Decides on the authenticated dial of this peer (the acceptor's admission): the status the
    /// `Welcome` carries and the new connection's id.
    pub(crate) fn admit(self: &Arc<Self>, dist: &Dist, dialer: &Authenticated) -> (Status, u64) {
        let conn_id = match super::authenticate::random_u64() {
            Ok(id) => id | 1,
            Err(_) => return (Status::Stale, 0),
        };
        let mut lost = None;
        let status = {
            let mut inner = lock(&self.inner);
            let state = match &inner.state {
                State::Idle => PeerState::Idle,
                State::Dialing { .. } => PeerState::Dialing,
                // A dial already admitted: as if up, so this one is stale or replaces it.
                State::Accepting { conn_id, .. } => PeerState::Up {
                    creation: dialer.dialer().creation,
                    conn_id: *conn_id,
                },
                State::Up {
                    creation, conn_id, ..
                } => PeerState::Up {
                    creation: *creation,
                    conn_id: *conn_id,
                },
            };
            let decision = admission::decide(
                state,
                dist.name.as_str(),
                self.name.as_str(),
                dialer.dialer().creation,
                dialer.last_conn(),
            );
            if decision == Decision::ReplaceAndAdmit {
                let taken = inner.take("the peer reconnected");
                self.current
                    .store(inner.generation, std::sync::atomic::Ordering::Release);
                self.tell_node_down(&mut inner, taken.was_up, "the peer reconnected");
                lost = Some(taken);
            }
            if decision.status() == Status::Ok {
                let outbox = match std::mem::take(&mut inner.state) {
                    State::Dialing { outbox } => outbox,
                    _ => Arc::new(Outbox::with_limits(
                        dist.config.max_frame,
                        dist.config.max_outbox,
                    )),
                };
                // Supersedes this node's own dial, if any.
                inner.generation += 1;
                self.current
                    .store(inner.generation, std::sync::atomic::Ordering::Release);
                inner.state = State::Accepting { outbox, conn_id };
                // If the handshake fails after this, nobody else would end the wait.
                let (peer, generation) = (self.clone(), inner.generation);
                let timeout = dist.config.handshake_timeout;
                dist.runtime.spawn(InNode::new(dist.node, async move {
                    tokio::time::sleep(timeout).await;
                    peer.teardown_if_accepting(generation);
                }));
            }
            decision.status()
        };
        if let Some(lost) = lost {
            self.tell(lost, "the peer reconnected", false);
        }
        (status, conn_id)
    }

    /// A connection that finished its handshake: up, unless it was superseded meanwhile (then it
    /// is closed). `dialed` is the generation of this node's dial, `None` for an accepted one.
    pub(crate) fn establish(
        self: &Arc<Self>,
        dist: &Dist,
        dialed: Option<u64>,
        handshaken: Handshaken,
        connection: Connection,
    ) {
        let peer_identity = &handshaken.established.peer;
        let creation = peer_identity.creation;
        let conn_id = handshaken.established.conn_id;
        let peer_node = match node_core::intern(self.name.as_str(), creation) {
            Ok(id) => id,
            Err(error) => {
                tracing::error!(node = self.name.as_str(), %error, "connection refused");
                return;
            }
        };
        let mut inner = lock(&self.inner);
        let current = match (&inner.state, dialed) {
            (State::Dialing { outbox }, Some(generation)) if generation == inner.generation => {
                Some(outbox.clone())
            }
            (
                State::Accepting {
                    outbox,
                    conn_id: id,
                },
                None,
            ) if *id == conn_id => Some(outbox.clone()),
            _ => None,
        };
        let Some(outbox) = current else {
            tracing::debug!(node = self.name.as_str(), "superseded connection closed");
            return;
        };
        let ends = Ends {
            peer: peer_node,
            ..self.ends(dist)
        };
        let generation = inner.generation;
        let task = dist.runtime.spawn(InNode::new(
            dist.node,
            connection::run(
                self.clone(),
                generation,
                ends,
                handshaken,
                connection,
                outbox.clone(),
                dist.config.clone(),
            ),
        ));
        inner.state = State::Up {
            outbox,
            conn_id,
            creation,
            task: Some(task.abort_handle()),
        };
        inner.last_conn = conn_id;
        // Under the lock, as the `NodeDown` of its end will be: in that order for every watcher.
        for watcher in dist.node_watchers() {
            let node = self.name.as_str().to_owned();
            let up = crate::message::Message::new(super::NodeUp { node });
            crate::process::deliver_local_as(watcher, up, crate::mailbox::Push::Signal);
        }
        drop(inner);
        self.changed.notify_waiters();
        tracing::info!(node = self.name.as_str(), "connected to node");
    }

    fn teardown_if_accepting(&self, generation: u64) {
        let accepting = {
            let inner = lock(&self.inner);
            inner.generation == generation && matches!(inner.state, State::Accepting { .. })
        };
        if accepting {
            self.teardown(generation, "the handshake did not finish");
        }
    }

    /// Ends attempt `generation` (if it is still the current one): everything it carried is told
    /// the connection is lost.
    pub(crate) fn teardown(&self, generation: u64, why: &str) {
        self.end(generation, why, false);
    }

    /// [`teardown`](Peer::teardown); `orderly` when a side said it was going (logged at `info`
    /// rather than `warn`: nothing went wrong).
    pub(crate) fn end(&self, generation: u64, why: &str, orderly: bool) {
        let lost = {
            let mut inner = lock(&self.inner);
            if inner.generation != generation {
                return;
            }
            let lost = inner.take(why);
            self.current
                .store(inner.generation, std::sync::atomic::Ordering::Release);
            self.tell_node_down(&mut inner, lost.was_up, why);
            lost
        };
        self.tell(lost, why, orderly);
    }

    /// Ends whatever the peer has now (the node is stopping): what is queued goes out, then a
    /// `DISCONNECT`, and the connection ends once they are written (or after a second).
    pub(crate) async fn disconnect(&self, why: &str) {
        let (generation, up) = {
            let inner = lock(&self.inner);
            if let Some(outbox) = inner.state.outbox() {
                outbound::disconnect(outbox, why);
                outbox.close();
            }
            (inner.generation, matches!(inner.state, State::Up { .. }))
        };
        if up {
            // The writer ends once the outbox is written out, and with it the connection.
            let ended = async {
                loop {
                    let changed = self.changed.notified();
                    let mut changed = std::pin::pin!(changed);
                    changed.as_mut().enable();
                    if lock(&self.inner).generation != generation {
                        return;
                    }
                    changed.await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), ended).await;
        }
        self.end(generation, why, true);
    }

    /// Tells the node monitors that attempt is over, under the peer's lock (so that a `NodeUp`
    /// for the next connection, sent under it too, cannot overtake this `NodeDown`). Only
    /// mailbox pushes happen here: nothing that could come back to this peer.
    fn tell_node_down(&self, inner: &mut Inner, was_up: bool, why: &str) {
        let down = |watcher| {
            let node = self.name.as_str().to_owned();
            let reason = why.to_owned();
            let down = crate::message::Message::new(super::NodeDown { node, reason });
            crate::process::deliver_local_as(watcher, down, crate::mailbox::Push::Signal);
        };
        std::mem::take(&mut inner.node_monitors)
            .into_iter()
            .for_each(down);
        if was_up {
            if let Some(dist) = self.dist.upgrade() {
                dist.node_watchers().into_iter().for_each(down);
            }
        }
    }

    /// Tells everyone the lost connection carried.
    fn tell(&self, lost: Lost, why: &str, orderly: bool) {
        let Lost {
            calls,
            links,
            monitors,
            watched,
            outbox,
            task,
            was_up,
        } = lost;
        if let Some(outbox) = outbox {
            outbox.close();
        }
        if let Some(task) = task {
            task.abort();
        }
        self.changed.notify_waiters();
        match (was_up, orderly) {
            (true, false) => {
                tracing::warn!(
                    node = self.name.as_str(),
                    reason = why,
                    "connection to node lost"
                )
            }
            (true, true) => {
                tracing::info!(
                    node = self.name.as_str(),
                    reason = why,
                    "disconnected from node"
                )
            }
            (false, _) => {
                tracing::debug!(
                    node = self.name.as_str(),
                    reason = why,
                    "no connection to node"
                )
            }
        }
        for (_, (pid, reply_to)) in calls {
            reply_to.send(Err(CallError::NoConnection(pid)));
        }
        for (local, remote) in links {
            remote::exit_from_remote(local, remote, ExitReason::NoConnection, true);
        }
        for (monitor, (watcher, target)) in monitors {
            remote::down_from_remote(watcher, monitor, target, ExitReason::NoConnection);
        }
        for (target, watcher, monitor) in watched {
            remote::demonitor_from_remote(target, watcher, monitor);
        }
    }

    /// Runs `f` on the peer's link and monitor records (for frames the reader applies).
    /// `None` if the connection of attempt `generation` has been superseded meanwhile: its frames
    /// no longer count.
    pub(crate) fn records<R>(
        &self,
        generation: u64,
        f: impl FnOnce(&mut Records<'_>) -> R,
    ) -> Option<R> {
        let mut inner = lock(&self.inner);
        if inner.generation != generation {
            return None;
        }
        let Inner {
            links,
            monitors,
            watched,
            ..
        } = &mut *inner;
        Some(f(&mut Records {
            links,
            monitors,
            watched,
        }))
    }

    /// Whether attempt `generation` is still the current one.
    pub(crate) fn is_current(&self, generation: u64) -> bool {
        self.current.load(std::sync::atomic::Ordering::Acquire) == generation
    }

    /// Tells `watcher` once when the connection with this peer goes down (at once if there is
    /// none and none can be made), dialing if there is none.
    pub(crate) fn monitor(self: &Arc<Self>, dist: &Dist, watcher: Pid) {
        let mut inner = lock(&self.inner);
        inner.node_monitors.push(watcher);
        self.outbox_or_dial(&mut inner, dist);
    }

    /// The outbox of the current attempt; with none, a new attempt: dialing, its frames queued
    /// meanwhile. The attempt's generation and last connection id are taken here, under the
    /// lock (see [`Peer::dial`]).
    fn outbox_or_dial(self: &Arc<Self>, inner: &mut Inner, dist: &Dist) -> Arc<Outbox> {
        if let Some(outbox) = inner.state.outbox() {
            return outbox.clone();
        }
        inner.last_error = None;
        let outbox = Arc::new(Outbox::with_limits(
            dist.config.max_frame,
            dist.config.max_outbox,
        ));
        inner.state = State::Dialing {
            outbox: outbox.clone(),
        };
        let (peer, generation, last) = (self.clone(), inner.generation, inner.last_conn);
        dist.runtime
            .spawn(InNode::new(dist.node, peer.dial(generation, last)));
        outbox
    }

    /// Whether the node has a connection up with this peer.
    pub(crate) fn is_up(&self) -> bool {
        matches!(lock(&self.inner).state, State::Up { .. })
    }

    /// Waits until the peer is up or a dial attempt failed, dialing if needed.
    pub(crate) async fn wait_up(
        self: &Arc<Self>,
        dist: &Dist,
        timeout: Duration,
    ) -> Result<(), ConnectError> {
        self.outbox_or_dial(&mut lock(&self.inner), dist);
        let settled = async {
            loop {
                let changed = self.changed.notified();
                let mut changed = std::pin::pin!(changed);
                // Registered before the look, so a change in between is not missed.
                changed.as_mut().enable();
                match lock(&self.inner).state {
                    State::Up { .. } => return true,
                    State::Idle => return false,
                    _ => {}
                }
                changed.await;
            }
        };
        match tokio::time::timeout(timeout, settled).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(lock(&self.inner)
                .last_error
                .clone()
                .unwrap_or_else(|| ConnectError::Io("the connection was lost".to_owned()))),
            Err(_) => Err(ConnectError::Timeout(timeout)),
        }
    }
}

/// A peer's records of the links and monitors that cross to it.
pub(crate) struct Records<'a> {
    pub(crate) links: &'a mut HashSet<(Pid, Pid)>,
    pub(crate) monitors: &'a mut HashMap<MonitorRef, (Pid, Pid)>,
    pub(crate) watched: &'a mut HashSet<(Pid, Pid, MonitorRef)>,
}

impl Inner {
    /// Records the link or monitor `signal` makes or ends.
    fn record(&mut self, signal: &Signal) {
        match *signal {
            Signal::Link { from, to } => {
                self.links.insert((from, to));
            }
            Signal::Unlink { from, to }
            | Signal::Exit {
                from,
                to,
                link: true,
                ..
            } => {
                self.links.remove(&(from, to));
            }
            Signal::Monitor {
                watcher,
                target,
                monitor,
            } => {
                self.monitors.insert(monitor, (watcher, target));
            }
            Signal::Demonitor { monitor, .. } => {
                self.monitors.remove(&monitor);
            }
            Signal::Down {
                watcher,
                target,
                monitor,
                ..
            } => {
                self.watched.remove(&(target, watcher, monitor));
            }
            Signal::Send { .. }
            | Signal::SendNamed { .. }
            | Signal::Exit { .. }
            | Signal::Upper(_) => {}
        }
    }

    /// Ends the current attempt: back to idle, with everything to tell.
    fn take(&mut self, _why: &str) -> Lost {
        let state = std::mem::take(&mut self.state);
        self.generation += 1;
        let was_up = matches!(state, State::Up { .. });
        let (outbox, task) = match state {
            State::Idle => (None, None),
            State::Dialing { outbox } | State::Accepting { outbox, .. } => (Some(outbox), None),
            State::Up { outbox, task, .. } => (Some(outbox), task),
        };
        Lost {
            calls: std::mem::take(&mut self.calls),
            links: std::mem::take(&mut self.links),
            monitors: std::mem::take(&mut self.monitors),
            watched: std::mem::take(&mut self.watched),
            outbox,
            task,
            was_up,
        }
    }
}
