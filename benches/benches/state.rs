//! Keyed state access on the heap backend: what the task thread pays per record.
//!
//! One subtask owns all 128 key groups of a `KeyedTable<u64, u64>` holding 100 K or 1 M keys,
//! built once per size outside the timed loop. Each iteration touches every key once, in a
//! scrambled order (a multiplicative hash of the index), so that consecutive accesses land in
//! unrelated key groups and cache lines, as records of different keys do.
//!
//! - `access/upsert`: `upsert_with` adding to the value (a window accumulator, the traffic
//!   job's per-plate state); throughput in updates.
//! - `access/get`: `with`, reading without cloning.
//! - `access/upsert_during_snapshot`: the same updates while a snapshot taken just before
//!   is still held (the snapshot thread has not finished): the first write to each key group
//!   pays the copy-on-write of that group.
//! - `access/fxhashmap_upsert`: the same updates on one `FxHashMap` (what the timely peer keeps
//!   its per-plate state in): the price of key groups and snapshots.
//! - `keyed-process/{one-by-one,batch}`: a keyed process function counting per key over the
//!   same table sizes, fed in input batches of 512 records, record by record
//!   (`Operator::process`, one lookup at a time) or as batches (`Operator::process_batch`,
//!   lookups issued ahead so that their cache misses overlap).
//!
//! Run quickly with `cargo bench --bench state -- --quick`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weir_core::error::OperatorError;
use weir_core::keyed::KeyGroups;
use weir_core::metrics::TaskMetrics;
use weir_core::operator::{
    Collector, KeyedProcess, KeyedProcessFunction, KeyedState, Operator, OperatorContext,
};
use weir_core::state::KeyedTable;

/// Key groups (Flink's default max parallelism).
const KEY_GROUPS: usize = 128;
/// State sizes, in keys.
const KEYS: [u64; 2] = [100_000, 1_000_000];

fn table_of(keys: u64) -> KeyedTable<u64, u64> {
    let layout = KeyGroups::new(KEY_GROUPS, 1).expect("one subtask of 128 key groups");
    let mut table = KeyedTable::new("counts", &layout, 0);
    for k in 0..keys {
        table.insert(k, k);
    }
    table
}

/// The `i`-th key of a pass over `keys` keys: every key once per pass, scrambled. The
/// multiplier is a prime (2 654 435 761, Knuth's) and so coprime with the sizes (powers of 2
/// and 5), which makes `i ↦ i·p mod keys` a permutation; `i·p` fits in a `u64`.
fn key(i: u64, keys: u64) -> u64 {
    i * 2_654_435_761 % keys
}

fn label(keys: u64) -> String {
    match keys {
        k if k >= 1_000_000 => format!("{}M", k / 1_000_000),
        k => format!("{}K", k / 1_000),
    }
}

fn pass(table: &mut KeyedTable<u64, u64>, keys: u64) {
    for i in 0..keys {
        table.upsert_with(&key(i, keys), || 0, |v| *v = v.wrapping_add(1));
    }
}

fn access(c: &mut Criterion) {
    let mut group = c.benchmark_group("access");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for keys in KEYS {
        let mut table = table_of(keys);
        group.throughput(Throughput::Elements(keys));
        group.bench_function(BenchmarkId::new("upsert", label(keys)), |b| {
            b.iter(|| pass(black_box(&mut table), keys));
        });
        let mut plain: rustc_hash::FxHashMap<u64, u64> = (0..keys).map(|k| (k, k)).collect();
        group.bench_function(BenchmarkId::new("fxhashmap_upsert", label(keys)), |b| {
            b.iter(|| {
                let plain = black_box(&mut plain);
                for i in 0..keys {
                    let v = plain.entry(key(i, keys)).or_insert(0);
                    *v = v.wrapping_add(1);
                }
            });
        });
        group.bench_function(BenchmarkId::new("get", label(keys)), |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for i in 0..keys {
                    sum = sum.wrapping_add(table.with(&key(i, keys), |v| v.copied().unwrap_or(0)));
                }
                sum
            });
        });
        group.bench_function(
            BenchmarkId::new("upsert_during_snapshot", label(keys)),
            |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let held = table.snapshot();
                        let start = Instant::now();
                        pass(black_box(&mut table), keys);
                        spent += start.elapsed();
                        drop(held);
                    }
                    spent
                });
            },
        );
    }
    group.finish();
}

/// Counts the records of each key; emits each record's count so far.
struct Counts;

impl KeyedProcessFunction<u64, u64, u64> for Counts {
    type State = u64;

    #[inline]
    fn process(
        &mut self,
        _key: &u64,
        state: &mut KeyedState<'_, u64, u64>,
        _record: u64,
        out: &mut Collector<'_, u64>,
    ) -> Result<(), OperatorError> {
        out.collect(state.update(|n| {
            *n += 1;
            *n
        }));
        Ok(())
    }
}

/// Records in one input batch (about one network buffer's).
const BATCH: usize = 512;

fn keyed_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyed-process");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for keys in KEYS {
        let records: Vec<u64> = (0..keys).map(|i| key(i, keys)).collect();
        let mut op = KeyedProcess::new(|k: &u64| *k, Counts);
        op.open(&OperatorContext::new(0, Arc::new(TaskMetrics::default())))
            .expect("a keyed process opens");
        group.throughput(Throughput::Elements(keys));
        for batched in [false, true] {
            let name = if batched { "batch" } else { "one-by-one" };
            let (mut batch, mut out) = (Vec::with_capacity(BATCH), Vec::with_capacity(BATCH));
            group.bench_function(BenchmarkId::new(name, label(keys)), |b| {
                b.iter(|| {
                    for chunk in records.chunks(BATCH) {
                        let mut collector = Collector::batch(&mut out);
                        if batched {
                            batch.extend_from_slice(chunk);
                            op.process_batch(&mut batch, &mut collector)
                                .expect("counting");
                        } else {
                            for &record in chunk {
                                op.process(record, &mut collector).expect("counting");
                            }
                        }
                        black_box(&mut out).clear();
                    }
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, access, keyed_process);
criterion_main!(benches);
