//! Process identifiers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The identifier of a process, printed the way Erlang prints pids: `<0.42.0>`.
///
/// A `Pid` is eight bytes and `Copy`: pass it around, store it in messages, serialise it. It stays
/// valid after its process exits (sending to it is then a no-op), and it is never reused for
/// another process: a table slot that is reused gets a new serial number.
///
/// The middle number is the process's slot in the local process table, the last one the slot's
/// serial. The first is the node; it is always `0` (the local node) until distribution arrives.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pid = ferrotp::spawn(|_ctx| async {});
/// assert!(pid.to_string().starts_with("<0."));
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pid {
    index: u32,
    serial: u32,
}

impl Pid {
    /// The pseudo-process `<0.0.0>` that stands for "outside any process".
    ///
    /// Signals sent by code that is not running in a process (for example [`exit`](crate::exit)
    /// called from `main`) carry this pid as their sender. No process ever has it, so sending to it
    /// does nothing.
    pub const ROOT: Pid = Pid {
        index: 0,
        serial: 0,
    };

    pub(crate) const fn new(index: u32, serial: u32) -> Self {
        Pid { index, serial }
    }

    pub(crate) const fn index(self) -> u32 {
        self.index
    }

    pub(crate) const fn serial(self) -> u32 {
        self.serial
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<0.{}.{}>", self.index, self.serial)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
