//! Incremental snapshots of the memory-mapped store: the view a snapshot takes, the history
//! of what earlier snapshots wrote, and the asynchronous part that writes a shared file.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weir_core::checkpoint::SharedFile;
use weir_core::state::{BytesSnapshot, Incremental};

use super::MmapConfig;
use super::chain::{self, Chain, ENTRY_OVERHEAD_BYTES, Entry, Link, SharedWriter};
use super::segment::{Loc, Segment};
use super::store::{Changes, Index};
use crate::storage::SharedStateRegistry;

/// Written snapshots kept while they wait for their checkpoint to complete; an older one is
/// forgotten (it can no longer become a base: a newer one would be chosen).
const MAX_WRITTEN: usize = 16;

/// The chains of every group at one snapshot.
type Chains = Vec<Arc<Chain>>;

/// A snapshot whose shared file was written, waiting for its checkpoint to complete.
#[derive(Debug)]
struct Written {
    epoch: u64,
    file: String,
    chains: Chains,
}

/// What the store's snapshots wrote: the newest one known to be in a completed checkpoint
/// (the base of the next increment; after a restore, the restored chains), and the ones
/// written since. Shared between the store and its views, under a mutex taken once per
/// snapshot and once per write after a snapshot.
#[derive(Debug)]
pub(super) struct History {
    base_epoch: u64,
    base: Chains,
    written: Vec<Written>,
}

impl History {
    pub(super) fn new(groups: usize) -> Self {
        Self {
            base_epoch: 0,
            base: (0..groups).map(|_| Arc::new(Chain::default())).collect(),
            written: Vec::new(),
        }
    }

    /// Makes the newest written snapshot whose file a completed checkpoint holds the base.
    /// Only a completed checkpoint's files are ever a base: an aborted one's never are.
    pub(super) fn promote(&mut self, registry: &SharedStateRegistry) {
        if let Some(newest) = self
            .written
            .iter()
            .rposition(|w| w.epoch > self.base_epoch && registry.is_confirmed(&w.file))
        {
            let w = self.written.remove(newest);
            self.base_epoch = w.epoch;
            self.base = w.chains;
            let base_epoch = self.base_epoch;
            self.written.retain(|w| w.epoch > base_epoch);
        }
    }

    /// The epoch of the base: every change up to it is in a completed checkpoint.
    pub(super) fn base_epoch(&self) -> u64 {
        self.base_epoch
    }

    /// Group `group` was restored from `chain`: it is the group's base.
    pub(super) fn restored(&mut self, group: usize, chain: Chain) {
        self.base[group] = Arc::new(chain);
    }

    fn record(&mut self, written: Written) {
        if self.written.len() == MAX_WRITTEN {
            self.written.remove(0);
        }
        self.written.push(written);
    }
}

/// One group as a snapshot saw it.
pub(super) struct ViewGroup {
    pub(super) index: Index,
    pub(super) changes: Changes,
    pub(super) live_bytes: u64,
}

/// A snapshot of an [`MmapStore`](super::MmapStore): its groups' indexes and changes as they
/// were (persistent clones) and the segments their locations point into.
pub(super) struct MmapView {
    pub(super) name: String,
    pub(super) epoch: u64,
    pub(super) groups: Vec<ViewGroup>,
    pub(super) segments: Vec<Option<Arc<Segment>>>,
    pub(super) config: Arc<MmapConfig>,
    pub(super) registry: Arc<SharedStateRegistry>,
    pub(super) history: Arc<Mutex<History>>,
}

impl MmapView {
    fn read(&self, loc: Loc) -> &[u8] {
        self.segments[loc.segment as usize]
            .as_deref()
            .expect("a location of the view points into a segment the view holds")
            .read(loc.offset, loc.len)
    }

    /// The frame of every entry of `group`.
    fn full_frame(&self, group: &ViewGroup) -> Vec<u8> {
        let mut payload = Vec::with_capacity(8 + group.live_bytes as usize);
        payload.extend_from_slice(&(group.index.len() as u64).to_le_bytes());
        for (key, &loc) in &group.index {
            chain::push_entry(&mut payload, Entry::Put(key, self.read(loc)));
        }
        payload
    }

