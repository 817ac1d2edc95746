//! Restoring keyed state from snapshot blobs, also at another parallelism (Flink's rescaling:
//! key groups stay whole and move between subtasks).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;

use super::backend::KeyedBytes;
use super::format::{Section, parse_sections, read_section, read_section_bytes};
use super::table::{KeyGrouping, SharedGroup, Store, group_mut};
use super::{StateError, StateKey, StateSnapshotRestore, StateValue};
use crate::checkpoint::OperatorSnapshot;

/// One key group's part of the state being restored: its section's payload (empty if the
/// group holds none of the state) and the entries it announces.
struct GroupPart<'a> {
    group: usize,
    payload: &'a [u8],
    entries: u64,
    /// The payload is a byte store's chain, not entries.
    chain: bool,
}

/// Fills `maps` (empty, one per part, in order) from `parts`, stopping at the first error.
/// Returns the entries restored.
fn fill<K: StateKey, V: StateValue>(
    name: &str,
    grouping: &KeyGrouping<K>,
    parts: &[GroupPart<'_>],
    maps: &mut [SharedGroup<K, V>],
) -> Result<usize, StateError> {
    debug_assert_eq!(parts.len(), maps.len(), "one map per key group");
    let mut restored = 0;
    for (part, map) in parts.iter().zip(maps) {
        if part.chain {
            return Err(StateError::Layout(format!(
                "state {name:?}, key group {}: written by the mmap state backend as a chain of \
                 shared files; restore it with --state-backend mmap",
                part.group
            )));
        }
        let map = group_mut(map);
        read_section(name, part.group, grouping, part.payload, part.entries, map)?;
        restored += map.len();
    }
    Ok(restored)
}

/// Fills an empty byte store from `parts` (one per group of the store, in order), stopping
/// at the first error: full sections entry by entry, chain sections by the store itself.
/// Returns the entries restored.
fn fill_bytes<K: StateKey, V: StateValue>(
    name: &str,
    grouping: &KeyGrouping<K>,
    parts: &[GroupPart<'_>],
    store: &mut dyn KeyedBytes,
) -> Result<usize, StateError> {
    let mut restored = 0;
    for (index, part) in parts.iter().enumerate() {
        if part.chain {
            store
                .restore_chain(index, part.payload)
                .map_err(|reason| StateError::Corrupt {
                    name: name.to_owned(),
                    group: Some(part.group),
                    reason,
                })?;
        } else {
            read_section_bytes::<K, V>(
                name,
                part.group,
                grouping,
                part.payload,
                part.entries,
                store,
                index,
            )?;
        }
        restored += store.group_len(index);
    }
    Ok(restored)
}

/// One key group's blob and its sections.
struct GroupBlob {
    bytes: Vec<u8>,
    sections: Vec<Section>,
}

/// The keyed blobs of one operator, from any number of old subtasks, to restore states from.
///
/// ```
/// # use weir_core::keyed::KeyGroups;
/// # use weir_core::state::{KeyedRestore, KeyedSnapshot, KeyedTable, SnapshotMode};
/// # let old = KeyGroups::new(128, 1).unwrap();
/// # let mut counts = KeyedTable::<u64, u64>::new("counts", &old, 0);
/// # counts.insert(7, 1);
/// # let mut snapshot = KeyedSnapshot::new(counts.key_groups(), SnapshotMode::Sync);
/// # snapshot.add(&counts);
/// # let blobs = snapshot.into_blobs();
/// let new = KeyGroups::new(128, 2).unwrap();
/// let mut restore = KeyedRestore::new();
/// restore.add(0..128, blobs)?; // once per old subtask whose groups overlap ours
/// let mut mine = KeyedTable::<u64, u64>::new("counts", &new, 0);
/// restore.restore(&mut mine)?;
/// restore.finish()?; // every state in the blobs was restored
/// # Ok::<(), weir_core::state::StateError>(())
/// ```
#[derive(Default)]
pub struct KeyedRestore {
    groups: BTreeMap<usize, GroupBlob>,
    /// Every state name found in the blobs.
    found: HashSet<String>,
    /// The states restored so far.
    restored: HashSet<String>,
}

impl fmt::Debug for KeyedRestore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRestore")
            .field("key_groups", &self.groups.keys().collect::<Vec<_>>())
            .field("states", &self.found)
            .finish()
    }
}

