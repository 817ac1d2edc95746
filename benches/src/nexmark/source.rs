//! The Nexmark event source: the `nexmark` crate's events, split into partitions, made by
//! weir's allocation-free [`EventModel`] (the default) or by the crate's own generator
//! ([`Generator`]): the same events either way.
//!
//! Partition `p` of `K` generates the events `p, p + K, p + 2K, ...` below the total, with the
//! generator's own offset and step: the union of the partitions is exactly the generator's
//! sequence, and every partition is in event-time order (the generator's timestamps grow with
//! the event number unless its out-of-order groups are turned on).
//!
//! Resuming is exact and O(1): the generator makes each event from its number alone, so a
//! partition opened at offset `n` (a checkpoint's) starts right at its event `n` and produces
//! the same events as an uninterrupted run from there, with nothing regenerated to skip.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::nexmark::EventGenerator;
use ::nexmark::config::NexmarkConfig;
use serde::Serialize;
use weir_core::error::OperatorError;
use weir_core::source::{PartitionReader, Read, Source};
use weir_core::time::{WatermarkEmit, WatermarkStrategy};

use super::generator::EventModel;
use super::model::Event;

/// Beam's and Flink's Nexmark base time, 2015-07-15T00:00:00Z: a fixed base makes runs
/// repeatable (the crate's default is the wall clock).
pub const BASE_TIME_MS: u64 = 1_436_918_400_000;

/// Events read before a reader publishes its position.
const PUBLISH_EVERY: u64 = 4096;

/// What the generator produces.
#[derive(Debug, Clone, Serialize)]
pub struct EventsConfig {
    /// Events in all, over every partition.
    pub events: u64,
    /// Partitions (like a Kafka topic's).
    pub partitions: usize,
    /// Events per second of event time (the crate's `first_rate` and `next_rate`; its
    /// default is 10 000).
    pub rate: usize,
    /// Event time of the first event, ms.
    pub base_time_ms: u64,
    /// What makes the events.
    pub generator: Generator,
}

/// What makes the Nexmark events: the same events, at different costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// weir's [`EventModel`]: no allocation per event, the strings weir drops never made.
    #[default]
    Weir,
    /// The `nexmark` crate's `EventGenerator`: every field and string of every event, then
    /// converted.
    Crate,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            events: 1_000_000,
            partitions: 4,
            rate: 10_000,
            base_time_ms: BASE_TIME_MS,
            generator: Generator::default(),
        }
    }
}

impl EventsConfig {
    /// The generator's configuration.
    pub fn nexmark(&self) -> NexmarkConfig {
        NexmarkConfig {
            base_time: self.base_time_ms,
            first_rate: self.rate.max(1),
            next_rate: self.rate.max(1),
            ..NexmarkConfig::default()
        }
    }

    /// Events of partition `p`.
    pub fn partition_len(&self, p: usize) -> u64 {
        let (p, k) = (p as u64, self.partitions.max(1) as u64);
        if p >= self.events {
            0
        } else {
            (self.events - p).div_ceil(k)
        }
    }

    /// Every event in generator order, on this thread (reference results), by the
    /// configured [`Generator`].
    pub fn generate_all(&self) -> Result<Vec<Event>, String> {
        match self.generator {
            Generator::Weir => {
                let model = EventModel::new(&self.nexmark())?;
                Ok((0..self.events).map(|n| model.event(n)).collect())
            }
            Generator::Crate => EventGenerator::new(self.nexmark())
                .take(self.events as usize)
                .map(Event::from_crate)
                .collect(),
        }
    }
}

/// The watermark strategy of the Nexmark source: event time is the event's `date_time`, with
/// `out_of_orderness` bound and `emit` as the watermark schedule.
pub fn watermarks(
    out_of_orderness: Duration,
    emit: WatermarkEmit<Event>,
) -> WatermarkStrategy<Event> {
    let mut strategy =
        WatermarkStrategy::bounded_out_of_orderness(out_of_orderness, Event::date_time);
    strategy.emit = emit;
    strategy
}

