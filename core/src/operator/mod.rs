//! Operators and operator chains (Flink's `StreamOperator`, `Output` and operator chaining).
//!
//! A task runs a chain: its head (a source or an input gate) pushes each element into the first
//! operator's [`Output`], each operator pushes its results into the next, and the chain ends in
//! a record writer (a network exchange) or a sink. Chained operators call each other directly:
//! no serialization, no queue.
//!
//! Failures are attributed: an operator that returns an error or panics fails the job with its
//! own name and subtask index, never with a downstream operator's.

mod basic;
mod keyed_process;
mod network;
mod sink_node;
mod tee;
#[cfg(test)]
pub(crate) mod testing;

pub use crate::state::KeyedState;
pub use basic::{Filter, FlatMap, Map};
pub(crate) use keyed_process::layout_of;
pub use keyed_process::{KeyedProcess, KeyedProcessFunction};
pub(crate) use network::NetworkOutput;
pub(crate) use sink_node::SinkNode;
pub(crate) use tee::Tee;

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::checkpoint::{CheckpointId, RestoreContext, SnapshotContext, TaskSnapshot};
use crate::error::{JobError, OperatorError, TaskError};
use crate::net::CheckpointBarrier;
use crate::time::{LatencyMarker, Watermark, WatermarkStatus};

/// Where a chain link pushes its elements: the next operator, a writer or a sink.
pub trait Output<T>: Send {
    /// A record.
    fn push(&mut self, record: T) -> Result<(), TaskError>;
    /// The input watermark advanced.
    fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError>;
    /// The input became idle or active.
    fn status(&mut self, status: WatermarkStatus) -> Result<(), TaskError>;
    /// A latency marker passes through (operators do not see it).
    fn latency_marker(&mut self, marker: LatencyMarker) -> Result<(), TaskError>;
    /// The buffer timeout expired: send partly filled buffers.
    fn flush(&mut self) -> Result<(), TaskError>;
    /// The input ended: emit what is pending, then end the output.
    fn end_of_input(&mut self) -> Result<(), TaskError>;
    /// Checkpoint barrier: every record sent before it has been pushed; each link adds its
    /// state to `snapshot`, and the chain's ends forward the barrier (writers) or take note
    /// (sinks).
    fn barrier(
        &mut self,
        barrier: CheckpointBarrier,
        snapshot: &mut TaskSnapshot,
    ) -> Result<(), TaskError>;
    /// Checkpoint `checkpoint` (and every one before it) completed.
    fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError>;
}

/// Collects an operator's results and passes them down the chain.
///
/// A failure further down is kept here and reported after the operator returns, so the user's
/// code never has to handle (or could misattribute) another operator's error.
#[derive(Debug)]
pub struct Collector<'a, T> {
    next: &'a mut dyn Output<T>,
    error: Option<TaskError>,
}

impl<T> std::fmt::Debug for dyn Output<T> + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output")
    }
}

impl<'a, T> Collector<'a, T> {
    pub(crate) fn new(next: &'a mut dyn Output<T>) -> Self {
        Self { next, error: None }
    }

    /// Emits a record downstream. After a downstream failure, further records are discarded
    /// and the failure ends the task when the operator returns.
    #[inline]
    pub fn collect(&mut self, record: T) {
        if self.error.is_none()
            && let Err(e) = self.next.push(record)
        {
            self.error = Some(e);
        }
    }

    pub(crate) fn into_error(self) -> Option<TaskError> {
        self.error
    }
}

/// What an operator learns about its place when it opens (Flink's `RuntimeContext`).
#[derive(Debug, Clone)]
pub struct OperatorContext {
    /// The subtask index.
    pub subtask: usize,
    /// The task's metrics (for example `late_records_dropped`).
    pub metrics: Arc<crate::metrics::TaskMetrics>,
    /// The operator's stable id (Flink's uid): its state is found by it after a restore.
    pub uid: Arc<str>,
    /// The operator's parallelism.
    pub parallelism: usize,
    /// The key groups this subtask owns (meaningful behind a keyed exchange).
    pub key_groups: std::ops::Range<usize>,
    /// The number of key groups.
    pub max_parallelism: usize,
    /// The operator's state in the checkpoint this attempt restores from.
    pub restore: Option<RestoreContext>,
    /// The job's keyed-state backend: keyed operators make their tables with it
    /// ([`KeyedTable::with_backend`](crate::state::KeyedTable::with_backend)).
    pub state_backend: crate::state::StateBackendRef,
}

impl OperatorContext {
    /// The context of subtask `subtask` of an operator that restores nothing (tests, and
    /// operators built outside a job).
    pub fn new(subtask: usize, metrics: Arc<crate::metrics::TaskMetrics>) -> Self {
        Self {
            subtask,
            metrics,
            uid: Arc::from(""),
            parallelism: subtask + 1,
            key_groups: 0..crate::keyed::DEFAULT_MAX_PARALLELISM,
            max_parallelism: crate::keyed::DEFAULT_MAX_PARALLELISM,
            restore: None,
            state_backend: crate::state::heap(),
        }
    }
}

