//! A micro measure of checkpoint storage: writes one checkpoint of `MIB` MiB (default 256) as
//! 4 subtasks × 128 key groups from 4 threads, completes it, verifies it whole (`latest`) and
//! reads it back (`read_state`), printing MB/s of each phase.
//!
//! `cargo run --release -p weir-backends --example storage_throughput -- [MIB] [DIR]`
//! (DIR defaults to a temporary folder; the page cache makes the reads optimistic).

use std::time::Instant;

use weir_backends::FsCheckpointStorage;
use weir_backends::storage::DEFAULT_RETAINED;
use weir_core::checkpoint::{CheckpointMetadata, CheckpointStorage, OperatorSnapshot};

const SUBTASKS: usize = 4;
const GROUPS_PER_SUBTASK: usize = 128;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(Ok(256), |a| a.parse())?;
    let tmp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| tmp.path().join("checkpoints"), Into::into);
    let storage = FsCheckpointStorage::new(dir, DEFAULT_RETAINED)?;
    let blob_bytes = mib * 1024 * 1024 / (SUBTASKS * GROUPS_PER_SUBTASK);
    let snapshots: Vec<OperatorSnapshot> = (0..SUBTASKS)
        .map(|subtask| {
            let key_groups = subtask * GROUPS_PER_SUBTASK..(subtask + 1) * GROUPS_PER_SUBTASK;
            OperatorSnapshot {
                uid: "window".into(),
                subtask,
                parallelism: SUBTASKS,
                operator_state: vec![1; 64],
                keyed: key_groups
                    .clone()
                    .map(|g| vec![g as u8; blob_bytes])
                    .collect(),
                key_groups,
                ..OperatorSnapshot::default()
            }
        })
        .collect();
    let total_mb = (SUBTASKS * GROUPS_PER_SUBTASK * blob_bytes) as f64 / 1e6;
    let rate = |start: Instant| total_mb / start.elapsed().as_secs_f64();

    let start = Instant::now();
    let states = std::thread::scope(|scope| {
        let writers: Vec<_> = snapshots
            .iter()
            .map(|s| scope.spawn(|| storage.write_state(1, s)))
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().expect("writer thread"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let metadata = CheckpointMetadata {
        id: 1,
        triggered_at_ms: 0,
        previous_completed: 0,
        max_parallelism: SUBTASKS * GROUPS_PER_SUBTASK,
        states,
        pending_parts: Vec::new(),
        channel_states: Vec::new(),
    };
    storage.complete(&metadata)?;
    println!(
        "write + sync + complete: {:.0} MB/s ({total_mb:.0} MB)",
        rate(start)
    );

    let start = Instant::now();
    let checkpoint = storage
        .latest(&mut |w| eprintln!("{w}"))?
        .ok_or("no checkpoint")?;
    println!("latest (verify whole): {:.0} MB/s", rate(start));

    let start = Instant::now();
    let mut read_bytes = 0;
    for handle in &checkpoint.metadata.states {
        let state = storage.read_state(&checkpoint, handle, handle.key_groups.clone())?;
        read_bytes += state.keyed.iter().map(Vec::len).sum::<usize>();
    }
    assert_eq!(read_bytes, SUBTASKS * GROUPS_PER_SUBTASK * blob_bytes);
    println!("read_state (all groups): {:.0} MB/s", rate(start));
    Ok(())
}
