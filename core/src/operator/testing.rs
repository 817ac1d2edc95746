//! Test harness for one operator outside a job: an output that keeps what it gets, a snapshot
//! taken as the runtime takes it at a barrier, and the restore context a new subtask would get
//! from a set of old subtasks' snapshots (as the runtime's restore source builds it).

use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::{Collector, Operator, OperatorContext, Output};
use crate::checkpoint::{CheckpointId, OperatorSnapshot, RestoreContext, TaskSnapshot};
use crate::error::TaskError;
use crate::keyed::{DEFAULT_MAX_PARALLELISM, KeyGroups};
use crate::metrics::TaskMetrics;
use crate::net::{CheckpointBarrier, Flush, IdleDue};
use crate::time::{LatencyMarker, Watermark, WatermarkStatus};

/// Keeps the records pushed into it.
pub(crate) struct VecOutput<T>(pub(crate) Vec<T>);

impl<T> VecOutput<T> {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }

    /// A collector into this output.
    pub(crate) fn collector(&mut self) -> Collector<'_, T>
    where
        T: Send,
    {
        Collector::new(self)
    }
}

impl<T: Send> Output<T> for VecOutput<T> {
    fn push(&mut self, record: T) -> Result<(), TaskError> {
        self.0.push(record);
        Ok(())
    }
    fn watermark(&mut self, _: Watermark) -> Result<(), TaskError> {
        Ok(())
    }
    fn status(&mut self, _: WatermarkStatus) -> Result<(), TaskError> {
        Ok(())
    }
    fn latency_marker(&mut self, _: LatencyMarker) -> Result<(), TaskError> {
        Ok(())
    }
    fn flush(&mut self, _: Flush) -> Result<IdleDue, TaskError> {
        Ok(None)
    }
    fn end_of_input(&mut self) -> Result<(), TaskError> {
        Ok(())
    }
    fn barrier(&mut self, _: CheckpointBarrier, _: &mut TaskSnapshot) -> Result<(), TaskError> {
        Ok(())
    }
    fn checkpoint_complete(&mut self, _: CheckpointId) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Keeps the records pushed into it where the test still reads them once the output belongs
/// to a chain (an operator node owns its next link).
pub(crate) struct SharedOutput<T>(pub(crate) Arc<Mutex<VecOutput<T>>>);

impl<T: Send> Output<T> for SharedOutput<T> {
    fn push(&mut self, record: T) -> Result<(), TaskError> {
        self.0.lock().expect("output").push(record)
    }
    fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError> {
        self.0.lock().expect("output").watermark(watermark)
    }
    fn status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        self.0.lock().expect("output").status(status)
    }
    fn latency_marker(&mut self, marker: LatencyMarker) -> Result<(), TaskError> {
        self.0.lock().expect("output").latency_marker(marker)
    }
    fn flush(&mut self, why: Flush) -> Result<IdleDue, TaskError> {
        self.0.lock().expect("output").flush(why)
    }
    fn end_of_input(&mut self) -> Result<(), TaskError> {
        self.0.lock().expect("output").end_of_input()
    }
    fn barrier(&mut self, b: CheckpointBarrier, s: &mut TaskSnapshot) -> Result<(), TaskError> {
        self.0.lock().expect("output").barrier(b, s)
    }
    fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        self.0
            .lock()
            .expect("output")
            .checkpoint_complete(checkpoint)
    }
}

/// The context of subtask `subtask` of `parallelism`, with the default key groups, restoring
/// `restore`.
pub(crate) fn context(
    subtask: usize,
    parallelism: usize,
    restore: Option<RestoreContext>,
) -> OperatorContext {
    let layout = KeyGroups::new(DEFAULT_MAX_PARALLELISM, parallelism).expect("valid layout");
    OperatorContext {
        subtask,
        metrics: Arc::new(TaskMetrics::default()),
        uid: Arc::from("op"),
        parallelism,
        key_groups: layout.range_of(subtask),
        max_parallelism: DEFAULT_MAX_PARALLELISM,
        restore,
        state_backend: crate::state::heap(),
        firing_budget: None,
    }
}

/// What `op` (opened with `context`) writes at a barrier, serialized.
pub(crate) fn snapshot<In, Out>(
    op: &mut impl Operator<In, Out>,
    context: &OperatorContext,
) -> OperatorSnapshot {
    let mut task = TaskSnapshot::new(1, std::path::PathBuf::new());
    let mut ctx = task.operator(&context.uid, context.key_groups.clone());
    op.snapshot_state(&mut ctx).expect("snapshot");
    let part = task.operators.pop().expect("the operator's part");
    part.finish(context.subtask, context.parallelism)
        .expect("the keyed state is written")
}

/// The restore context of a subtask owning `key_groups`, from every old subtask's snapshot.
pub(crate) fn restore_from(
    snapshots: &[OperatorSnapshot],
    key_groups: Range<usize>,
) -> RestoreContext {
    let mut context = RestoreContext {
        checkpoint: 1,
        old_parallelism: snapshots.len(),
        operator_states: Vec::new(),
        keyed: Vec::new(),
    };
    for snapshot in snapshots {
        context
            .operator_states
            .push(snapshot.operator_state.clone());
        for (group, blob) in snapshot.key_groups.clone().zip(&snapshot.keyed) {
            if key_groups.contains(&group) {
                context.keyed.push((group, blob.clone()));
            }
        }
    }
    context.keyed.sort_by_key(|(g, _)| *g);
    context
}
