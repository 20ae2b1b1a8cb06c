//! Registered names: a process can be found by a name instead of its pid.
//!
//! A name belongs to at most one process and a process has at most one name. The name is released
//! when its process exits, before anyone waiting for that exit is told.
//!
//! A name can also be *kept* by another process (its keeper: a supervisor, for a named child).
//! When the process holding a kept name exits while its keeper lives, the name is not released
//! but reserved for the keeper, until the keeper either registers the next process under it (a
//! restart) or releases it with a reason (no restart, or the keeper exits). Meanwhile
//! [`whereis`] finds nobody, [`register`] by anyone else fails, a call by name waits for the
//! outcome, and casts and [`send_named`] messages are parked and delivered, in order, to the next
//! process. Names nobody keeps behave as in OTP.

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex, RwLock},
};

use tokio::sync::Notify;

use super::node_core::{self, NodeId, current_node};
use crate::{
    exit::ExitReason, mailbox::lock, message::Message, pid::Pid, process, table::table,
    unwind::drop_quietly,
};

/// A node's registered names.
pub(crate) type Names = RwLock<HashMap<Arc<str>, Entry>>;

fn write(names: &Names) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, Entry>> {
    names
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) enum Entry {
    /// Registered to a live process.
    Held { pid: Pid, keeper: Option<Pid> },
    /// Kept for the keeper's next process.
    Reserved(Arc<Reservation>),
}

/// A name between two processes of its keeper.
pub(crate) struct Reservation {
    keeper: Pid,
    /// The process that held the name last.
    pub(crate) last: Pid,
    outcome: Mutex<Outcome>,
    /// Messages sent to the name while the outcome is open, in order.
    parked: Mutex<Vec<Message>>,
    /// Woken when the outcome is decided.
    decided: Notify,
}

/// How a reservation ends.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// Not yet decided.
    Open,
    /// The keeper registered the name again (look it up to find the process).
    Claimed,
    /// The keeper released the name: no process will have it again through this keeper.
    Released(ExitReason),
}

impl Reservation {
    /// The outcome, once decided: waits for it (cancel safe).
    pub(crate) async fn outcome(&self) -> Outcome {
        loop {
            let decided = self.decided.notified();
            let mut decided = std::pin::pin!(decided);
            // Registered before the check, so a decision in between is not missed.
            decided.as_mut().enable();
            match &*lock(&self.outcome) {
                Outcome::Open => {}
                outcome => return outcome.clone(),
            }
            decided.await;
        }
    }

    /// Decides the outcome; returns the messages parked meanwhile.
    fn decide(&self, outcome: Outcome) -> Vec<Message> {
        let parked = {
            let mut current = lock(&self.outcome);
            *current = outcome;
            // Under the outcome's lock, which a sender parking a message holds too: nothing is
            // parked after this.
            std::mem::take(&mut *lock(&self.parked))
        };
        self.decided.notify_waiters();
        parked
    }
}

/// Why [`register`] refused a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Another process has the name (or keeps it, for the next process it starts).
    #[error("the name `{name}` is already registered to {pid}")]
    NameTaken {
        /// The name asked for.
        name: Arc<str>,
        /// The process that has it, or the one keeping it for the next process it starts.
        pid: Pid,
    },
    /// The process already has a name.
    #[error("{pid} is already registered as `{name}`")]
    AlreadyNamed {
        /// The process.
        pid: Pid,
        /// Its name.
        name: Arc<str>,
    },
    /// The process is not alive.
    #[error("{0} is not alive")]
    NoProc(Pid),
}

/// [`send_named`] found no process under the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no process is registered as `{0}`")]
pub struct NotRegistered(pub Arc<str>);

/// Registers `pid` under `name`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pid = ferrotp::spawn(|mut ctx| async move { ctx.receive::<&str>().await; });
/// ferrotp::register("doc-echo", pid)?;
/// assert_eq!(ferrotp::whereis("doc-echo"), Some(pid));
/// ferrotp::send_named("doc-echo", "bye")?;
/// ferrotp::wait(pid).await;
/// assert_eq!(ferrotp::whereis("doc-echo"), None); // released on exit
/// # Ok::<(), Box<dyn std::error::Error>>(()) }
/// ```
///
/// # Errors
///
/// [`RegisterError`] when the name is taken, the process already has a name, or it is not alive.
pub fn register(name: &str, pid: Pid) -> Result<(), RegisterError> {
    register_with(name, pid, None, || name.into())
}

/// [`register`] with a name already shared, kept by `keeper` if given (a supervisor starting its
/// named child): the name is then reserved for `keeper` when `pid` exits.
pub(crate) fn register_kept(
    name: &Arc<str>,
    pid: Pid,
    keeper: Option<Pid>,
) -> Result<(), RegisterError> {
    register_with(name, pid, keeper, || name.clone())
}

