//! Operators and operator chains (Flink's `StreamOperator`, `Output` and operator chaining).
//!
//! A task runs a chain: its head (a source or an input gate) pushes each element into the first
//! operator's [`Output`], each operator pushes its results into the next, and the chain ends in
//! a record writer (a network exchange) or a sink. Chained operators call each other directly:
//! no serialization, no queue.
//!
//! Failures are attributed: an operator that returns an error or panics fails the job with its
//! own name and subtask index, never with a downstream operator's.
//!
//! Batches: an input task hands the chain the records it decoded from one buffer (up to the
//! next watermark, status change or latency marker) as one [`Output::push_batch`]. An operator
//! node then runs its operator over the whole batch inside one `catch_unwind`, collecting the
//! results into a vector of its own, and hands that down as one batch: one virtual call per
//! batch per link instead of one per record per link. Order is kept: a batch holds consecutive
//! records, and control elements go down only after the batch before them.

mod basic;
mod keyed_process;
mod network;
mod sink_node;
mod tee;
#[cfg(test)]
pub(crate) mod testing;

pub use crate::state::KeyedState;
pub use basic::{Filter, FlatMap, Map};
pub(crate) use keyed_process::layout_of;
pub use keyed_process::{KeyedProcess, KeyedProcessFunction};
pub(crate) use network::NetworkOutput;
pub(crate) use sink_node::SinkNode;
pub(crate) use tee::Tee;

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::checkpoint::{CheckpointId, RestoreContext, SnapshotContext, TaskSnapshot};
use crate::error::{JobError, OperatorError, TaskError};
use crate::net::{CheckpointBarrier, Flush, IdleDue};
use crate::time::{LatencyMarker, Watermark, WatermarkStatus};

/// Where a chain link pushes its elements: the next operator, a writer or a sink.
pub trait Output<T>: Send {
    /// A record.
    fn push(&mut self, record: T) -> Result<(), TaskError>;
    /// Consecutive records, in order, as if each were [`push`](Output::push)ed; `records` is
    /// left empty (its capacity stays with the caller, to be reused). On an error, the records
    /// not yet processed are dropped: the task fails. The default pushes them one by one.
    fn push_batch(&mut self, records: &mut Vec<T>) -> Result<(), TaskError> {
        records.drain(..).try_for_each(|record| self.push(record))
    }
    /// Consecutive records, borrowed, in order, as if each were [`push`](Output::push)ed: what
    /// a split hands each chain but its last, which then gets the batch itself. A link that
    /// only reads its records (a window, a writer) takes them without a copy; the default
    /// pushes a clone of each, which is what a link that keeps or changes records needs.
    fn push_shared(&mut self, records: &[T]) -> Result<(), TaskError>
    where
        T: Clone,
    {
        records
            .iter()
            .try_for_each(|record| self.push(record.clone()))
    }
    /// The input watermark advanced.
    fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError>;
    /// The input became idle or active.
    fn status(&mut self, status: WatermarkStatus) -> Result<(), TaskError>;
    /// A latency marker passes through (operators do not see it).
    fn latency_marker(&mut self, marker: LatencyMarker) -> Result<(), TaskError>;
    /// Send partly filled buffers: all of them when the buffer timeout expired, those with
    /// records or latency markers when the task ran out of work ([`Flush`]). Returns when the
    /// buffers an idle flush held back are due (the task wakes by then to flush again).
    fn flush(&mut self, why: Flush) -> Result<IdleDue, TaskError>;
    /// The input ended: emit what is pending, then end the output.
    fn end_of_input(&mut self) -> Result<(), TaskError>;
    /// Checkpoint barrier: every record sent before it has been pushed; each link adds its
    /// state to `snapshot`, and the chain's ends forward the barrier (writers) or take note
    /// (sinks).
    fn barrier(
        &mut self,
        barrier: CheckpointBarrier,
        snapshot: &mut TaskSnapshot,
    ) -> Result<(), TaskError>;
    /// Checkpoint `checkpoint` (and every one before it) completed.
    fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError>;
    /// Gives each operator that holds a watermark back its next turn of firing
    /// ([`Operator::firing_pending`]); returns whether one still holds one. The task calls it
    /// between inputs, and does not wait for input while it returns true.
    fn resume(&mut self) -> Result<bool, TaskError> {
        Ok(false)
    }
}

