//! One channel per (upstream subtask, downstream subtask) edge (Flink's `ResultSubpartition`
//! and `InputChannel`): an `rtrb` SPSC ring of buffers and events, plus a small priority ring.
//!
//! Guarantees:
//! - **In order.** Buffers and events share one ring, so an event never overtakes or lags the
//!   data sent before it. Every envelope gets the next sequence number of its channel.
//! - **Bounded, never blocks.** Both rings have a fixed capacity; a full ring hands the value
//!   back (`Err(value)`) and the caller waits as backpressure.
//! - **Priority events overtake, and name what they overtook.** An event sent with
//!   [`ChannelSender::try_send_priority`] (an unaligned checkpoint barrier) is read before the
//!   queued envelopes, and carries the sequence number of the last envelope sent before it:
//!   [`ChannelReceiver::try_recv_priority`] returns exactly the sequence numbers still queued
//!   ahead of it, which an unaligned checkpoint persists as channel state.
//! - **Wakes the other side.** A push notifies the receiving task; a pop notifies the sending
//!   task (see [`TaskNotifier`]).

use std::ops::Range;

use super::notify::TaskNotifier;
use super::pool::Buffer;
use crate::sync::Arc;

/// What the rings' own atomics order, made visible to loom (which does not see `rtrb`'s std
/// atomics): a Release before every push, an Acquire before every look at the rings, as
/// `rtrb` orders its head and tail indices. The release comes before the real push (loom runs
/// one thread at a time, so a receiver that sees the element saw the release), and the
/// acquire is a read-modify-write (it reads the newest value, never a stale one). Compiled
/// for loom models only.
#[cfg(weir_loom)]
#[derive(Debug, Default)]
struct RingOrder(crate::sync::AtomicU64);

#[cfg(weir_loom)]
impl RingOrder {
    fn publish(&self) {
        self.0.fetch_add(1, crate::sync::Ordering::Release);
    }
    fn observe(&self) {
        self.0.fetch_add(0, crate::sync::Ordering::Acquire);
    }
}

/// Slots of the priority ring: priority events are rare (one per checkpoint).
pub const PRIORITY_SLOTS: usize = 4;

/// A checkpoint barrier (Flink's `CheckpointBarrier`): small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointBarrier {
    /// The checkpoint it belongs to; increases with every checkpoint.
    pub checkpoint_id: u64,
    /// When the coordinator triggered the checkpoint, in ms since the job started.
    pub triggered_at_ms: u64,
    /// Whether the barrier overtakes in-flight data (unaligned checkpoint): set per hop, by
    /// the task that forwards it.
    pub unaligned: bool,
    /// The job's last checkpoint (triggered when every source finished): always aligned, so
    /// that nothing is left in flight past its cut when the job ends.
    pub final_checkpoint: bool,
}

/// In-band control events. Records, watermarks and latency markers travel inside buffers (see
/// [`super::element`]); events travel as envelopes of their own, and a writer sends its partly
/// filled buffers before any event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The upstream subtask will send nothing more on this channel.
    EndOfPartition,
    /// A checkpoint barrier.
    Barrier(CheckpointBarrier),
}

/// What a channel carries.
#[derive(Debug)]
pub enum Envelope {
    /// Serialized stream elements.
    Buffer(Buffer),
    /// A control event.
    Event(Event),
}

/// A priority event and the sequence numbers of the envelopes sent before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PriorityEnvelope {
    event: Event,
    /// Sequence number the next ordinary envelope would have had when this was sent.
    sent_before_seq: u64,
}

/// Creates a channel with room for `capacity` queued envelopes.
///
/// `sender_task` is woken when the receiver frees a slot; `receiver_task` when the sender
/// pushes.
pub fn channel(
    capacity: usize,
    sender_task: Arc<TaskNotifier>,
    receiver_task: Arc<TaskNotifier>,
) -> (ChannelSender, ChannelReceiver) {
    let (main_tx, main_rx) = rtrb::RingBuffer::new(capacity);
    let (prio_tx, prio_rx) = rtrb::RingBuffer::new(PRIORITY_SLOTS);
    #[cfg(weir_loom)]
    let order = Arc::new(RingOrder::default());
    (
        ChannelSender {
            main: main_tx,
            priority: prio_tx,
            next_seq: 0,
            receiver_task,
            #[cfg(weir_loom)]
            order: Arc::clone(&order),
        },
        ChannelReceiver {
            main: main_rx,
            priority: prio_rx,
            next_seq: 0,
            capacity,
            sender_task,
            #[cfg(weir_loom)]
            order,
        },
    )
}