fn register_with(
    name: &str,
    pid: Pid,
    keeper: Option<Pid>,
    shared: impl FnOnce() -> Arc<str>,
) -> Result<(), RegisterError> {
    // Names are per node: a process is registered on its own node.
    let core = node_core::core(pid.node()).ok_or(RegisterError::NoProc(pid))?;
    let mut names = write(&core.names);
    let claimed = match names.get_key_value(name) {
        Some((name, Entry::Held { pid: owner, .. })) => {
            return Err(RegisterError::NameTaken {
                name: name.clone(),
                pid: *owner,
            });
        }
        Some((name, Entry::Reserved(reservation))) => {
            if keeper != Some(reservation.keeper) {
                return Err(RegisterError::NameTaken {
                    name: name.clone(),
                    pid: reservation.keeper,
                });
            }
            Some(reservation.clone())
        }
        None => None,
    };
    let name = shared();
    // Lock order: names, then the process state (the exit sequence never holds both).
    let cell = table().get(pid).ok_or(RegisterError::NoProc(pid))?;
    {
        let mut state = lock(&cell.state);
        if state.finished {
            return Err(RegisterError::NoProc(pid));
        }
        if let Some(existing) = state.name() {
            return Err(RegisterError::AlreadyNamed {
                pid,
                name: existing.clone(),
            });
        }
        state.relations().name = Some(name.clone());
    }
    if let Some(keeper) = keeper {
        table().with(keeper, |cell| {
            let mut state = lock(&cell.state);
            let kept = &mut state.relations().kept;
            if !kept.contains(&name) {
                kept.push(name.clone());
            }
        });
    }
    if let Some(reservation) = claimed {
        // Under the names lock: whoever finds the name registered finds the parked messages
        // ahead of its own.
        for message in reservation.decide(Outcome::Claimed) {
            let _ = cell.push(message, crate::mailbox::Push::Signal);
        }
    }
    tracing::debug!(%pid, %name, "registered");
    names.insert(name, Entry::Held { pid, keeper });
    Ok(())
}

/// Removes a name; returns the process that had it. A name reserved for a keeper is left alone
/// (nobody has it to unregister).
pub fn unregister(name: &str) -> Option<Pid> {
    let pid = {
        let core = node_core::core(current_node())?;
        let mut names = write(&core.names);
        let Some(&Entry::Held { pid, .. }) = names.get(name) else {
            return None;
        };
        names.remove(name);
        pid
    };
    table().with(pid, |cell| {
        if let Some(relations) = lock(&cell.state).relations.as_mut() {
            relations.name = None;
        }
    });
    tracing::debug!(%pid, %name, "unregistered");
    Some(pid)
}

/// The process registered under `name`, if any (none while the name is reserved for a restart).
pub fn whereis(name: &str) -> Option<Pid> {
    match resolve(name) {
        Resolved::Held(pid) => Some(pid),
        Resolved::Reserved(_) | Resolved::Unknown => None,
    }
}

/// What a name stands for right now.
pub(crate) enum Resolved {
    Held(Pid),
    Reserved(Arc<Reservation>),
    Unknown,
}

pub(crate) fn resolve(name: &str) -> Resolved {
    resolve_on(current_node(), name)
}

/// What `name` stands for on hosted node `node`.
pub(crate) fn resolve_on(node: NodeId, name: &str) -> Resolved {
    let Some(core) = node_core::core(node) else {
        return Resolved::Unknown;
    };
    let names = core
        .names
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match names.get(name) {
        Some(Entry::Held { pid, .. }) => Resolved::Held(*pid),
        Some(Entry::Reserved(reservation)) => Resolved::Reserved(reservation.clone()),
        None => Resolved::Unknown,
    }
}

/// A name interned for the life of the program, as Erlang's atoms are: four bytes and `Copy`, for
/// references that call by name. Names used so are few (a fixed set of servers), so keeping each
/// one forever costs nothing that matters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Atom(u32);

#[derive(Default)]
struct Atoms {
    ids: HashMap<&'static str, u32>,
    names: Vec<&'static str>,
}

static ATOMS: LazyLock<RwLock<Atoms>> = LazyLock::new(Default::default);

impl Atom {
    pub(crate) fn new(name: &str) -> Atom {
        if let Some(&id) = ATOMS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ids
            .get(name)
        {
            return Atom(id);
        }
        let mut atoms = ATOMS
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&id) = atoms.ids.get(name) {
            return Atom(id);
        }
        // More than four billion distinct names would exhaust memory long before.
        let id = u32::try_from(atoms.names.len()).unwrap_or(u32::MAX);
        let name: &'static str = Box::leak(name.into());
        atoms.names.push(name);
        atoms.ids.insert(name, id);
        Atom(id)
    }

    pub(crate) fn as_str(self) -> &'static str {
        let atoms = ATOMS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        atoms.names.get(self.0 as usize).copied().unwrap_or("")
    }
}

