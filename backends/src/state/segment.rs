//! Memory-mapped segments: where the memory-mapped store keeps its values.
//!
//! A local segment is a file of fixed capacity in the backend's local folder, mapped shared
//! and unlinked at once (its pages are backed by the file system, not the heap, and nothing is
//! left behind by a crash). It is append-only: bytes are written once, past its tail, by the
//! one task thread that owns the store, and never written again; so a snapshot thread may read
//! any range written before the snapshot while the task appends. A shared file of a checkpoint
//! is mapped read-only after a restore and read the same way.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{Mmap, MmapRaw};

/// Where a value lies: segment id, byte offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) segment: u32,
    pub(super) len: u32,
    pub(super) offset: u64,
}

/// One mapped segment.
#[derive(Debug)]
pub(super) enum Segment {
    /// A local, writable segment.
    Local(MmapRaw),
    /// A shared file of a checkpoint, read-only.
    Shared(Mmap),
}

/// Local segment files made by this process, for unique names.
static NEXT_SEGMENT: AtomicU64 = AtomicU64::new(0);

impl Segment {
    /// A new local segment of `capacity` bytes in `dir`.
    ///
    /// # Errors
    /// If the file cannot be created, sized, mapped or unlinked: the file and why.
    pub(super) fn create(dir: &Path, capacity: usize) -> Result<Self, String> {
        let n = NEXT_SEGMENT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{n}.segment", std::process::id()));
        let at = |e: io::Error| format!("{}: {e}", path.display());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(at)?;
        let mapped = file
            .set_len(capacity as u64)
            .and_then(|()| MmapRaw::map_raw(&file))
            .map_err(at);
        // The mapping keeps the file's pages; the name is not needed (and a crash leaves none).
        let removed = fs::remove_file(&path).map_err(at);
        let map = mapped?;
        removed?;
        Ok(Self::Local(map))
    }

    /// A shared file mapped read-only.
    ///
    /// # Errors
    /// If it cannot be opened or mapped: the file and why (a missing file says "missing").
    pub(super) fn map_shared(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("{}: missing", path.display()),
            _ => format!("{}: {e}", path.display()),
        })?;
        // SAFETY: shared files are immutable once renamed into place (written whole, synced,
        // never opened for writing again) and only removed, which keeps a mapping valid; so
        // the mapped bytes do not change under the map (memmap2's requirement).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self::Shared(map))
    }

    /// Bytes of the segment.
    pub(super) fn capacity(&self) -> usize {
        match self {
            Self::Local(map) => map.len(),
            Self::Shared(map) => map.len(),
        }
    }

    /// The bytes at `offset..offset + len`, which must have been written before the caller
    /// learned of them (a [`Loc`] made by [`write_at`](Self::write_at) or checked by a restore).
    ///
    /// # Panics
    /// If the range lies outside the segment (a bug: every `Loc` is checked when made).
    pub(super) fn read(&self, offset: u64, len: u32) -> &[u8] {
        let (start, len) = (offset as usize, len as usize);
        assert!(
            start
                .checked_add(len)
                .is_some_and(|end| end <= self.capacity()),
            "a value at {start}+{len} outside a segment of {} bytes",
            self.capacity()
        );
        match self {
            Self::Shared(map) => &map[start..start + len],
            // SAFETY: the range is inside the mapping (checked above), and it was written once
            // by `write_at` before its `Loc` was published (to the task's own index, or to a
            // snapshot thread through the channel that carries the snapshot job, which orders
            // the write before the read); bytes below the tail are never written again, so no
            // `&mut` or write overlaps the shared slice while it lives.
            Self::Local(map) => unsafe { std::slice::from_raw_parts(map.as_ptr().add(start), len) },
        }
    }

    /// Writes `bytes` at `offset` of a local segment, a range never written before.
    ///
    /// # Safety
    /// The caller guarantees:
    /// 1. `offset..offset + bytes.len()` lies inside the segment;
    /// 2. no byte of that range was written before (it is past the tail of the one writer),
    ///    so no reader holds a slice of it.
    pub(super) unsafe fn write_at(&self, offset: usize, bytes: &[u8]) {
        let Self::Local(map) = self else {
            unreachable!("only local segments are written")
        };
        debug_assert!(offset + bytes.len() <= map.len());
        // SAFETY: in bounds (1.) and not read by anyone (2.): no slice aliases the range.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                map.as_mut_ptr().add(offset),
                bytes.len(),
            );
        }
    }
}
