//! End-to-end behaviour of the runtime: nothing lost across exchanges, failures attributed and
//! never hanging, bounded memory under a slow sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_core::error::OperatorError;
use weir_core::net::PoolConfig;
use weir_core::operator::KeyedState;
use weir_core::runtime::TaskThreads;
use weir_core::sink::{CollectSink, Sink};
use weir_core::source::VecSource;
use weir_core::{Job, JobError, RuntimeConfig};

fn config() -> RuntimeConfig {
    RuntimeConfig {
        pin: false,
        ..RuntimeConfig::default()
    }
}

/// Both thread plans: a thread per subtask, a thread per task slot.
const THREADS: [TaskThreads; 2] = [TaskThreads::PerSubtask, TaskThreads::PerSlot];

fn config_on(threads: TaskThreads) -> RuntimeConfig {
    RuntimeConfig {
        threads,
        ..config()
    }
}

fn partitions(n: usize, per: u64) -> Vec<Vec<u64>> {
    (0..n as u64)
        .map(|p| (0..per).map(|i| p * 1_000_000 + i).collect())
        .collect()
}

/// Counts per key through a keyed exchange, at several parallelisms.
fn keyed_counts(
    source_par: usize,
    keyed_par: usize,
    parts: usize,
    threads: TaskThreads,
) -> Vec<(u64, u64)> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let target = Arc::clone(&out);
    let job = Job::new(config_on(threads));
    job.source(
        "numbers",
        source_par,
        VecSource::new(partitions(parts, 5_000)),
    )
    .key_by(|x: &u64| x % 97)
    .process_fn(
        "count",
        keyed_par,
        |key: &u64, count: &mut KeyedState<u64, u64>, _x: u64, out| {
            let count = count.update(|count| {
                *count += 1;
                *count
            });
            out.collect((*key, count));
            Ok(())
        },
    )
    .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    job.execute().expect("job runs");
    let mut finals = std::collections::BTreeMap::new();
    for (key, count) in out.lock().unwrap().iter() {
        let c = finals.entry(*key).or_insert(0);
        *c = (*c).max(*count);
    }
    finals.into_iter().collect()
}

#[test]
fn every_record_arrives_exactly_once_at_any_parallelism() {
    let reference = keyed_counts(1, 1, 3, TaskThreads::PerSubtask);
    assert_eq!(reference.iter().map(|(_, c)| c).sum::<u64>(), 15_000);
    for threads in THREADS {
        for (s, k) in [(1, 1), (2, 2), (3, 4), (4, 1)] {
            assert_eq!(
                keyed_counts(s, k, 3, threads),
                reference,
                "source {s}, keyed {k}, {threads:?}"
            );
        }
    }
}

#[test]
fn more_source_subtasks_than_partitions_still_finish() {
    for threads in THREADS {
        assert_eq!(
            keyed_counts(4, 2, 1, threads)
                .iter()
                .map(|(_, c)| c)
                .sum::<u64>(),
            5_000
        );
    }
}

#[test]
fn a_panicking_operator_fails_the_job_with_its_name_and_nothing_hangs() {
    for threads in THREADS {
        let job = Job::new(config_on(threads));
        job.source("numbers", 2, VecSource::new(partitions(2, 10_000)))
            .rebalance(2)
            .map("explode", |x: u64| {
                assert!(x != 1_000_500, "bad record {x}");
                x
            })
            .sink("discard", 2, |_| weir_core::sink::DiscardSink);
        match job.execute() {
            Err(JobError::Panic {
                operator, message, ..
            }) => {
                assert_eq!(operator, "explode", "{threads:?}");
                assert!(message.contains("bad record 1000500"), "{message}");
            }
            other => panic!("expected a panic failure ({threads:?}), got {other:?}"),
        }
    }
}

#[test]
fn an_operator_error_names_the_operator_and_subtask() {
    let job = Job::new(config());
    job.source("numbers", 1, VecSource::new(partitions(1, 100)))
        .flat_map("check", |x: u64, out| {
            if x == 42 {
                return Err(OperatorError::from("forty-two is not allowed"));
            }
            out.collect(x);
            Ok(())
        })
        .sink("discard", 1, |_| weir_core::sink::DiscardSink);
    let err = job.execute().unwrap_err();
    assert_eq!(
        err.to_string(),
        "operator 'check' (subtask 0) failed: forty-two is not allowed"
    );
}

#[test]
fn an_unconsumed_stream_is_a_clear_error() {
    let job = Job::new(config());
    let _dangling = job
        .source("numbers", 1, VecSource::new(partitions(1, 1)))
        .rebalance(1);
    let err = job.execute().unwrap_err();
    assert!(err.to_string().contains("never consumed"), "{err}");
}

/// A sink that sleeps, so the upstream runs out of buffers.
struct SlowSink(u64);

