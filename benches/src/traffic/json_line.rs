//! Output lines that write their JSON themselves: the bytes `serde_json::to_writer` writes
//! for them, without serde's generic serializer, which escapes every key of every line and
//! turns a flattened struct into a map. Window results and late records are most of what the
//! traffic job writes while it runs (a sink's time, and so the latency markers queued behind
//! a burst of results); each type's test checks its bytes against serde_json's.

use std::io;

/// A line that writes its own JSON.
pub trait JsonLine {
    /// Appends the line's JSON, without a newline.
    fn write_json(&self, out: &mut Vec<u8>) -> io::Result<()>;
}

/// Appends `n` in decimal, as serde_json does (through the same `itoa`).
#[inline]
pub(crate) fn put_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `text` as a JSON string: quoted as it is when it has nothing to escape (the common
/// case: paths, plates), else escaped by serde_json.
#[inline]
pub(crate) fn put_str(out: &mut Vec<u8>, text: &str) -> io::Result<()> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return Ok(());
    }
    serde_json::to_writer(out, text).map_err(Into::into)
}
