//! Loom models of backpressure hand-offs: a waiting writer is never left parked.
//!
//! Under loom, `TaskNotifier::wait` parks without a timeout, so a lost wake-up is a deadlock and
//! loom fails the model. Threads that own a notifier are spawned and joined by a main thread
//! that owns none (see the crate docs for why).
//!
//! - `a_returned_buffer_wakes_the_writer`: the writer's pool is empty; it waits in
//!   `LocalBufferPool::take_waiting` (announcing the wait in the pool's free word) while the
//!   reader drops the one it holds (`Buffer::drop` returns it and, seeing the flag, unparks the
//!   pool's owner).
//! - `a_popped_slot_wakes_the_writer`: the writer's ring (capacity 1) is full; it waits for
//!   room while the reader pops (`ChannelReceiver::try_recv` notifies the sender's task), and
//!   the reader in turn waits for the writer's second envelope.
//! - `a_pop_wakes_the_writer_only_from_a_full_ring`: the same with a ring of two and three
//!   envelopes. The reader notifies the writer's task only when its pop leaves the ring one
//!   short of full (`TaskNotifier::notify_if`), so some pops wake no one; the writer, waiting
//!   for room for its third envelope, must still be woken.
#![cfg(weir_loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use weir_core::net::{Envelope, Event, NetworkBufferPool, TaskNotifier, channel};

/// The production park timeout; under loom the park ignores it.
const PARK: Duration = Duration::from_millis(5);

#[test]
fn a_returned_buffer_wakes_the_writer() {
    loom::model(|| {
        let writer_task = Arc::new(TaskNotifier::new());
        let mut global = NetworkBufferPool::new(8, 1).expect("pool");
        let pool = global
            .local_pool(1, 1, 0, Arc::clone(&writer_task))
            .expect("local pool");
        let held = pool.try_take(0).expect("the only buffer");
        let writer = {
            let pool = pool.clone();
            thread::spawn(move || {
                writer_task.register_current();
                pool.take_waiting(0, PARK, || false)
            })
        };
        // The reader, on a thread of its own, returns the buffer; this thread only joins.
        let reader = thread::spawn(move || drop(held));
        reader.join().expect("reader");
        let taken = writer.join().expect("writer");
        assert!(taken.is_some());
        assert_eq!(pool.in_use(), 1, "the writer holds the returned buffer");
        drop(taken);
        assert_eq!(pool.in_use(), 0);
    });
}

/// The writer sends `envelopes` through a ring of `capacity`, waiting for room whenever it is
/// full; the reader receives them all, waiting for each. A lost wake-up deadlocks the model.
fn every_envelope_arrives(capacity: usize, envelopes: u64) {
    loom::model(move || {
        let writer_task = Arc::new(TaskNotifier::new());
        let reader_task = Arc::new(TaskNotifier::new());
        let (mut tx, mut rx) =
            channel(capacity, Arc::clone(&writer_task), Arc::clone(&reader_task));
        let reader = thread::spawn(move || {
            reader_task.register_current();
            let mut received = 0;
            while received < envelopes {
                reader_task.wait(|| rx.has_queued(), PARK);
                if let Some(envelope) = rx.try_recv() {
                    assert!(matches!(envelope, Envelope::Event(Event::EndOfPartition)));
                    received += 1;
                }
            }
            rx.next_seq()
        });
        let writer = thread::spawn(move || {
            writer_task.register_current();
            for _ in 0..envelopes {
                let mut pending = Envelope::Event(Event::EndOfPartition);
                loop {
                    writer_task.wait(|| tx.has_room(), PARK);
                    match tx.try_send(pending) {
                        Ok(()) => break,
                        Err(back) => pending = back,
                    }
                }
            }
        });
        writer.join().expect("writer");
        assert_eq!(
            reader.join().expect("reader"),
            envelopes,
            "every envelope arrived"
        );
    });
}

#[test]
fn a_popped_slot_wakes_the_writer() {
    every_envelope_arrives(1, 2);
}

#[test]
fn a_pop_wakes_the_writer_only_from_a_full_ring() {
    every_envelope_arrives(2, 3);
}
