//! The loop of a subtask fed by an input gate: take the next envelope fairly, decode its
//! elements into the chain, combine watermarks in the valve, end when every channel ended.
//!
//! Unaligned checkpoints: a buffer the barrier handler names as channel state is processed as
//! usual, then handed itself (not a copy) to the snapshot threads, which write it and return
//! it to its pool; so channel state costs no memory beyond the in-flight buffers.

use std::time::Instant;

use std::sync::Arc;

use super::TaskBody;
use super::checkpointing;
use super::control::TaskEnv;
use super::ticker::Ticker;
use crate::checkpoint::{
    BarrierHandler, BarrierMode, ChannelChunk, ChannelInfo, ChannelSide, ChannelStateFeed,
    CheckpointId, ChunkBytes, Site, StateReader, StateWriter, TakeSnapshot, unix_ms,
};
use crate::codec::{Codec, DecodeError};
use crate::error::{JobError, TaskError};
use crate::net::element::{StreamElement, decode_elements};
use crate::net::{Buffer, CheckpointBarrier, Envelope, Event, Flush, InputGate, Position};
use crate::operator::Output;
use crate::time::{ValveOutput, Watermark, WatermarkValve};

/// A subtask reading its input gate.
pub(crate) struct InputTask<T> {
    env: TaskEnv,
    gate: InputGate,
    valve: WatermarkValve,
    chain: Box<dyn Output<T>>,
    ticker: Ticker,
    barriers: BarrierHandler,
    /// The uid of the task's input (the valve's state in checkpoints).
    uid: Arc<str>,
    /// The newest completed checkpoint the chain was told of, and the newest aborted one
    /// the barrier handler was told of.
    notified: CheckpointId,
    aborted: CheckpointId,
    /// The channel state of the unaligned checkpoint being persisted.
    channel_state: Option<ChannelStateFeed>,
    /// The records decoded since the last control element of the buffer being read: they go
    /// down the chain as one batch before that element, or at the buffer's end. Empty between
    /// buffers, so barriers and end of input never find records held back.
    batch: Vec<T>,
}

enum ElementError {
    Decode(DecodeError),
    Task(TaskError),
}

impl From<DecodeError> for ElementError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl From<TaskError> for ElementError {
    fn from(e: TaskError) -> Self {
        Self::Task(e)
    }
}

