//! The window operators: keyed (or global) aggregation, and the two steps of local-global
//! aggregation.

use std::sync::Arc;

use super::minibatch::MiniBatch;
use super::state::{ByKey, ByKeyAndStart, Placed, Route, WindowState};
use super::{AggregateFunction, LateHandler, LatePartialHandler, LatePartials, Window, WindowSpec};
use crate::checkpoint::SnapshotContext;
use crate::codec::{Codec, DecodeError, Decoder, Encoder};
use crate::error::OperatorError;
use crate::metrics::TaskMetrics;
use crate::operator::{Collector, Operator, OperatorContext, layout_of};
use crate::state::{StateKey, StateValue};
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

/// What [`Windowing::route`] hands each window of a record to: the function, the window
/// state, the batch's accumulators, the window, the key and where the record goes.
trait Placement<A, K, S>:
    FnMut(&A, &mut WindowState<K, S, ByKey>, &mut MiniBatch<K, S>, Window, &K, Placed)
{
}

impl<A, K, S, F> Placement<A, K, S> for F where
    F: FnMut(&A, &mut WindowState<K, S, ByKey>, &mut MiniBatch<K, S>, Window, &K, Placed)
{
}

/// A [`Placement`] of one of a batch's records, which it is handed first
/// ([`Windowing::combine`]).
trait RecordPlacement<T, A, K, S>:
    FnMut(&T, &A, &mut WindowState<K, S, ByKey>, &mut MiniBatch<K, S>, Window, &K, Placed)
{
}

impl<T, A, K, S, F> RecordPlacement<T, A, K, S> for F where
    F: FnMut(&T, &A, &mut WindowState<K, S, ByKey>, &mut MiniBatch<K, S>, Window, &K, Placed)
{
}

/// What both window operators over raw records share: the key, the function, the window
/// spec, the late output and counter, and the window contents.
struct Windowing<T, K, A: AggregateFunction<T>, S> {
    key_of: Arc<dyn Fn(&T) -> K + Send + Sync>,
    function: A,
    spec: WindowSpec<T>,
    late: Option<LateHandler<T>>,
    metrics: Option<Arc<TaskMetrics>>,
    /// The current record's windows under a sliding assigner (reused).
    windows: Vec<Window>,
    /// The window a tumbling assigner gave last ([`WindowAssigner::tumbling_near`]).
    recent: Option<Window>,
    state: WindowState<K, S, ByKey>,
    /// Accumulators of windows that have not fired, taken out of `state` by the batches since
    /// the state was last read ([`Windowing::put_back_taken`]).
    batch: MiniBatch<K, S>,
    /// A fresh accumulator of the operator's kind (what a take leaves in the state).
    fresh: fn(&A) -> S,
    /// Results fired per turn ([`OperatorContext::firing_budget`]).
    budget: Option<usize>,
}

