//! Window state through barrier checkpoints: a keyed window and a global two-phase window
//! (local pre-aggregation, then merge) with transactional outputs commit exactly the lines of
//! an uninterrupted run under injected failures; a one-partition punctuated job with
//! out-of-order and late records writes identical files (late decisions included); a new run
//! restored from the latest checkpoint at another parallelism completes the same output.
//!
//! It lives here, beside `checkpoints.rs`, because it needs `weir-backends`' checkpoint storage.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weir_core::Job;
use weir_core::checkpoint::{BarrierMode, RestartStrategy};
use weir_core::error::OperatorError;
use weir_core::runtime::RestoreFrom;
use weir_core::sink::RegisteredWriter;
use weir_core::source::{PartitionReader, Read, Source};
use weir_core::time::{WatermarkEmit, WatermarkStrategy};
use weir_core::window::{Count, GlobalAggregation, WindowAssigner, WindowSpec};

const KEYED: &str = "keyed.jsonl";
const GLOBAL: &str = "global.jsonl";

/// `(key, event time)` records. In order per partition, every record is on time for any
/// interleaving of the partitions (the watermark is a minimum over them), so the output does
/// not depend on timing; out of order, some records are late within allowed lateness (their
/// window fires again) and some past it (dropped).
#[derive(Debug, Clone, Copy)]
struct Events {
    partitions: usize,
    per_partition: u64,
    out_of_order: bool,
}

struct EventReader {
    partition: u64,
    next: u64,
    end: u64,
    out_of_order: bool,
}

impl Source for Events {
    type Item = (u64, i64);
    fn partitions(&self) -> usize {
        self.partitions
    }
    fn open(
        &self,
        partition: usize,
        offset: u64,
    ) -> Result<Box<dyn PartitionReader<(u64, i64)>>, OperatorError> {
        Ok(Box::new(EventReader {
            partition: partition as u64,
            next: offset,
            end: self.per_partition,
            out_of_order: self.out_of_order,
        }))
    }
}

impl PartitionReader<(u64, i64)> for EventReader {
    fn next(&mut self) -> Result<Read<(u64, i64)>, OperatorError> {
        if self.next == self.end {
            return Ok(Read::End);
        }
        if self.next.is_multiple_of(64) {
            std::thread::sleep(Duration::from_micros(300));
        }
        let i = self.next;
        let mix = (i ^ (self.partition << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
        let key = mix % 11;
        let mut ts = i as i64 * 2;
        if self.out_of_order {
            ts -= (mix % 40) as i64;
            if i.is_multiple_of(97) {
                ts -= 400; // past allowed lateness
            }
        }
        self.next += 1;
        Ok(Read::Record((key, ts)))
    }
    fn offset(&self) -> u64 {
        self.next
    }
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    partitions: usize,
    per_partition: u64,
    out_of_order: bool,
    /// Of the source, the keyed window, the local and the merge step.
    parallelism: usize,
}

fn spec(assigner: WindowAssigner) -> WindowSpec<(u64, i64)> {
    WindowSpec {
        assigner,
        allowed_lateness_ms: 30,
        timestamp: Arc::new(|r: &(u64, i64)| r.1),
        late: None,
        late_partials: None,
    }
}

struct Run {
    keyed: String,
    global: String,
    restarts: usize,
    injected: usize,
}

impl Run {
    fn sorted(&self) -> (Vec<&str>, Vec<&str>) {
        let mut keyed: Vec<&str> = self.keyed.lines().collect();
        let mut global: Vec<&str> = self.global.lines().collect();
        keyed.sort_unstable();
        global.sort_unstable();
        (keyed, global)
    }
}

fn run(
    dir: &Path,
    shape: Shape,
    failures: Option<(u32, u64)>,
    restart: RestartStrategy,
    restore: Option<RestoreFrom>,
) -> Result<Run, String> {
    let (config, outputs) =
        common::checkpointed(dir, BarrierMode::Aligned, failures, restart, restore);
    let job = Job::new(config);
    let mut strategy =
        WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(20), |r: &(u64, i64)| {
            r.1
        });
    strategy.emit = WatermarkEmit::Punctuated(None);
    let p = shape.parallelism;
    let (keyed, global) = job
        .source_with_watermarks(
            "events",
            p,
            Events {
                partitions: shape.partitions,
                per_partition: shape.per_partition,
                out_of_order: shape.out_of_order,
            },
            strategy,
        )
        .split();
    let keyed_file = outputs.file(KEYED).expect("file");
    keyed
        .key_by(|r: &(u64, i64)| r.0)
        .window("keyed", p, spec(WindowAssigner::tumbling(50)), Count)
        .map("keyed row", |r| (r.window.start, r.key, r.value))
        .sink("keyed out", 1, move |subtask| {
            RegisteredWriter::<(i64, u64, u64)>::new(&keyed_file, subtask).expect("registered")
        });
    let global_file = outputs.file(GLOBAL).expect("file");
    global
        .window_global(
            "global",
            GlobalAggregation::Parallel { parallelism: p },
            spec(WindowAssigner::sliding(100, 50)),
            Count,
        )
        .map("global row", |r| (r.window.start, r.value))
        .sink("global out", 1, move |subtask| {
            RegisteredWriter::<(i64, u64)>::new(&global_file, subtask).expect("registered")
        });
    let result = job.execute().map_err(|e| e.to_string())?;
    let read = |name: &str| std::fs::read_to_string(dir.join("out").join(name)).expect("output");
    let stats = result.checkpoints.expect("checkpoint stats");
    Ok(Run {
        keyed: read(KEYED),
        global: read(GLOBAL),
        restarts: stats.restarts.len(),
        injected: result.injected_failures.len(),
    })
}

fn retrying() -> RestartStrategy {
    RestartStrategy::FixedDelay {
        attempts: 10,
        delay: Duration::ZERO,
    }
}

const PARALLEL: Shape = Shape {
    partitions: 3,
    per_partition: 6_000,
    out_of_order: false,
    parallelism: 2,
};

/// Panics with the lines missing from and extra in `got` (sorted) against `want` (sorted).
fn assert_same(got: &[&str], want: &[&str], what: &str) {
    if got == want {
        return;
    }
    let missing: Vec<_> = want
        .iter()
        .filter(|l| got.binary_search(l).is_err())
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|l| want.binary_search(l).is_err())
        .collect();
    panic!(
        "{what}: {} lines, {} expected; {} missing (first {:?}), {} extra (first {:?})",
        got.len(),
        want.len(),
        missing.len(),
        &missing[..missing.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)]
    );
}

