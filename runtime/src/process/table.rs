//! A node's process table: pid → process record. Each hosted node has one; [`table`] finds a
//! pid's by its node.
//!
//! A pid's index addresses a slot directly, so a lookup is an array index plus an uncontended
//! read lock on that one slot: there is no global lock or map on the send path (for the default
//! node; another hosted node's table is found under a read lock first). Slots live in
//! chunks that double in size (1,024, 2,048, 4,096, … slots) and are allocated the first time an
//! index reaches them, so the table grows to millions of processes without ever moving a slot, and
//! costs nothing for chunks never reached.
//!
//! Each slot carries a serial that is bumped when its process leaves; a pid holds the serial it was
//! born with, so a stale pid never reaches the slot's next occupant. Until the slot is reused it
//! also keeps the exit reason of the process that left (a tombstone), so that a call or a wait on a
//! pid that has just exited can still say why. Freed indices are reused first-in first-out, which
//! keeps tombstones for as long as possible.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, OnceLock, RwLock},
};

use super::node_core::{NodeId, current_node, with_node};
use crate::{
    exit::ExitReason,
    mailbox::lock,
    pid::{INDEX_LIMIT, Pid, SERIAL_MASK},
    process::Cell,
};

const FIRST_CHUNK_BITS: u32 = 10;
const FIRST_CHUNK: u32 = 1 << FIRST_CHUNK_BITS;
/// How many freed indices wait before the oldest is reused (about 200 KiB of slots).
const QUARANTINE: usize = 4096;

/// Chunk `k` holds `FIRST_CHUNK << k` slots; 23 chunks cover every `u32` index.
const CHUNKS: usize = (u32::BITS - FIRST_CHUNK_BITS + 1) as usize;

#[derive(Default)]
struct SlotInner {
    serial: u32,
    cell: Option<Arc<Cell>>,
    /// The exit reason of the slot's previous occupant (serial `serial - 1`).
    tombstone: Option<ExitReason>,
}

#[derive(Default)]
struct Slot(RwLock<SlotInner>);

pub(crate) struct Table {
    node: NodeId,
    chunks: [OnceLock<Box<[Slot]>>; CHUNKS],
    /// Under one lock, so that a spawn takes one lock to find its index, not two.
    indices: Mutex<Indices>,
}

struct Indices {
    /// The next never-used index. Index 0 is [`Pid::ROOT`] and never allocated.
    next: u32,
    free: VecDeque<u32>,
}

/// The process tables of the nodes this OS process hosts: each operation goes to the table of
/// the pid's node (spawning, to the current node's).
pub(crate) fn table() -> Tables {
    Tables
}

/// See [`table`].
#[derive(Clone, Copy)]
pub(crate) struct Tables;

impl Tables {
    /// Allocates a slot on the current node and fills it with the cell `make` builds for the new
    /// pid.
    #[inline]
    pub(crate) fn insert(self, make: impl FnOnce(Pid) -> Arc<Cell>) -> Arc<Cell> {
        let here = current_node();
        // The current node is always hosted: code runs on a node only while it is.
        with_node(here, |core| core.table.insert(make))
            .unwrap_or_else(|| panic!("spawn on node {here}, which this OS process does not host"))
    }

    /// Runs `f` on the live process `pid`, holding the slot's read lock (no reference count
    /// traffic); `None` if there is no such process here.
    #[inline]
    pub(crate) fn with<R>(self, pid: Pid, f: impl FnOnce(&Arc<Cell>) -> R) -> Option<R> {
        with_node(pid.node(), |core| core.table.with(pid, f)).flatten()
    }

    #[inline]
    pub(crate) fn get(self, pid: Pid) -> Option<Arc<Cell>> {
        self.with(pid, Arc::clone)
    }

    /// The exit reason of `pid` if it has exited and its slot has not been reused since.
    #[inline]
    pub(crate) fn tombstone(self, pid: Pid) -> Option<ExitReason> {
        with_node(pid.node(), |core| core.table.tombstone(pid)).flatten()
    }

    /// See [`Table::remove`].
    #[inline]
    pub(crate) fn remove(self, pid: Pid, reason: ExitReason) {
        with_node(pid.node(), |core| core.table.remove(pid, reason));
    }

    /// Every live process of the current node, in index order.
    pub(crate) fn pids(self) -> Vec<Pid> {
        with_node(current_node(), |core| core.table.pids()).unwrap_or_default()
    }
}