impl<T, K: StateKey, A: AggregateFunction<T>, S: StateValue> Windowing<T, K, A, S> {
    fn new(
        key_of: Arc<dyn Fn(&T) -> K + Send + Sync>,
        spec: WindowSpec<T>,
        function: A,
        fresh: fn(&A) -> S,
    ) -> Self {
        Self {
            fresh,
            key_of,
            function,
            state: WindowState::new(spec.allowed_lateness_ms),
            spec,
            late: None,
            metrics: None,
            windows: Vec::new(),
            recent: None,
            batch: MiniBatch::default(),
            budget: None,
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
        self.budget = context.firing_budget;
        Ok(())
    }

    /// Whether `record` joins a window the watermark reached but not past allowed lateness
    /// ([`Operator::waits_for_watermark`]): it fires that window (again). Its other windows
    /// are either pending (most records a little behind the watermark join a window still
    /// open) or past lateness (the record is late for them whenever it comes).
    #[inline]
    fn may_fire_a_window(&self, record: &T) -> bool {
        let ts = (self.spec.timestamp)(record);
        self.spec
            .assigner
            .windows(ts)
            .any(|window| self.state.may_fire_again(window))
    }

    /// The watermark advanced: the scratch goes back if it fires a window, which then fire in
    /// turns ([`Operator::resume`]).
    #[inline]
    fn advance(&mut self, watermark: Watermark) {
        self.put_back_before(watermark);
        self.state.advance(watermark.0);
    }

    /// Sends `record` to its windows: `each(function, state, batch, window, key, placed)` for
    /// every window it is not late for (with where it goes); a record late for all of them is
    /// counted and reported as dropped. A tumbling window is found without the list of
    /// windows a sliding assigner fills.
    #[inline]
    fn route(&mut self, record: &T, each: impl Placement<A, K, S>) -> Result<(), OperatorError> {
        let ts = (self.spec.timestamp)(record);
        let key = (self.key_of)(record);
        self.route_at(record, ts, key, each)
    }

    /// [`route`](Self::route) of a record whose timestamp and key the caller took.
    #[inline]
    fn route_at(
        &mut self,
        record: &T,
        ts: i64,
        key: K,
        mut each: impl Placement<A, K, S>,
    ) -> Result<(), OperatorError> {
        if let Some(window) = self.spec.assigner.tumbling_near(ts, &mut self.recent) {
            if !self.offer(window, &key, &mut each) {
                return self.dropped(record, Some(window));
            }
            return Ok(());
        }
        self.windows.clear();
        self.spec.assigner.assign(ts, &mut self.windows);
        let mut placed_any = false;
        for i in 0..self.windows.len() {
            placed_any |= self.offer(self.windows[i], &key, &mut each);
        }
        if placed_any {
            return Ok(());
        }
        let latest = self.windows.first().copied();
        self.dropped(record, latest)
    }

    /// Puts the accumulators the batches took back into the state ([`put_back`]) before
    /// anything reads it: a snapshot, a record processed alone, a watermark that fires a window
    /// ([`put_back_before`](Self::put_back_before)). Between those the accumulators stay out of
    /// the state across input batches (each batch's first placement of a pair the scratch
    /// holds finds it there), so a stretch of batches between two watermarks costs one take and
    /// one put-back per (window, key), not one per batch.
    #[inline]
    fn put_back_taken(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let (function, fresh) = (&self.function, self.fresh);
        put_back(&mut self.state, &mut self.batch, || fresh(function));
    }

    /// [`put_back_taken`](Self::put_back_taken) if advancing to `watermark` fires a window: one
    /// that fires none reads no pending window, and the scratch holds only pending windows'
    /// accumulators.
    #[inline]
    fn put_back_before(&mut self, watermark: Watermark) {
        if self.state.fires_at(watermark.0) {
            self.put_back_taken();
        }
    }

    /// Places the records of a batch, in order: `place(record, function, state, batch, window,
    /// key, placed)` for each window of each record ([`route`](Self::route)); then, if the
    /// scratch holds more than it keeps past a batch, puts it back.
    #[inline]
    fn combine(
        &mut self,
        records: &[T],
        mut place: impl RecordPlacement<T, A, K, S>,
    ) -> Result<(), OperatorError> {
        // The extractors held here, out of `self`: their pointers are loaded once per batch,
        // not twice per record behind the `&mut self` of every placement.
        let (timestamp, key_of) = (Arc::clone(&self.spec.timestamp), Arc::clone(&self.key_of));
        let (timestamp, key_of) = (&*timestamp, &*key_of);
        if self.spec.assigner.is_tumbling() {
            self.combine_runs(records, timestamp, key_of, &mut place)?;
        } else {
            for record in records {
                let (ts, key) = (timestamp(record), key_of(record));
                self.route_at(
                    record,
                    ts,
                    key,
                    |function, state, batch, window, key, placed| {
                        place(record, function, state, batch, window, key, placed)
                    },
                )?;
            }
        }
        if self.batch.is_over_kept() {
            self.put_back_taken();
        }
        Ok(())
    }

    /// [`combine`](Self::combine) under a tumbling assigner: consecutive records in one window
    /// (most of them: records arrive roughly in event-time order) share its assignment and
    /// where they go, decided at the first of them. Exact: within a batch the watermark does not
    /// move, so where a window's records go does not change.
    #[inline]
    fn combine_runs(
        &mut self,
        records: &[T],
        timestamp: &(dyn Fn(&T) -> i64 + Send + Sync),
        key_of: &(dyn Fn(&T) -> K + Send + Sync),
        place: &mut impl RecordPlacement<T, A, K, S>,
    ) -> Result<(), OperatorError> {
        let mut run: Option<(Window, Option<Placed>)> = None;
        for record in records {
            let ts = timestamp(record);
            let (window, placed) = match run {
                Some((window, placed)) if window.holds(ts) => (window, placed),
                _ => {
                    let window = self
                        .spec
                        .assigner
                        .tumbling_near(ts, &mut self.recent)
                        .expect("a tumbling assigner");
                    let placed = self.state.placement(window);
                    run = Some((window, placed));
                    (window, placed)
                }
            };
            match placed {
                Some(placed) => place(
                    record,
                    &self.function,
                    &mut self.state,
                    &mut self.batch,
                    window,
                    &key_of(record),
                    placed,
                ),
                None => self.dropped(record, Some(window))?,
            }
        }
        Ok(())
    }

    /// Hands (`window`, `key`) to `each` with where it goes, unless the window is past allowed
    /// lateness; whether it was handed.
    #[inline(always)]
    fn offer(&mut self, window: Window, key: &K, each: &mut impl Placement<A, K, S>) -> bool {
        let Some(placed) = self.state.placement(window) else {
            return false;
        };
        each(
            &self.function,
            &mut self.state,
            &mut self.batch,
            window,
            key,
            placed,
        );
        true
    }

    /// `record` was late for all its windows, of which `latest` starts last (`None`: it has
    /// none, in a gap between hopping windows: counted, not reported).
    fn dropped(&mut self, record: &T, latest: Option<Window>) -> Result<(), OperatorError> {
        if let Some(metrics) = &self.metrics {
            metrics.late_records_dropped.add(1);
        }
        match (&mut self.late, latest) {
            (Some(late), Some(window)) => late.late(record, window),
            _ => Ok(()),
        }
    }

    /// The input ended: the late handler writes out what it buffered.
    fn flush_late(&mut self) -> Result<(), OperatorError> {
        self.late.as_mut().map_or(Ok(()), |late| late.flush())
    }
}

/// The accumulator of (`window`, `key`), a window that has not fired, taken out of `state` for
/// the batch ([`MiniBatch`]): the stored one, or a new one made with `create`; `create()` is
/// left in its place until [`put_back`]. One state lookup (two for a new pair, which gets its
/// sequence number now, as record by record).
fn take<K: StateKey, S: StateValue>(
    state: &mut WindowState<K, S, ByKey>,
    window: Window,
    key: &K,
    create: impl Fn() -> S,
) -> S {
    state
        .place(window, key, &create, |acc, placed| {
            debug_assert_eq!(
                placed,
                Placed::Pending,
                "the watermark stays within a batch"
            );
            std::mem::replace(acc, create())
        })
        .expect("a window that has not fired is not late")
}

/// Puts the batch's accumulators back into `state`, in the order of their first records: the
/// stored accumulators again, with the batch's records added. One lookup per (window, key).
fn put_back<K: StateKey, S: StateValue>(
    state: &mut WindowState<K, S, ByKey>,
    batch: &mut MiniBatch<K, S>,
    create: impl Fn() -> S,
) {
    batch.drain(|window, key, acc| {
        let placed = state.place(window, key, &create, |stored, _| *stored = acc);
        debug_assert!(placed.is_some(), "the watermark stays within a batch");
    });
}

/// Adds `record` to (`window`, `key`) now; a window that fired already (within lateness) fires
/// again with it.
#[inline]
fn add_now<T, K: StateKey, A: AggregateFunction<T>>(
    function: &A,
    state: &mut WindowState<K, A::Acc, ByKey>,
    window: Window,
    key: &K,
    record: &T,
    out: &mut Collector<'_, WindowResult<K, A::Out>>,
) {
    let refired = state.place(
        window,
        key,
        || function.create(),
        |acc, placed| {
            function.add(acc, record);
            (placed == Placed::Refire).then(|| function.result(acc))
        },
    );
    if let Some(Some(value)) = refired {
        out.collect(WindowResult {
            window,
            key: key.clone(),
            value,
        });
    }
}

/// Sends the local step's contribution of one record alone (to a window that fired already,
/// within allowed lateness): the rare path, kept out of the per-record loop.
#[cold]
#[inline(never)]
fn send_alone<T, K: Clone, A: AggregateFunction<T>>(
    out: &mut Collector<'_, Partial<K, A::Acc>>,
    function: &A,
    window: Window,
    key: &K,
    record: &T,
) {
    let mut acc = function.create();
    function.add(&mut acc, record);
    out.collect(Partial {
        window,
        key: key.clone(),
        acc,
        records: 1,
    });
}

/// One turn of firing (at most `budget` of) `state`'s due windows as results of `function`
/// ([`WindowState::fire_due`]): the keyed (or global) window and the merge step.
fn fire_results<T, K: StateKey, A: AggregateFunction<T>, R: Route>(
    state: &mut WindowState<K, A::Acc, R>,
    budget: Option<usize>,
    function: &A,
    out: &mut Collector<'_, WindowResult<K, A::Out>>,
) {
    state.fire_due(budget, |window, key, acc| {
        out.collect(WindowResult {
            window,
            key: key.clone(),
            value: function.result(acc),
        });
    });
}

/// Adds `record` to a local partial and counts it.
#[inline]
fn count_in<T, A: AggregateFunction<T>>(function: &A, partial: &mut (A::Acc, u64), record: &T) {
    function.add(&mut partial.0, record);
    partial.1 += 1;
}

/// Declares a window operator over raw records: a newtype around [`Windowing`] with its
/// accumulator type and how to make a fresh one, a `Debug` that shows the spec, and a
/// constructor from key, spec, function.
macro_rules! window_operator {
    ($(#[$doc:meta])* $name:ident, $acc:ty, $fresh:expr) => {
        $(#[$doc])*
        pub struct $name<T, K, A: AggregateFunction<T>>(Windowing<T, K, A, $acc>);

        impl<T, K, A: AggregateFunction<T>> std::fmt::Debug for $name<T, K, A> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("spec", &self.0.spec)
                    .finish()
            }
        }

        impl<T, K: StateKey, A: AggregateFunction<T>> $name<T, K, A> {
            /// Windows as `spec` says, keyed by `key_of`.
            pub fn new(
                key_of: Arc<dyn Fn(&T) -> K + Send + Sync>,
                spec: WindowSpec<T>,
                function: A,
            ) -> Self {
                Self(Windowing::new(key_of, spec, function, $fresh))
            }
        }
    };
}

/// The batch paths of a window operator over raw records, in its `Operator` impl: both its
/// own batch and a split's lent one go to its inherent `combine(&[T], out)`, which reads the
/// records in place (none is copied).
macro_rules! batch_paths {
    ($out:ty) => {
        fn process_batch(
            &mut self,
            records: &mut Vec<T>,
            out: &mut Collector<'_, $out>,
        ) -> Result<(), OperatorError> {
            let outcome = self.combine(records, out);
            records.clear();
            outcome
        }

        fn process_shared(
            &mut self,
            records: &[T],
            out: &mut Collector<'_, $out>,
        ) -> Result<(), OperatorError>
        where
            T: Clone,
        {
            self.combine(records, out)
        }
    };
}

window_operator!(
    /// Aggregates records per window and key; fires on the watermark (Flink's `WindowOperator`
    /// with an `AggregateFunction` and the event-time trigger).
    WindowAggregate,
    A::Acc,
    A::create
);

window_operator!(
    /// The local step of local-global aggregation: pre-aggregates per window and key in each
    /// subtask and emits the partial accumulators (with their record counts) when the watermark
    /// reaches the window's end; a record within lateness for a window that already fired is
    /// emitted as a partial of its own.
    LocalPreAggregate,
    (A::Acc, u64),
    |function| (function.create(), 0)
);

impl<T: Send + 'static, K: StateKey, A: AggregateFunction<T>> WindowAggregate<T, K, A> {
    /// Combines the batch ([`MiniBatch`]): records for windows that have not fired are added
    /// to their (window, key)'s accumulator, taken out of the state at its first record and
    /// put back before the state is next read ([`Windowing::put_back_taken`]); a record for a
    /// fired window within lateness goes in at once and fires it again, after the
    /// accumulators taken so far were put back.
    /// Late records are counted and reported in input order. What is emitted and kept is what
    /// [`process`](Operator::process) record by record emits and keeps; after an error (a late
    /// record could not be written) the state is the failed attempt's, discarded with it.
    fn combine(
        &mut self,
        records: &[T],
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        let w = &mut self.0;
        w.combine(
            records,
            // Inlined into both of `combine`'s loops: it runs once per record.
            #[inline(always)]
            |record, function, state, batch, window, key, placed| {
                if placed == Placed::Pending {
                    let create = || function.create();
                    let acc = batch.acc(window, key, || take(state, window, key, create));
                    return function.add(acc, record);
                }
                if !batch.is_empty() {
                    put_back(state, batch, || function.create());
                }
                add_now(function, state, window, key, record, out);
            },
        )
    }
}

