//! The record writer (Flink's `RecordWriter` with its `BufferBuilder`s and output flusher):
//! serializes elements into the current buffer of their target channel and sends a buffer
//! when it is full, when the buffer timeout expires ([`RecordWriter::flush_all`], called by the
//! task loop), before any event, and at end of input. A buffer timeout of zero sends after
//! every record.
//!
//! An empty pool or a full ring is backpressure: the writer waits on its task's notifier (see
//! [`super::notify`]) and counts the time as `backPressuredTimeMsPerSecond`.
//!
//! Watermark coalescing: a watermark written right after another one that is still in the open
//! buffer of the same channel (no record between them) overwrites it in place. The receiver
//! would have moved straight past the older one; this keeps punctuated watermarks (one per
//! record, broadcast to every channel) from multiplying the bytes and work downstream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::{ChannelSender, Envelope, Event};
use super::element::{self, ControlElement};
use super::pool::{Buffer, LocalBufferPool};
use crate::codec::{Codec, Encoder};
use crate::error::{JobError, TaskError};
use crate::keyed::KeyGroups;
use crate::runtime::TaskEnv;

/// How long a waiting writer parks before it re-checks cancellation.
const BACKPRESSURE_PARK: Duration = Duration::from_millis(5);

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
        /// Hashes a record's key.
        key_hash: Arc<dyn Fn(&T) -> u64 + Send + Sync>,
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

/// Serializes one task's output into its channels.
#[derive(Debug)]
pub struct RecordWriter<T> {
    senders: Vec<ChannelSender>,
    open: Vec<Option<Buffer>>,
    /// Per channel: where the open buffer's last element, a watermark, starts.
    trailing_watermark: Vec<Option<usize>>,
    pool: LocalBufferPool,
    /// The pool's index of channel 0 of this writer (see [`RecordWriter::new`]).
    first_channel: usize,
    partitioner: Partitioner<T>,
    env: TaskEnv,
    flush_every_record: bool,
    next_marker_channel: usize,
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
            senders,
            open,
            pool,
            first_channel,
            partitioner,
            env,
            flush_every_record: buffer_timeout.is_zero(),
            next_marker_channel: 0,
        }
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
                let channel = groups.subtask_of_hash(key_hash(record));
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
            if let ControlElement::Watermark(_) = control {
                self.trailing_watermark[channel] =
                    self.open[channel].as_ref().map(|b| b.len() - len);
            }
        }
        Ok(())
    }

    /// Sends every partly filled buffer (the buffer timeout expired).
    pub fn flush_all(&mut self) -> Result<(), TaskError> {
        for channel in 0..self.senders.len() {
            self.flush(channel)?;
        }
        Ok(())
    }

    /// Sends the partly filled buffers, then `event` on every channel.
    pub fn send_event(&mut self, event: Event) -> Result<(), TaskError> {
        self.flush_all()?;
        for channel in 0..self.senders.len() {
            self.send(channel, Envelope::Event(event))?;
        }
        Ok(())
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
        let env = &self.env;
        let taken = self
            .pool
            .take_waiting(channel, BACKPRESSURE_PARK, || env.control().is_cancelled());
        self.env
            .metrics()
            .backpressured_ns
            .add(started.elapsed().as_nanos() as u64);
        taken.ok_or(TaskError::Cancelled)
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

    #[test]
    fn a_watermark_right_after_another_replaces_it_in_the_open_buffer() {
        let notifier = Arc::new(TaskNotifier::new());
        let mut global = NetworkBufferPool::new(1024, 4).unwrap();
        let pool = global.local_pool(1, 2, 2, Arc::clone(&notifier)).unwrap();
        let (tx, mut rx) = channel(8, Arc::clone(&notifier), Arc::new(TaskNotifier::new()));
        let env = TaskEnv::new(
            "t".into(),
            0,
            notifier,
            Arc::new(JobControl::new()),
            Some(pool.clone()),
        );
        let mut writer = RecordWriter::new(
            vec![tx],
            pool,
            0,
            Partitioner::Rebalance { next: 0 },
            env,
            Duration::from_millis(100),
        );
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
        let mut seen = Vec::new();
        buffer
            .read(|bytes| {
                decode_elements::<u64, DecodeError>(bytes, |e| {
                    seen.push(e);
                    Ok(())
                })
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![
                StreamElement::Record(1),
                StreamElement::Watermark(Watermark(7)),
                StreamElement::Record(2),
                StreamElement::Watermark(Watermark(9)),
            ]
        );
    }
}
