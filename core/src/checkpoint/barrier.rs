//! Barrier handling at a task's input (Flink's `CheckpointBarrierHandler`): one type, with
//! the barrier mode as a private flavour.
//!
//! - **Aligned** (exactly once, Flink's `SingleCheckpointBarrierHandler`): a channel that
//!   delivered barrier `n` is blocked in the gate, so nothing it sends after the barrier is
//!   processed before the snapshot; when every open channel has delivered `n`, the task
//!   snapshots, forwards the barrier and every channel is unblocked.
//! - **Unaligned** (exactly once, Flink's unaligned `SingleCheckpointBarrierHandler`): the
//!   first barrier of `n` (taken first, by priority) triggers the snapshot at once, and the
//!   task forwards the barrier by priority. Nothing is blocked. From then on, per channel,
//!   every buffer numbered from the first not yet received at the snapshot up to the barrier
//!   of that channel is *channel state*, persisted and processed as usual. A priority barrier
//!   names where it stood in its channel (the envelopes it overtook), so the end is exact:
//!   once a channel's end is known, the buffers of its channel state still queued are
//!   persisted at once, without waiting to process them
//!   ([`BarrierHandler::drain_overtaken`]); before that, each buffer is persisted as it is
//!   received ([`BarrierHandler::is_channel_state`]). The checkpoint is complete here when
//!   every channel has delivered its barrier (or ended) and its channel state was handed on
//!   ([`BarrierHandler::take_complete_channel_state`]), which takes as long as the barriers
//!   take to arrive, not as long as the queues take to drain.
//! - **Aligned with a timeout** (Flink's unaligned checkpoints with a positive
//!   `aligned-checkpoint-timeout`): aligned, until the start delay of `n` (from its trigger)
//!   passes the timeout ([`BarrierHandler::on_timer`]) or a priority barrier of `n` arrives
//!   (an upstream switched already); then this subtask switches `n` to unaligned: it
//!   snapshots at once, unblocks every channel, and persists what the channels that have not
//!   delivered `n` yet send before their barrier. Channels that delivered `n` in band have
//!   nothing to persist: what follows their barrier is after the cut.
//! - **At least once** (Flink's `CheckpointBarrierTracker`): nothing is blocked; the snapshot
//!   is taken when the last barrier of `n` arrives, so it may include records sent after the
//!   barrier on the faster channels, which a restore then replays a second time.
//!
//! The final checkpoint (every source finished) aligns in every exactly-once flavour: the job
//! ends after it, so nothing may be in flight past its cut.
//!
//! In every flavour, a channel that ends (end of partition) counts as having delivered every
//! barrier still to come. A barrier of a newer checkpoint abandons an older alignment (its
//! checkpoint can no longer complete here), and a barrier of an abandoned, aborted or finished
//! checkpoint is ignored, as is a second barrier of `n` on a channel (the priority copy of a
//! timed-out in-band barrier, or the in-band original after it).
//!
//! Every call is O(channels) at most; the handler never blocks and allocates only when a
//! checkpoint starts.

use std::time::Instant;

use super::CheckpointId;
use super::config::BarrierMode;
use crate::net::{CheckpointBarrier, InputGate, Position};

/// The barrier handler of one task with `channels` input channels.
#[derive(Debug)]
pub struct BarrierHandler {
    mode: BarrierMode,
    flavor: Flavor,
    /// Channels that ended: they count as delivered for every barrier.
    finished: Vec<bool>,
    pending: Option<Pending>,
    /// The newest checkpoint this task has snapshotted, abandoned or seen aborted.
    done_up_to: CheckpointId,
}

/// The private flavours behind [`BarrierHandler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Block early channels; snapshot when all delivered.
    Aligned,
    /// Snapshot at the first barrier; persist channel state. The final checkpoint aligns.
    Unaligned,
    /// Aligned until the mode's deadline or a priority barrier, then unaligned.
    Timeout,
    /// Block nothing; snapshot when all delivered.
    AtLeastOnce,
}

#[derive(Debug)]
struct Pending {
    barrier: CheckpointBarrier,
    delivered: Vec<bool>,
    first_at: Instant,
    /// Once the snapshot was taken unaligned: per channel, the channel state still to come.
    persisting: Option<Vec<Persist>>,
}

