//! A set of pids that keeps them in a slice (for snapshots and syncs) and removes one in constant
//! time: a group's members come and go one by one, ten thousand of them in a mass exit.

use std::collections::HashMap;

use crate::pid::Pid;

#[derive(Debug, Default, Clone)]
pub(super) struct PidSet {
    pids: Vec<Pid>,
    /// Where each pid is in `pids`.
    at: HashMap<Pid, usize>,
}

impl PidSet {
    /// Adds `pid`; `false` if it was in already.
    pub(super) fn insert(&mut self, pid: Pid) -> bool {
        if self.at.contains_key(&pid) {
            return false;
        }
        self.at.insert(pid, self.pids.len());
        self.pids.push(pid);
        true
    }

    /// Removes `pid`; `false` if it was not in.
    pub(super) fn remove(&mut self, pid: Pid) -> bool {
        let Some(at) = self.at.remove(&pid) else {
            return false;
        };
        self.pids.swap_remove(at);
        if let Some(&moved) = self.pids.get(at) {
            self.at.insert(moved, at);
        }
        true
    }

    pub(super) fn as_slice(&self) -> &[Pid] {
        &self.pids
    }

    pub(super) fn len(&self) -> usize {
        self.pids.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }
}

impl Extend<Pid> for PidSet {
    fn extend<T: IntoIterator<Item = Pid>>(&mut self, pids: T) {
        for pid in pids {
            self.insert(pid);
        }
    }
}

impl FromIterator<Pid> for PidSet {
    fn from_iter<T: IntoIterator<Item = Pid>>(pids: T) -> Self {
        let mut set = PidSet::default();
        set.extend(pids);
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_keeps_every_other_pid_findable() {
        let pids: Vec<Pid> = (1..=5).map(|n| Pid::new(0, n, 0)).collect();
        let mut set: PidSet = pids.iter().copied().collect();
        assert!(!set.insert(pids[0]));
        assert!(set.remove(pids[1]));
        assert!(!set.remove(pids[1]));
        for &pid in [pids[0], pids[2], pids[3], pids[4]].iter() {
            assert!(set.as_slice().contains(&pid));
            assert!(set.remove(pid), "{pid}");
        }
        assert!(set.is_empty());
    }
}
