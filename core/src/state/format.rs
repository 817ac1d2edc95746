//! The layout of one key group's blob in a keyed snapshot: a sequence of sections, one per
//! state with entries in the group.
//!
//! Section: name (`u32` length, UTF-8 bytes: `String`'s codec), entry count (`u64`), payload
//! length (`u64`), payload (each entry's key, then its value, in their codecs). A section whose
//! entry count is `u64::MAX` is a chain section: its payload is a byte store's own record of
//! where the group's entries are (the memory-mapped backend's chain of shared files).

use std::ops::Range;

use super::backend::{BytesSnapshot, KeyedBytes};
use super::table::{GroupMap, KeyGrouping};
use super::{StateError, StateKey, StateValue};
use crate::codec::{self, Codec, Decoder};

/// Bytes of the entry count and payload length after the name.
const COUNTS_BYTES: usize = 16;

/// The entry count that marks a chain section: its payload is a byte store's own description
/// of where the group's entries are (the memory-mapped backend: a chain of shared files).
pub(super) const CHAIN_ENTRIES: u64 = u64::MAX;

/// Appends a section of state `name` announcing `entries` entries, whose payload `fill`
/// appends to `blob` and returns the number of entries it wrote. Nothing if `entries` is 0.
fn write_raw_section(
    blob: &mut Vec<u8>,
    name: &str,
    entries: u64,
    fill: impl FnOnce(&mut Vec<u8>) -> u64,
) {
    if entries == 0 {
        return;
    }
    let name_len = u32::try_from(name.len()).expect("a state name is shorter than 4 GiB");
    blob.extend_from_slice(&name_len.to_le_bytes());
    blob.extend_from_slice(name.as_bytes());
    blob.extend_from_slice(&entries.to_le_bytes());
    let payload_len_at = blob.len();
    blob.extend_from_slice(&0u64.to_le_bytes());
    let payload_start = blob.len();
    let written = fill(blob);
    // Checked right before the blob leaves for storage: the count in the header is the count
    // of entries written.
    assert_eq!(
        written, entries,
        "state {name:?}: the section's count is its entries"
    );
    let payload_len = (blob.len() - payload_start) as u64;
    blob[payload_len_at..payload_start].copy_from_slice(&payload_len.to_le_bytes());
}

/// Appends the section of state `name` holding `map`'s entries to `blob`; nothing if `map` is
/// empty.
pub(super) fn write_section<K: Codec, V: Codec>(
    blob: &mut Vec<u8>,
    name: &str,
    map: &GroupMap<K, V>,
) {
    write_raw_section(blob, name, map.len() as u64, |blob| {
        let mut entries = 0;
        for (key, value) in map {
            codec::append_to_vec(blob, key);
            codec::append_to_vec(blob, value);
            entries += 1;
        }
        entries
    });
}

/// Appends the section of state `name` holding group `group` of a byte store's view, in the
/// same format as [`write_section`] (encoded keys and values are their codecs' bytes, so the
/// entries are copied, not re-encoded).
pub(super) fn write_bytes_section(
    blob: &mut Vec<u8>,
    name: &str,
    view: &dyn BytesSnapshot,
    group: usize,
) {
    write_raw_section(blob, name, view.group_len(group) as u64, |blob| {
        let mut entries = 0;
        view.for_each(group, &mut |key, value| {
            blob.extend_from_slice(key);
            blob.extend_from_slice(value);
            entries += 1;
        });
        entries
    });
}

/// Appends a chain section of state `name` (see [`CHAIN_ENTRIES`]).
pub(super) fn write_chain_section(blob: &mut Vec<u8>, name: &str, payload: &[u8]) {
    write_raw_section(blob, name, CHAIN_ENTRIES, |blob| {
        blob.extend_from_slice(payload);
        CHAIN_ENTRIES
    });
}

/// Reads the payload of state `name`'s section in key group `group`, announcing `entries`
/// entries, into `map` (empty), checking each entry: it decodes, its key hashes to `group` in
/// `grouping`, and it is new; and that the entries end exactly where the payload does. Entries are
/// decoded straight from `payload` and moved into the map, one hash of the key for the group
/// check and one for its place in the map. O(entries).
pub(super) fn read_section<K: StateKey, V: StateValue>(
    name: &str,
    group: usize,
    grouping: &KeyGrouping<K>,
    payload: &[u8],
    entries: u64,
    map: &mut GroupMap<K, V>,
) -> Result<(), StateError> {
    debug_assert!(map.is_empty(), "a restore fills empty maps");
    // Room for every announced entry at once (no rehash while filling), bounded by the payload
    // so that a damaged count cannot ask for more memory than the blob's size.
    map.reserve(usize::try_from(entries).map_or(payload.len(), |n| n.min(payload.len())));
    let corrupt = |reason: String| StateError::Corrupt {
        name: name.to_owned(),
        group: Some(group),
        reason,
    };
    let decode = |source| StateError::Decode {
        name: name.to_owned(),
        group: Some(group),
        source,
    };
    let mut input = Decoder::new(payload);
    for _ in 0..entries {
        let key = K::decode(&mut input).map_err(decode)?;
        let value = V::decode(&mut input).map_err(decode)?;
        let key_group = grouping.group_of(&key);
        if key_group != group {
            return Err(corrupt(format!(
                "an entry stored in key group {group} has a key of key group {key_group}"
            )));
        }
        if map.insert(key, value).is_some() {
            return Err(corrupt("a key appears twice".to_owned()));
        }
    }
    // Checked right after reading back: the payload held exactly the announced entries.
    if !input.is_empty() {
        return Err(corrupt(format!(
            "{} bytes left after the {entries} entries the section announces",
            input.remaining()
        )));
    }
    Ok(())
}