/// A user operator: one required method, hooks with sensible defaults.
pub trait Operator<In, Out>: Send + 'static {
    /// Called once per subtask before the first record; an error fails the job.
    fn open(&mut self, _context: &OperatorContext) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Processes one record.
    fn process(&mut self, record: In, out: &mut Collector<'_, Out>) -> Result<(), OperatorError>;

    /// The watermark advanced; the runtime forwards it downstream after this returns.
    fn on_watermark(
        &mut self,
        _watermark: Watermark,
        _out: &mut Collector<'_, Out>,
    ) -> Result<(), OperatorError> {
        Ok(())
    }

    /// The input ended; emit what is still pending.
    fn on_end_of_input(&mut self, _out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// A checkpoint barrier: write the operator's state (non-keyed bytes now; keyed state as a
    /// copy-on-write view serialized later). Stateless operators keep the default. State must
    /// be restored in [`Operator::open`] from [`OperatorContext::restore`].
    fn snapshot_state(&mut self, _ctx: &mut SnapshotContext<'_>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Checkpoint `checkpoint` completed (Flink's `notifyCheckpointComplete`); notifications
    /// may skip ids.
    fn notify_checkpoint_complete(
        &mut self,
        _checkpoint: CheckpointId,
    ) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// Who a failure belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) name: Arc<str>,
    pub(crate) subtask: usize,
    /// The operator's uid (its state's name in checkpoints).
    pub(crate) uid: Arc<str>,
}

impl Origin {
    /// Turns the outcome of a user call into the chain's result, attributing errors and panics
    /// to this operator and preferring a downstream failure that happened inside the call.
    #[inline]
    pub(crate) fn settle(
        &self,
        outcome: std::thread::Result<Result<(), OperatorError>>,
        downstream: Option<TaskError>,
    ) -> Result<(), TaskError> {
        if let Some(error) = downstream {
            return Err(error);
        }
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.failed(error)),
            Err(panic) => Err(self.panicked(panic.as_ref())),
        }
    }

    #[cold]
    fn failed(&self, error: OperatorError) -> TaskError {
        TaskError::Failed(JobError::Operator {
            operator: self.name.to_string(),
            subtask: self.subtask,
            message: error.to_string(),
        })
    }

    #[cold]
    fn panicked(&self, panic: &(dyn Any + Send)) -> TaskError {
        TaskError::Failed(JobError::Panic {
            operator: self.name.to_string(),
            subtask: self.subtask,
            message: panic_message(panic),
        })
    }

    /// Runs a user call with its panics caught and its errors attributed.
    #[inline]
    pub(crate) fn call<T>(
        &self,
        next: &mut dyn Output<T>,
        f: impl FnOnce(&mut Collector<'_, T>) -> Result<(), OperatorError>,
    ) -> Result<(), TaskError> {
        let mut out = Collector::new(next);
        let outcome = catch_unwind(AssertUnwindSafe(|| f(&mut out)));
        self.settle(outcome, out.into_error())
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// One operator in a chain, with the rest of the chain behind it.
pub(crate) struct OperatorNode<In, Out, Op> {
    origin: Origin,
    key_groups: std::ops::Range<usize>,
    op: Op,
    next: Box<dyn Output<Out>>,
    _in: PhantomData<fn(In)>,
}

impl<In, Out, Op> OperatorNode<In, Out, Op> {
    pub(crate) fn new(
        origin: Origin,
        key_groups: std::ops::Range<usize>,
        op: Op,
        next: Box<dyn Output<Out>>,
    ) -> Self {
        Self {
            origin,
            key_groups,
            op,
            next,
            _in: PhantomData,
        }
    }
}

impl<In, Out, Op> Output<In> for OperatorNode<In, Out, Op>
where
    In: Send + 'static,
    Out: Send + 'static,
    Op: Operator<In, Out>,
{
    #[inline]
    fn push(&mut self, record: In) -> Result<(), TaskError> {
        let op = &mut self.op;
        self.origin
            .call(&mut *self.next, |out| op.process(record, out))
    }

    fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError> {
        let op = &mut self.op;
        self.origin
            .call(&mut *self.next, |out| op.on_watermark(watermark, out))?;
        self.next.watermark(watermark)
    }

    fn status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        self.next.status(status)
    }

    fn latency_marker(&mut self, marker: LatencyMarker) -> Result<(), TaskError> {
        self.next.latency_marker(marker)
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        self.next.flush()
    }

    fn end_of_input(&mut self) -> Result<(), TaskError> {
        let op = &mut self.op;
        self.origin
            .call(&mut *self.next, |out| op.on_end_of_input(out))?;
        self.next.end_of_input()
    }

    fn barrier(
        &mut self,
        barrier: CheckpointBarrier,
        snapshot: &mut TaskSnapshot,
    ) -> Result<(), TaskError> {
        let op = &mut self.op;
        let mut ctx = snapshot.operator(&self.origin.uid, self.key_groups.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| op.snapshot_state(&mut ctx)));
        snapshot.drop_empty_operator();
        self.origin.settle(outcome, None)?;
        self.next.barrier(barrier, snapshot)
    }

    fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        let op = &mut self.op;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            op.notify_checkpoint_complete(checkpoint)
        }));
        self.origin.settle(outcome, None)?;
        self.next.checkpoint_complete(checkpoint)
    }
}