/// The sum of the counts (the last field) of `lines`.
fn counted(lines: &[&str]) -> u64 {
    lines
        .iter()
        .map(|line| {
            let (_, count) = line.trim_end_matches(']').rsplit_once(',').expect("a row");
            count.parse::<u64>().expect("a count")
        })
        .sum()
}

fn uninterrupted(shape: Shape) -> Run {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), shape, None, retrying(), None).expect("the job succeeds")
}

#[test]
fn windows_commit_exactly_the_uninterrupted_output_under_injected_failures() {
    let reference = uninterrupted(PARALLEL);
    let (keyed, global) = reference.sorted();
    // Every record is on time: counted once in its tumbling window, twice in sliding ones.
    assert_eq!(counted(&keyed), 3 * 6_000);
    assert_eq!(counted(&global), 2 * 3 * 6_000);
    let mut injected = 0;
    for seed in [1, 2, 3, 4] {
        let dir = tempfile::tempdir().unwrap();
        let run = run(dir.path(), PARALLEL, Some((3, seed)), retrying(), None)
            .expect("the job succeeds in the end");
        injected += run.injected;
        assert_eq!(run.restarts, run.injected, "seed {seed}: one restart each");
        let (k, g) = run.sorted();
        assert_same(&k, &keyed, &format!("seed {seed}: keyed windows"));
        assert_same(&g, &global, &format!("seed {seed}: two-phase windows"));
    }
    assert!(injected >= 3, "failures were injected ({injected})");
}

#[test]
fn a_punctuated_one_partition_job_writes_identical_files_after_failures() {
    let shape = Shape {
        partitions: 1,
        per_partition: 8_000,
        out_of_order: true,
        parallelism: 1,
    };
    let reference = uninterrupted(shape);
    let keyed: Vec<&str> = reference.keyed.lines().collect();
    let mut distinct = keyed.clone();
    distinct.sort_unstable();
    distinct.dedup_by(|a, b| a.rsplit_once(',').map(|x| x.0) == b.rsplit_once(',').map(|x| x.0));
    assert!(
        distinct.len() < keyed.len(),
        "late records within lateness fire windows again"
    );
    let mut injected = 0;
    for seed in [4, 5, 6] {
        let dir = tempfile::tempdir().unwrap();
        let run = run(dir.path(), shape, Some((3, seed)), retrying(), None)
            .expect("the job succeeds in the end");
        injected += run.injected;
        assert_eq!(
            run.keyed, reference.keyed,
            "seed {seed}: identical keyed file"
        );
        assert_eq!(
            run.global, reference.global,
            "seed {seed}: identical global file"
        );
    }
    assert!(injected >= 3, "failures were injected ({injected})");
}

/// A run that fails with restarts off, then a new run at `to` restored from its latest
/// checkpoint: the output of both together. `None` if no seed failed after a checkpoint.
fn restored_at(from: usize, to: usize) -> Option<Run> {
    for seed in 11..41 {
        let dir = tempfile::tempdir().unwrap();
        let shape = Shape {
            parallelism: from,
            ..PARALLEL
        };
        if run(
            dir.path(),
            shape,
            Some((1, seed)),
            RestartStrategy::None,
            None,
        )
        .is_ok()
        {
            continue; // the failure was planned at a site this run never reached
        }
        let has_checkpoint = std::fs::read_dir(dir.path().join("checkpoints"))
            .unwrap()
            .flatten()
            .any(|e| e.path().join("_metadata").exists());
        if !has_checkpoint {
            continue;
        }
        let shape = Shape {
            parallelism: to,
            ..PARALLEL
        };
        return Some(
            run(
                dir.path(),
                shape,
                None,
                RestartStrategy::None,
                Some(RestoreFrom::Latest),
            )
            .expect("the restored run completes"),
        );
    }
    None
}

#[test]
fn a_restore_at_another_parallelism_completes_the_same_output() {
    let reference = uninterrupted(PARALLEL);
    for (from, to) in [(1, 3), (3, 2)] {
        let run = restored_at(from, to).expect("a run failed after a completed checkpoint");
        let ((k, g), (want_k, want_g)) = (run.sorted(), reference.sorted());
        assert_same(&k, &want_k, &format!("{from} → {to}: keyed windows"));
        assert_same(&g, &want_g, &format!("{from} → {to}: two-phase windows"));
    }
}
