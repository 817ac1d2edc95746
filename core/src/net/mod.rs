//! The data plane: network buffers, channels, the record writer and the input gate.
//!
//! Allocates once (the buffer pool, at job start); never takes a lock on the hot path; a full
//! pool or ring is backpressure, never growth.

pub mod channel;
pub mod element;
pub mod gate;
pub mod notify;
mod overtake;
pub mod pool;
pub mod writer;

pub use channel::{
    ChannelReceiver, ChannelSender, CheckpointBarrier, Envelope, Event, PRIORITY_SLOTS, channel,
};
pub use element::{ControlElement, StreamElement};
pub use gate::{InputGate, Position};
pub use notify::TaskNotifier;
/// Under `--cfg weir_loom` the writer's timeoutable barriers are public, for the loom models.
#[cfg(weir_loom)]
pub use overtake::TimeoutableBarrier;
pub use pool::{Buffer, LocalBufferPool, NetworkBufferPool, PoolConfig, PoolError};
pub use writer::{Flush, IdleDue, Partitioner, RecordWriter, earliest};
