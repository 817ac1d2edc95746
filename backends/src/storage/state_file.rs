//! A state file: one subtask's snapshot of one operator (Flink's `KeyGroupsStateHandle` and
//! `OperatorStateHandle` in one file).
//!
//! ```text
//! header (kind = state)
//! frame: descriptor = checkpoint id, subtask, parallelism, key groups start, end (u64 LE each),
//!        then the uid's bytes
//! frame: the non-keyed operator state
//! frame: key group `start`'s blob, frame: key group `start + 1`'s blob, ...
//! ```
//!
//! The [`StateHandle`] records every blob's payload offset and length, so a reader seeks to
//! the groups it owns and checks each frame on its own. The descriptor ties the file to its
//! handle: a file of another subtask, operator or checkpoint is refused even with valid
//! checksums.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use weir_core::checkpoint::{CheckpointId, OperatorSnapshot, StateHandle, StorageError};

use super::file_format::{
    self, CHECKSUM_BYTES, FRAME_OVERHEAD_BYTES, FileKind, FormatError, HEADER_BYTES, LENGTH_BYTES,
    Pieces, header, read_frame, read_header,
};

/// Longest file name stem (before `.state`); file systems allow 255 bytes.
const MAX_STEM_BYTES: usize = 200;

/// Bytes of the descriptor's fixed fields, before the uid.
const DESCRIPTOR_FIXED_BYTES: u64 = 5 * 8;

/// Read buffer of a state file reader.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// The file name of `uid`'s state of `subtask`: `{uid}-{subtask}.state` when the uid is made
/// of ASCII letters, digits, `_` and `-` only, else `~{hex of the uid}-{subtask}.state`.
/// Distinct (uid, subtask) pairs get distinct names (the subtask follows the last `-`; `~`
/// marks hex), and no name can leave the checkpoint's folder.
pub(crate) fn file_name(uid: &str, subtask: usize) -> Result<String, String> {
    let plain = !uid.is_empty()
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let stem = if plain {
        uid.to_string()
    } else {
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        format!("~{hex}")
    };
    if stem.len() > MAX_STEM_BYTES {
        return Err(format!(
            "uid {uid:?} is too long for a file name ({} bytes as {stem:.16}…, at most \
             {MAX_STEM_BYTES})",
            stem.len()
        ));
    }
    Ok(format!("{stem}-{subtask}.state"))
}

fn descriptor(id: CheckpointId, handle: &StateHandle) -> Vec<u8> {
    let fixed = [
        id,
        handle.subtask as u64,
        handle.parallelism as u64,
        handle.key_groups.start as u64,
        handle.key_groups.end as u64,
    ];
    let mut bytes: Vec<u8> = fixed.iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes.extend_from_slice(handle.uid.as_bytes());
    bytes
}

/// A descriptor in words, for the error that says it does not match.
fn describe(descriptor: &[u8]) -> String {
    let field = |i: usize| {
        descriptor
            .get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    };
    let uid = descriptor
        .get(DESCRIPTOR_FIXED_BYTES as usize..)
        .unwrap_or_default();
    format!(
        "checkpoint {}, uid {:?}, subtask {} of {}, key groups {}..{}",
        field(0),
        String::from_utf8_lossy(uid),
        field(1),
        field(2),
        field(3),
        field(4)
    )
}

/// Where a file of this shape puts each frame: the payload offset of the operator state, of
/// each key group's blob, and the file's length. `None` if the sizes overflow.
fn layout(
    uid_bytes: usize,
    operator_state_bytes: u64,
    blob_bytes: impl IntoIterator<Item = u64>,
) -> Option<(Vec<(u64, u64)>, u64)> {
    let descriptor_end = (HEADER_BYTES + FRAME_OVERHEAD_BYTES + DESCRIPTOR_FIXED_BYTES)
        .checked_add(uid_bytes as u64)?;
    let mut end = descriptor_end
        .checked_add(FRAME_OVERHEAD_BYTES)?
        .checked_add(operator_state_bytes)?;
    let mut offsets = Vec::new();
    for bytes in blob_bytes {
        offsets.push((end.checked_add(LENGTH_BYTES)?, bytes));
        end = end.checked_add(FRAME_OVERHEAD_BYTES)?.checked_add(bytes)?;
    }
    Some((offsets, end))
}