/// Chunk number and offset of an index.
fn locate(index: u32) -> (usize, usize) {
    let biased = u64::from(index) + u64::from(FIRST_CHUNK);
    let chunk = (u64::BITS - 1 - biased.leading_zeros() - FIRST_CHUNK_BITS) as usize;
    let offset = (biased - (u64::from(FIRST_CHUNK) << chunk)) as usize;
    (chunk, offset)
}

impl Table {
    pub(crate) fn new(node: NodeId) -> Self {
        Table {
            node,
            chunks: [const { OnceLock::new() }; CHUNKS],
            indices: Mutex::new(Indices {
                next: 1,
                free: VecDeque::new(),
            }),
        }
    }

    fn slot(&self, index: u32) -> Option<&Slot> {
        let (chunk, offset) = locate(index);
        self.chunks.get(chunk)?.get()?.get(offset)
    }

    fn slot_or_alloc(&self, index: u32) -> &Slot {
        let (chunk, offset) = locate(index);
        let slots = self.chunks[chunk].get_or_init(|| {
            let len = (FIRST_CHUNK as usize) << chunk;
            (0..len).map(|_| Slot::default()).collect()
        });
        &slots[offset]
    }

    /// Allocates a slot and fills it with the cell `make` builds for the new pid.
    fn insert(&self, make: impl FnOnce(Pid) -> Arc<Cell>) -> Arc<Cell> {
        let index = {
            let mut indices = lock(&self.indices);
            match indices.free.len() > QUARANTINE {
                true => indices.free.pop_front(),
                false => None,
            }
            .unwrap_or_else(|| {
                let index = indices.next;
                // Erlang raises `system_limit` here; at several hundred bytes a process, memory
                // runs out long before.
                assert!(
                    index < INDEX_LIMIT,
                    "system limit: more than {} live processes on one node",
                    INDEX_LIMIT - 1
                );
                indices.next = index + 1;
                index
            })
        };
        let mut slot = self
            .slot_or_alloc(index)
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cell = make(Pid::new(self.node, index, slot.serial));
        slot.cell = Some(cell.clone());
        slot.tombstone = None;
        cell
    }

    #[inline]
    fn with<R>(&self, pid: Pid, f: impl FnOnce(&Arc<Cell>) -> R) -> Option<R> {
        let slot = self
            .slot(pid.index())?
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &slot.cell {
            Some(cell) if cell.pid == pid => Some(f(cell)),
            _ => None,
        }
    }

    fn tombstone(&self, pid: Pid) -> Option<ExitReason> {
        let slot = self
            .slot(pid.index())?
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (slot.serial == (pid.serial() + 1) & SERIAL_MASK)
            .then(|| slot.tombstone.clone())
            .flatten()
    }

    /// Empties `pid`'s slot, leaving `reason` as its tombstone, and frees its index for reuse
    /// under a new serial.
    fn remove(&self, pid: Pid, reason: ExitReason) {
        let Some(slot) = self.slot(pid.index()) else {
            return;
        };
        let removed = {
            let mut slot = slot
                .0
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &slot.cell {
                Some(cell) if cell.pid == pid => {
                    slot.serial = (slot.serial + 1) & SERIAL_MASK;
                    slot.tombstone = Some(reason);
                    slot.cell.take()
                }
                _ => None,
            }
        };
        if removed.is_some() {
            lock(&self.indices).free.push_back(pid.index());
        }
        // `removed` (possibly the last reference to the cell) is dropped here, outside every lock.
    }

    /// Every live process, in index order: a record whose exit sequence has begun is in the table
    /// until the sequence ends, but no longer live.
    fn pids(&self) -> Vec<Pid> {
        let end = lock(&self.indices).next;
        (1..end)
            .filter_map(|index| {
                let slot = self.slot(index)?.0.read().ok()?;
                let cell = slot.cell.as_ref()?;
                (!lock(&cell.state).finished).then_some(cell.pid)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_maps_indices_to_doubling_chunks() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(FIRST_CHUNK - 1), (0, FIRST_CHUNK as usize - 1));
        assert_eq!(locate(FIRST_CHUNK), (1, 0));
        assert_eq!(
            locate(3 * FIRST_CHUNK - 1),
            (1, 2 * FIRST_CHUNK as usize - 1)
        );
        assert_eq!(locate(3 * FIRST_CHUNK), (2, 0));
        let (chunk, offset) = locate(u32::MAX);
        assert!(chunk < CHUNKS);
        assert!(offset < (FIRST_CHUNK as usize) << chunk);
    }
}
