//! Loom models of shutdown: end of partition ends the downstream after all data, and every
//! buffer is back in the pool.
//!
//! - `raw_channel_ends_after_its_data`: the upstream sends two buffers from a one-buffer pool
//!   (so it waits for the downstream to return the first), then `EndOfPartition`, and drops
//!   its sender; the downstream waits on its notifier until `has_queued()`, receives everything
//!   in order and stops at end of partition.
//! - `record_writer_finishes_after_its_records`: the same through the real `RecordWriter`
//!   (`emit` twice into 8-byte buffers, then `finish`), decoded with `decode_elements`.
#![cfg(weir_loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use weir_core::codec::DecodeError;
use weir_core::net::element::{StreamElement, decode_elements};
use weir_core::net::{
    ChannelReceiver, Envelope, Event, LocalBufferPool, NetworkBufferPool, Partitioner,
    RecordWriter, TaskNotifier, channel,
};
use weir_core::runtime::{JobControl, TaskEnv};

/// The production park timeout; under loom the park ignores it.
const PARK: Duration = Duration::from_millis(5);

/// A one-buffer pool of 8-byte buffers owned by `owner`.
fn one_buffer_pool(owner: &Arc<TaskNotifier>) -> LocalBufferPool {
    let mut global = NetworkBufferPool::new(8, 1).expect("pool");
    global
        .local_pool(1, 1, 0, Arc::clone(owner))
        .expect("local pool")
}

/// Runs the downstream task: receives until end of partition, handing each buffer's bytes to
/// `each_buffer` (then dropping the buffer, which returns it). Returns the envelopes received.
fn downstream(
    task: &TaskNotifier,
    rx: &mut ChannelReceiver,
    mut each_buffer: impl FnMut(&[u8]),
) -> u64 {
    task.register_current();
    loop {
        task.wait(|| rx.has_queued(), PARK);
        match rx.try_recv() {
            Some(Envelope::Buffer(buffer)) => buffer.read(&mut each_buffer),
            Some(Envelope::Event(Event::EndOfPartition)) => return rx.next_seq(),
            Some(Envelope::Event(other)) => panic!("unexpected event {other:?}"),
            None => {}
        }
    }
}

#[test]
fn raw_channel_ends_after_its_data() {
    loom::model(|| {
        let up_task = Arc::new(TaskNotifier::new());
        let down_task = Arc::new(TaskNotifier::new());
        let pool = one_buffer_pool(&up_task);
        let (mut tx, mut rx) = channel(2, Arc::clone(&up_task), Arc::clone(&down_task));
        let upstream = {
            let pool = pool.clone();
            thread::spawn(move || {
                up_task.register_current();
                for byte in [1u8, 2] {
                    let mut buffer = pool
                        .take_waiting(0, PARK, || false)
                        .expect("never gives up");
                    buffer.append(1, |bytes| bytes[0] = byte);
                    tx.try_send(Envelope::Buffer(buffer))
                        .expect("one buffer in flight leaves room");
                }
                tx.try_send(Envelope::Event(Event::EndOfPartition))
                    .expect("one buffer in flight leaves room");
            })
        };

        let downstream = thread::spawn(move || {
            let mut seen = Vec::new();
            let received = downstream(&down_task, &mut rx, |bytes| seen.extend_from_slice(bytes));
            (seen, received, rx)
        });
        upstream.join().expect("upstream");
        let (seen, received, rx) = downstream.join().expect("downstream");
        assert_eq!(seen, [1, 2], "data in order, all before end of partition");
        assert_eq!(received, 3);
        assert!(rx.is_abandoned(), "the upstream dropped its sender");
        assert_eq!(pool.in_use(), 0);
    });
}

#[test]
fn record_writer_finishes_after_its_records() {
    loom::model(|| {
        let up_task = Arc::new(TaskNotifier::new());
        let down_task = Arc::new(TaskNotifier::new());
        let pool = one_buffer_pool(&up_task);
        let (tx, mut rx) = channel(2, Arc::clone(&up_task), Arc::clone(&down_task));
        let upstream = {
            let pool = pool.clone();
            thread::spawn(move || {
                up_task.register_current();
                let env = TaskEnv::new(
                    "upstream".to_owned(),
                    0,
                    up_task,
                    std::sync::Arc::new(JobControl::new()),
                    Some(pool.clone()),
                );
                // A 5-byte record (tag and u32) per 8-byte buffer: the second record waits
                // for the downstream to return the first buffer.
                let mut writer = RecordWriter::<u32>::new(
                    vec![tx],
                    pool,
                    0,
                    Partitioner::Rebalance { next: 0 },
                    env,
                    Duration::from_millis(100),
                );
                writer.emit(&7).expect("emit");
                writer.emit(&8).expect("emit");
                writer.finish().expect("finish");
            })
        };

        let downstream = thread::spawn(move || {
            let mut records = Vec::new();
            let received = downstream(&down_task, &mut rx, |bytes| {
                decode_elements::<u32, DecodeError>(bytes, |element| {
                    match element {
                        StreamElement::Record(r) => records.push(r),
                        other => panic!("unexpected element {other:?}"),
                    }
                    Ok(())
                })
                .expect("decodes");
            });
            (records, received)
        });
        upstream.join().expect("upstream");
        let (records, received) = downstream.join().expect("downstream");
        assert_eq!(records, [7, 8]);
        assert_eq!(received, 3, "two buffers and end of partition");
        assert_eq!(pool.in_use(), 0);
    });
}
