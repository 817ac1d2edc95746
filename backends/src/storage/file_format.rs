//! The framing every checkpoint file shares: an 8-byte header, then frames.
//!
//! ```text
//! header: magic "WCKP" (4) | format version u16 LE (2) | kind u8 (1) | reserved 0 (1)
//! frame:  payload length u64 LE (8) | payload | CRC32 of (length bytes ‖ payload) u32 LE (4)
//! ```
//!
//! Every header byte is checked against the one exact value it may have, and every frame's
//! checksum covers its length field, so any changed byte of a file is detected by reading it.
//! A frame can be read on its own, at the offset its file's handle records: that is what makes
//! a ranged read of a few key groups verifiable without reading the rest of the file.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use weir_core::checkpoint::StorageError;

/// The format version this build writes, and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;

const MAGIC: [u8; 4] = *b"WCKP";

/// Bytes of the header that opens every file.
pub(crate) const HEADER_BYTES: u64 = 8;

/// Bytes of a frame's length field.
pub(crate) const LENGTH_BYTES: u64 = 8;

/// Bytes of a frame's checksum.
pub(crate) const CHECKSUM_BYTES: u64 = 4;

/// Bytes a frame adds to its payload: the length field and the checksum.
pub(crate) const FRAME_OVERHEAD_BYTES: u64 = LENGTH_BYTES + CHECKSUM_BYTES;

/// Payload bytes hashed (and copied, when kept) per read call while a frame is streamed.
const CHUNK_BYTES: usize = 64 * 1024;

/// What a file holds, recorded in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// One subtask's snapshot of one operator.
    State = 1,
    /// A checkpoint's `_metadata`.
    Metadata = 2,
    /// One subtask's channel state (unaligned checkpoints).
    ChannelState = 3,
    /// A shared file of incremental snapshots (`shared/NAME`), written by the memory-mapped
    /// state backend.
    Shared = 4,
}

impl FileKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::State),
            2 => Some(Self::Metadata),
            3 => Some(Self::ChannelState),
            4 => Some(Self::Shared),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Metadata => "metadata",
            Self::ChannelState => "channel state",
            Self::Shared => "shared state",
        }
    }
}

/// Why reading a file failed: the device, or the bytes.
#[derive(Debug)]
pub(crate) enum FormatError {
    /// The read itself failed.
    Io(io::Error),
    /// The bytes are not what they should be.
    Corrupt(String),
}

impl FormatError {
    /// The storage error for this failure in file `path`.
    pub(crate) fn at(self, path: &Path) -> StorageError {
        match self {
            Self::Io(source) => StorageError::Io {
                path: path.to_path_buf(),
                source,
            },
            Self::Corrupt(reason) => StorageError::Corrupt {
                path: path.to_path_buf(),
                reason,
            },
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Corrupt(reason) => f.write_str(reason),
        }
    }
}

impl From<io::Error> for FormatError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Self::Corrupt("the file ends early".into())
        } else {
            Self::Io(e)
        }
    }
}

/// Opens a checkpoint's file for reading; a missing one is damage of the checkpoint.
pub(crate) fn open(path: &Path) -> Result<File, StorageError> {
    File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            StorageError::Corrupt {
                path: path.to_path_buf(),
                reason: "missing".into(),
            }
        } else {
            StorageError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// The header of a file of `kind`.
pub(crate) fn header(kind: FileKind) -> [u8; HEADER_BYTES as usize] {
    let v = FORMAT_VERSION.to_le_bytes();
    [
        MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], v[0], v[1], kind as u8, 0,
    ]
}

/// Reads a header and checks that it opens a file of `kind` in this format version.
pub(crate) fn read_header(r: &mut impl Read, kind: FileKind) -> Result<(), FormatError> {
    let mut h = [0u8; HEADER_BYTES as usize];
    r.read_exact(&mut h)?;
    if h[..4] != MAGIC {
        return Err(FormatError::Corrupt(format!(
            "bad magic {:02x?}, not a weir checkpoint file",
            &h[..4]
        )));
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::Corrupt(format!(
            "format version {version}, this build reads version {FORMAT_VERSION}"
        )));
    }
    match FileKind::from_byte(h[6]) {
        Some(found) if found == kind => {}
        Some(found) => {
            return Err(FormatError::Corrupt(format!(
                "a {} file where a {} file belongs",
                found.name(),
                kind.name()
            )));
        }
        None => {
            return Err(FormatError::Corrupt(format!("unknown file kind {}", h[6])));
        }
    }
    if h[7] != 0 {
        return Err(FormatError::Corrupt(format!(
            "reserved header byte is {}, not 0",
            h[7]
        )));
    }
    Ok(())
}

/// The length field and checksum that frame `payload`.
pub(crate) fn frame(
    payload: &[u8],
) -> ([u8; LENGTH_BYTES as usize], [u8; CHECKSUM_BYTES as usize]) {
    let length = (payload.len() as u64).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&length);
    hasher.update(payload);
    (length, hasher.finalize().to_le_bytes())
}

/// Writes one frame whose payload is the concatenation of `parts` (not copied into one
/// buffer); returns the bytes written.
pub(crate) fn write_frame(w: &mut impl Write, parts: &[&[u8]]) -> io::Result<u64> {
    let payload_bytes: usize = parts.iter().map(|p| p.len()).sum();
    let length = (payload_bytes as u64).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&length);
    w.write_all(&length)?;
    for part in parts {
        hasher.update(part);
        w.write_all(part)?;
    }
    w.write_all(&hasher.finalize().to_le_bytes())?;
    Ok(payload_bytes as u64 + FRAME_OVERHEAD_BYTES)
}

