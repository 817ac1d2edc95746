//! Network buffers: a fixed set of fixed-size segments, lent lock-free (Flink's
//! `NetworkBufferPool`, `LocalBufferPool` and `MemorySegment`).
//!
//! Guarantees:
//! - **Allocates once.** [`NetworkBufferPool::new`] allocates every segment; taking and
//!   returning a buffer never allocates.
//! - **Lock-free.** A local pool's free segments are bits in atomic words (63 a word). Taking
//!   is a compare-and-swap that clears one bit; returning (dropping a [`Buffer`], on any thread)
//!   is one `fetch_or`. There is no ABA problem: a bit names a segment, not a pointer.
//! - **Waking without a fence.** The top bit of every free word is the owner's "waiting" flag.
//!   A writer that found no buffer sets it with a `fetch_or` on each word and looks at what that
//!   returned; a returner's `fetch_or` returns the word as it was. Both are read-modify-writes of
//!   the same word, so one comes first in its modification order: either the writer's sees the
//!   returned buffer (and takes it instead of parking), or the returner's sees the flag (and
//!   unparks the writer; an unpark before the park makes the park return at once). No wake-up is
//!   lost and the return path has no fence (`loom-tests` checks it).
//! - **Bounded.** A local pool never holds more than it was carved with: an empty pool is
//!   backpressure, never growth.
//!
//! Quotas: a task's output pool has `exclusive` buffers reserved for each output channel
//! (Flink's exclusive buffers, default 2) and `floating` buffers shared by all of them (default
//! 8). A channel first uses its own exclusive buffers, then floating ones, so one slow channel
//! can hold at most `exclusive + floating` buffers and the others keep theirs.
//!
//! Ordering: a buffer's bytes are written by the thread that took it and read by the thread that
//! receives it through a channel (the ring's release/acquire hand-off orders those). Returning
//! clears nothing: the `fetch_or` is `Release` and the taking CAS (and the waiting announcement)
//! `Acquire`, so the next writer of a segment happens after the last reader of it.

use std::fmt;

use crossbeam_utils::CachePadded;
use thiserror::Error;

use std::ptr::NonNull;
use std::time::Duration;

use super::notify::TaskNotifier;
use crate::sync::thread;
use crate::sync::{Arc, AtomicU64, Ordering, UnsafeCell};

/// Default segment size, as Flink's `taskmanager.memory.segment-size`.
pub const DEFAULT_SEGMENT_BYTES: usize = 32 * 1024;
/// Default exclusive buffers per output channel, as Flink's `buffers-per-channel`.
pub const DEFAULT_EXCLUSIVE_PER_CHANNEL: usize = 2;
/// Default floating buffers per output gate, as Flink's `floating-buffers-per-gate`.
pub const DEFAULT_FLOATING_PER_GATE: usize = 8;

/// Sizes of the network buffer pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PoolConfig {
    /// Bytes per segment.
    pub segment_bytes: usize,
    /// Total segments; `None` sizes the pool to exactly what the job's local pools need.
    pub segments: Option<usize>,
    /// Buffers reserved for each output channel.
    pub exclusive_per_channel: usize,
    /// Buffers shared by the channels of one output gate.
    pub floating_per_gate: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segments: None,
            exclusive_per_channel: DEFAULT_EXCLUSIVE_PER_CHANNEL,
            floating_per_gate: DEFAULT_FLOATING_PER_GATE,
        }
    }
}

/// Why a pool could not be set up.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PoolError {
    /// The configured pool has fewer segments than the job's channels need.
    #[error(
        "network buffer pool too small: the job's channels need {needed} segments, {configured} configured; give --buffers at least {needed} (or leave it out)"
    )]
    Undersized {
        /// Segments every local pool of the job needs together.
        needed: usize,
        /// Segments configured.
        configured: usize,
    },
    /// A local pool asks for more segments than are left uncarved in the pool.
    #[error(
        "network buffer pool too small: a local pool needs {needed} segments, only {available} of the pool's {total} are left"
    )]
    TooSmall {
        /// Segments the local pool asked for.
        needed: usize,
        /// Segments still uncarved.
        available: usize,
        /// Segments in the pool.
        total: usize,
    },
    /// A zero-sized segment or pool.
    #[error("invalid pool configuration: {0}")]
    Invalid(&'static str),
}

