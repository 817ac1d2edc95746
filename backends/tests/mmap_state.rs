//! The memory-mapped state backend: its store behind `KeyedTable`, and incremental chains
//! through the file-system checkpoint storage (retention, fallback, rescaling).

use std::collections::BTreeMap;
use std::path::Path;

use weir_backends::state::MmapStore;
use weir_backends::storage::FsCheckpointStorage;
use weir_backends::{MmapBackend, MmapConfig};
use weir_core::checkpoint::{
    CheckpointId, CheckpointMetadata, CheckpointStorage, CompletedCheckpoint, OperatorSnapshot,
    SHARED_FOLDER, StateHandle,
};
use weir_core::keyed::KeyGroups;
use weir_core::state::{KeyedBytes, KeyedRestore, KeyedSnapshot, KeyedTable, SnapshotMode};

const GROUPS: usize = 128;

fn layout(parallelism: usize) -> KeyGroups {
    KeyGroups::new(GROUPS, parallelism).unwrap()
}

/// A backend over `dir` (segments in `dir/local`, shared files in `dir/shared`) learning
/// completions from `storage`.
fn backend(dir: &Path, storage: &FsCheckpointStorage, segment_bytes: usize) -> MmapBackend {
    let mut config = MmapConfig::new(dir.join("local"), Some(storage.dir().to_path_buf()));
    config.segment_bytes = segment_bytes;
    MmapBackend::new(config, storage.shared_registry()).unwrap()
}

fn table(backend: &MmapBackend, parallelism: usize, subtask: usize) -> KeyedTable<u64, String> {
    KeyedTable::with_backend("counts", &layout(parallelism), subtask, backend).unwrap()
}

/// Takes a checkpoint `id` of `tables` (one per subtask) and completes it unless `abort`.
/// Returns the handles written.
fn checkpoint(
    storage: &FsCheckpointStorage,
    id: CheckpointId,
    tables: &[&KeyedTable<u64, String>],
    abort: bool,
) -> Vec<StateHandle> {
    let handles: Vec<StateHandle> = tables
        .iter()
        .enumerate()
        .map(|(subtask, table)| {
            let mut keyed = KeyedSnapshot::new(table.key_groups(), SnapshotMode::Async);
            keyed.add(*table);
            let parts = keyed.into_parts().unwrap();
            let snapshot = OperatorSnapshot {
                uid: "counter".into(),
                subtask,
                parallelism: tables.len(),
                key_groups: table.key_groups(),
                keyed: parts.blobs,
                shared: parts.shared,
                shared_written_bytes: parts.shared_written_bytes,
                ..OperatorSnapshot::default()
            };
            storage.write_state(id, &snapshot).unwrap()
        })
        .collect();
    if abort {
        storage.discard(id).unwrap();
    } else {
        storage
            .complete(&CheckpointMetadata {
                id,
                triggered_at_ms: 0,
                previous_completed: 0,
                max_parallelism: GROUPS,
                states: handles.clone(),
                pending_parts: Vec::new(),
                channel_states: Vec::new(),
            })
            .unwrap();
    }
    handles
}

/// Restores subtask `subtask` of `parallelism` from `checkpoint`.
fn restore(
    storage: &FsCheckpointStorage,
    backend: &MmapBackend,
    checkpoint: &CompletedCheckpoint,
    parallelism: usize,
    subtask: usize,
) -> Result<KeyedTable<u64, String>, String> {
    let mut table = table(backend, parallelism, subtask);
    let mut snapshots = Vec::new();
    for handle in &checkpoint.metadata.states {
        let owned = table.key_groups();
        let wanted = owned.start.max(handle.key_groups.start)..owned.end.min(handle.key_groups.end);
        snapshots.push(
            storage
                .read_state(checkpoint, handle, wanted)
                .map_err(|e| e.to_string())?,
        );
    }
    let mut restore = KeyedRestore::from_snapshots(&snapshots).map_err(|e| e.to_string())?;
    restore.restore(&mut table).map_err(|e| e.to_string())?;
    restore.finish().map_err(|e| e.to_string())?;
    Ok(table)
}

fn contents(table: &KeyedTable<u64, String>) -> BTreeMap<u64, String> {
    let mut all = BTreeMap::new();
    table.for_each(|k, v| {
        all.insert(*k, v.clone());
    });
    all
}