/// Collects an operator's results and passes them down the chain.
///
/// A failure further down is kept here and reported after the operator returns, so the user's
/// code never has to handle (or could misattribute) another operator's error.
#[derive(Debug)]
pub struct Collector<'a, T> {
    next: Next<'a, T>,
    error: Option<TaskError>,
}

/// Where a collector's records go.
#[derive(Debug)]
enum Next<'a, T> {
    /// Down the chain, one at a time.
    Chain(&'a mut dyn Output<T>),
    /// Into the batch that goes down the chain once the operator has seen its whole input
    /// batch (nothing downstream runs meanwhile, so nothing can fail there).
    Batch(&'a mut Vec<T>),
}

impl<T> std::fmt::Debug for dyn Output<T> + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Output")
    }
}

impl<'a, T> Collector<'a, T> {
    pub(crate) fn new(next: &'a mut dyn Output<T>) -> Self {
        Self {
            next: Next::Chain(next),
            error: None,
        }
    }

    /// A collector that appends to `batch`: what an operator node hands its operator for an
    /// input batch, and the way to drive an operator outside a job (tests, benches).
    pub fn batch(batch: &'a mut Vec<T>) -> Self {
        Self {
            next: Next::Batch(batch),
            error: None,
        }
    }

    /// Emits a record downstream. After a downstream failure, further records are discarded
    /// and the failure ends the task when the operator returns.
    #[inline]
    pub fn collect(&mut self, record: T) {
        match &mut self.next {
            Next::Batch(batch) => batch.push(record),
            Next::Chain(next) => {
                if self.error.is_none()
                    && let Err(e) = next.push(record)
                {
                    self.error = Some(e);
                }
            }
        }
    }

    pub(crate) fn into_error(self) -> Option<TaskError> {
        self.error
    }
}

/// What an operator learns about its place when it opens (Flink's `RuntimeContext`).
#[derive(Debug, Clone)]
pub struct OperatorContext {
    /// The subtask index.
    pub subtask: usize,
    /// The task's metrics (for example `late_records_dropped`).
    pub metrics: Arc<crate::metrics::TaskMetrics>,
    /// The operator's stable id (Flink's uid): its state is found by it after a restore.
    pub uid: Arc<str>,
    /// The operator's parallelism.
    pub parallelism: usize,
    /// The key groups this subtask owns (meaningful behind a keyed exchange).
    pub key_groups: std::ops::Range<usize>,
    /// The number of key groups.
    pub max_parallelism: usize,
    /// The operator's state in the checkpoint this attempt restores from.
    pub restore: Option<RestoreContext>,
    /// The job's keyed-state backend: keyed operators make their tables with it
    /// ([`KeyedTable::with_backend`](crate::state::KeyedTable::with_backend)).
    pub state_backend: crate::state::StateBackendRef,
    /// How many results an operator emits per turn when a watermark makes many due
    /// ([`Operator::firing_pending`]); `None`: all at once, as Flink does.
    pub firing_budget: Option<usize>,
}

impl OperatorContext {
    /// The context of subtask `subtask` of an operator that restores nothing (tests, and
    /// operators built outside a job).
    pub fn new(subtask: usize, metrics: Arc<crate::metrics::TaskMetrics>) -> Self {
        Self {
            subtask,
            metrics,
            uid: Arc::from(""),
            parallelism: subtask + 1,
            key_groups: 0..crate::keyed::DEFAULT_MAX_PARALLELISM,
            max_parallelism: crate::keyed::DEFAULT_MAX_PARALLELISM,
            restore: None,
            state_backend: crate::state::heap(),
            firing_budget: None,
        }
    }
}