/// Reads one frame whose payload must be `expected_bytes` long and checks its checksum;
/// `what` names the frame in errors. Returns the payload if `keep` (read in place into a
/// vector of `expected_bytes`: callers pass lengths already checked against the file's, so a
/// damaged file never causes a large allocation), else an empty vector after streaming the
/// payload through the checksum in chunks of `CHUNK_BYTES` (verifying only).
pub(crate) fn read_frame(
    r: &mut impl Read,
    expected_bytes: u64,
    what: &str,
    keep: bool,
) -> Result<Vec<u8>, FormatError> {
    let mut length = [0u8; LENGTH_BYTES as usize];
    r.read_exact(&mut length)?;
    let stored_bytes = u64::from_le_bytes(length);
    if stored_bytes != expected_bytes {
        return Err(FormatError::Corrupt(format!(
            "{what}: length field says {stored_bytes} bytes, expected {expected_bytes}"
        )));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&length);
    let payload = if keep {
        let mut payload = vec![0u8; expected_bytes as usize];
        r.read_exact(&mut payload)?;
        hasher.update(&payload);
        payload
    } else {
        let mut chunk = vec![0u8; CHUNK_BYTES.min(expected_bytes as usize)];
        let mut left = expected_bytes;
        while left > 0 {
            let n = CHUNK_BYTES.min(left as usize);
            r.read_exact(&mut chunk[..n])?;
            hasher.update(&chunk[..n]);
            left -= n as u64;
        }
        Vec::new()
    };
    let mut crc = [0u8; CHECKSUM_BYTES as usize];
    r.read_exact(&mut crc)?;
    let stored = u32::from_le_bytes(crc);
    let computed = hasher.finalize();
    if stored != computed {
        return Err(FormatError::Corrupt(format!(
            "{what}: checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})"
        )));
    }
    Ok(payload)
}

/// A file's bytes as a sequence of slices: small owned parts (header, lengths, checksums)
/// between borrowed payloads, so that a snapshot's blobs are checked and written without
/// being copied into one buffer.
#[derive(Debug, Default)]
pub(crate) struct Pieces<'a> {
    parts: Vec<Cow<'a, [u8]>>,
}

impl<'a> Pieces<'a> {
    /// Appends bytes the pieces own.
    pub(crate) fn push_owned(&mut self, bytes: &[u8]) {
        self.parts.push(Cow::Owned(bytes.to_vec()));
    }

    /// Appends `payload` framed: its length field, the payload (borrowed or owned, never
    /// copied), its checksum.
    pub(crate) fn push_frame(&mut self, payload: impl Into<Cow<'a, [u8]>>) {
        let payload = payload.into();
        let (length, crc) = frame(&payload);
        self.push_owned(&length);
        self.parts.push(payload);
        self.push_owned(&crc);
    }

    /// Total bytes.
    pub(crate) fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.len() as u64).sum()
    }

    /// Writes every piece, in order.
    pub(crate) fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        self.parts.iter().try_for_each(|p| w.write_all(p))
    }

    /// A reader over the pieces, as if they were one file.
    pub(crate) fn reader(&self) -> PiecesReader<'_, 'a> {
        PiecesReader {
            parts: &self.parts,
            part: 0,
            at: 0,
        }
    }
}

/// Reads [`Pieces`] in order.
#[derive(Debug)]
pub(crate) struct PiecesReader<'p, 'a> {
    parts: &'p [Cow<'a, [u8]>],
    part: usize,
    at: usize,
}

impl Read for PiecesReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(part) = self.parts.get(self.part) {
            let rest = &part[self.at..];
            if rest.is_empty() {
                self.part += 1;
                self.at = 0;
                continue;
            }
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.at += n;
            return Ok(n);
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_and_any_changed_byte_is_refused() {
        let payload = b"operator state";
        let mut pieces = Pieces::default();
        pieces.push_owned(&header(FileKind::State));
        pieces.push_frame(&payload[..]);
        let mut bytes = Vec::new();
        pieces.write_to(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, pieces.len());

        let mut r = pieces.reader();
        read_header(&mut r, FileKind::State).unwrap();
        let read = read_frame(&mut r, payload.len() as u64, "op", true).unwrap();
        assert_eq!(read, payload);

        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            let r = &mut &damaged[..];
            let result = read_header(r, FileKind::State)
                .and_then(|()| read_frame(r, payload.len() as u64, "op", true));
            assert!(result.is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_header_of_another_kind_or_version_is_refused_with_the_reason() {
        let h = header(FileKind::Metadata);
        let Err(FormatError::Corrupt(reason)) = read_header(&mut &h[..], FileKind::State) else {
            panic!("a metadata header passed as a state header");
        };
        assert_eq!(reason, "a metadata file where a state file belongs");

        let mut future = header(FileKind::State);
        future[4] = 2;
        let Err(FormatError::Corrupt(reason)) = read_header(&mut &future[..], FileKind::State)
        else {
            panic!("a version 2 header passed");
        };
        assert_eq!(reason, "format version 2, this build reads version 1");
    }

    #[test]
    fn a_short_file_is_corrupt_not_an_io_error() {
        let Err(FormatError::Corrupt(reason)) = read_header(&mut &b"WCK"[..], FileKind::State)
        else {
            panic!("three bytes passed as a header");
        };
        assert_eq!(reason, "the file ends early");
    }
}
