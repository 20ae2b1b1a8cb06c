//! Process identifiers.

use std::{fmt, num::NonZeroU64};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

use super::node_core::{self, DEFAULT_NODE, NodeId};

/// The identifier of a process, printed the way Erlang prints pids: `<0.42.0>`.
///
/// A `Pid` is eight bytes and `Copy`: pass it around, store it in messages, serialise it, send it
/// to another node. It stays valid after its process exits (sending to it is then a no-op), and
/// it is never reused for another process: a table slot that is reused gets a new serial number.
///
/// A pid carries its node and the node's incarnation: a pid of a node that has since restarted
/// names no process, even if the new incarnation has the same name. [`Pid::node_name`] gives the
/// node's full name.
///
/// The first number is the node: `0` for a process of the node the code printing it runs on,
/// otherwise a small number this OS process gave that node (as Erlang numbers nodes). The middle
/// number is the process's slot in its node's process table, the last one the slot's serial.
///
/// Serialised (with serde), a pid is its node's name, the node's incarnation, and the two numbers,
/// so it names the same process wherever it is read.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pid = ferrotp::spawn(|_ctx| async {});
/// assert!(pid.to_string().starts_with("<0."));
/// assert_eq!(pid.node_name(), "nonode@nohost");
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pid(NonZeroU64);

// The packed number plus one, so that `Option<Pid>` (in every process record's relations, and in
// the thread-local of the running process) is eight bytes, not sixteen. No pid packs to all ones:
// node numbers stop below `u16::MAX` (see `node_core::intern`). Adding one keeps the order.
const _: () = assert!(std::mem::size_of::<Option<Pid>>() == 8);

/// Bits of a pid, from the top: node, index, serial.
const INDEX_BITS: u32 = 28;
const SERIAL_BITS: u32 = 20;
/// One past the largest index: a node holds fewer live processes than this (about 268 million,
/// far past what memory allows at several hundred bytes each).
pub(crate) const INDEX_LIMIT: u32 = 1 << INDEX_BITS;
/// Serials wrap at this: a slot's pid repeats only after the slot was reused this many times.
pub(crate) const SERIAL_MASK: u32 = (1 << SERIAL_BITS) - 1;

impl Pid {
    /// The pseudo-process `<0.0.0>` that stands for "outside any process".
    ///
    /// Signals sent by code that is not running in a process (for example [`exit`](crate::exit)
    /// called from `main`) carry this pid as their sender. No process ever has it, so sending to it
    /// does nothing.
    pub const ROOT: Pid = Pid::from_raw(0);

    pub(crate) const fn new(node: NodeId, index: u32, serial: u32) -> Self {
        Pid::from_raw(
            ((node as u64) << (INDEX_BITS + SERIAL_BITS))
                | (((index & (INDEX_LIMIT - 1)) as u64) << SERIAL_BITS)
                | (serial & SERIAL_MASK) as u64,
        )
    }

    const fn from_raw(raw: u64) -> Self {
        match NonZeroU64::new(raw.wrapping_add(1)) {
            Some(stored) => Pid(stored),
            // All ones: never made (node numbers stop below `u16::MAX`).
            None => Pid(NonZeroU64::MIN),
        }
    }

    #[inline]
    const fn raw(self) -> u64 {
        self.0.get() - 1
    }

    /// The "outside any process" pseudo-pid of `node`: index 0, which no process has.
    pub(crate) const fn root(node: NodeId) -> Self {
        Pid::new(node, 0, 0)
    }

    #[inline]
    pub(crate) const fn node(self) -> NodeId {
        (self.raw() >> (INDEX_BITS + SERIAL_BITS)) as NodeId
    }

    #[inline]
    pub(crate) const fn index(self) -> u32 {
        ((self.raw() >> SERIAL_BITS) as u32) & (INDEX_LIMIT - 1)
    }

    #[inline]
    pub(crate) const fn serial(self) -> u32 {
        (self.raw() as u32) & SERIAL_MASK
    }

    /// The full name of the node this process lives on (Erlang's `node(Pid)`): `name@host:port`,
    /// or `nonode@nohost` for a node that is not distributed.
    pub fn node_name(&self) -> &'static str {
        node_core::name_of(self.node()).0
    }

    /// Whether this process lives on the node the calling code runs on.
    pub fn is_local(&self) -> bool {
        self.node() == node_core::current_node()
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let here = node_core::current_node();
        let node = match self.node() {
            node if node == here => 0,
            node => u32::from(node) + 1,
        };
        write!(f, "<{node}.{}.{}>", self.index(), self.serial())
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Pid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (name, creation) = node_core::name_of(self.node());
        (name, creation, self.index(), self.serial()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (name, creation, index, serial) =
            <(std::borrow::Cow<'de, str>, u32, u32, u32)>::deserialize(deserializer)?;
        if index >= INDEX_LIMIT || serial > SERIAL_MASK {
            return Err(D::Error::custom(format_args!(
                "pid numbers out of range: {index}.{serial}"
            )));
        }
        let node = match (name.as_ref(), creation) {
            (node_core::NONODE, 0) => DEFAULT_NODE,
            _ => node_core::intern(&name, creation).map_err(D::Error::custom)?,
        };
        Ok(Pid::new(node, index, serial))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_pack_and_unpack() {
        let pid = Pid::new(0xABCD, INDEX_LIMIT - 1, SERIAL_MASK);
        assert_eq!(
            (pid.node(), pid.index(), pid.serial()),
            (0xABCD, INDEX_LIMIT - 1, SERIAL_MASK)
        );
        let pid = Pid::new(1, 2, 3);
        assert_eq!((pid.node(), pid.index(), pid.serial()), (1, 2, 3));
        assert_eq!(Pid::new(0, 0, SERIAL_MASK + 1), Pid::ROOT);
        assert_eq!(std::mem::size_of::<Pid>(), 8);
    }

    #[test]
    fn out_of_range_numbers_do_not_deserialize() {
        let json = format!(r#"["nonode@nohost",0,{INDEX_LIMIT},0]"#);
        assert!(serde_json::from_str::<Pid>(&json).is_err());
        let json = format!(r#"["nonode@nohost",0,1,{}]"#, SERIAL_MASK + 1);
        assert!(serde_json::from_str::<Pid>(&json).is_err());
        let pid: Pid = serde_json::from_str(r#"["nonode@nohost",0,5,6]"#).unwrap();
        assert_eq!(pid, Pid::new(DEFAULT_NODE, 5, 6));
    }
}
