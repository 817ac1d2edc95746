//! `chk-N/channels-{task}.state`: one subtask's channel state of an unaligned checkpoint.
//!
//! ```text
//! header (kind: channel state)
//! frame per chunk: descriptor ‖ in-flight bytes
//!   descriptor: side u8 (0 input, 1 output) | upstream u32 LE | downstream u32 LE | seq u64 LE
//! ```
//!
//! Chunks are appended as the snapshot threads get them (in any order: the replay sorts them
//! by channel and sequence number); the [`ChannelStateHandle`] in `_metadata` records each
//! chunk's channel and frame offset, so a restoring subtask reads and checks only the chunks
//! it replays. A read checks the frame's checksum and that its descriptor is the one the
//! handle names (a frame of another chunk is refused).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use weir_core::checkpoint::{
    ChannelInfo, ChannelSide, ChannelStateHandle, ChannelStateSink, ChunkHandle, StorageError,
};

use super::file_format::{self, FileKind, FormatError, HEADER_BYTES, read_frame, write_frame};

/// Bytes of a chunk's descriptor.
const DESCRIPTOR_BYTES: u64 = 17;

/// Write buffer of a channel state file.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// The file of task `task`'s channel state.
pub(crate) fn file_name(task: usize) -> String {
    format!("channels-{task}.state")
}

fn descriptor(info: &ChannelInfo) -> Result<[u8; DESCRIPTOR_BYTES as usize], String> {
    let narrow = |v: usize, what: &str| {
        u32::try_from(v).map_err(|_| format!("{what} {v} does not fit a channel state descriptor"))
    };
    let mut d = [0u8; DESCRIPTOR_BYTES as usize];
    d[0] = match info.side {
        ChannelSide::Input => 0,
        ChannelSide::Output => 1,
    };
    d[1..5].copy_from_slice(&narrow(info.upstream, "upstream subtask")?.to_le_bytes());
    d[5..9].copy_from_slice(&narrow(info.downstream, "downstream subtask")?.to_le_bytes());
    d[9..17].copy_from_slice(&info.seq.to_le_bytes());
    Ok(d)
}

fn corrupt(path: &Path, reason: String) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends chunks to one channel state file; synced by [`ChannelStateSink::finish`].
#[derive(Debug)]
pub(crate) struct FsChannelStateSink {
    path: PathBuf,
    name: String,
    out: BufWriter<File>,
    offset: u64,
}

impl FsChannelStateSink {
    /// Creates (or replaces, after an earlier incomplete attempt) `folder/name` with its
    /// header.
    pub(crate) fn create(folder: &Path, name: String) -> Result<Self, StorageError> {
        let path = folder.join(&name);
        let file = File::create(&path).map_err(io_at(&path))?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        out.write_all(&file_format::header(FileKind::ChannelState))
            .map_err(io_at(&path))?;
        Ok(Self {
            path,
            name,
            out,
            offset: HEADER_BYTES,
        })
    }
}

impl ChannelStateSink for FsChannelStateSink {
    fn append(&mut self, info: ChannelInfo, bytes: &[u8]) -> Result<ChunkHandle, StorageError> {
        let d = descriptor(&info).map_err(|reason| corrupt(&self.path, reason))?;
        let offset = self.offset;
        self.offset += write_frame(&mut self.out, &[&d, bytes]).map_err(io_at(&self.path))?;
        Ok(ChunkHandle {
            info,
            offset,
            bytes: bytes.len() as u64,
        })
    }

    fn finish(self: Box<Self>) -> Result<(String, u64), StorageError> {
        let Self {
            path,
            name,
            out,
            offset,
        } = *self;
        let file = out.into_inner().map_err(|e| io_at(&path)(e.into_error()))?;
        file.sync_all().map_err(io_at(&path))?;
        if let Some(folder) = path.parent() {
            File::open(folder)
                .and_then(|f| f.sync_all())
                .map_err(io_at(folder))?;
        }
        Ok((name, offset))
    }
}

/// Reads one chunk's frame at the reader's position and checks it against `chunk`.
fn read_chunk_frame(
    r: &mut impl Read,
    chunk: &ChunkHandle,
    keep: bool,
) -> Result<Vec<u8>, FormatError> {
    let what = format!(
        "chunk {} of channel {} -> {} ({:?})",
        chunk.info.seq, chunk.info.upstream, chunk.info.downstream, chunk.info.side
    );
    let mut payload = read_frame(r, DESCRIPTOR_BYTES + chunk.bytes, &what, true)?;
    let expected = descriptor(&chunk.info).map_err(FormatError::Corrupt)?;
    if payload[..DESCRIPTOR_BYTES as usize] != expected {
        return Err(FormatError::Corrupt(format!(
            "{what}: the frame holds another chunk"
        )));
    }
    if !keep {
        return Ok(Vec::new());
    }
    payload.drain(..DESCRIPTOR_BYTES as usize);
    Ok(payload)
}

/// Checks that `handle` names a channel state file and that its chunks tile the file.
pub(crate) fn check_handle(handle: &ChannelStateHandle) -> Result<(), String> {
    let plain = handle
        .file
        .strip_prefix("channels-")
        .and_then(|rest| rest.strip_suffix(".state"))
        .is_some_and(|task| !task.is_empty() && task.bytes().all(|b| b.is_ascii_digit()));
    if !plain {
        return Err(format!("{:?} is no channel state file", handle.file));
    }
    let mut chunks: Vec<&ChunkHandle> = handle.chunks.iter().collect();
    chunks.sort_by_key(|c| c.offset);
    let mut at = HEADER_BYTES;
    for c in chunks {
        if c.offset != at {
            return Err(format!(
                "{}: a chunk at offset {}, expected {at}",
                handle.file, c.offset
            ));
        }
        at += file_format::FRAME_OVERHEAD_BYTES + DESCRIPTOR_BYTES + c.bytes;
    }
    if at != handle.file_bytes {
        return Err(format!(
            "{}: chunks end at {at}, the handle says {} bytes",
            handle.file, handle.file_bytes
        ));
    }
    Ok(())
}

/// Verifies the whole file at `path` against `handle` (which passed [`check_handle`]).
pub(crate) fn verify_file(path: &Path, handle: &ChannelStateHandle) -> Result<(), StorageError> {
    let file = file_format::open(path)?;
    let bytes = file.metadata().map_err(io_at(path))?.len();
    if bytes != handle.file_bytes {
        return Err(corrupt(
            path,
            format!("{bytes} bytes, the metadata says {}", handle.file_bytes),
        ));
    }
    let mut r = BufReader::new(file);
    let mut chunks: Vec<&ChunkHandle> = handle.chunks.iter().collect();
    chunks.sort_by_key(|c| c.offset);
    let read = |r: &mut BufReader<File>| -> Result<(), FormatError> {
        file_format::read_header(r, FileKind::ChannelState)?;
        for chunk in chunks {
            read_chunk_frame(r, chunk, false)?;
        }
        Ok(())
    };
    read(&mut r).map_err(|e| e.at(path))
}

/// Reads one chunk's bytes from the file at `path`, checking its frame.
pub(crate) fn read_chunk(path: &Path, chunk: &ChunkHandle) -> Result<Vec<u8>, StorageError> {
    let mut file = file_format::open(path)?;
    file.seek(SeekFrom::Start(chunk.offset))
        .map_err(io_at(path))?;
    read_chunk_frame(&mut BufReader::new(file), chunk, true).map_err(|e| e.at(path))
}