    /// The frame of the keys of `group` changed after `base_epoch`, each at its latest
    /// version (a removed key as a tombstone); `None` if none changed.
    fn delta_frame(&self, group: &ViewGroup, base_epoch: u64) -> Option<Vec<u8>> {
        let mut payload = vec![0; 8];
        let mut count = 0u64;
        for (key, _) in group.changes.iter().filter(|(_, e)| **e > base_epoch) {
            match group.index.get(key) {
                Some(&loc) => chain::push_entry(&mut payload, Entry::Put(key, self.read(loc))),
                None => chain::push_entry(&mut payload, Entry::Delete(key)),
            }
            count += 1;
        }
        payload[..8].copy_from_slice(&count.to_le_bytes());
        (count > 0).then_some(payload)
    }

    /// Whether a group's chain should start over from a full base: it is longer than the
    /// limit, or its frames and the new delta would exceed `rebase_ratio` × the group's live
    /// bytes (so a restore reads at most that multiple of the live state).
    fn rebase(&self, base: &Chain, delta_bytes: u64, group: &ViewGroup) -> bool {
        let live = group.live_bytes + group.index.len() as u64 * ENTRY_OVERHEAD_BYTES;
        base.links.len() >= self.config.max_chain
            || (base.bytes() + delta_bytes) as f64 > self.config.rebase_ratio * live as f64
    }
}

/// Shared files made by this process, for unique names.
static NEXT_FILE: AtomicU64 = AtomicU64::new(0);

/// A name for a new shared file: the state's name (plain characters only), the process, the
/// time and a counter, unique across processes and runs.
fn file_name(state: &str) -> String {
    let plain: String = state
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
    format!("{plain}-{:x}-{nanos:x}-{n}.shared", std::process::id())
}

impl BytesSnapshot for MmapView {
    fn group_len(&self, group: usize) -> usize {
        self.groups[group].index.len()
    }

    fn for_each(&self, group: usize, f: &mut dyn FnMut(&[u8], &[u8])) {
        for (key, &loc) in &self.groups[group].index {
            f(key, self.read(loc));
        }
    }

    /// Writes one shared file holding, for each group changed since the base (the newest
    /// snapshot in a completed checkpoint), a delta or, when the chain is too long, a full
    /// base; unchanged groups keep the base's chain. O(changed entries) plus O(entries) of
    /// the groups rebased.
    fn write_incremental(self: Box<Self>) -> Result<Incremental, String> {
        let dir = self
            .config
            .checkpoint_dir
            .clone()
            .ok_or("the mmap state backend snapshots only with a checkpoint directory")?;
        let (base_epoch, base) = {
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            history.promote(&self.registry);
            (history.base_epoch, history.base.clone())
        };
        if base_epoch >= self.epoch {
            return Err(format!(
                "state {:?}: a newer snapshot completed before this one was written",
                self.name
            ));
        }
        let mut writer = None;
        let mut chains = Vec::with_capacity(self.groups.len());
        let mut pending: Vec<(usize, u64, u64, bool)> = Vec::new();
        for (g, group) in self.groups.iter().enumerate() {
            let base = &base[g];
            if group.index.is_empty() {
                chains.push(Arc::new(Chain::default()));
                continue;
            }
            let Some(delta) = self.delta_frame(group, base_epoch) else {
                chains.push(Arc::clone(base));
                continue;
            };
            let rebase = self.rebase(base, delta.len() as u64, group);
            let payload = if rebase {
                self.full_frame(group)
            } else {
                delta
            };
            if writer.is_none() {
                writer = Some(SharedWriter::create(&dir, &file_name(&self.name))?);
            }
            let (offset, bytes) = writer
                .as_mut()
                .expect("created above")
                .push_frame(&payload)?;
            pending.push((g, offset, bytes, rebase));
            chains.push(Arc::clone(base));
        }
        let mut written_bytes = 0;
        if let Some(writer) = writer {
            let file = writer.finish(&dir)?;
            written_bytes = file.bytes;
            for (g, offset, bytes, rebase) in pending {
                let link = Link {
                    file: Arc::clone(&file),
                    offset,
                    bytes,
                };
                let mut chain = if rebase {
                    Chain::default()
                } else {
                    (*chains[g]).clone()
                };
                chain.links.push(link);
                chains[g] = Arc::new(chain);
            }
            self.history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(Written {
                    epoch: self.epoch,
                    file: file.file.clone(),
                    chains: chains.clone(),
                });
        }
        let mut shared: Vec<SharedFile> = Vec::new();
        for link in chains.iter().flat_map(|c| &c.links) {
            if !shared.iter().any(|f| f.file == link.file.file) {
                shared.push((*link.file).clone());
            }
        }
        let sections = chains
            .iter()
            .map(|c| (!c.links.is_empty()).then(|| c.encode()))
            .collect();
        Ok(Incremental {
            sections,
            shared,
            written_bytes,
        })
    }
}