impl std::fmt::Debug for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Sends `message` to the process registered under `name`. While the name is reserved for a
/// supervisor restarting its child, the message waits and goes to the new process.
///
/// # Errors
///
/// [`NotRegistered`] when no process has the name (Erlang raises `badarg` here too: a name, unlike
/// a pid, can be misspelt).
pub fn send_named<M: Any + Send>(name: &str, message: M) -> Result<(), NotRegistered> {
    send_to_name(name, Message::new(message), process::deliver)
}

/// Sends `message` to the process `name` stands for, with `push`, or parks it in the name's
/// reservation.
pub(crate) fn send_to_name(
    name: &str,
    message: Message,
    push: impl FnOnce(Pid, Message) -> bool,
) -> Result<(), NotRegistered> {
    send_to_name_on(current_node(), name, message, push)
}

/// [`send_to_name`] on hosted node `node`.
pub(crate) fn send_to_name_on(
    node: NodeId,
    name: &str,
    message: Message,
    push: impl FnOnce(Pid, Message) -> bool,
) -> Result<(), NotRegistered> {
    let mut message = Some(message);
    loop {
        let Some(parcel) = message.take() else {
            return Ok(());
        };
        match resolve_on(node, name) {
            Resolved::Held(pid) => {
                push(pid, parcel);
                return Ok(());
            }
            Resolved::Reserved(reservation) => match &*lock(&reservation.outcome) {
                Outcome::Open => lock(&reservation.parked).push(parcel),
                // Decided meanwhile: look again.
                _ => message = Some(parcel),
            },
            Resolved::Unknown => {
                drop_quietly(parcel, "a message to an unregistered name");
                return Err(NotRegistered(name.into()));
            }
        }
    }
}

/// Step 3 of the exit sequence: frees `name` if `pid` still holds it, or reserves it for its
/// keeper if that is alive.
pub(crate) fn release(name: &Arc<str>, pid: Pid) {
    let Some(core) = node_core::core(pid.node()) else {
        return;
    };
    let mut names = write(&core.names);
    let Some(&Entry::Held { pid: owner, keeper }) = names.get(name) else {
        return;
    };
    if owner != pid {
        return;
    }
    // A keeper past step 1 of its own exit has released what it keeps, or is about to; a keeper
    // that finishes after this check releases this reservation itself.
    let keeper = keeper.filter(|&keeper| {
        table()
            .with(keeper, |cell| !lock(&cell.state).finished)
            .unwrap_or(false)
    });
    match keeper {
        Some(keeper) => {
            tracing::debug!(%pid, %name, %keeper, "name reserved for the keeper's next process");
            let reservation = Reservation {
                keeper,
                last: pid,
                outcome: Mutex::new(Outcome::Open),
                parked: Mutex::new(Vec::new()),
                decided: Notify::new(),
            };
            names.insert(name.clone(), Entry::Reserved(Arc::new(reservation)));
        }
        None => {
            names.remove(name);
        }
    }
}

/// The keeper will not register `name` again: its reservation (if any) ends with `reason`, and
/// the messages parked in it are dropped.
pub(crate) fn unreserve(name: &Arc<str>, keeper: Pid, reason: &ExitReason) {
    let parked = {
        let Some(core) = node_core::core(keeper.node()) else {
            return;
        };
        let mut names = write(&core.names);
        match names.get(name) {
            Some(Entry::Reserved(reservation)) if reservation.keeper == keeper => {
                let reservation = reservation.clone();
                names.remove(name);
                reservation.decide(Outcome::Released(reason.clone()))
            }
            // Held: the keeper's child is running; it keeps its name until it exits.
            Some(Entry::Held {
                keeper: Some(k), ..
            }) if *k == keeper => {
                if let Some(Entry::Held { keeper, .. }) = names.get_mut(name) {
                    *keeper = None;
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    };
    for message in parked {
        tracing::debug!(%name, message_type = message.type_name(), "message to a released name dropped");
        drop_quietly(message, "a message to a released name");
    }
    table().with(keeper, |cell| {
        if let Some(relations) = lock(&cell.state).relations.as_mut() {
            relations.kept.retain(|kept| kept != name);
        }
    });
}

/// The keeper `keeper` (the current process) gives up: every name it keeps is released with
/// `reason` now, before it stops its remaining processes.
pub(crate) fn release_all_kept(keeper: Pid, reason: &ExitReason) {
    let kept = table()
        .with(keeper, |cell| {
            let mut state = lock(&cell.state);
            state
                .relations
                .as_mut()
                .map(|relations| std::mem::take(&mut relations.kept))
        })
        .flatten()
        .unwrap_or_default();
    release_kept(keeper, kept, reason);
}

/// Step 3 of a keeper's exit sequence: every name it keeps is released with its exit reason.
pub(crate) fn release_kept(keeper: Pid, kept: Vec<Arc<str>>, reason: &ExitReason) {
    for name in &kept {
        unreserve(name, keeper, reason);
    }
}
