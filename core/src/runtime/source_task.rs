//! The loop of a source subtask: read owned partitions round robin, push records down the
//! chain, keep the processing-time duties, end with the final watermark and end of input.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::TaskBody;
use super::control::TaskEnv;
use super::ticker::Ticker;
use crate::error::{JobError, OperatorError, TaskError};
use crate::operator::Output;
use crate::source::{PartitionReader, Read, Source, owned_partitions};
use crate::time::{LatencyMarker, Watermark};

/// Records read from one partition before the loop turns to the next.
pub(crate) const SOURCE_BATCH: usize = 256;

/// How long a source with only pending partitions sleeps before polling again.
const PENDING_SLEEP: Duration = Duration::from_millis(1);

/// A source subtask.
pub(crate) struct SourceTask<T> {
    env: TaskEnv,
    name: String,
    source: Arc<dyn Source<Item = T>>,
    parallelism: usize,
    chain: Box<dyn Output<T>>,
    ticker: Ticker,
}

impl<T: Send + 'static> SourceTask<T> {
    pub(crate) fn new(
        env: TaskEnv,
        name: String,
        source: Arc<dyn Source<Item = T>>,
        parallelism: usize,
        chain: Box<dyn Output<T>>,
        ticker: Ticker,
    ) -> Self {
        Self {
            env,
            name,
            source,
            parallelism,
            chain,
            ticker,
        }
    }

    fn source_error(&self, error: OperatorError) -> TaskError {
        TaskError::Failed(JobError::Operator {
            operator: self.name.clone(),
            subtask: self.env.subtask(),
            message: error.to_string(),
        })
    }

    fn open_readers(&self) -> Result<Vec<Box<dyn PartitionReader<T>>>, TaskError> {
        owned_partitions(
            self.source.partitions(),
            self.env.subtask(),
            self.parallelism,
        )
        .into_iter()
        .map(|p| self.source.open(p, 0).map_err(|e| self.source_error(e)))
        .collect()
    }

    fn tick(&mut self, now: Instant) -> Result<(), TaskError> {
        let due = self.ticker.due(now);
        if due.latency_marker {
            self.chain.latency_marker(LatencyMarker {
                emitted_ns: self.env.control().now_ns(),
                source_subtask: self.env.subtask() as u32,
            })?;
        }
        if due.flush {
            self.chain.flush()?;
        }
        if due.sample {
            self.env.sample_pools(0);
        }
        Ok(())
    }
}

impl<T: Send + 'static> TaskBody for SourceTask<T> {
    fn run(mut self: Box<Self>) -> Result<(), TaskError> {
        let mut readers = self.open_readers()?;
        let metrics = Arc::clone(self.env.metrics());
        while !readers.is_empty() {
            self.env.check_cancelled()?;
            if self.env.control().stop_requested() {
                break;
            }
            let mut read = 0u64;
            let mut i = 0;
            while i < readers.len() {
                let mut ended = false;
                for _ in 0..SOURCE_BATCH {
                    match readers[i].next().map_err(|e| self.source_error(e))? {
                        Read::Record(record) => {
                            read += 1;
                            self.chain.push(record)?;
                        }
                        Read::Pending => break,
                        Read::End => {
                            ended = true;
                            break;
                        }
                    }
                }
                if ended {
                    readers.swap_remove(i);
                } else {
                    i += 1;
                }
            }
            metrics.records_in.add(read);
            let now = Instant::now();
            self.tick(now)?;
            if read == 0 && !readers.is_empty() {
                let sleep = PENDING_SLEEP.min(self.ticker.sleep_budget(now));
                std::thread::sleep(sleep);
                metrics.idle_ns.add(now.elapsed().as_nanos() as u64);
            }
        }
        self.chain.watermark(Watermark::MAX)?;
        self.chain.end_of_input()
    }
}
