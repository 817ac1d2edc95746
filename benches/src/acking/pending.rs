//! The spout's pending tuples: every tree in flight with its source record and offset
//! (`topology.max.spout.pending` bounds them), timed out after `topology.message.timeout.secs`.
//!
//! A [`RotatingMap`] of [`BUCKETS`] generations rotated every timeout / (BUCKETS − 1), as
//! Storm's spout executor does: a tuple not acked within the timeout fails between `timeout`
//! and `timeout × BUCKETS / (BUCKETS − 1)` after it was emitted. Time is passed in, never read
//! here, so the behaviour is testable without sleeping.

use std::time::{Duration, Instant};

use super::rotating::RotatingMap;

/// Generations of the pending map.
pub const BUCKETS: usize = 3;

/// Trees in flight from one spout task.
#[derive(Debug)]
pub struct PendingTuples<T> {
    tuples: RotatingMap<T>,
    max_pending: usize,
    period: Duration,
    next_rotation: Instant,
}

impl<T> PendingTuples<T> {
    /// At most `max_pending` (at least 1) trees in flight, failing after `timeout`, from `now`.
    pub fn new(max_pending: usize, timeout: Duration, now: Instant) -> Self {
        let period = timeout / (BUCKETS as u32 - 1);
        Self {
            tuples: RotatingMap::new(BUCKETS),
            max_pending: max_pending.max(1),
            period,
            next_rotation: now + period,
        }
    }

    /// Trees in flight.
    pub fn len(&self) -> usize {
        self.tuples.len()
    }

    /// Whether no tree is in flight.
    pub fn is_empty(&self) -> bool {
        self.tuples.is_empty()
    }

    /// Whether max spout pending is reached: the spout emits no new tuple until one completes
    /// or fails (replays do not count against it: they replace the tree that failed).
    pub fn is_full(&self) -> bool {
        self.tuples.len() >= self.max_pending
    }

    /// Records the tree `root`, emitted now, with what replays it.
    pub fn emitted(&mut self, root: u64, tuple: T) {
        self.tuples.insert(root, tuple);
    }

    /// The tree `root` completed (the spout's `ack(msgId)`): its tuple, or `None` when it had
    /// already failed (an ack racing its timeout counts for nothing).
    pub fn acked(&mut self, root: u64) -> Option<T> {
        self.tuples.remove(root)
    }

    /// The trees that timed out by `now` (the spout's `fail(msgId)`), to replay; nothing when
    /// no rotation is due.
    pub fn timed_out(&mut self, now: Instant, mut failed: impl FnMut(u64, T)) {
        while now >= self.next_rotation {
            self.tuples.rotate(&mut failed);
            self.next_rotation += self.period;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acked_tree_never_fails_and_a_lost_one_fails_after_the_timeout() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(30);
        let mut pending = PendingTuples::new(10, timeout, t0);
        pending.emitted(1, "acked");
        pending.emitted(2, "lost");
        assert_eq!(pending.acked(1), Some("acked"));
        let mut failed = Vec::new();
        pending.timed_out(t0 + timeout / 2, |root, t| failed.push((root, t)));
        assert!(failed.is_empty(), "not yet at the timeout");
        pending.timed_out(t0 + timeout * 3 / 2, |root, t| failed.push((root, t)));
        assert_eq!(failed, vec![(2, "lost")]);
        assert!(pending.is_empty());
        assert_eq!(pending.acked(2), None, "a late ack of a failed tree");
    }

    #[test]
    fn max_pending_bounds_the_trees_in_flight() {
        let mut pending = PendingTuples::new(2, Duration::from_secs(1), Instant::now());
        pending.emitted(1, ());
        assert!(!pending.is_full());
        pending.emitted(2, ());
        assert!(pending.is_full());
        pending.acked(1);
        assert!(!pending.is_full());
    }
}
