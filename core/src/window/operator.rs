//! The window operators: keyed (or global) aggregation, and the two steps of local-global
//! aggregation.

use std::hash::Hash;
use std::sync::Arc;

use super::state::{Placed, WindowState};
use super::{AggregateFunction, Window, WindowSpec};
use crate::codec::{Codec, DecodeError, Decoder, Encoder};
use crate::error::OperatorError;
use crate::metrics::TaskMetrics;
use crate::operator::{Collector, Operator, OperatorContext};
use crate::time::Watermark;

/// A window's result for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowResult<K, R> {
    /// The window.
    pub window: Window,
    /// The key (`()` for a global window).
    pub key: K,
    /// The aggregate.
    pub value: R,
}

impl<K: Codec, R: Codec> Codec for WindowResult<K, R> {
    fn encoded_len(&self) -> usize {
        self.window.encoded_len() + self.key.encoded_len() + self.value.encoded_len()
    }
    fn encode(&self, out: &mut Encoder<'_>) {
        self.window.encode(out);
        self.key.encode(out);
        self.value.encode(out);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            window: Window::decode(input)?,
            key: K::decode(input)?,
            value: R::decode(input)?,
        })
    }
}

impl Codec for () {
    fn encoded_len(&self) -> usize {
        0
    }
    fn encode(&self, _out: &mut Encoder<'_>) {}
    fn decode(_input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(())
    }
}

/// A pre-aggregated accumulator of one window and key from one subtask (local-global
/// aggregation), with the number of records in it (so that a partial the merge step must drop
/// is still accounted for, record by record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial<K, Acc> {
    /// The window.
    pub window: Window,
    /// The key (`()` for a global window).
    pub key: K,
    /// What the subtask accumulated for them.
    pub acc: Acc,
    /// Records aggregated into `acc`.
    pub records: u64,
}

impl<K: Codec, Acc: Codec> Codec for Partial<K, Acc> {
    fn encoded_len(&self) -> usize {
        16 + self.key.encoded_len() + self.acc.encoded_len() + 8
    }
    fn encode(&self, out: &mut Encoder<'_>) {
        self.window.encode(out);
        self.key.encode(out);
        self.acc.encode(out);
        out.put_u64(self.records);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            window: Window::decode(input)?,
            key: K::decode(input)?,
            acc: Acc::decode(input)?,
            records: input.take_u64()?,
        })
    }
}

/// One subtask's handler of records dropped as late: the record and its (latest) window. An
/// error (the record could not be written) fails the subtask: nothing late is lost silently.
pub type LateHandler<T> = Box<dyn FnMut(&T, Window) -> Result<(), OperatorError> + Send>;

/// Builds each subtask's late handler (by subtask index) in the operator's `open`, inside the
/// subtask's scope (a transactional writer created here registers with it).
pub type LateOutput<T> = Arc<dyn Fn(usize) -> Result<LateHandler<T>, OperatorError> + Send + Sync>;

/// One merge subtask's handler of partials dropped as late: the window and how many records
/// the partial held. An error fails the subtask.
pub type LatePartialHandler = Box<dyn FnMut(Window, u64) -> Result<(), OperatorError> + Send>;

/// Builds each merge subtask's handler of late partials (by subtask index), in `open`.
pub type LatePartials =
    Arc<dyn Fn(usize) -> Result<LatePartialHandler, OperatorError> + Send + Sync>;

/// What both window operators over raw records share: the key, the function, the window
/// spec, the late output and counter, and the window contents.
struct Windowing<T, K, A: AggregateFunction<T>, S> {
    key_of: Arc<dyn Fn(&T) -> K + Send + Sync>,
    function: A,
    spec: WindowSpec<T>,
    late: Option<LateHandler<T>>,
    metrics: Option<Arc<TaskMetrics>>,
    /// The current record's windows (reused).
    windows: Vec<Window>,
    state: WindowState<K, S>,
}

impl<T, K: Hash + Eq + Clone, A: AggregateFunction<T>, S> Windowing<T, K, A, S> {
    fn new(key_of: Arc<dyn Fn(&T) -> K + Send + Sync>, spec: WindowSpec<T>, function: A) -> Self {
        Self {
            key_of,
            function,
            state: WindowState::new(spec.allowed_lateness_ms),
            spec,
            late: None,
            metrics: None,
            windows: Vec::new(),
        }
    }

    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        self.late = self
            .spec
            .late
            .as_ref()
            .map(|f| f(context.subtask))
            .transpose()?;
        self.metrics = Some(Arc::clone(&context.metrics));
        Ok(())
    }

    /// Assigns `record`'s windows into `self.windows` and returns its key.
    #[inline]
    fn assign(&mut self, record: &T) -> K {
        self.windows.clear();
        self.spec
            .assigner
            .assign((self.spec.timestamp)(record), &mut self.windows);
        (self.key_of)(record)
    }

    /// `record` was late for all its windows.
    fn dropped(&mut self, record: &T) -> Result<(), OperatorError> {
        if let Some(metrics) = &self.metrics {
            metrics.late_records_dropped.add(1);
        }
        match (&mut self.late, self.windows.first()) {
            (Some(late), Some(window)) => late(record, *window),
            _ => Ok(()),
        }
    }
}

