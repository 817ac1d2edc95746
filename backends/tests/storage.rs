//! Checkpoint storage on a real folder: round trips, ranged reads, retention, damage of every
//! kind and where it is, concurrent writers.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use weir_backends::FsCheckpointStorage;
use weir_backends::storage::{DEFAULT_RETAINED, METADATA_FILE};
use weir_core::checkpoint::{
    ChannelInfo, ChannelSide, CheckpointId, CheckpointMetadata, CheckpointStorage,
    CompletedCheckpoint, OperatorSnapshot, StateHandle, StorageError,
};

const MAX_PARALLELISM: usize = 8;

/// A keyed snapshot of `uid`'s `subtask` out of 2 (key groups 0..4 or 4..8) whose bytes
/// depend on `seed`.
fn keyed(uid: &str, subtask: usize, seed: u8) -> OperatorSnapshot {
    let key_groups = subtask * 4..subtask * 4 + 4;
    OperatorSnapshot {
        uid: uid.into(),
        subtask,
        parallelism: 2,
        operator_state: vec![seed; 10 + subtask],
        keyed: key_groups
            .clone()
            .map(|g| vec![seed.wrapping_add(g as u8); g * 3])
            .collect(),
        key_groups,
        ..OperatorSnapshot::default()
    }
}

/// A non-keyed snapshot (a source's offsets).
fn source(seed: u8) -> OperatorSnapshot {
    OperatorSnapshot {
        uid: "source".into(),
        subtask: 0,
        parallelism: 1,
        operator_state: vec![seed; 24],
        key_groups: 0..0,
        keyed: Vec::new(),
        ..OperatorSnapshot::default()
    }
}

fn snapshots(seed: u8) -> Vec<OperatorSnapshot> {
    vec![
        source(seed),
        keyed("tag", 0, seed),
        keyed("tag", 1, seed),
        keyed("window 1m", 0, seed),
    ]
}

/// Writes `snapshots` into checkpoint `id` and completes it.
fn checkpoint(
    storage: &FsCheckpointStorage,
    id: CheckpointId,
    snapshots: &[OperatorSnapshot],
) -> CheckpointMetadata {
    let states = snapshots
        .iter()
        .map(|s| storage.write_state(id, s).unwrap())
        .collect();
    let metadata = CheckpointMetadata {
        id,
        triggered_at_ms: 1_000 * id,
        previous_completed: 0,
        max_parallelism: MAX_PARALLELISM,
        states,
        pending_parts: Vec::new(),
        channel_states: Vec::new(),
    };
    storage.complete(&metadata).unwrap();
    metadata
}

fn storage(dir: &Path, retained: usize) -> FsCheckpointStorage {
    FsCheckpointStorage::new(dir.join("checkpoints"), retained).unwrap()
}

/// `latest`, with its warnings.
fn latest(
    storage: &FsCheckpointStorage,
) -> (
    Result<Option<CompletedCheckpoint>, StorageError>,
    Vec<String>,
) {
    let mut warnings = Vec::new();
    let found = storage.latest(&mut |w| warnings.push(w.to_string()));
    (found, warnings)
}

fn read_all(
    storage: &FsCheckpointStorage,
    checkpoint: &CompletedCheckpoint,
    handle: &StateHandle,
) -> OperatorSnapshot {
    storage
        .read_state(checkpoint, handle, 0..MAX_PARALLELISM)
        .unwrap()
}

fn folders(storage: &FsCheckpointStorage) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(storage.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn snapshots_round_trip_through_a_completed_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    assert!(latest(&storage).0.unwrap().is_none());
    let written = snapshots(7);
    let metadata = checkpoint(&storage, 1, &written);

    let (found, warnings) = latest(&storage);
    let found = found.unwrap().expect("checkpoint 1");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(found.metadata, metadata);
    assert_eq!(found.path, storage.folder(1));
    for (snapshot, handle) in written.iter().zip(&found.metadata.states) {
        assert_eq!(read_all(&storage, &found, handle), *snapshot);
    }
    let files: Vec<&str> = metadata.states.iter().map(|h| h.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "source-0.state",
            "tag-0.state",
            "tag-1.state",
            "~77696e646f7720316d-0.state"
        ]
    );
}

