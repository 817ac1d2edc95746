//! The end of a chain that feeds a network exchange: a [`RecordWriter`] as an [`Output`].

use super::Output;
use crate::checkpoint::{CheckpointId, TaskSnapshot};
use crate::codec::Codec;
use crate::error::TaskError;
use crate::metrics::TaskMetrics;
use crate::net::{CheckpointBarrier, ControlElement, Event, Flush, IdleDue, RecordWriter};
use crate::time::{LatencyMarker, Watermark, WatermarkStatus};
use std::sync::Arc;

/// Writes the chain's output into the channels of an exchange.
#[derive(Debug)]
pub(crate) struct NetworkOutput<T> {
    writer: RecordWriter<T>,
    metrics: Arc<TaskMetrics>,
}

impl<T: Codec> NetworkOutput<T> {
    pub(crate) fn new(writer: RecordWriter<T>, metrics: Arc<TaskMetrics>) -> Self {
        Self { writer, metrics }
    }

    #[inline]
    fn emit_all(&mut self, records: &[T]) -> Result<(), TaskError> {
        self.metrics.records_out.add(records.len() as u64);
        self.writer.emit_all(records)
    }
}

impl<T: Codec> Output<T> for NetworkOutput<T> {
    #[inline]
    fn push(&mut self, record: T) -> Result<(), TaskError> {
        self.metrics.records_out.add(1);
        self.writer.emit(&record)
    }

    fn push_batch(&mut self, records: &mut Vec<T>) -> Result<(), TaskError> {
        let result = self.emit_all(records);
        records.clear();
        result
    }

    /// Encoding only reads the records: none is copied.
    fn push_shared(&mut self, records: &[T]) -> Result<(), TaskError> {
        self.emit_all(records)
    }

    fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError> {
        self.metrics.output_watermark.set(watermark.0);
        self.metrics.watermarks_emitted.add(1);
        self.writer
            .emit_control(ControlElement::Watermark(watermark))
    }

    fn status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        self.writer.emit_control(ControlElement::Status(status))
    }

    fn latency_marker(&mut self, marker: LatencyMarker) -> Result<(), TaskError> {
        self.writer
            .emit_control(ControlElement::LatencyMarker(marker))
    }

    fn flush(&mut self, why: Flush) -> Result<IdleDue, TaskError> {
        self.writer.flush_all(why)
    }

    fn end_of_input(&mut self) -> Result<(), TaskError> {
        self.writer.finish()
    }

    fn barrier(
        &mut self,
        barrier: CheckpointBarrier,
        snapshot: &mut TaskSnapshot,
    ) -> Result<(), TaskError> {
        if barrier.unaligned {
            self.writer.send_priority_barrier(barrier, snapshot)
        } else {
            self.writer.send_event(Event::Barrier(barrier))
        }
    }

    fn checkpoint_complete(&mut self, _checkpoint: CheckpointId) -> Result<(), TaskError> {
        Ok(())
    }
}