/// The channel state of one channel still to persist: buffers numbered `from..until`.
#[derive(Debug, Clone, Copy)]
struct Persist {
    /// The first buffer not yet persisted.
    from: u64,
    /// Unknown until the channel's barrier arrived (or the channel ended).
    until: Option<u64>,
}

impl Persist {
    fn is_done(&self) -> bool {
        self.until.is_some_and(|until| self.from >= until)
    }
}

impl Persist {
    fn contains(&self, seq: u64) -> bool {
        seq >= self.from && self.until.is_none_or(|until| seq < until)
    }
}

/// Snapshot now, then forward the barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeSnapshot {
    /// The barrier to forward; `unaligned` says whether it overtakes (forwarded by priority)
    /// and whether channel state follows.
    pub barrier: CheckpointBarrier,
    /// From the first barrier of this checkpoint at this task to the snapshot (Flink's
    /// `checkpointAlignmentTime`), ns.
    pub alignment_ns: u64,
}

/// Where the barrier of its channel stood, as the position it was polled at tells: an in-band
/// barrier follows everything before it; a priority one names the envelopes it overtook.
fn barrier_seq(position: &Position) -> u64 {
    match position {
        Position::InOrder(seq) => *seq,
        Position::Priority { overtaken } => overtaken.end,
    }
}

impl BarrierHandler {
    /// A handler for a gate of `channels` channels.
    pub fn new(mode: BarrierMode, channels: usize) -> Self {
        let flavor = match mode {
            BarrierMode::Aligned => Flavor::Aligned,
            BarrierMode::Unaligned => Flavor::Unaligned,
            BarrierMode::AlignedWithTimeout { .. } => Flavor::Timeout,
            BarrierMode::AtLeastOnce => Flavor::AtLeastOnce,
        };
        Self {
            mode,
            flavor,
            finished: vec![false; channels],
            pending: None,
            done_up_to: 0,
        }
    }

    /// The checkpoint being aligned or whose channel state is being received, if any.
    pub fn pending(&self) -> Option<CheckpointId> {
        self.pending.as_ref().map(|p| p.barrier.checkpoint_id)
    }

    /// The checkpoint snapshotted unaligned whose channel state is still being received.
    pub fn persisting(&self) -> Option<CheckpointId> {
        self.pending
            .as_ref()
            .filter(|p| p.persisting.is_some())
            .map(|p| p.barrier.checkpoint_id)
    }

    /// Whether the buffer numbered `seq` that `channel` just delivered is channel state of
    /// the checkpoint being persisted (to be processed and persisted). O(1).
    #[inline]
    pub fn is_channel_state(&self, channel: usize, seq: u64) -> bool {
        self.pending
            .as_ref()
            .and_then(|p| p.persisting.as_ref())
            .is_some_and(|persist| persist[channel].contains(seq))
    }

    /// When the alignment in progress gives way to an unaligned snapshot (ms since the Unix
    /// epoch): `None` when nothing is aligning or the flavour never times out.
    pub fn deadline_ms(&self) -> Option<u64> {
        if self.flavor != Flavor::Timeout {
            return None;
        }
        let pending = self.pending.as_ref().filter(|p| p.persisting.is_none())?;
        self.mode.unaligned_from_ms(&pending.barrier)
    }

    /// Barrier `barrier` arrived on `channel` at `position`; `now_ms` (ms since the Unix
    /// epoch) decides whether an aligned-with-timeout barrier has timed out already.
    pub fn on_barrier(
        &mut self,
        channel: usize,
        barrier: CheckpointBarrier,
        position: &Position,
        now_ms: u64,
        gate: &mut InputGate,
    ) -> Option<TakeSnapshot> {
        let id = barrier.checkpoint_id;
        let priority = matches!(position, Position::Priority { .. });
        if let Some(pending) = self
            .pending
            .as_mut()
            .filter(|p| p.barrier.checkpoint_id == id)
        {
            if std::mem::replace(&mut pending.delivered[channel], true) {
                return None;
            }
            if let Some(persist) = &mut pending.persisting {
                persist[channel].until = Some(barrier_seq(position));
                return None;
            }
            if self.flavor == Flavor::Timeout && priority {
                return Some(self.switch(Some((channel, barrier_seq(position))), gate));
            }
            self.block_if_aligned(channel, gate);
            return self.complete_if_aligned(gate);
        }
        if id <= self.done_up_to {
            return None;
        }
        if self.pending.is_some() {
            // A newer checkpoint started: the older one cannot complete here any more.
            self.abandon(gate);
        }
        let mut delivered = vec![false; self.finished.len()];
        delivered[channel] = true;
        self.pending = Some(Pending {
            barrier,
            delivered,
            first_at: Instant::now(),
            persisting: None,
        });
        let unaligned = match self.flavor {
            Flavor::Unaligned | Flavor::Timeout => {
                priority || self.mode.is_unaligned_at(&barrier, now_ms)
            }
            Flavor::Aligned | Flavor::AtLeastOnce => false,
        };
        if unaligned {
            return Some(self.switch(Some((channel, barrier_seq(position))), gate));
        }
        self.block_if_aligned(channel, gate);
        self.complete_if_aligned(gate)
    }

