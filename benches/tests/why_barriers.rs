//! Why barriers, not per-operator timers (the seed's question 1; `docs/why-barriers.md`).
//!
//! A checkpoint is restorable only if it is a consistent cut: every record the sources' offsets
//! count as read is in the operators' state, and no other. Snapshots taken by independent
//! timers miss the records in flight between the nodes (or take in records the sources read
//! after their own snapshot), so a restore from them loses or double counts records
//! ([`timers`], a seeded simulation of that alternative). Barrier snapshots, through weir's
//! runtime, restore exactly: from every completed checkpoint of a run, the restored counts plus
//! what the sources replay from their restored offsets equal the input.

#[path = "why_barriers/timers.rs"]
mod timers;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use timers::{CHECKPOINTS, Snapshots, Sweep};
use weir_backends::FsCheckpointStorage;
use weir_core::checkpoint::{
    BarrierMode, CheckpointConfig, CheckpointId, RestartStrategy, SnapshotContext, StateReader,
    StateWriter,
};
use weir_core::error::OperatorError;
use weir_core::operator::{Collector, Operator, OperatorContext};
use weir_core::runtime::RestoreFrom;
use weir_core::sink::Sink;
use weir_core::source::{PartitionReader, Read, Source};
use weir_core::{Job, RuntimeConfig};

/// Source partitions, two per source subtask.
const PARTITIONS: usize = 4;
/// Records per partition.
const PER_PARTITION: u64 = 4_000;
/// Records in the job's input.
const INPUT: u64 = PARTITIONS as u64 * PER_PARTITION;
/// In the first run a partition waits at every multiple of this offset until a checkpoint
/// completes, so every run has checkpoints in mid-stream whatever the machine's speed.
const PAUSE_EVERY: u64 = 500;
/// Checkpoints kept: all of a run's, to restore from each.
const RETAIN_ALL: usize = 10_000;
/// Seeds of each simulated sweep.
const SEEDS: u64 = 100;

/// What one run of the job saw, shared by its sources, operators and sink.
#[derive(Debug, Default)]
struct Ledger {
    /// Records the partition readers returned (in a restored run: the replay).
    read: AtomicU64,
    /// Records the counting operator's subtasks processed.
    counted: AtomicU64,
    /// The newest checkpoint the counting operator heard complete.
    completed: AtomicU64,
    /// Per operator subtask that restored: the checkpoint and the count it restored.
    restored: Mutex<Vec<(CheckpointId, u64)>>,
    /// At each operator snapshot: records read but not yet counted anywhere (in flight).
    in_flight: Mutex<Vec<u64>>,
    /// The final count of each operator subtask, as the sink received it.
    totals: Mutex<Vec<u64>>,
}

/// Partitions of `PER_PARTITION` numbers; with `pause_every`, a reader waits at each multiple
/// of it until a checkpoint completes.
#[derive(Clone)]
struct Numbers {
    ledger: Arc<Ledger>,
    pause_every: Option<u64>,
}

struct NumberReader {
    ledger: Arc<Ledger>,
    next: u64,
    pause_every: Option<u64>,
    /// While paused: the newest completed checkpoint when the pause began.
    paused_after: Option<CheckpointId>,
}

impl Source for Numbers {
    type Item = u64;
    fn partitions(&self) -> usize {
        PARTITIONS
    }
    fn open(
        &self,
        _partition: usize,
        offset: u64,
    ) -> Result<Box<dyn PartitionReader<u64>>, OperatorError> {
        if offset > PER_PARTITION {
            return Err(format!("offset {offset} past the partition's {PER_PARTITION}").into());
        }
        Ok(Box::new(NumberReader {
            ledger: Arc::clone(&self.ledger),
            next: offset,
            pause_every: self.pause_every,
            paused_after: None,
        }))
    }
}

impl PartitionReader<u64> for NumberReader {
    fn next(&mut self) -> Result<Read<u64>, OperatorError> {
        if self.next == PER_PARTITION {
            return Ok(Read::End);
        }
        if let Some(every) = self.pause_every
            && self.next > 0
            && self.next.is_multiple_of(every)
        {
            let completed = self.ledger.completed.load(Ordering::Acquire);
            if completed <= *self.paused_after.get_or_insert(completed) {
                return Ok(Read::Pending);
            }
            self.paused_after = None;
        }
        let value = self.next;
        self.next += 1;
        self.ledger.read.fetch_add(1, Ordering::Relaxed);
        Ok(Read::Record(value))
    }
    fn offset(&self) -> u64 {
        self.next
    }
}

/// Counts the records it sees (operator state, one `u64` per subtask) and emits its count at
/// the end of the input.
struct RunningTotal {
    ledger: Arc<Ledger>,
    count: u64,
}

