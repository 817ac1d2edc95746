//! Keyed snapshots: a copy-on-write view of a table ([`TableSnapshot`]) and the blobs of all
//! states of one operator ([`KeyedSnapshot`]).

use std::fmt;
use std::ops::Range;

use super::format::write_section;
use super::table::GroupMap;
use super::{SnapshotMode, StateKey, StateSnapshotRestore, StateValue};

/// A table as it was when [`KeyedTable::snapshot`](super::KeyedTable::snapshot) was called:
/// it shares every node with the table, and a change to the table copies a node before
/// changing it, so this view never changes. `Send + 'static`: it goes to a snapshot thread.
pub struct TableSnapshot<K, V> {
    name: String,
    owned: Range<usize>,
    groups: Vec<GroupMap<K, V>>,
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
    pub(super) fn new(name: String, owned: Range<usize>, groups: Vec<GroupMap<K, V>>) -> Self {
        debug_assert_eq!(owned.len(), groups.len());
        Self {
            name,
            owned,
            groups,
        }
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
        self.groups.iter().map(GroupMap::len).sum()
    }

    /// Whether the view holds no entry. O(key groups).
    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(GroupMap::is_empty)
    }

    /// Appends this state's section to each key group's blob (`blobs[i]` is the blob of key
    /// group `key_groups().start + i`). O(entries); meant for a snapshot thread.
    ///
    /// # Panics
    /// If `blobs` does not have one blob per key group.
    pub fn write(self, blobs: &mut [Vec<u8>]) {
        write_groups(&self.name, &self.groups, blobs);
    }
}

fn write_groups<K: StateKey, V: StateValue>(
    name: &str,
    groups: &[GroupMap<K, V>],
    blobs: &mut [Vec<u8>],
) {
    assert_eq!(
        groups.len(),
        blobs.len(),
        "state {name:?}: one blob per key group"
    );
    for (map, blob) in groups.iter().zip(blobs) {
        write_section(blob, name, map);
    }
}

/// A table snapshot with its types erased, so that one operator's states go together.
trait WriteGroups: Send {
    fn write_groups(self: Box<Self>, blobs: &mut [Vec<u8>]);
}

impl<K: StateKey, V: StateValue> WriteGroups for TableSnapshot<K, V> {
    fn write_groups(self: Box<Self>, blobs: &mut [Vec<u8>]) {
        self.write(blobs);
    }
}

/// What the snapshot holds until [`KeyedSnapshot::into_blobs`], by mode.
enum Flavor {
    /// Views still to serialize.
    Async(Vec<Box<dyn WriteGroups>>),
    /// Blobs already serialized on the task thread.
    Sync(Vec<Vec<u8>>),
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
/// [`into_blobs`](Self::into_blobs) serializes; in [`SnapshotMode::Sync`], `add` serializes at
/// once and `into_blobs` only hands the blobs over. Both produce the same bytes.
pub struct KeyedSnapshot {
    key_groups: Range<usize>,
    names: Vec<String>,
    flavor: Flavor,
}

impl fmt::Debug for KeyedSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedSnapshot")
            .field("key_groups", &self.key_groups)
            .field("states", &self.names)
            .field("mode", &self.mode())
            .finish()
    }
}

impl KeyedSnapshot {
    /// An empty snapshot of an operator subtask owning `key_groups`.
    pub fn new(key_groups: Range<usize>, mode: SnapshotMode) -> Self {
        let flavor = match mode {
            SnapshotMode::Async => Flavor::Async(Vec::new()),
            SnapshotMode::Sync => Flavor::Sync(vec![Vec::new(); key_groups.len()]),
        };
        Self {
            key_groups,
            names: Vec::new(),
            flavor,
        }
    }

    /// The mode it was made with.
    pub fn mode(&self) -> SnapshotMode {
        match self.flavor {
            Flavor::Async(_) => SnapshotMode::Async,
            Flavor::Sync(_) => SnapshotMode::Sync,
        }
    }

    /// Adds a state, as it is now.
    ///
    /// # Panics
    /// If the state owns other key groups than the snapshot, or a state of the same name was
    /// added already: both are wiring bugs, and either would make the snapshot unrestorable.
    pub fn add<S: StateSnapshotRestore>(&mut self, state: &S) -> &mut Self {
        let table = state.table();
        self.check_new(table.name(), table.key_groups());
        match &mut self.flavor {
            Flavor::Async(views) => views.push(Box::new(table.snapshot())),
            Flavor::Sync(blobs) => write_groups(table.name(), table.group_maps(), blobs),
        }
        self
    }

    /// Adds a view taken earlier with [`KeyedTable::snapshot`](super::KeyedTable::snapshot)
    /// (in sync mode, serialized at once). Panics as [`add`](Self::add) does.
    pub fn add_view<K: StateKey, V: StateValue>(&mut self, view: TableSnapshot<K, V>) -> &mut Self {
        self.check_new(view.name(), view.key_groups());
        match &mut self.flavor {
            Flavor::Async(views) => views.push(Box::new(view)),
            Flavor::Sync(blobs) => view.write(blobs),
        }
        self
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

    /// The blobs, one per key group in order: the asynchronous part (serialization, O(entries))
    /// in async mode, nothing left to do in sync mode.
    pub fn into_blobs(self) -> Vec<Vec<u8>> {
        match self.flavor {
            Flavor::Sync(blobs) => blobs,
            Flavor::Async(views) => {
                let mut blobs = vec![Vec::new(); self.key_groups.len()];
                for view in views {
                    view.write_groups(&mut blobs);
                }
                blobs
            }
        }
    }
}
