//! Channel state of unaligned checkpoints (Flink's `ChannelStateWriter` and its
//! `InputChannelStateHandle` / `ResultSubpartitionStateHandle`): the in-flight buffers a
//! checkpoint's cut crosses, persisted so that a restore replays them.
//!
//! What is persisted, per exchange channel `upstream → downstream`:
//! - **input side** (by the downstream subtask): every buffer of the channel numbered from the
//!   first one it had not received when it snapshotted up to the channel's barrier (see
//!   `BarrierHandler`); tagged with its sequence number;
//! - **output side** (by the upstream subtask): the bytes of the writer's partly filled buffer
//!   of the channel when it forwarded the barrier by priority (the ring itself is persisted by
//!   the receiver: the priority barrier names the buffers it overtook there).
//!
//! How, with bounded memory: the task thread hands each persisted input buffer itself (no
//! copy: it goes back to its pool once written) to the snapshot threads as a job of its own;
//! no snapshot thread ever waits for a task. A subtask's [`ChannelStateFile`] counts its jobs;
//! its acknowledgement goes to the coordinator when the operator states are written, the
//! task has closed the channel state (every barrier arrived) and every chunk is written,
//! whichever of these happens last. The in-flight buffers are bounded by the buffer pool, so
//! is the channel state waiting to be written.

use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::pending::{Acknowledgement, Report};
use super::{CheckpointId, CheckpointStorage, StorageError};
use crate::net::Buffer;

/// Which end of a channel persisted a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelSide {
    /// Received by the downstream subtask before the channel's barrier, after its snapshot.
    Input,
    /// The upstream writer's partly filled buffer when it forwarded the barrier.
    Output,
}

/// Which channel a chunk belongs to, and where in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// The exchange: the uid of its downstream input.
    pub exchange: String,
    /// Which end persisted it.
    pub side: ChannelSide,
    /// The upstream subtask.
    pub upstream: usize,
    /// The downstream subtask.
    pub downstream: usize,
    /// The exchange's upstream parallelism when it was persisted.
    pub upstreams: usize,
    /// The exchange's downstream parallelism when it was persisted.
    pub downstreams: usize,
    /// Input side: the buffer's sequence number in its channel; output side: 0.
    pub seq: u64,
}

impl ChannelInfo {
    /// The replay order of chunks: by channel, input side before output side (the ring was
    /// sent before the writer's open buffer), then by sequence number.
    pub fn replay_key(&self) -> (usize, usize, ChannelSide, u64) {
        (self.upstream, self.downstream, self.side, self.seq)
    }
}

/// Where one chunk lives in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHandle {
    /// Its channel.
    #[serde(flatten)]
    pub info: ChannelInfo,
    /// Byte offset of its frame in the file.
    pub offset: u64,
    /// Bytes of in-flight data it holds.
    pub bytes: u64,
}

/// One subtask's channel state file in a checkpoint, as its metadata records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStateHandle {
    /// The file, relative to the checkpoint's folder.
    pub file: String,
    /// Bytes of the whole file.
    pub file_bytes: u64,
    /// Every chunk, in the order written.
    pub chunks: Vec<ChunkHandle>,
}

impl ChannelStateHandle {
    /// In-flight bytes persisted (Flink's `persistedData`).
    pub fn in_flight_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.bytes).sum()
    }
}

/// Appends one subtask's chunks to a file of a checkpoint (made by
/// [`CheckpointStorage::channel_state_writer`]).
pub trait ChannelStateSink: Send + fmt::Debug {
    /// Appends `bytes` as a chunk of channel `info`; returns its handle.
    fn append(&mut self, info: ChannelInfo, bytes: &[u8]) -> Result<ChunkHandle, StorageError>;
    /// Makes the file durable (synced) and returns its name and length.
    fn finish(self: Box<Self>) -> Result<(String, u64), StorageError>;
}

/// The bytes of a chunk: an input buffer itself (back to its pool once written) or the copy of
/// a writer's open buffer.
#[derive(Debug)]
pub enum ChunkBytes {
    /// A received buffer.
    Buffer(Buffer),
    /// Copied bytes.
    Owned(Vec<u8>),
}

impl ChunkBytes {
    fn read<R>(&self, read: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Self::Buffer(buffer) => buffer.read(read),
            Self::Owned(bytes) => read(bytes),
        }
    }
}

/// One chunk on its way to a snapshot thread.
#[derive(Debug)]
pub struct ChannelChunk {
    /// Its channel.
    pub info: ChannelInfo,
    /// Its bytes.
    pub bytes: ChunkBytes,
}

/// One subtask's channel state of one checkpoint, shared by its task (which feeds it) and the
/// snapshot threads (which write it). Every method takes the one lock for O(1) bookkeeping
/// plus, for a chunk, its write.
#[derive(Debug)]
pub(crate) struct ChannelStateFile {
    checkpoint: CheckpointId,
    task: usize,
    inner: Mutex<FileInner>,
}

#[derive(Debug, Default)]
struct FileInner {
    sink: Option<Box<dyn ChannelStateSink>>,
    chunks: Vec<ChunkHandle>,
    written: u64,
    /// The number of chunks the task sent, once it closed the channel state.
    closed_at: Option<u64>,
    /// The acknowledgement of the operator states, waiting for the channel state.
    ack: Option<Acknowledgement>,
    failure: Option<String>,
    /// The checkpoint was aborted or the task failed: nothing more is written or reported.
    abandoned: bool,
    reported: bool,
}