impl Operator<u64, u64> for RunningTotal {
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        if let Some(restore) = &context.restore {
            let own = restore
                .own_operator_state(context.subtask, context.parallelism)
                .ok_or("the job keeps its parallelism")?;
            let mut r = StateReader::new(own);
            self.count = r.u64().map_err(|e| e.to_string())?;
            if !r.is_empty() || self.count > INPUT {
                return Err(format!("a damaged count state: {own:?}").into());
            }
            let mut restored = self.ledger.restored.lock().unwrap();
            restored.push((restore.checkpoint, self.count));
        }
        Ok(())
    }

    fn process(
        &mut self,
        _record: u64,
        _out: &mut Collector<'_, u64>,
    ) -> Result<(), OperatorError> {
        self.count += 1;
        self.ledger.counted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn snapshot_state(&mut self, ctx: &mut SnapshotContext<'_>) -> Result<(), OperatorError> {
        let counted = self.ledger.counted.load(Ordering::Relaxed);
        let read = self.ledger.read.load(Ordering::Relaxed);
        let mut in_flight = self.ledger.in_flight.lock().unwrap();
        in_flight.push(read.saturating_sub(counted));
        let mut w = StateWriter::new();
        w.u64(self.count);
        ctx.set_operator_state(w.finish());
        Ok(())
    }

    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: CheckpointId,
    ) -> Result<(), OperatorError> {
        self.ledger
            .completed
            .fetch_max(checkpoint, Ordering::AcqRel);
        Ok(())
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, u64>) -> Result<(), OperatorError> {
        out.collect(self.count);
        Ok(())
    }
}

/// Collects the operator subtasks' final counts.
struct Totals(Arc<Ledger>);

impl Sink<u64> for Totals {
    fn write(&mut self, total: u64) -> Result<(), OperatorError> {
        self.0.totals.lock().unwrap().push(total);
        Ok(())
    }
}

/// Runs numbers → rebalance → running total (2 subtasks, each reading 2 channels) → sink,
/// checkpointing into `dir` every `interval`, restored from `restore` if given.
fn run_job(
    dir: &Path,
    mode: BarrierMode,
    interval: Duration,
    pause_every: Option<u64>,
    restore: Option<PathBuf>,
) -> Result<Arc<Ledger>, String> {
    let storage =
        FsCheckpointStorage::new(dir.to_path_buf(), RETAIN_ALL).map_err(|e| e.to_string())?;
    let mut checkpoint = CheckpointConfig::new(interval, dir.to_path_buf(), Arc::new(storage));
    checkpoint.mode = mode;
    let job = Job::new(RuntimeConfig {
        pin: false,
        checkpoint: Some(checkpoint),
        restart: RestartStrategy::None,
        restore: restore.map(RestoreFrom::Path),
        ..RuntimeConfig::default()
    });
    let ledger = Arc::new(Ledger::default());
    let (for_operator, for_sink) = (Arc::clone(&ledger), Arc::clone(&ledger));
    job.source(
        "numbers",
        2,
        Numbers {
            ledger: Arc::clone(&ledger),
            pause_every,
        },
    )
    .rebalance(2)
    .process("running-total", move || RunningTotal {
        ledger: Arc::clone(&for_operator),
        count: 0,
    })
    .sink("totals", 1, move |_| Totals(Arc::clone(&for_sink)));
    job.execute().map_err(|e| e.to_string())?;
    Ok(ledger)
}

