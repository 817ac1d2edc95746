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

    /// Parks the calling thread for at most `timeout`.
    ///
    /// Under loom there is no clock: the park has no timeout, so a model deadlocks (and fails)
    /// if a wake-up can be lost. The timeout in production is only a safety net for cancellation.
    #[cfg(not(weir_loom))]
    pub(crate) fn park_timeout(timeout: std::time::Duration) {
        std::thread::park_timeout(timeout);
    }
    #[cfg(weir_loom)]
    pub(crate) fn park_timeout(_timeout: std::time::Duration) {
        loom::thread::park();
    }

    /// A hint that the caller is spinning; under loom, a yield so the model makes progress.
    #[cfg(not(weir_loom))]
    pub(crate) fn spin_hint() {
        std::hint::spin_loop();
    }
    #[cfg(weir_loom)]
    pub(crate) fn spin_hint() {
        loom::thread::yield_now();
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