#[test]
fn a_ranged_read_returns_and_reads_only_the_groups_asked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    let snapshot = keyed("tag", 1, 3); // key groups 4..8
    checkpoint(&storage, 1, std::slice::from_ref(&snapshot));
    let found = storage.load(&storage.folder(1)).unwrap();
    let handle = &found.metadata.states[0];

    let read = |groups: Range<usize>| storage.read_state(&found, handle, groups);
    let part = read(5..7).unwrap();
    assert_eq!(part.key_groups, 5..7);
    assert_eq!(part.keyed, snapshot.keyed[1..3]);
    assert_eq!(part.operator_state, snapshot.operator_state);
    let overlapping = read(2..6).unwrap();
    assert_eq!(overlapping.key_groups, 4..6);
    assert_eq!(overlapping.keyed, snapshot.keyed[0..2]);
    let disjoint = read(0..4).unwrap();
    assert!(disjoint.keyed.is_empty() && disjoint.key_groups.is_empty());
    assert_eq!(disjoint.operator_state, snapshot.operator_state);

    // Damage key group 7's blob: a read of 5..7 never touches it, a read of 7 refuses it.
    let (offset, _) = handle.key_group_offsets[3];
    flip(&storage.folder(1).join(&handle.file), offset, 0x01);
    assert_eq!(read(5..7).unwrap().keyed, snapshot.keyed[1..3]);
    let error = read(7..8).unwrap_err().to_string();
    assert!(
        error.contains("chk-1/tag-1.state: key group 7: checksum mismatch (stored 0x"),
        "{error}"
    );
}

#[test]
fn retention_keeps_the_newest_completed_and_the_one_in_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), 2);
    checkpoint(&storage, 1, &snapshots(1));
    storage.write_state(2, &source(2)).unwrap(); // never completed
    checkpoint(&storage, 3, &snapshots(3));
    storage.write_state(5, &source(5)).unwrap(); // in progress, beyond the next completion
    checkpoint(&storage, 4, &snapshots(4));

    assert_eq!(folders(&storage), ["chk-3", "chk-4", "chk-5"]);
    assert_eq!(storage.highest_id().unwrap(), Some(5));
    let found = latest(&storage).0.unwrap().expect("checkpoint 4");
    assert_eq!(found.metadata.id, 4);
    assert!(storage.load(&storage.folder(3)).is_ok());
}

#[test]
fn retained_must_be_at_least_one() {
    let tmp = tempfile::tempdir().unwrap();
    let error = FsCheckpointStorage::new(tmp.path().into(), 0).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("num-retained must be at least 1")
    );
}

#[test]
fn discard_removes_an_aborted_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    storage.write_state(1, &source(1)).unwrap();
    storage.discard(1).unwrap();
    storage.discard(2).unwrap(); // nothing there: no error
    assert!(folders(&storage).is_empty());
    // The outputs' parts of an aborted checkpoint stay, to be carried into the next one; the
    // incomplete folder goes with the next completion.
    storage.write_state(3, &source(1)).unwrap();
    let parts = storage.folder(3).join(weir_core::checkpoint::PARTS_FOLDER);
    std::fs::create_dir_all(&parts).unwrap();
    std::fs::write(parts.join("out.jsonl.0.0"), "{}\n").unwrap();
    storage.discard(3).unwrap();
    let left: Vec<_> = std::fs::read_dir(storage.folder(3))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        [weir_core::checkpoint::PARTS_FOLDER],
        "state files removed"
    );
    assert!(parts.join("out.jsonl.0.0").exists());
    checkpoint(&storage, 4, &[source(1)]);
    assert!(
        !storage.folder(3).exists(),
        "removed at the next completion"
    );
}

#[test]
fn a_completed_checkpoint_takes_no_more_state() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    checkpoint(&storage, 1, &[source(1)]);
    let error = storage.write_state(1, &source(2)).unwrap_err().to_string();
    assert!(
        error.ends_with("checkpoint 1 is already complete"),
        "{error}"
    );
}

#[test]
fn complete_refuses_metadata_listing_a_file_never_written() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    storage.write_state(1, &source(1)).unwrap();
    // A valid handle of a file written elsewhere, never into this checkpoint.
    let elsewhere = tempfile::tempdir().unwrap();
    let ghost = OperatorSnapshot {
        uid: "ghost".into(),
        ..source(1)
    };
    let handle = self::storage(elsewhere.path(), 1)
        .write_state(1, &ghost)
        .unwrap();
    let metadata = CheckpointMetadata {
        id: 1,
        triggered_at_ms: 0,
        previous_completed: 0,
        max_parallelism: MAX_PARALLELISM,
        states: vec![handle],
        pending_parts: Vec::new(),
        channel_states: Vec::new(),
    };
    let error = storage.complete(&metadata).unwrap_err();
    assert!(
        matches!(&error, StorageError::Io { path, .. } if path.ends_with("chk-1/ghost-0.state"))
    );
    assert!(!storage.folder(1).join(METADATA_FILE).exists());
}

