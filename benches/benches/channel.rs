//! Records per second through a bounded single-producer single-consumer queue, producer and
//! consumer pinned to two different cores: `rtrb` (the ring under weir's channels) against
//! crossbeam-channel's `bounded` and std's `sync_channel`, all with capacity [`CAPACITY`] and
//! `u64` records.
//!
//! `rtrb` never blocks, so both of its sides spin on a full or empty ring; the two channels are
//! used as they are meant to be, with their blocking `send` and `recv`. One iteration is one
//! record sent and received; each sample spawns a fresh consumer, and the time runs from both
//! threads being ready to the last record received.

use std::hint::{black_box, spin_loop};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Slots of every queue.
const CAPACITY: usize = 1024;

/// The first two cores, read once before any thread is pinned; `None` on a single core.
fn two_cores() -> Option<(CoreId, CoreId)> {
    match core_affinity::get_core_ids()?.as_slice() {
        [a, b, ..] => Some((*a, *b)),
        _ => None,
    }
}

/// Sends `0..iters` through `tx` on this thread and receives them on a thread pinned to
/// `consumer_core`; returns the time from both being ready to the last record received.
fn time_transfer<Tx, Rx: Send>(
    iters: u64,
    consumer_core: Option<CoreId>,
    (mut tx, mut rx): (Tx, Rx),
    mut send: impl FnMut(&mut Tx, u64),
    recv: impl Fn(&mut Rx) -> u64 + Send,
) -> Duration {
    let ready = &Barrier::new(2);
    thread::scope(|s| {
        let consumer = s.spawn(move || {
            if let Some(core) = consumer_core {
                core_affinity::set_for_current(core);
            }
            ready.wait();
            (0..iters).fold(0u64, |sum, _| sum.wrapping_add(recv(&mut rx)))
        });
        ready.wait();
        let start = Instant::now();
        for record in 0..iters {
            send(&mut tx, record);
        }
        black_box(consumer.join().expect("consumer"));
        start.elapsed()
    })
}

fn channel(c: &mut Criterion) {
    let cores = two_cores();
    if let Some((producer, _)) = cores {
        core_affinity::set_for_current(producer);
    }
    let consumer_core = cores.map(|(_, consumer)| consumer);

    let mut group = c.benchmark_group("channel");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rtrb", |b| {
        b.iter_custom(|iters| {
            time_transfer(
                iters,
                consumer_core,
                rtrb::RingBuffer::<u64>::new(CAPACITY),
                |tx, mut record| {
                    while let Err(rtrb::PushError::Full(back)) = tx.push(record) {
                        record = back;
                        spin_loop();
                    }
                },
                |rx| loop {
                    match rx.pop() {
                        Ok(record) => break record,
                        Err(rtrb::PopError::Empty) => spin_loop(),
                    }
                },
            )
        });
    });
    group.bench_function("crossbeam_bounded", |b| {
        b.iter_custom(|iters| {
            time_transfer(
                iters,
                consumer_core,
                crossbeam_channel::bounded::<u64>(CAPACITY),
                |tx, record| tx.send(record).expect("consumer alive"),
                |rx| rx.recv().expect("producer alive"),
            )
        });
    });
    group.bench_function("std_sync_channel", |b| {
        b.iter_custom(|iters| {
            time_transfer(
                iters,
                consumer_core,
                std::sync::mpsc::sync_channel::<u64>(CAPACITY),
                |tx, record| tx.send(record).expect("consumer alive"),
                |rx| rx.recv().expect("producer alive"),
            )
        });
    });
    group.finish();
}

criterion_group!(benches, channel);
criterion_main!(benches);