fn shared_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(SHARED_FOLDER))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn referenced(handles: &[StateHandle]) -> Vec<String> {
    let mut names: Vec<String> = handles
        .iter()
        .flat_map(|h| &h.shared)
        .map(|f| f.file.strip_prefix("shared/").unwrap().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_table_api_reads_and_changes_entries_as_on_the_heap() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 2).unwrap();
    let backend = backend(tmp.path(), &storage, 256);
    let mut mmap = table(&backend, 1, 0);
    let mut heap = KeyedTable::<u64, String>::new("counts", &layout(1), 0);
    let mut x = 7u64;
    for _ in 0..5_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let key = (x >> 33) % 300;
        for t in [&mut mmap, &mut heap] {
            match (x >> 20) % 6 {
                0 => drop(t.insert(key, format!("v{x}"))),
                1 => drop(t.remove(&key)),
                2 => t.upsert_with(&key, String::new, |v| v.push('u')),
                3 => t.merge(&key, "m".into(), |a, b| a.push_str(&b)),
                4 => t.update_slot(&key, |slot| {
                    if slot.as_ref().is_some_and(|v| v.len() > 20) {
                        *slot = None;
                    }
                }),
                _ => assert_eq!(t.contains(&key), t.get(&key).is_some()),
            }
        }
        assert_eq!(mmap.get(&key), heap.get(&key));
    }
    assert_eq!(mmap.len(), heap.len());
    assert_eq!(contents(&mmap), contents(&heap));
    mmap.retain(|k, _| k % 2 == 0);
    heap.retain(|k, _| k % 2 == 0);
    assert_eq!(contents(&mmap), contents(&heap));
    mmap.clear();
    assert!(mmap.is_empty());
}

#[test]
fn values_roll_over_into_new_segments_and_compaction_bounds_the_garbage() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 2).unwrap();
    let backend = backend(tmp.path(), &storage, 1024);
    let mut store: MmapStore = backend.store("s", 0..4);
    for k in 0..200u32 {
        store.put(k as usize % 4, &k.to_le_bytes(), &[k as u8; 40]);
    }
    assert!(
        store.segment_count() > 1,
        "8000 bytes fill several 1 KiB segments"
    );
    // A value larger than a segment gets a segment of its own.
    store.put(0, b"big", &[9; 5000]);
    assert_eq!(store.get(0, b"big"), Some(&[9u8; 5000][..]));
    let live = 200 * 40 + 5000;
    for round in 0..50u8 {
        for k in 0..200u32 {
            store.put(k as usize % 4, &k.to_le_bytes(), &[round; 40]);
        }
        assert!(
            store.value_bytes() <= 2 * live + 1024 + 40,
            "garbage beyond the live bytes and a segment is compacted away"
        );
    }
    for k in 0..200u32 {
        assert_eq!(
            store.get(k as usize % 4, &k.to_le_bytes()),
            Some(&[49u8; 40][..])
        );
    }
    assert!(store.remove(1, &1u32.to_le_bytes()));
    assert!(!store.remove(1, &1u32.to_le_bytes()));
    assert_eq!(store.get(1, &1u32.to_le_bytes()), None);
    let mut seen = 0;
    for g in 0..4 {
        store.for_each(g, &mut |_, _| seen += 1);
    }
    assert_eq!(seen, 200);
}

#[test]
fn retained_incremental_checkpoints_restore_and_unreferenced_files_go() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 2).unwrap();
    let backend = backend(tmp.path(), &storage, 64 * 1024);
    let mut t = table(&backend, 1, 0);
    let mut states = BTreeMap::new();
    let mut handles = BTreeMap::new();
    for id in 1..=12u64 {
        for k in 0..2_000u64 {
            if id == 1 || k % 97 == id % 97 || k % 89 == 0 {
                t.insert(k, format!("{id}-{k}"));
            }
        }
        if id % 3 == 0 {
            t.remove(&(id * 7));
        }
        handles.insert(id, checkpoint(&storage, id, &[&t], false));
        states.insert(id, contents(&t));
        t.insert(5_000 + id, "after the barrier".into());
    }
    // The two retained checkpoints restore to their state, and nothing else is on disk.
    let mut alive = referenced(&handles[&12]);
    alive.extend(referenced(&handles[&11]));
    alive.sort();
    alive.dedup();
    assert_eq!(shared_files(storage.dir()), alive);
    for id in [11, 12] {
        let checkpoint = storage.load(&storage.folder(id)).unwrap();
        let restored = restore(&storage, &backend, &checkpoint, 1, 0).unwrap();
        assert_eq!(contents(&restored), states[&id], "checkpoint {id}");
    }
}

