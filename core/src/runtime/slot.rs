//! Task slots: one thread per slot drives several subtasks cooperatively.
//!
//! Flink shares a slot between one subtask of every vertex (slot sharing) but still runs each
//! subtask on its own thread. With [`TaskThreads::PerSlot`] weir runs a slot's subtasks on the
//! slot's one thread instead, each on a stack of its own (a stackful coroutine, `corosensei`):
//! subtask `s` of every vertex of the job's highest parallelism (the number of slots Flink's
//! slot sharing needs) goes to slot `s`, vertices of lower parallelism are spread over the
//! slots (`executor::slot_offset`), and slot `i` is
//! pinned to the `i`-th core read at start-up. A record that stays in its slot (the keyed
//! exchange's local half, a source and the chain it feeds) is written and read on one core,
//! while the buffer is still in its cache, and no OS context switch separates the two.
//!
//! A subtask's code is the same on both plans. Every place where a task would block goes
//! through this module: [`park_timeout`] (the notifier's and the buffer pool's park),
//! [`sleep`] (a source waiting for its rate or for input) and [`yield_now`] (a source after
//! each pushed batch, an input task after each buffer: a task that never waits still hands the
//! slot over). On a subtask thread they park, sleep or do nothing; in a slot they suspend the
//! coroutine, and the slot resumes the others.
//!
//! The slot's loop ([`run`]) goes round its unfinished subtasks. It resumes a subtask that
//! yielded, and a waiting one only when its notifier was woken or its deadline passed; a turn
//! that resumed none parks the slot's thread until the earliest deadline. No wake-up is lost:
//! a waiting subtask has announced its wait in its notifier (or its pool's free words) before
//! it suspends, every notifier of a slot's subtasks holds the slot's thread, and a producer
//! that makes a condition true marks the notifier woken, then unparks the slot's thread; an
//! unpark before the park makes the park return at once, and the next turn sees the mark (the
//! protocol of [`crate::net::notify`], with several notifiers on one thread: `loom-tests`
//! models it). A resumed subtask whose condition is still false suspends again: every wait in
//! weir already tolerates a spurious return. So a subtask that waits costs its slot one flag
//! load per turn, and a busy source's turns do not wake the idle subtasks beside it.
//!
//! Transactions: a slot enters a subtask's transaction scope around each resume, so a
//! transactional writer opened by a subtask registers with that subtask, as on its own thread.

use std::cell::Cell;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use serde::Serialize;

use crate::checkpoint::Transactions;
use crate::net::TaskNotifier;
use crate::sync::Arc as SyncArc;

/// How a job's subtasks are mapped onto threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskThreads {
    /// One OS thread per subtask (Flink's plan: a `StreamTask` thread per subtask).
    #[default]
    PerSubtask,
    /// One OS thread per slot, running one subtask of every vertex cooperatively (Flink's slot
    /// sharing, with one thread per slot instead of one per subtask).
    PerSlot,
}

/// Stack of each subtask in a slot: what `std::thread::spawn` gives a thread. It is mapped,
/// not committed: a subtask touches only the pages it uses. A guard page below it turns an
/// overflow into a fault, as on a thread.
const STACK_BYTES: usize = 2 << 20;

/// Why a subtask handed its slot back.
#[derive(Debug, Clone, Copy)]
enum Suspend {
    /// It has more work: resume it after the others.
    Yield,
    /// It waits for a condition that another task makes true (and wakes the slot for), or
    /// until this time passes.
    Wait(Instant),
}

type TaskYielder = Yielder<(), Suspend>;

thread_local! {
    /// The yielder of the subtask running on this thread, null outside a slot's subtask. Set
    /// by the subtask's coroutine when it starts and each time it is resumed; cleared by the
    /// slot after every resume.
    static CURRENT: Cell<*const TaskYielder> = const { Cell::new(std::ptr::null()) };
}

/// Suspends the running subtask with `why`; `false` (and nothing done) outside a slot.
fn suspend(why: Suspend) -> bool {
    let yielder = CURRENT.get();
    if yielder.is_null() {
        return false;
    }
    // SAFETY: a non-null CURRENT was set by the coroutine running right now on this thread
    // (on entry or after its last suspend returned) to its own yielder, which lives for the
    // whole body of that coroutine; the slot clears it after every resume, so no other code
    // sees it.
    unsafe { (*yielder).suspend(why) };
    CURRENT.set(yielder);
    true
}

/// Whether the calling code runs as a subtask in a slot.
#[inline]
pub(crate) fn in_slot() -> bool {
    !CURRENT.get().is_null()
}

/// Parks the calling subtask for at most `timeout`: suspends it in a slot (the slot resumes
/// it after a wake-up of the slot's thread, or earlier), parks the thread otherwise. Like
/// `std::thread::park_timeout` it may return early.
// Under loom the sync shim parks loom's way and never comes here.
#[cfg_attr(weir_loom, allow(dead_code))]
pub(crate) fn park_timeout(timeout: Duration) {
    if !suspend(Suspend::Wait(Instant::now() + timeout)) {
        std::thread::park_timeout(timeout);
    }
}

/// Sleeps for `duration`: in a slot the other subtasks run meanwhile.
pub(crate) fn sleep(duration: Duration) {
    if !in_slot() {
        std::thread::sleep(duration);
        return;
    }
    let until = Instant::now() + duration;
    while Instant::now() < until {
        suspend(Suspend::Wait(until));
    }
}

/// Lets the slot's other subtasks run; nothing outside a slot.
#[inline]
pub(crate) fn yield_now() {
    suspend(Suspend::Yield);
}

