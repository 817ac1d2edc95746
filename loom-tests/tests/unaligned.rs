//! Loom models of unaligned checkpoints: the real `InputGate`, `BarrierHandler` and
//! `TimeoutableBarrier` over real channels.
//!
//! - `a_priority_barrier_overtakes_queued_buffers`: an upstream sends two buffers, an
//!   unaligned barrier by priority, a third buffer and end of partition (two-slot ring, so it
//!   may wait for room) while the downstream processes. In every interleaving the downstream
//!   snapshots once; each of the two buffers sent before the barrier is either processed
//!   before the snapshot or persisted as channel state, never both, never neither; the third
//!   is processed after the snapshot and never persisted; every buffer is processed once, in
//!   order, and both pools end empty.
//! - `an_alignment_timeout_switches_to_unaligned`: aligned with a timeout, over two channels
//!   of one upstream, which sends `b` on channel 1, the barrier in band on both, `a` on
//!   channel 0, then (if the timer has fired) the priority copies of its barriers still
//!   queued. A timer thread fires the timeout at any moment; the downstream checks it between
//!   polls. In every interleaving: one snapshot (aligned, or unaligned by the timer or by a
//!   copy); `b` (before the barrier) is processed before the snapshot or persisted, exactly
//!   one of the two; `a` (after it) is processed after the snapshot and never persisted.
#![cfg(weir_loom)]

use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use weir_core::checkpoint::{BarrierHandler, BarrierMode};
use weir_core::net::{
    ChannelSender, CheckpointBarrier, Envelope, Event, InputGate, LocalBufferPool,
    NetworkBufferPool, Position, TaskNotifier, TimeoutableBarrier, channel,
};

/// The production park timeout; under loom the park ignores it.
const PARK: Duration = Duration::from_millis(5);

const BARRIER: CheckpointBarrier = CheckpointBarrier {
    checkpoint_id: 1,
    triggered_at_ms: 0,
    unaligned: false,
    final_checkpoint: false,
};

/// A pool of `n` one-byte buffers owned by `owner`, for `channels` channels.
fn pool(owner: &Arc<TaskNotifier>, channels: usize, n: usize) -> LocalBufferPool {
    let mut global = NetworkBufferPool::new(1, n).expect("pool");
    global
        .local_pool(channels, n / channels, 0, Arc::clone(owner))
        .expect("local pool")
}

/// Sends `envelope` on `tx`, waiting for room (a wake-up may come from another channel).
fn send(task: &TaskNotifier, tx: &mut ChannelSender, mut envelope: Envelope) {
    loop {
        task.wait(|| tx.has_room(), PARK);
        match tx.try_send(envelope) {
            Ok(()) => return,
            Err(back) => envelope = back,
        }
    }
}

fn buffer(pool: &LocalBufferPool, channel: usize, byte: u8) -> Envelope {
    let mut buffer = pool
        .take_waiting(channel, PARK, || false)
        .expect("never gives up");
    buffer.append(1, |bytes| bytes[0] = byte);
    Envelope::Buffer(buffer)
}

/// What the downstream did, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Processed a buffer.
    Processed(u8),
    /// Persisted a buffer as channel state.
    Persisted(u8),
    /// Snapshotted (unaligned or not).
    Snapshot(bool),
}

/// The downstream task: polls `gate` until every channel ended, feeding `handler`; checks
/// the alignment timer (`timed_out`) between polls.
fn downstream(
    task: &TaskNotifier,
    mut gate: InputGate,
    mut handler: BarrierHandler,
    timed_out: Option<&AtomicBool>,
) -> Vec<Step> {
    task.register_current();
    let now = || match timed_out {
        Some(flag) if flag.load(Ordering::Acquire) => u64::MAX,
        _ => 0,
    };
    let mut steps = Vec::new();
    while !gate.is_finished() {
        let mut snapshot = handler.on_timer(now(), &mut gate);
        if snapshot.is_none() {
            task.wait(|| gate.has_queued(), PARK);
            let Some((ch, envelope, position)) = gate.poll() else {
                continue;
            };
            snapshot = match envelope {
                Envelope::Buffer(buffer) => {
                    let Position::InOrder(seq) = position else {
                        panic!("buffers come in order");
                    };
                    let byte = buffer.read(|b| b[0]);
                    steps.push(Step::Processed(byte));
                    if handler.is_channel_state(ch, seq) {
                        steps.push(Step::Persisted(byte));
                    }
                    None
                }
                Envelope::Event(Event::Barrier(b)) => {
                    handler.on_barrier(ch, b, &position, now(), &mut gate)
                }
                Envelope::Event(Event::EndOfPartition) => {
                    gate.finish(ch);
                    handler.on_channel_finished(ch, &mut gate)
                }
            };
        }
        if let Some(s) = snapshot {
            steps.push(Step::Snapshot(s.barrier.unaligned));
        }
        handler.drain_overtaken(&mut gate, |_, _, buffer| {
            steps.push(Step::Persisted(buffer.read(|b| b[0])));
        });
        let _ = handler.take_complete_channel_state();
    }
    steps
}

