//! The end of a chain that writes to a sink; sinks also record latency markers.

use hdrhistogram::Histogram;

use super::{Origin, Output};
use crate::checkpoint::{CheckpointId, TaskSnapshot};
use crate::error::TaskError;
use crate::metrics::latency_histogram;
use crate::net::{CheckpointBarrier, Flush, IdleDue};
use crate::runtime::TaskEnv;
use crate::sink::Sink;
use crate::time::{LatencyMarker, Watermark, WatermarkStatus};

/// Runs a user sink at the end of a chain.
pub(crate) struct SinkNode<S> {
    origin: Origin,
    sink: S,
    env: TaskEnv,
    latency_ns: Histogram<u64>,
    /// Whether this sink received a record yet (it tells the job once: the recovery time to
    /// the first output after a restore).
    wrote: bool,
}

impl<S> SinkNode<S> {
    pub(crate) fn new(origin: Origin, sink: S, env: TaskEnv) -> Self {
        Self {
            origin,
            sink,
            env,
            latency_ns: latency_histogram(),
            wrote: false,
        }
    }

    /// Counts `records` about to be written; the first tells the job the sink has output.
    #[inline]
    fn count_written(&mut self, records: usize) {
        self.env.metrics().records_out.add(records as u64);
        if !self.wrote && records > 0 {
            self.wrote = true;
            self.env.control().mark_output();
        }
    }

    /// Writes `records` (the batch's length) inside one `catch_unwind`.
    fn write_all<T>(
        &mut self,
        mut records: impl ExactSizeIterator<Item = T>,
    ) -> Result<(), TaskError>
    where
        S: Sink<T>,
    {
        self.count_written(records.len());
        let sink = &mut self.sink;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            records.try_for_each(|record| sink.write(record))
        }));
        self.guard(outcome)
    }

    fn guard(
        &self,
        outcome: std::thread::Result<Result<(), crate::error::OperatorError>>,
    ) -> Result<(), TaskError> {
        self.origin.settle(outcome, None)
    }
}

impl<T: Send + 'static, S: Sink<T>> Output<T> for SinkNode<S> {
    #[inline]
    fn push(&mut self, record: T) -> Result<(), TaskError> {
        self.count_written(1);
        let sink = &mut self.sink;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.write(record)));
        self.guard(outcome)
    }

    /// The sink writes the whole batch inside one `catch_unwind`.
    fn push_batch(&mut self, records: &mut Vec<T>) -> Result<(), TaskError> {
        let result = self.write_all(records.drain(..));
        records.clear();
        result
    }

    /// The sink takes a clone of each record (it owns what it writes), all inside one
    /// `catch_unwind`.
    fn push_shared(&mut self, records: &[T]) -> Result<(), TaskError>
    where
        T: Clone,
    {
        self.write_all(records.iter().cloned())
    }

    fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError> {
        self.env.metrics().output_watermark.set(watermark.0);
        Ok(())
    }

    fn status(&mut self, _status: WatermarkStatus) -> Result<(), TaskError> {
        Ok(())
    }

    fn latency_marker(&mut self, marker: LatencyMarker) -> Result<(), TaskError> {
        let now = self.env.control().now_ns();
        self.latency_ns
            .saturating_record(now.saturating_sub(marker.emitted_ns).max(1));
        Ok(())
    }

    fn flush(&mut self, _: Flush) -> Result<IdleDue, TaskError> {
        Ok(None)
    }

    fn end_of_input(&mut self) -> Result<(), TaskError> {
        let sink = &mut self.sink;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.finish()));
        self.guard(outcome)?;
        self.env.control().merge_latency(&self.latency_ns);
        Ok(())
    }

    /// A sink's output is transactional through the writers it registered (see
    /// [`crate::checkpoint::register_transaction`]): the task pre-commits them after the
    /// chain has seen the barrier.
    fn barrier(
        &mut self,
        _barrier: CheckpointBarrier,
        _snapshot: &mut TaskSnapshot,
    ) -> Result<(), TaskError> {
        Ok(())
    }

    fn checkpoint_complete(&mut self, _checkpoint: CheckpointId) -> Result<(), TaskError> {
        Ok(())
    }
}