#[test]
fn chain_compaction_bounds_the_files_a_checkpoint_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 1).unwrap();
    let mut config = MmapConfig::new(tmp.path().join("local"), Some(storage.dir().to_path_buf()));
    config.max_chain = 3;
    config.rebase_ratio = 100.0;
    let backend = MmapBackend::new(config, storage.shared_registry()).unwrap();
    let mut t = table(&backend, 1, 0);
    for id in 1..=10u64 {
        // Every group changes at every checkpoint.
        for k in 0..1_000u64 {
            t.insert(k, format!("{id}"));
        }
        let handles = checkpoint(&storage, id, &[&t], false);
        assert!(
            handles[0].shared.len() <= 3,
            "checkpoint {id}: {:?}",
            handles[0].shared
        );
        assert_eq!(shared_files(storage.dir()), referenced(&handles));
    }
    let latest = storage.latest(&mut |_| {}).unwrap().unwrap();
    let restored = restore(&storage, &backend, &latest, 1, 0).unwrap();
    assert_eq!(contents(&restored), contents(&t));
}

#[test]
fn an_increment_writes_about_the_changed_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 2).unwrap();
    let backend = backend(tmp.path(), &storage, 1 << 20);
    let mut t = table(&backend, 1, 0);
    let value = |k: u64, id: u64| format!("{id:08}-{k:024}");
    for k in 0..20_000u64 {
        t.insert(k, value(k, 0));
    }
    let full = checkpoint(&storage, 1, &[&t], false);
    let changed = 200u64; // 1% of the keys
    for k in 0..changed {
        t.insert(k * 100, value(k, 1));
    }
    let increment = checkpoint(&storage, 2, &[&t], false);
    // Key (8 bytes) and value (4 + 33 bytes) in their codecs.
    let changed_bytes = changed * (8 + 4 + 33);
    let written = increment[0].shared_written_bytes;
    assert!(written >= changed_bytes, "{written} < {changed_bytes}");
    // Per group: a frame (length, count, checksum: 20 bytes) and two length bytes per entry.
    let metadata = GROUPS as u64 * 20 + 8;
    assert!(
        written as f64 <= 1.2 * changed_bytes as f64 + metadata as f64,
        "an increment of {written} bytes for {changed_bytes} changed bytes"
    );
    assert!(full[0].shared_written_bytes > 10 * written);
}

#[test]
fn a_damaged_shared_file_makes_the_restore_fall_back() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 3).unwrap();
    let backend = backend(tmp.path(), &storage, 64 * 1024);
    let mut t = table(&backend, 1, 0);
    for k in 0..500u64 {
        t.insert(k, format!("first {k}"));
    }
    checkpoint(&storage, 1, &[&t], false);
    let before = contents(&t);
    t.insert(3, "second".into());
    let second = checkpoint(&storage, 2, &[&t], false);
    // The second checkpoint's own file: its newest link.
    let own = second[0].shared.last().unwrap().file.clone();
    let path = storage.dir().join(&own);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 6;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let mut warnings = Vec::new();
    let latest = storage
        .latest(&mut |w| warnings.push(w.to_owned()))
        .unwrap()
        .unwrap();
    assert_eq!(latest.metadata.id, 1);
    assert!(
        warnings[0].contains(own.as_str()) && warnings[0].contains("checksum mismatch"),
        "{warnings:?}"
    );
    let restored = restore(&storage, &backend, &latest, 1, 0).unwrap();
    assert_eq!(contents(&restored), before);
    // Read directly, the damaged chain is an error naming the file, not a panic.
    let damaged = CompletedCheckpoint {
        path: storage.folder(2),
        metadata: CheckpointMetadata {
            id: 2,
            triggered_at_ms: 0,
            previous_completed: 1,
            max_parallelism: GROUPS,
            states: second,
            pending_parts: Vec::new(),
            channel_states: Vec::new(),
        },
    };
    let error = restore(&storage, &backend, &damaged, 1, 0).unwrap_err();
    assert!(error.contains(own.as_str()), "{error}");
    std::fs::remove_file(&path).unwrap();
    let error = restore(&storage, &backend, &damaged, 1, 0).unwrap_err();
    assert!(error.contains("missing"), "{error}");
}