/// The memory all segments live in, shared by every local pool carved from it.
struct Arena {
    segment_bytes: usize,
    segments: Box<[UnsafeCell<Box<[u8]>>]>,
}

// SAFETY: a segment's bytes are only reached through a `Buffer`, and the free bits of the local
// pool hand each segment to at most one `Buffer` at a time (see `LocalBufferPool::try_take`).
unsafe impl Sync for Arena {}
// SAFETY: the arena owns plain bytes; moving it between threads is sound.
unsafe impl Send for Arena {}

/// The job-wide set of segments (Flink's `NetworkBufferPool`), carved into local pools at set-up.
pub struct NetworkBufferPool {
    arena: Arc<Arena>,
    carved: usize,
}

impl fmt::Debug for NetworkBufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkBufferPool")
            .field("segment_bytes", &self.arena.segment_bytes)
            .field("segments", &self.arena.segments.len())
            .field("carved", &self.carved)
            .finish()
    }
}

impl NetworkBufferPool {
    /// Allocates `segments` segments of `segment_bytes` each: the only allocation of the pool.
    pub fn new(segment_bytes: usize, segments: usize) -> Result<Self, PoolError> {
        if segment_bytes == 0 || segments == 0 {
            return Err(PoolError::Invalid(
                "segment size and segment count must be positive",
            ));
        }
        let segments = (0..segments)
            .map(|_| UnsafeCell::new(vec![0u8; segment_bytes].into_boxed_slice()))
            .collect();
        Ok(Self {
            arena: Arc::new(Arena {
                segment_bytes,
                segments,
            }),
            carved: 0,
        })
    }

    /// Segments in the pool.
    pub fn total_segments(&self) -> usize {
        self.arena.segments.len()
    }

    /// Bytes per segment.
    pub fn segment_bytes(&self) -> usize {
        self.arena.segment_bytes
    }

    /// Carves a local pool for one task with `channels` output channels: `exclusive` buffers
    /// for each channel plus `floating` shared ones. `owner` is woken when a buffer returns.
    pub fn local_pool(
        &mut self,
        channels: usize,
        exclusive: usize,
        floating: usize,
        owner: Arc<TaskNotifier>,
    ) -> Result<LocalBufferPool, PoolError> {
        let needed = channels * exclusive + floating;
        if needed == 0 {
            return Err(PoolError::Invalid("a local pool needs at least one buffer"));
        }
        let total = self.total_segments();
        let available = total - self.carved;
        if needed > available {
            return Err(PoolError::TooSmall {
                needed,
                available,
                total,
            });
        }
        let first = self.carved;
        self.carved += needed;
        let words = needed.div_ceil(BITS_PER_WORD);
        let free = (0..words)
            .map(|w| {
                let bits_in_word = (needed - w * BITS_PER_WORD).min(BITS_PER_WORD);
                CachePadded::new(AtomicU64::new((1u64 << bits_in_word) - 1))
            })
            .collect();
        Ok(LocalBufferPool {
            inner: Arc::new(LocalInner {
                arena: Arc::clone(&self.arena),
                first,
                len: needed,
                exclusive,
                channels,
                free,
                owner,
            }),
        })
    }
}

/// Buffers per free word; the top bit is the waiting flag.
const BITS_PER_WORD: usize = 63;
/// The owner is waiting for a buffer of this word (see the module docs).
const WAITING: u64 = 1 << 63;

struct LocalInner {
    arena: Arc<Arena>,
    /// Index of this pool's first segment in the arena.
    first: usize,
    /// Segments in this pool.
    len: usize,
    exclusive: usize,
    channels: usize,
    /// Buffer `i` is bit `i % 63` of word `i / 63`, set when free; bit 63 of each word is the
    /// owner's waiting flag. Channel `c` owns buffers `c * exclusive .. (c + 1) * exclusive`;
    /// the rest are floating. Each word has a cache line of its own: the owner's takes and
    /// other cores' returns contend on the word itself, not on whatever was allocated beside it.
    free: Box<[CachePadded<AtomicU64>]>,
    owner: Arc<TaskNotifier>,
}

