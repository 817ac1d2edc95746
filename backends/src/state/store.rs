//! The memory-mapped store of one state of one subtask: values in segments, an index per key
//! group, and the record of what changed since the last completed checkpoint.

use std::cell::Cell;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use imbl::GenericHashMap;
use imbl::shared_ptr::ArcTK;
use rustc_hash::FxBuildHasher;
use weir_core::state::{BytesSnapshot, KeyedBytes};

use super::MmapConfig;
use super::chain::{self, Chain, Entry};
use super::segment::{Loc, Segment};
use super::snapshot::{History, MmapView, ViewGroup};
use crate::storage::SharedStateRegistry;

/// An encoded key, shared by a group's index and its record of changes.
pub(super) type Key = Arc<[u8]>;

/// Key → where its value lies; persistent, so that a snapshot's clone is O(1).
pub(super) type Index = GenericHashMap<Key, Loc, FxBuildHasher, ArcTK>;

/// Key → the epoch of its latest change (a put or a removal), for keys changed since the
/// group's last completed checkpoint (and possibly a little before: pruned lazily).
pub(super) type Changes = GenericHashMap<Key, u64, FxBuildHasher, ArcTK>;

/// One key group.
#[derive(Clone, Default)]
pub(super) struct Group {
    pub(super) index: Index,
    pub(super) changes: Changes,
    /// Bytes of the keys and values in `index`.
    pub(super) live_bytes: u64,
}

/// The store; see the [backend's docs](super).
pub struct MmapStore {
    name: String,
    config: Arc<MmapConfig>,
    registry: Arc<SharedStateRegistry>,
    groups: Vec<Group>,
    /// Segments by id; `None` once compaction dropped one (a running snapshot may still hold
    /// it).
    segments: Vec<Option<Arc<Segment>>>,
    /// The local segment being appended to, and its tail.
    active: Option<(u32, usize)>,
    /// Bytes of the values in the segments, live or not.
    value_bytes: u64,
    /// Bytes of the live values.
    live_value_bytes: u64,
    /// The epoch of writes now: a snapshot takes epoch `e` and moves it to `e + 1`, so the
    /// snapshot holds exactly the writes of epochs up to `e`.
    epoch: Cell<u64>,
    /// The epoch up to which `changes` were pruned.
    pruned: u64,
    /// Shared files mapped by a restore, by name → segment id.
    mapped: std::collections::HashMap<String, u32>,
    history: Arc<Mutex<History>>,
}

impl std::fmt::Debug for MmapStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmapStore")
            .field("name", &self.name)
            .field("groups", &self.groups.len())
            .field("segments", &self.segments.iter().flatten().count())
            .field("value_bytes", &self.value_bytes)
            .field("live_value_bytes", &self.live_value_bytes)
            .finish_non_exhaustive()
    }
}