impl<T, K, A> Operator<T, WindowResult<K, A::Out>> for WindowAggregate<T, K, A>
where
    T: Send + 'static,
    K: StateKey,
    A: AggregateFunction<T>,
{
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        self.0.open(context)?;
        let state = &mut self.0.state;
        state.partition(
            &layout_of(context)?,
            context.subtask,
            context.state_backend.as_ref(),
        )?;
        if let Some(restore) = &context.restore {
            state.restore_keyed(restore, context.subtask, context.parallelism)?;
        }
        Ok(())
    }

    #[inline]
    fn process(
        &mut self,
        record: T,
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        self.0.put_back_taken();
        self.0.route(&record, |function, state, _, window, key, _| {
            add_now(function, state, window, key, &record, out);
        })
    }

    batch_paths!(WindowResult<K, A::Out>);

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        self.0.advance(watermark);
        self.resume(out)
    }

    fn firing_pending(&self) -> bool {
        self.0.state.is_firing()
    }

    fn waits_for_watermark(&self, record: &T) -> bool {
        self.0.may_fire_a_window(record)
    }

    fn resume(
        &mut self,
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        let w = &mut self.0;
        fire_results(&mut w.state, w.budget, &w.function, out);
        Ok(())
    }

    fn on_end_of_input(
        &mut self,
        _out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        self.0.flush_late()
    }

    fn snapshot_state(&mut self, ctx: &mut SnapshotContext<'_>) -> Result<(), OperatorError> {
        self.0.put_back_taken();
        let (clock, keyed) = self.0.state.snapshot_keyed(ctx.key_groups());
        ctx.set_operator_state(clock);
        ctx.set_keyed_snapshot(keyed);
        Ok(())
    }
}