/// The sending end of a channel. `Send`, not `Sync`: one upstream task owns it.
#[derive(Debug)]
pub struct ChannelSender {
    main: rtrb::Producer<(u64, Envelope)>,
    priority: rtrb::Producer<PriorityEnvelope>,
    next_seq: u64,
    receiver_task: Arc<TaskNotifier>,
    #[cfg(weir_loom)]
    order: Arc<RingOrder>,
}

impl ChannelSender {
    /// Queues `envelope` behind everything sent before; a full ring hands it back.
    #[inline]
    pub fn try_send(&mut self, envelope: Envelope) -> Result<(), Envelope> {
        #[cfg(weir_loom)]
        self.order.publish();
        match self.main.push((self.next_seq, envelope)) {
            Ok(()) => {
                self.next_seq += 1;
                self.receiver_task.notify();
                Ok(())
            }
            Err(rtrb::PushError::Full((_, envelope))) => Err(envelope),
        }
    }

    /// Sends `event` ahead of the queued envelopes; a full priority ring hands it back.
    pub fn try_send_priority(&mut self, event: Event) -> Result<(), Event> {
        self.try_send_priority_before(event, self.next_seq)
    }

    /// Sends `event` ahead of the queued envelopes as if it had been sent just before the
    /// envelope numbered `before_seq` (at most [`Self::sent`]): the receiver is told it
    /// overtook only the envelopes numbered below `before_seq` that it has not received. A
    /// timed-out aligned barrier (queued in band at `before_seq`) overtakes this way, without
    /// claiming the envelopes sent after it. A full priority ring hands it back.
    pub fn try_send_priority_before(&mut self, event: Event, before_seq: u64) -> Result<(), Event> {
        debug_assert!(
            before_seq <= self.next_seq,
            "only what was sent can be overtaken"
        );
        let envelope = PriorityEnvelope {
            event,
            sent_before_seq: before_seq.min(self.next_seq),
        };
        #[cfg(weir_loom)]
        self.order.publish();
        match self.priority.push(envelope) {
            Ok(()) => {
                self.receiver_task.notify();
                Ok(())
            }
            Err(rtrb::PushError::Full(envelope)) => Err(envelope.event),
        }
    }

    /// Whether the ring has room for one more envelope.
    #[inline]
    pub fn has_room(&self) -> bool {
        self.main.slots() > 0
    }

    /// Whether envelope `seq` may still be queued (sent and not yet received). A `false` is
    /// final; a `true` may be overtaken by the receiver at once (it reads concurrently).
    pub fn may_be_queued(&self, seq: u64) -> bool {
        let queued = (self.main.buffer().capacity() - self.main.slots()) as u64;
        seq < self.next_seq && seq + queued >= self.next_seq
    }

    /// Envelopes sent so far (the next sequence number).
    pub fn sent(&self) -> u64 {
        self.next_seq
    }

    /// Whether the receiving end was dropped (its task ended).
    pub fn is_abandoned(&self) -> bool {
        self.main.is_abandoned()
    }
}

/// The receiving end of a channel. `Send`, not `Sync`: one downstream task owns it.
#[derive(Debug)]
pub struct ChannelReceiver {
    main: rtrb::Consumer<(u64, Envelope)>,
    priority: rtrb::Consumer<PriorityEnvelope>,
    next_seq: u64,
    capacity: usize,
    sender_task: Arc<TaskNotifier>,
    #[cfg(weir_loom)]
    order: Arc<RingOrder>,
}

impl ChannelReceiver {
    /// The next envelope in order, if one is queued.
    #[inline]
    pub fn try_recv(&mut self) -> Option<Envelope> {
        #[cfg(weir_loom)]
        self.order.observe();
        let (seq, envelope) = self.main.pop().ok()?;
        debug_assert_eq!(seq, self.next_seq, "channel envelopes arrive in order");
        self.next_seq = seq + 1;
        // The sender can be waiting for room only if the ring was full before this pop: it
        // holds `capacity - 1` now, or more if the sender has pushed since.
        let main = &self.main;
        self.sender_task
            .notify_if(|| main.slots() + 1 >= self.capacity);
        Some(envelope)
    }

