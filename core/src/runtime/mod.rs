//! The runtime: subtasks (Flink's `StreamTask` with its mailbox) on one OS thread each or
//! cooperatively on one thread per task slot, the job's control flags, and the executor that
//! wires channels, pools and threads together.

mod checkpointing;
mod control;
#[cfg(all(test, not(weir_loom)))]
mod deferred_watermarks;
mod executor;
mod input_task;
pub(crate) mod slot;
mod source_clock;
mod source_task;
mod ticker;

pub(crate) use checkpointing::{ReplayChunk, RestoreSource};
pub use control::{JobControl, TaskEnv};
pub(crate) use executor::{BuildFn, EdgePlan, TaskSetup, VertexPlan, execute};
pub use executor::{
    DEFAULT_FIRING_BUDGET, EVENT_SLOTS, JobResult, RestoreFrom, RuntimeConfig, available_cores,
};
pub(crate) use input_task::InputTask;
pub use slot::TaskThreads;
pub(crate) use source_task::SourceTask;
pub(crate) use ticker::Ticker;

use crate::error::TaskError;

/// The body of one subtask's thread: a source loop or an input-gate loop driving a chain.
pub(crate) trait TaskBody: Send {
    /// Runs to the end of input, or until failure or cancellation.
    fn run(self: Box<Self>) -> Result<(), TaskError>;
}
