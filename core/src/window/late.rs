//! The late-data side outputs of the window operators (Flink's `sideOutputLateData`): where a
//! subtask sends the records it dropped as late (keyed windows, the local step of local-global
//! aggregation), and the partials the merge step dropped.
//!
//! A handler may buffer what it is given: the operator calls its `flush` at the end of input,
//! after the last record it could drop, so that a handler writing a file needs no write per
//! late record. Under checkpoints a transactional writer the handler registered in `open`
//! (see [`crate::checkpoint::register_transaction`]) is pre-committed at each barrier by the
//! task, so nothing else is flushed there. Any closure of the right shape is a handler that
//! buffers nothing.

use std::sync::Arc;

use super::Window;
use crate::error::OperatorError;

/// Takes one subtask's records dropped as late. An error (the record could not be written)
/// fails the subtask: nothing late is lost silently.
pub trait LateRecords<T>: Send {
    /// `record` was late for every window it belongs to, of which `window` starts last.
    fn late(&mut self, record: &T, window: Window) -> Result<(), OperatorError>;
    /// The input ended: write out what is buffered.
    fn flush(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }
}

impl<T, F> LateRecords<T> for F
where
    F: FnMut(&T, Window) -> Result<(), OperatorError> + Send,
{
    fn late(&mut self, record: &T, window: Window) -> Result<(), OperatorError> {
        self(record, window)
    }
}

/// Takes one merge subtask's partials dropped as late. An error fails the subtask.
pub trait LatePartialRecords: Send {
    /// A partial of `window` holding `records` records came after the window was freed.
    fn late(&mut self, window: Window, records: u64) -> Result<(), OperatorError>;
    /// The input ended: write out what is buffered.
    fn flush(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }
}

impl<F> LatePartialRecords for F
where
    F: FnMut(Window, u64) -> Result<(), OperatorError> + Send,
{
    fn late(&mut self, window: Window, records: u64) -> Result<(), OperatorError> {
        self(window, records)
    }
}

/// One subtask's handler of records dropped as late.
pub type LateHandler<T> = Box<dyn LateRecords<T>>;

/// Builds each subtask's late handler (by subtask index) in the operator's `open`, inside the
/// subtask's scope (a transactional writer created here registers with it).
pub type LateOutput<T> = Arc<dyn Fn(usize) -> Result<LateHandler<T>, OperatorError> + Send + Sync>;

/// One merge subtask's handler of partials dropped as late.
pub type LatePartialHandler = Box<dyn LatePartialRecords>;

/// Builds each merge subtask's handler of late partials (by subtask index), in `open`.
pub type LatePartials =
    Arc<dyn Fn(usize) -> Result<LatePartialHandler, OperatorError> + Send + Sync>;
