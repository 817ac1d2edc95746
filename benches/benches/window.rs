//! Records per second through the window operators of a task behind an input gate: the
//! per-record path of window assignment and accumulator updates.
//!
//! One job per iteration: a source of one partition of `RECORDS` records `(key, ts)` (p = 1,
//! timestamps 1 ms apart, keys round robin over `KEYS`, periodic watermarks) rebalanced into one
//! task that windows them, results into a discard sink:
//!
//! - `window/local-pre-aggregate`: the local step of local-global aggregation over 1-minute
//!   tumbling windows per key (the traffic job's `origin_5m` in its tagging task), then the
//!   merge step (one partial per window and key: negligible);
//! - `window/keyed-sliding`: a keyed window of 1 minute every 20 s (each record in three
//!   windows) behind a keyed exchange.
//!
//! Source and chain run on their own threads, unpinned; the job's start and end are included.
//!
//! `window-operator/{local-pre-aggregate,keyed-sliding}/{record,batch}`: the same two
//! operators alone on the bench thread, fed the same records in input batches of 512 (each
//! followed by a watermark), record by record (`Operator::process`) against the mini-batch
//! path (`Operator::process_batch`, which combines a batch per (window, key) first).
//! Run quickly with `cargo bench --bench window -- --quick`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weir_core::metrics::TaskMetrics;
use weir_core::operator::{Collector, Operator, OperatorContext};
use weir_core::sink::DiscardSink;
use weir_core::source::VecSource;
use weir_core::time::{Watermark, WatermarkStrategy};
use weir_core::window::{Count, LocalPreAggregate, WindowAggregate, WindowAssigner, WindowSpec};
use weir_core::{Job, RuntimeConfig};

/// Records per job.
const RECORDS: u64 = 1 << 20;
/// Distinct window keys.
const KEYS: u64 = 5;

type Record = (u64, i64);

fn job() -> Job {
    Job::new(RuntimeConfig {
        pin: false,
        ..RuntimeConfig::default()
    })
}

fn spec(assigner: WindowAssigner) -> WindowSpec<Record> {
    WindowSpec {
        assigner,
        allowed_lateness_ms: 0,
        timestamp: Arc::new(|r: &Record| r.1),
        late: None,
        late_partials: None,
    }
}

fn strategy() -> WatermarkStrategy<Record> {
    WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(100), |r: &Record| r.1)
}

fn local_pre_aggregate(source: &VecSource<Record>) {
    let job = job();
    job.source_with_watermarks("records", 1, source.clone(), strategy())
        .rebalance(1)
        .window_two_phase(
            "w",
            |r: &Record| r.0,
            1,
            spec(WindowAssigner::tumbling(60_000)),
            Count,
        )
        .sink("results", 1, |_| DiscardSink);
    black_box(job.execute().expect("the window job runs"));
}

fn keyed_sliding(source: &VecSource<Record>) {
    let job = job();
    job.source_with_watermarks("records", 1, source.clone(), strategy())
        .key_by(|r: &Record| r.0)
        .window("w", 1, spec(WindowAssigner::sliding(60_000, 20_000)), Count)
        .sink("results", 1, |_| DiscardSink);
    black_box(job.execute().expect("the window job runs"));
}

fn window(c: &mut Criterion) {
    let records = (0..RECORDS).map(|i| (i % KEYS, i as i64)).collect();
    let source = VecSource::new(vec![records]);
    let mut group = c.benchmark_group("window");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("local-pre-aggregate", |b| {
        b.iter(|| local_pre_aggregate(&source))
    });
    group.bench_function("keyed-sliding", |b| b.iter(|| keyed_sliding(&source)));
    group.finish();
}

/// Records in one input batch of the operator benches (about one network buffer's).
const BATCH: usize = 512;

/// Feeds `records` to `op` as input batches of [`BATCH`], each followed by a watermark at its
/// last timestamp, one by one ([`Operator::process`]) or as batches
/// ([`Operator::process_batch`]); returns the results' count.
fn drive<Out, Op: Operator<Record, Out>>(op: &mut Op, records: &[Record], batched: bool) -> usize {
    let (mut batch, mut out) = (Vec::with_capacity(BATCH), Vec::new());
    let mut results = 0;
    for chunk in records.chunks(BATCH) {
        let mut collector = Collector::batch(&mut out);
        if batched {
            batch.extend_from_slice(chunk);
            op.process_batch(&mut batch, &mut collector)
                .expect("window");
        } else {
            for &record in chunk {
                op.process(record, &mut collector).expect("window");
            }
        }
        let last = chunk.last().map_or(i64::MIN, |r| r.1);
        op.on_watermark(Watermark(last - 100), &mut collector)
            .expect("window");
        results += out.len();
        out.clear();
    }
    results
}

fn opened<Out, Op: Operator<Record, Out>>(mut op: Op) -> Op {
    let context = OperatorContext::new(0, Arc::new(TaskMetrics::default()));
    op.open(&context).expect("the window operator opens");
    op
}

/// The window operators alone, on the task thread: record by record against batches.
fn operators(c: &mut Criterion) {
    let records: Vec<Record> = (0..RECORDS).map(|i| (i % KEYS, i as i64)).collect();
    let mut group = c.benchmark_group("window-operator");
    group.throughput(Throughput::Elements(RECORDS));
    group.sample_size(20);
    for (path, batched) in [("record", false), ("batch", true)] {
        group.bench_function(BenchmarkId::new("local-pre-aggregate", path), |b| {
            b.iter_batched(
                || {
                    opened(LocalPreAggregate::new(
                        Arc::new(|r: &Record| r.0),
                        spec(WindowAssigner::tumbling(60_000)),
                        Count,
                    ))
                },
                |mut op| drive(&mut op, &records, batched),
                BatchSize::LargeInput,
            );
        });
        group.bench_function(BenchmarkId::new("keyed-sliding", path), |b| {
            b.iter_batched(
                || {
                    opened(WindowAggregate::new(
                        Arc::new(|r: &Record| r.0),
                        spec(WindowAssigner::sliding(60_000, 20_000)),
                        Count,
                    ))
                },
                |mut op| drive(&mut op, &records, batched),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, window, operators);
criterion_main!(benches);
