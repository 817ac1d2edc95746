//! Stateless one-input operators: `map`, `filter`, `flat_map`.

use super::{Collector, Operator};
use crate::error::OperatorError;

/// Applies a function to every record.
#[derive(Debug, Clone)]
pub struct Map<F>(pub F);

impl<In, Out, F> Operator<In, Out> for Map<F>
where
    F: FnMut(In) -> Out + Send + 'static,
{
    #[inline]
    fn process(&mut self, record: In, out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        out.collect((self.0)(record));
        Ok(())
    }
}

/// Keeps the records for which the predicate holds.
#[derive(Debug, Clone)]
pub struct Filter<F>(pub F);

impl<T, F> Operator<T, T> for Filter<F>
where
    F: FnMut(&T) -> bool + Send + 'static,
{
    #[inline]
    fn process(&mut self, record: T, out: &mut Collector<'_, T>) -> Result<(), OperatorError> {
        if (self.0)(&record) {
            out.collect(record);
        }
        Ok(())
    }
}

/// Emits any number of records for each record.
#[derive(Debug, Clone)]
pub struct FlatMap<F>(pub F);

impl<In, Out, F> Operator<In, Out> for FlatMap<F>
where
    F: FnMut(In, &mut Collector<'_, Out>) -> Result<(), OperatorError> + Send + 'static,
{
    #[inline]
    fn process(&mut self, record: In, out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        (self.0)(record, out)
    }
}
