//! The record writer (Flink's `RecordWriter` with its `BufferBuilder`s and output flusher):
//! serializes elements into the current buffer of their target channel and sends a buffer
//! when it is full, when the buffer timeout expires ([`RecordWriter::flush_all`], called by the
//! task loop), before any event, and at end of input. A buffer timeout of zero sends after
//! every record.
//!
//! An empty pool or a full ring is backpressure: the writer waits on its task's notifier (see
//! [`super::notify`]) and counts the time as `backPressuredTimeMsPerSecond`.
//!
//! Checkpoints: an aligned barrier goes in band, after the partly filled buffers
//! ([`RecordWriter::send_event`]); with an aligned timeout it may overtake later (see
//! [`super::overtake`]). An unaligned barrier goes by priority at once
//! ([`RecordWriter::send_priority_barrier`]): the buffers queued in a ring are persisted by
//! the receiver, the open buffers' bytes here, as output channel state (the open buffer stays
//! open: what is appended after the barrier is after the cut). On restore the writer first
//! replays its exchange's channel state ([`RecordWriter::restore_channel_state`]), before any
//! new output.
//!
//! Idle flushes ([`Flush::Idle`]): a task that runs out of work sends the partly filled
//! buffers that carry records or latency markers, and leaves those that carry only watermarks
//! and statuses for the buffer timeout ([`Flush::All`]) (or until they fill, or an event or the end of input
//! sends them). Their receiver has no record to process in them: sending each at once
//! would wake it (and, through its own idle flush, the task after it) for every watermark,
//! which under punctuated watermarks is every few dozen records. Event time moves on in the
//! receiver at most one buffer timeout later, as in Flink, which only flushes on the timer.
//! A buffer of records is held back through idle moments until the writer's idle age
//! (`RuntimeConfig::idle_flush_age`) has passed since the first idle flush that found it:
//! a task that runs dry after every small input (window partials under punctuated watermarks)
//! then sends one buffer per age, not one per input. The flush says when the held buffers are
//! due ([`IdleDue`]), and the task wakes by then.
//!
//! Watermark coalescing: a watermark written right after another one that is still in the open
//! buffer of the same channel (no record between them) overwrites it in place. The receiver
//! would have moved straight past the older one; this keeps punctuated watermarks (one per
//! record, broadcast to every channel) from multiplying the bytes and work downstream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::{ChannelSender, CheckpointBarrier, Envelope, Event};
use super::element::{self, ControlElement, StreamElement};
use super::overtake::TimeoutableBarrier;
use super::pool::{Buffer, LocalBufferPool};
use crate::checkpoint::{ChannelChunk, ChannelInfo, ChannelSide, ChunkBytes, TaskSnapshot};
use crate::codec::{Codec, DecodeError, Encoder};
use crate::error::{JobError, TaskError};
use crate::keyed::{KeyGroups, KeyHash};
use crate::runtime::{ReplayChunk, RestoreSource, TaskEnv};

/// How long a waiting writer parks before it re-checks cancellation.
const BACKPRESSURE_PARK: Duration = Duration::from_millis(5);

/// Records of a batch whose channels a keyed exchange computes per call of its key hasher.
const ROUTE_CHUNK: usize = 256;

/// How records are routed to the channels of an exchange.
pub enum Partitioner<T> {
    /// Round robin over the channels (Flink's `rebalance`).
    Rebalance {
        /// The channel of the next record.
        next: usize,
    },
    /// Every record to every channel.
    Broadcast,
    /// By key group: `hash(key) % max_parallelism`, each channel owning a contiguous range.
    KeyGroups {
        /// Hashes records' keys, one or a batch per call.
        key_hash: Arc<dyn KeyHash<T>>,
        /// The key-group layout.
        groups: KeyGroups,
    },
}

impl<T> std::fmt::Debug for Partitioner<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rebalance { .. } => f.write_str("Rebalance"),
            Self::Broadcast => f.write_str("Broadcast"),
            Self::KeyGroups { groups, .. } => write!(f, "KeyGroups({groups:?})"),
        }
    }
}