/// The handle and the bytes of `snapshot`'s state file in checkpoint `id`. The handle's
/// `file` is `file`.
pub(crate) fn encode<'a>(
    id: CheckpointId,
    snapshot: &'a OperatorSnapshot,
    file: String,
) -> Result<(StateHandle, Pieces<'a>), String> {
    if snapshot.keyed.len() != snapshot.key_groups.len() {
        return Err(format!(
            "the snapshot of uid {:?} subtask {} has {} key group blobs for key groups {:?}",
            snapshot.uid,
            snapshot.subtask,
            snapshot.keyed.len(),
            snapshot.key_groups
        ));
    }
    let (key_group_offsets, file_bytes) = layout(
        snapshot.uid.len(),
        snapshot.operator_state.len() as u64,
        snapshot.keyed.iter().map(|b| b.len() as u64),
    )
    .ok_or("the snapshot's size overflows u64")?;
    let handle = StateHandle {
        uid: snapshot.uid.clone(),
        subtask: snapshot.subtask,
        parallelism: snapshot.parallelism,
        file,
        file_bytes,
        operator_state_bytes: snapshot.operator_state.len() as u64,
        key_groups: snapshot.key_groups.clone(),
        key_group_offsets,
        shared: snapshot.shared.clone(),
        shared_written_bytes: snapshot.shared_written_bytes,
    };
    let mut pieces = Pieces::default();
    pieces.push_owned(&header(FileKind::State));
    pieces.push_frame(descriptor(id, &handle));
    pieces.push_frame(&snapshot.operator_state[..]);
    for blob in &snapshot.keyed {
        pieces.push_frame(&blob[..]);
    }
    debug_assert_eq!(pieces.len(), file_bytes);
    Ok((handle, pieces))
}

/// Checks that a handle (read from a verified `_metadata`, or handed in) describes a file
/// this format could have written: its name, and offsets that follow from its lengths.
pub(crate) fn check_handle(handle: &StateHandle) -> Result<(), String> {
    let expected = file_name(&handle.uid, handle.subtask)?;
    if handle.file != expected {
        return Err(format!(
            "lists file {:?} for uid {:?} subtask {}, which belongs in {expected:?}",
            handle.file, handle.uid, handle.subtask
        ));
    }
    if handle.key_groups.start > handle.key_groups.end
        || handle.key_group_offsets.len() != handle.key_groups.len()
    {
        return Err(format!(
            "{}: {} key group offsets for key groups {:?}",
            handle.file,
            handle.key_group_offsets.len(),
            handle.key_groups
        ));
    }
    let computed = layout(
        handle.uid.len(),
        handle.operator_state_bytes,
        handle.key_group_offsets.iter().map(|&(_, bytes)| bytes),
    );
    if computed != Some((handle.key_group_offsets.clone(), handle.file_bytes)) {
        return Err(format!(
            "{}: the recorded offsets and lengths do not fit together",
            handle.file
        ));
    }
    Ok(())
}

/// Reads the header, the descriptor (checked against the handle) and the operator state
/// (returned if `keep`).
fn read_head(
    r: &mut impl Read,
    id: CheckpointId,
    handle: &StateHandle,
    keep: bool,
) -> Result<Vec<u8>, FormatError> {
    read_header(r, FileKind::State)?;
    let expected = descriptor(id, handle);
    let found = read_frame(r, expected.len() as u64, "descriptor", true)?;
    if found != expected {
        return Err(FormatError::Corrupt(format!(
            "the file holds {}, the metadata expects {}",
            describe(&found),
            describe(&expected)
        )));
    }
    read_frame(r, handle.operator_state_bytes, "operator state", keep)
}

fn key_group_name(handle: &StateHandle, index: usize) -> String {
    format!("key group {}", handle.key_groups.start + index)
}

/// Verifies a whole state file, read in order from `r`: header, descriptor, every frame's
/// length and checksum. O(file bytes) time, O(1) memory.
pub(crate) fn verify_stream(
    r: &mut impl Read,
    id: CheckpointId,
    handle: &StateHandle,
) -> Result<(), FormatError> {
    read_head(r, id, handle, false)?;
    for (i, &(_, bytes)) in handle.key_group_offsets.iter().enumerate() {
        read_frame(r, bytes, &key_group_name(handle, i), false)?;
    }
    let mut past_end = [0u8; 1];
    if r.read(&mut past_end)? != 0 {
        return Err(FormatError::Corrupt("bytes after the last frame".into()));
    }
    Ok(())
}

/// Opens the state file at `path` and checks that its length is the handle's.
fn open(path: &Path, handle: &StateHandle) -> Result<BufReader<File>, StorageError> {
    let io = |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = file_format::open(path)?;
    let bytes = file.metadata().map_err(io)?.len();
    if bytes != handle.file_bytes {
        let what = if bytes < handle.file_bytes {
            "truncated"
        } else {
            "too long"
        };
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "{what}: {bytes} bytes, the metadata says {}",
                handle.file_bytes
            ),
        });
    }
    Ok(BufReader::with_capacity(READ_BUFFER_BYTES, file))
}