    /// The time is `now_ms`: an aligned-with-timeout alignment past its deadline switches to
    /// unaligned and snapshots.
    pub fn on_timer(&mut self, now_ms: u64, gate: &mut InputGate) -> Option<TakeSnapshot> {
        if self
            .deadline_ms()
            .is_some_and(|deadline| now_ms >= deadline)
        {
            return Some(self.switch(None, gate));
        }
        None
    }

    /// `channel` ended: it delivers every barrier from now on, and its channel state ends.
    pub fn on_channel_finished(
        &mut self,
        channel: usize,
        gate: &mut InputGate,
    ) -> Option<TakeSnapshot> {
        self.finished[channel] = true;
        if let Some(persist) = self.pending.as_mut().and_then(|p| p.persisting.as_mut()) {
            persist[channel].until.get_or_insert(gate.next_seq(channel));
            return None;
        }
        self.complete_if_aligned(gate)
    }

    /// The coordinator aborted every checkpoint up to `id`: stop aligning or persisting for
    /// them.
    pub fn on_aborted(&mut self, id: CheckpointId, gate: &mut InputGate) {
        if self
            .pending
            .as_ref()
            .is_some_and(|p| p.barrier.checkpoint_id <= id)
        {
            self.abandon(gate);
        }
        self.done_up_to = self.done_up_to.max(id);
    }

    /// Hands every buffer of channel state that is still queued in a channel whose end is
    /// known to `persist(channel, seq, buffer)`, without receiving it (the task processes it
    /// later, as usual, and it is not persisted again). O(queued envelopes of those channels).
    pub fn drain_overtaken(
        &mut self,
        gate: &mut InputGate,
        mut persist: impl FnMut(usize, u64, &crate::net::Buffer),
    ) {
        let Some(channels) = self.pending.as_mut().and_then(|p| p.persisting.as_mut()) else {
            return;
        };
        for (ch, p) in channels.iter_mut().enumerate() {
            let Some(until) = p.until.filter(|&until| p.from < until) else {
                continue;
            };
            let from = p.from;
            gate.for_each_queued(ch, |seq, envelope| {
                if let crate::net::Envelope::Buffer(buffer) = envelope
                    && (from..until).contains(&seq)
                {
                    persist(ch, seq, buffer);
                }
            });
            p.from = until;
        }
    }

    /// The checkpoint whose channel state is now complete (every channel delivered its
    /// barrier or ended, and everything before it was handed on), once. Call
    /// [`Self::drain_overtaken`] first.
    pub fn take_complete_channel_state(&mut self) -> Option<CheckpointId> {
        let pending = self.pending.as_ref()?;
        let persist = pending.persisting.as_ref()?;
        if !persist.iter().all(Persist::is_done) {
            return None;
        }
        self.pending.take().map(|p| p.barrier.checkpoint_id)
    }

    /// Switches the pending checkpoint to unaligned and snapshots: what each channel has not
    /// delivered before its barrier is channel state. `trigger`: the channel whose barrier
    /// decided it, and where that barrier stood.
    fn switch(&mut self, trigger: Option<(usize, u64)>, gate: &mut InputGate) -> TakeSnapshot {
        let pending = self
            .pending
            .as_mut()
            .expect("switching a pending checkpoint");
        let persist = (0..self.finished.len())
            .map(|ch| {
                let from = gate.next_seq(ch);
                let until = match trigger {
                    Some((channel, seq)) if channel == ch => Some(seq.max(from)),
                    // Delivered in band (its barrier received in order) or ended: everything
                    // before the cut was received.
                    _ if pending.delivered[ch] || self.finished[ch] => Some(from),
                    _ => None,
                };
                Persist { from, until }
            })
            .collect();
        pending.persisting = Some(persist);
        let mut barrier = pending.barrier;
        barrier.unaligned = true;
        self.done_up_to = barrier.checkpoint_id;
        gate.unblock_all();
        TakeSnapshot {
            barrier,
            alignment_ns: pending.first_at.elapsed().as_nanos() as u64,
        }
    }

