//! Storm's `Acker` bolt: one XOR per tuple tree.
//!
//! Every spout tuple is the root of a tree with a random 64-bit root id. The ledger keeps, per
//! root, the XOR of the edge ids that are still open: the spout's `Init` XORs in the edge ids
//! of the tuples it emitted; a bolt's `Ack` of its input XORs in that input's edge id (closing
//! it) and the ids of the tuples it emitted anchored to it (opening them), in one message.
//! Every edge id enters the XOR twice (opened, closed), so the value is 0 exactly when every
//! tuple of the tree has been acked, up to a 2^-64 chance that open ids cancel by accident,
//! which Storm accepts too.
//!
//! The messages of one tree come from different threads and may arrive in any order: an `Ack`
//! may come before its spout's `Init`. The ledger then holds the acks' XOR (which is not 0:
//! it still holds the spout's edge ids) and completes the tree when the `Init` arrives and
//! names the spout task to tell, as Storm's acker waits for the spout task id.
//!
//! Expiry: the ledger is a [`RotatingMap`] of two generations rotated every message timeout,
//! so an entry whose tree never completes (a lost tuple; acks of a root the spout already
//! failed and replayed under a new root) is dropped after one to two timeouts. The spout times
//! its tuples out on its own; the ledger only bounds its memory.

use super::rotating::RotatingMap;

/// A message to the acker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckerMsg {
    /// A spout task emitted the tree `root` whose first tuples have edge ids XORing to `value`.
    Init {
        /// The tree's root id.
        root: u64,
        /// XOR of the edge ids the spout emitted.
        value: u64,
        /// The spout task to tell when the tree completes.
        spout: u16,
    },
    /// A bolt acked an input of tree `root`: `xor` is the input's edge id XOR the edge ids of
    /// the tuples it emitted anchored to that input.
    Ack {
        /// The tree's root id.
        root: u64,
        /// Closed and opened edge ids, XORed.
        xor: u64,
    },
    /// The producer sends nothing more.
    Stop,
}

/// One tree's open edges.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    value: u64,
    spout: Option<u16>,
}

/// The acker's ledger: open trees by root id.
#[derive(Debug)]
pub struct AckerLedger {
    trees: RotatingMap<Entry>,
    expired: u64,
}

impl Default for AckerLedger {
    fn default() -> Self {
        Self {
            trees: RotatingMap::new(2),
            expired: 0,
        }
    }
}

impl AckerLedger {
    /// Applies `msg`; returns the tree's root and spout task when it completed with it.
    /// O(1) expected (two hash look-ups).
    pub fn apply(&mut self, msg: AckerMsg) -> Option<(u64, u16)> {
        let (root, xor, spout) = match msg {
            AckerMsg::Init { root, value, spout } => (root, value, Some(spout)),
            AckerMsg::Ack { root, xor } => (root, xor, None),
            AckerMsg::Stop => return None,
        };
        let mut entry = self.trees.remove(root).unwrap_or_default();
        entry.value ^= xor;
        entry.spout = entry.spout.or(spout);
        match entry.spout {
            Some(spout) if entry.value == 0 => Some((root, spout)),
            _ => {
                self.trees.insert(root, entry);
                None
            }
        }
    }

    /// Drops the trees untouched for a whole period (call once per message timeout).
    pub fn rotate(&mut self) {
        let expired = &mut self.expired;
        self.trees.rotate(|_, _| *expired += 1);
    }

    /// Trees open now.
    pub fn open(&self) -> usize {
        self.trees.len()
    }

    /// Trees dropped by [`rotate`](Self::rotate) so far.
    pub fn expired(&self) -> u64 {
        self.expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init(root: u64, value: u64) -> AckerMsg {
        AckerMsg::Init {
            root,
            value,
            spout: 3,
        }
    }

    fn ack(root: u64, xor: u64) -> AckerMsg {
        AckerMsg::Ack { root, xor }
    }

    #[test]
    fn a_tree_completes_when_every_edge_is_acked() {
        let mut ledger = AckerLedger::default();
        // spout emits edge 0xa; bolt 1 acks 0xa and emits 0xb, 0xc; two bolts ack those.
        assert_eq!(ledger.apply(init(9, 0xa)), None);
        assert_eq!(ledger.apply(ack(9, 0xa ^ 0xb ^ 0xc)), None);
        assert_eq!(ledger.apply(ack(9, 0xb)), None);
        assert_eq!(ledger.apply(ack(9, 0xc)), Some((9, 3)));
        assert_eq!(ledger.open(), 0);
    }

    #[test]
    fn acks_before_the_init_complete_only_with_the_init() {
        let mut ledger = AckerLedger::default();
        // The bolt's ack of edge 0xa (emitting nothing) arrives first: the value is 0xa, then
        // the init brings it to 0 and names the spout.
        assert_eq!(ledger.apply(ack(5, 0xa)), None);
        assert_eq!(ledger.apply(init(5, 0xa)), Some((5, 3)));
        // A whole tree acked before its init: leaf first, then the tag task's ack.
        assert_eq!(ledger.apply(ack(6, 0xb)), None);
        assert_eq!(ledger.apply(ack(6, 0xa ^ 0xb)), None);
        assert_eq!(ledger.open(), 1);
        assert_eq!(ledger.apply(init(6, 0xa)), Some((6, 3)));
    }

    #[test]
    fn a_tree_with_a_lost_tuple_never_completes_and_expires() {
        let mut ledger = AckerLedger::default();
        ledger.apply(init(1, 0xa));
        ledger.apply(ack(1, 0xa ^ 0xb ^ 0xc));
        ledger.apply(ack(1, 0xb)); // 0xc is lost
        ledger.rotate();
        assert_eq!(ledger.open(), 1);
        ledger.rotate();
        assert_eq!((ledger.open(), ledger.expired()), (0, 1));
        // A straggler's ack of the expired root opens a fresh entry that cannot complete.
        assert_eq!(ledger.apply(ack(1, 0xc)), None);
    }
}
