//! Incremental aggregation (Flink's `AggregateFunction`): create an accumulator, add inputs,
//! merge accumulators (the local-global mode merges partial ones), read the result.

use crate::state::StateValue;

/// An incremental aggregation over records of type `In`.
pub trait AggregateFunction<In>: Clone + Send + Sync + 'static {
    /// The running state of one window and key: kept in the window operator's state and
    /// checkpointed with its [`Codec`](crate::codec::Codec).
    type Acc: StateValue;
    /// The result of a window.
    type Out: Send + 'static;

    /// A fresh accumulator.
    fn create(&self) -> Self::Acc;
    /// Adds one input.
    fn add(&self, acc: &mut Self::Acc, input: &In);
    /// Merges another accumulator of the same window into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc);
    /// The window's result.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

/// Counts records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<In> AggregateFunction<In> for Count {
    type Acc = u64;
    type Out = u64;

    fn create(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, acc: &mut u64, _input: &In) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: &u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}
