//! Keyed state snapshots against state size: the task thread's stall, and restore speed.
//!
//! One subtask owns all 128 key groups of a `KeyedTable<u64, u64>` (16 bytes per entry in a
//! snapshot) holding 1 K to 10 M keys, built once per size outside the timed loop.
//!
//! - `stall/async`: the synchronous part of a copy-on-write snapshot, what the task thread
//!   does at a barrier: `KeyedSnapshot::add`, one reference count per key group. Issue 7's
//!   target: at most 100 µs at 10 M keys, flat in the number of keys.
//! - `stall/sync`: the baseline, `--snapshot sync`: the whole table serialized on the task
//!   thread (up to 1 M keys; it grows linearly, 10 M adds nothing but minutes).
//! - `restore`: parsing the blobs of every group and inserting every entry into an empty
//!   table, with every check a restore makes; throughput in bytes of state. Issue 7's target:
//!   at least 1 GB/s.
//!
//! Dropping a snapshot or a restored table happens outside the timing (a snapshot is dropped
//! on the snapshot thread). Run quickly with `cargo bench --bench snapshot -- --quick`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weir_core::keyed::KeyGroups;
use weir_core::state::{KeyedRestore, KeyedSnapshot, KeyedTable, SnapshotMode};

/// Key groups (Flink's default max parallelism).
const KEY_GROUPS: usize = 128;
/// State sizes of the stall comparison, in keys.
const ASYNC_KEYS: [u64; 4] = [1_000, 100_000, 1_000_000, 10_000_000];
/// State sizes of the synchronous baseline and of the restore, in keys.
const SYNC_KEYS: [u64; 3] = [1_000, 100_000, 1_000_000];

fn layout() -> KeyGroups {
    KeyGroups::new(KEY_GROUPS, 1).expect("one subtask of 128 key groups")
}

fn table_of(keys: u64) -> KeyedTable<u64, u64> {
    let mut table = KeyedTable::new("counts", &layout(), 0);
    for k in 0..keys {
        table.insert(k, k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    assert_eq!(table.len() as u64, keys);
    table
}

fn label(keys: u64) -> String {
    match keys {
        k if k >= 1_000_000 => format!("{}M", k / 1_000_000),
        k => format!("{}K", k / 1_000),
    }
}

fn snapshot_of(table: &KeyedTable<u64, u64>, mode: SnapshotMode) -> KeyedSnapshot {
    let mut snapshot = KeyedSnapshot::new(table.key_groups(), mode);
    snapshot.add(table);
    snapshot
}

fn stall(c: &mut Criterion) {
    let mut group = c.benchmark_group("stall");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500));
    for keys in ASYNC_KEYS {
        let table = table_of(keys);
        group.throughput(Throughput::Elements(keys));
        group.bench_with_input(BenchmarkId::new("async", label(keys)), &table, |b, t| {
            b.iter_with_large_drop(|| snapshot_of(black_box(t), SnapshotMode::Async));
        });
        if SYNC_KEYS.contains(&keys) {
            let bytes: usize = snapshot_of(&table, SnapshotMode::Sync)
                .into_blobs()
                .iter()
                .map(Vec::len)
                .sum();
            group.throughput(Throughput::Bytes(bytes as u64));
            group.bench_with_input(BenchmarkId::new("sync", label(keys)), &table, |b, t| {
                b.iter_with_large_drop(|| snapshot_of(black_box(t), SnapshotMode::Sync));
            });
        }
    }
    group.finish();
}

fn restore(c: &mut Criterion) {
    let mut group = c.benchmark_group("restore");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500));
    for keys in SYNC_KEYS {
        let blobs = snapshot_of(&table_of(keys), SnapshotMode::Sync).into_blobs();
        let bytes: usize = blobs.iter().map(Vec::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(label(keys)),
            &blobs,
            |b, blobs| {
                b.iter_batched(
                    || blobs.clone(),
                    |blobs| {
                        let mut table = KeyedTable::<u64, u64>::new("counts", &layout(), 0);
                        let mut restore = KeyedRestore::new();
                        restore.add(0..KEY_GROUPS, blobs).expect("blobs fit");
                        let restored = restore.restore(&mut table).expect("blobs restore");
                        assert_eq!(restored as u64, keys);
                        table
                    },
                    BatchSize::PerIteration,
                );
            },
        );
    }
    group.finish();
}

criterion_group!(benches, stall, restore);
criterion_main!(benches);