impl<T: Codec> InputTask<T> {
    pub(crate) fn new(
        env: TaskEnv,
        gate: InputGate,
        chain: Box<dyn Output<T>>,
        ticker: Ticker,
        uid: Arc<str>,
    ) -> Result<Self, JobError> {
        let mut valve = WatermarkValve::new(gate.len());
        let mode = env
            .checkpointing()
            .map_or(BarrierMode::Aligned, |ck| ck.mode);
        let barriers = BarrierHandler::new(mode, gate.len());
        let mut notified = 0;
        if let Some(context) = env.restore_for(&uid)? {
            notified = context.checkpoint;
            // The valve of the same subtask, or (rescaled) the lowest of all.
            let states: Vec<_> = context
                .operator_states
                .iter()
                .map(|bytes| decode_valve(bytes))
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    JobError::Checkpoint(format!(
                        "restoring the input of '{}': {e}",
                        env.task_name()
                    ))
                })?;
            let own = context
                .own_operator_state(env.subtask(), env.parallelism())
                .map(decode_valve)
                .transpose()
                .map_err(|e| JobError::Checkpoint(e.to_string()))?;
            match own {
                Some((channels, output)) => valve.restore(&channels, output),
                None => {
                    let output = states.iter().map(|s| s.1).min().unwrap_or(Watermark::MIN);
                    valve.restore(&[(output, false)], output);
                }
            }
        }
        Ok(Self {
            env,
            gate,
            valve,
            chain,
            ticker,
            barriers,
            uid,
            notified,
            aborted: 0,
            channel_state: None,
            batch: Vec::new(),
        })
    }

    /// Snapshot the valve and the chain, forward the barrier (by priority when unaligned);
    /// unaligned, the channel state that follows is fed as it arrives.
    fn checkpoint(&mut self, take: TakeSnapshot) -> Result<(), TaskError> {
        let (channels, output) = self.valve.state();
        let mut w = StateWriter::new();
        w.u64(channels.len() as u64);
        for (watermark, idle) in channels {
            w.i64(watermark.0).bool(idle);
        }
        w.i64(output.0);
        let (uid, state, env) = (Arc::clone(&self.uid), w.finish(), self.env.clone());
        let feed = checkpointing::snapshot(
            &env,
            take.barrier,
            take.alignment_ns,
            &mut *self.chain,
            |snapshot| snapshot.operator(&uid, 0..0).set_operator_state(state),
        )?;
        // A feed of an older checkpoint, replaced here, is abandoned as it drops.
        self.channel_state = feed;
        self.settle_channel_state()
    }

    /// Closes the channel state once the handler says it is complete, and drops (abandons)
    /// it once the handler gave its checkpoint up.
    fn settle_channel_state(&mut self) -> Result<(), TaskError> {
        if let Some(feed) = &mut self.channel_state {
            // Queued buffers of the channel state are copied now (at most the rings'
            // contents, once), so that the checkpoint need not wait for them to be processed.
            let (uid, subtask, parallelism) =
                (&self.uid, self.env.subtask(), self.env.parallelism());
            let upstreams = self.gate.len();
            let mut sent = true;
            self.barriers
                .drain_overtaken(&mut self.gate, |channel, seq, buffer| {
                    let info = input_info(uid, channel, subtask, upstreams, parallelism, seq);
                    let bytes = ChunkBytes::Owned(buffer.read(<[u8]>::to_vec));
                    sent &= feed.push(ChannelChunk { info, bytes });
                });
            if !sent {
                return Err(TaskError::Cancelled);
            }
        }
        if let Some(id) = self.barriers.take_complete_channel_state()
            && let Some(feed) = self.channel_state.take_if(|f| f.checkpoint() == id)
            && !feed.close()
        {
            return Err(TaskError::Cancelled);
        }
        let persisting = self.barriers.persisting();
        if self
            .channel_state
            .as_ref()
            .is_some_and(|f| persisting != Some(f.checkpoint()))
        {
            self.channel_state = None;
        }
        Ok(())
    }

    /// After buffer `seq` of `channel` was processed: channel state goes to the snapshot
    /// threads, anything else back to its pool.
    fn persist_or_drop(
        &mut self,
        channel: usize,
        seq: u64,
        buffer: Buffer,
    ) -> Result<(), TaskError> {
        if !self.barriers.is_channel_state(channel, seq) {
            return Ok(());
        }
        let Some(feed) = &mut self.channel_state else {
            return Ok(());
        };
        let info = input_info(
            &self.uid,
            channel,
            self.env.subtask(),
            self.gate.len(),
            self.env.parallelism(),
            seq,
        );
        let chunk = ChannelChunk {
            info,
            bytes: ChunkBytes::Buffer(buffer),
        };
        if !feed.push(chunk) {
            return Err(TaskError::Cancelled);
        }
        self.settle_channel_state()
    }

    fn on_barrier(
        &mut self,
        channel: usize,
        barrier: CheckpointBarrier,
        position: &Position,
    ) -> Result<(), TaskError> {
        if self.env.checkpointing().is_none() {
            return Err(TaskError::Failed(JobError::Invalid(format!(
                "task '{}' received checkpoint barrier {} but checkpointing is not enabled",
                self.env.task_name(),
                barrier.checkpoint_id
            ))));
        }
        if self.barriers.pending().is_some() {
            self.env
                .injector()
                .hit(Site::Aligning, self.env.task_index())
                .map_err(TaskError::Failed)?;
        }
        let take = self
            .barriers
            .on_barrier(channel, barrier, position, unix_ms(), &mut self.gate);
        match take {
            Some(take) => self.checkpoint(take),
            None => self.settle_channel_state(),
        }
    }

    /// An alignment with a timeout that passed its deadline goes unaligned.
    fn check_alignment_timeout(&mut self) -> Result<(), TaskError> {
        if self.barriers.deadline_ms().is_none() {
            return Ok(());
        }
        match self.barriers.on_timer(unix_ms(), &mut self.gate) {
            Some(take) => self.checkpoint(take),
            None => Ok(()),
        }
    }

    /// Completions and aborts the coordinator announced since the last look.
    fn poll_signals(&mut self) -> Result<(), TaskError> {
        let Some(ck) = self.env.checkpointing() else {
            return Ok(());
        };
        let aborted = ck.signals.aborted();
        if aborted > self.aborted {
            self.aborted = aborted;
            self.barriers.on_aborted(aborted, &mut self.gate);
            self.settle_channel_state()?;
        }
        self.notified =
            checkpointing::notify_completed(&self.env, self.notified, &mut *self.chain)?;
        Ok(())
    }

    fn forward(&mut self, out: ValveOutput) -> Result<(), TaskError> {
        if let Some(status) = out.status {
            self.chain.status(status)?;
        }
        if let Some(watermark) = out.watermark {
            self.env.metrics().input_watermark.set(watermark.0);
            self.chain.watermark(watermark)?;
        }
        Ok(())
    }

    /// Forwards what the valve emits, after the records decoded before it; nothing (and the
    /// batch stays) when the valve emits nothing.
    fn deliver_before(&mut self, out: ValveOutput) -> Result<(), TaskError> {
        if out.status.is_none() && out.watermark.is_none() {
            return Ok(());
        }
        self.deliver()?;
        self.forward(out)
    }

    /// Sends the records decoded so far down the chain as one batch.
    fn deliver(&mut self) -> Result<(), TaskError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.env.metrics().records_in.add(self.batch.len() as u64);
        self.chain.push_batch(&mut self.batch)
    }

    /// A record joins the batch; a control element that goes down the chain first sends the
    /// batch before it. A channel's watermark or status that does not move the task's own
    /// (the valve's output is empty: another channel holds the minimum back) reaches nothing,
    /// so the batch goes on across it: with punctuated watermarks, about every other
    /// watermark of a two-channel input. Inlined into the buffer's decode loop: a record's
    /// way from the buffer to the batch is one move.
    #[inline]
    fn element(&mut self, channel: usize, element: StreamElement<T>) -> Result<(), TaskError> {
        match element {
            StreamElement::Record(record) => {
                self.batch.push(record);
                Ok(())
            }
            StreamElement::Watermark(watermark) => {
                let out = self.valve.on_watermark(channel, watermark);
                self.deliver_before(out)
            }
            StreamElement::Status(status) => {
                let out = self.valve.on_status(channel, status);
                self.deliver_before(out)
            }
            StreamElement::LatencyMarker(marker) => {
                self.deliver()?;
                self.chain.latency_marker(marker)
            }
        }
    }

    fn tick(&mut self, now: Instant) -> Result<(), TaskError> {
        let due = self.ticker.due(now);
        if due.flush {
            self.chain.flush(Flush::All)?;
        }
        if due.sample {
            self.env.sample_pools(self.gate.usage_ppm());
        }
        Ok(())
    }
}