impl LocalInner {
    /// The bits of word `word_idx` that buffers `range` occupy.
    #[inline]
    fn mask_in(word_idx: usize, range: &std::ops::Range<usize>) -> u64 {
        let base = word_idx * BITS_PER_WORD;
        let lo = range.start.max(base);
        let hi = range.end.min(base + BITS_PER_WORD);
        if lo >= hi {
            return 0;
        }
        ((1u64 << (hi - lo)) - 1) << (lo - base)
    }

    /// The words that buffers `range` occupy.
    #[inline]
    fn words_of(range: &std::ops::Range<usize>) -> std::ops::Range<usize> {
        if range.is_empty() {
            return 0..0;
        }
        range.start / BITS_PER_WORD..(range.end - 1) / BITS_PER_WORD + 1
    }

    /// Tries to take a free buffer in `range`; returns its index.
    #[inline]
    fn take_in(&self, range: std::ops::Range<usize>) -> Option<usize> {
        for word_idx in Self::words_of(&range) {
            let mask = Self::mask_in(word_idx, &range);
            let word = &self.free[word_idx];
            let mut current = word.load(Ordering::Relaxed);
            loop {
                let candidates = current & mask;
                if candidates == 0 {
                    break;
                }
                let bit = candidates.trailing_zeros() as usize;
                match word.compare_exchange_weak(
                    current,
                    current & !(1u64 << bit),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(word_idx * BITS_PER_WORD + bit),
                    Err(actual) => current = actual,
                }
            }
        }
        None
    }

    /// The buffers channel `channel` may take: its exclusive ones, then the floating ones.
    #[inline]
    fn ranges_of(&self, channel: usize) -> [std::ops::Range<usize>; 2] {
        [
            channel * self.exclusive..(channel + 1) * self.exclusive,
            self.channels * self.exclusive..self.len,
        ]
    }

    /// Sets the waiting flag on every word holding a buffer `channel` may take; returns whether
    /// one of them was free at that moment (then the caller retries instead of parking).
    fn announce_waiting(&self, channel: usize) -> bool {
        let mut free_seen = false;
        for range in self.ranges_of(channel) {
            for word_idx in Self::words_of(&range) {
                let before = self.free[word_idx].fetch_or(WAITING, Ordering::Acquire);
                free_seen |= before & Self::mask_in(word_idx, &range) != 0;
            }
        }
        free_seen
    }

    /// Clears the waiting flags again.
    fn withdraw_waiting(&self) {
        for word in self.free.iter() {
            word.fetch_and(!WAITING, Ordering::Relaxed);
        }
    }

    fn free_count(&self) -> usize {
        self.free
            .iter()
            .map(|w| (w.load(Ordering::Relaxed) & !WAITING).count_ones() as usize)
            .sum()
    }
}

/// One task's share of the network buffers (Flink's `LocalBufferPool`).
///
/// Cloning gives another handle to the same pool.
#[derive(Clone)]
pub struct LocalBufferPool {
    inner: Arc<LocalInner>,
}

