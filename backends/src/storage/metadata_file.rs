//! A checkpoint's `_metadata` (Flink's `_metadata`): the header (kind = metadata), then one
//! frame holding the [`CheckpointMetadata`] as JSON.

use std::io::Read;
use std::path::Path;

use weir_core::checkpoint::{CheckpointMetadata, StorageError};

use super::file_format::{
    self, FRAME_OVERHEAD_BYTES, FileKind, FormatError, HEADER_BYTES, Pieces, header, read_frame,
    read_header,
};

/// Largest `_metadata` read back: a bound on the allocation a damaged file can cause (a
/// job's metadata is a few hundred bytes per operator subtask, plus 40 per key group).
pub(crate) const MAX_METADATA_BYTES: u64 = 256 << 20;

/// The bytes of `metadata`'s file, checked to decode back to `metadata`.
pub(crate) fn encode(metadata: &CheckpointMetadata) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(metadata).map_err(|e| format!("metadata to JSON: {e}"))?;
    let mut pieces = Pieces::default();
    pieces.push_owned(&header(FileKind::Metadata));
    pieces.push_frame(json);
    let mut bytes = Vec::with_capacity(pieces.len() as usize);
    pieces
        .write_to(&mut bytes)
        .map_err(|e| format!("metadata into memory: {e}"))?;
    match decode(&bytes) {
        Ok(decoded) if decoded == *metadata => Ok(bytes),
        Ok(_) => Err("the encoded metadata decodes to other metadata".into()),
        Err(e) => Err(format!("the encoded metadata does not decode: {e}")),
    }
}

/// The metadata in `bytes`, a whole `_metadata` file.
pub(crate) fn decode(bytes: &[u8]) -> Result<CheckpointMetadata, FormatError> {
    let frame_bytes = (bytes.len() as u64)
        .checked_sub(HEADER_BYTES + FRAME_OVERHEAD_BYTES)
        .ok_or_else(|| {
            FormatError::Corrupt(format!(
                "truncated: {} bytes, a metadata file has at least {}",
                bytes.len(),
                HEADER_BYTES + FRAME_OVERHEAD_BYTES
            ))
        })?;
    let r = &mut &bytes[..];
    read_header(r, FileKind::Metadata)?;
    let json = read_frame(r, frame_bytes, "metadata", true)?;
    debug_assert!(r.is_empty(), "the frame's length is the file's rest");
    serde_json::from_slice(&json)
        .map_err(|e| FormatError::Corrupt(format!("metadata does not parse: {e}")))
}

/// Reads and decodes the `_metadata` file at `path`.
pub(crate) fn read(path: &Path) -> Result<CheckpointMetadata, StorageError> {
    let io = |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = file_format::open(path)?;
    let bytes = file.metadata().map_err(io)?.len();
    if bytes > MAX_METADATA_BYTES {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "{bytes} bytes, more than the {MAX_METADATA_BYTES} a metadata file may have"
            ),
        });
    }
    let mut contents = Vec::with_capacity(bytes as usize);
    file.take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut contents)
        .map_err(io)?;
    decode(&contents).map_err(|e| e.at(path))
}