impl MmapStore {
    pub(super) fn new(
        name: &str,
        key_groups: Range<usize>,
        config: Arc<MmapConfig>,
        registry: Arc<SharedStateRegistry>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            history: Arc::new(Mutex::new(History::new(key_groups.len()))),
            groups: vec![Group::default(); key_groups.len()],
            config,
            registry,
            segments: Vec::new(),
            active: None,
            value_bytes: 0,
            live_value_bytes: 0,
            epoch: Cell::new(1),
            pruned: 0,
            mapped: std::collections::HashMap::new(),
        }
    }

    /// Segments alive in the store (not counting those only snapshots hold).
    pub fn segment_count(&self) -> usize {
        self.segments.iter().flatten().count()
    }

    /// Bytes of values in the segments, garbage included.
    pub fn value_bytes(&self) -> u64 {
        self.value_bytes
    }

    fn segment(&self, id: u32) -> &Segment {
        self.segments[id as usize]
            .as_deref()
            .expect("a live location points into a live segment")
    }

    fn read(&self, loc: Loc) -> &[u8] {
        self.segment(loc.segment).read(loc.offset, loc.len)
    }

    /// Appends `value` to the active segment (a new one when it does not fit).
    ///
    /// # Panics
    /// If a new segment cannot be made (see [`KeyedBytes`]' contract).
    fn append(&mut self, value: &[u8]) -> Loc {
        let len = u32::try_from(value.len()).expect("a value of state is shorter than 4 GiB");
        let fits = self
            .active
            .is_some_and(|(id, tail)| tail + value.len() <= self.segment(id).capacity());
        if !fits {
            let capacity = self.config.segment_bytes.max(value.len());
            let segment = Segment::create(&self.config.local_dir, capacity).unwrap_or_else(|e| {
                panic!(
                    "state {:?}: cannot make a memory-mapped segment: {e}",
                    self.name
                )
            });
            let id = u32::try_from(self.segments.len()).expect("fewer than 4 G segments");
            self.segments.push(Some(Arc::new(segment)));
            self.active = Some((id, 0));
        }
        let (id, tail) = self.active.expect("an active segment");
        // SAFETY: 1. `tail + len <= capacity` (checked above, or a new segment of at least
        // `len`); 2. bytes at and past `tail` were never written: the tail only grows.
        unsafe { self.segment(id).write_at(tail, value) };
        self.active = Some((id, tail + value.len()));
        self.value_bytes += u64::from(len);
        self.live_value_bytes += u64::from(len);
        Loc {
            segment: id,
            len,
            offset: tail as u64,
        }
    }

    /// Forgets `changes` up to the newest completed epoch the registry confirmed. Runs on the
    /// first write after each snapshot; O(changes).
    fn prune_changes(&mut self) {
        let current = self.epoch.get();
        if self.pruned + 1 >= current {
            return;
        }
        let confirmed = {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            history.promote(&self.registry);
            history.base_epoch()
        };
        if confirmed > self.pruned {
            for group in &mut self.groups {
                if !group.changes.is_empty() {
                    group.changes.retain(|_, epoch| *epoch > confirmed);
                }
            }
        }
        self.pruned = current - 1;
    }

    /// Rewrites the live values into fresh segments when garbage is more than the live bytes
    /// and more than a segment: amortized O(1) per write (each compaction copies at most as
    /// many bytes as garbage was made since the last).
    fn maybe_compact(&mut self) {
        let garbage = self.value_bytes - self.live_value_bytes;
        if garbage <= self.live_value_bytes || garbage <= self.config.segment_bytes as u64 {
            return;
        }
        self.compact();
    }

    /// Moves every live value into new local segments and drops the old ones (a running
    /// snapshot keeps the ones it reads). O(live bytes).
    pub fn compact(&mut self) {
        let old: Vec<Option<Arc<Segment>>> = self.segments.clone();
        self.segments.iter_mut().for_each(|s| *s = None);
        self.active = None;
        self.mapped.clear();
        self.value_bytes = 0;
        self.live_value_bytes = 0;
        for g in 0..self.groups.len() {
            let entries: Vec<(Key, Loc)> = self.groups[g]
                .index
                .iter()
                .map(|(k, l)| (Arc::clone(k), *l))
                .collect();
            let mut index = Index::default();
            for (key, loc) in entries {
                let segment = old[loc.segment as usize]
                    .as_ref()
                    .expect("a live location points into a live segment");
                let value = segment.read(loc.offset, loc.len).to_vec();
                index.insert(key, self.append(&value));
            }
            self.groups[g].index = index;
        }
    }

    /// Marks `key` changed now.
    fn changed(&mut self, group: usize, key: Key) {
        let epoch = self.epoch.get();
        self.groups[group].changes.insert(key, epoch);
    }

    /// Removes every entry of `group`'s index from the byte counts.
    fn drop_value(&mut self, loc: Loc, key_len: usize) -> u64 {
        self.live_value_bytes -= u64::from(loc.len);
        u64::from(loc.len) + key_len as u64
    }
}

impl KeyedBytes for MmapStore {
    fn get(&self, group: usize, key: &[u8]) -> Option<&[u8]> {
        self.groups[group].index.get(key).map(|&loc| self.read(loc))
    }

    fn put(&mut self, group: usize, key: &[u8], value: &[u8]) {
        self.prune_changes();
        let loc = self.append(value);
        let existing = self.groups[group]
            .index
            .get_key_value(key)
            .map(|(k, l)| (Arc::clone(k), *l));
        let key = match existing {
            Some((k, old)) => {
                let freed = self.drop_value(old, k.len());
                self.groups[group].live_bytes -= freed;
                k
            }
            None => Arc::from(key),
        };
        let g = &mut self.groups[group];
        g.live_bytes += (key.len() + value.len()) as u64;
        g.index.insert(Arc::clone(&key), loc);
        self.changed(group, key);
        self.maybe_compact();
    }