/// Reads the payload of state `name`'s section in key group `group` (a full section, as
/// [`read_section`] reads) into group `index` of an empty byte store, with the same checks;
/// the entries' bytes are copied, decoded only to find where they end and to check the key.
#[allow(clippy::too_many_arguments)] // one call site, in the restore; a struct would only rename them
pub(super) fn read_section_bytes<K: StateKey, V: StateValue>(
    name: &str,
    group: usize,
    grouping: &KeyGrouping<K>,
    payload: &[u8],
    entries: u64,
    store: &mut dyn KeyedBytes,
    index: usize,
) -> Result<(), StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        name: name.to_owned(),
        group: Some(group),
        reason,
    };
    let decode = |source| StateError::Decode {
        name: name.to_owned(),
        group: Some(group),
        source,
    };
    let mut input = Decoder::new(payload);
    for _ in 0..entries {
        let key_start = input.position();
        let key = K::decode(&mut input).map_err(decode)?;
        let value_start = input.position();
        V::decode(&mut input).map_err(decode)?;
        let end = input.position();
        let key_group = grouping.group_of(&key);
        if key_group != group {
            return Err(corrupt(format!(
                "an entry stored in key group {group} has a key of key group {key_group}"
            )));
        }
        let key_bytes = &payload[key_start..value_start];
        if store.get(index, key_bytes).is_some() {
            return Err(corrupt("a key appears twice".to_owned()));
        }
        store.put(index, key_bytes, &payload[value_start..end]);
    }
    if !input.is_empty() {
        return Err(corrupt(format!(
            "{} bytes left after the {entries} entries the section announces",
            input.remaining()
        )));
    }
    Ok(())
}

/// One section found in a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Section {
    /// The state's name.
    pub name: String,
    /// Entries the header announces.
    pub entries: u64,
    /// Where the entries lie in the blob.
    pub payload: Range<usize>,
}

impl Section {
    /// Whether the payload is a byte store's chain (see [`CHAIN_ENTRIES`]), not entries.
    pub fn is_chain(&self) -> bool {
        self.entries == CHAIN_ENTRIES
    }
}

/// The sections of key group `group`'s blob, checked for shape: every header decodes, every
/// payload lies inside the blob, no state appears twice.
pub(super) fn parse_sections(group: usize, blob: &[u8]) -> Result<Vec<Section>, StateError> {
    let mut input = Decoder::new(blob);
    let mut sections: Vec<Section> = Vec::new();
    while !input.is_empty() {
        let header_error = |source| StateError::Decode {
            name: format!("<section {} header>", sections.len()),
            group: Some(group),
            source,
        };
        let name = String::decode(&mut input).map_err(header_error)?;
        if input.remaining() < COUNTS_BYTES {
            return Err(StateError::Corrupt {
                name,
                group: Some(group),
                reason: format!(
                    "section header ends after {} of {COUNTS_BYTES} count bytes",
                    input.remaining()
                ),
            });
        }
        let entries = input.take_u64().map_err(header_error)?;
        let payload_len = input.take_u64().map_err(header_error)?;
        let start = input.position();
        let corrupt = |reason: String| StateError::Corrupt {
            name: name.clone(),
            group: Some(group),
            reason,
        };
        let len = usize::try_from(payload_len)
            .ok()
            .filter(|&len| len <= input.remaining())
            .ok_or_else(|| {
                corrupt(format!(
                    "payload of {payload_len} bytes, but {} bytes are left in the blob",
                    input.remaining()
                ))
            })?;
        input.take_raw(len).map_err(header_error)?;
        if sections.iter().any(|s| s.name == name) {
            return Err(corrupt(
                "the state has two sections in one key group".to_owned(),
            ));
        }
        sections.push(Section {
            name,
            entries,
            payload: start..start + len,
        });
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob() -> Vec<u8> {
        let mut map = GroupMap::<u64, String>::default();
        map.insert(1, "one".to_owned());
        map.insert(2, "two".to_owned());
        let mut blob = Vec::new();
        write_section(&mut blob, "a", &map);
        write_section(&mut blob, "empty", &GroupMap::<u64, u64>::default());
        write_section(&mut blob, "b", &map);
        blob
    }

    #[test]
    fn sections_are_found_again_with_their_counts() {
        let blob = blob();
        let sections = parse_sections(3, &blob).unwrap();
        let names: Vec<_> = sections
            .iter()
            .map(|s| (s.name.as_str(), s.entries))
            .collect();
        assert_eq!(names, [("a", 2), ("b", 2)]);
        // Per entry: 8 bytes of key, 4 + 3 of value.
        assert_eq!(sections[0].payload.len(), 2 * 15);
        assert_eq!(sections[1].payload.end, blob.len());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let blob = blob();
        for cut in 1..blob.len() {
            let end = sections_end(&blob);
            if end.contains(&cut) {
                continue; // a cut between two sections leaves whole sections
            }
            assert!(parse_sections(0, &blob[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// Blob lengths at which a section ends.
    fn sections_end(blob: &[u8]) -> Vec<usize> {
        parse_sections(0, blob)
            .unwrap()
            .iter()
            .map(|s| s.payload.end)
            .collect()
    }

    #[test]
    fn a_state_twice_in_a_group_is_corrupt() {
        let mut map = GroupMap::<u64, u64>::default();
        map.insert(1, 1);
        let mut blob = Vec::new();
        write_section(&mut blob, "a", &map);
        write_section(&mut blob, "a", &map);
        assert!(matches!(
            parse_sections(0, &blob),
            Err(StateError::Corrupt { .. })
        ));
    }
}