/// A user operator: one required method, hooks with sensible defaults.
pub trait Operator<In, Out>: Send + 'static {
    /// Called once per subtask before the first record; an error fails the job.
    fn open(&mut self, _context: &OperatorContext) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Processes one record.
    fn process(&mut self, record: In, out: &mut Collector<'_, Out>) -> Result<(), OperatorError>;

    /// Processes the records of one input batch, in order, leaving `records` empty. Nothing
    /// else reaches the operator between two records of a batch: no watermark, barrier or
    /// end of input (the runtime flushes a batch before each), so an operator may combine the
    /// records of a batch before touching its state, as long as what it emits and keeps is
    /// what [`Operator::process`] record by record would have emitted and kept. The default
    /// calls `process` for each record and stops at the first error.
    fn process_batch(
        &mut self,
        records: &mut Vec<In>,
        out: &mut Collector<'_, Out>,
    ) -> Result<(), OperatorError> {
        records
            .drain(..)
            .try_for_each(|record| self.process(record, out))
    }

    /// Processes borrowed records of one input batch (a split's other branches read them
    /// too), in order, under the same contract as [`Operator::process_batch`]. An operator
    /// that only reads its records implements it without copying them; the default calls
    /// `process` with a clone of each and stops at the first error.
    fn process_shared(
        &mut self,
        records: &[In],
        out: &mut Collector<'_, Out>,
    ) -> Result<(), OperatorError>
    where
        In: Clone,
    {
        records
            .iter()
            .try_for_each(|record| self.process(record.clone(), out))
    }

    /// The watermark advanced; the runtime forwards it downstream after this returns, or, if
    /// it left results due ([`Operator::firing_pending`]), once they are all out.
    fn on_watermark(
        &mut self,
        _watermark: Watermark,
        _out: &mut Collector<'_, Out>,
    ) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Whether the last [`on_watermark`](Operator::on_watermark) or
    /// [`resume`](Operator::resume) left results due unsent: an operator that fires in turns
    /// of [`OperatorContext::firing_budget`] results, so that one watermark firing thousands
    /// of windows does not hold up the task's input (its latency markers) the whole time. The
    /// runtime holds the watermark back until this is false, calling `resume` between inputs;
    /// meanwhile latency markers and records that do not
    /// [wait for the watermark](Operator::waits_for_watermark) reach the operator, anything
    /// else only after it has fired everything and the watermark went down.
    fn firing_pending(&self) -> bool {
        false
    }

    /// While results are due ([`firing_pending`](Operator::firing_pending)): whether `record`
    /// must wait until they are all out and the held watermark went down, because what
    /// processing it emits must follow that watermark (a record for a window the watermark
    /// reached, within allowed lateness, fires it again). The runtime then fires the rest at
    /// once before it, so the results are, in order, those of firing everything at once. An
    /// operator that fires in turns says which records; by default none waits.
    fn waits_for_watermark(&self, _record: &In) -> bool {
        false
    }

    /// Emits the next turn of what [`on_watermark`](Operator::on_watermark) left due.
    fn resume(&mut self, _out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// The input ended; emit what is still pending.
    fn on_end_of_input(&mut self, _out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// A checkpoint barrier: write the operator's state (non-keyed bytes now; keyed state as a
    /// copy-on-write view serialized later). Stateless operators keep the default. State must
    /// be restored in [`Operator::open`] from [`OperatorContext::restore`].
    fn snapshot_state(&mut self, _ctx: &mut SnapshotContext<'_>) -> Result<(), OperatorError> {
        Ok(())
    }

    /// Checkpoint `checkpoint` completed (Flink's `notifyCheckpointComplete`); notifications
    /// may skip ids.
    fn notify_checkpoint_complete(
        &mut self,
        _checkpoint: CheckpointId,
    ) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// Who a failure belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) name: Arc<str>,
    pub(crate) subtask: usize,
    /// The operator's uid (its state's name in checkpoints).
    pub(crate) uid: Arc<str>,
}

impl Origin {
    /// Turns the outcome of a user call into the chain's result, attributing errors and panics
    /// to this operator and preferring a downstream failure that happened inside the call.
    #[inline]
    pub(crate) fn settle(
        &self,
        outcome: std::thread::Result<Result<(), OperatorError>>,
        downstream: Option<TaskError>,
    ) -> Result<(), TaskError> {
        if let Some(error) = downstream {
            return Err(error);
        }
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.failed(error)),
            Err(panic) => Err(self.panicked(panic.as_ref())),
        }
    }

    #[cold]
    fn failed(&self, error: OperatorError) -> TaskError {
        TaskError::Failed(JobError::Operator {
            operator: self.name.to_string(),
            subtask: self.subtask,
            message: error.to_string(),
        })
    }

    #[cold]
    fn panicked(&self, panic: &(dyn Any + Send)) -> TaskError {
        TaskError::Failed(JobError::Panic {
            operator: self.name.to_string(),
            subtask: self.subtask,
            message: panic_message(panic),
        })
    }

    /// Runs a user call with its panics caught and its errors attributed.
    #[inline]
    pub(crate) fn call<T>(
        &self,
        next: &mut dyn Output<T>,
        f: impl FnOnce(&mut Collector<'_, T>) -> Result<(), OperatorError>,
    ) -> Result<(), TaskError> {
        let mut out = Collector::new(next);
        let outcome = catch_unwind(AssertUnwindSafe(|| f(&mut out)));
        self.settle(outcome, out.into_error())
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// One operator in a chain, with the rest of the chain behind it.
pub(crate) struct OperatorNode<In, Out, Op> {
    origin: Origin,
    key_groups: std::ops::Range<usize>,
    op: Op,
    next: Box<dyn Output<Out>>,
    /// The results of the input batch being processed; empty between calls (it only keeps
    /// its capacity: about the records of one buffer).
    batch: Vec<Out>,
    /// A watermark that goes down once the operator has fired what it made due.
    held: Option<Watermark>,
    _in: PhantomData<fn(In)>,
}

impl<In, Out, Op> OperatorNode<In, Out, Op> {
    pub(crate) fn new(
        origin: Origin,
        key_groups: std::ops::Range<usize>,
        op: Op,
        next: Box<dyn Output<Out>>,
    ) -> Self {
        Self {
            origin,
            key_groups,
            op,
            next,
            batch: Vec::new(),
            held: None,
            _in: PhantomData,
        }
    }
}

impl<In, Out: Send + 'static, Op> OperatorNode<In, Out, Op> {
    /// Runs the operator over one input batch inside one `catch_unwind`, then sends its
    /// results down as one batch. A failure at some record is this operator's, and the results
    /// of the records before it are dropped with the task.
    #[inline]
    fn run_batch(
        &mut self,
        process: impl FnOnce(&mut Op, &mut Collector<'_, Out>) -> Result<(), OperatorError>,
    ) -> Result<(), TaskError> {
        let (op, batch) = (&mut self.op, &mut self.batch);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            process(op, &mut Collector::batch(batch))
        }));
        if let Err(error) = self.origin.settle(outcome, None) {
            self.batch.clear();
            return Err(error);
        }
        if self.batch.is_empty() {
            return Ok(());
        }
        self.next.push_batch(&mut self.batch)
    }
}

