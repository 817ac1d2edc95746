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

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_core::sink::DiscardSink;
use weir_core::source::VecSource;
use weir_core::time::WatermarkStrategy;
use weir_core::{Job, RuntimeConfig};

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
    group.finish();
}

criterion_group!(benches, chain);
criterion_main!(benches);