/// A partition no reader has opened yet.
const UNOPENED: u64 = u64::MAX;

/// Events read so far, per partition: each partition's count is its reader's position,
/// stored (not added) by the one reader of the partition. A reader restored from a checkpoint
/// starts at the checkpoint's offset, so events read again after a restart count once, and a
/// run restored from an earlier run's checkpoint counts that run's events before the offset.
#[derive(Debug)]
pub struct EventsRead {
    /// Per partition: the position, or [`UNOPENED`].
    positions: Box<[AtomicU64]>,
    /// Per partition: its events.
    lens: Box<[u64]>,
}

impl EventsRead {
    fn new(config: &EventsConfig) -> Self {
        let partitions = config.partitions.max(1);
        Self {
            positions: (0..partitions).map(|_| AtomicU64::new(UNOPENED)).collect(),
            lens: (0..partitions).map(|p| config.partition_len(p)).collect(),
        }
    }

    /// Events read over every opened partition (published every few thousand events; exact
    /// once the readers are closed).
    pub fn total(&self) -> u64 {
        self.positions
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .filter(|&p| p != UNOPENED)
            .sum()
    }

    /// Events read once the job has ended. A run restored from a checkpoint does not reopen
    /// the partitions that had ended by then: those count all their events. (Every other
    /// partition is opened when the job starts.)
    pub fn at_end(&self, restored: bool) -> u64 {
        self.positions
            .iter()
            .zip(&self.lens)
            .map(|(p, &len)| match p.load(Ordering::Relaxed) {
                UNOPENED if restored => len,
                UNOPENED => 0,
                position => position,
            })
            .sum()
    }

    fn store(&self, partition: usize, position: u64) {
        debug_assert!(position != UNOPENED);
        if let Some(p) = self.positions.get(partition) {
            p.store(position, Ordering::Relaxed);
        }
    }
}

/// The Nexmark generator as a partitioned, bounded weir source.
#[derive(Debug, Clone)]
pub struct NexmarkSource {
    config: EventsConfig,
    generator: NexmarkConfig,
    /// The model, when [`Generator::Weir`] makes the events.
    model: Option<Arc<EventModel>>,
    read: Arc<EventsRead>,
}

impl NexmarkSource {
    /// A source of `config`'s events; an error if its [`Generator`] cannot make them.
    pub fn new(config: EventsConfig) -> Result<Self, String> {
        let generator = config.nexmark();
        let model = match config.generator {
            Generator::Weir => Some(Arc::new(EventModel::new(&generator)?)),
            Generator::Crate => None,
        };
        let read = Arc::new(EventsRead::new(&config));
        Ok(Self {
            config,
            generator,
            model,
            read,
        })
    }

    /// Events read so far over every partition, counted once over restarts.
    pub fn events_read(&self) -> Arc<EventsRead> {
        Arc::clone(&self.read)
    }
}

impl Source for NexmarkSource {
    type Item = Event;

    fn partitions(&self) -> usize {
        self.config.partitions.max(1)
    }

    fn open(
        &self,
        partition: usize,
        offset: u64,
    ) -> Result<Box<dyn PartitionReader<Event>>, OperatorError> {
        if partition >= self.partitions() {
            return Err(format!("no partition {partition}").into());
        }
        let step = self.partitions() as u64;
        let len = self.config.partition_len(partition);
        if offset > len {
            return Err(format!(
                "partition {partition} has {len} events: it cannot resume at offset {offset} (a checkpoint of another --events or --partitions?)"
            )
            .into());
        }
        // O(1): both generators compute the event of any number directly.
        let start = partition as u64 + offset * step;
        let generator = match &self.model {
            Some(model) => Events::Model {
                model: Arc::clone(model),
                offset: start,
                step,
            },
            None => Events::Crate(Box::new(
                EventGenerator::new(self.generator.clone())
                    .with_offset(start)
                    .with_step(step),
            )),
        };
        self.read.store(partition, offset);
        Ok(Box::new(NexmarkReader {
            generator,
            partition,
            next: offset,
            len,
            read: Arc::clone(&self.read),
            unpublished: 0,
        }))
    }
}

