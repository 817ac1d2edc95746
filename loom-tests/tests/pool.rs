//! Loom models of the buffer pool (`weir_core::net::pool`).
//!
//! - `take_and_return_across_threads`: buffers taken on one thread and dropped on another
//!   all come back; `in_use()` ends at 0.
//! - `the_last_buffer_goes_to_exactly_one_taker`: two threads race `try_take` for the one free
//!   buffer; exactly one wins, and once it drops the buffer the pool has it free again.
//! - `bytes_cross_threads_through_a_channel`: a buffer's bytes written on one thread are read
//!   on another after the hand-off through a weir channel; loom's `UnsafeCell` tracking checks
//!   that the write happens before the read, and the reuse after the reader's drop.
#![cfg(weir_loom)]

use loom::sync::Arc;
use loom::thread;
use weir_core::net::{Envelope, LocalBufferPool, NetworkBufferPool, TaskNotifier, channel};

/// A local pool of `buffers` 8-byte buffers for one channel, owned by `owner`.
fn pool(buffers: usize, owner: &Arc<TaskNotifier>) -> LocalBufferPool {
    let mut global = NetworkBufferPool::new(8, buffers).expect("pool");
    global
        .local_pool(1, buffers, 0, Arc::clone(owner))
        .expect("local pool")
}

#[test]
fn take_and_return_across_threads() {
    loom::model(|| {
        let pool = pool(2, &Arc::new(TaskNotifier::new()));
        let first = pool.try_take(0).expect("a free buffer");
        let dropper = thread::spawn(move || drop(first));
        let second = pool.try_take(0).expect("the other buffer is free");
        drop(second);
        dropper.join().expect("dropper");
        assert_eq!(pool.in_use(), 0);
        assert!(
            pool.try_take(0).is_some(),
            "a returned buffer is taken again"
        );
    });
}

#[test]
fn the_last_buffer_goes_to_exactly_one_taker() {
    loom::model(|| {
        let pool = pool(1, &Arc::new(TaskNotifier::new()));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || pool.try_take(0))
            })
            .collect();
        let won: Vec<_> = racers
            .into_iter()
            .filter_map(|racer| racer.join().expect("racer"))
            .collect();
        assert_eq!(won.len(), 1, "exactly one taker wins the last buffer");
        assert_eq!(pool.in_use(), 1);
        drop(won);
        assert_eq!(pool.in_use(), 0);
        assert!(
            pool.try_take(0).is_some(),
            "the dropped buffer is free again"
        );
    });
}

#[test]
fn bytes_cross_threads_through_a_channel() {
    loom::model(|| {
        let writer_task = Arc::new(TaskNotifier::new());
        let reader_task = Arc::new(TaskNotifier::new());
        let pool = pool(1, &writer_task);
        let (mut tx, mut rx) = channel(1, Arc::clone(&writer_task), Arc::clone(&reader_task));
        let reader = thread::spawn(move || {
            reader_task.register_current();
            while !reader_task.wait(|| rx.has_queued(), std::time::Duration::MAX) {}
            match rx.try_recv() {
                Some(Envelope::Buffer(buffer)) => buffer.read(|bytes| assert_eq!(bytes, b"weir")),
                other => panic!("expected a buffer, got {other:?}"),
            }
        });
        let mut buffer = pool.try_take(0).expect("a free buffer");
        buffer.append(4, |bytes| bytes.copy_from_slice(b"weir"));
        tx.try_send(Envelope::Buffer(buffer))
            .expect("an empty ring has room");
        reader.join().expect("reader");
        // The reader dropped the buffer: it is free, and writing it again is ordered after the
        // reader's read.
        let mut again = pool.try_take(0).expect("the buffer came back");
        again.append(1, |bytes| bytes[0] = 1);
        assert_eq!(pool.in_use(), 1);
    });
}
