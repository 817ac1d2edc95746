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

/// Appends `key`, the text before a value (`{"name":` for the first field, `,"name":` for
/// the others), and `n` in decimal, as serde_json writes it (through the same `itoa`).
#[inline]
pub(crate) fn int_field(out: &mut Vec<u8>, key: &[u8], n: impl itoa::Integer) {
    out.extend_from_slice(key);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `key` (as for [`int_field`]) and `text` as a JSON string: quoted as it is when it
/// has nothing to escape (the common case: paths, plates, names), else escaped by serde_json.
#[inline]
pub(crate) fn str_field(out: &mut Vec<u8>, key: &[u8], text: &str) -> io::Result<()> {
    out.extend_from_slice(key);
    // A fold without an early exit: the compiler checks many bytes per step.
    let plain = !text.bytes().fold(false, |bad, b| {
        bad | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return Ok(());
    }
    serde_json::to_writer(out, text).map_err(Into::into)
}
