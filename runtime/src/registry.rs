//! Registered names: a process can be found by a name instead of its pid.
//!
//! A name belongs to at most one process and a process has at most one name. The name is released
//! when its process exits, before anyone waiting for that exit is told.

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use crate::{mailbox::lock, message::Message, pid::Pid, process, table::table};

static NAMES: LazyLock<RwLock<HashMap<Arc<str>, Pid>>> = LazyLock::new(Default::default);

/// Why [`register`] refused a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Another process has the name.
    #[error("the name `{name}` is already registered to {pid}")]
    NameTaken {
        /// The name asked for.
        name: Arc<str>,
        /// The process that has it.
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
    register_with(name, pid, || name.into())
}

/// [`register`] with a name already shared (a server restarted under its name): no new copy.
pub(crate) fn register_shared(name: &Arc<str>, pid: Pid) -> Result<(), RegisterError> {
    register_with(name, pid, || name.clone())
}

fn register_with(
    name: &str,
    pid: Pid,
    shared: impl FnOnce() -> Arc<str>,
) -> Result<(), RegisterError> {
    let mut names = NAMES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((name, &owner)) = names.get_key_value(name) {
        return Err(RegisterError::NameTaken {
            name: name.clone(),
            pid: owner,
        });
    }
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
    tracing::debug!(%pid, %name, "registered");
    names.insert(name, pid);
    Ok(())
}

/// Removes a name; returns the process that had it.
pub fn unregister(name: &str) -> Option<Pid> {
    let pid = NAMES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(name)?;
    table().with(pid, |cell| {
        if let Some(relations) = lock(&cell.state).relations.as_mut() {
            relations.name = None;
        }
    });
    tracing::debug!(%pid, %name, "unregistered");
    Some(pid)
}

/// The process registered under `name`, if any.
pub fn whereis(name: &str) -> Option<Pid> {
    NAMES
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(name)
        .copied()
}

/// Sends `message` to the process registered under `name`.
///
/// # Errors
///
/// [`NotRegistered`] when no process has the name (Erlang raises `badarg` here too: a name, unlike
/// a pid, can be misspelt).
pub fn send_named<M: Any + Send>(name: &str, message: M) -> Result<(), NotRegistered> {
    let pid = whereis(name).ok_or_else(|| NotRegistered(name.into()))?;
    process::deliver(pid, Message::new(message));
    Ok(())
}

/// Step 3 of the exit sequence: frees `name` if `pid` still holds it.
pub(crate) fn release(name: &str, pid: Pid) {
    let mut names = NAMES
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if names.get(name) == Some(&pid) {
        names.remove(name);
    }
}
