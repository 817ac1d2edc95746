//! Waiting without burning a core, and waking without losing a wake-up.
//!
//! Every subtask owns one [`TaskNotifier`], registered to the thread it runs on: its own, or
//! its task slot's, which several subtasks' notifiers then share (see `runtime::slot`: a slot
//! parks only once all its subtasks announced a wait, and any of their notifiers wakes it). A
//! task waits on exactly one condition at a time
//! (input available, ring space, a free buffer), and the threads that can make that condition
//! true wake it after they did: a downstream task after it popped a ring slot, an upstream task
//! after it pushed into a ring ([`TaskNotifier::notify`]); a returned buffer wakes its pool's
//! owner through the pool's own fence-free protocol (see [`super::pool`]), which ends in
//! [`TaskNotifier::unpark_owner`].
//!
//! Policy: re-check the condition between growing spins (crossbeam-utils' `Backoff`, a few
//! microseconds; see `sync::thread::spin_until`), then announce the wait, check once more and
//! park. The park has a timeout (the caller's) so that cancellation, buffer
//! timeouts and periodic watermarks are never starved, but correctness never depends on it.
//!
//! Memory ordering (Dekker's pattern): the waiter stores `waiting = true`, issues a `SeqCst`
//! fence and re-checks the condition; a notifier first makes the condition true, issues a
//! `SeqCst` fence and loads `waiting`. Of the two fences one comes first in the single total
//! order, so either the waiter's re-check sees the condition or the notifier sees the flag and
//! unparks the waiter (and an unpark before the park makes the park return at once). The
//! `loom-tests` crate checks this with the buffer pool and the channel.
//!
//! Cost: `notify` is one fence and one load of a flag that is rarely written; the mutex is taken
//! only when the owner is actually parked.

use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::sync::thread::{self, Thread};
use crate::sync::{AtomicBool, Mutex, Ordering, fence};

/// The wake-up handle of one task thread.
#[derive(Debug)]
pub struct TaskNotifier {
    /// Written by the owner around each park, read by every notifier on other cores: on a
    /// cache line of its own, so that neither side's neighbouring writes invalidate it.
    waiting: CachePadded<AtomicBool>,
    /// Set by every unpark, before it: read and cleared by a task slot, which resumes a
    /// waiting subtask only when it was woken (or its wait timed out). Written by the waking
    /// cores, read by the owner's: a cache line of its own too.
    woken: CachePadded<AtomicBool>,
    thread: Mutex<Option<Thread>>,
}

impl Default for TaskNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskNotifier {
    /// A notifier with no thread yet; the owning thread calls [`TaskNotifier::register_current`].
    pub fn new() -> Self {
        Self {
            waiting: CachePadded::new(AtomicBool::new(false)),
            woken: CachePadded::new(AtomicBool::new(false)),
            thread: Mutex::new(None),
        }
    }

    /// Makes the calling thread the one that `notify` wakes. Call once, from the owner.
    pub fn register_current(&self) {
        *self.thread.lock().expect("notifier lock poisoned") = Some(thread::current());
    }

    /// Wakes the owner if it is parked or about to park. Call after making its condition true.
    #[inline]
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) {
            self.unpark();
        }
    }

    /// [`notify`](Self::notify) after a change that can matter to the owner only in some
    /// states: `may_wait`, evaluated after the fence, says whether the owner could be waiting
    /// for this change. A reader that pops a ring slot passes "the ring was full before this
    /// pop": a writer waits for room only after it found the ring full, and it parks only if,
    /// after its own fence, it still finds it full; then (the same Dekker argument as
    /// `notify`) the reader's loads after its fence see both the writer's flag and every push
    /// before it, so `may_wait` holds. Without it, a task waiting for its input would be woken
    /// by every slot its downstream pops.
    #[inline]
    pub fn notify_if(&self, may_wait: impl FnOnce() -> bool) {
        fence(Ordering::SeqCst);
        if may_wait() && self.waiting.load(Ordering::Relaxed) {
            self.unpark();
        }
    }

    /// Unparks the owner unconditionally (for a caller that knows it waits, such as the buffer
    /// pool after seeing its waiting flag).
    #[cold]
    pub fn unpark_owner(&self) {
        self.unpark();
    }

    #[cold]
    fn unpark(&self) {
        self.woken.store(true, Ordering::Release);
        if let Some(thread) = self.thread.lock().expect("notifier lock poisoned").as_ref() {
            thread.unpark();
        }
    }

    /// Whether the owner was unparked since the last call (and clears that). A task slot asks
    /// before it resumes a subtask that waits: an unpark after this call unparks the slot's
    /// thread too, so the slot asks again before it sleeps (see `runtime::slot`).
    #[inline]
    pub fn take_woken(&self) -> bool {
        self.woken.load(Ordering::Relaxed) && self.woken.swap(false, Ordering::Acquire)
    }

    /// Waits until `ready()` holds or about `timeout` has passed; returns `ready()`'s last value.
    ///
    /// Only the owning subtask may call this. A `false` result is not an error: the caller
    /// checks its other duties (cancellation, timers) and waits again. In a task slot the park
    /// suspends the subtask, and the wait returns after the slot's next turn.
    pub fn wait(&self, mut ready: impl FnMut() -> bool, timeout: Duration) -> bool {
        if thread::spin_until(|| ready().then_some(())).is_some() {
            return true;
        }
        if self.announce(&mut ready) {
            return true;
        }
        thread::park_timeout(timeout);
        self.withdraw();
        ready()
    }

    /// The waiter's half of the handshake: raises the waiting flag, fences and checks `ready()`
    /// once more. `true`: it holds, and the flag is down again. `false`: the owner's thread may
    /// park now, and stays woken up by every [`notify`](Self::notify) until
    /// [`withdraw`](Self::withdraw).
    pub fn announce(&self, mut ready: impl FnMut() -> bool) -> bool {
        self.waiting.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if ready() {
            self.waiting.store(false, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Lowers the waiting flag after the park.
    pub fn withdraw(&self) {
        self.waiting.store(false, Ordering::Relaxed);
    }
}