    /// The next priority event, with the sequence numbers of the envelopes it overtook: those
    /// sent before it and not yet received. They are still queued and arrive next, in order.
    pub fn try_recv_priority(&mut self) -> Option<(Event, Range<u64>)> {
        #[cfg(weir_loom)]
        self.order.observe();
        let envelope = self.priority.pop().ok()?;
        let overtaken = self.next_seq..envelope.sent_before_seq.max(self.next_seq);
        Some((envelope.event, overtaken))
    }

    /// Visits the envelopes queued now, in order, with their sequence numbers, without
    /// receiving them (they stay queued). O(queued).
    pub fn for_each_queued(&mut self, mut visit: impl FnMut(u64, &Envelope)) {
        #[cfg(weir_loom)]
        self.order.observe();
        let Ok(chunk) = self.main.read_chunk(self.main.slots()) else {
            return;
        };
        let (first, second) = chunk.as_slices();
        for (seq, envelope) in first.iter().chain(second) {
            visit(*seq, envelope);
        }
        // Dropped without `commit_all`: nothing is received.
    }

    /// Sequence number of the next envelope to be received.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether anything (ordinary or priority) is queued.
    #[inline]
    pub fn has_queued(&self) -> bool {
        !self.main.is_empty() || !self.priority.is_empty()
    }

    /// Whether an ordinary envelope is queued.
    #[inline]
    pub fn has_queued_in_order(&self) -> bool {
        !self.main.is_empty()
    }

    /// Whether a priority event is queued.
    #[inline]
    pub fn has_priority(&self) -> bool {
        !self.priority.is_empty()
    }

    /// Envelopes queued in the ring.
    pub fn queued(&self) -> usize {
        self.main.slots()
    }

    /// Ring capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the sending end was dropped; with nothing queued, no more will come.
    pub fn is_abandoned(&self) -> bool {
        self.main.is_abandoned()
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use super::*;
    use crate::net::pool::NetworkBufferPool;

    fn notifier() -> Arc<TaskNotifier> {
        Arc::new(TaskNotifier::new())
    }

    #[test]
    fn envelopes_keep_their_order_and_a_full_ring_hands_back() {
        let (mut tx, mut rx) = channel(2, notifier(), notifier());
        tx.try_send(Envelope::Event(Event::EndOfPartition))
            .expect("room");
        tx.try_send(Envelope::Event(Event::EndOfPartition))
            .expect("room");
        assert!(matches!(
            tx.try_send(Envelope::Event(Event::EndOfPartition)),
            Err(Envelope::Event(Event::EndOfPartition))
        ));
        assert!(rx.try_recv().is_some());
        assert_eq!(rx.next_seq(), 1);
        assert!(tx.has_room());
    }

    #[test]
    fn a_priority_event_names_exactly_the_buffers_it_overtook() {
        let mut global = NetworkBufferPool::new(16, 8).expect("pool");
        let pool = global.local_pool(1, 4, 0, notifier()).expect("local");
        let (mut tx, mut rx) = channel(8, notifier(), notifier());
        for _ in 0..3 {
            let buffer = pool.try_take(0).expect("buffer");
            tx.try_send(Envelope::Buffer(buffer)).expect("room");
        }
        // The receiver has consumed the first buffer when the barrier arrives.
        assert!(matches!(rx.try_recv(), Some(Envelope::Buffer(_))));
        let barrier = Event::Barrier(CheckpointBarrier {
            checkpoint_id: 1,
            triggered_at_ms: 0,
            unaligned: true,
            final_checkpoint: false,
        });
        tx.try_send_priority(barrier).expect("room");
        // Sent after the barrier: not overtaken.
        tx.try_send(Envelope::Event(Event::EndOfPartition))
            .expect("room");
        let (event, overtaken) = rx.try_recv_priority().expect("priority event");
        assert_eq!(event, barrier);
        assert_eq!(overtaken, 1..3, "buffers 1 and 2 were still queued");
        assert!(matches!(rx.try_recv(), Some(Envelope::Buffer(_))));
        assert!(matches!(rx.try_recv(), Some(Envelope::Buffer(_))));
        assert!(matches!(
            rx.try_recv(),
            Some(Envelope::Event(Event::EndOfPartition))
        ));
        assert_eq!(pool.in_use(), 0, "received buffers returned to the pool");
    }
}