impl fmt::Debug for LocalBufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBufferPool")
            .field("size", &self.inner.len)
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl LocalBufferPool {
    /// Takes a free buffer for output channel `channel`: one of its exclusive buffers, else a
    /// floating one. `None` when both are used up: that is backpressure, and the caller waits
    /// (see [`TaskNotifier::wait`]); the pool never grows.
    #[inline]
    pub fn try_take(&self, channel: usize) -> Option<Buffer> {
        let inner = &*self.inner;
        debug_assert!(channel < inner.channels.max(1));
        let [own, floating] = inner.ranges_of(channel);
        let index = inner.take_in(own).or_else(|| inner.take_in(floating))?;
        let segment = NonNull::from(&inner.arena.segments[inner.first + index]);
        Some(Buffer {
            pool: Arc::clone(&self.inner),
            segment,
            capacity: inner.arena.segment_bytes as u32,
            index: index as u32,
            len: 0,
        })
    }

    /// Takes a buffer for `channel`, waiting while the pool is empty: spin a few microseconds
    /// (`sync::thread::spin_until`), then announce the wait in the free words and park until a
    /// returned buffer unparks this thread (or `park` passes). `None` once `give_up()` says so
    /// (cancellation).
    ///
    /// Only the pool's owner (the thread registered with the notifier the pool was carved
    /// with) may call this: the returner unparks that thread.
    pub fn take_waiting(
        &self,
        channel: usize,
        park: Duration,
        mut give_up: impl FnMut() -> bool,
    ) -> Option<Buffer> {
        loop {
            if let Some(buffer) = thread::spin_until(|| self.try_take(channel)) {
                return Some(buffer);
            }
            if give_up() {
                return None;
            }
            if !self.inner.announce_waiting(channel) {
                thread::park_timeout(park);
            }
            self.inner.withdraw_waiting();
        }
    }

    /// Buffers in this pool.
    pub fn size(&self) -> usize {
        self.inner.len
    }

    /// Buffers currently taken (a snapshot; other threads may be returning some).
    pub fn in_use(&self) -> usize {
        self.inner.len - self.inner.free_count()
    }

    /// Bytes per buffer.
    pub fn buffer_bytes(&self) -> usize {
        self.inner.arena.segment_bytes
    }
}

/// An exclusive loan of one segment; returns to its pool when dropped, on whatever thread.
///
/// `len` bytes of the segment are filled. A buffer is `Send` but not `Sync`: it moves through
/// a channel, it is never shared.
#[must_use = "a buffer returns to its pool when dropped"]
pub struct Buffer {
    pool: Arc<LocalInner>,
    /// The segment's cell in the arena, found once when the buffer is taken: the writer's
    /// per-record path then follows one pointer instead of pool, arena and segment table.
    segment: NonNull<UnsafeCell<Box<[u8]>>>,
    /// Bytes the segment holds.
    capacity: u32,
    /// The buffer's index in its local pool.
    index: u32,
    len: u32,
}

// SAFETY: `segment` points into the arena that `pool` keeps alive, and the pool's free bit for
// `index` is clear while this `Buffer` exists, so no other `Buffer` reaches that segment: moving
// the loan to another thread moves exclusive access with it.
unsafe impl Send for Buffer {}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("segment", &(self.pool.first + self.index as usize))
            .field("len", &self.len)
            .finish()
    }
}

impl Buffer {
    #[inline]
    fn cell(&self) -> &UnsafeCell<Box<[u8]>> {
        // SAFETY: `segment` was taken from the arena's segment table, which is allocated once
        // and never moves or shrinks, and `pool` keeps the arena alive as long as `self`.
        unsafe { self.segment.as_ref() }
    }

    /// Filled bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether nothing has been written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the segment holds in all.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Bytes still free.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Appends `n` bytes written by `fill`, which gets exactly `n` bytes. `n` must fit
    /// ([`Buffer::remaining`]).
    #[inline]
    pub fn append<R>(&mut self, n: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        assert!(n <= self.remaining(), "append past the end of a buffer");
        let start = self.len();
        let result = self.cell().with_mut(|segment| {
            // SAFETY:
            // 1. This `Buffer` holds the segment's free bit cleared, so no other `Buffer` for
            //    the segment exists (the bit is set again only in `drop`).
            // 2. `&mut self` makes this the only access through this `Buffer`.
            // 3. The segment was allocated once and lives as long as the arena, which `pool` keeps.
            let segment = unsafe { &mut *segment };
            fill(&mut segment[start..start + n])
        });
        self.len += n as u32;
        result
    }

    /// Overwrites filled bytes at `at` (an element written earlier and not yet sent).
    #[inline]
    pub fn rewrite(&mut self, at: usize, bytes: &[u8]) {
        assert!(
            at + bytes.len() <= self.len(),
            "rewrite past the filled bytes"
        );
        self.cell().with_mut(|segment| {
            // SAFETY: as in `append`: this `Buffer` is the only one for the segment and
            // `&mut self` excludes any other access through it.
            let segment = unsafe { &mut *segment };
            segment[at..at + bytes.len()].copy_from_slice(bytes);
        });
    }