    fn block_if_aligned(&self, channel: usize, gate: &mut InputGate) {
        if self.flavor != Flavor::AtLeastOnce {
            gate.block(channel);
        }
    }

    fn abandon(&mut self, gate: &mut InputGate) {
        if let Some(p) = self.pending.take() {
            self.done_up_to = self.done_up_to.max(p.barrier.checkpoint_id);
        }
        gate.unblock_all();
    }

    fn complete_if_aligned(&mut self, gate: &mut InputGate) -> Option<TakeSnapshot> {
        let pending = self.pending.as_ref().filter(|p| p.persisting.is_none())?;
        let all = pending
            .delivered
            .iter()
            .zip(&self.finished)
            .all(|(&delivered, &finished)| delivered || finished);
        if !all {
            return None;
        }
        let pending = self.pending.take().expect("checked");
        self.done_up_to = pending.barrier.checkpoint_id;
        gate.unblock_all();
        Some(TakeSnapshot {
            barrier: pending.barrier,
            alignment_ns: pending.first_at.elapsed().as_nanos() as u64,
        })
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::net::{
        ChannelSender, Envelope, Event, LocalBufferPool, NetworkBufferPool, TaskNotifier, channel,
    };
    use crate::sync::Arc;

    const TRIGGERED_MS: u64 = 1_000;

    fn barrier(id: u64) -> CheckpointBarrier {
        CheckpointBarrier {
            checkpoint_id: id,
            triggered_at_ms: TRIGGERED_MS,
            unaligned: false,
            final_checkpoint: false,
        }
    }

    /// A gate of `n` channels, their senders and a pool to fill buffers from.
    fn gate(n: usize) -> (InputGate, Vec<ChannelSender>, LocalBufferPool) {
        let notifier = || Arc::new(TaskNotifier::new());
        let mut global = NetworkBufferPool::new(8, 16).expect("pool");
        let pool = global.local_pool(n, 4, 0, notifier()).expect("local");
        let (senders, receivers) = (0..n).map(|_| channel(8, notifier(), notifier())).unzip();
        (InputGate::new(receivers), senders, pool)
    }

    fn send_buffer(tx: &mut ChannelSender, pool: &LocalBufferPool, byte: u8) {
        let mut buffer = pool.try_take(0).expect("buffer");
        buffer.append(1, |b| b[0] = byte);
        tx.try_send(Envelope::Buffer(buffer)).expect("room");
    }

    /// What the task loop does with each polled envelope: `(channel, byte, channel state?)`
    /// for buffers, the snapshots taken, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Buffer(usize, u8, bool),
        /// Persisted while still queued.
        Persisted(usize, u8),
        Snapshot(bool),
        Complete(u64),
    }

    fn drain(handler: &mut BarrierHandler, gate: &mut InputGate, now_ms: u64) -> Vec<Seen> {
        let mut seen = Vec::new();
        while let Some((ch, envelope, position)) = gate.poll() {
            let snapshot = match envelope {
                Envelope::Buffer(buffer) => {
                    let Position::InOrder(seq) = position else {
                        panic!("buffers come in order");
                    };
                    let state = handler.is_channel_state(ch, seq);
                    buffer.read(|b| seen.push(Seen::Buffer(ch, b[0], state)));
                    None
                }
                Envelope::Event(Event::Barrier(b)) => {
                    handler.on_barrier(ch, b, &position, now_ms, gate)
                }
                Envelope::Event(Event::EndOfPartition) => {
                    gate.finish(ch);
                    handler.on_channel_finished(ch, gate)
                }
            };
            if let Some(s) = snapshot {
                seen.push(Seen::Snapshot(s.barrier.unaligned));
            }
            handler.drain_overtaken(gate, |ch, _, buffer| {
                buffer.read(|b| seen.push(Seen::Persisted(ch, b[0])));
            });
            if let Some(id) = handler.take_complete_channel_state() {
                seen.push(Seen::Complete(id));
            }
        }
        seen
    }

