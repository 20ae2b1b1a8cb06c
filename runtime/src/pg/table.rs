//! A node's groups, as every read sees them: one table per node, behind one lock.
//!
//! Reads take the read lock once and leave with a snapshot (`Arc<[Pid]>`, built on the first read
//! after a change and shared by every read until the next), so a broadcast to 10,000 members
//! takes one lock and then sends. Local joins and leaves write here directly, in the caller; the
//! scope server writes what other nodes say. Each change of local membership is also pushed to
//! the scope server's mailbox while the write lock is held, so the server sees local changes in
//! the order the table took them (see `server`).
//!
//! A local member is watched through the core's `ExitWatch` hook, once however many groups it is
//! in: its exit sequence removes it from all of them before anyone waiting for that exit is told.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, LazyLock, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak},
};

use super::pids::PidSet;
use crate::{
    mailbox::ExitWatch,
    message::Message,
    pid::Pid,
    process::{deliver_local_as, node_core::NodeId},
    table::table,
};

/// What the scope server hears of local membership, in the order the table changed.
pub(crate) enum Change {
    /// `pid` is a member of `group` now (it was not before).
    Joined(Arc<str>, Pid),
    /// `pid` has left these groups (all of them, when it exited).
    Left(Pid, Vec<Arc<str>>),
}

/// One node's groups.
pub(crate) struct Scope {
    pub(crate) node: NodeId,
    state: RwLock<State>,
}

#[derive(Default)]
pub(crate) struct State {
    groups: HashMap<Arc<str>, Group>,
    /// The local members, each with its groups and how many times it joined each.
    members: HashMap<Pid, Member>,
    /// The scope server, on a distributed node once started: told of every local change.
    pub(crate) server: Option<Pid>,
    /// The groups each other node has members in, by node name, to drop them all at once.
    remote: HashMap<&'static str, HashSet<Arc<str>>>,
}

/// One group with at least one member.
#[derive(Default)]
struct Group {
    /// Local members, each once.
    local: PidSet,
    /// Members of other nodes, by node name, each once.
    remote: HashMap<&'static str, PidSet>,
    /// Every member, built on the first read after a change.
    all: OnceLock<Arc<[Pid]>>,
    /// `local`, likewise.
    local_snapshot: OnceLock<Arc<[Pid]>>,
}

impl Group {
    fn changed(&mut self) {
        self.all = OnceLock::new();
        self.local_snapshot = OnceLock::new();
    }

    fn is_empty(&self) -> bool {
        self.local.is_empty() && self.remote.is_empty()
    }

    fn all(&self) -> &Arc<[Pid]> {
        self.all.get_or_init(|| {
            let mut all = Vec::with_capacity(
                self.local.len() + self.remote.values().map(PidSet::len).sum::<usize>(),
            );
            all.extend_from_slice(self.local.as_slice());
            for pids in self.remote.values() {
                all.extend_from_slice(pids.as_slice());
            }
            all.into()
        })
    }

    fn local(&self) -> &Arc<[Pid]> {
        self.local_snapshot
            .get_or_init(|| Arc::from(self.local.as_slice()))
    }
}

/// A local member: its groups, and the watch that removes it from them when it exits.
struct Member {
    /// Held here; the member's mailbox holds it weakly, so dropping it ends the watch.
    _watch: Arc<Watch>,
    groups: HashMap<Arc<str>, u64>,
}

/// Told by the exit sequence of a local member.
struct Watch {
    node: NodeId,
    pid: Pid,
}

impl ExitWatch for Watch {
    fn callee_exited(&self) {
        if let Some(scope) = existing(self.node) {
            scope.exited(self.pid);
        }
    }
}

/// Every node's scope, made on first use.
static SCOPES: LazyLock<RwLock<HashMap<NodeId, Arc<Scope>>>> = LazyLock::new(Default::default);

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Node `node`'s scope, if pg was used there.
pub(crate) fn existing(node: NodeId) -> Option<Arc<Scope>> {
    read(&SCOPES).get(&node).cloned()
}

