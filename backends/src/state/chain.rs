//! The incremental snapshot's files and chains (Flink's incremental RocksDB checkpoints, with
//! shared files in place of SST files).
//!
//! # Shared file
//! `DIR/shared/NAME` is a checkpoint file (the storage's header, kind "shared state") holding
//! one frame per key group that changed in one snapshot of one state: either a **delta** (the
//! latest version of each key changed since the last completed checkpoint, and a tombstone
//! for each key removed) or a **base** (every entry of the group). A frame's payload:
//!
//! ```text
//! count u64 | count × ( varint(key length × 2 + put) | key | [varint(value length) | value] )
//! ```
//!
//! Keys and values are their codecs' bytes; `put` is 1 for a value, 0 for a tombstone;
//! varints are LEB128 (7 bits a byte, low first; at most 5 bytes), so a small entry costs two
//! bytes besides its key and value. The file is written under a temporary name,
//! synced, renamed into place and its folder synced: once its name exists it is whole, and it
//! is never written again.
//!
//! # Chain
//! A group's section in a checkpoint is its chain: the frames to apply in order, a base (or
//! an empty start) then deltas, each named by file, the file's length and CRC32, and the
//! frame's offset and length:
//!
//! ```text
//! links u32 | links × ( file (u32 length, UTF-8) | file bytes u64 | file CRC32 u32 | frame offset u64 | frame bytes u64 )
//! ```

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use weir_core::checkpoint::{SHARED_FOLDER, SharedFile};
use weir_core::codec::Decoder;

use crate::storage::file_format::{
    CHECKSUM_BYTES, FRAME_OVERHEAD_BYTES, FileKind, HEADER_BYTES, LENGTH_BYTES, frame, header,
};

/// Bytes an entry adds to a frame besides its key and value (keys and values under 64 and
/// 128 bytes; for the estimate that decides a rebase).
pub(super) const ENTRY_OVERHEAD_BYTES: u64 = 2;

/// One frame of a shared file in a group's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Link {
    pub(super) file: Arc<SharedFile>,
    /// Where the frame starts (its length field).
    pub(super) offset: u64,
    /// Bytes of the frame, length field and checksum included.
    pub(super) bytes: u64,
}

/// A group's chain: a base (or nothing) then deltas, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Chain {
    pub(super) links: Vec<Link>,
}

impl Chain {
    /// Bytes of the chain's frames.
    pub(super) fn bytes(&self) -> u64 {
        self.links.iter().map(|l| l.bytes).sum()
    }

    /// The section payload describing the chain.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.links.len() * 64);
        out.extend_from_slice(&(self.links.len() as u32).to_le_bytes());
        for link in &self.links {
            out.extend_from_slice(&(link.file.file.len() as u32).to_le_bytes());
            out.extend_from_slice(link.file.file.as_bytes());
            out.extend_from_slice(&link.file.bytes.to_le_bytes());
            out.extend_from_slice(&link.file.crc32.to_le_bytes());
            out.extend_from_slice(&link.offset.to_le_bytes());
            out.extend_from_slice(&link.bytes.to_le_bytes());
        }
        out
    }

    /// Parses a section payload, checking its shape: every link names a file under
    /// `shared/` and a frame inside that file.
    pub(super) fn decode(payload: &[u8]) -> Result<Self, String> {
        let mut input = Decoder::new(payload);
        let bad = |e| format!("the chain does not parse: {e}");
        let count = input.take_u32().map_err(bad)?;
        let mut links = Vec::new();
        let mut files: HashMap<String, Arc<SharedFile>> = HashMap::new();
        for _ in 0..count {
            let name_len = input.take_u32().map_err(bad)? as usize;
            let name = std::str::from_utf8(input.take_raw(name_len).map_err(bad)?)
                .map_err(|_| "a chain names a file that is not UTF-8".to_owned())?
                .to_owned();
            check_name(&name)?;
            let bytes = input.take_u64().map_err(bad)?;
            let crc32 = input.take_u32().map_err(bad)?;
            let offset = input.take_u64().map_err(bad)?;
            let frame_bytes = input.take_u64().map_err(bad)?;
            let inside = offset >= HEADER_BYTES
                && frame_bytes >= FRAME_OVERHEAD_BYTES
                && offset
                    .checked_add(frame_bytes)
                    .is_some_and(|end| end <= bytes);
            if !inside {
                return Err(format!(
                    "{name}: the chain names a frame at {offset}+{frame_bytes} of a file of {bytes} bytes"
                ));
            }
            let file = files.entry(name.clone()).or_insert_with(|| {
                Arc::new(SharedFile {
                    file: name,
                    bytes,
                    crc32,
                })
            });
            if file.bytes != bytes || file.crc32 != crc32 {
                return Err(format!(
                    "{}: two lengths or checksums in one chain",
                    file.file
                ));
            }
            links.push(Link {
                file: Arc::clone(file),
                offset,
                bytes: frame_bytes,
            });
        }
        if !input.is_empty() {
            return Err(format!("{} bytes after the chain", input.remaining()));
        }
        Ok(Self { links })
    }
}

