//! Buffer acquire/release pairs per second under two-thread contention: weir's lock-free
//! `LocalBufferPool` against a `Mutex<Vec<usize>>` free list.
//!
//! Thread A (pinned to one core) takes a buffer and hands it to thread B (pinned to another)
//! through an `rtrb` ring; B returns it: weir's `Buffer` by being dropped on B (one `fetch_or`
//! and the owner's `notify`), the mutex variant by pushing the index back under the lock. Both
//! variants use the same ring and spin the same way when the pool is empty or the ring is full,
//! so they differ only in the pool. The pool holds [`POOL_BUFFERS`] buffers and the ring as
//! many slots, so the pool is what runs out. One iteration is one buffer taken and returned.
//!
//! `handoff_only` passes plain indices through the same ring with no pool at all: the floor
//! that both pool variants pay for the hand-off itself.
//!
//! The `contended` group is the pool alone under symmetric contention: two pinned threads each
//! take a buffer and return it at once, as fast as they can, on the same pool (several tasks
//! returning buffers to one writer's pool at once). One iteration is one pair on each thread.

use std::hint::{black_box, spin_loop};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_core::net::{LocalBufferPool, NetworkBufferPool, TaskNotifier};

/// Buffers in the pool (Flink's default local pool: 2 exclusive and 8 floating is 10).
const POOL_BUFFERS: usize = 16;
/// Bytes per buffer: irrelevant to acquire/release, kept small.
const SEGMENT_BYTES: usize = 64;

/// The first two cores, read once before any thread is pinned; `None` on a single core.
fn two_cores() -> Option<(CoreId, CoreId)> {
    match core_affinity::get_core_ids()?.as_slice() {
        [a, b, ..] => Some((*a, *b)),
        _ => None,
    }
}

/// Takes `iters` items with `take` on this thread, hands each to a thread pinned to
/// `returner_core` through a ring of [`POOL_BUFFERS`] slots, where `give_back` returns it.
/// `take` returns `None` while the pool is empty, and is retried. Returns the time from both
/// threads being ready to the last item given back.
fn time_handoff<T: Send>(
    iters: u64,
    returner_core: Option<CoreId>,
    mut take: impl FnMut() -> Option<T>,
    give_back: impl Fn(T) + Send,
) -> Duration {
    let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(POOL_BUFFERS);
    let ready = &Barrier::new(2);
    thread::scope(|s| {
        let returner = s.spawn(move || {
            if let Some(core) = returner_core {
                core_affinity::set_for_current(core);
            }
            ready.wait();
            let mut returned = 0;
            while returned < iters {
                match rx.pop() {
                    Ok(item) => {
                        give_back(item);
                        returned += 1;
                    }
                    Err(rtrb::PopError::Empty) => spin_loop(),
                }
            }
        });
        ready.wait();
        let start = Instant::now();
        for _ in 0..iters {
            let mut item = loop {
                match take() {
                    Some(item) => break item,
                    None => spin_loop(),
                }
            };
            while let Err(rtrb::PushError::Full(back)) = tx.push(item) {
                item = back;
                spin_loop();
            }
        }
        returner.join().expect("returner");
        start.elapsed()
    })
}

fn weir_pool() -> LocalBufferPool {
    let mut global = NetworkBufferPool::new(SEGMENT_BYTES, POOL_BUFFERS).expect("pool");
    global
        .local_pool(1, POOL_BUFFERS, 0, std::sync::Arc::new(TaskNotifier::new()))
        .expect("local pool")
}

fn pool(c: &mut Criterion) {
    let cores = two_cores();
    if let Some((taker, _)) = cores {
        core_affinity::set_for_current(taker);
    }
    let returner_core = cores.map(|(_, returner)| returner);

    let mut group = c.benchmark_group("pool");
    group.throughput(Throughput::Elements(1));
    group.bench_function("weir_lock_free", |b| {
        b.iter_custom(|iters| {
            let pool = weir_pool();
            let elapsed = time_handoff(iters, returner_core, || pool.try_take(0), drop);
            assert_eq!(pool.in_use(), 0, "every buffer came back");
            elapsed
        });
    });
    group.bench_function("mutex_vec", |b| {
        b.iter_custom(|iters| {
            let free = Mutex::new((0..POOL_BUFFERS).collect::<Vec<usize>>());
            let elapsed = time_handoff(
                iters,
                returner_core,
                || free.lock().expect("free list").pop(),
                |index| free.lock().expect("free list").push(black_box(index)),
            );
            assert_eq!(free.lock().expect("free list").len(), POOL_BUFFERS);
            elapsed
        });
    });
    group.bench_function("handoff_only", |b| {
        b.iter_custom(|iters| {
            time_handoff(
                iters,
                returner_core,
                || Some(black_box(0usize)),
                |index| {
                    black_box(index);
                },
            )
        });
    });
    group.finish();
}

/// Runs `pair` `iters` times on this thread and on a second thread pinned to `other_core`, at
/// the same time; returns the time until both are done.
fn time_symmetric(iters: u64, other_core: Option<CoreId>, pair: impl Fn() + Sync) -> Duration {
    let ready = &Barrier::new(2);
    let pair = &pair;
    thread::scope(|s| {
        let other = s.spawn(move || {
            if let Some(core) = other_core {
                core_affinity::set_for_current(core);
            }
            ready.wait();
            for _ in 0..iters {
                pair();
            }
        });
        ready.wait();
        let start = Instant::now();
        for _ in 0..iters {
            pair();
        }
        other.join().expect("other thread");
        start.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let cores = two_cores();
    if let Some((mine, _)) = cores {
        core_affinity::set_for_current(mine);
    }
    let other_core = cores.map(|(_, other)| other);

    let mut group = c.benchmark_group("pool_contended");
    group.throughput(Throughput::Elements(2));
    group.bench_function("weir_lock_free", |b| {
        b.iter_custom(|iters| {
            let pool = weir_pool();
            let elapsed = time_symmetric(iters, other_core, || {
                loop {
                    if let Some(buffer) = pool.try_take(0) {
                        drop(black_box(buffer));
                        break;
                    }
                    spin_loop();
                }
            });
            assert_eq!(pool.in_use(), 0, "every buffer came back");
            elapsed
        });
    });
    group.bench_function("mutex_vec", |b| {
        b.iter_custom(|iters| {
            let free = Mutex::new((0..POOL_BUFFERS).collect::<Vec<usize>>());
            let elapsed = time_symmetric(iters, other_core, || {
                loop {
                    let taken = free.lock().expect("free list").pop();
                    if let Some(index) = taken {
                        free.lock().expect("free list").push(black_box(index));
                        break;
                    }
                    spin_loop();
                }
            });
            assert_eq!(free.lock().expect("free list").len(), POOL_BUFFERS);
            elapsed
        });
    });
    group.finish();
}

criterion_group!(benches, pool, contended);
criterion_main!(benches);