impl<T: Send + 'static, K: StateKey, A: AggregateFunction<T>> LocalPreAggregate<T, K, A> {
    /// Combines the batch ([`MiniBatch`]): records for windows that have not fired are added
    /// to their (window, key)'s partial, taken out of the state at its first record and put
    /// back before the state is next read ([`Windowing::put_back_taken`]); a record for a fired
    /// window within lateness is sent alone at once, late records are counted and reported,
    /// both in input order. What is emitted and kept is what
    /// [`process`](Operator::process) record by record emits and keeps; after an error (a late
    /// record could not be written) the state is the failed attempt's, discarded with it.
    fn combine(
        &mut self,
        records: &[T],
        out: &mut Collector<'_, Partial<K, A::Acc>>,
    ) -> Result<(), OperatorError> {
        let w = &mut self.0;
        w.combine(
            records,
            // Inlined into both of `combine`'s loops: it runs once per record.
            #[inline(always)]
            |record, function, state, batch, window, key, placed| {
                if placed == Placed::Refire {
                    return send_alone(out, function, window, key, record);
                }
                let create = || (function.create(), 0);
                let partial = batch.acc(window, key, || take(state, window, key, create));
                count_in(function, partial, record);
            },
        )
    }
}

impl<T, K, A> Operator<T, Partial<K, A::Acc>> for LocalPreAggregate<T, K, A>
where
    T: Send + 'static,
    K: StateKey,
    A: AggregateFunction<T>,
{
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        self.0.open(context)?;
        if let Some(restore) = &context.restore {
            let function = &self.0.function;
            self.0.state.restore_local(
                restore,
                context.subtask,
                context.parallelism,
                |(acc, records), (other, more)| {
                    function.merge(acc, &other);
                    *records += more;
                },
            )?;
        }
        Ok(())
    }

    #[inline]
    fn process(
        &mut self,
        record: T,
        out: &mut Collector<'_, Partial<K, A::Acc>>,
    ) -> Result<(), OperatorError> {
        self.0.put_back_taken();
        self.0
            .route(&record, |function, state, _, window, key, placed| {
                if placed == Placed::Refire {
                    return send_alone(out, function, window, key, &record);
                }
                state.place(
                    window,
                    key,
                    || (function.create(), 0),
                    |partial, _| count_in(function, partial, &record),
                );
            })
    }

    batch_paths!(Partial<K, A::Acc>);

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Partial<K, A::Acc>>,
    ) -> Result<(), OperatorError> {
        self.0.advance(watermark);
        self.resume(out)
    }

    fn firing_pending(&self) -> bool {
        self.0.state.is_firing()
    }

    fn waits_for_watermark(&self, record: &T) -> bool {
        self.0.may_fire_a_window(record)
    }

    fn resume(&mut self, out: &mut Collector<'_, Partial<K, A::Acc>>) -> Result<(), OperatorError> {
        let w = &mut self.0;
        w.state.fire_due(w.budget, |window, key, (acc, records)| {
            out.collect(Partial {
                window,
                key: key.clone(),
                acc: acc.clone(),
                records: *records,
            });
        });
        Ok(())
    }

    fn on_end_of_input(
        &mut self,
        _out: &mut Collector<'_, Partial<K, A::Acc>>,
    ) -> Result<(), OperatorError> {
        self.0.flush_late()
    }

    fn snapshot_state(&mut self, ctx: &mut SnapshotContext<'_>) -> Result<(), OperatorError> {
        self.0.put_back_taken();
        ctx.set_operator_state(self.0.state.write_local());
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
    state: WindowState<K, A::Acc, ByKeyAndStart>,
    late_partials: Option<LatePartials>,
    late: Option<LatePartialHandler>,
    metrics: Option<Arc<TaskMetrics>>,
    /// Results fired per turn ([`OperatorContext::firing_budget`]).
    budget: Option<usize>,
    _records: std::marker::PhantomData<fn(T)>,
}

impl<T, K, A: AggregateFunction<T>> std::fmt::Debug for WindowMerge<T, K, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WindowMerge")
    }
}

impl<T, K: StateKey, A: AggregateFunction<T>> WindowMerge<T, K, A> {
    /// Merges partials of `function`, keeping fired windows for `allowed_lateness_ms`.
    pub fn new(function: A, allowed_lateness_ms: i64, late_partials: Option<LatePartials>) -> Self {
        Self {
            function,
            state: WindowState::new(allowed_lateness_ms),
            late_partials,
            late: None,
            metrics: None,
            budget: None,
            _records: std::marker::PhantomData,
        }
    }
}

