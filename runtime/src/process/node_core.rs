//! The nodes this OS process knows, by the small number a [`Pid`](super::pid::Pid) carries:
//! the nodes it hosts, each with its own process table and registered names, and the
//! incarnations of other nodes it has seen in pids.
//!
//! Node 0 is the default node: code outside any node runs there, so a program that never starts
//! a node sees one table and one set of names, as before distribution. Other hosted nodes (several
//! per OS process, for clusters in one test binary) get numbers as they start. An incarnation is
//! a node name plus its creation (a number chosen when it starts), so a node restarted under the
//! same name gets a new number, and the old incarnation's pids name no process.
//!
//! Code knows which node it runs on from the thread-local the process task sets on every poll
//! (see `task`); a pid whose node is not the current one goes to the node's connections through
//! the seam in `remote`.

use std::{
    collections::HashMap,
    sync::{
        Arc, LazyLock, OnceLock, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{remote::Remote, table::Table};

/// A node's number in this OS process; pids carry it.
pub(crate) type NodeId = u16;

/// The node code outside any other node runs on.
pub(crate) const DEFAULT_NODE: NodeId = 0;

/// The name of a node that is not distributed (Erlang's).
pub(crate) const NONODE: &str = "nonode@nohost";

/// A node cannot be numbered: this OS process has seen 65,535 node incarnations, or the name
/// cannot be a node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a node name, or too many node incarnations seen by this OS process (the limit is {})",
    u16::MAX
)]
pub(crate) struct TooManyNodes;

/// Whether `name` can be a node's (`name@host:port`, printable ASCII, at most 255 bytes): what
/// a peer claims in a pid is checked before it is kept for good. The distribution layer parses
/// names fully; the core only refuses what can never be one.
fn plausible(name: &str) -> bool {
    name.len() <= 255
        && name.bytes().all(|b| b.is_ascii_graphic())
        && name
            .split_once('@')
            .is_some_and(|(n, host)| !n.is_empty() && host.contains(':'))
}

/// What a hosted node has of its own.
pub(crate) struct NodeCore {
    pub(crate) table: Table,
    pub(crate) names: super::registry::Names,
    /// Set once the node is distributed: where signals to other nodes' pids go.
    pub(crate) remote: OnceLock<Arc<dyn Remote>>,
}

impl NodeCore {
    fn new(id: NodeId) -> Self {
        NodeCore {
            table: Table::new(id),
            names: Default::default(),
            remote: OnceLock::new(),
        }
    }
}

struct Incarnation {
    name: &'static str,
    creation: u32,
    hosted: Option<Arc<NodeCore>>,
}

struct Known {
    list: Vec<Incarnation>,
    ids: HashMap<(&'static str, u32), NodeId>,
}

static DEFAULT: LazyLock<NodeCore> = LazyLock::new(|| NodeCore::new(DEFAULT_NODE));

static KNOWN: LazyLock<RwLock<Known>> = LazyLock::new(|| {
    RwLock::new(Known {
        list: vec![Incarnation {
            name: NONODE,
            creation: 0,
            hosted: None,
        }],
        ids: HashMap::new(),
    })
});

/// Set once a node other than the default one is hosted: until then every piece of code runs on
/// the default node and nobody needs to read the thread-local to know it.
static SEVERAL: AtomicBool = AtomicBool::new(false);

fn known() -> std::sync::RwLockReadGuard<'static, Known> {
    KNOWN
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn known_mut() -> std::sync::RwLockWriteGuard<'static, Known> {
    KNOWN
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The node the calling code runs on.
#[inline]
pub(crate) fn current_node() -> NodeId {
    match SEVERAL.load(Ordering::Relaxed) {
        false => DEFAULT_NODE,
        true => super::task::current_node(),
    }
}

/// Runs `f` on hosted node `id`'s core; `None` if this OS process does not host it.
#[inline]
pub(crate) fn with_node<R>(id: NodeId, f: impl FnOnce(&NodeCore) -> R) -> Option<R> {
    if id == DEFAULT_NODE {
        return Some(f(&DEFAULT));
    }
    let core = known().list.get(usize::from(id))?.hosted.clone()?;
    Some(f(&core))
}

/// A hosted node's core, held: the default node's without counting references.
pub(crate) enum CoreRef {
    Default,
    Hosted(Arc<NodeCore>),
}

impl std::ops::Deref for CoreRef {
    type Target = NodeCore;

    fn deref(&self) -> &NodeCore {
        match self {
            CoreRef::Default => &DEFAULT,
            CoreRef::Hosted(core) => core,
        }
    }
}

/// Hosted node `id`'s core; `None` if this OS process does not host it.
pub(crate) fn core(id: NodeId) -> Option<CoreRef> {
    if id == DEFAULT_NODE {
        return Some(CoreRef::Default);
    }
    Some(CoreRef::Hosted(
        known().list.get(usize::from(id))?.hosted.clone()?,
    ))
}

/// A node name interned for the life of the program (node names are few; past 65,535
/// incarnations [`intern`] refuses, so this cannot grow without bound).
fn leak(name: &str) -> &'static str {
    Box::leak(name.into())
}

/// The number of incarnation `(name, creation)`, given one if it has none yet.
pub(crate) fn intern(name: &str, creation: u32) -> Result<NodeId, TooManyNodes> {
    if !plausible(name) {
        return Err(TooManyNodes);
    }
    if let Some(&id) = known().ids.get(&(name, creation)) {
        return Ok(id);
    }
    let mut known = known_mut();
    if let Some(&id) = known.ids.get(&(name, creation)) {
        return Ok(id);
    }
    // Below `u16::MAX`: a pid of that node could pack to all ones, which `Pid` cannot hold.
    let id = NodeId::try_from(known.list.len())
        .ok()
        .filter(|&id| id < NodeId::MAX)
        .ok_or(TooManyNodes)?;
    let name = leak(name);
    known.list.push(Incarnation {
        name,
        creation,
        hosted: None,
    });
    known.ids.insert((name, creation), id);
    Ok(id)
}

/// Starts hosting a new node `(name, creation)` in this OS process: a fresh table and names.
pub(crate) fn host(name: &str, creation: u32) -> Result<NodeId, TooManyNodes> {
    let id = intern(name, creation)?;
    let mut known = known_mut();
    if let Some(incarnation) = known.list.get_mut(usize::from(id)) {
        incarnation.hosted = Some(Arc::new(NodeCore::new(id)));
    }
    SEVERAL.store(true, Ordering::Relaxed);
    Ok(id)
}

/// Names the default node, which becomes distributed: `(name, creation)` is node 0 from now on.
pub(crate) fn name_default(name: &str, creation: u32) {
    let mut known = known_mut();
    let name = leak(name);
    known.list[usize::from(DEFAULT_NODE)] = Incarnation {
        name,
        creation,
        hosted: None,
    };
    known.ids.insert((name, creation), DEFAULT_NODE);
}

/// The name and creation of node `id` (`nonode@nohost`, 0 for a number never given out).
pub(crate) fn name_of(id: NodeId) -> (&'static str, u32) {
    known()
        .list
        .get(usize::from(id))
        .map_or((NONODE, 0), |incarnation| {
            (incarnation.name, incarnation.creation)
        })
}
