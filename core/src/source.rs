//! Sources, partitioned like Kafka topics (Flink's `Source` with its splits).
//!
//! A source has a fixed number of partitions, each read from an offset that a checkpoint can
//! record. Source subtask `i` of `p` reads the partitions `q` with `q % p == i`; a subtask may
//! own none, and then it finishes at once without holding anything back.

use std::time::Instant;

use crate::error::OperatorError;

/// What a partition reader returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<T> {
    /// The next record.
    Record(T),
    /// Nothing available now; more may come (an unbounded partition).
    Pending,
    /// The partition is exhausted (a bounded partition).
    End,
}

/// A partitioned source.
pub trait Source: Send + Sync + 'static {
    /// The records it produces.
    type Item: Send + 'static;

    /// Number of partitions.
    fn partitions(&self) -> usize;

    /// Opens `partition` positioned at `offset` (0 is the beginning).
    fn open(
        &self,
        partition: usize,
        offset: u64,
    ) -> Result<Box<dyn PartitionReader<Self::Item>>, OperatorError>;

    /// Reopens `partition` at a checkpointed `offset`, with the reader's `state` taken with it
    /// ([`PartitionReader::state`]). By default the state is ignored and the partition opened.
    fn restore(
        &self,
        partition: usize,
        offset: u64,
        state: &[u8],
    ) -> Result<Box<dyn PartitionReader<Self::Item>>, OperatorError> {
        let _ = state;
        self.open(partition, offset)
    }

    /// `partition` had ended when the checkpoint restored from was taken: it is not reopened,
    /// and this hands the source its reader's last `state` (to restore what the source counts,
    /// say). Nothing by default.
    fn restore_ended(&self, partition: usize, state: &[u8]) -> Result<(), OperatorError> {
        let _ = (partition, state);
        Ok(())
    }
}

/// Why [`PartitionReader::next_batch`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchEnd {
    /// It read as many records as it was asked for.
    Full,
    /// No record is ready now ([`Read::Pending`]).
    Pending,
    /// The partition is exhausted ([`Read::End`]).
    End,
}

/// Appends what up to `max` calls of `next` give to `out`, stopping at the first `Pending` or
/// `End`: [`PartitionReader::next_batch`] from a `next` (the default's loop, for a reader
/// that overrides `next_batch` to do something once per batch around it).
#[inline(always)]
pub fn read_batch<T>(
    out: &mut Vec<T>,
    max: usize,
    mut next: impl FnMut() -> Result<Read<T>, OperatorError>,
) -> Result<BatchEnd, OperatorError> {
    for _ in 0..max {
        match next()? {
            Read::Record(record) => out.push(record),
            Read::Pending => return Ok(BatchEnd::Pending),
            Read::End => return Ok(BatchEnd::End),
        }
    }
    Ok(BatchEnd::Full)
}

/// Reads one partition.
pub trait PartitionReader<T>: Send {
    /// The next record, `Pending` or `End`. An error fails the job with the source's name.
    fn next(&mut self) -> Result<Read<T>, OperatorError>;

    /// Appends up to `max` records to `out`, in order, and says why it stopped: exactly what
    /// [`next`](Self::next) called up to `max` times would give, stopping at the first
    /// `Pending` or `End`; after an error, `out` holds the records read before it. The source
    /// task calls it where it needs no record-by-record position: one call per batch instead
    /// of one per record. The default calls `next` in a loop, statically: a reader whose
    /// `next` is marked `#[inline]` (or `#[inline(always)]`) gets it inlined there, so that a
    /// record goes from where it is made straight into `out`.
    fn next_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<BatchEnd, OperatorError> {
        read_batch(out, max, || self.next())
    }

    /// After a read that found nothing (`Pending`): the earliest instant a read can find a
    /// record, where the reader knows it (a reader paced to a rate knows when its next records
    /// are due). When every reader found nothing, the source task polls again at the earliest
    /// of their instants if that comes before the end of its usual pause (1 ms), so that
    /// records are read as they become due, not in a burst after the pause. `None` (the
    /// default): not known.
    fn pending_until(&self) -> Option<Instant> {
        None
    }