impl<T, K, A> Operator<Partial<K, A::Acc>, WindowResult<K, A::Out>> for WindowMerge<T, K, A>
where
    T: 'static,
    K: StateKey,
    A: AggregateFunction<T>,
{
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        self.late = self
            .late_partials
            .as_ref()
            .map(|f| f(context.subtask))
            .transpose()?;
        self.metrics = Some(Arc::clone(&context.metrics));
        self.budget = context.firing_budget;
        self.state.partition(
            &layout_of(context)?,
            context.subtask,
            context.state_backend.as_ref(),
        )?;
        if let Some(restore) = &context.restore {
            self.state
                .restore_keyed(restore, context.subtask, context.parallelism)?;
        }
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
            |acc, placed| {
                function.merge(acc, &partial.acc);
                (placed == Placed::Refire).then(|| function.result(acc))
            },
        );
        match placed {
            Some(None) => Ok(()),
            Some(Some(value)) => {
                out.collect(WindowResult {
                    window,
                    value,
                    key: partial.key,
                });
                Ok(())
            }
            None => {
                if let Some(metrics) = &self.metrics {
                    metrics.late_records_dropped.add(partial.records);
                }
                match &mut self.late {
                    Some(late) => late.late(window, partial.records),
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
        self.state.advance(watermark.0);
        self.resume(out)
    }

    fn firing_pending(&self) -> bool {
        self.state.is_firing()
    }

    fn waits_for_watermark(&self, partial: &Partial<K, A::Acc>) -> bool {
        self.state.may_fire_again(partial.window)
    }

    fn resume(
        &mut self,
        out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        fire_results(&mut self.state, self.budget, &self.function, out);
        Ok(())
    }

    fn on_end_of_input(
        &mut self,
        _out: &mut Collector<'_, WindowResult<K, A::Out>>,
    ) -> Result<(), OperatorError> {
        self.late.as_mut().map_or(Ok(()), |late| late.flush())
    }

    fn snapshot_state(&mut self, ctx: &mut SnapshotContext<'_>) -> Result<(), OperatorError> {
        let (clock, keyed) = self.state.snapshot_keyed(ctx.key_groups());
        ctx.set_operator_state(clock);
        ctx.set_keyed_snapshot(keyed);
        Ok(())
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::checkpoint::{OperatorSnapshot, RestoreContext};
    use crate::keyed::{KeyGroups, hash_key};
    use crate::operator::testing::{SharedOutput, VecOutput, context, restore_from, snapshot};
    use crate::operator::{OperatorNode, Origin, Output};
    use crate::window::{Count, LateOutput, LatePartialRecords, LateRecords, WindowAssigner};

    /// A record `(key, timestamp)` or a watermark.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        Record(u64, i64),
        Watermark(i64),
    }

    /// Records of 5 keys in sliding windows, out of order, with watermarks that make some of
    /// them late for every window, some late but within lateness (the window fires again).
    fn events() -> Vec<Event> {
        let mut events = Vec::new();
        let mut state = 17u64;
        for i in 0..400i64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let jitter = (state >> 33) as i64 % 60;
            events.push(Event::Record(state >> 40 & 7, i * 5 - jitter));
            if i % 25 == 24 {
                events.push(Event::Watermark(i * 5 - 30));
            }
        }
        events.push(Event::Watermark(i64::MAX));
        events
    }

    fn spec() -> WindowSpec<(u64, i64)> {
        WindowSpec {
            assigner: WindowAssigner::sliding(40, 20),
            allowed_lateness_ms: 15,
            timestamp: Arc::new(|r: &(u64, i64)| r.1),
            late: None,
            late_partials: None,
        }
    }

    type Result = WindowResult<u64, u64>;
    type Keyed = WindowAggregate<(u64, i64), u64, Count>;

    fn keyed() -> Keyed {
        WindowAggregate::new(Arc::new(|r: &(u64, i64)| r.0), spec(), Count)
    }

    fn feed<Out: Send>(
        op: &mut impl Operator<(u64, i64), Out>,
        events: &[Event],
        out: &mut VecOutput<Out>,
    ) {
        for event in events {
            match *event {
                Event::Record(key, ts) => op.process((key, ts), &mut out.collector()).unwrap(),
                Event::Watermark(w) => op.on_watermark(Watermark(w), &mut out.collector()).unwrap(),
            }
        }
    }

    fn uninterrupted() -> Vec<Result> {
        let mut op = keyed();
        op.open(&context(0, 1, None)).unwrap();
        let mut out = VecOutput::new();
        feed(&mut op, &events(), &mut out);
        out.0
    }

    #[test]
    fn a_restored_keyed_window_continues_exactly_as_an_uninterrupted_one() {
        let events = events();
        let reference = uninterrupted();
        assert!(reference.len() > 100, "the job fires windows");
        for cut in (0..events.len()).step_by(37) {
            let mut before = keyed();
            let ctx = context(0, 1, None);
            before.open(&ctx).unwrap();
            let mut out = VecOutput::new();
            feed(&mut before, &events[..cut], &mut out);
            let taken = snapshot(&mut before, &ctx);
            // What happens after the barrier is lost with the failed attempt.
            feed(&mut before, &events[cut..], &mut VecOutput::new());
            let mut after = keyed();
            after
                .open(&context(0, 1, Some(restore_from(&[taken], 0..128))))
                .unwrap();
            feed(&mut after, &events[cut..], &mut out);
            assert_eq!(out.0, reference, "cut at event {cut}");
        }
    }

    /// The events of the keys subtask `subtask` of `layout` owns (and every watermark).
    fn owned(events: &[Event], layout: &KeyGroups, subtask: usize) -> Vec<Event> {
        events
            .iter()
            .copied()
            .filter(|e| match e {
                Event::Record(key, _) => layout.subtask_of_hash(hash_key(key)) == subtask,
                Event::Watermark(_) => true,
            })
            .collect()
    }

    /// Runs `events` on `from` subtasks, snapshots at `cut`, restores on `to` subtasks and
    /// runs the rest: every result, sorted.
    fn rescaled(from: usize, to: usize, cut: usize) -> Vec<Result> {
        let events = events();
        let mut results = Vec::new();
        let old = KeyGroups::new(128, from).unwrap();
        let mut snapshots: Vec<OperatorSnapshot> = Vec::new();
        for subtask in 0..from {
            let mut op = keyed();
            let ctx = context(subtask, from, None);
            op.open(&ctx).unwrap();
            let mut out = VecOutput::new();
            feed(&mut op, &owned(&events[..cut], &old, subtask), &mut out);
            results.extend(out.0);
            snapshots.push(snapshot(&mut op, &ctx));
        }
        let new = KeyGroups::new(128, to).unwrap();
        for subtask in 0..to {
            let restore = restore_from(&snapshots, new.range_of(subtask));
            let mut op = keyed();
            op.open(&context(subtask, to, Some(restore))).unwrap();
            let mut out = VecOutput::new();
            feed(&mut op, &owned(&events[cut..], &new, subtask), &mut out);
            results.extend(out.0);
        }
        results.sort_by_key(|r| (r.window, r.key, r.value));
        results
    }

    #[test]
    fn a_keyed_window_restored_at_another_parallelism_gives_the_same_results() {
        let mut reference = uninterrupted();
        reference.sort_by_key(|r| (r.window, r.key, r.value));
        for cut in [0, 150, 333] {
            assert_eq!(rescaled(1, 3, cut), reference, "1 → 3, cut at {cut}");
            assert_eq!(rescaled(3, 2, cut), reference, "3 → 2, cut at {cut}");
        }
    }

    type Local = LocalPreAggregate<(u64, i64), u64, Count>;

    /// The window results of local partials merged by one merge step.
    fn merged(partials: Vec<Partial<u64, u64>>) -> Vec<Result> {
        let mut merge = WindowMerge::<(u64, i64), u64, Count>::new(Count, 15, None);
        merge.open(&context(0, 1, None)).unwrap();
        let mut out = VecOutput::new();
        for partial in partials {
            merge.process(partial, &mut out.collector()).unwrap();
        }
        merge
            .on_watermark(Watermark(i64::MAX), &mut out.collector())
            .unwrap();
        let mut finals = std::collections::BTreeMap::new();
        for r in out.0 {
            finals.insert((r.window, r.key), r.value);
        }
        finals
            .into_iter()
            .map(|((window, key), value)| WindowResult { window, key, value })
            .collect()
    }

    #[test]
    fn local_partials_are_redistributed_and_merged_on_rescale() {
        let events = events();
        let cut = 200;
        // Two local subtasks, each half of the records (round robin), every watermark.
        let half = |events: &[Event], subtask: usize| -> Vec<Event> {
            events
                .iter()
                .enumerate()
                .filter(|(i, e)| matches!(e, Event::Watermark(_)) || i % 2 == subtask)
                .map(|(_, e)| *e)
                .collect()
        };
        let mut partials = Vec::new();
        let mut snapshots = Vec::new();
        for subtask in 0..2 {
            let mut op: Local =
                LocalPreAggregate::new(Arc::new(|r: &(u64, i64)| r.0), spec(), Count);
            let ctx = context(subtask, 2, None);
            op.open(&ctx).unwrap();
            let mut out = VecOutput::new();
            feed(&mut op, &half(&events[..cut], subtask), &mut out);
            partials.extend(out.0);
            let taken = snapshot(&mut op, &ctx);
            assert!(taken.keyed.is_empty(), "local partials are operator state");
            snapshots.push(taken);
        }
        let restore: RestoreContext = restore_from(&snapshots, 0..128);
        let mut op: Local = LocalPreAggregate::new(Arc::new(|r: &(u64, i64)| r.0), spec(), Count);
        op.open(&context(0, 1, Some(restore))).unwrap();
        let mut out = VecOutput::new();
        feed(&mut op, &events[cut..], &mut out);
        partials.extend(out.0);

        let mut reference = uninterrupted();
        let mut finals = std::collections::BTreeMap::new();
        for r in reference.drain(..) {
            finals.insert((r.window, r.key), r.value);
        }
        let reference: Vec<Result> = finals
            .into_iter()
            .map(|((window, key), value)| WindowResult { window, key, value })
            .collect();
        assert_eq!(merged(partials), reference);
    }

    #[test]
    fn a_local_window_its_old_subtask_emitted_is_not_emitted_again_after_a_rescale() {
        let mut snapshots = Vec::new();
        let mut partials = Vec::new();
        // Subtask 0 is ahead (its windows fired); subtask 1 has seen no watermark.
        for (subtask, events) in [
            (0, vec![Event::Record(1, 5), Event::Watermark(50)]),
            (1, vec![Event::Record(1, 6)]),
        ] {
            let mut op: Local =
                LocalPreAggregate::new(Arc::new(|r: &(u64, i64)| r.0), spec(), Count);
            let ctx = context(subtask, 2, None);
            op.open(&ctx).unwrap();
            let mut out = VecOutput::new();
            feed(&mut op, &events, &mut out);
            partials.extend(out.0);
            snapshots.push(snapshot(&mut op, &ctx));
        }
        let mut op: Local = LocalPreAggregate::new(Arc::new(|r: &(u64, i64)| r.0), spec(), Count);
        op.open(&context(0, 1, Some(restore_from(&snapshots, 0..128))))
            .unwrap();
        let mut out = VecOutput::new();
        feed(&mut op, &[Event::Watermark(100)], &mut out);
        partials.extend(out.0);
        let mut records = std::collections::BTreeMap::new();
        for p in &partials {
            *records.entry(p.window.start).or_insert(0) += p.records;
        }
        assert_eq!(records.into_iter().collect::<Vec<_>>(), [(-20, 2), (0, 2)]);
    }

    #[test]
    fn a_restored_merge_step_fires_as_an_uninterrupted_one() {
        let partial = |key, start, acc| Partial {
            window: Window {
                start,
                end: start + 10,
            },
            key,
            acc,
            records: acc,
        };
        let inputs: Vec<Option<Partial<u64, u64>>> = vec![
            Some(partial(1, 0, 2)),
            Some(partial(2, 0, 1)),
            Some(partial(1, 10, 4)),
            None,
            Some(partial(2, 0, 3)),
            Some(partial(3, 10, 1)),
            None,
        ];
        let watermarks = [9, 30];
        let run = |merge: &mut WindowMerge<(u64, i64), u64, Count>,
                   inputs: &[Option<Partial<u64, u64>>],
                   wm: &mut std::slice::Iter<'_, i64>,
                   out: &mut VecOutput<Result>| {
            for input in inputs {
                match input {
                    Some(p) => merge.process(p.clone(), &mut out.collector()).unwrap(),
                    None => merge
                        .on_watermark(Watermark(*wm.next().unwrap()), &mut out.collector())
                        .unwrap(),
                }
            }
        };
        let new = || WindowMerge::<(u64, i64), u64, Count>::new(Count, 5, None);
        let mut reference = VecOutput::new();
        let mut merge = new();
        merge.open(&context(0, 1, None)).unwrap();
        run(&mut merge, &inputs, &mut watermarks.iter(), &mut reference);
        for cut in 0..inputs.len() {
            let mut merge = new();
            let ctx = context(0, 1, None);
            merge.open(&ctx).unwrap();
            let mut wm = watermarks.iter();
            let mut out = VecOutput::new();
            run(&mut merge, &inputs[..cut], &mut wm, &mut out);
            let taken = snapshot(&mut merge, &ctx);
            let mut merge = new();
            merge
                .open(&context(0, 1, Some(restore_from(&[taken], 0..128))))
                .unwrap();
            run(&mut merge, &inputs[cut..], &mut wm, &mut out);
            assert_eq!(out.0, reference.0, "cut at {cut}");
        }
        // The late partial (key 2 of window 0 after watermark 9 + lateness 5) refired it.
        assert_eq!(reference.0.len(), 5);
    }

    #[test]
    fn a_damaged_window_snapshot_is_an_error_naming_the_state() {
        let mut op = keyed();
        let ctx = context(0, 1, None);
        op.open(&ctx).unwrap();
        feed(&mut op, &events()[..50], &mut VecOutput::new());
        let taken = snapshot(&mut op, &ctx);
        let open = |taken: OperatorSnapshot| {
            keyed()
                .open(&context(0, 1, Some(restore_from(&[taken], 0..128))))
                .unwrap_err()
                .to_string()
        };
        let mut cut = taken.clone();
        cut.operator_state.truncate(cut.operator_state.len() - 3);
        let error = open(cut);
        assert!(error.contains("operator state section 1"), "{error}");
        // Whole bytes, wrong content: a counter below the accumulators' numbers.
        let mut behind = taken;
        let mut writer = crate::state::OperatorStateWriter::new();
        writer.put("watermark", &0i64).put("next-seq", &0u64);
        behind.operator_state = writer.into_bytes();
        let error = open(behind);
        assert!(
            error.contains("window-contents") && error.contains("counter"),
            "{error}"
        );
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
        let ctx = context(0, 1, None);
        let metrics = Arc::clone(&ctx.metrics);
        merge.open(&ctx).unwrap();
        let mut sink = VecOutput::new();
        let window = Window { start: 0, end: 10 };
        let partial = |records| Partial {
            window,
            key: (),
            acc: records,
            records,
        };
        merge.process(partial(2), &mut sink.collector()).unwrap();
        merge
            .on_watermark(Watermark(9), &mut sink.collector())
            .unwrap();
        assert_eq!(sink.0.len(), 1, "the window fired with its partial");
        // Its subtask was idle while the watermark moved on: this partial is past lateness.
        merge.process(partial(3), &mut sink.collector()).unwrap();
        assert_eq!(sink.0.len(), 1, "no second result");
        assert_eq!(metrics.late_records_dropped.get(), 3);
        assert_eq!(*dropped.lock().unwrap(), vec![(window, 3)]);
    }

    /// A late handler that buffers until its flush, as a file writer does.
    #[derive(Default)]
    struct Buffered {
        pending: Vec<(Window, u64)>,
        written: Arc<Mutex<Vec<(Window, u64)>>>,
    }

    impl LateRecords<(u64, i64)> for Buffered {
        fn late(
            &mut self,
            record: &(u64, i64),
            window: Window,
        ) -> std::result::Result<(), OperatorError> {
            self.pending.push((window, record.0));
            Ok(())
        }
        fn flush(&mut self) -> std::result::Result<(), OperatorError> {
            self.written.lock().unwrap().append(&mut self.pending);
            Ok(())
        }
    }

    impl LatePartialRecords for Buffered {
        fn late(&mut self, window: Window, records: u64) -> std::result::Result<(), OperatorError> {
            self.pending.push((window, records));
            Ok(())
        }
        fn flush(&mut self) -> std::result::Result<(), OperatorError> {
            LateRecords::<(u64, i64)>::flush(self)
        }
    }

    /// Each window operator flushes its late handler at the end of input, so that a handler
    /// may buffer (the traffic job's late file does): what it was given is written then.
    #[test]
    fn every_window_operator_flushes_its_late_handler_at_the_end_of_input() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let target = Arc::clone(&written);
        let late: LateOutput<(u64, i64)> = Arc::new(move |_| {
            Ok(Box::new(Buffered {
                written: Arc::clone(&target),
                ..Buffered::default()
            }))
        });
        let spec = || WindowSpec {
            assigner: WindowAssigner::tumbling(10),
            allowed_lateness_ms: 0,
            late: Some(Arc::clone(&late)),
            ..spec()
        };
        let window = Window { start: 0, end: 10 };
        // A late record for a keyed window and for a local pre-aggregate.
        let mut keyed = WindowAggregate::new(Arc::new(|r: &(u64, i64)| r.0), spec(), Count);
        let mut local = LocalPreAggregate::new(Arc::new(|r: &(u64, i64)| r.0), spec(), Count);
        let mut results = VecOutput::new();
        let mut partials = VecOutput::new();
        keyed.open(&context(0, 1, None)).unwrap();
        local.open(&context(0, 1, None)).unwrap();
        keyed
            .on_watermark(Watermark(20), &mut results.collector())
            .unwrap();
        local
            .on_watermark(Watermark(20), &mut partials.collector())
            .unwrap();
        keyed.process((7, 5), &mut results.collector()).unwrap();
        local.process((8, 5), &mut partials.collector()).unwrap();
        assert!(written.lock().unwrap().is_empty(), "buffered until the end");
        keyed.on_end_of_input(&mut results.collector()).unwrap();
        local.on_end_of_input(&mut partials.collector()).unwrap();
        assert_eq!(*written.lock().unwrap(), vec![(window, 7), (window, 8)]);

        // A late partial at the merge step.
        let target = Arc::clone(&written);
        let late_partials: LatePartials = Arc::new(move |_| {
            Ok(Box::new(Buffered {
                written: Arc::clone(&target),
                ..Buffered::default()
            }))
        });
        let mut merge = WindowMerge::<u64, (), Count>::new(Count, 0, Some(late_partials));
        let mut merged = VecOutput::new();
        merge.open(&context(0, 1, None)).unwrap();
        merge
            .on_watermark(Watermark(20), &mut merged.collector())
            .unwrap();
        let partial = Partial {
            window,
            key: (),
            acc: 4,
            records: 4,
        };
        merge.process(partial, &mut merged.collector()).unwrap();
        assert_eq!(written.lock().unwrap().len(), 2, "buffered until the end");
        merge.on_end_of_input(&mut merged.collector()).unwrap();
        assert_eq!(written.lock().unwrap()[2], (window, 4));
    }

    /// Feeds `events` to a chain of operator nodes as a task does: a turn of firing after each
    /// record (records arrive between the turns), a watermark down the chain.
    fn feed_chain(chain: &mut dyn Output<(u64, i64)>, events: &[Event]) {
        for event in events {
            match *event {
                Event::Record(key, ts) => {
                    chain.push((key, ts)).unwrap();
                    chain.resume().unwrap();
                }
                Event::Watermark(w) => chain.watermark(Watermark(w)).unwrap(),
            }
        }
        while chain.resume().unwrap() {}
    }

    /// An opened operator node firing at most `budget` results a turn (`None`: all at once).
    fn node<In, Out, Op: Operator<In, Out>>(
        op: Op,
        budget: Option<usize>,
        next: Box<dyn Output<Out>>,
    ) -> OperatorNode<In, Out, Op> {
        let mut op = op;
        let mut ctx = context(0, 1, None);
        ctx.firing_budget = budget;
        op.open(&ctx).unwrap();
        let origin = Origin {
            name: Arc::from("window"),
            subtask: 0,
            uid: Arc::from("window"),
        };
        OperatorNode::new(origin, 0..128, op, next)
    }

    /// Firing in turns, with records arriving between the turns, emits what firing everything
    /// at once emits, in order, for sliding and tumbling windows, with and without allowed
    /// lateness: a record that fires a window the held watermark reached again waits for the
    /// rest of the firing and the watermark, in the keyed window and across the two steps of
    /// local-global aggregation (the local step's late partial must reach the merge step after
    /// the watermark that fired the window, or it is merged into that firing); records for
    /// pending windows, or late for theirs, pass between the turns.
    #[test]
    fn firing_in_turns_with_records_between_them_emits_what_firing_at_once_emits() {
        for (assigner, allowed_lateness_ms) in [
            (WindowAssigner::sliding(40, 20), 15),
            (WindowAssigner::tumbling(20), 15),
            (WindowAssigner::tumbling(20), 0),
        ] {
            let spec = WindowSpec {
                assigner,
                allowed_lateness_ms,
                ..spec()
            };
            turns_emit_what_firing_at_once_emits(&spec);
        }
    }

    fn turns_emit_what_firing_at_once_emits(spec: &WindowSpec<(u64, i64)>) {
        let events = events();
        let key: crate::graph::KeyFn<(u64, i64), u64> = Arc::new(|r| r.0);
        let keyed = || WindowAggregate::new(Arc::clone(&key), spec.clone(), Count);
        let local = || LocalPreAggregate::new(Arc::clone(&key), spec.clone(), Count);
        let merge =
            || WindowMerge::<(u64, i64), u64, Count>::new(Count, spec.allowed_lateness_ms, None);
        let keyed_out = |budget| {
            let out = Arc::new(Mutex::new(VecOutput::new()));
            let mut chain = node(keyed(), budget, Box::new(SharedOutput(Arc::clone(&out))));
            feed_chain(&mut chain, &events);
            std::mem::take(&mut out.lock().unwrap().0)
        };
        let two_phase_out = |budget| {
            let out = Arc::new(Mutex::new(VecOutput::new()));
            let merge = node(merge(), budget, Box::new(SharedOutput(Arc::clone(&out))));
            let mut chain = node(local(), budget, Box::new(merge));
            feed_chain(&mut chain, &events);
            std::mem::take(&mut out.lock().unwrap().0)
        };
        let (keyed_at_once, two_phase_at_once) = (keyed_out(None), two_phase_out(None));
        let what = format!("{:?}, lateness {}", spec.assigner, spec.allowed_lateness_ms);
        for budget in [1, 3] {
            assert_eq!(
                keyed_out(Some(budget)),
                keyed_at_once,
                "keyed, budget {budget}, {what}"
            );
            assert_eq!(
                two_phase_out(Some(budget)),
                two_phase_at_once,
                "two-phase, budget {budget}, {what}"
            );
        }
    }
}