#[test]
fn an_aborted_checkpoint_is_never_the_base_of_an_increment() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 1).unwrap();
    let backend = backend(tmp.path(), &storage, 64 * 1024);
    let mut t = table(&backend, 1, 0);
    for k in 0..300u64 {
        t.insert(k, "a".into());
    }
    checkpoint(&storage, 1, &[&t], false);
    t.insert(1, "b".into());
    let aborted = checkpoint(&storage, 2, &[&t], true);
    let aborted_file = &aborted[0].shared.last().unwrap().file;
    t.insert(2, "c".into());
    let third = checkpoint(&storage, 3, &[&t], false);
    assert!(third[0].shared.iter().all(|f| &f.file != aborted_file));
    let files = shared_files(storage.dir());
    assert!(!files.iter().any(|f| aborted_file.ends_with(f.as_str())));
    let latest = storage.latest(&mut |_| {}).unwrap().unwrap();
    let restored = restore(&storage, &backend, &latest, 1, 0).unwrap();
    assert_eq!(restored.get(&1).as_deref(), Some("b"));
    assert_eq!(restored.get(&2).as_deref(), Some("c"));
}

#[test]
fn a_restore_at_another_parallelism_takes_only_the_owned_groups() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 2).unwrap();
    let backend = backend(tmp.path(), &storage, 64 * 1024);
    let mut one = table(&backend, 1, 0);
    for k in 0..1_000u64 {
        one.insert(k, k.to_string());
    }
    checkpoint(&storage, 1, &[&one], false);
    for k in 0..1_000u64 {
        if k % 10 == 0 {
            one.remove(&k);
        }
    }
    checkpoint(&storage, 2, &[&one], false);
    let latest = storage.latest(&mut |_| {}).unwrap().unwrap();
    let mut merged = BTreeMap::new();
    let mut halves = Vec::new();
    for subtask in 0..2 {
        let part = restore(&storage, &backend, &latest, 2, subtask).unwrap();
        let owned = part.key_groups();
        part.for_each(|k, _| assert!(owned.contains(&layout(2).group_of(k))));
        merged.extend(contents(&part));
        halves.push(part);
    }
    assert_eq!(merged, contents(&one));
    // The restored halves go on incrementally from the restored chains.
    let new_key = (100_000u64..)
        .find(|k| halves[0].key_groups().contains(&layout(2).group_of(k)))
        .unwrap();
    halves[0].insert(new_key, "new".into());
    let refs: Vec<&KeyedTable<u64, String>> = halves.iter().collect();
    checkpoint(&storage, 3, &refs, false);
    let latest = storage.latest(&mut |_| {}).unwrap().unwrap();
    let back = restore(&storage, &backend, &latest, 1, 0).unwrap();
    let mut expected = contents(&one);
    expected.insert(new_key, "new".into());
    assert_eq!(contents(&back), expected);
}

#[test]
fn heap_checkpoints_restore_into_mmap_and_not_the_other_way() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = FsCheckpointStorage::new(tmp.path().join("ck"), 2).unwrap();
    let backend = backend(tmp.path(), &storage, 64 * 1024);
    let mut heap = KeyedTable::<u64, String>::new("counts", &layout(1), 0);
    for k in 0..100u64 {
        heap.insert(k, k.to_string());
    }
    checkpoint(&storage, 1, &[&heap], false);
    let latest = storage.latest(&mut |_| {}).unwrap().unwrap();
    let mmap = restore(&storage, &backend, &latest, 1, 0).unwrap();
    assert_eq!(contents(&mmap), contents(&heap));
    checkpoint(&storage, 2, &[&mmap], false);
    let latest = storage.latest(&mut |_| {}).unwrap().unwrap();
    let snapshot = storage
        .read_state(&latest, &latest.metadata.states[0], 0..GROUPS)
        .unwrap();
    let mut back = KeyedTable::<u64, String>::new("counts", &layout(1), 0);
    let error = KeyedRestore::from_snapshots([&snapshot])
        .unwrap()
        .restore(&mut back)
        .unwrap_err();
    assert!(
        error.to_string().contains("--state-backend mmap"),
        "{error}"
    );
    // Full blobs of an mmap table restore anywhere.
    let mut full = KeyedSnapshot::new(mmap.key_groups(), SnapshotMode::Async);
    full.add(&mmap);
    let mut restore = KeyedRestore::new();
    restore.add(0..GROUPS, full.into_blobs()).unwrap();
    restore.restore(&mut back).unwrap();
    assert_eq!(contents(&back), contents(&heap));
}
