//! Records per second through an operator chain fed by a network exchange: the per-record path
//! of a task behind an input gate (decode, operators, a split, sinks).
//!
//! One job per iteration: a source of one partition of `RECORDS` `u64`s (p = 1) rebalanced
//! into one task that runs `map -> filter -> map -> split -> (map -> discard, discard)`: four
//! operators, a split and two sinks, every record crossing every link (the filter keeps
//! everything). Source and chain run on their own threads, unpinned, so on two cores the
//! source's encode and the chain's decode overlap; the job's start and end (tens of
//! microseconds against the tens of milliseconds of the records) are included.
//!
//! `source-map-key_by`: the source side's per-record path (a source task's loop, its chain and
//! the keyed exchange's routing). A source of four partitions of `RECORDS / 4` `u64`s (p = 1)
//! with event time (bounded out-of-orderness, periodic watermarks) runs `map`, then `key_by`
//! over 1024 keys into one discarding sink task.
//!
//! `split-into-windows`: the traffic job's fan-out after its tagging step. 40-byte records
//! (event time, a key of 3, three payload words) rebalanced into one task that splits them
//! twice: a one-minute and a five-minute count per key pre-aggregated in the task (the local
//! step of two-phase windows, each merged by a task of its own) and a discarding sink. The
//! windows read the records where they are (a split lends its first branch the batch); event
//! time advances 50 ms per record.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_core::sink::DiscardSink;
use weir_core::source::VecSource;
use weir_core::time::WatermarkStrategy;
use weir_core::window::{Count, WindowAssigner, WindowSpec};
use weir_core::{Job, RuntimeConfig};

/// (event time ms, key, payload): 40 bytes.
type Wide = (u64, u64, (u64, u64, u64));

/// Records per job.
const RECORDS: u64 = 1 << 20;

fn run_chain(source: &VecSource<u64>) {
    let job = Job::new(RuntimeConfig {
        pin: false,
        ..RuntimeConfig::default()
    });
    let (left, right) = job
        .source("numbers", 1, source.clone())
        .rebalance(1)
        .map("scale", |x: u64| x.wrapping_mul(3))
        .filter("keep-all", |x: &u64| *x != u64::MAX)
        .map("offset", |x: u64| x.wrapping_add(1))
        .split();
    left.map("halve", |x: u64| x / 2)
        .sink("left", 1, |_| DiscardSink);
    right.sink("right", 1, |_| DiscardSink);
    black_box(job.execute().expect("the chain job runs"));
}

fn run_source_keyed(source: &VecSource<u64>) {
    let job = Job::new(RuntimeConfig {
        pin: false,
        ..RuntimeConfig::default()
    });
    let strategy =
        WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(10), |x: &u64| *x as i64);
    job.source_with_watermarks("numbers", 1, source.clone(), strategy)
        .map("scale", |x: u64| x.wrapping_mul(3))
        .key_by(|x: &u64| *x % 1024)
        .exchange(1)
        .0
        .sink("discard", 1, |_| DiscardSink);
    black_box(job.execute().expect("the source job runs"));
}

fn run_split_into_windows(source: &VecSource<Wide>) {
    let job = Job::new(RuntimeConfig {
        pin: false,
        ..RuntimeConfig::default()
    });
    let ts = |r: &Wide| r.0 as i64;
    let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(5), ts);
    let spec = |minutes: i64| WindowSpec {
        assigner: WindowAssigner::tumbling(minutes * 60_000),
        allowed_lateness_ms: 0,
        timestamp: std::sync::Arc::new(ts),
        late: None,
        late_partials: None,
    };
    let (one, rest) = job
        .source_with_watermarks("wide", 1, source.clone(), strategy)
        .rebalance(1)
        .split();
    let (five, all) = rest.split();
    for (stream, minutes) in [(one, 1), (five, 5)] {
        stream
            .window_two_phase(
                &format!("{minutes}m"),
                |r: &Wide| r.1,
                1,
                spec(minutes),
                Count,
            )
            .sink(&format!("{minutes}m sink"), 1, |_| DiscardSink);
    }
    all.sink("all", 1, |_| DiscardSink);
    black_box(job.execute().expect("the split job runs"));
}

fn chain(c: &mut Criterion) {
    let source = VecSource::new(vec![(0..RECORDS).collect()]);
    let partitions = 4;
    let per_partition = RECORDS / partitions;
    let keyed_source = VecSource::new(
        (0..partitions)
            .map(|p| (p * per_partition..(p + 1) * per_partition).collect())
            .collect(),
    );
    let mut group = c.benchmark_group("chain");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("map-filter-map-split-2-sinks", |b| {
        b.iter(|| run_chain(&source))
    });
    group.bench_function("source-map-key_by", |b| {
        b.iter(|| run_source_keyed(&keyed_source))
    });
    let wide = VecSource::new(vec![
        (0..RECORDS)
            .map(|i| (i * 50, i % 3, (i, i ^ 0x5555, i.rotate_left(7))))
            .collect(),
    ]);
    group.bench_function("split-into-windows", |b| {
        b.iter(|| run_split_into_windows(&wide))
    });
    group.finish();
}

criterion_group!(benches, chain);
criterion_main!(benches);