/// Node `node`'s scope, made if pg was not used there yet.
pub(crate) fn scope(node: NodeId) -> Arc<Scope> {
    if let Some(scope) = existing(node) {
        return scope;
    }
    write(&SCOPES)
        .entry(node)
        .or_insert_with(|| {
            Arc::new(Scope {
                node,
                state: RwLock::default(),
            })
        })
        .clone()
}

/// Why a join was refused (the public error says it to the user).
pub(crate) enum Refused {
    NoProc,
}

impl Scope {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        read(&self.state)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        write(&self.state)
    }

    /// Every member of `group` (`local`: of this node only); empty if it has none.
    pub(crate) fn snapshot(&self, group: &str, local: bool) -> Option<Arc<[Pid]>> {
        let state = self.read();
        let group = state.groups.get(group)?;
        Some(match local {
            true => group.local().clone(),
            false => group.all().clone(),
        })
    }

    /// Adds one join of local process `pid` to `group`.
    pub(crate) fn join(&self, group: &str, pid: Pid) -> Result<(), Refused> {
        let mut state = self.write();
        let State {
            groups,
            members,
            server,
            ..
        } = &mut *state;
        let member = match members.entry(pid) {
            std::collections::hash_map::Entry::Occupied(member) => member.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                let watch = Arc::new(Watch {
                    node: self.node,
                    pid,
                });
                let weak = Arc::downgrade(&watch) as Weak<dyn ExitWatch>;
                // Refused once the mailbox is closed: then the exit sequence is past the point
                // where it would tell the watch, and the process is not a member of anything.
                let watching = table()
                    .with(pid, |cell| cell.mailbox.watch(weak))
                    .unwrap_or(false);
                if !watching {
                    return Err(Refused::NoProc);
                }
                vacant.insert(Member {
                    _watch: watch,
                    groups: HashMap::new(),
                })
            }
        };
        // One allocation of the name however many members join the group.
        let name: Arc<str> = match groups.get_key_value(group) {
            Some((name, _)) => name.clone(),
            None => group.into(),
        };
        let count = member.groups.entry(name.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            let entry = groups.entry(name.clone()).or_default();
            entry.local.insert(pid);
            entry.changed();
            tell(*server, Change::Joined(name, pid));
        }
        Ok(())
    }

    /// Takes one join of local process `pid` from `group`; `false` if it had none.
    pub(crate) fn leave(&self, group: &str, pid: Pid) -> bool {
        let mut state = self.write();
        let State {
            groups,
            members,
            server,
            ..
        } = &mut *state;
        let Some(member) = members.get_mut(&pid) else {
            return false;
        };
        let Some(count) = member.groups.get_mut(group) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return true;
        }
        let Some((name, _)) = member.groups.remove_entry(group) else {
            return false;
        };
        if member.groups.is_empty() {
            members.remove(&pid);
        }
        remove_local(groups, &name, pid);
        tell(*server, Change::Left(pid, vec![name]));
        true
    }

    /// Local process `pid` has exited: it leaves all its groups.
    fn exited(&self, pid: Pid) {
        let mut state = self.write();
        let State {
            groups,
            members,
            server,
            ..
        } = &mut *state;
        let Some(member) = members.remove(&pid) else {
            return;
        };
        let left: Vec<Arc<str>> = member.groups.into_keys().collect();
        for name in &left {
            remove_local(groups, name, pid);
        }
        tell(*server, Change::Left(pid, left));
    }

    /// The names of the groups with members (`local`: with local members).
    pub(crate) fn groups(&self, local: bool) -> Vec<String> {
        let state = self.read();
        let mut names: Vec<String> = state
            .groups
            .iter()
            .filter(|(_, group)| !local || !group.local.is_empty())
            .map(|(name, _)| name.to_string())
            .collect();
        names.sort_unstable();
        names
    }

    /// The local membership, each member once per group: what a starting server syncs from.
    pub(crate) fn local_view(state: &State) -> HashMap<Arc<str>, Vec<Pid>> {
        state
            .groups
            .iter()
            .filter(|(_, group)| !group.local.is_empty())
            .map(|(name, group)| (name.clone(), group.local.as_slice().to_vec()))
            .collect()
    }

    /// Forgets every member of node `node` (it went down).
    pub(crate) fn drop_node(&self, node: &str) {
        let mut state = self.write();
        let State { groups, remote, .. } = &mut *state;
        forget(groups, remote, node);
    }

    /// Replaces everything known of node `node`'s members with `view`, in one step.
    pub(crate) fn replace_node(&self, node: &'static str, view: Vec<(String, Vec<Pid>)>) {
        let mut state = self.write();
        let State { groups, remote, .. } = &mut *state;
        forget(groups, remote, node);
        let mut held = HashSet::new();
        for (name, mut pids) in view {
            pids.sort_unstable();
            pids.dedup();
            if name.is_empty() || pids.is_empty() {
                continue;
            }
            let name: Arc<str> = match groups.get_key_value(name.as_str()) {
                Some((name, _)) => name.clone(),
                None => name.into(),
            };
            let group = groups.entry(name.clone()).or_default();
            group.remote.entry(node).or_default().extend(pids);
            group.changed();
            held.insert(name);
        }
        if !held.is_empty() {
            remote.insert(node, held);
        }
    }

    /// Node `node` says `pid` joined `group`.
    pub(crate) fn remote_join(&self, node: &'static str, group: String, pid: Pid) {
        if group.is_empty() {
            return;
        }
        let mut state = self.write();
        let State { groups, remote, .. } = &mut *state;
        let name: Arc<str> = match groups.get_key_value(group.as_str()) {
            Some((name, _)) => name.clone(),
            None => group.into(),
        };
        let entry = groups.entry(name.clone()).or_default();
        if entry.remote.entry(node).or_default().insert(pid) {
            entry.changed();
        }
        remote.entry(node).or_default().insert(name);
    }

    /// Node `node` says `pid` left `left`.
    pub(crate) fn remote_leave(&self, node: &'static str, pid: Pid, left: Vec<String>) {
        let mut state = self.write();
        let State { groups, remote, .. } = &mut *state;
        for name in left {
            let Some(group) = groups.get_mut(name.as_str()) else {
                continue;
            };
            let Some(pids) = group.remote.get_mut(node) else {
                continue;
            };
            if !pids.remove(pid) {
                continue;
            }
            if pids.is_empty() {
                group.remote.remove(node);
                if let Some(held) = remote.get_mut(node) {
                    held.remove(name.as_str());
                }
            }
            group.changed();
            if group.is_empty() {
                groups.remove(name.as_str());
            }
        }
    }

    /// The other nodes this table has members of.
    pub(crate) fn remote_nodes(&self) -> Vec<&'static str> {
        self.read().remote.keys().copied().collect()
    }
}

fn forget(
    groups: &mut HashMap<Arc<str>, Group>,
    remote: &mut HashMap<&'static str, HashSet<Arc<str>>>,
    node: &str,
) {
    for name in remote.remove(node).unwrap_or_default() {
        if let Some(group) = groups.get_mut(&name) {
            group.remote.remove(node);
            group.changed();
            if group.is_empty() {
                groups.remove(&name);
            }
        }
    }
}

fn remove_local(groups: &mut HashMap<Arc<str>, Group>, name: &str, pid: Pid) {
    if let Some(group) = groups.get_mut(name) {
        if group.local.remove(pid) {
            group.changed();
        }
        if group.is_empty() {
            groups.remove(name);
        }
    }
}

/// Pushes a change to the scope server, if there is one: under the table's write lock, so that
/// its mailbox has the changes in the table's order.
fn tell(server: Option<Pid>, change: Change) {
    if let Some(server) = server {
        // A server that has just exited misses it; the next one starts from the table.
        let _ = deliver_local_as(server, Message::new(change), crate::mailbox::Push::Signal);
    }
}
