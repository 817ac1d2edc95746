//! Windows on the job-graph builder: keyed windows, and global windows as `windowAll` or as
//! local-global aggregation.

use std::hash::Hash;
use std::sync::Arc;

use super::{
    AggregateFunction, LateOutput, LatePartials, LocalPreAggregate, Partial, WindowAggregate,
    WindowAssigner, WindowMerge, WindowResult,
};
use crate::codec::Codec;
use crate::graph::{KeyedStream, Stream};
use crate::state::StateKey;

/// What a window operator needs besides its aggregate function. A job whose assigner fails
/// [`WindowAssigner::check`] does not build: `execute` returns the reason.
pub struct WindowSpec<T> {
    /// Tumbling or sliding.
    pub assigner: WindowAssigner,
    /// Allowed lateness, ms.
    pub allowed_lateness_ms: i64,
    /// A record's event timestamp, ms (the same as the source's).
    pub timestamp: Arc<dyn Fn(&T) -> i64 + Send + Sync>,
    /// Where records dropped as late go (they are counted either way).
    pub late: Option<LateOutput<T>>,
    /// Local-global aggregation only: where partials the merge step drops as late go (their
    /// records are counted either way).
    pub late_partials: Option<LatePartials>,
}

impl<T> Clone for WindowSpec<T> {
    fn clone(&self) -> Self {
        Self {
            assigner: self.assigner,
            allowed_lateness_ms: self.allowed_lateness_ms,
            timestamp: Arc::clone(&self.timestamp),
            late: self.late.clone(),
            late_partials: self.late_partials.clone(),
        }
    }
}

impl<T> std::fmt::Debug for WindowSpec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowSpec")
            .field("assigner", &self.assigner)
            .field("allowed_lateness_ms", &self.allowed_lateness_ms)
            .finish()
    }
}

/// How a global (non-keyed) window is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum GlobalAggregation {
    /// One subtask sees every record (Flink's `windowAll`).
    WindowAll,
    /// Each subtask pre-aggregates, then `parallelism` subtasks merge per window (Flink SQL's
    /// local-global aggregation).
    Parallel {
        /// Subtasks of the merge step.
        parallelism: usize,
    },
}

impl<T> Stream<T> {
    /// Fails the build if the window of `name` has an unusable assigner.
    fn check_spec(&self, name: &str, spec: &WindowSpec<T>) {
        if let Err(reason) = spec.assigner.check() {
            self.fail_build(format!("window '{name}': {reason}"));
        }
    }
}

impl<T: Codec> Stream<T> {
    /// A global window over the whole stream, aggregated as `mode` says; both modes give the
    /// same results.
    pub fn window_global<A>(
        self,
        name: &str,
        mode: GlobalAggregation,
        spec: WindowSpec<T>,
        function: A,
    ) -> Stream<WindowResult<(), A::Out>>
    where
        A: AggregateFunction<T>,
    {
        match mode {
            GlobalAggregation::WindowAll => {
                self.check_spec(name, &spec);
                self.rebalance(1).process(name, move || {
                    WindowAggregate::new(Arc::new(|_: &T| ()), spec.clone(), function.clone())
                })
            }
            GlobalAggregation::Parallel { parallelism } => {
                self.window_two_phase(name, |_: &T| (), parallelism, spec, function)
            }
        }
    }

    /// A keyed window aggregated in two phases (Flink SQL's local-global aggregation): each
    /// subtask of this stream pre-aggregates per window and key, and `parallelism` subtasks
    /// merge the partials per (key, window). Only partials cross the network. Gives the same
    /// results as [`KeyedStream::window`].
    pub fn window_two_phase<K, A>(
        self,
        name: &str,
        key_of: impl Fn(&T) -> K + Send + Sync + 'static,
        parallelism: usize,
        spec: WindowSpec<T>,
        function: A,
    ) -> Stream<WindowResult<K, A::Out>>
    where
        K: Codec + Hash + Eq + Clone + Send + Sync + 'static,
        A: AggregateFunction<T>,
    {
        self.check_spec(name, &spec);
        let local = function.clone();
        let (lateness, late_partials) = (spec.allowed_lateness_ms, spec.late_partials.clone());
        let key_of: Arc<dyn Fn(&T) -> K + Send + Sync> = Arc::new(key_of);
        self.process(&format!("{name} (local)"), move || {
            LocalPreAggregate::new(Arc::clone(&key_of), spec.clone(), local.clone())
        })
        .key_by(|partial: &Partial<K, A::Acc>| (partial.key.clone(), partial.window.start))
        .exchange(parallelism)
        .0
        .process(&format!("{name} (merge)"), move || {
            WindowMerge::new(function.clone(), lateness, late_partials.clone())
        })
    }
}

impl<T: Codec, K: Hash + Eq + Clone + Send + 'static> KeyedStream<T, K> {
    /// A keyed window with `parallelism` subtasks.
    pub fn window<A: AggregateFunction<T>>(
        self,
        name: &str,
        parallelism: usize,
        spec: WindowSpec<T>,
        function: A,
    ) -> Stream<WindowResult<K, A::Out>>
    where
        K: StateKey,
    {
        let (stream, key_of) = self.exchange(parallelism);
        stream.check_spec(name, &spec);
        stream.process(name, move || {
            WindowAggregate::new(Arc::clone(&key_of), spec.clone(), function.clone())
        })
    }
}