    /// Runs `read` over the filled bytes.
    #[inline]
    pub fn read<R>(&self, read: impl FnOnce(&[u8]) -> R) -> R {
        let len = self.len();
        self.cell().with(|segment| {
            // SAFETY: as in `append`, this `Buffer` is the only one for the segment, and `&self`
            // excludes a concurrent `append` through it; the bytes up to `len` were written
            // before this `Buffer` was handed over (the channel's release/acquire orders them).
            let segment = unsafe { &*segment };
            read(&segment[..len])
        })
    }
}

impl Drop for Buffer {
    #[inline]
    fn drop(&mut self) {
        let index = self.index as usize;
        let pool = &*self.pool;
        let before = pool.free[index / BITS_PER_WORD]
            .fetch_or(1u64 << (index % BITS_PER_WORD), Ordering::Release);
        if before & WAITING != 0 {
            pool.owner.unpark_owner();
        }
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use super::*;

    fn pool(channels: usize, exclusive: usize, floating: usize) -> LocalBufferPool {
        let mut global =
            NetworkBufferPool::new(64, channels * exclusive + floating + 3).expect("pool");
        global
            .local_pool(channels, exclusive, floating, Arc::new(TaskNotifier::new()))
            .expect("local pool")
    }

    #[test]
    fn exclusive_buffers_are_kept_for_their_channel() {
        let pool = pool(2, 2, 1);
        // Channel 0 takes its two exclusive buffers and the one floating buffer.
        let held: Vec<_> = (0..3).map(|_| pool.try_take(0).expect("buffer")).collect();
        assert!(pool.try_take(0).is_none(), "channel 0 is at its quota");
        // Channel 1 still has its exclusive buffers.
        let b1 = pool.try_take(1).expect("channel 1 exclusive");
        let b2 = pool.try_take(1).expect("channel 1 exclusive");
        assert!(pool.try_take(1).is_none());
        assert_eq!(pool.in_use(), 5);
        drop((held, b1, b2));
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn carving_more_than_the_pool_is_a_clear_error() {
        let mut global = NetworkBufferPool::new(64, 4).expect("pool");
        let err = global
            .local_pool(2, 2, 8, Arc::new(TaskNotifier::new()))
            .unwrap_err();
        assert_eq!(
            err,
            PoolError::TooSmall {
                needed: 12,
                available: 4,
                total: 4
            }
        );
        assert!(err.to_string().contains("needs 12 segments"));
    }

    #[test]
    fn pools_wider_than_one_word_use_every_bit() {
        let pool = pool(1, 0, 130);
        let held: Vec<_> = (0..130)
            .map(|_| pool.try_take(0).expect("buffer"))
            .collect();
        assert!(pool.try_take(0).is_none());
        assert_eq!(pool.in_use(), 130);
        drop(held);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn bytes_written_are_read_back() {
        let pool = pool(1, 1, 0);
        let mut buffer = pool.try_take(0).expect("buffer");
        buffer.append(3, |b| b.copy_from_slice(b"abc"));
        buffer.append(2, |b| b.copy_from_slice(b"de"));
        assert_eq!(buffer.remaining(), 59);
        buffer.read(|bytes| assert_eq!(bytes, b"abcde"));
    }

    #[test]
    fn two_threads_take_and_return_without_losing_a_buffer() {
        let pool = pool(1, 2, 2);
        let rounds = 20_000;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Buffer>(8);
        let reader = std::thread::spawn(move || {
            let mut seen = 0u64;
            for buffer in rx {
                buffer.read(|b| seen += u64::from(b[0]));
            }
            seen
        });
        let mut expected = 0u64;
        for i in 0..rounds {
            let mut buffer = loop {
                if let Some(b) = pool.try_take(0) {
                    break b;
                }
                std::thread::yield_now();
            };
            let byte = (i % 251) as u8;
            expected += u64::from(byte);
            buffer.append(1, |b| b[0] = byte);
            tx.send(buffer).expect("reader alive");
        }
        drop(tx);
        assert_eq!(reader.join().expect("reader"), expected);
        assert_eq!(pool.in_use(), 0);
    }
}