fn flip(path: &Path, offset: u64, mask: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= mask;
    fs::write(path, bytes).unwrap();
}

fn truncate(path: &Path, bytes: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(bytes)
        .unwrap();
}

/// One way to damage checkpoint `chk` of `storage`, and the warning it must cause.
struct Damage {
    file: &'static str,
    apply: fn(&Path),
    reason: &'static str,
}

const DAMAGES: &[Damage] = &[
    Damage {
        file: "tag-1.state",
        apply: |p| flip(p, 75, 0x10),
        reason: "operator state: checksum mismatch (stored 0x",
    },
    Damage {
        file: "tag-1.state",
        apply: |p| truncate(p, 100),
        reason: "truncated: 100 bytes, the metadata says",
    },
    Damage {
        file: "tag-1.state",
        apply: |p| fs::remove_file(p).unwrap(),
        reason: "missing",
    },
    Damage {
        file: "source-0.state",
        apply: |p| flip(p, 0, 0xff),
        reason: "bad magic",
    },
    Damage {
        file: METADATA_FILE,
        apply: |p| flip(p, 40, 0x04),
        reason: "metadata: checksum mismatch (stored 0x",
    },
    Damage {
        file: METADATA_FILE,
        apply: |p| truncate(p, fs::metadata(p).unwrap().len() - 1),
        reason: "metadata: length field says",
    },
    Damage {
        file: METADATA_FILE,
        apply: |p| truncate(p, 5),
        reason: "truncated: 5 bytes, a metadata file has at least 20",
    },
];

#[test]
fn a_damaged_latest_checkpoint_falls_back_to_the_previous_one_with_a_warning() {
    for damage in DAMAGES {
        let tmp = tempfile::tempdir().unwrap();
        let storage = storage(tmp.path(), DEFAULT_RETAINED);
        checkpoint(&storage, 1, &snapshots(1));
        checkpoint(&storage, 2, &snapshots(2));
        let file = storage.folder(2).join(damage.file);
        (damage.apply)(&file);

        let (found, warnings) = latest(&storage);
        assert_eq!(found.unwrap().expect("checkpoint 1").metadata.id, 1);
        let expected = format!("chk-2/{}: {}", damage.file, damage.reason);
        assert!(
            warnings.len() == 1 && warnings[0].starts_with(&expected),
            "{warnings:?} should say {expected}"
        );
        let error = storage.load(&storage.folder(2)).unwrap_err().to_string();
        assert!(error.contains(damage.reason), "{error}");
    }
}

#[test]
fn a_damaged_only_checkpoint_is_a_clear_error() {
    for damage in DAMAGES {
        let tmp = tempfile::tempdir().unwrap();
        let storage = storage(tmp.path(), DEFAULT_RETAINED);
        checkpoint(&storage, 1, &snapshots(1));
        (damage.apply)(&storage.folder(1).join(damage.file));

        let (found, warnings) = latest(&storage);
        let Err(StorageError::NoCheckpoint { refused, .. }) = &found else {
            panic!("{found:?}");
        };
        let expected = format!("chk-1/{}: {}", damage.file, damage.reason);
        assert!(
            refused.len() == 1 && refused[0].starts_with(&expected),
            "{refused:?}"
        );
        assert_eq!(warnings.len(), 1);
        let message = found.unwrap_err().to_string();
        assert!(message.contains("no usable checkpoint") && message.contains(&expected));
    }
}

#[test]
fn a_folder_without_metadata_is_skipped_with_a_warning_and_is_no_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    checkpoint(&storage, 1, &snapshots(1));
    checkpoint(&storage, 2, &snapshots(2));
    fs::remove_file(storage.folder(2).join(METADATA_FILE)).unwrap();
    let (found, warnings) = latest(&storage);
    assert_eq!(found.unwrap().expect("checkpoint 1").metadata.id, 1);
    assert_eq!(
        warnings,
        ["chk-2/_metadata: missing, an incomplete checkpoint; skipped"]
    );

    // With nothing before it, the folder is a crash before the first completion: a fresh
    // start, not an error; `load` of it is one.
    fs::remove_dir_all(storage.folder(1)).unwrap();
    let (found, warnings) = latest(&storage);
    assert!(found.unwrap().is_none());
    assert_eq!(warnings.len(), 1);
    let error = storage.load(&storage.folder(2)).unwrap_err().to_string();
    assert!(error.contains("chk-2/_metadata"), "{error}");
}

