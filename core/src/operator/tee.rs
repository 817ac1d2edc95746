//! The fan-out of a split stream: everything goes down both chains, in the same order.

use super::Output;
use crate::checkpoint::{CheckpointId, TaskSnapshot};
use crate::error::TaskError;
use crate::net::{CheckpointBarrier, Flush, IdleDue, earliest};
use crate::time::{LatencyMarker, Watermark, WatermarkStatus};

/// Sends every element to two chains.
pub(crate) struct Tee<T> {
    first: Box<dyn Output<T>>,
    second: Box<dyn Output<T>>,
}

impl<T> Tee<T> {
    pub(crate) fn new(first: Box<dyn Output<T>>, second: Box<dyn Output<T>>) -> Self {
        Self { first, second }
    }
}

impl<T: Clone + Send + 'static> Output<T> for Tee<T> {
    #[inline]
    fn push(&mut self, record: T) -> Result<(), TaskError> {
        self.first.push(record.clone())?;
        self.second.push(record)
    }

    /// The first chain reads the batch ([`Output::push_shared`]: a chain that only reads its
    /// records copies none), then the second chain gets the batch itself.
    fn push_batch(&mut self, records: &mut Vec<T>) -> Result<(), TaskError> {
        if let Err(error) = self.first.push_shared(records) {
            records.clear();
            return Err(error);
        }
        self.second.push_batch(records)
    }

    /// A split of a split's first branch: both chains read the batch.
    fn push_shared(&mut self, records: &[T]) -> Result<(), TaskError> {
        self.first.push_shared(records)?;
        self.second.push_shared(records)
    }

    fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError> {
        self.first.watermark(watermark)?;
        self.second.watermark(watermark)
    }

    fn status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        self.first.status(status)?;
        self.second.status(status)
    }

    fn latency_marker(&mut self, marker: LatencyMarker) -> Result<(), TaskError> {
        self.first.latency_marker(marker)?;
        self.second.latency_marker(marker)
    }

    fn flush(&mut self, why: Flush) -> Result<IdleDue, TaskError> {
        let first = self.first.flush(why)?;
        Ok(earliest(first, self.second.flush(why)?))
    }

    fn end_of_input(&mut self) -> Result<(), TaskError> {
        self.first.end_of_input()?;
        self.second.end_of_input()
    }

    fn barrier(
        &mut self,
        barrier: CheckpointBarrier,
        snapshot: &mut TaskSnapshot,
    ) -> Result<(), TaskError> {
        self.first.barrier(barrier, snapshot)?;
        self.second.barrier(barrier, snapshot)
    }

    fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        self.first.checkpoint_complete(checkpoint)?;
        self.second.checkpoint_complete(checkpoint)
    }

    /// Both chains take a turn.
    fn resume(&mut self) -> Result<bool, TaskError> {
        let first = self.first.resume()?;
        Ok(self.second.resume()? || first)
    }
}