    #[test]
    fn aligned_blocks_the_early_channel_until_every_barrier_arrived() {
        let (mut gate, mut tx, pool) = gate(2);
        let mut handler = BarrierHandler::new(BarrierMode::Aligned, 2);
        tx[0]
            .try_send(Envelope::Event(Event::Barrier(barrier(1))))
            .unwrap();
        send_buffer(&mut tx[0], &pool, 0xA);
        send_buffer(&mut tx[1], &pool, 0xB);
        tx[1]
            .try_send(Envelope::Event(Event::Barrier(barrier(1))))
            .unwrap();
        let seen = drain(&mut handler, &mut gate, u64::MAX);
        assert_eq!(
            seen,
            vec![
                Seen::Buffer(1, 0xB, false),
                Seen::Snapshot(false),
                Seen::Buffer(0, 0xA, false)
            ]
        );
    }

    #[test]
    fn unaligned_snapshots_at_the_first_barrier_and_persists_exactly_the_overtaken_buffers() {
        let (mut gate, mut tx, pool) = gate(2);
        let mut handler = BarrierHandler::new(BarrierMode::Unaligned, 2);
        send_buffer(&mut tx[0], &pool, 1);
        send_buffer(&mut tx[0], &pool, 2);
        tx[0].try_send_priority(Event::Barrier(barrier(1))).unwrap();
        send_buffer(&mut tx[0], &pool, 3); // after channel 0's barrier
        send_buffer(&mut tx[1], &pool, 4); // before channel 1's barrier
        let first = drain(&mut handler, &mut gate, 0);
        assert_eq!(
            first,
            vec![
                Seen::Snapshot(true),
                Seen::Persisted(0, 1),
                Seen::Persisted(0, 2),
                Seen::Buffer(0, 1, false),
                Seen::Buffer(1, 4, true),
                Seen::Buffer(0, 2, false),
                Seen::Buffer(0, 3, false),
            ],
            "the overtaken buffers are persisted at once, channel 1's as they come"
        );
        assert_eq!(handler.persisting(), Some(1));
        send_buffer(&mut tx[1], &pool, 5);
        tx[1].try_send_priority(Event::Barrier(barrier(1))).unwrap();
        send_buffer(&mut tx[1], &pool, 6);
        let rest = drain(&mut handler, &mut gate, 0);
        assert_eq!(
            rest,
            vec![
                Seen::Persisted(1, 5),
                Seen::Complete(1),
                Seen::Buffer(1, 5, false),
                Seen::Buffer(1, 6, false)
            ],
            "the overtaken buffer 5 completes channel 1's state before it is processed"
        );
        assert_eq!(handler.pending(), None);
    }

    #[test]
    fn aligned_with_timeout_switches_on_the_timer_and_persists_only_the_late_channels() {
        let (mut gate, mut tx, pool) = gate(2);
        let mode = BarrierMode::AlignedWithTimeout {
            timeout: Duration::from_millis(10),
        };
        let mut handler = BarrierHandler::new(mode, 2);
        tx[0]
            .try_send(Envelope::Event(Event::Barrier(barrier(1))))
            .unwrap();
        send_buffer(&mut tx[0], &pool, 0xA); // after the barrier: blocked
        let before = drain(&mut handler, &mut gate, TRIGGERED_MS + 1);
        assert!(before.is_empty(), "aligning: {before:?}");
        assert_eq!(handler.deadline_ms(), Some(TRIGGERED_MS + 10));
        assert_eq!(handler.on_timer(TRIGGERED_MS + 9, &mut gate), None);
        let switched = handler.on_timer(TRIGGERED_MS + 10, &mut gate).unwrap();
        assert!(switched.barrier.unaligned);
        send_buffer(&mut tx[1], &pool, 0xB);
        tx[1]
            .try_send(Envelope::Event(Event::Barrier(barrier(1))))
            .unwrap();
        let after = drain(&mut handler, &mut gate, TRIGGERED_MS + 11);
        assert_eq!(
            after,
            vec![
                Seen::Buffer(1, 0xB, true),
                Seen::Buffer(0, 0xA, false),
                Seen::Complete(1)
            ]
        );
    }