    /// The position after the last record returned; reopening at it resumes there.
    fn offset(&self) -> u64;

    /// What the reader keeps besides its offset (its counters, say), written into every
    /// checkpoint beside the offset and handed back to [`Source::restore`]. It describes the
    /// reader at its current [`offset`](Self::offset), which may be past the offset the
    /// checkpoint resumes from (records the timestamp guard still held are read again): a
    /// reader whose reading has effects must recognise those records. Empty by default.
    fn state(&self) -> Vec<u8> {
        Vec::new()
    }
}

/// The partitions a source subtask owns.
pub fn owned_partitions(partitions: usize, subtask: usize, parallelism: usize) -> Vec<usize> {
    (0..partitions)
        .filter(|p| p % parallelism == subtask)
        .collect()
}

/// A bounded source over in-memory partitions (tests and examples).
#[derive(Debug, Clone)]
pub struct VecSource<T> {
    partitions: Vec<Vec<T>>,
}

impl<T: Clone + Send + Sync + 'static> VecSource<T> {
    /// One partition per inner vector.
    pub fn new(partitions: Vec<Vec<T>>) -> Self {
        Self { partitions }
    }
}

impl<T: Clone + Send + Sync + 'static> Source for VecSource<T> {
    type Item = T;

    fn partitions(&self) -> usize {
        self.partitions.len()
    }

    fn open(
        &self,
        partition: usize,
        offset: u64,
    ) -> Result<Box<dyn PartitionReader<T>>, OperatorError> {
        let records = self
            .partitions
            .get(partition)
            .ok_or_else(|| format!("no partition {partition}"))?
            .clone();
        Ok(Box::new(VecReader {
            records,
            next: offset as usize,
        }))
    }
}

struct VecReader<T> {
    records: Vec<T>,
    next: usize,
}

impl<T: Clone + Send> PartitionReader<T> for VecReader<T> {
    fn next(&mut self) -> Result<Read<T>, OperatorError> {
        Ok(match self.records.get(self.next) {
            Some(r) => {
                self.next += 1;
                Read::Record(r.clone())
            }
            None => Read::End,
        })
    }

    fn offset(&self) -> u64 {
        self.next as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_dealt_round_robin_and_a_subtask_may_own_none() {
        assert_eq!(owned_partitions(3, 0, 2), vec![0, 2]);
        assert_eq!(owned_partitions(3, 1, 2), vec![1]);
        assert!(owned_partitions(2, 3, 4).is_empty());
    }

    #[test]
    fn a_batch_read_stops_at_its_size_at_pending_and_at_the_end() {
        let mut reader = VecSource::new(vec![vec![1, 2, 3, 4, 5]])
            .open(0, 0)
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(reader.next_batch(&mut out, 2).unwrap(), BatchEnd::Full);
        assert_eq!((out.as_slice(), reader.offset()), ([1, 2].as_slice(), 2));
        assert_eq!(reader.next_batch(&mut out, 10).unwrap(), BatchEnd::End);
        assert_eq!(out, [1, 2, 3, 4, 5]);

        // Pending after two records, then an error: the records before it stay.
        let mut steps = vec![
            Err(OperatorError::from("broken")),
            Ok(Read::Pending),
            Ok(Read::Record(7)),
            Ok(Read::Record(6)),
        ];
        let mut out = Vec::new();
        let mut next = || steps.pop().expect("read past the steps");
        assert_eq!(
            read_batch(&mut out, 10, &mut next).unwrap(),
            BatchEnd::Pending
        );
        assert_eq!(out, [6, 7]);
        assert!(read_batch(&mut out, 10, &mut next).is_err());
        assert_eq!(out, [6, 7]);
    }
}
