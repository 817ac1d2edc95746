//! Barrier handling at a task's input (Flink's `CheckpointBarrierHandler`): one type, with
//! the barrier mode as a private flavour.
//!
//! - **Aligned** (exactly once, Flink's `SingleCheckpointBarrierHandler`): a channel that
//!   delivered barrier `n` is blocked in the gate, so nothing it sends after the barrier is
//!   processed before the snapshot; when every open channel has delivered `n`, the task
//!   snapshots, forwards the barrier and every channel is unblocked.
//! - **At least once** (Flink's `CheckpointBarrierTracker`): nothing is blocked; the snapshot
//!   is taken when the last barrier of `n` arrives, so it may include records sent after the
//!   barrier on the faster channels, which a restore then replays a second time.
//!
//! In both, a channel that ends (end of partition) counts as having delivered every barrier
//! still to come. A barrier of a newer checkpoint abandons an older alignment (its checkpoint
//! can no longer complete here), and a barrier of an abandoned, aborted or finished
//! checkpoint is ignored.

use std::time::Instant;

use super::CheckpointId;
use super::config::BarrierMode;
use crate::net::{CheckpointBarrier, InputGate};

/// The barrier handler of one task with `channels` input channels.
#[derive(Debug)]
pub struct BarrierHandler {
    mode: BarrierMode,
    /// Channels that ended: they count as delivered for every barrier.
    finished: Vec<bool>,
    pending: Option<Pending>,
    /// The newest checkpoint this task has snapshotted, abandoned or seen aborted.
    done_up_to: CheckpointId,
}

#[derive(Debug)]
struct Pending {
    barrier: CheckpointBarrier,
    delivered: Vec<bool>,
    first_at: Instant,
}

/// The barrier is complete at this task: snapshot, then forward it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aligned {
    /// The barrier to forward.
    pub barrier: CheckpointBarrier,
    /// From the first to the last barrier of this checkpoint at this task (Flink's
    /// `checkpointAlignmentTime`), ns.
    pub alignment_ns: u64,
}

impl BarrierHandler {
    /// A handler for a gate of `channels` channels.
    pub fn new(mode: BarrierMode, channels: usize) -> Self {
        Self {
            mode,
            finished: vec![false; channels],
            pending: None,
            done_up_to: 0,
        }
    }

    /// The checkpoint being aligned, if any.
    pub fn pending(&self) -> Option<CheckpointId> {
        self.pending.as_ref().map(|p| p.barrier.checkpoint_id)
    }

    /// Barrier `barrier` arrived on `channel`.
    pub fn on_barrier(
        &mut self,
        channel: usize,
        barrier: CheckpointBarrier,
        gate: &mut InputGate,
    ) -> Option<Aligned> {
        let id = barrier.checkpoint_id;
        if id <= self.done_up_to {
            return None;
        }
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.barrier.checkpoint_id < id)
        {
            // A newer checkpoint started: the older one cannot complete here any more.
            self.abandon(gate);
        }
        let channels = self.finished.len();
        let pending = self.pending.get_or_insert_with(|| Pending {
            barrier,
            delivered: vec![false; channels],
            first_at: Instant::now(),
        });
        pending.delivered[channel] = true;
        if self.mode == BarrierMode::Aligned {
            gate.block(channel);
        }
        self.complete_if_aligned(gate)
    }

    /// `channel` ended: it delivers every barrier from now on.
    pub fn on_channel_finished(&mut self, channel: usize, gate: &mut InputGate) -> Option<Aligned> {
        self.finished[channel] = true;
        self.complete_if_aligned(gate)
    }

    /// The coordinator aborted every checkpoint up to `id`: stop aligning for them.
    pub fn on_aborted(&mut self, id: CheckpointId, gate: &mut InputGate) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.barrier.checkpoint_id <= id)
        {
            self.abandon(gate);
        }
        self.done_up_to = self.done_up_to.max(id);
    }

    fn abandon(&mut self, gate: &mut InputGate) {
        if let Some(p) = self.pending.take() {
            self.done_up_to = self.done_up_to.max(p.barrier.checkpoint_id);
        }
        gate.unblock_all();
    }

    fn complete_if_aligned(&mut self, gate: &mut InputGate) -> Option<Aligned> {
        let pending = self.pending.as_ref()?;
        let all = pending
            .delivered
            .iter()
            .zip(&self.finished)
            .all(|(&delivered, &finished)| delivered || finished);
        if !all {
            return None;
        }
        let pending = self.pending.take().expect("checked");
        self.done_up_to = pending.barrier.checkpoint_id;
        gate.unblock_all();
        Some(Aligned {
            barrier: pending.barrier,
            alignment_ns: pending.first_at.elapsed().as_nanos() as u64,
        })
    }
}