    #[test]
    fn aligned_with_timeout_goes_unaligned_at_a_priority_barrier_and_ignores_its_copy() {
        let (mut gate, mut tx, pool) = gate(2);
        let mode = BarrierMode::AlignedWithTimeout {
            timeout: Duration::from_secs(60),
        };
        let mut handler = BarrierHandler::new(mode, 2);
        // Channel 0: a buffer, the in-band barrier, then its timed-out priority copy.
        send_buffer(&mut tx[0], &pool, 1);
        tx[0]
            .try_send(Envelope::Event(Event::Barrier(barrier(1))))
            .unwrap();
        send_buffer(&mut tx[0], &pool, 2);
        tx[0]
            .try_send_priority_before(Event::Barrier(barrier(1)), 1)
            .unwrap();
        tx[1]
            .try_send(Envelope::Event(Event::Barrier(barrier(1))))
            .unwrap();
        let seen = drain(&mut handler, &mut gate, TRIGGERED_MS);
        assert_eq!(
            seen,
            vec![
                Seen::Snapshot(true),
                Seen::Persisted(0, 1),
                Seen::Buffer(0, 1, false),
                Seen::Complete(1),
                Seen::Buffer(0, 2, false),
            ],
            "the copy overtook buffer 1 only; the in-band original is ignored"
        );
    }

    #[test]
    fn at_least_once_blocks_nothing_and_a_newer_barrier_abandons_an_older_checkpoint() {
        let (mut gate, mut tx, pool) = gate(2);
        let mut handler = BarrierHandler::new(BarrierMode::AtLeastOnce, 2);
        tx[0]
            .try_send(Envelope::Event(Event::Barrier(barrier(1))))
            .unwrap();
        send_buffer(&mut tx[0], &pool, 0xA);
        tx[0]
            .try_send(Envelope::Event(Event::Barrier(barrier(2))))
            .unwrap();
        // Channel 1 never delivers barrier 1 (say, it was declined upstream).
        tx[1]
            .try_send(Envelope::Event(Event::Barrier(barrier(2))))
            .unwrap();
        let seen = drain(&mut handler, &mut gate, 0);
        assert_eq!(
            seen,
            vec![Seen::Buffer(0, 0xA, false), Seen::Snapshot(false)],
            "checkpoint 1 abandoned by barrier 2, which completes"
        );
        assert_eq!(handler.pending(), None);
    }

    #[test]
    fn the_final_checkpoint_aligns_in_every_exactly_once_flavour() {
        let timeout = BarrierMode::AlignedWithTimeout {
            timeout: Duration::ZERO,
        };
        for mode in [BarrierMode::Unaligned, timeout] {
            let (mut gate, mut tx, pool) = gate(2);
            let mut handler = BarrierHandler::new(mode, 2);
            let last = CheckpointBarrier {
                final_checkpoint: true,
                ..barrier(1)
            };
            tx[0]
                .try_send(Envelope::Event(Event::Barrier(last)))
                .unwrap();
            send_buffer(&mut tx[0], &pool, 0xA);
            let first = drain(&mut handler, &mut gate, u64::MAX);
            assert!(first.is_empty(), "{mode:?}: aligning, {first:?}");
            assert_eq!(handler.deadline_ms(), None, "{mode:?}: never times out");
            assert_eq!(handler.on_timer(u64::MAX, &mut gate), None, "{mode:?}");
            send_buffer(&mut tx[1], &pool, 0xB);
            tx[1]
                .try_send(Envelope::Event(Event::Barrier(last)))
                .unwrap();
            let seen = drain(&mut handler, &mut gate, u64::MAX);
            assert_eq!(
                seen,
                vec![
                    Seen::Buffer(1, 0xB, false),
                    Seen::Snapshot(false),
                    Seen::Buffer(0, 0xA, false)
                ],
                "{mode:?}"
            );
        }
    }

    #[test]
    fn an_abort_ends_the_channel_state_of_an_unaligned_checkpoint() {
        let (mut gate, mut tx, _pool) = gate(2);
        let mut handler = BarrierHandler::new(BarrierMode::Unaligned, 2);
        tx[0].try_send_priority(Event::Barrier(barrier(1))).unwrap();
        assert_eq!(
            drain(&mut handler, &mut gate, 0),
            vec![Seen::Snapshot(true)]
        );
        assert_eq!(handler.persisting(), Some(1));
        handler.on_aborted(1, &mut gate);
        assert_eq!(handler.persisting(), None);
        tx[1].try_send_priority(Event::Barrier(barrier(1))).unwrap();
        assert!(drain(&mut handler, &mut gate, 0).is_empty(), "ignored");
    }
}