/// A partition's event maker: the crate's offset and step, in either generator.
enum Events {
    Model {
        model: Arc<EventModel>,
        /// The crate generator's offset of the next event.
        offset: u64,
        step: u64,
    },
    /// Boxed: the crate's generator holds its whole configuration.
    Crate(Box<EventGenerator>),
}

impl Events {
    #[inline]
    fn next(&mut self) -> Result<Event, OperatorError> {
        match self {
            Self::Model {
                model,
                offset,
                step,
            } => {
                let event = model.event(*offset);
                *offset += *step;
                Ok(event)
            }
            Self::Crate(generator) => {
                let event = generator.next().ok_or("the Nexmark generator ended")?;
                Ok(Event::from_crate(event)?)
            }
        }
    }
}

struct NexmarkReader {
    generator: Events,
    partition: usize,
    /// Index of the next event within the partition: the offset a checkpoint records.
    next: u64,
    len: u64,
    read: Arc<EventsRead>,
    /// Events read since the position was last published.
    unpublished: u64,
}

impl NexmarkReader {
    fn publish(&mut self) {
        self.unpublished = 0;
        self.read.store(self.partition, self.next);
    }
}

impl PartitionReader<Event> for NexmarkReader {
    #[inline]
    fn next(&mut self) -> Result<Read<Event>, OperatorError> {
        if self.next >= self.len {
            self.publish();
            return Ok(Read::End);
        }
        let event = self.generator.next()?;
        self.next += 1;
        self.unpublished += 1;
        if self.unpublished >= PUBLISH_EVERY {
            self.publish();
        }
        Ok(Read::Record(event))
    }

    fn offset(&self) -> u64 {
        self.next
    }
}

impl Drop for NexmarkReader {
    fn drop(&mut self) {
        self.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_together_are_the_generator_sequence() {
        let config = EventsConfig {
            events: 1003,
            partitions: 4,
            ..EventsConfig::default()
        };
        let source = NexmarkSource::new(config.clone()).unwrap();
        let mut by_index: Vec<Option<Event>> = vec![None; 1003];
        for p in 0..4 {
            let mut reader = source.open(p, 0).unwrap();
            let mut i = p;
            while let Read::Record(e) = reader.next().unwrap() {
                by_index[i] = Some(e);
                i += 4;
            }
            assert_eq!(reader.offset(), config.partition_len(p));
        }
        let all = config.generate_all().unwrap();
        assert_eq!(
            by_index.into_iter().map(Option::unwrap).collect::<Vec<_>>(),
            all
        );
        assert_eq!(source.events_read().total(), 1003);
    }

    #[test]
    fn a_reopened_partition_resumes_at_its_offset() {
        let source = NexmarkSource::new(EventsConfig {
            events: 100,
            partitions: 3,
            ..EventsConfig::default()
        })
        .unwrap();
        let mut whole = source.open(1, 0).unwrap();
        let mut first = Vec::new();
        while let Read::Record(e) = whole.next().unwrap() {
            first.push(e);
        }
        drop(whole);
        let mut resumed = source.open(1, 10).unwrap();
        assert_eq!(source.events_read().total(), 10, "the restored position");
        let mut rest = Vec::new();
        while let Read::Record(e) = resumed.next().unwrap() {
            rest.push(e);
        }
        assert_eq!(rest, first[10..]);
        assert_eq!(resumed.offset(), first.len() as u64);
        drop(resumed);
        assert_eq!(
            source.events_read().total(),
            first.len() as u64,
            "events read again after the restore count once"
        );
        let err = source.open(1, first.len() as u64 + 1).err().unwrap();
        assert!(err.to_string().contains("cannot resume"), "{err}");
        // Partitions 0 and 2 were never opened: ended at the checkpoint of a restored run,
        // nothing read in a run from the start.
        assert_eq!(source.events_read().at_end(false), first.len() as u64);
        assert_eq!(source.events_read().at_end(true), 100);
    }
}