#[test]
fn load_takes_the_folder_or_its_metadata_file() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    let metadata = checkpoint(&storage, 1, &snapshots(1));
    let by_file = storage
        .load(&storage.folder(1).join(METADATA_FILE))
        .unwrap();
    assert_eq!(by_file.metadata, metadata);
    assert_eq!(by_file.path, storage.folder(1));
}

#[test]
fn a_file_moved_in_from_another_checkpoint_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    checkpoint(&storage, 1, &snapshots(1));
    checkpoint(&storage, 2, &snapshots(1));
    fs::copy(
        storage.folder(1).join("tag-0.state"),
        storage.folder(2).join("tag-0.state"),
    )
    .unwrap();
    let (found, warnings) = latest(&storage);
    assert_eq!(found.unwrap().expect("checkpoint 1").metadata.id, 1);
    assert!(
        warnings[0].starts_with("chk-2/tag-0.state: the file holds checkpoint 1,"),
        "{warnings:?}"
    );
}

#[test]
fn four_threads_write_states_of_one_checkpoint_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = storage(tmp.path(), DEFAULT_RETAINED);
    let written: Vec<OperatorSnapshot> = (0..4)
        .flat_map(|thread| (0..2).map(move |subtask| keyed(&format!("op{thread}"), subtask, 9)))
        .collect();
    let handles: Vec<StateHandle> = std::thread::scope(|scope| {
        let writers: Vec<_> = written
            .chunks(2)
            .map(|mine| {
                let storage = &storage;
                scope.spawn(move || {
                    mine.iter()
                        .map(|s| storage.write_state(1, s).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let metadata = CheckpointMetadata {
        id: 1,
        triggered_at_ms: 0,
        previous_completed: 0,
        max_parallelism: MAX_PARALLELISM,
        states: handles,
        pending_parts: Vec::new(),
        channel_states: Vec::new(),
    };
    storage.complete(&metadata).unwrap();
    let found = latest(&storage).0.unwrap().expect("checkpoint 1");
    for (snapshot, handle) in written.iter().zip(&found.metadata.states) {
        assert_eq!(read_all(&storage, &found, handle), *snapshot);
    }
}

/// A snapshot of any shape: any uid, up to 6 key groups of up to 40 bytes each.
fn any_snapshot() -> impl Strategy<Value = OperatorSnapshot> {
    (
        "\\PC{0,12}",
        0usize..4,
        prop::collection::vec(any::<u8>(), 0..40),
        0usize..3,
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
    )
        .prop_map(
            |(uid, subtask, operator_state, first_group, keyed)| OperatorSnapshot {
                uid,
                subtask,
                parallelism: 4,
                operator_state,
                key_groups: first_group..first_group + keyed.len(),
                keyed,
                ..OperatorSnapshot::default()
            },
        )
}

/// Where and how a file is damaged: the index of the file (modulo the number of files), the
/// position (modulo its length), and a flip with that mask, or a truncation there.
#[derive(Debug, Clone)]
struct AnyDamage {
    file: usize,
    at: usize,
    flip: Option<u8>,
}

fn any_damage() -> impl Strategy<Value = AnyDamage> {
    (any::<usize>(), any::<usize>(), prop::option::of(1u8..=255))
        .prop_map(|(file, at, flip)| AnyDamage { file, at, flip })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any flipped byte or truncation of any file of a checkpoint is detected: `latest` and
    /// `load` refuse the checkpoint, and a ranged read with the original handle either fails
    /// or returns exactly what was written.
    #[test]
    fn any_damage_is_detected_and_never_read_as_state(
        mut written in prop::collection::vec(any_snapshot(), 1..4),
        damage in any_damage(),
        groups in (0usize..10, 0usize..10),
    ) {
        for (i, s) in written.iter_mut().enumerate() {
            s.subtask = i; // one file per (uid, subtask)
        }
        let tmp = tempfile::tempdir().unwrap();
        let storage = storage(tmp.path(), DEFAULT_RETAINED);
        let metadata = checkpoint(&storage, 1, &written);
        let original = storage.load(&storage.folder(1)).unwrap();

        let mut files: Vec<PathBuf> =
            metadata.states.iter().map(|h| storage.folder(1).join(&h.file)).collect();
        files.push(storage.folder(1).join(METADATA_FILE));
        let file = &files[damage.file % files.len()];
        let bytes = fs::metadata(file).unwrap().len();
        let at = (damage.at as u64) % bytes;
        match damage.flip {
            Some(mask) => flip(file, at, mask),
            None => truncate(file, at),
        }

        prop_assert!(storage.load(&storage.folder(1)).is_err());
        let (found, warnings) = latest(&storage);
        prop_assert!(
            matches!(found, Err(StorageError::NoCheckpoint { .. })),
            "{:?}",
            found
        );
        prop_assert_eq!(warnings.len(), 1);

        let wanted = groups.0.min(groups.1)..groups.0.max(groups.1);
        for (snapshot, handle) in written.iter().zip(&original.metadata.states) {
            if let Ok(read) = storage.read_state(&original, handle, wanted.clone()) {
                let start = wanted.start.clamp(snapshot.key_groups.start, snapshot.key_groups.end);
                let end = wanted.end.clamp(start, snapshot.key_groups.end);
                let first = snapshot.key_groups.start;
                prop_assert_eq!(&read.operator_state, &snapshot.operator_state);
                prop_assert_eq!(read.key_groups, start..end);
                prop_assert_eq!(&read.keyed[..], &snapshot.keyed[start - first..end - first]);
            }
        }
    }
}

/// A chunk of channel `upstream -> downstream` of exchange `x`.
fn chunk_info(side: ChannelSide, upstream: usize, downstream: usize, seq: u64) -> ChannelInfo {
    ChannelInfo {
        exchange: "x".into(),
        side,
        upstream,
        downstream,
        upstreams: 2,
        downstreams: 2,
        seq,
    }
}

#[test]
fn channel_state_round_trips_and_any_damage_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = storage(dir.path(), DEFAULT_RETAINED);
    let mut metadata = checkpoint(&storage, 1, &snapshots(1));
    fs::remove_file(storage.folder(1).join(METADATA_FILE)).unwrap();
    let mut sink = storage.channel_state_writer(1, 3).unwrap();
    let chunks = [
        (chunk_info(ChannelSide::Input, 1, 0, 7), vec![7u8; 40]),
        (chunk_info(ChannelSide::Input, 0, 0, 2), vec![2u8; 3]),
        (chunk_info(ChannelSide::Output, 1, 0, 0), vec![9u8; 12]),
    ];
    let handles: Vec<_> = chunks
        .iter()
        .map(|(info, bytes)| sink.append(info.clone(), bytes).unwrap())
        .collect();
    let (file, file_bytes) = sink.finish().unwrap();
    assert_eq!(file, "channels-3.state");
    let handle = weir_core::checkpoint::ChannelStateHandle {
        file,
        file_bytes,
        chunks: handles,
    };
    assert_eq!(handle.in_flight_bytes(), 55);
    metadata.channel_states = vec![handle.clone()];
    storage.complete(&metadata).unwrap();

    let (found, warnings) = latest(&storage);
    let found = found.unwrap().expect("a completed checkpoint");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(found.metadata.channel_states, vec![handle.clone()]);
    for ((_, bytes), chunk) in chunks.iter().zip(&handle.chunks) {
        assert_eq!(
            &storage.read_channel_chunk(&found, &handle, chunk).unwrap(),
            bytes
        );
    }

    let path = storage.folder(1).join("channels-3.state");
    let pristine = fs::read(&path).unwrap();
    for offset in [3, handle.chunks[1].offset + 9, file_bytes - 1] {
        flip(&path, offset, 0x10);
        let Err(e) = storage.load(&storage.folder(1)) else {
            panic!("a flipped byte at {offset} passed");
        };
        assert!(e.to_string().contains("channels-3.state"), "{e}");
        fs::write(&path, &pristine).unwrap();
    }
    truncate(&path, file_bytes - 2);
    let Err(e) = storage.load(&storage.folder(1)) else {
        panic!("a truncated channel state passed");
    };
    assert!(e.to_string().contains("bytes"), "{e}");
}