impl<In, Out: Send + 'static, Op: Operator<In, Out>> OperatorNode<In, Out, Op> {
    /// Sends `watermark` down, or holds it while the operator has results due.
    fn release_or_hold(&mut self, watermark: Watermark) -> Result<(), TaskError> {
        if self.op.firing_pending() {
            self.held = Some(watermark);
            Ok(())
        } else {
            self.held = None;
            self.next.watermark(watermark)
        }
    }

    /// One turn of firing, and the held watermark down after the last.
    fn resume_turn(&mut self) -> Result<(), TaskError> {
        let Some(watermark) = self.held else {
            return Ok(());
        };
        self.run_batch(|op, out| op.resume(out))?;
        self.release_or_hold(watermark)
    }

    /// Fires everything due and sends the held watermark: before any element that must not
    /// overtake it (all but latency markers and records that do not wait for it).
    fn finish_firing(&mut self) -> Result<(), TaskError> {
        while self.held.is_some() {
            self.resume_turn()?;
        }
        Ok(())
    }

    /// [`finish_firing`](Self::finish_firing) before `records` if one of them waits for the
    /// held watermark ([`Operator::waits_for_watermark`]). O(1) unless a watermark is held.
    #[inline]
    fn finish_firing_before(&mut self, records: &[In]) -> Result<(), TaskError> {
        if self.held.is_some() && records.iter().any(|r| self.op.waits_for_watermark(r)) {
            self.finish_firing()?;
        }
        Ok(())
    }
}