/// Declares a window operator over raw records: a newtype around [`Windowing`] with its
/// accumulator type, a `Debug` that shows the spec, and a constructor from key, spec, function.
macro_rules! window_operator {
    ($(#[$doc:meta])* $name:ident, $acc:ty) => {
        $(#[$doc])*
        pub struct $name<T, K, A: AggregateFunction<T>>(Windowing<T, K, A, $acc>);

        impl<T, K, A: AggregateFunction<T>> std::fmt::Debug for $name<T, K, A> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("spec", &self.0.spec)
                    .finish()
            }
        }

        impl<T, K: Hash + Eq + Clone, A: AggregateFunction<T>> $name<T, K, A> {
            /// Windows as `spec` says, keyed by `key_of`.
            pub fn new(
                key_of: Arc<dyn Fn(&T) -> K + Send + Sync>,
                spec: WindowSpec<T>,
                function: A,
            ) -> Self {
                Self(Windowing::new(key_of, spec, function))
            }
        }
    };
}

window_operator!(
    /// Aggregates records per window and key; fires on the watermark (Flink's `WindowOperator`
    /// with an `AggregateFunction` and the event-time trigger).
    WindowAggregate,
    A::Acc
);

window_operator!(
    /// The local step of local-global aggregation: pre-aggregates per window and key in each
    /// subtask and emits the partial accumulators (with their record counts) when the watermark
    /// reaches the window's end; a record within lateness for a window that already fired is
    /// emitted as a partial of its own.
    LocalPreAggregate,
    (A::Acc, u64)
);

impl<T, K, A> Operator<T, WindowResult<K, A::Out>> for WindowAggregate<T, K, A>
where
    T: Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    A: AggregateFunction<T>,
{
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        self.0.open(context)
    }

    #[inline]
    fn process(
        &mut self,
        record: T,
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        let w = &mut self.0;
        let key = w.assign(&record);
        let mut placed_any = false;
        for &window in &w.windows {
            let function = &w.function;
            match w.state.place(
                window,
                &key,
                || function.create(),
                |acc| function.add(acc, &record),
            ) {
                Placed::Late => {}
                Placed::Pending => placed_any = true,
                Placed::Refire => {
                    placed_any = true;
                    let acc = w.state.fired(window, &key).expect("just placed");
                    out.collect(WindowResult {
                        window,
                        key: key.clone(),
                        value: function.result(acc),
                    });
                }
            }
        }
        if !placed_any {
            w.dropped(&record)?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        let w = &mut self.0;
        let function = &w.function;
        w.state.advance(watermark.0, |window, key, acc| {
            out.collect(WindowResult {
                window,
                key: key.clone(),
                value: function.result(acc),
            });
        });
        Ok(())
    }
}

impl<T, K, A> Operator<T, Partial<K, A::Acc>> for LocalPreAggregate<T, K, A>
where
    T: Send + 'static,
    K: Hash + Eq + Clone + Send + 'static,
    A: AggregateFunction<T>,
{
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        self.0.open(context)
    }

    #[inline]
    fn process(
        &mut self,
        record: T,
        out: &mut Collector<'_, Partial<K, A::Acc>>,
    ) -> Result<(), OperatorError> {
        let w = &mut self.0;
        let key = w.assign(&record);
        let mut placed_any = false;
        for &window in &w.windows {
            if w.state.is_late(window) {
                continue;
            }
            placed_any = true;
            let function = &w.function;
            if window.max_timestamp() <= w.state.watermark() {
                // Fired already, within lateness: send this record's contribution alone.
                let mut acc = function.create();
                function.add(&mut acc, &record);
                out.collect(Partial {
                    window,
                    key: key.clone(),
                    acc,
                    records: 1,
                });
            } else {
                w.state.place(
                    window,
                    &key,
                    || (function.create(), 0),
                    |(acc, records)| {
                        function.add(acc, &record);
                        *records += 1;
                    },
                );
            }
        }
        if !placed_any {
            w.dropped(&record)?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Partial<K, A::Acc>>,
    ) -> Result<(), OperatorError> {
        self.0
            .state
            .advance(watermark.0, |window, key, (acc, records)| {
                out.collect(Partial {
                    window,
                    key: key.clone(),
                    acc: acc.clone(),
                    records: *records,
                });
            });
        Ok(())
    }
}

/// The global step of local-global aggregation: merges the partials of each window and key and
/// fires on the watermark. A partial for a fired window within lateness (a late record
/// upstream) merges in and fires the window again. A partial past lateness (its subtask was
/// idle while the others moved the watermark on) is dropped as late, its records counted in
/// `numLateRecordsDropped` and reported to the late-partials handler.
pub struct WindowMerge<T, K, A: AggregateFunction<T>> {
    function: A,
    state: WindowState<K, A::Acc>,
    late_partials: Option<LatePartials>,
    late: Option<LatePartialHandler>,
    metrics: Option<Arc<TaskMetrics>>,
    _records: std::marker::PhantomData<fn(T)>,
}