/// Verifies the whole state file at `path` against its handle. O(file bytes) time.
pub(crate) fn verify_file(
    path: &Path,
    id: CheckpointId,
    handle: &StateHandle,
) -> Result<(), StorageError> {
    let mut r = open(path, handle)?;
    verify_stream(&mut r, id, handle).map_err(|e| e.at(path))
}

/// Reads the operator state and the blobs of the key groups in `wanted` ∩ the handle's
/// groups from the state file at `path`, checking each frame read. Reads O(the descriptor,
/// the operator state and the wanted blobs), seeking past the other groups. The handle must
/// have passed [`check_handle`].
pub(crate) fn read_ranged(
    path: &Path,
    id: CheckpointId,
    handle: &StateHandle,
    wanted: Range<usize>,
) -> Result<OperatorSnapshot, StorageError> {
    debug_assert_eq!(check_handle(handle), Ok(()));
    let owned = handle.key_groups.start..handle.key_groups.end.max(handle.key_groups.start);
    let start = wanted.start.clamp(owned.start, owned.end);
    let end = wanted.end.clamp(start, owned.end);
    let mut r = open(path, handle)?;
    let read = |r: &mut BufReader<File>| -> Result<_, FormatError> {
        let operator_state = read_head(r, id, handle, true)?;
        let mut keyed = Vec::with_capacity(end - start);
        // Where `r` is: after the operator state, then after each group read.
        let mut at = handle
            .key_group_offsets
            .first()
            .map_or(handle.file_bytes, |&(offset, _)| {
                offset.saturating_sub(LENGTH_BYTES)
            });
        for i in start - owned.start..end - owned.start {
            let &(offset, bytes) = handle.key_group_offsets.get(i).ok_or_else(|| {
                FormatError::Corrupt(format!(
                    "the handle has no offset for {}",
                    key_group_name(handle, i)
                ))
            })?;
            let frame_start = offset.saturating_sub(LENGTH_BYTES);
            if frame_start != at {
                r.seek(SeekFrom::Start(frame_start))?;
            }
            keyed.push(read_frame(r, bytes, &key_group_name(handle, i), true)?);
            at = offset.saturating_add(bytes).saturating_add(CHECKSUM_BYTES);
        }
        Ok((operator_state, keyed))
    };
    let (operator_state, keyed) = read(&mut r).map_err(|e| e.at(path))?;
    Ok(OperatorSnapshot {
        uid: handle.uid.clone(),
        subtask: handle.subtask,
        parallelism: handle.parallelism,
        operator_state,
        key_groups: start..end,
        keyed,
        shared: handle.shared.clone(),
        shared_written_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain_for_plain_uids_and_hex_otherwise() {
        assert_eq!(file_name("tag", 0).unwrap(), "tag-0.state");
        assert_eq!(file_name("window-1m", 12).unwrap(), "window-1m-12.state");
        assert_eq!(file_name("../x", 1).unwrap(), "~2e2e2f78-1.state");
        assert_eq!(file_name("", 1).unwrap(), "~-1.state");
        assert!(file_name(&"u".repeat(201), 0).is_err());
    }

    #[test]
    fn an_encoded_snapshot_verifies_and_its_handle_checks() {
        let snapshot = OperatorSnapshot {
            uid: "op".into(),
            subtask: 1,
            parallelism: 2,
            operator_state: b"offsets".to_vec(),
            key_groups: 4..7,
            keyed: vec![b"a".to_vec(), Vec::new(), b"ccc".to_vec()],
            ..OperatorSnapshot::default()
        };
        let (handle, pieces) = encode(9, &snapshot, file_name("op", 1).unwrap()).unwrap();
        check_handle(&handle).unwrap();
        verify_stream(&mut pieces.reader(), 9, &handle).unwrap();
        let escaping = StateHandle {
            file: "../op-1.state".into(),
            ..handle.clone()
        };
        assert!(
            check_handle(&escaping)
                .unwrap_err()
                .contains("belongs in \"op-1.state\"")
        );
        let shifted = StateHandle {
            file_bytes: handle.file_bytes + 1,
            ..handle.clone()
        };
        assert!(check_handle(&shifted).is_err());
        let Err(FormatError::Corrupt(reason)) = verify_stream(&mut pieces.reader(), 8, &handle)
        else {
            panic!("a file of checkpoint 9 passed as one of checkpoint 8");
        };
        assert!(
            reason.starts_with("the file holds checkpoint 9"),
            "{reason}"
        );
    }

    #[test]
    fn a_snapshot_with_a_blob_missing_is_refused() {
        let snapshot = OperatorSnapshot {
            uid: "op".into(),
            key_groups: 0..2,
            keyed: vec![Vec::new()],
            ..OperatorSnapshot::default()
        };
        assert!(encode(1, &snapshot, "op-0.state".into()).is_err());
    }
}