impl<In, Out, Op> Output<In> for OperatorNode<In, Out, Op>
where
    In: Send + 'static,
    Out: Send + 'static,
    Op: Operator<In, Out>,
{
    #[inline]
    fn push(&mut self, record: In) -> Result<(), TaskError> {
        self.finish_firing_before(std::slice::from_ref(&record))?;
        let op = &mut self.op;
        self.origin
            .call(&mut *self.next, |out| op.process(record, out))
    }

    /// The operator sees the whole batch inside one `catch_unwind` ([`Self::run_batch`]).
    fn push_batch(&mut self, records: &mut Vec<In>) -> Result<(), TaskError> {
        self.finish_firing_before(records)?;
        self.run_batch(|op, out| {
            let outcome = op.process_batch(records, out);
            records.clear();
            outcome
        })
    }

    fn push_shared(&mut self, records: &[In]) -> Result<(), TaskError>
    where
        In: Clone,
    {
        self.finish_firing_before(records)?;
        self.run_batch(|op, out| op.process_shared(records, out))
    }

    /// The operator's results go down as one batch, then the watermark (held while the
    /// operator fires in turns).
    fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError> {
        self.finish_firing()?;
        self.run_batch(|op, out| op.on_watermark(watermark, out))?;
        self.release_or_hold(watermark)
    }

    fn status(&mut self, status: WatermarkStatus) -> Result<(), TaskError> {
        self.finish_firing()?;
        self.next.status(status)
    }

    fn latency_marker(&mut self, marker: LatencyMarker) -> Result<(), TaskError> {
        self.next.latency_marker(marker)
    }

    fn flush(&mut self, why: Flush) -> Result<IdleDue, TaskError> {
        self.next.flush(why)
    }

    fn end_of_input(&mut self) -> Result<(), TaskError> {
        self.finish_firing()?;
        let op = &mut self.op;
        self.origin
            .call(&mut *self.next, |out| op.on_end_of_input(out))?;
        self.next.end_of_input()
    }

    /// A snapshot is taken with nothing due: the operator fires all first.
    fn barrier(
        &mut self,
        barrier: CheckpointBarrier,
        snapshot: &mut TaskSnapshot,
    ) -> Result<(), TaskError> {
        self.finish_firing()?;
        let op = &mut self.op;
        let mut ctx = snapshot.operator(&self.origin.uid, self.key_groups.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| op.snapshot_state(&mut ctx)));
        snapshot.drop_empty_operator();
        self.origin.settle(outcome, None)?;
        self.next.barrier(barrier, snapshot)
    }

    fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        let op = &mut self.op;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            op.notify_checkpoint_complete(checkpoint)
        }));
        self.origin.settle(outcome, None)?;
        self.next.checkpoint_complete(checkpoint)
    }

    fn resume(&mut self) -> Result<bool, TaskError> {
        self.resume_turn()?;
        let held = self.held.is_some();
        Ok(self.next.resume()? || held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Logs what reaches it as `"{name} {record}"` / `"{name} wm {t}"`, into a shared log.
    struct Log {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Output<u64> for Log {
        fn push(&mut self, record: u64) -> Result<(), TaskError> {
            let line = format!("{} {record}", self.name);
            self.log.lock().expect("log").push(line);
            Ok(())
        }
        fn watermark(&mut self, watermark: Watermark) -> Result<(), TaskError> {
            let line = format!("{} wm {}", self.name, watermark.0);
            self.log.lock().expect("log").push(line);
            Ok(())
        }
        fn status(&mut self, _: WatermarkStatus) -> Result<(), TaskError> {
            Ok(())
        }
        fn latency_marker(&mut self, _: LatencyMarker) -> Result<(), TaskError> {
            Ok(())
        }
        fn flush(&mut self, _: Flush) -> Result<IdleDue, TaskError> {
            Ok(None)
        }
        fn end_of_input(&mut self) -> Result<(), TaskError> {
            Ok(())
        }
        fn barrier(&mut self, _: CheckpointBarrier, _: &mut TaskSnapshot) -> Result<(), TaskError> {
            Ok(())
        }
        fn checkpoint_complete(&mut self, _: CheckpointId) -> Result<(), TaskError> {
            Ok(())
        }
    }

    fn origin(name: &str) -> Origin {
        Origin {
            name: Arc::from(name),
            subtask: 1,
            uid: Arc::from(name),
        }
    }

    fn node<Op: Operator<u64, u64>>(
        name: &str,
        op: Op,
        next: Box<dyn Output<u64>>,
    ) -> Box<dyn Output<u64>> {
        Box::new(OperatorNode::new(origin(name), 0..1, op, next))
    }

    /// `flat_map(x -> x, x + 100) -> split -> (split -> (filter(odd) -> left, middle), right)`:
    /// the inner split and both its chains read a shared batch (`push_shared`).
    fn chain(log: &Arc<Mutex<Vec<String>>>) -> Box<dyn Output<u64>> {
        let [left, middle, right] = ["left", "middle", "right"].map(|name| {
            Box::new(Log {
                name,
                log: Arc::clone(log),
            })
        });
        let odd = node("odd", Filter(|x: &u64| x % 2 == 1), left);
        let inner = Box::new(Tee::new(odd, middle));
        let tee = Box::new(Tee::new(inner, right));
        node(
            "twice",
            FlatMap(|x: u64, out: &mut Collector<'_, u64>| {
                out.collect(x);
                out.collect(x + 100);
                Ok(())
            }),
            tee,
        )
    }

    /// Makes `due` results due at each watermark and fires them `turn` at a time.
    struct Burst {
        due: u64,
        left: u64,
        turn: u64,
    }

    impl Operator<u64, u64> for Burst {
        fn process(
            &mut self,
            record: u64,
            out: &mut Collector<'_, u64>,
        ) -> Result<(), OperatorError> {
            out.collect(record);
            Ok(())
        }
        fn on_watermark(
            &mut self,
            _: Watermark,
            out: &mut Collector<'_, u64>,
        ) -> Result<(), OperatorError> {
            self.left = self.due;
            self.resume(out)
        }
        fn firing_pending(&self) -> bool {
            self.left > 0
        }
        fn resume(&mut self, out: &mut Collector<'_, u64>) -> Result<(), OperatorError> {
            let n = self.left.min(self.turn);
            for i in 0..n {
                out.collect(1000 + self.due - self.left + i);
            }
            self.left -= n;
            Ok(())
        }
    }

    #[test]
    fn a_watermark_waits_for_firing_in_turns_while_records_pass() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let out = Box::new(Log {
            name: "out",
            log: Arc::clone(&log),
        });
        let burst = Burst {
            due: 5,
            left: 0,
            turn: 2,
        };
        let mut chain = node("burst", burst, out);
        chain.watermark(Watermark(10)).expect("first turn");
        chain.push(1).expect("a record passes");
        assert!(chain.resume().expect("second turn"), "still firing");
        chain.push_batch(&mut vec![2]).expect("a batch passes");
        assert!(!chain.resume().expect("last turn"), "fired, watermark sent");
        assert!(!chain.resume().expect("nothing to do"));
        chain.watermark(Watermark(20)).expect("first turn");
        // The next watermark (as a barrier, a status or the end would) waits for the rest.
        chain
            .watermark(Watermark(30))
            .expect("the rest, then the first turn");
        chain.end_of_input().expect("the rest");
        let fired = |w: u64| {
            (1000..1005)
                .map(|r| format!("out {r}"))
                .chain([format!("out wm {w}")])
        };
        let mut expected: Vec<String> = [
            "out 1000", "out 1001", "out 1", "out 1002", "out 1003", "out 2",
        ]
        .map(String::from)
        .to_vec();
        expected.extend(["out 1004".to_owned(), "out wm 10".to_owned()]);
        expected.extend(fired(20));
        expected.extend(fired(30));
        assert_eq!(*log.lock().expect("log"), expected);
    }

    #[test]
    fn a_batch_reaches_every_link_as_the_records_one_by_one_would() {
        let (batched, single) = (Arc::default(), Arc::default());
        let (mut a, mut b) = (chain(&batched), chain(&single));
        let mut records = vec![1, 2, 3];
        a.push_batch(&mut records).expect("the batch goes through");
        assert!(records.is_empty(), "the batch is taken");
        a.watermark(Watermark(7)).expect("watermark");
        a.push_batch(&mut vec![5]).expect("the batch goes through");
        for x in [1, 2, 3] {
            b.push(x).expect("a record goes through");
        }
        b.watermark(Watermark(7)).expect("watermark");
        b.push(5).expect("a record goes through");
        let sorted = |log: &Arc<Mutex<Vec<String>>>, branch: &str| -> Vec<String> {
            let log = log.lock().expect("log");
            log.iter()
                .filter(|l| l.starts_with(branch))
                .cloned()
                .collect()
        };
        for branch in ["left", "middle", "right"] {
            // Each branch sees the same elements in the same order, watermarks included.
            assert_eq!(
                sorted(&batched, branch),
                sorted(&single, branch),
                "{branch}"
            );
        }
        assert_eq!(
            sorted(&batched, "left"),
            [
                "left 1",
                "left 101",
                "left 3",
                "left 103",
                "left wm 7",
                "left 5",
                "left 105"
            ]
        );
        assert_eq!(
            sorted(&batched, "middle"),
            [
                "middle 1",
                "middle 101",
                "middle 2",
                "middle 102",
                "middle 3",
                "middle 103",
                "middle wm 7",
                "middle 5",
                "middle 105"
            ]
        );
    }

    #[test]
    fn a_failure_inside_a_batch_names_the_failing_operator() {
        let log = Arc::default();
        let sink = Box::new(Log {
            name: "sink",
            log: Arc::clone(&log),
        });
        let fails = node(
            "fails-at-3",
            FlatMap(|x: u64, out: &mut Collector<'_, u64>| {
                if x == 3 {
                    return Err(OperatorError::from("three"));
                }
                out.collect(x);
                Ok(())
            }),
            sink,
        );
        let panics = node(
            "panics-at-2",
            Map(|x: u64| {
                assert_ne!(x, 2, "two");
                x
            }),
            Box::new(Log {
                name: "unused",
                log: Arc::clone(&log),
            }),
        );
        let mut chain = node("identity", Map(|x: u64| x), fails);
        let mut records = vec![1, 2, 3, 4];
        match chain.push_batch(&mut records) {
            Err(TaskError::Failed(JobError::Operator {
                operator,
                subtask,
                message,
            })) => {
                assert_eq!((operator.as_str(), subtask), ("fails-at-3", 1));
                assert!(message.contains("three"), "{message}");
            }
            other => panic!("expected the operator's failure, got {other:?}"),
        }
        assert!(records.is_empty(), "the failed batch is dropped");
        let mut panicking = panics;
        match panicking.push_batch(&mut vec![1, 2, 3]) {
            Err(TaskError::Failed(JobError::Panic { operator, .. })) => {
                assert_eq!(operator, "panics-at-2");
            }
            other => panic!("expected the operator's panic, got {other:?}"),
        }
        assert!(
            log.lock().expect("log").is_empty(),
            "nothing of a failed batch went down"
        );
    }
}
