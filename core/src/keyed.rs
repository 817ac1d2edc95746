//! Key groups (Flink's `KeyGroupRangeAssignment`): the unit in which keyed state is
//! partitioned, and later checkpointed and redistributed.
//!
//! A key's group is `hash(key) % max_parallelism` (default 128); subtask `i` of `p` owns the
//! contiguous range of groups `g` with `g * p / max_parallelism == i`.

use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

/// Default maximum parallelism: the number of key groups (Flink's default is 128 too).
pub const DEFAULT_MAX_PARALLELISM: usize = 128;

/// Hashes a key: FxHash, then MurmurHash3's 64-bit finalizer (`fmix64`) so that the
/// low bits (which pick the key group) depend on every input bit. Stable across runs and
/// processes.
#[inline]
pub fn hash_key<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    key.hash(&mut hasher);
    finalize_hash(hasher.finish())
}

/// MurmurHash3's 64-bit finalizer (`fmix64`): every output bit depends on every input bit.
#[inline]
pub(crate) fn finalize_hash(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Hashes the keys of records, one at a time or a whole batch per call: what a keyed exchange
/// routes by ([`crate::net::Partitioner::KeyGroups`]).
///
/// [`KeyHash::hash_all`] exists so that routing a batch costs one dynamic call, not one per
/// record: an implementation made for a concrete key selector ([`key_hash_of`]) inlines the
/// selector and the hash into its loop.
pub trait KeyHash<T>: Send + Sync {
    /// The hash of `record`'s key.
    fn hash(&self, record: &T) -> u64;

    /// Writes the hash of `records[i]`'s key into `hashes[i]`, for every `i` below the shorter
    /// length. O(records).
    fn hash_all(&self, records: &[T], hashes: &mut [u64]);
}

/// [`hash_key`] of a key selector's key, the selector's type kept (not erased) so that
/// [`KeyHash::hash_all`] inlines it.
struct KeyHashOf<F, K> {
    key_of: Arc<F>,
    _key: PhantomData<fn() -> K>,
}

impl<T, K: Hash, F: Fn(&T) -> K + Send + Sync> KeyHash<T> for KeyHashOf<F, K> {
    #[inline]
    fn hash(&self, record: &T) -> u64 {
        hash_key(&(self.key_of)(record))
    }

    #[inline]
    fn hash_all(&self, records: &[T], hashes: &mut [u64]) {
        for (hash, record) in hashes.iter_mut().zip(records) {
            *hash = hash_key(&(self.key_of)(record));
        }
    }
}

/// The [`KeyHash`] of the key selector `key_of`: [`hash_key`] of its key.
pub(crate) fn key_hash_of<T, K, F>(key_of: Arc<F>) -> Arc<dyn KeyHash<T>>
where
    T: 'static,
    K: Hash + 'static,
    F: Fn(&T) -> K + Send + Sync + 'static,
{
    Arc::new(KeyHashOf {
        key_of,
        _key: PhantomData,
    })
}

/// The key-group layout of one keyed exchange.
///
/// Routing a record costs no division when the maximum parallelism is a power of two (the
/// default 128): the key group is then a mask of the hash, and its owner a table lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGroups {
    max_parallelism: usize,
    parallelism: usize,
    /// `max_parallelism - 1` when it is a power of two.
    mask: Option<u64>,
    /// The owning subtask of each key group.
    owner: std::sync::Arc<[u16]>,
}

impl KeyGroups {
    /// Groups for `parallelism` subtasks; `parallelism` must be in `1..=max_parallelism`.
    pub fn new(max_parallelism: usize, parallelism: usize) -> Result<Self, String> {
        if max_parallelism == 0 {
            return Err("max parallelism (the number of key groups) must be at least 1".into());
        }
        if parallelism == 0 || parallelism > max_parallelism {
            return Err(format!(
                "parallelism {parallelism} must be between 1 and the max parallelism {max_parallelism}"
            ));
        }
        if max_parallelism > usize::from(u16::MAX) {
            return Err(format!(
                "max parallelism {max_parallelism} is above the limit of {}",
                u16::MAX
            ));
        }
        let owner = (0..max_parallelism)
            .map(|group| (group * parallelism / max_parallelism) as u16)
            .collect();
        Ok(Self {
            max_parallelism,
            parallelism,
            mask: max_parallelism
                .is_power_of_two()
                .then(|| max_parallelism as u64 - 1),
            owner,
        })
    }

    /// The number of key groups.
    pub fn max_parallelism(&self) -> usize {
        self.max_parallelism
    }

    /// The number of subtasks the groups are dealt to.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The key group of `key`: [`group_of_hash`](Self::group_of_hash) of [`hash_key`].
    #[inline]
    pub fn group_of<K: Hash + ?Sized>(&self, key: &K) -> usize {
        self.group_of_hash(hash_key(key))
    }

    /// The key group of a key hash: `hash % max_parallelism`.
    #[inline]
    pub fn group_of_hash(&self, hash: u64) -> usize {
        match self.mask {
            Some(mask) => (hash & mask) as usize,
            None => (hash % self.max_parallelism as u64) as usize,
        }
    }

    /// The subtask that owns key group `group`: `group * parallelism / max_parallelism`.
    #[inline]
    pub fn subtask_of_group(&self, group: usize) -> usize {
        usize::from(self.owner[group])
    }

    /// The subtask that owns the key with hash `hash`.
    #[inline]
    pub fn subtask_of_hash(&self, hash: u64) -> usize {
        self.subtask_of_group(self.group_of_hash(hash))
    }

    /// The contiguous key groups that `subtask` owns.
    pub fn range_of(&self, subtask: usize) -> Range<usize> {
        let (m, p) = (self.max_parallelism, self.parallelism);
        (subtask * m).div_ceil(p)..((subtask + 1) * m).div_ceil(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_batch_hashes_as_its_records_one_by_one_and_as_hash_key() {
        let hasher = key_hash_of(Arc::new(|x: &(u32, char)| x.1));
        let records = [(1, 'a'), (2, 'b'), (3, 'a')];
        let mut hashes = [0u64; 3];
        hasher.hash_all(&records, &mut hashes);
        for (record, hash) in records.iter().zip(hashes) {
            assert_eq!(hash, hasher.hash(record));
            assert_eq!(hash, hash_key(&record.1));
        }
        assert_eq!(hashes[0], hashes[2], "same key, same hash");
    }

    proptest! {
        #[test]
        fn each_group_belongs_to_exactly_the_subtask_whose_range_holds_it(
            max in 1usize..300, p_seed in 0usize..300, hash in any::<u64>()
        ) {
            let p = p_seed % max + 1;
            let groups = KeyGroups::new(max, p).unwrap();
            let g = groups.group_of_hash(hash);
            let owner = groups.subtask_of_hash(hash);
            prop_assert!(groups.range_of(owner).contains(&g));
            let total: usize = (0..p).map(|s| groups.range_of(s).len()).sum();
            prop_assert_eq!(total, max);
            prop_assert_eq!(g, (hash % max as u64) as usize);
            prop_assert_eq!(owner, g * p / max);
        }
    }

    #[test]
    fn parallelism_above_max_is_rejected() {
        assert!(KeyGroups::new(128, 129).is_err());
        assert!(KeyGroups::new(128, 0).is_err());
        let zero = KeyGroups::new(0, 2).unwrap_err();
        assert!(zero.starts_with("max parallelism"), "{zero}");
    }

    #[test]
    fn hashing_is_stable() {
        assert_eq!(hash_key("浙A12345"), hash_key("浙A12345"));
        assert_ne!(hash_key("浙A12345"), hash_key("浙A12346"));
    }
}