/// Why partly filled buffers are sent ([`RecordWriter::flush_all`], `Output::flush`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Every partly filled buffer: the buffer timeout expired, or an event follows.
    All,
    /// The task ran out of work at `now` (`RuntimeConfig::flush_on_idle`): the buffers that
    /// have held a record or a latency marker since an idle flush at least the writer's idle
    /// age ago; those holding only watermarks and statuses wait for the timeout.
    Idle {
        /// When the task ran out of work.
        now: Instant,
    },
}

/// When the buffers an idle flush held back are due: the earliest instant at which an idle
/// flush sends one of them, or `None` when it held none back.
pub type IdleDue = Option<Instant>;

/// The earlier of two dues (`None` is no due, not the earliest).
pub fn earliest(a: IdleDue, b: IdleDue) -> IdleDue {
    a.into_iter().chain(b).min()
}

/// Serializes one task's output into its channels.
#[derive(Debug)]
pub struct RecordWriter<T> {
    senders: Vec<ChannelSender>,
    open: Vec<Option<Buffer>>,
    /// Per channel: where the open buffer's last element, a watermark, starts.
    trailing_watermark: Vec<Option<usize>>,
    /// Per channel: bytes of watermarks and statuses in the open buffer. It holds a record or
    /// a latency marker iff its length is larger ([`Flush::Idle`]); kept by the control path
    /// alone, so that a record's write does not touch it.
    control_bytes: Vec<usize>,
    /// Per channel: the first idle flush that found the open buffer carrying a record or a
    /// latency marker and held it back ([`Flush::Idle`]); cleared when the buffer is sent.
    held_since: Vec<Option<Instant>>,
    /// How long an idle flush holds a buffer back before it sends it.
    idle_age: Duration,
    pool: LocalBufferPool,
    /// The pool's index of channel 0 of this writer (see [`RecordWriter::new`]).
    first_channel: usize,
    partitioner: Partitioner<T>,
    env: TaskEnv,
    flush_every_record: bool,
    next_marker_channel: usize,
    /// The exchange's uid (its channel state's name in checkpoints).
    exchange: Arc<str>,
    /// The aligned barrier sent last, while it may still have to overtake.
    timeoutable: Option<TimeoutableBarrier>,
    /// Channel state to send before anything else, after a restore.
    replay: Option<Replay>,
}