impl KeyedRestore {
    /// A restore with no blobs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A restore from the keyed parts of `snapshots` (each old subtask's, or the part of it a
    /// ranged read returned).
    pub fn from_snapshots<'a>(
        snapshots: impl IntoIterator<Item = &'a OperatorSnapshot>,
    ) -> Result<Self, StateError> {
        let mut restore = Self::new();
        for snapshot in snapshots {
            restore.add(snapshot.key_groups.clone(), snapshot.keyed.clone())?;
        }
        Ok(restore)
    }

    /// A restore from the key-group blobs an operator finds in its
    /// [`RestoreContext`](crate::checkpoint::RestoreContext) (the groups it owns now).
    pub fn from_context(context: &crate::checkpoint::RestoreContext) -> Result<Self, StateError> {
        let mut restore = Self::new();
        for (group, blob) in &context.keyed {
            restore.add(*group..*group + 1, vec![blob.clone()])?;
        }
        Ok(restore)
    }

    /// Adds the blobs of key groups `key_groups` (one per group, in order), checking each
    /// blob's shape. A group given twice is an error.
    pub fn add(
        &mut self,
        key_groups: Range<usize>,
        blobs: Vec<Vec<u8>>,
    ) -> Result<&mut Self, StateError> {
        if blobs.len() != key_groups.len() {
            return Err(StateError::Layout(format!(
                "{} keyed blobs for the {} key groups {key_groups:?}",
                blobs.len(),
                key_groups.len()
            )));
        }
        for (group, bytes) in key_groups.zip(blobs) {
            if self.groups.contains_key(&group) {
                return Err(StateError::Layout(format!(
                    "key group {group} is in two snapshots"
                )));
            }
            let sections = parse_sections(group, &bytes)?;
            self.found.extend(sections.iter().map(|s| s.name.clone()));
            self.groups.insert(group, GroupBlob { bytes, sections });
        }
        Ok(self)
    }

    /// Inserts into `state` every entry of its name in the key groups it owns, checking each:
    /// it decodes exactly, its key hashes to the group it was stored in, and it appears once.
    /// Returns the entries restored. `state` must be empty, and every group it owns must have
    /// been added (a group without state has an empty blob, so a missing one is lost state).
    /// On an error `state` is left empty.
    ///
    /// O(entries), on the calling thread, one key group's map at a time. A byte store restores
    /// a chain section its own way (the memory-mapped one maps the files and indexes the
    /// entries without decoding a value). (Two threads, each
    /// filling half of the groups, halve the time only while the second thread's allocator
    /// arena keeps its pages; glibc hands a freed arena's pages back, so a restore after a
    /// table was dropped spends the gain on page faults. See the `restore` bench.)
    pub fn restore<S: StateSnapshotRestore>(&mut self, state: &mut S) -> Result<usize, StateError> {
        let table = state.table_mut();
        let name = table.name().to_owned();
        if !table.is_empty() {
            return Err(StateError::Layout(format!(
                "state {name:?} holds entries before its restore"
            )));
        }
        if !self.restored.insert(name.clone()) {
            return Err(StateError::Layout(format!(
                "state {name:?} is restored twice"
            )));
        }
        let owned = table.key_groups();
        let mut parts = Vec::with_capacity(owned.len());
        for group in owned.clone() {
            let blob = self.groups.get(&group).ok_or_else(|| {
                StateError::Layout(format!(
                    "key group {group} of state {name:?} is in none of the snapshots"
                ))
            })?;
            let section = blob.sections.iter().find(|s| s.name == name);
            parts.push(GroupPart {
                group,
                payload: section.map_or(&[][..], |s| &blob.bytes[s.payload.clone()]),
                entries: section.map_or(0, |s| s.entries),
                chain: section.is_some_and(Section::is_chain),
            });
        }
        let grouping = table.grouping().clone();
        let result = match table.store_mut() {
            Store::Heap(maps) => fill(&name, &grouping, &parts, maps),
            Store::Bytes(store) => {
                fill_bytes::<S::Key, S::Stored>(&name, &grouping, &parts, store.as_mut())
            }
        };
        if result.is_err() {
            table.clear();
        }
        result
    }

    /// Ends the restore: an error if the blobs hold a state that no call to
    /// [`restore`](Self::restore) asked for (renamed or dropped state would be lost silently).
    pub fn finish(self) -> Result<(), StateError> {
        let mut unclaimed: Vec<_> = self.found.difference(&self.restored).collect();
        unclaimed.sort();
        match unclaimed.first() {
            Some(name) => Err(StateError::Unclaimed((*name).clone())),
            None => Ok(()),
        }
    }
}
