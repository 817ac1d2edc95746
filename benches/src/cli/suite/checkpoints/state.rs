//! The checkpoint suite's section "State backends against state size and changed fraction":
//! heap (async and sync snapshots) against memory-mapped state with incremental snapshots, on a
//! keyed table driven directly, so that the number of keys and the fraction changed between two
//! checkpoints are exact (the traffic job's state is its fleet's plates, and a plate changes at
//! every sighting).
//!
//! One run: `keys` keys (`u64` → `(u64, u64)`) in a table of 128 key groups on one subtask are
//! inserted (the insert rate), read and updated at random (the access rate), checkpointed
//! through the file-system storage (checkpoint 1, completed), then `fraction × keys` random
//! keys change and checkpoint 2 is taken: its synchronous stall (the task thread's part), the
//! bytes it wrote against the changed entries' bytes, and the restore of checkpoint 2 into a
//! new table (entries per second). Resident memory is the process's resident set growth while
//! the table is built (`/proc/self/statm`; the mmap store's touched pages count in it too).

use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use serde::Serialize;
use weir_backends::FsCheckpointStorage;
use weir_core::checkpoint::{CheckpointMetadata, CheckpointStorage, OperatorSnapshot, StateHandle};
use weir_core::keyed::KeyGroups;
use weir_core::state::{KeyedRestore, KeyedSnapshot, KeyedTable, StateBackendRef};

use super::super::medians::{self, Medians, Metric, Run, cell, num};
use super::super::round_robin;
use super::{STRATEGIES, Strategy};
use crate::cli::state_backend;

/// Key groups of the table (Flink's default max parallelism).
const KEY_GROUPS: usize = 128;
/// Keys: quick, full.
const KEYS: [&[u64]; 2] = [&[1_000, 100_000], &[1_000, 100_000, 1_000_000, 10_000_000]];
/// Fractions of the keys changed between the two checkpoints.
const FRACTIONS: [f64; 3] = [0.001, 0.01, 0.1];
/// A prime stride over the keys, coprime to every size in [`KEYS`].
const STRIDE: u64 = 1_000_003;
/// Bytes of one entry in a snapshot's payload: the key and the value in their codecs.
const ENTRY_BYTES: u64 = 8 + 16;

type Table = KeyedTable<u64, (u64, u64)>;

/// One configuration.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Config {
    name: String,
    strategy: Strategy,
    keys: u64,
    fraction: f64,
}

fn configs(quick: bool) -> Vec<Config> {
    let mut configs = Vec::new();
    for &keys in KEYS[usize::from(!quick)] {
        for fraction in FRACTIONS {
            for strategy in STRATEGIES {
                configs.push(Config {
                    name: format!("{}-{keys}-{}pct", strategy.name(), fraction * 100.0),
                    strategy,
                    keys,
                    fraction,
                });
            }
        }
    }
    configs
}

/// One run.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RunMetrics {
    config: String,
    round: usize,
    inserts_per_s: f64,
    accesses_per_s: f64,
    resident_growth_bytes: u64,
    /// The synchronous part of checkpoint 2 on the task thread, ms.
    stall_ms: f64,
    /// Checkpoint 2 from the snapshot to the durable handle, ms.
    checkpoint_ms: f64,
    /// Bytes checkpoint 2 wrote (state file and new shared files).
    written_bytes: u64,
    /// Of those, the new shared files: the increment itself (0 for heap, which writes its
    /// entries into the state file).
    increment_bytes: u64,
    /// The changed entries' bytes (key and value).
    changed_bytes: u64,
    restore_entries_per_s: f64,
}

impl Run for RunMetrics {
    fn config(&self) -> &str {
        &self.config
    }
}

const METRICS: &[Metric<RunMetrics>] = &[
    ("inserts_per_s", |r| Some(r.inserts_per_s)),
    ("accesses_per_s", |r| Some(r.accesses_per_s)),
    ("resident_growth_bytes", |r| {
        Some(r.resident_growth_bytes as f64)
    }),
    ("stall_ms", |r| Some(r.stall_ms)),
    ("checkpoint_ms", |r| Some(r.checkpoint_ms)),
    ("written_bytes", |r| Some(r.written_bytes as f64)),
    ("written_per_changed", |r| {
        (r.changed_bytes > 0).then(|| r.written_bytes as f64 / r.changed_bytes as f64)
    }),
    ("increment_per_changed", |r| {
        (r.changed_bytes > 0 && r.increment_bytes > 0)
            .then(|| r.increment_bytes as f64 / r.changed_bytes as f64)
    }),
    ("restore_entries_per_s", |r| Some(r.restore_entries_per_s)),
];