/// The completed checkpoints (`chk-N` with a `_metadata`) in `dir`, oldest first.
fn completed_checkpoints(dir: &Path) -> Vec<(CheckpointId, PathBuf)> {
    let mut found: Vec<(CheckpointId, PathBuf)> = std::fs::read_dir(dir)
        .expect("checkpoint folder")
        .flatten()
        .filter(|e| e.path().join("_metadata").is_file())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let id = name.strip_prefix("chk-")?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// One restore from a barrier checkpoint, as counted by the restored run.
#[derive(Debug)]
struct Restored {
    checkpoint: CheckpointId,
    /// The operator subtasks' restored counts, summed.
    counts: u64,
    /// Records the sources replayed from their restored offsets.
    replayed: u64,
}

/// Runs the job once with barrier checkpoints in `mode`, then restores a new run from each of
/// its completed checkpoints; checks each restored run's own arithmetic and returns what each
/// restored, with the largest number of records in flight at an operator snapshot.
fn restore_from_every_checkpoint(mode: BarrierMode) -> (Vec<Restored>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let ledger = run_job(
        &first,
        mode,
        Duration::from_millis(2),
        Some(PAUSE_EVERY),
        None,
    )
    .expect("the first run succeeds");
    let totals: u64 = ledger.totals.lock().unwrap().iter().sum();
    assert_eq!(
        totals, INPUT,
        "{mode:?}: the uninterrupted run counts the input once"
    );
    let max_in_flight = ledger.in_flight.lock().unwrap().iter().copied().max();
    let checkpoints = completed_checkpoints(&first);
    let mut restored = Vec::with_capacity(checkpoints.len());
    for (id, path) in checkpoints {
        let again = dir.path().join(format!("restored-from-{id}"));
        let ledger = run_job(&again, mode, Duration::from_secs(1), None, Some(path))
            .unwrap_or_else(|e| panic!("{mode:?}: restoring from checkpoint {id}: {e}"));
        let subtasks = ledger.restored.lock().unwrap().clone();
        assert_eq!(
            subtasks.len(),
            2,
            "checkpoint {id}: both operator subtasks restore"
        );
        assert!(
            subtasks.iter().all(|&(from, _)| from == id),
            "checkpoint {id}: restored from {subtasks:?}"
        );
        let counts: u64 = subtasks.iter().map(|&(_, count)| count).sum();
        let replayed = ledger.read.load(Ordering::Relaxed);
        let totals: u64 = ledger.totals.lock().unwrap().iter().sum();
        assert_eq!(
            totals,
            counts + replayed,
            "checkpoint {id}: the restored run ends at its restored counts plus its replay"
        );
        restored.push(Restored {
            checkpoint: id,
            counts,
            replayed,
        });
    }
    (restored, max_in_flight.unwrap_or(0))
}

/// Restores that started from neither the beginning nor the end of the input.
fn in_mid_stream(restored: &[Restored]) -> usize {
    restored
        .iter()
        .filter(|r| r.replayed > 0 && r.replayed < INPUT)
        .count()
}

#[test]
fn every_aligned_barrier_checkpoint_restores_every_record_exactly_once() {
    let (restored, max_in_flight) = restore_from_every_checkpoint(BarrierMode::Aligned);
    for r in &restored {
        assert_eq!(
            r.counts + r.replayed,
            INPUT,
            "checkpoint {}: restored counts {} + replay {} against an input of {INPUT}",
            r.checkpoint,
            r.counts,
            r.replayed
        );
    }
    let mid = in_mid_stream(&restored);
    // Each pause holds a partition before its end until a checkpoint completes, so several
    // checkpoints replay part of the input; two is the floor the test needs.
    assert!(
        mid >= 2,
        "only {mid} checkpoints in mid-stream: {restored:?}"
    );
    println!(
        "aligned barriers: {} completed checkpoints restored, {mid} in mid-stream, all \
         consistent; up to {max_in_flight} records were in flight at an operator snapshot",
        restored.len()
    );
}

#[test]
fn at_least_once_barrier_checkpoints_never_lose_a_record() {
    let (restored, max_in_flight) = restore_from_every_checkpoint(BarrierMode::AtLeastOnce);
    let mut doubled = 0;
    for r in &restored {
        assert!(
            r.counts + r.replayed >= INPUT,
            "checkpoint {}: restored counts {} + replay {} lose records of an input of {INPUT}",
            r.checkpoint,
            r.counts,
            r.replayed
        );
        doubled += r.counts + r.replayed - INPUT;
    }
    let mid = in_mid_stream(&restored);
    assert!(
        mid >= 2,
        "only {mid} checkpoints in mid-stream: {restored:?}"
    );
    println!(
        "at-least-once barriers: {} completed checkpoints restored, {mid} in mid-stream, none \
         lost a record, {doubled} records counted twice in all; up to {max_in_flight} records \
         were in flight at an operator snapshot",
        restored.len()
    );
}

#[test]
fn independent_timers_give_cuts_that_lose_or_double_count_records() {
    let skewed = Sweep::run(Snapshots::Timers { max_skew_ticks: 30 }, SEEDS);
    println!("timers, skewed up to 10% of the period: {skewed}");
    assert_eq!(skewed.cuts, SEEDS as usize * CHECKPOINTS);
    assert!(
        skewed.lost_cuts > 0,
        "some timer cut loses records: {skewed}"
    );
    assert!(
        skewed.double_cuts > 0,
        "some timer cut counts records twice: {skewed}"
    );

    // Perfect clocks do not help: the records in the channels at that instant are in neither
    // snapshot, and none can be in both.
    let synchronised = Sweep::run(Snapshots::Timers { max_skew_ticks: 0 }, SEEDS);
    println!("timers, synchronised: {synchronised}");
    assert!(synchronised.lost_cuts > 0, "{synchronised}");
    assert_eq!(synchronised.double_cuts, 0, "{synchronised}");
}

#[test]
fn markers_in_the_same_simulated_pipeline_give_consistent_cuts() {
    let aligned = Sweep::run(Snapshots::AlignedMarkers, SEEDS);
    println!("aligned markers: {aligned}");
    assert_eq!(aligned.cuts, SEEDS as usize * CHECKPOINTS);
    assert_eq!(aligned.consistent(), aligned.cuts, "{aligned}");

    // Without alignment, a fast channel's records after its marker get into the snapshot:
    // never a loss, sometimes a double count.
    let at_least_once = Sweep::run(Snapshots::AtLeastOnceMarkers, SEEDS);
    println!("at-least-once markers: {at_least_once}");
    assert_eq!(at_least_once.lost_cuts, 0, "{at_least_once}");
    assert!(at_least_once.double_cuts > 0, "{at_least_once}");
}