/// Checks that `name` is a plain file of `shared/` (no other folder, no `..`).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let plain = name
        .strip_prefix(SHARED_FOLDER)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|file| {
            !file.is_empty()
                && file
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                && !file.starts_with('.')
        });
    if plain {
        Ok(())
    } else {
        Err(format!("{name:?} is not a file of {SHARED_FOLDER}/"))
    }
}

/// One entry of a frame.
pub(super) enum Entry<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
}

/// Appends an entry to a frame payload.
pub(super) fn push_entry(payload: &mut Vec<u8>, entry: Entry<'_>) {
    match entry {
        Entry::Put(key, value) => {
            push_varint(payload, (len_u32(key.len()) as u64) << 1 | 1);
            payload.extend_from_slice(key);
            push_varint(payload, len_u32(value.len()) as u64);
            payload.extend_from_slice(value);
        }
        Entry::Delete(key) => {
            push_varint(payload, (len_u32(key.len()) as u64) << 1);
            payload.extend_from_slice(key);
        }
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("a key or value of state is shorter than 4 GiB")
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint of at most 5 bytes (a length of at most 33 bits).
fn take_varint(input: &mut Decoder<'_>) -> Result<u64, String> {
    let mut v = 0u64;
    for i in 0..5 {
        let byte = input
            .take_u8()
            .map_err(|e| format!("a frame's entries do not parse: {e}"))?;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("a frame's entries do not parse: a length of more than 5 bytes".into())
}

/// Calls `f` on every entry of frame payload `payload`, with each value's offset in the
/// payload; checks that the entries fill the payload exactly.
pub(super) fn for_each_entry<'a>(
    payload: &'a [u8],
    mut f: impl FnMut(Entry<'a>, usize),
) -> Result<u64, String> {
    let mut input = Decoder::new(payload);
    let bad = |e| format!("a frame's entries do not parse: {e}");
    let count = input.take_u64().map_err(bad)?;
    for _ in 0..count {
        let head = take_varint(&mut input)?;
        let key = input.take_raw(to_len(head >> 1)?).map_err(bad)?;
        if head & 1 == 1 {
            let value_len = to_len(take_varint(&mut input)?)?;
            let at = input.position();
            let value = input.take_raw(value_len).map_err(bad)?;
            f(Entry::Put(key, value), at);
        } else {
            f(Entry::Delete(key), 0);
        }
    }
    if !input.is_empty() {
        return Err(format!(
            "{} bytes after the frame's {count} entries",
            input.remaining()
        ));
    }
    Ok(count)
}

fn to_len(v: u64) -> Result<usize, String> {
    u32::try_from(v)
        .map(|v| v as usize)
        .map_err(|_| format!("a frame's entry announces {v} bytes"))
}

/// The payload of the frame at `link` in the mapped file `bytes`, its length field and
/// checksum checked; the payload starts at `link.offset + LENGTH_BYTES` of the file.
pub(super) fn frame_payload<'a>(bytes: &'a [u8], link: &Link) -> Result<&'a [u8], String> {
    let name = &link.file.file;
    if bytes.len() as u64 != link.file.bytes {
        return Err(format!(
            "{name}: {} bytes, the checkpoint says {}",
            bytes.len(),
            link.file.bytes
        ));
    }
    if bytes[..HEADER_BYTES as usize] != header(FileKind::Shared) {
        return Err(format!(
            "{name}: not a shared state file of this format version"
        ));
    }
    let start = link.offset as usize;
    let end = start + link.bytes as usize;
    let frame_bytes = &bytes[start..end];
    let (length, rest) = frame_bytes.split_at(LENGTH_BYTES as usize);
    let (payload, crc) = rest.split_at(rest.len() - CHECKSUM_BYTES as usize);
    let stored_len = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    if stored_len != payload.len() as u64 {
        return Err(format!(
            "{name}: the frame at {start} says {stored_len} bytes, the chain {}",
            payload.len()
        ));
    }
    let (_, computed) = frame(payload);
    if computed != crc {
        return Err(format!(
            "{name}: checksum mismatch in the frame at {start} (stored 0x{:08x}, computed 0x{:08x})",
            u32::from_le_bytes(crc.try_into().expect("4 bytes")),
            u32::from_le_bytes(computed)
        ));
    }
    Ok(payload)
}

/// A shared file being written, frame by frame: under a temporary name until
/// [`finish`](Self::finish) syncs it and renames it into place.
pub(super) struct SharedWriter {
    folder: std::path::PathBuf,
    relative: String,
    temporary: std::path::PathBuf,
    w: BufWriter<File>,
    crc: crc32fast::Hasher,
    bytes: u64,
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl SharedWriter {
    /// Starts `dir/shared/NAME` (`name` a plain file name).
    pub(super) fn create(dir: &Path, name: &str) -> Result<Self, String> {
        let folder = dir.join(SHARED_FOLDER);
        fs::create_dir_all(&folder).map_err(io_at(&folder))?;
        let temporary = folder.join(format!("{name}.inprogress"));
        let file = File::create(&temporary).map_err(io_at(&temporary))?;
        let mut writer = Self {
            folder,
            relative: format!("{SHARED_FOLDER}/{name}"),
            w: BufWriter::with_capacity(256 * 1024, file),
            temporary,
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        };
        writer.put(&header(FileKind::Shared))?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        self.w.write_all(bytes).map_err(io_at(&self.temporary))
    }

    /// Appends a frame of `payload`; returns its offset and its bytes.
    pub(super) fn push_frame(&mut self, payload: &[u8]) -> Result<(u64, u64), String> {
        let offset = self.bytes;
        let (length, checksum) = frame(payload);
        self.put(&length)?;
        self.put(payload)?;
        self.put(&checksum)?;
        Ok((offset, self.bytes - offset))
    }

    /// Syncs the file, renames it into place and syncs the folder: durable when this returns.
    pub(super) fn finish(self, dir: &Path) -> Result<Arc<SharedFile>, String> {
        let file = self
            .w
            .into_inner()
            .map_err(|e| format!("{}: {}", self.temporary.display(), e.error()))?;
        file.sync_all().map_err(io_at(&self.temporary))?;
        drop(file);
        let path = dir.join(&self.relative);
        fs::rename(&self.temporary, &path).map_err(io_at(&path))?;
        File::open(&self.folder)
            .and_then(|f| f.sync_all())
            .map_err(io_at(&self.folder))?;
        Ok(Arc::new(SharedFile {
            file: self.relative,
            bytes: self.bytes,
            crc32: self.crc.finalize(),
        }))
    }
}
