//! Keyed snapshots: a copy-on-write view of a table ([`TableSnapshot`]) and the blobs of all
//! states of one operator ([`KeyedSnapshot`]).

use std::fmt;
use std::ops::Range;

use super::backend::BytesSnapshot;
use super::format::{write_bytes_section, write_chain_section, write_section};
use super::table::SharedGroup;
use super::{SnapshotMode, StateError, StateKey, StateSnapshotRestore, StateValue};
use crate::checkpoint::SharedFile;

/// What a [`TableSnapshot`] holds, by store.
pub(super) enum View<K, V> {
    /// The heap maps, each shared with the table until the table's next write to it.
    Heap(Vec<SharedGroup<K, V>>),
    /// A byte store's own view.
    Bytes(Box<dyn BytesSnapshot>),
}

/// A table as it was when [`KeyedTable::snapshot`](super::KeyedTable::snapshot) was called:
/// on the heap it shares each key group's map with the table, and the table's first change to
/// a shared map copies it first, so this view never changes (a byte store keeps the same
/// promise its own way). `Send + 'static`: it goes to a snapshot thread.
pub struct TableSnapshot<K, V> {
    name: String,
    owned: Range<usize>,
    view: View<K, V>,
}

impl<K, V> fmt::Debug for TableSnapshot<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableSnapshot")
            .field("name", &self.name)
            .field("key_groups", &self.owned)
            .finish_non_exhaustive()
    }
}

impl<K: StateKey, V: StateValue> TableSnapshot<K, V> {
    pub(super) fn new(name: String, owned: Range<usize>, view: View<K, V>) -> Self {
        if let View::Heap(groups) = &view {
            debug_assert_eq!(owned.len(), groups.len());
        }
        Self { name, owned, view }
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key groups covered.
    pub fn key_groups(&self) -> Range<usize> {
        self.owned.clone()
    }

    /// Entries in the view. O(key groups).
    pub fn len(&self) -> usize {
        match &self.view {
            View::Heap(groups) => groups.iter().map(|g| g.len()).sum(),
            View::Bytes(view) => (0..self.owned.len()).map(|g| view.group_len(g)).sum(),
        }
    }

    /// Whether the view holds no entry. O(key groups).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends this state's full section to each key group's blob (`blobs[i]` is the blob of
    /// key group `key_groups().start + i`), whatever the store: every entry, restorable by any
    /// backend. O(entries); meant for a snapshot thread.
    ///
    /// # Panics
    /// If `blobs` does not have one blob per key group.
    pub fn write(self, blobs: &mut [Vec<u8>]) {
        check_blobs(&self.name, self.owned.len(), blobs);
        match &self.view {
            View::Heap(groups) => write_groups(&self.name, groups, blobs),
            View::Bytes(view) => {
                for (group, blob) in blobs.iter_mut().enumerate() {
                    write_bytes_section(blob, &self.name, view.as_ref(), group);
                }
            }
        }
    }

    /// Appends this state's section to each key group's blob as its store snapshots: a byte
    /// store writes what changed since its last completed checkpoint into shared files and
    /// its sections refer to them ([`KeyedParts::shared`]); the heap writes full sections, as
    /// [`write`](Self::write) does. O(entries) on the heap, O(changed entries) in the
    /// memory-mapped store.
    ///
    /// # Errors
    /// A byte store that could not write its shared files.
    ///
    /// # Panics
    /// If `parts` does not have one blob per key group.
    pub fn write_incremental(self, parts: &mut KeyedParts) -> Result<(), StateError> {
        check_blobs(&self.name, self.owned.len(), &parts.blobs);
        let view = match self.view {
            View::Heap(_) => {
                self.write(&mut parts.blobs);
                return Ok(());
            }
            View::Bytes(view) => view,
        };
        let backend_error = |reason| StateError::Backend {
            name: self.name.clone(),
            reason,
        };
        let written = view.write_incremental().map_err(backend_error)?;
        if written.sections.len() != parts.blobs.len() {
            return Err(backend_error(format!(
                "{} sections for {} key groups",
                written.sections.len(),
                parts.blobs.len()
            )));
        }
        for (section, blob) in written.sections.iter().zip(&mut parts.blobs) {
            if let Some(payload) = section {
                write_chain_section(blob, &self.name, payload);
            }
        }
        for file in written.shared {
            if !parts.shared.contains(&file) {
                parts.shared.push(file);
            }
        }
        parts.shared_written_bytes += written.written_bytes;
        Ok(())
    }
}

fn check_blobs(name: &str, groups: usize, blobs: &[Vec<u8>]) {
    assert_eq!(
        groups,
        blobs.len(),
        "state {name:?}: one blob per key group"
    );
}

fn write_groups<K: StateKey, V: StateValue>(
    name: &str,
    groups: &[SharedGroup<K, V>],
    blobs: &mut [Vec<u8>],
) {
    check_blobs(name, groups.len(), blobs);
    for (map, blob) in groups.iter().zip(blobs) {
        write_section(blob, name, map);
    }
}

/// The keyed part of an operator's snapshot, written: one blob per key group and the shared
/// files the blobs refer to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KeyedParts {
    /// One blob per key group, in order.
    pub blobs: Vec<Vec<u8>>,
    /// The shared files the blobs' chain sections refer to, each once.
    pub shared: Vec<SharedFile>,
    /// Bytes of the shared files written now.
    pub shared_written_bytes: u64,
}

/// A table snapshot with its types erased, so that one operator's states go together.
trait WriteGroups: Send {
    fn write_full(self: Box<Self>, blobs: &mut [Vec<u8>]);
    fn write_incremental(self: Box<Self>, parts: &mut KeyedParts) -> Result<(), StateError>;
}