impl ChannelStateFile {
    pub(crate) fn new(checkpoint: CheckpointId, task: usize) -> Arc<Self> {
        Arc::new(Self {
            checkpoint,
            task,
            inner: Mutex::new(FileInner::default()),
        })
    }

    pub(crate) fn checkpoint(&self) -> CheckpointId {
        self.checkpoint
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes one chunk (on a snapshot thread); the chunk's buffer returns to its pool here.
    pub(crate) fn write(
        &self,
        chunk: ChannelChunk,
        storage: &dyn CheckpointStorage,
    ) -> Option<Report> {
        let mut inner = self.lock();
        if !inner.abandoned && inner.failure.is_none() {
            let sink = match inner.sink.take() {
                Some(sink) => Ok(sink),
                None => storage.channel_state_writer(self.checkpoint, self.task),
            };
            let written = sink.and_then(|mut sink| {
                let handle = chunk
                    .bytes
                    .read(|bytes| sink.append(chunk.info.clone(), bytes))?;
                Ok((handle, sink))
            });
            match written {
                Ok((handle, sink)) => {
                    inner.chunks.push(handle);
                    inner.sink = Some(sink);
                }
                Err(e) => inner.failure = Some(format!("writing channel state: {e}")),
            }
        }
        inner.written += 1;
        drop(chunk);
        self.report_if_done(&mut inner)
    }

    /// The task sent its last chunk: `chunks` in all.
    pub(crate) fn close(&self, chunks: u64) -> Option<Report> {
        let mut inner = self.lock();
        inner.closed_at = Some(chunks);
        self.report_if_done(&mut inner)
    }

    /// The operator states are written: `ack` waits for the channel state.
    pub(crate) fn acknowledge(&self, ack: Acknowledgement) -> Option<Report> {
        let mut inner = self.lock();
        inner.ack = Some(ack);
        self.report_if_done(&mut inner)
    }

    /// Declines through the channel state: the operator states could not be written.
    pub(crate) fn decline(&self, reason: String) -> Option<Report> {
        let mut inner = self.lock();
        if inner.abandoned || std::mem::replace(&mut inner.reported, true) {
            return None;
        }
        Some(Report::Declined {
            checkpoint: self.checkpoint,
            task: self.task,
            reason,
        })
    }

    /// Nothing more will be written or reported (the checkpoint was aborted, or the task
    /// ended without closing it).
    pub(crate) fn abandon(&self) {
        self.lock().abandoned = true;
    }

    /// The report, once the operator states, the close and every chunk are in (exactly one
    /// per file).
    fn report_if_done(&self, inner: &mut FileInner) -> Option<Report> {
        if inner.abandoned || inner.reported || inner.closed_at != Some(inner.written) {
            return None;
        }
        let decline = |reason: String| Report::Declined {
            checkpoint: self.checkpoint,
            task: self.task,
            reason,
        };
        if let Some(reason) = inner.failure.take() {
            inner.reported = true;
            return Some(decline(reason));
        }
        let mut ack = inner.ack.take()?;
        inner.reported = true;
        if let Some(sink) = inner.sink.take() {
            match sink.finish() {
                Ok((file, file_bytes)) => {
                    let handle = ChannelStateHandle {
                        file,
                        file_bytes,
                        chunks: std::mem::take(&mut inner.chunks),
                    };
                    ack.bytes += file_bytes;
                    ack.persisted_in_flight_bytes += handle.in_flight_bytes();
                    ack.channel_states.push(handle);
                }
                Err(e) => return Some(decline(format!("writing channel state: {e}"))),
            }
        }
        Some(Report::Ack {
            checkpoint: self.checkpoint,
            task: self.task,
            ack,
        })
    }
}

/// The task's end of a [`ChannelStateFile`]: sends chunks to the snapshot threads and closes
/// it. Dropped without [`Self::close`] (the task failed), it abandons the file.
#[derive(Debug)]
pub(crate) struct ChannelStateFeed {
    file: Arc<ChannelStateFile>,
    jobs: std::sync::mpsc::Sender<super::coordinator::PoolJob>,
    sent: u64,
    closed: bool,
}

impl ChannelStateFeed {
    pub(crate) fn new(
        file: Arc<ChannelStateFile>,
        jobs: std::sync::mpsc::Sender<super::coordinator::PoolJob>,
    ) -> Self {
        Self {
            file,
            jobs,
            sent: 0,
            closed: false,
        }
    }

    /// The checkpoint it belongs to.
    pub(crate) fn checkpoint(&self) -> CheckpointId {
        self.file.checkpoint()
    }

    /// Hands `chunk` to a snapshot thread; `false` if the snapshot threads are gone.
    pub(crate) fn push(&mut self, chunk: ChannelChunk) -> bool {
        self.sent += 1;
        self.jobs
            .send(super::coordinator::PoolJob::Chunk(
                Arc::clone(&self.file),
                chunk,
            ))
            .is_ok()
    }

    /// Every chunk was sent; `false` if the snapshot threads are gone.
    pub(crate) fn close(mut self) -> bool {
        self.closed = true;
        self.jobs
            .send(super::coordinator::PoolJob::Close(
                Arc::clone(&self.file),
                self.sent,
            ))
            .is_ok()
    }
}

impl Drop for ChannelStateFeed {
    fn drop(&mut self) {
        if !self.closed {
            self.file.abandon();
        }
    }
}