/// Where `step` is in `steps`, asserting it occurs at most once.
fn position(steps: &[Step], step: Step) -> Option<usize> {
    let found: Vec<usize> = (0..steps.len()).filter(|&i| steps[i] == step).collect();
    assert!(found.len() <= 1, "{step:?} more than once in {steps:?}");
    found.first().copied()
}

/// `byte`, sent before the barrier, is in the snapshot (processed before it) or in the
/// channel state, exactly one of the two; `after`, sent after it, in neither.
fn assert_cut(steps: &[Step], before: &[u8], after: &[u8]) {
    let snapshots: Vec<usize> = (0..steps.len())
        .filter(|&i| matches!(steps[i], Step::Snapshot(_)))
        .collect();
    assert_eq!(snapshots.len(), 1, "one snapshot: {steps:?}");
    let snapshot = snapshots[0];
    for &byte in before {
        let processed = position(steps, Step::Processed(byte)).expect("processed");
        let persisted = position(steps, Step::Persisted(byte)).is_some();
        assert!(
            (processed < snapshot) != persisted,
            "buffer {byte} is in the snapshot or the channel state, once: {steps:?}"
        );
    }
    for &byte in after {
        let processed = position(steps, Step::Processed(byte)).expect("processed");
        assert!(processed > snapshot, "{byte} after the cut: {steps:?}");
        assert_eq!(position(steps, Step::Persisted(byte)), None, "{steps:?}");
    }
}

#[test]
fn a_priority_barrier_overtakes_queued_buffers() {
    loom::model(|| {
        let down_task = Arc::new(TaskNotifier::new());
        let up_task = Arc::new(TaskNotifier::new());
        let up_pool = pool(&up_task, 1, 3);
        let (mut tx, rx) = channel(2, Arc::clone(&up_task), Arc::clone(&down_task));
        let up = {
            let pool = up_pool.clone();
            thread::spawn(move || {
                up_task.register_current();
                for byte in [1, 2] {
                    send(&up_task, &mut tx, buffer(&pool, 0, byte));
                }
                let mut barrier = BARRIER;
                barrier.unaligned = true;
                tx.try_send_priority(Event::Barrier(barrier))
                    .expect("an empty priority ring");
                send(&up_task, &mut tx, buffer(&pool, 0, 3));
                send(&up_task, &mut tx, Envelope::Event(Event::EndOfPartition));
            })
        };
        let down = thread::spawn(move || {
            let gate = InputGate::new(vec![rx]);
            downstream(
                &down_task,
                gate,
                BarrierHandler::new(BarrierMode::Unaligned, 1),
                None,
            )
        });
        up.join().expect("upstream");
        let steps = down.join().expect("downstream");
        assert_cut(&steps, &[1, 2], &[3]);
        let processed: Vec<Step> = steps
            .iter()
            .copied()
            .filter(|s| matches!(s, Step::Processed(_)))
            .collect();
        assert_eq!(
            processed,
            [1, 2, 3].map(Step::Processed),
            "in order, once each"
        );
        assert_eq!(up_pool.in_use(), 0);
    });
}

#[test]
fn an_alignment_timeout_switches_to_unaligned() {
    loom::model(|| {
        let down_task = Arc::new(TaskNotifier::new());
        let up_task = Arc::new(TaskNotifier::new());
        let up_pool = pool(&up_task, 2, 2);
        let (tx0, rx0) = channel(2, Arc::clone(&up_task), Arc::clone(&down_task));
        let (tx1, rx1) = channel(2, Arc::clone(&up_task), Arc::clone(&down_task));
        let timed_out = Arc::new(AtomicBool::new(false));
        let up = {
            let (pool, timed_out) = (up_pool.clone(), Arc::clone(&timed_out));
            thread::spawn(move || {
                up_task.register_current();
                let mut senders = vec![tx0, tx1];
                send(&up_task, &mut senders[1], buffer(&pool, 1, 0xB));
                let mut timeoutable = TimeoutableBarrier::before_send(BARRIER, 1, &senders);
                for tx in &mut senders {
                    send(&up_task, tx, Envelope::Event(Event::Barrier(BARRIER)));
                }
                send(&up_task, &mut senders[0], buffer(&pool, 0, 0xA));
                let now = if timed_out.load(Ordering::Acquire) {
                    u64::MAX
                } else {
                    0
                };
                timeoutable.overtake_if_due(now, &mut senders);
                for tx in &mut senders {
                    send(&up_task, tx, Envelope::Event(Event::EndOfPartition));
                }
            })
        };
        let timer = {
            let timed_out = Arc::clone(&timed_out);
            thread::spawn(move || timed_out.store(true, Ordering::Release))
        };
        let down = {
            let timed_out = Arc::clone(&timed_out);
            thread::spawn(move || {
                let mode = BarrierMode::AlignedWithTimeout {
                    timeout: Duration::from_millis(1),
                };
                let gate = InputGate::new(vec![rx0, rx1]);
                downstream(
                    &down_task,
                    gate,
                    BarrierHandler::new(mode, 2),
                    Some(&timed_out),
                )
            })
        };
        up.join().expect("upstream");
        timer.join().expect("timer");
        let steps = down.join().expect("downstream");
        assert_cut(&steps, &[0xB], &[0xA]);
        assert_eq!(up_pool.in_use(), 0);
    });
}