impl<K: StateKey, V: StateValue> WriteGroups for TableSnapshot<K, V> {
    fn write_full(self: Box<Self>, blobs: &mut [Vec<u8>]) {
        self.write(blobs);
    }

    fn write_incremental(self: Box<Self>, parts: &mut KeyedParts) -> Result<(), StateError> {
        TableSnapshot::write_incremental(*self, parts)
    }
}

/// The keyed snapshot of one operator subtask: every state's entries, one blob per owned key
/// group (what [`OperatorSnapshot::keyed`](crate::checkpoint::OperatorSnapshot::keyed) holds).
///
/// Use on the task thread, at the barrier:
/// ```
/// # use weir_core::keyed::KeyGroups;
/// # use weir_core::state::{KeyedSnapshot, KeyedTable, SnapshotMode};
/// # let layout = KeyGroups::new(128, 1).unwrap();
/// # let counts = KeyedTable::<u64, u64>::new("counts", &layout, 0);
/// let mut snapshot = KeyedSnapshot::new(counts.key_groups(), SnapshotMode::Async);
/// snapshot.add(&counts); // O(key groups) in async mode, O(entries) in sync mode
/// // ... then on a snapshot thread:
/// let blobs = std::thread::spawn(move || snapshot.into_blobs()).join().unwrap();
/// assert_eq!(blobs.len(), 128);
/// ```
/// In [`SnapshotMode::Async`], [`add`](Self::add) takes a [`TableSnapshot`] and
/// [`into_blobs`](Self::into_blobs) serializes; in [`SnapshotMode::Sync`], `add` serializes a
/// heap table at once and `into_blobs` only hands the blobs over. Both produce the same bytes.
/// A byte store's view is always kept for later: its store decides what its synchronous part
/// is. [`into_parts`](Self::into_parts) is what a checkpoint takes: incremental where the
/// store is (the memory-mapped backend), full blobs elsewhere.
pub struct KeyedSnapshot {
    key_groups: Range<usize>,
    names: Vec<String>,
    mode: SnapshotMode,
    /// Sections serialized at `add` (heap tables in sync mode); empty until the first is
    /// written, so that an async snapshot's synchronous part allocates no blob.
    blobs: Vec<Vec<u8>>,
    /// Views still to serialize.
    views: Vec<Box<dyn WriteGroups>>,
}

impl fmt::Debug for KeyedSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedSnapshot")
            .field("key_groups", &self.key_groups)
            .field("states", &self.names)
            .field("mode", &self.mode)
            .finish()
    }
}

impl KeyedSnapshot {
    /// An empty snapshot of an operator subtask owning `key_groups`.
    pub fn new(key_groups: Range<usize>, mode: SnapshotMode) -> Self {
        Self {
            blobs: Vec::new(),
            key_groups,
            names: Vec::new(),
            mode,
            views: Vec::new(),
        }
    }

    /// The mode it was made with.
    pub fn mode(&self) -> SnapshotMode {
        self.mode
    }

    /// Adds a state, as it is now.
    ///
    /// # Panics
    /// If the state owns other key groups than the snapshot, or a state of the same name was
    /// added already: both are wiring bugs, and either would make the snapshot unrestorable.
    pub fn add<S: StateSnapshotRestore>(&mut self, state: &S) -> &mut Self {
        self.add_view(state.table().snapshot())
    }

    /// Adds a view taken earlier with [`KeyedTable::snapshot`](super::KeyedTable::snapshot)
    /// (in sync mode, a heap view is serialized at once). Panics as [`add`](Self::add) does.
    pub fn add_view<K: StateKey, V: StateValue>(&mut self, view: TableSnapshot<K, V>) -> &mut Self {
        self.check_new(view.name(), view.key_groups());
        match (&view.view, self.mode) {
            (View::Heap(_), SnapshotMode::Sync) => {
                let blobs = self.blobs_mut();
                view.write(blobs);
            }
            _ => self.views.push(Box::new(view)),
        }
        self
    }

    /// The blobs, one per key group, made on first use.
    fn blobs_mut(&mut self) -> &mut Vec<Vec<u8>> {
        if self.blobs.is_empty() {
            self.blobs = vec![Vec::new(); self.key_groups.len()];
        }
        &mut self.blobs
    }

    fn check_new(&mut self, name: &str, key_groups: Range<usize>) {
        assert_eq!(
            key_groups, self.key_groups,
            "state {name:?} owns other key groups than its operator's snapshot"
        );
        assert!(
            !self.names.iter().any(|n| n == name),
            "two states of one operator are named {name:?}"
        );
        self.names.push(name.to_owned());
    }

    /// The blobs, one per key group in order, every state in full (restorable by any
    /// backend): the asynchronous part (serialization, O(entries)) in async mode, nothing left
    /// to do for heap tables in sync mode.
    pub fn into_blobs(mut self) -> Vec<Vec<u8>> {
        let mut blobs = std::mem::take(self.blobs_mut());
        for view in self.views {
            view.write_full(&mut blobs);
        }
        blobs
    }

    /// The keyed part of a checkpoint: full sections of heap tables, incremental ones of byte
    /// stores, with the shared files they refer to.
    ///
    /// # Errors
    /// A byte store that could not write its shared files (the checkpoint is declined).
    pub fn into_parts(mut self) -> Result<KeyedParts, StateError> {
        let mut parts = KeyedParts {
            blobs: std::mem::take(self.blobs_mut()),
            ..KeyedParts::default()
        };
        for view in self.views {
            view.write_incremental(&mut parts)?;
        }
        Ok(parts)
    }
}