    fn remove(&mut self, group: usize, key: &[u8]) -> bool {
        let Some((key, loc)) = self.groups[group].index.remove_with_key(key) else {
            return false;
        };
        self.prune_changes();
        let freed = self.drop_value(loc, key.len());
        self.groups[group].live_bytes -= freed;
        self.changed(group, key);
        self.maybe_compact();
        true
    }

    fn group_len(&self, group: usize) -> usize {
        self.groups[group].index.len()
    }

    fn for_each(&self, group: usize, f: &mut dyn FnMut(&[u8], &[u8])) {
        for (key, &loc) in &self.groups[group].index {
            f(key, self.read(loc));
        }
    }

    fn clear(&mut self) {
        for group in 0..self.groups.len() {
            let keys: Vec<Key> = self.groups[group].index.keys().cloned().collect();
            for key in keys {
                self.remove(group, &key);
            }
        }
    }

    /// O(key groups + segments): one reference count per group's index and changes, one per
    /// segment.
    fn snapshot(&self) -> Box<dyn BytesSnapshot> {
        let epoch = self.epoch.get();
        self.epoch.set(epoch + 1);
        let groups = self
            .groups
            .iter()
            .map(|g| ViewGroup {
                index: g.index.clone(),
                changes: g.changes.clone(),
                live_bytes: g.live_bytes,
            })
            .collect();
        Box::new(MmapView {
            name: self.name.clone(),
            epoch,
            groups,
            segments: self.segments.clone(),
            config: Arc::clone(&self.config),
            registry: Arc::clone(&self.registry),
            history: Arc::clone(&self.history),
        })
    }

    /// Maps each file of the chain (once per store), checks each frame's length and checksum
    /// and indexes its entries where they lie in the mapping: no value is copied or decoded.
    /// O(entries of the chain) plus the checksum pass over its frames.
    fn restore_chain(&mut self, group: usize, payload: &[u8]) -> Result<usize, String> {
        if !self.groups[group].index.is_empty() {
            return Err("the group holds entries before its restore".into());
        }
        let chain = Chain::decode(payload)?;
        let dir = self.config.checkpoint_dir.as_deref().ok_or(
            "the mmap state backend restores shared files only with a checkpoint directory",
        )?;
        let mut index = Index::default();
        let mut live_bytes = 0u64;
        for link in &chain.links {
            let id = match self.mapped.get(&link.file.file) {
                Some(&id) => id,
                None => {
                    let segment = Segment::map_shared(&dir.join(&link.file.file))?;
                    let id = u32::try_from(self.segments.len()).expect("fewer than 4 G segments");
                    self.segments.push(Some(Arc::new(segment)));
                    self.mapped.insert(link.file.file.clone(), id);
                    id
                }
            };
            let Some(Segment::Shared(map)) = self.segments[id as usize].as_deref() else {
                unreachable!("a mapped shared file is a shared segment")
            };
            let frame = chain::frame_payload(map, link)?;
            let frame_start = link.offset + crate::storage::file_format::LENGTH_BYTES;
            chain::for_each_entry(frame, |entry, at| match entry {
                Entry::Put(key, value) => {
                    let loc = Loc {
                        segment: id,
                        len: value.len() as u32,
                        offset: frame_start + at as u64,
                    };
                    if let Some(old) = index.insert(Arc::from(key), loc) {
                        live_bytes -= u64::from(old.len) + key.len() as u64;
                    }
                    live_bytes += (key.len() + value.len()) as u64;
                }
                Entry::Delete(key) => {
                    if let Some(old) = index.remove(key) {
                        live_bytes -= u64::from(old.len) + key.len() as u64;
                    }
                }
            })
            .map_err(|e| format!("{}: {e}", link.file.file))?;
        }
        let values: u64 = index.values().map(|l| u64::from(l.len)).sum();
        self.value_bytes += values;
        self.live_value_bytes += values;
        let entries = index.len();
        self.groups[group] = Group {
            index,
            changes: Changes::default(),
            live_bytes,
        };
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .restored(group, chain);
        Ok(entries)
    }
}
