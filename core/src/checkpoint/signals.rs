//! Coordinator → tasks: the few atomics a task loop reads once per batch.
//!
//! One writer (the coordinator thread, through
//! [`PendingCheckpoints`](super::pending::PendingCheckpoints)), any number of readers (the task threads).
//! Never blocks the readers except for the short lock around the newest barrier, taken only when
//! a newer one was triggered. Every id only grows (`debug_assert!`ed at the store), so a task
//! that compares the id it read with the last one it saw never goes backwards.
//!
//! Memory orderings: every store is `Release` and every load `Acquire`. What they order is the
//! coordinator's own earlier steps: a task that reads completion `n` also sees that the barrier
//! of `n` was published and that `final_checkpoint` was set before `n` was triggered (so
//! [`Signals::final_completed`] cannot pair a new completion with a stale final id). No data is
//! read through these ids without a further synchronisation: the barrier itself travels behind a
//! mutex.

use super::CheckpointId;
use crate::net::CheckpointBarrier;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering};

/// Coordinator → tasks (Flink's trigger, `notifyCheckpointComplete` and
/// `notifyCheckpointAborted` messages, as atomics the tasks poll).
#[derive(Debug, Default)]
pub struct Signals {
    /// The id of `trigger`'s barrier, readable without the lock; 0 before the first trigger.
    trigger_id: AtomicU64,
    /// The newest barrier sources must inject.
    trigger: Mutex<Option<CheckpointBarrier>>,
    /// The newest completed checkpoint; 0 for none.
    completed: AtomicU64,
    /// The newest aborted checkpoint; 0 for none.
    aborted: AtomicU64,
    /// The final checkpoint (triggered when every source finished); 0 until then.
    final_checkpoint: AtomicU64,
    /// Source subtasks that finished reading; only grows.
    sources_finished: AtomicUsize,
}

impl Signals {
    /// The newest barrier sources must inject, if it is newer than `injected`. O(1); takes the
    /// lock only when there is one.
    #[inline]
    pub fn trigger_after(&self, injected: CheckpointId) -> Option<CheckpointBarrier> {
        // Acquire pairs with the Release store in `publish_trigger`: that store follows the
        // unlock that wrote barrier `id`, so the lock below comes after it in the mutex's order
        // and reads a barrier at least as new as `id`.
        if self.trigger_id.load(Ordering::Acquire) <= injected {
            return None;
        }
        let barrier = *self.trigger.lock().unwrap_or_else(|p| p.into_inner());
        barrier.filter(|b| b.checkpoint_id > injected)
    }

    /// Whether a barrier newer than `injected` waits to be injected: one load, for a source
    /// to cut its batch short (the barrier goes in between two records, as in Flink).
    #[inline]
    pub(crate) fn has_trigger_after(&self, injected: CheckpointId) -> bool {
        // Acquire, as in `trigger_after`, which reads the barrier next.
        self.trigger_id.load(Ordering::Acquire) > injected
    }

    /// The newest completed checkpoint (0 for none). Never decreases; never an aborted id.
    #[inline]
    pub fn completed(&self) -> CheckpointId {
        // Acquire pairs with the Release store in `publish_completed`.
        self.completed.load(Ordering::Acquire)
    }

    /// The newest aborted checkpoint (0 for none). Never decreases; never a completed id.
    #[inline]
    pub fn aborted(&self) -> CheckpointId {
        // Acquire pairs with the Release store in `publish_aborted`.
        self.aborted.load(Ordering::Acquire)
    }

    /// A source subtask finished reading (and emitted its final watermark).
    pub(crate) fn source_finished(&self) {
        // AcqRel: the coordinator's Acquire load of the count also sees what the source did
        // before it finished (its final watermark is in its channels).
        self.sources_finished.fetch_add(1, Ordering::AcqRel);
    }

    /// Source subtasks that finished reading so far.
    pub(crate) fn sources_finished(&self) -> usize {
        // Acquire pairs with the AcqRel increments in `source_finished`.
        self.sources_finished.load(Ordering::Acquire)
    }

    /// Whether the final checkpoint has completed: finished sources may end.
    pub(crate) fn final_completed(&self) -> bool {
        // Both Acquire. `final_checkpoint` is stored before the final barrier is published and
        // that before its completion, so a completion read here never belongs to a final id
        // not yet visible: at worst `last` is 0 and the sources look again.
        let last = self.final_checkpoint.load(Ordering::Acquire);
        last != 0 && self.completed() >= last
    }

    /// Publishes `barrier` to the sources; `final_checkpoint`: it is the job's last checkpoint.
    /// The coordinator thread only.
    pub(crate) fn publish_trigger(&self, barrier: CheckpointBarrier, final_checkpoint: bool) {
        let id = barrier.checkpoint_id;
        if final_checkpoint {
            // Release: see `final_completed`.
            self.final_checkpoint.store(id, Ordering::Release);
        }
        let mut newest = self.trigger.lock().unwrap_or_else(|p| p.into_inner());
        debug_assert!(
            newest.is_none_or(|b| b.checkpoint_id < id),
            "trigger ids grow"
        );
        *newest = Some(barrier);
        drop(newest);
        // Release, after the unlock: see `trigger_after`.
        self.trigger_id.store(id, Ordering::Release);
    }

    /// Announces that checkpoint `id` completed. The coordinator thread only.
    pub(crate) fn publish_completed(&self, id: CheckpointId) {
        // Relaxed: the coordinator is the only writer, so it reads its own last store.
        debug_assert!(
            self.completed.load(Ordering::Relaxed) < id,
            "completions grow"
        );
        // Release pairs with the Acquire load in `completed`.
        self.completed.store(id, Ordering::Release);
    }

    /// Announces that checkpoint `id` was aborted. The coordinator thread only.
    pub(crate) fn publish_aborted(&self, id: CheckpointId) {
        // Relaxed: the coordinator is the only writer, so it reads its own last store.
        debug_assert!(self.aborted.load(Ordering::Relaxed) < id, "aborts grow");
        // Release pairs with the Acquire load in `aborted`.
        self.aborted.store(id, Ordering::Release);
    }
}