/// The channel state a restored writer sends first.
struct Replay {
    source: Arc<RestoreSource>,
    chunks: Vec<ReplayChunk>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl<T: Codec> RecordWriter<T> {
    /// A writer over `senders` drawing from `pool`, whose exclusive buffers for `senders[i]`
    /// are those of the pool's channel `first_channel + i`: a task with several output edges
    /// has one pool carved for all their channels, each edge at its own offset.
    pub fn new(
        senders: Vec<ChannelSender>,
        pool: LocalBufferPool,
        first_channel: usize,
        partitioner: Partitioner<T>,
        env: TaskEnv,
        buffer_timeout: Duration,
    ) -> Self {
        let open = senders.iter().map(|_| None).collect();
        Self {
            trailing_watermark: vec![None; senders.len()],
            control_bytes: vec![0; senders.len()],
            held_since: vec![None; senders.len()],
            idle_age: Duration::ZERO,
            senders,
            open,
            pool,
            first_channel,
            partitioner,
            env,
            flush_every_record: buffer_timeout.is_zero(),
            next_marker_channel: 0,
            exchange: Arc::from(""),
            timeoutable: None,
            replay: None,
        }
    }

    /// Sets how long an idle flush holds a buffer back ([`Flush::Idle`]); zero (the default)
    /// sends it at the first.
    pub fn with_idle_age(mut self, age: Duration) -> Self {
        self.idle_age = age;
        self
    }

    /// Names the exchange (the uid of its downstream input): output channel state is
    /// persisted under it, and on restore the writer replays what the checkpoint holds of it
    /// (see [`Self::restore_channel_state`]).
    pub(crate) fn for_exchange(mut self, exchange: Arc<str>) -> Self {
        if let Some(source) = self.env.restore_source() {
            let chunks = source.channel_replay(
                &exchange,
                self.env.subtask(),
                self.env.parallelism(),
                self.senders.len(),
            );
            if !chunks.is_empty() {
                self.replay = Some(Replay {
                    source: Arc::clone(source),
                    chunks,
                });
            }
        }
        self.exchange = exchange;
        self
    }

    /// Output channels.
    pub fn channels(&self) -> usize {
        self.senders.len()
    }

    /// The writer's buffer pool.
    pub fn pool(&self) -> &LocalBufferPool {
        &self.pool
    }

    /// Routes and writes one record.
    #[inline]
    pub fn emit(&mut self, record: &T) -> Result<(), TaskError> {
        if self.replay.is_some() {
            self.restore_channel_state()?;
        }
        self.route(record)
    }

    /// Writes `records` in order, as [`emit`](Self::emit) would one by one. A keyed exchange
    /// hashes the keys of up to [`ROUTE_CHUNK`] records per call of its key hasher
    /// ([`KeyHash::hash_all`]): no dynamic call per record.
    pub fn emit_all(&mut self, records: &[T]) -> Result<(), TaskError> {
        if self.replay.is_some() {
            self.restore_channel_state()?;
        }
        let Partitioner::KeyGroups { key_hash, groups } = &self.partitioner else {
            return records.iter().try_for_each(|record| self.route(record));
        };
        // Both are shared (reference counted): held here, they leave `self` free for the writes.
        let (key_hash, groups) = (Arc::clone(key_hash), groups.clone());
        let mut hashes = [0u64; ROUTE_CHUNK];
        for chunk in records.chunks(ROUTE_CHUNK) {
            let hashes = &mut hashes[..chunk.len()];
            key_hash.hash_all(chunk, hashes);
            for (record, &hash) in chunk.iter().zip(hashes.iter()) {
                let len = element::record_len(record);
                self.write(groups.subtask_of_hash(hash), len, |out| {
                    element::encode_record(record, out);
                })?;
            }
        }
        Ok(())
    }

    #[inline]
    fn route(&mut self, record: &T) -> Result<(), TaskError> {
        let len = element::record_len(record);
        match &mut self.partitioner {
            Partitioner::Rebalance { next } => {
                let channel = *next;
                *next = if channel + 1 == self.senders.len() {
                    0
                } else {
                    channel + 1
                };
                self.write(channel, len, |out| element::encode_record(record, out))
            }
            Partitioner::KeyGroups { key_hash, groups } => {
                let channel = groups.subtask_of_hash(key_hash.hash(record));
                self.write(channel, len, |out| element::encode_record(record, out))
            }
            Partitioner::Broadcast => {
                for channel in 0..self.senders.len() {
                    self.write(channel, len, |out| element::encode_record(record, out))?;
                }
                Ok(())
            }
        }
    }

    /// Writes a watermark or status change to every channel, or a latency marker to one
    /// channel (round robin, as Flink forwards markers to one random channel).
    pub fn emit_control(&mut self, control: ControlElement) -> Result<(), TaskError> {
        self.restore_channel_state()?;
        let len = control.encoded_len();
        if let ControlElement::LatencyMarker(_) = control {
            let channel = self.next_marker_channel % self.senders.len();
            self.next_marker_channel = channel + 1;
            return self.write(channel, len, |out| control.encode(out));
        }
        for channel in 0..self.senders.len() {
            if let ControlElement::Watermark(watermark) = control
                && let (Some(at), Some(buffer)) = (
                    self.trailing_watermark[channel],
                    self.open[channel].as_mut(),
                )
            {
                // Skip the tag byte: same element kind, newer value.
                buffer.rewrite(at + 1, &watermark.0.to_le_bytes());
                continue;
            }
            self.write(channel, len, |out| control.encode(out))?;
            // A watermark or status (a latency marker returned above).
            self.control_bytes[channel] += len;
            if let ControlElement::Watermark(_) = control {
                self.trailing_watermark[channel] =
                    self.open[channel].as_ref().map(|b| b.len() - len);
            }
        }
        Ok(())
    }

    /// Sends the partly filled buffers that `why` calls for (every one when the buffer
    /// timeout expired); a timed-out aligned barrier still queued overtakes.
    pub fn flush_all(&mut self, why: Flush) -> Result<IdleDue, TaskError> {
        self.restore_channel_state()?;
        self.overtake_if_due();
        let mut due: IdleDue = None;
        for channel in 0..self.senders.len() {
            match why {
                Flush::All => self.flush(channel)?,
                Flush::Idle { now } => {
                    let carries_data = self.open[channel]
                        .as_ref()
                        .is_some_and(|b| b.len() > self.control_bytes[channel]);
                    if !carries_data {
                        continue;
                    }
                    let since = *self.held_since[channel].get_or_insert(now);
                    let at = since + self.idle_age;
                    if at <= now {
                        self.flush(channel)?;
                    } else {
                        due = earliest(due, Some(at));
                    }
                }
            }
        }
        Ok(due)
    }

    /// Sends the partly filled buffers, then `event` on every channel. An aligned barrier of
    /// a job with an aligned timeout is remembered, to overtake once it timed out.
    pub fn send_event(&mut self, event: Event) -> Result<(), TaskError> {
        self.flush_all(Flush::All)?;
        if let Event::Barrier(barrier) = event {
            let deadline = self
                .env
                .checkpointing()
                .and_then(|ck| ck.mode.unaligned_from_ms(&barrier));
            self.timeoutable =
                deadline.map(|ms| TimeoutableBarrier::before_send(barrier, ms, &self.senders));
        }
        for channel in 0..self.senders.len() {
            self.send(channel, Envelope::Event(event))?;
        }
        Ok(())
    }

    /// Forwards an unaligned barrier by priority on every channel, ahead of everything
    /// queued: the bytes of each partly filled buffer become output channel state in
    /// `snapshot` (copied: at most one buffer per channel), and the buffer stays open.
    pub fn send_priority_barrier(
        &mut self,
        barrier: CheckpointBarrier,
        snapshot: &mut TaskSnapshot,
    ) -> Result<(), TaskError> {
        debug_assert!(barrier.unaligned);
        self.restore_channel_state()?;
        self.timeoutable = None;
        let (upstream, upstreams) = (self.env.subtask(), self.env.parallelism());
        for channel in 0..self.senders.len() {
            // Nothing may be rewritten in place across the cut.
            self.trailing_watermark[channel] = None;
            if let Some(buffer) = self.open[channel].as_ref().filter(|b| !b.is_empty()) {
                snapshot.add_channel_chunk(ChannelChunk {
                    info: ChannelInfo {
                        exchange: self.exchange.to_string(),
                        side: ChannelSide::Output,
                        upstream,
                        downstream: channel,
                        upstreams,
                        downstreams: self.senders.len(),
                        seq: 0,
                    },
                    bytes: ChunkBytes::Owned(buffer.read(<[u8]>::to_vec)),
                });
            }
            self.send_priority(channel, Event::Barrier(barrier))?;
        }
        Ok(())
    }

    /// Replays the channel state restored for this writer, once, before anything else it
    /// sends: per old channel, the receiver's part then the sender's. When the exchange has
    /// its old shape, every element goes to its old channel; otherwise records are routed
    /// anew (by key group for a keyed exchange) and watermarks, statuses and latency markers
    /// are dropped (the restored valves and watermark generators go on). O(bytes replayed);
    /// one chunk in memory at a time.
    pub fn restore_channel_state(&mut self) -> Result<(), TaskError> {
        let Some(replay) = self.replay.take() else {
            return Ok(());
        };
        let (task, subtask) = (self.env.task_name().to_owned(), self.env.subtask());
        let failed = |e: String| {
            TaskError::Failed(JobError::Checkpoint(format!(
                "replaying the channel state of '{task}' (subtask {subtask}): {e}"
            )))
        };
        for chunk in &replay.chunks {
            let bytes = replay
                .source
                .read_chunk(chunk)
                .map_err(|e| failed(e.to_string()))?;
            let mut replayed = Ok(());
            let decoded = element::decode_elements::<T, DecodeError>(&bytes, |e| {
                if replayed.is_ok() {
                    replayed = self.replay_element(chunk.channel, e);
                }
                Ok(())
            });
            decoded.map_err(|e| failed(e.to_string()))?;
            replayed?;
        }
        Ok(())
    }

    fn replay_element(
        &mut self,
        channel: Option<usize>,
        element: StreamElement<T>,
    ) -> Result<(), TaskError> {
        let control = match element {
            StreamElement::Record(record) => {
                return match channel {
                    Some(channel) => {
                        let len = element::record_len(&record);
                        self.write(channel, len, |out| element::encode_record(&record, out))
                    }
                    None => self.route(&record),
                };
            }
            StreamElement::Watermark(w) => ControlElement::Watermark(w),
            StreamElement::Status(s) => ControlElement::Status(s),
            StreamElement::LatencyMarker(_) => return Ok(()),
        };
        match channel {
            Some(channel) => self.write(channel, control.encoded_len(), |out| control.encode(out)),
            None => Ok(()),
        }
    }

    /// A remembered aligned barrier past its deadline overtakes what is queued ahead of it.
    fn overtake_if_due(&mut self) {
        if let Some(t) = &mut self.timeoutable
            && t.overtake_if_due(crate::checkpoint::unix_ms(), &mut self.senders)
        {
            self.timeoutable = None;
        }
    }

    /// End of this task's output: flush, then end of partition on every channel.
    pub fn finish(&mut self) -> Result<(), TaskError> {
        self.send_event(Event::EndOfPartition)
    }

    #[inline]
    fn write(
        &mut self,
        channel: usize,
        len: usize,
        encode: impl FnOnce(&mut Encoder<'_>),
    ) -> Result<(), TaskError> {
        self.trailing_watermark[channel] = None;
        if self.open[channel]
            .as_ref()
            .is_some_and(|b| b.remaining() < len)
        {
            self.flush(channel)?;
        }
        if self.open[channel].is_none() {
            if len > self.pool.buffer_bytes() {
                return Err(TaskError::Failed(JobError::RecordTooLarge {
                    task: self.env.task_name().to_owned(),
                    subtask: self.env.subtask(),
                    bytes: len,
                    buffer_bytes: self.pool.buffer_bytes(),
                }));
            }
            self.open[channel] = Some(self.take_buffer(channel)?);
        }
        let buffer = self.open[channel]
            .as_mut()
            .expect("a buffer was just opened");
        buffer.append(len, |bytes| {
            let mut out = Encoder::new(bytes);
            encode(&mut out);
            debug_assert_eq!(out.written(), len, "a codec's encoded_len is exact");
        });
        if self.flush_every_record {
            self.flush(channel)?;
        }
        Ok(())
    }

    fn flush(&mut self, channel: usize) -> Result<(), TaskError> {
        self.trailing_watermark[channel] = None;
        self.control_bytes[channel] = 0;
        self.held_since[channel] = None;
        if let Some(buffer) = self.open[channel].take() {
            self.send(channel, Envelope::Buffer(buffer))?;
            self.env.metrics().buffers_out.add(1);
        }
        Ok(())
    }

    /// Takes a buffer for `channel`, waiting while the pool is empty.
    #[inline]
    fn take_buffer(&mut self, channel: usize) -> Result<Buffer, TaskError> {
        let channel = self.first_channel + channel;
        if let Some(buffer) = self.pool.try_take(channel) {
            return Ok(buffer);
        }
        let started = Instant::now();
        let (env, senders, timeoutable) = (&self.env, &mut self.senders, &mut self.timeoutable);
        let taken = self.pool.take_waiting(channel, BACKPRESSURE_PARK, || {
            if let Some(t) = timeoutable
                && t.overtake_if_due(crate::checkpoint::unix_ms(), senders)
            {
                *timeoutable = None;
            }
            env.control().is_cancelled()
        });
        self.env
            .metrics()
            .backpressured_ns
            .add(started.elapsed().as_nanos() as u64);
        taken.ok_or(TaskError::Cancelled)
    }

    /// Sends `event` by priority on `channel`, waiting while its priority ring is full (the
    /// receiver takes priority events first, so only a receiver stuck in its own output
    /// holds it up).
    fn send_priority(&mut self, channel: usize, event: Event) -> Result<(), TaskError> {
        loop {
            let sender = &mut self.senders[channel];
            if sender.try_send_priority(event).is_ok() {
                return Ok(());
            }
            self.env.check_cancelled()?;
            if sender.is_abandoned() {
                return Err(TaskError::Cancelled);
            }
            // Nothing wakes the notifier for room in the priority ring: park briefly.
            self.env.notifier().wait(|| false, BACKPRESSURE_PARK);
        }
    }

    /// Sends `envelope` on `channel`, waiting while its ring is full.
    fn send(&mut self, channel: usize, envelope: Envelope) -> Result<(), TaskError> {
        let sender = &mut self.senders[channel];
        let Err(mut envelope) = sender.try_send(envelope) else {
            return Ok(());
        };
        let started = Instant::now();
        loop {
            self.env.check_cancelled()?;
            self.overtake_if_due();
            let sender = &mut self.senders[channel];
            if sender.is_abandoned() {
                // The receiver is gone: its task failed or was cancelled.
                return Err(TaskError::Cancelled);
            }
            self.env
                .notifier()
                .wait(|| sender.has_room(), BACKPRESSURE_PARK);
            match sender.try_send(envelope) {
                Ok(()) => break,
                Err(back) => envelope = back,
            }
        }
        self.env
            .metrics()
            .backpressured_ns
            .add(started.elapsed().as_nanos() as u64);
        Ok(())
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use super::*;
    use crate::codec::DecodeError;
    use crate::net::element::{StreamElement, decode_elements};
    use crate::net::{NetworkBufferPool, TaskNotifier, channel};
    use crate::runtime::JobControl;
    use crate::time::Watermark;

    /// An idle flush now.
    fn idle() -> Flush {
        Flush::Idle {
            now: Instant::now(),
        }
    }

    /// A writer of `u64` over one channel, with a 100 ms buffer timeout, and its receiver.
    fn one_channel() -> (RecordWriter<u64>, crate::net::ChannelReceiver) {
        let notifier = Arc::new(TaskNotifier::new());
        let mut global = NetworkBufferPool::new(1024, 4).unwrap();
        let pool = global.local_pool(1, 2, 2, Arc::clone(&notifier)).unwrap();
        let (tx, rx) = channel(8, Arc::clone(&notifier), Arc::new(TaskNotifier::new()));
        let env = TaskEnv::new(
            "t".into(),
            0,
            notifier,
            Arc::new(JobControl::new()),
            Some(pool.clone()),
        );
        let writer = RecordWriter::new(
            vec![tx],
            pool,
            0,
            Partitioner::Rebalance { next: 0 },
            env,
            Duration::from_millis(100),
        );
        (writer, rx)
    }

    fn elements(buffer: Buffer) -> Vec<StreamElement<u64>> {
        let mut seen = Vec::new();
        buffer
            .read(|bytes| {
                decode_elements::<u64, DecodeError>(bytes, |e| {
                    seen.push(e);
                    Ok(())
                })
            })
            .unwrap();
        seen
    }

    /// An idle flush sends a buffer with a record or a latency marker in it, and leaves one
    /// of watermarks and statuses alone for the timeout's flush.
    #[test]
    fn an_idle_flush_leaves_a_buffer_of_watermarks_and_statuses_for_the_timeout() {
        let (mut writer, mut rx) = one_channel();
        let wm = |t| ControlElement::Watermark(Watermark(t));
        writer.emit_control(wm(1)).unwrap();
        writer
            .emit_control(ControlElement::Status(crate::time::WatermarkStatus::Idle))
            .unwrap();
        writer.emit_control(wm(2)).unwrap();
        writer.flush_all(idle()).unwrap();
        assert!(rx.try_recv().is_none(), "only event time: stays open");
        writer.flush_all(Flush::All).unwrap();
        let Some(Envelope::Buffer(buffer)) = rx.try_recv() else {
            panic!("the timeout sends it");
        };
        assert_eq!(elements(buffer).len(), 3);

        writer.emit_control(wm(3)).unwrap();
        writer.emit(&7).unwrap();
        writer.emit_control(wm(4)).unwrap();
        writer.flush_all(idle()).unwrap();
        let Some(Envelope::Buffer(buffer)) = rx.try_recv() else {
            panic!("a record in it: sent when idle");
        };
        assert_eq!(
            elements(buffer),
            vec![
                StreamElement::Watermark(Watermark(3)),
                StreamElement::Record(7),
                StreamElement::Watermark(Watermark(4)),
            ]
        );

        writer.emit_control(wm(5)).unwrap();
        writer.flush_all(idle()).unwrap();
        assert!(rx.try_recv().is_none(), "a fresh buffer counts from zero");
        writer
            .emit_control(ControlElement::LatencyMarker(crate::time::LatencyMarker {
                emitted_ns: 1,
                source_subtask: 0,
            }))
            .unwrap();
        writer.flush_all(idle()).unwrap();
        assert!(
            matches!(rx.try_recv(), Some(Envelope::Buffer(_))),
            "a latency marker measures records' way: sent when idle"
        );
    }

    /// With an idle age, the first idle flush that finds records holds their buffer back and
    /// says when it is due; one at that age sends it, and a sent buffer's successor counts
    /// afresh. An idle flush of a buffer without records says nothing is due.
    #[test]
    fn an_idle_flush_holds_a_buffer_back_for_the_idle_age() {
        let (writer, mut rx) = one_channel();
        let age = Duration::from_millis(1);
        let mut writer = writer.with_idle_age(age);
        let t0 = Instant::now();
        writer.emit(&1).unwrap();
        assert_eq!(
            writer.flush_all(Flush::Idle { now: t0 }).unwrap(),
            Some(t0 + age)
        );
        assert!(rx.try_recv().is_none(), "younger than the age: held");
        writer.emit(&2).unwrap();
        let t1 = t0 + age / 2;
        assert_eq!(
            writer.flush_all(Flush::Idle { now: t1 }).unwrap(),
            Some(t0 + age),
            "the age counts from the first idle flush that held it"
        );
        assert_eq!(
            writer.flush_all(Flush::Idle { now: t0 + age }).unwrap(),
            None
        );
        let Some(Envelope::Buffer(buffer)) = rx.try_recv() else {
            panic!("at the age: sent");
        };
        assert_eq!(
            elements(buffer),
            vec![StreamElement::Record(1), StreamElement::Record(2)]
        );
        writer.emit(&3).unwrap();
        let t2 = t0 + 2 * age;
        assert_eq!(
            writer.flush_all(Flush::Idle { now: t2 }).unwrap(),
            Some(t2 + age)
        );
        writer.flush_all(Flush::All).unwrap();
        assert!(
            matches!(rx.try_recv(), Some(Envelope::Buffer(_))),
            "the timeout sends it"
        );
        writer
            .emit_control(ControlElement::Watermark(Watermark(9)))
            .unwrap();
        assert_eq!(
            writer.flush_all(Flush::Idle { now: t2 }).unwrap(),
            None,
            "only event time: left for the timeout, nothing due"
        );
    }

    #[test]
    fn a_watermark_right_after_another_replaces_it_in_the_open_buffer() {
        let (mut writer, mut rx) = one_channel();
        let wm = |t| ControlElement::Watermark(Watermark(t));
        writer.emit(&1u64).unwrap();
        writer.emit_control(wm(5)).unwrap();
        writer.emit_control(wm(7)).unwrap();
        writer.emit(&2u64).unwrap();
        writer.emit_control(wm(9)).unwrap();
        writer.finish().unwrap();
        let Some(Envelope::Buffer(buffer)) = rx.try_recv() else {
            panic!("a buffer first");
        };
        assert_eq!(
            elements(buffer),
            vec![
                StreamElement::Record(1),
                StreamElement::Watermark(Watermark(7)),
                StreamElement::Record(2),
                StreamElement::Watermark(Watermark(9)),
            ]
        );
    }
}