impl<T, K, A: AggregateFunction<T>> std::fmt::Debug for WindowMerge<T, K, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WindowMerge")
    }
}

impl<T, K: Hash + Eq + Clone, A: AggregateFunction<T>> WindowMerge<T, K, A> {
    /// Merges partials of `function`, keeping fired windows for `allowed_lateness_ms`.
    pub fn new(function: A, allowed_lateness_ms: i64, late_partials: Option<LatePartials>) -> Self {
        Self {
            function,
            state: WindowState::new(allowed_lateness_ms),
            late_partials,
            late: None,
            metrics: None,
            _records: std::marker::PhantomData,
        }
    }
}

impl<T, K, A> Operator<Partial<K, A::Acc>, WindowResult<K, A::Out>> for WindowMerge<T, K, A>
where
    T: 'static,
    K: Hash + Eq + Clone + Send + 'static,
    A: AggregateFunction<T>,
{
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        self.late = self
            .late_partials
            .as_ref()
            .map(|f| f(context.subtask))
            .transpose()?;
        self.metrics = Some(Arc::clone(&context.metrics));
        Ok(())
    }

    #[inline]
    fn process(
        &mut self,
        partial: Partial<K, A::Acc>,
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        let function = &self.function;
        let window = partial.window;
        let placed = self.state.place(
            window,
            &partial.key,
            || function.create(),
            |acc| function.merge(acc, &partial.acc),
        );
        match placed {
            Placed::Pending => Ok(()),
            Placed::Refire => {
                let acc = self.state.fired(window, &partial.key).expect("just placed");
                out.collect(WindowResult {
                    window,
                    value: self.function.result(acc),
                    key: partial.key,
                });
                Ok(())
            }
            Placed::Late => {
                if let Some(metrics) = &self.metrics {
                    metrics.late_records_dropped.add(partial.records);
                }
                match &mut self.late {
                    Some(late) => late(window, partial.records),
                    None => Ok(()),
                }
            }
        }
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        let function = &self.function;
        self.state.advance(watermark.0, |window, key, acc| {
            out.collect(WindowResult {
                window,
                key: key.clone(),
                value: function.result(acc),
            });
        });
        Ok(())
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::error::TaskError;
    use crate::operator::Output;
    use crate::time::{LatencyMarker, WatermarkStatus};
    use crate::window::Count;

    /// Collects what an operator emits.
    struct Sink<T>(Vec<T>);

    impl<T: Send> Output<T> for Sink<T> {
        fn push(&mut self, record: T) -> Result<(), TaskError> {
            self.0.push(record);
            Ok(())
        }
        fn watermark(&mut self, _: Watermark) -> Result<(), TaskError> {
            Ok(())
        }
        fn status(&mut self, _: WatermarkStatus) -> Result<(), TaskError> {
            Ok(())
        }
        fn latency_marker(&mut self, _: LatencyMarker) -> Result<(), TaskError> {
            Ok(())
        }
        fn flush(&mut self) -> Result<(), TaskError> {
            Ok(())
        }
        fn end_of_input(&mut self) -> Result<(), TaskError> {
            Ok(())
        }
        fn barrier(
            &mut self,
            _: crate::net::CheckpointBarrier,
            _: &mut crate::checkpoint::TaskSnapshot,
        ) -> Result<(), TaskError> {
            Ok(())
        }
        fn checkpoint_complete(
            &mut self,
            _: crate::checkpoint::CheckpointId,
        ) -> Result<(), TaskError> {
            Ok(())
        }
    }

    #[test]
    fn a_partial_past_lateness_is_dropped_and_counted_not_an_error() {
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&dropped);
        let handler: LatePartials = Arc::new(move |_| {
            let seen = Arc::clone(&seen);
            Ok(Box::new(move |window, records| {
                seen.lock().unwrap().push((window, records));
                Ok(())
            }))
        });
        let mut merge = WindowMerge::<u64, (), Count>::new(Count, 0, Some(handler));
        let metrics = Arc::new(TaskMetrics::default());
        merge
            .open(&OperatorContext::new(0, Arc::clone(&metrics)))
            .unwrap();
        let mut sink = Sink(Vec::new());
        let window = Window { start: 0, end: 10 };
        let partial = |records| Partial {
            window,
            key: (),
            acc: records,
            records,
        };
        merge
            .process(partial(2), &mut Collector::new(&mut sink))
            .unwrap();
        merge
            .on_watermark(Watermark(9), &mut Collector::new(&mut sink))
            .unwrap();
        assert_eq!(sink.0.len(), 1, "the window fired with its partial");
        // Its subtask was idle while the watermark moved on: this partial is past lateness.
        merge
            .process(partial(3), &mut Collector::new(&mut sink))
            .unwrap();
        assert_eq!(sink.0.len(), 1, "no second result");
        assert_eq!(metrics.late_records_dropped.get(), 3);
        assert_eq!(*dropped.lock().unwrap(), vec![(window, 3)]);
    }
}