impl Sink<u64> for SlowSink {
    fn write(&mut self, _record: u64) -> Result<(), OperatorError> {
        self.0 += 1;
        if self.0.is_multiple_of(500) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

#[test]
fn a_slow_sink_backpressures_the_source_within_the_pool() {
    // Both thread plans keep the pool's bound and count the source's wait as backpressure.
    for threads in THREADS {
        let mut cfg = config_on(threads);
        // Small buffers so that the pool, not the input size, is the limit.
        cfg.pool = PoolConfig {
            segment_bytes: 1024,
            ..PoolConfig::default()
        };
        let job = Job::new(cfg);
        job.source("numbers", 1, VecSource::new(partitions(1, 200_000)))
            .rebalance(1)
            .sink("slow", 1, |_| SlowSink(0));
        let result = job.execute().expect("job runs");
        let source = &result.tasks[0];
        assert!(source.task.starts_with("numbers"), "{}", source.task);
        assert!(
            source.outBuffersInUseMax as usize <= result.pool_segments,
            "buffers in use {} exceed the pool {}",
            source.outBuffersInUseMax,
            result.pool_segments
        );
        // 2 exclusive + 8 floating for the one channel.
        assert_eq!(result.pool_segments, 10);
        assert!(
            source.backPressuredTimeMsPerSecond > 0.0,
            "the source waited for buffers: {source:?}"
        );
        let sink = &result.tasks[1];
        assert_eq!(sink.numRecordsIn, 200_000);
        assert_eq!(sink.numRecordsOut, 200_000);
    }
}

/// A task sending on two exchanges has one pool for the channels of both; each edge must take
/// its own channels' exclusive buffers. (They once both took channel 0's: with no floating
/// buffers, the first edge's open buffer starved the second and the job hung.)
#[test]
fn two_exchanges_of_one_task_keep_their_own_exclusive_buffers() {
    let mut cfg = config();
    cfg.pool = PoolConfig {
        segment_bytes: 1024,
        exclusive_per_channel: 1,
        floating_per_gate: 0,
        ..PoolConfig::default()
    };
    // Open buffers are sent when full, not on a timer: both edges hold one while writing.
    cfg.buffer_timeout = Duration::from_secs(3600);
    let job = Job::new(cfg);
    let (left, right) = job
        .source("numbers", 1, VecSource::new(partitions(1, 20_000)))
        .split();
    let counted = Arc::new(Mutex::new(Vec::new()));
    for (stream, name) in [(left, "left"), (right, "right")] {
        let target = Arc::clone(&counted);
        stream
            .rebalance(1)
            .sink(name, 1, move |_| CollectSink::new(Arc::clone(&target)));
    }
    let result = job.execute().expect("the job finishes");
    assert_eq!(result.pool_segments, 2, "one exclusive buffer per channel");
    assert_eq!(counted.lock().unwrap().len(), 40_000);
}

#[test]
fn a_pool_smaller_than_the_job_needs_is_refused() {
    let mut cfg = config();
    cfg.pool.segments = Some(3);
    let job = Job::new(cfg);
    job.source("numbers", 1, VecSource::new(partitions(1, 10)))
        .rebalance(2)
        .sink("discard", 2, |_| weir_core::sink::DiscardSink);
    let err = job.execute().unwrap_err();
    assert!(err.to_string().contains("pool too small"), "{err}");
}

#[test]
fn a_stop_request_ends_input_early_and_the_job_still_finishes() {
    let job = Job::new(config());
    let control = job.control();
    control.request_stop();
    job.source("numbers", 1, VecSource::new(partitions(1, 100_000)))
        .rebalance(1)
        .sink("discard", 1, |_| weir_core::sink::DiscardSink);
    let result = job.execute().expect("a stopped job still reports");
    assert!(result.stopped_early);
    assert!(result.tasks[1].numRecordsIn < 100_000);
}

#[test]
fn latency_markers_travel_from_sources_to_sinks() {
    let mut cfg = config();
    cfg.latency_interval = Some(Duration::from_millis(1));
    cfg.buffer_timeout = Duration::from_millis(2);
    let job = Job::new(cfg);
    job.source("numbers", 1, VecSource::new(partitions(1, 300_000)))
        .rebalance(1)
        .sink("slow", 1, |_| SlowSink(0));
    let result = job.execute().expect("job runs");
    assert!(!result.latency_ns.is_empty(), "markers reached the sink");
    // A marker waits at least for a buffer to be sent: far more than the histogram's floor.
    assert!(
        result.latency_ns.max() > 1_000,
        "{}",
        result.latency_ns.max()
    );
}

/// An unbounded partition: a record, then nothing for a moment, and never an end.
struct Endless;

struct EndlessReader {
    next: u64,
    pending: bool,
}

impl weir_core::source::Source for Endless {
    type Item = u64;

    fn partitions(&self) -> usize {
        2
    }

    fn open(
        &self,
        _partition: usize,
        offset: u64,
    ) -> Result<Box<dyn weir_core::source::PartitionReader<u64>>, OperatorError> {
        Ok(Box::new(EndlessReader {
            next: offset,
            pending: false,
        }))
    }
}

impl weir_core::source::PartitionReader<u64> for EndlessReader {
    fn next(&mut self) -> Result<weir_core::source::Read<u64>, OperatorError> {
        self.pending = !self.pending;
        if self.pending {
            return Ok(weir_core::source::Read::Pending);
        }
        self.next += 1;
        Ok(weir_core::source::Read::Record(self.next))
    }

    fn offset(&self) -> u64 {
        self.next
    }
}

#[test]
fn an_unbounded_source_runs_until_a_stop_is_requested() {
    let job = Job::new(config());
    let control = job.control();
    let out = Arc::new(Mutex::new(Vec::new()));
    let target = Arc::clone(&out);
    job.source("endless", 2, Endless)
        .key_by(|x: &u64| *x)
        .process_fn(
            "count",
            2,
            |_: &u64, _: &mut KeyedState<u64, ()>, x: u64, out| {
                out.collect(x);
                Ok(())
            },
        )
        .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        control.request_stop();
    });
    let result = job.execute().expect("a stopped job finishes");
    stopper.join().unwrap();
    assert!(result.stopped_early);
    let read: u64 = result
        .tasks
        .iter()
        .filter(|t| t.task.starts_with("endless"))
        .map(|t| t.numRecordsIn)
        .sum();
    assert!(read > 0);
    assert_eq!(
        out.lock().unwrap().len() as u64,
        read,
        "everything read reached the sink"
    );
}