/// One subtask of a slot: its body (returning its wall time, ns), the transaction scope it
/// runs in, and its notifier (whose wake-ups tell the slot to resume it).
pub(crate) struct SlotTask {
    pub(crate) run: Box<dyn FnOnce() -> u64 + Send>,
    pub(crate) scope: Option<Transactions>,
    pub(crate) notifier: SyncArc<TaskNotifier>,
}

type TaskCoroutine = Coroutine<(), Suspend, u64, DefaultStack>;

/// A subtask as its slot runs it.
struct Running {
    index: usize,
    coroutine: TaskCoroutine,
    scope: Option<Transactions>,
    notifier: SyncArc<TaskNotifier>,
    /// `Some(deadline)` while it waits: it is resumed when its notifier was woken or at the
    /// deadline, not before.
    waits_until: Option<Instant>,
}

/// Runs `tasks` on the calling thread until every one has returned; their wall times (ns), in
/// order. Fails before running any if a stack cannot be mapped.
///
/// A turn resumes every subtask that yielded, and every waiting one whose notifier was woken
/// ([`TaskNotifier::take_woken`]) or whose deadline passed; the others cost one flag load.
/// After a turn in which nothing was resumed the thread parks until the earliest deadline. A
/// wake-up after a subtask's flag was looked at unparks the thread, so that park returns at
/// once and the next turn sees the flag.
pub(crate) fn run(tasks: Vec<SlotTask>) -> std::io::Result<Vec<u64>> {
    let mut running: Vec<Running> = Vec::with_capacity(tasks.len());
    for (index, task) in tasks.into_iter().enumerate() {
        let stack = DefaultStack::new(STACK_BYTES)?;
        let body = task.run;
        let coroutine = Coroutine::with_stack(stack, move |yielder: &TaskYielder, ()| {
            CURRENT.set(yielder);
            body()
        });
        running.push(Running {
            index,
            coroutine,
            scope: task.scope,
            notifier: task.notifier,
            waits_until: None,
        });
    }
    let mut walls = vec![0; running.len()];
    while !running.is_empty() {
        let mut resumed = false;
        let mut wake: Option<Instant> = None;
        let mut now: Option<Instant> = None;
        running.retain_mut(|task| {
            if let Some(until) = task.waits_until
                && !task.notifier.take_woken()
                && *now.get_or_insert_with(Instant::now) < until
            {
                wake = Some(wake.map_or(until, |w| w.min(until)));
                return true;
            }
            resumed = true;
            let _scope = task.scope.as_ref().map(Transactions::enter);
            let result = task.coroutine.resume(());
            CURRENT.set(std::ptr::null());
            match result {
                CoroutineResult::Yield(Suspend::Yield) => {
                    task.waits_until = None;
                    true
                }
                CoroutineResult::Yield(Suspend::Wait(until)) => {
                    task.waits_until = Some(until);
                    wake = Some(wake.map_or(until, |w| w.min(until)));
                    true
                }
                CoroutineResult::Return(wall) => {
                    walls[task.index] = wall;
                    false
                }
            }
        });
        if !resumed && let Some(until) = wake {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                std::thread::park_timeout(left);
            }
        }
    }
    Ok(walls)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn subtasks_of_a_slot_interleave_at_their_yields_and_all_finish() {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = |name: &'static str| {
            let log = Arc::clone(&log);
            SlotTask {
                run: Box::new(move || {
                    for step in 0..3 {
                        log.lock().unwrap().push((name, step));
                        yield_now();
                    }
                    7
                }),
                scope: None,
                notifier: Arc::new(TaskNotifier::new()),
            }
        };
        let walls = run(vec![task("a"), task("b")]).unwrap();
        assert_eq!(walls, vec![7, 7]);
        assert_eq!(
            *log.lock().unwrap(),
            vec![("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
        );
        assert!(
            !in_slot(),
            "the slot clears its subtask after the last resume"
        );
    }

    #[test]
    fn a_waiting_subtask_is_resumed_when_its_notifier_wakes_the_slot() {
        // One subtask waits for a flag that a thread outside the slot sets, then wakes the
        // subtask's notifier (as a producer would): the slot must not sleep through it.
        let flag = Arc::new(AtomicU64::new(0));
        let notifier = Arc::new(TaskNotifier::new());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let setter = {
            let (flag, notifier) = (Arc::clone(&flag), Arc::clone(&notifier));
            std::thread::spawn(move || {
                rx.recv().unwrap();
                // Most likely the slot is parked by now (both its subtasks wait).
                std::thread::sleep(Duration::from_millis(10));
                flag.store(1, Ordering::Release);
                notifier.unpark_owner();
            })
        };
        let waiter = {
            let (flag, own) = (Arc::clone(&flag), Arc::clone(&notifier));
            SlotTask {
                run: Box::new(move || {
                    own.register_current();
                    tx.send(()).unwrap();
                    while flag.load(Ordering::Acquire) == 0 {
                        // An hour: only the wake-up ends this wait before the test times out.
                        park_timeout(Duration::from_secs(3600));
                    }
                    1
                }),
                scope: None,
                notifier,
            }
        };
        let sleeper = SlotTask {
            run: Box::new(|| {
                sleep(Duration::from_millis(2));
                0
            }),
            scope: None,
            notifier: Arc::new(TaskNotifier::new()),
        };
        let walls = run(vec![waiter, sleeper]).unwrap();
        setter.join().unwrap();
        assert_eq!(walls, vec![1, 0]);
        assert_eq!(flag.load(Ordering::Acquire), 1);
    }

    #[test]
    fn outside_a_slot_the_waits_are_the_threads_own() {
        assert!(!in_slot());
        yield_now();
        sleep(Duration::from_millis(1));
        park_timeout(Duration::from_millis(1));
    }
}