/// Where a buffer of input channel state belongs: buffer `seq` of channel `channel` of the
/// exchange `uid`, into subtask `subtask` of `parallelism`.
fn input_info(
    uid: &str,
    channel: usize,
    subtask: usize,
    upstreams: usize,
    parallelism: usize,
    seq: u64,
) -> ChannelInfo {
    ChannelInfo {
        exchange: uid.to_owned(),
        side: ChannelSide::Input,
        upstream: channel,
        downstream: subtask,
        upstreams,
        downstreams: parallelism,
        seq,
    }
}

/// A valve's state as [`InputTask::checkpoint`] writes it.
fn decode_valve(bytes: &[u8]) -> Result<(Vec<(Watermark, bool)>, Watermark), DecodeError> {
    let mut r = StateReader::new(bytes);
    let n = r.u64()?;
    if n > 1 << 20 {
        return Err(DecodeError::Invalid("channel count"));
    }
    let channels = (0..n)
        .map(|_| Ok((Watermark(r.i64()?), r.bool()?)))
        .collect::<Result<Vec<_>, DecodeError>>()?;
    let output = Watermark(r.i64()?);
    Ok((channels, output))
}

impl<T: Codec> TaskBody for InputTask<T> {
    fn run(mut self: Box<Self>) -> Result<(), TaskError> {
        while !self.gate.is_finished() {
            self.env.check_cancelled()?;
            self.poll_signals()?;
            self.check_alignment_timeout()?;
            match self.gate.poll() {
                Some((channel, Envelope::Buffer(buffer), position)) => {
                    let result = buffer.read(|bytes| {
                        decode_elements::<T, ElementError>(bytes, |e| {
                            self.element(channel, e).map_err(ElementError::from)
                        })?;
                        self.deliver().map_err(ElementError::from)
                    });
                    // After a failure, records decoded but not delivered go with the task.
                    self.batch.clear();
                    if let Position::InOrder(seq) = position {
                        self.persist_or_drop(channel, seq, buffer)?;
                    }
                    self.env
                        .injector()
                        .hit(Site::Processing, self.env.task_index())
                        .map_err(TaskError::Failed)?;
                    match result {
                        Ok(()) => {}
                        Err(ElementError::Task(e)) => return Err(e),
                        Err(ElementError::Decode(source)) => {
                            return Err(TaskError::Failed(JobError::Decode {
                                task: self.env.task_name().to_owned(),
                                subtask: self.env.subtask(),
                                source,
                            }));
                        }
                    }
                    // A turn of any firing a watermark left due, between two buffers.
                    self.chain.resume()?;
                    self.tick(Instant::now())?;
                    // In a task slot, one buffer is a turn: the slot's other subtasks run now.
                    super::slot::yield_now();
                }
                Some((channel, Envelope::Event(Event::EndOfPartition), _)) => {
                    self.gate.finish(channel);
                    let out = self.valve.on_finished(channel);
                    self.forward(out)?;
                    match self.barriers.on_channel_finished(channel, &mut self.gate) {
                        Some(take) => self.checkpoint(take)?,
                        None => self.settle_channel_state()?,
                    }
                }
                Some((channel, Envelope::Event(Event::Barrier(barrier)), position)) => {
                    self.on_barrier(channel, barrier, &position)?;
                }
                None => {
                    if self.gate.has_abandoned() {
                        // An upstream task ended without end of partition: it failed, and the
                        // job is being cancelled.
                        return Err(TaskError::Cancelled);
                    }
                    let now = Instant::now();
                    self.tick(now)?;
                    if self.chain.resume()? {
                        // Firing left: no waiting, but the slot's other subtasks get a turn.
                        super::slot::yield_now();
                        continue;
                    }
                    let mut budget = self.ticker.sleep_budget(now);
                    if self.ticker.flush_when_idle()
                        && let Some(due) = self.chain.flush(Flush::Idle { now })?
                    {
                        budget = budget.min(due.saturating_duration_since(now));
                    }
                    if let Some(deadline) = self.barriers.deadline_ms() {
                        let left = deadline.saturating_sub(unix_ms());
                        budget = budget.min(std::time::Duration::from_millis(left.max(1)));
                    }
                    let gate = &self.gate;
                    self.env.notifier().wait(|| gate.has_queued(), budget);
                    self.env
                        .metrics()
                        .idle_ns
                        .add(now.elapsed().as_nanos() as u64);
                }
            }
        }
        self.chain.end_of_input()
    }
}
