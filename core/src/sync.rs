//! The one switch between std and loom primitives.
//!
//! Every lock-free type in weir-core takes its atomics, cells and parking from here, so the code
//! that loom checks (`--cfg weir_loom`) is the code that ships. The `UnsafeCell` offers loom's
//! closure API (`with`, `with_mut`) on both sides, so one body compiles for both.
//!
//! The control plane's channel ([`mpsc`]) comes from here too, so a loom model of the
//! checkpoint coordinator sees its reports as loom operations.

#[cfg(not(weir_loom))]
pub(crate) use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence},
};

#[cfg(weir_loom)]
pub(crate) use loom::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence},
};

/// A multi-producer channel (tasks → checkpoint coordinator).
///
/// Under loom, `recv` blocks as a loom operation (a model whose coordinator waits for a report
/// that never comes fails as a deadlock) and `recv_timeout` panics (loom has no clock): code that
/// a model runs receives with `recv` or `try_recv`.
pub(crate) mod mpsc {
    #[cfg(weir_loom)]
    pub(crate) use loom::sync::mpsc::{Receiver, Sender, channel};
    pub(crate) use std::sync::mpsc::RecvTimeoutError;
    #[cfg(not(weir_loom))]
    pub(crate) use std::sync::mpsc::{Receiver, Sender, channel};
}

/// Threads and parking.
pub(crate) mod thread {
    #[cfg(weir_loom)]
    pub(crate) use loom::thread::{Thread, current};
    #[cfg(not(weir_loom))]
    pub(crate) use std::thread::{Thread, current};

    /// Parks the calling thread for at most `timeout` (in a task slot: suspends the subtask,
    /// see `runtime::slot`).
    ///
    /// Under loom there is no clock: the park has no timeout, so a model deadlocks (and fails)
    /// if a wake-up can be lost. The timeout in production is only a safety net for cancellation.
    #[cfg(not(weir_loom))]
    pub(crate) fn park_timeout(timeout: std::time::Duration) {
        crate::runtime::slot::park_timeout(timeout);
    }
    #[cfg(weir_loom)]
    pub(crate) fn park_timeout(_timeout: std::time::Duration) {
        loom::thread::park();
    }

    /// Spin rounds of a wait before it parks: crossbeam-utils' `Backoff::spin` doubles the
    /// hints per round, 1, 2, .., 64: 127 `spin_loop` hints, a few microseconds.
    #[cfg(not(weir_loom))]
    const SPIN_ROUNDS: u32 = 7;

    /// The spin phase of a wait: polls `ready` between growing spins and returns its first
    /// `Some`, or `None` when the spin phase is over (the caller then parks). It never yields
    /// the core: with other processes on the machine a yield handed them the core and made
    /// whole jobs up to twice as slow (wall), for about 4% less CPU on a quiet machine.
    ///
    /// In a task slot there is no spin: one poll, then the caller suspends the subtask and the
    /// slot runs the others (the one that would make `ready` true may be among them).
    #[cfg(not(weir_loom))]
    #[inline]
    pub(crate) fn spin_until<R>(mut ready: impl FnMut() -> Option<R>) -> Option<R> {
        if crate::runtime::slot::in_slot() {
            return ready();
        }
        let backoff = crossbeam_utils::Backoff::new();
        for _ in 0..SPIN_ROUNDS {
            if let Some(done) = ready() {
                return Some(done);
            }
            backoff.spin();
        }
        None
    }

    /// Under loom one poll and one yield (so the model makes progress): a single re-check
    /// before the park keeps the models small.
    #[cfg(weir_loom)]
    pub(crate) fn spin_until<R>(mut ready: impl FnMut() -> Option<R>) -> Option<R> {
        let done = ready();
        if done.is_none() {
            loom::thread::yield_now();
        }
        done
    }
}

/// `UnsafeCell` with loom's closure API.
#[cfg(not(weir_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(weir_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared pointer to the value.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with an exclusive pointer to the value.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(weir_loom)]
pub(crate) use loom::cell::UnsafeCell;
