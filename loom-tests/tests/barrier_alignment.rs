//! Loom model of aligned barrier handling: the real `InputGate` and `BarrierHandler` over two
//! real channels.
//!
//! - `aligned_barrier_blocks_the_early_channel`: upstream A sends barrier 1, then a buffer,
//!   then `EndOfPartition`; upstream B sends a buffer, then barrier 1, then `EndOfPartition`
//!   (two-slot rings, so A's third send may wait for room). The downstream waits on its
//!   notifier until `gate.has_queued()`, polls, and feeds barriers and ends of partition to an
//!   aligned `BarrierHandler`. In every interleaving: `Aligned` is reported exactly once, B's
//!   pre-barrier buffer is processed before it and A's post-barrier buffer after it, every
//!   buffer is processed, both pools end empty, and the downstream never waits forever on a
//!   blocked channel.
#![cfg(weir_loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use weir_core::checkpoint::{BarrierHandler, BarrierMode};
use weir_core::net::{
    ChannelSender, CheckpointBarrier, Envelope, Event, InputGate, LocalBufferPool,
    NetworkBufferPool, TaskNotifier, channel,
};

/// The production park timeout; under loom the park ignores it.
const PARK: Duration = Duration::from_millis(5);

const BARRIER: CheckpointBarrier = CheckpointBarrier {
    checkpoint_id: 1,
    triggered_at_ms: 0,
    unaligned: false,
    final_checkpoint: false,
};

/// A one-buffer pool of 8-byte buffers owned by `owner`.
fn one_buffer_pool(owner: &Arc<TaskNotifier>) -> LocalBufferPool {
    let mut global = NetworkBufferPool::new(8, 1).expect("pool");
    global
        .local_pool(1, 1, 0, Arc::clone(owner))
        .expect("local pool")
}

/// What an upstream sends, in order.
#[derive(Clone, Copy)]
enum Item {
    Buffer(u8),
    Barrier,
}

/// What the downstream processed, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Buffer(usize, u8),
    Aligned(u64),
    Finished(usize),
}

/// Runs one upstream task: sends `sends`, then end of partition, waiting for room when the
/// ring is full.
fn upstream(task: &TaskNotifier, tx: &mut ChannelSender, pool: &LocalBufferPool, sends: [Item; 2]) {
    task.register_current();
    let envelopes = sends
        .into_iter()
        .map(|item| match item {
            Item::Buffer(byte) => {
                let mut buffer = pool
                    .take_waiting(0, PARK, || false)
                    .expect("never gives up");
                buffer.append(1, |bytes| bytes[0] = byte);
                Envelope::Buffer(buffer)
            }
            Item::Barrier => Envelope::Event(Event::Barrier(BARRIER)),
        })
        .chain([Envelope::Event(Event::EndOfPartition)]);
    for envelope in envelopes {
        task.wait(|| tx.has_room(), PARK);
        if tx.try_send(envelope).is_err() {
            panic!("room was checked and only this thread sends");
        }
    }
}

#[test]
fn aligned_barrier_blocks_the_early_channel() {
    loom::model(|| {
        let down_task = Arc::new(TaskNotifier::new());
        let a_task = Arc::new(TaskNotifier::new());
        let b_task = Arc::new(TaskNotifier::new());
        let a_pool = one_buffer_pool(&a_task);
        let b_pool = one_buffer_pool(&b_task);
        let (mut a_tx, a_rx) = channel(2, Arc::clone(&a_task), Arc::clone(&down_task));
        let (mut b_tx, b_rx) = channel(2, Arc::clone(&b_task), Arc::clone(&down_task));

        let a = {
            let pool = a_pool.clone();
            thread::spawn(move || {
                upstream(
                    &a_task,
                    &mut a_tx,
                    &pool,
                    [Item::Barrier, Item::Buffer(0xA)],
                );
            })
        };
        let b = {
            let pool = b_pool.clone();
            thread::spawn(move || {
                upstream(
                    &b_task,
                    &mut b_tx,
                    &pool,
                    [Item::Buffer(0xB), Item::Barrier],
                );
            })
        };
        let downstream = thread::spawn(move || {
            down_task.register_current();
            let mut gate = InputGate::new(vec![a_rx, b_rx]);
            let mut handler = BarrierHandler::new(BarrierMode::Aligned, 2);
            let mut steps = Vec::new();
            while !gate.is_finished() {
                down_task.wait(|| gate.has_queued(), PARK);
                let Some((ch, envelope, position)) = gate.poll() else {
                    continue;
                };
                let aligned = match envelope {
                    Envelope::Buffer(buffer) => {
                        buffer.read(|bytes| steps.push(Step::Buffer(ch, bytes[0])));
                        None
                    }
                    Envelope::Event(Event::Barrier(barrier)) => {
                        handler.on_barrier(ch, barrier, &position, 0, &mut gate)
                    }
                    Envelope::Event(Event::EndOfPartition) => {
                        gate.finish(ch);
                        steps.push(Step::Finished(ch));
                        handler.on_channel_finished(ch, &mut gate)
                    }
                };
                if let Some(aligned) = aligned {
                    steps.push(Step::Aligned(aligned.barrier.checkpoint_id));
                }
            }
            steps
        });

        a.join().expect("upstream A");
        b.join().expect("upstream B");
        let steps = downstream.join().expect("downstream");

        let position = |step: Step| {
            let found: Vec<usize> = (0..steps.len()).filter(|&i| steps[i] == step).collect();
            assert_eq!(found.len(), 1, "{step:?} exactly once in {steps:?}");
            found[0]
        };
        let aligned = position(Step::Aligned(1));
        assert!(
            position(Step::Buffer(1, 0xB)) < aligned,
            "B's pre-barrier buffer is in the snapshot: {steps:?}"
        );
        assert!(
            position(Step::Buffer(0, 0xA)) > aligned,
            "A's post-barrier buffer is not: {steps:?}"
        );
        position(Step::Finished(0));
        position(Step::Finished(1));
        assert_eq!(steps.len(), 5, "{steps:?}");
        assert_eq!(a_pool.in_use(), 0);
        assert_eq!(b_pool.in_use(), 0);
    });
}