/// What `report.json` holds under `state`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Section {
    repeat: usize,
    key_groups: usize,
    entry_bytes: u64,
    configs: Vec<Config>,
    runs: Vec<RunMetrics>,
    medians: Medians,
}

/// Runs the section: every configuration once per round, round robin.
pub(super) fn run(quick: bool, repeat: usize, runs_dir: &Path) -> Result<Section, String> {
    let configs = configs(quick);
    let total = configs.len() * repeat;
    let mut done = 0;
    let runs = round_robin(&configs, repeat, |config, round| {
        let dir = runs_dir.join(format!("state-{}-{}", config.name, round + 1));
        let run = run_one(config, round, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        let run = run.map_err(|e| format!("{} round {}: {e}", config.name, round + 1))?;
        done += 1;
        println!(
            "[{done:>3}/{total}] round {} {:<34} stall {:.3} ms, {} bytes written ({:.2}x changed), restore {:.0} entries/s",
            round + 1,
            config.name,
            run.stall_ms,
            run.written_bytes,
            run.written_bytes as f64 / run.changed_bytes.max(1) as f64,
            run.restore_entries_per_s
        );
        Ok(run)
    })?;
    let medians = medians::medians(configs.iter().map(|c| c.name.as_str()), &runs, METRICS);
    Ok(Section {
        repeat,
        key_groups: KEY_GROUPS,
        entry_bytes: ENTRY_BYTES,
        configs,
        runs,
        medians,
    })
}

fn run_one(config: &Config, round: usize, dir: &Path) -> Result<RunMetrics, String> {
    let checkpoints = dir.join("checkpoints");
    let storage = FsCheckpointStorage::new(checkpoints.clone(), 2).map_err(|e| e.to_string())?;
    let backend = state_backend::build(
        config.strategy.backend(),
        Some(&dir.join("local")),
        Some((checkpoints, storage.shared_registry())),
    )?;
    let layout = KeyGroups::new(KEY_GROUPS, 1).map_err(|e| e.to_string())?;
    let mut rng = Pcg64::seed_from_u64(round as u64);
    let resident_before = resident_bytes();
    let mut table = new_table(&backend, &layout)?;
    let started = Instant::now();
    for key in 0..config.keys {
        table.insert(key, (key, 0));
    }
    let inserts_per_s = config.keys as f64 / started.elapsed().as_secs_f64().max(1e-9);
    let resident_growth_bytes = resident_bytes().saturating_sub(resident_before);
    let accesses = config.keys.min(1_000_000);
    let started = Instant::now();
    for _ in 0..accesses {
        let key = rng.random_range(0..config.keys);
        table.update_slot(&key, |slot| {
            if let Some((_, n)) = slot {
                *n += 1;
            }
        });
    }
    let accesses_per_s = accesses as f64 / started.elapsed().as_secs_f64().max(1e-9);
    checkpoint(&storage, config.strategy, &table, 1)?;
    let changed = ((config.keys as f64 * config.fraction).round() as u64).max(1);
    // Distinct keys spread over the groups: `i × STRIDE mod keys` is a permutation (the stride
    // is a prime that divides no table size here).
    for i in 0..changed {
        let key = (i * STRIDE) % config.keys;
        table.insert(key, (key, u64::MAX));
    }
    let (stall_ms, checkpoint_ms, handle) = checkpoint(&storage, config.strategy, &table, 2)?;
    drop(table);
    let latest = storage
        .latest(&mut |_| {})
        .map_err(|e| e.to_string())?
        .ok_or("checkpoint 2 is not found")?;
    let started = Instant::now();
    let mut restored = new_table(&backend, &layout)?;
    let snapshot = storage
        .read_state(&latest, &handle, restored.key_groups())
        .map_err(|e| e.to_string())?;
    let mut restore =
        KeyedRestore::from_snapshots(std::slice::from_ref(&snapshot)).map_err(|e| e.to_string())?;
    restore.restore(&mut restored).map_err(|e| e.to_string())?;
    restore.finish().map_err(|e| e.to_string())?;
    let restore_s = started.elapsed().as_secs_f64().max(1e-9);
    if restored.len() as u64 != config.keys {
        return Err(format!(
            "restored {} entries of {}",
            restored.len(),
            config.keys
        ));
    }
    Ok(RunMetrics {
        config: config.name.clone(),
        round: round + 1,
        inserts_per_s,
        accesses_per_s,
        resident_growth_bytes,
        stall_ms,
        checkpoint_ms,
        written_bytes: handle.checkpointed_bytes(),
        increment_bytes: handle.shared_written_bytes,
        changed_bytes: changed * ENTRY_BYTES,
        restore_entries_per_s: config.keys as f64 / restore_s,
    })
}

fn new_table(backend: &StateBackendRef, layout: &KeyGroups) -> Result<Table, String> {
    KeyedTable::with_backend("values", layout, 0, backend.as_ref()).map_err(|e| e.to_string())
}

/// Checkpoint `id` of `table`, completed: the synchronous stall (ms), the time to the durable
/// handle (ms) and the handle.
fn checkpoint(
    storage: &FsCheckpointStorage,
    strategy: Strategy,
    table: &Table,
    id: u64,
) -> Result<(f64, f64, StateHandle), String> {
    let started = Instant::now();
    let mut keyed = KeyedSnapshot::new(table.key_groups(), strategy.snapshot());
    keyed.add(table);
    let stall = started.elapsed();
    let parts = keyed.into_parts().map_err(|e| e.to_string())?;
    let snapshot = OperatorSnapshot {
        uid: "values".into(),
        subtask: 0,
        parallelism: 1,
        key_groups: table.key_groups(),
        keyed: parts.blobs,
        shared: parts.shared,
        shared_written_bytes: parts.shared_written_bytes,
        ..OperatorSnapshot::default()
    };
    let handle = storage
        .write_state(id, &snapshot)
        .map_err(|e| e.to_string())?;
    let total = started.elapsed();
    storage
        .complete(&CheckpointMetadata {
            id,
            triggered_at_ms: 0,
            previous_completed: id - 1,
            max_parallelism: KEY_GROUPS,
            states: vec![handle.clone()],
            pending_parts: Vec::new(),
            channel_states: Vec::new(),
        })
        .map_err(|e| e.to_string())?;
    Ok((stall.as_secs_f64() * 1e3, total.as_secs_f64() * 1e3, handle))
}

/// The process's resident set, bytes (0 where `/proc` is not there).
fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The section of `report.md`.
pub(super) fn markdown(section: &Section) -> String {
    use std::fmt::Write as _;
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "## State backends against state size and changed fraction\n\n\
         A keyed table (`u64` → `(u64, u64)`, {} key groups, one subtask) driven directly: the \
         keys inserted, a million random updates (at most one per key on average), checkpoint 1, \
         then the given fraction of the keys changed and checkpoint 2, restored into a new \
         table. Stall: checkpoint 2's synchronous part on the task thread. Written: its state \
         file and new shared files; changed: the changed entries' bytes ({} each). {} rounds \
         round robin; cells: `median (lowest–highest)`.\n",
        section.key_groups, section.entry_bytes, section.repeat
    );
    let _ = writeln!(
        w,
        "| configuration | keys | changed | inserts/s | updates/s | resident growth bytes | stall ms | checkpoint ms | written bytes | written / changed | increment / changed | restore entries/s |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for c in &section.configs {
        let m = |metric, digits| cell(&section.medians, &c.name, metric, 1.0, digits);
        let _ = writeln!(
            w,
            "| {} | {} | {}% | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.name,
            c.keys,
            c.fraction * 100.0,
            m("inserts_per_s", 0),
            m("accesses_per_s", 0),
            m("resident_growth_bytes", 0),
            m("stall_ms", 3),
            m("checkpoint_ms", 1),
            m("written_bytes", 0),
            m("written_per_changed", 2),
            m("increment_per_changed", 2),
            m("restore_entries_per_s", 0),
        );
    }
    let worst = section
        .configs
        .iter()
        .filter(|c| c.strategy == Strategy::MmapIncremental && c.keys >= 100_000)
        .filter_map(|c| medians::get(&section.medians, &c.name, "increment_per_changed"))
        .fold(None, |acc: Option<f64>, r| {
            Some(acc.map_or(r, |a| a.max(r)))
        });
    let _ = writeln!(
        w,
        "\nIncrement (the new shared files), worst mmap configuration of at least 100 000 keys: \
         {}× the changed entries' bytes (target at most 1.2× plus metadata). The metadata is \
         the state file (every owned key group's chain of shared files, written at every \
         checkpoint) and a frame header per changed key group: at 0.1% of 100 000 keys it is \
         most of what a checkpoint writes (written / changed).\n",
        num(worst, 2)
    );
    md
}
