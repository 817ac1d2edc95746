//! The job-graph builder: sources, chained operators, keyed exchanges, sinks.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use weir_core::{Job, RuntimeConfig, operator::KeyedState, sink::CollectSink, source::VecSource};
//!
//! let out = Arc::new(Mutex::new(Vec::new()));
//! let job = Job::new(RuntimeConfig { pin: false, ..RuntimeConfig::default() });
//! let target = Arc::clone(&out);
//! job.source("numbers", 2, VecSource::new(vec![vec![1u64, 2, 3], vec![4, 5]]))
//!     .map("square", |x| x * x)
//!     .key_by(|x: &u64| *x % 2)
//!     .process_fn("sum-by-parity", 2, |_key: &u64, sum: &mut KeyedState<u64, u64>, x: u64, out| {
//!         sum.update(|sum| *sum += x);
//!         out.collect(x);
//!         Ok(())
//!     })
//!     .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
//! job.execute().unwrap();
//! let mut got = out.lock().unwrap().clone();
//! got.sort();
//! assert_eq!(got, vec![1, 4, 9, 16, 25]);
//! ```
//!
//! Operators with the same parallelism connected by a forward edge are chained into one task
//! (`map`, `filter`, `flat_map`, `process`); `key_by`, `rebalance` and `broadcast` end the
//! chain with a network exchange and start a new task with the given parallelism.
//!
//! # State and checkpoints
//! Only state an operator writes in [`Operator::snapshot_state`] and reads back in
//! [`Operator::open`] survives a failure; keep it in the [`crate::state`] module (a keyed
//! process function's per-key value is kept there for it: [`KeyedStream::process`]). What a
//! `map`, `filter` or `flat_map` closure captures, or an operator keeps in its own fields, is
//! not snapshotted: after a restore it starts again from what the closure or `make` built.

use std::cell::RefCell;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::codec::Codec;
use crate::error::{JobError, OperatorError};
use crate::keyed::{KeyGroups, KeyHash, key_hash_of};
use crate::net::{InputGate, Partitioner, RecordWriter};
use crate::operator::{
    Collector, Filter, FlatMap, KeyedProcess, KeyedProcessFunction, KeyedState, Map, NetworkOutput,
    Operator, OperatorContext, OperatorNode, Origin, Output, SinkNode, Tee,
};
use crate::runtime::{BuildFn, EdgePlan, TaskSetup, Ticker, VertexPlan};
use crate::runtime::{
    InputTask, JobControl, JobResult, RuntimeConfig, SourceTask, TaskBody, execute,
};
use crate::sink::Sink;
use crate::source::Source;
use crate::state::{StateKey, StateValue};
use crate::time::{DEFAULT_WATERMARK_INTERVAL, WatermarkEmit, WatermarkStrategy};
use std::cell::RefCell as SlotCell;

/// A key selector shared by the exchange and the keyed operator.
pub type KeyFn<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;
/// Builds a subtask's chain head with `Output` as the chain behind it: the task body, or
/// `None` for a branch of a split, whose chain waits in the split's slot.
type HeadFn<T> = Rc<dyn Fn(&mut TaskSetup, Box<dyn Output<T>>) -> PartResult>;
type PartResult = Result<Option<Box<dyn TaskBody>>, JobError>;
type PartFn = Box<dyn Fn(&mut TaskSetup) -> PartResult>;

/// A vertex under construction: its chain's open ends and the parts that build it.
struct VertexSpec {
    name: String,
    parallelism: usize,
    /// Built first: each finished chain end (a branch deposits its chain in its split's slot).
    parts: Vec<PartFn>,
    /// Built last, innermost split first: each takes its branches' chains and builds on.
    assemblers: Vec<PartFn>,
    /// Chain ends not yet finished by a sink or an exchange.
    open: usize,
    /// The chains of split branches, named from the split on.
    branches: Vec<String>,
}

impl VertexSpec {
    fn new(parallelism: usize) -> Self {
        Self {
            name: String::new(),
            parallelism,
            parts: Vec::new(),
            assemblers: Vec::new(),
            open: 1,
            branches: Vec::new(),
        }
    }

    /// One build function: the parts, then the assemblers in reverse; exactly one of them
    /// yields the task body.
    fn into_plan(self) -> Result<VertexPlan, JobError> {
        if self.open > 0 {
            return Err(JobError::Invalid(format!(
                "a stream of '{}' is never consumed: end it with a sink",
                if self.name.is_empty() {
                    "a source"
                } else {
                    &self.name
                }
            )));
        }
        let name = if self.branches.is_empty() {
            self.name
        } else {
            format!("{} -> {{{}}}", self.name, self.branches.join(" | "))
        };
        let (parts, assemblers) = (self.parts, self.assemblers);
        let task_name = name.clone();
        let build: BuildFn = Box::new(move |setup| {
            let mut body = None;
            for part in parts.iter().chain(assemblers.iter().rev()) {
                if let Some(built) = part(setup)? {
                    body = Some(built);
                }
            }
            body.ok_or_else(|| JobError::Invalid(format!("task '{task_name}' has no head")))
        });
        Ok(VertexPlan {
            name,
            parallelism: self.parallelism,
            build,
        })
    }
}

#[derive(Default)]
struct Graph {
    vertices: Vec<VertexSpec>,
    edges: Vec<EdgePlan>,
    error: Option<JobError>,
    uids: std::collections::HashSet<String>,
}

impl Graph {
    /// A stable id for an operator named `name` (Flink's uid): the name itself, or the name
    /// with `#2`, `#3`... when the job already has one. The job graph is built the same way
    /// every time, so the ids are the same in every run of the same job.
    fn uid(&mut self, name: &str) -> Arc<str> {
        let mut uid = name.to_owned();
        let mut n = 1;
        while !self.uids.insert(uid.clone()) {
            n += 1;
            uid = format!("{name}#{n}");
        }
        Arc::from(uid)
    }
}

/// A job under construction; [`Job::execute`] runs it.
pub struct Job {
    graph: Rc<RefCell<Graph>>,
    config: RuntimeConfig,
    control: Arc<JobControl>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("vertices", &self.graph.borrow().vertices.len())
            .field("config", &self.config)
            .finish()
    }
}

impl Job {
    /// An empty job.
    pub fn new(config: RuntimeConfig) -> Self {
        Self {
            graph: Rc::default(),
            config,
            control: Arc::new(JobControl::new()),
        }
    }

    /// The job's control block: request a stop (Ctrl-C) from another thread.
    pub fn control(&self) -> Arc<JobControl> {
        Arc::clone(&self.control)
    }

    /// Adds a source with `parallelism` subtasks; its records carry no event time (the only
    /// watermark is the final one at end of input).
    pub fn source<S: Source>(&self, name: &str, parallelism: usize, source: S) -> Stream<S::Item> {
        self.add_source(name, parallelism, source, None)
    }

    /// Adds a source with `parallelism` subtasks whose records carry event time: timestamps,
    /// watermarks, idleness and the timestamp guard as `strategy` says.
    pub fn source_with_watermarks<S: Source>(
        &self,
        name: &str,
        parallelism: usize,
        source: S,
        strategy: WatermarkStrategy<S::Item>,
    ) -> Stream<S::Item> {
        self.add_source(name, parallelism, source, Some(strategy))
    }

    fn add_source<S: Source>(
        &self,
        name: &str,
        parallelism: usize,
        source: S,
        strategy: Option<WatermarkStrategy<S::Item>>,
    ) -> Stream<S::Item> {
        let source: Arc<dyn Source<Item = S::Item>> = Arc::new(source);
        let vertex = self.add_vertex(parallelism);
        let source_name = name.to_owned();
        let uid = self.graph.borrow_mut().uid(name);
        // Subtasks still reading, counted afresh in every attempt.
        let running: Rc<RefCell<(u32, Arc<AtomicUsize>)>> =
            Rc::new(RefCell::new((u32::MAX, Arc::new(AtomicUsize::new(0)))));
        let head: HeadFn<S::Item> = Rc::new(move |setup, chain| {
            let running = {
                let mut slot = running.borrow_mut();
                if slot.0 != setup.attempt {
                    *slot = (setup.attempt, Arc::new(AtomicUsize::new(parallelism)));
                }
                Arc::clone(&slot.1)
            };
            let mut ticker = ticker(setup);
            if let Some(WatermarkEmit::Periodic(interval)) = strategy.as_ref().map(|s| &s.emit) {
                ticker = ticker.with_watermarks(*interval);
            } else if let Some(strategy) = &strategy
                && strategy.idle_timeout.is_some()
            {
                ticker = ticker.with_watermarks(DEFAULT_WATERMARK_INTERVAL);
            }
            Ok(Some(Box::new(SourceTask::new(
                setup.env.clone(),
                source_name.clone(),
                Arc::clone(&source),
                parallelism,
                chain,
                ticker,
                strategy.clone(),
                running,
                Arc::clone(&uid),
            )?)))
        });
        Stream {
            graph: Rc::clone(&self.graph),
            max_parallelism: self.config.max_parallelism,
            vertex,
            parallelism,
            names: vec![name.to_owned()],
            branch: false,
            head,
        }
    }

    fn add_vertex(&self, parallelism: usize) -> usize {
        let mut graph = self.graph.borrow_mut();
        if parallelism == 0 {
            graph
                .error
                .get_or_insert(JobError::Invalid("parallelism must be at least 1".into()));
        }
        graph.vertices.push(VertexSpec::new(parallelism.max(1)));
        graph.vertices.len() - 1
    }

    /// Runs the job on this machine until its input ends, it fails, or a stop is requested.
    pub fn execute(self) -> Result<JobResult, JobError> {
        let graph = self.graph.take();
        if let Some(error) = graph.error {
            return Err(error);
        }
        if graph.vertices.is_empty() {
            return Err(JobError::Invalid("the job has no operators".into()));
        }
        let vertices = graph
            .vertices
            .into_iter()
            .map(VertexSpec::into_plan)
            .collect::<Result<Vec<_>, _>>()?;
        execute(vertices, graph.edges, self.config, self.control)
    }
}

fn ticker(setup: &TaskSetup) -> Ticker {
    Ticker::new(setup.config.buffer_timeout, setup.config.latency_interval)
        .with_flush_on_idle(setup.config.flush_on_idle)
}

/// A stream of `T`, the open end of a chain.
#[must_use = "a stream does nothing until it ends in a sink"]
pub struct Stream<T> {
    graph: Rc<RefCell<Graph>>,
    max_parallelism: usize,
    vertex: usize,
    parallelism: usize,
    names: Vec<String>,
    /// Whether this chain is a branch of a split (its names start at the split).
    branch: bool,
    head: HeadFn<T>,
}

impl<T> Stream<T> {
    /// Fails the job's build with `message` (the first failure wins; `execute` returns it).
    pub(crate) fn fail_build(&self, message: String) {
        self.graph
            .borrow_mut()
            .error
            .get_or_insert(JobError::Invalid(message));
    }
}

impl<T> std::fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("chain", &self.names)
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

impl<T: Send + 'static> Stream<T> {
    /// Parallelism of the current chain.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// Chains an operator; `make` builds one instance per subtask (again for each attempt after
    /// a failure: state the operator does not snapshot starts afresh).
    pub fn process<U, Op>(mut self, name: &str, make: impl Fn() -> Op + 'static) -> Stream<U>
    where
        U: Send + 'static,
        Op: Operator<T, U>,
    {
        let head = self.head;
        let op_name: Arc<str> = Arc::from(name);
        let uid = self.graph.borrow_mut().uid(name);
        self.names.push(name.to_owned());
        Stream {
            graph: self.graph,
            max_parallelism: self.max_parallelism,
            vertex: self.vertex,
            parallelism: self.parallelism,
            names: self.names,
            branch: self.branch,
            head: Rc::new(move |setup, next: Box<dyn Output<U>>| {
                let origin = Origin {
                    name: Arc::clone(&op_name),
                    subtask: setup.env.subtask(),
                    uid: Arc::clone(&uid),
                };
                let mut op = make();
                let context = OperatorContext {
                    subtask: setup.env.subtask(),
                    metrics: Arc::clone(setup.env.metrics()),
                    uid: Arc::clone(&uid),
                    parallelism: setup.env.parallelism(),
                    key_groups: setup.env.key_groups(),
                    max_parallelism: setup.config.max_parallelism,
                    restore: setup.env.restore_for(&uid)?,
                    state_backend: Arc::clone(&setup.config.state_backend),
                    firing_budget: setup.config.firing_budget,
                };
                op.open(&context).map_err(|e| JobError::Operator {
                    operator: op_name.to_string(),
                    subtask: context.subtask,
                    message: e.to_string(),
                })?;
                let node = OperatorNode::new(origin, setup.env.key_groups(), op, next);
                head(setup, Box::new(node))
            }),
        }
    }

    /// Chains a function applied to every record. What the closure captures and changes is not
    /// checkpointed (see the [module docs](self)).
    pub fn map<U: Send + 'static>(
        self,
        name: &str,
        f: impl FnMut(T) -> U + Clone + Send + 'static,
    ) -> Stream<U> {
        self.process(name, move || Map(f.clone()))
    }

    /// Chains a predicate; records for which it is false are dropped.
    pub fn filter(self, name: &str, f: impl FnMut(&T) -> bool + Clone + Send + 'static) -> Self {
        self.process(name, move || Filter(f.clone()))
    }

    /// Chains a function that emits any number of records per record.
    pub fn flat_map<U: Send + 'static>(
        self,
        name: &str,
        f: impl FnMut(T, &mut Collector<'_, U>) -> Result<(), OperatorError> + Clone + Send + 'static,
    ) -> Stream<U> {
        self.process(name, move || FlatMap(f.clone()))
    }

    /// Ends the chain in a sink with `parallelism` subtasks (rebalancing first if it differs
    /// from the stream's); `make` builds the sink of each subtask.
    pub fn sink<S: Sink<T>>(
        self,
        name: &str,
        parallelism: usize,
        make: impl Fn(usize) -> S + 'static,
    ) where
        T: Codec,
    {
        self.try_sink(name, parallelism, move |subtask| Ok(make(subtask)));
    }

    /// [`Stream::sink`] with a fallible `make` (a sink that opens a file, or a transactional
    /// writer that registers with its subtask): an error fails the subtask's start with the
    /// sink's name.
    pub fn try_sink<S: Sink<T>>(
        self,
        name: &str,
        parallelism: usize,
        make: impl Fn(usize) -> Result<S, OperatorError> + 'static,
    ) where
        T: Codec,
    {
        let stream = if parallelism == self.parallelism {
            self
        } else {
            self.rebalance(parallelism)
        };
        let sink_name: Arc<str> = Arc::from(name);
        let uid = stream.graph.borrow_mut().uid(name);
        let head = Rc::clone(&stream.head);
        stream.finish(
            name,
            Box::new(move |setup| {
                let origin = Origin {
                    name: Arc::clone(&sink_name),
                    subtask: setup.env.subtask(),
                    uid: Arc::clone(&uid),
                };
                let sink = make(setup.env.subtask()).map_err(|e| JobError::Operator {
                    operator: sink_name.to_string(),
                    subtask: setup.env.subtask(),
                    message: format!("opening the sink: {e}"),
                })?;
                let node = SinkNode::new(origin, sink, setup.env.clone());
                head(setup, Box::new(node))
            }),
        );
    }

    fn finish(mut self, last: &str, part: PartFn) {
        if self.names.last().map(String::as_str) != Some(last) {
            self.names.push(last.to_owned());
        }
        let mut graph = self.graph.borrow_mut();
        let vertex = &mut graph.vertices[self.vertex];
        if self.branch {
            vertex.branches.push(self.names.join(" -> "));
        } else {
            vertex.name = self.names.join(" -> ");
        }
        vertex.parts.push(part);
        vertex.open -= 1;
    }
}

impl<T: Clone + Send + 'static> Stream<T> {
    /// Splits the stream in two: every record, watermark and marker goes down both chains,
    /// which stay in this task (as when several Flink operators consume one stream).
    pub fn split(self) -> (Stream<T>, Stream<T>) {
        type Slots<T> = Rc<SlotCell<[Option<Box<dyn Output<T>>>; 2]>>;
        let slots: Slots<T> = Rc::new(SlotCell::new([None, None]));
        // The chain up to the split names the task; each branch names its own chain from here
        // (a branch of a branch keeps its parent branch's names).
        let branch_names = if self.branch {
            self.names.clone()
        } else {
            Vec::new()
        };
        {
            let mut graph = self.graph.borrow_mut();
            let vertex = &mut graph.vertices[self.vertex];
            if !self.branch {
                vertex.name = self.names.join(" -> ");
            }
            vertex.open += 1;
            let head = self.head;
            let taken = Rc::clone(&slots);
            vertex.assemblers.push(Box::new(move |setup| {
                let [first, second] = std::mem::take(&mut *taken.borrow_mut());
                match (first, second) {
                    (Some(first), Some(second)) => head(setup, Box::new(Tee::new(first, second))),
                    _ => Err(JobError::Invalid("a split branch was not built".into())),
                }
            }));
        }
        let branch = |k: usize| Stream {
            graph: Rc::clone(&self.graph),
            max_parallelism: self.max_parallelism,
            vertex: self.vertex,
            parallelism: self.parallelism,
            names: branch_names.clone(),
            branch: true,
            head: {
                let slots = Rc::clone(&slots);
                Rc::new(move |_setup: &mut TaskSetup, chain: Box<dyn Output<T>>| {
                    slots.borrow_mut()[k] = Some(chain);
                    Ok(None)
                })
            },
        };
        (branch(0), branch(1))
    }
}

impl<T: Codec> Stream<T> {
    /// Ends the chain with a network exchange to a new task of `parallelism` subtasks.
    fn exchange(
        self,
        parallelism: usize,
        label: &str,
        partitioner: impl Fn() -> Partitioner<T> + 'static,
    ) -> Stream<T> {
        let to = {
            let mut graph = self.graph.borrow_mut();
            if parallelism == 0 {
                graph
                    .error
                    .get_or_insert(JobError::Invalid("parallelism must be at least 1".into()));
            }
            graph.vertices.push(VertexSpec::new(parallelism.max(1)));
            graph.vertices.len() - 1
        };
        let edge = {
            let mut graph = self.graph.borrow_mut();
            graph.edges.push(EdgePlan {
                from: self.vertex,
                to,
            });
            graph.edges.len() - 1
        };
        let graph = Rc::clone(&self.graph);
        let input_uid = graph.borrow_mut().uid(&format!("input of exchange {edge}"));
        let max_parallelism = self.max_parallelism;
        let head = Rc::clone(&self.head);
        let exchange = Arc::clone(&input_uid);
        self.finish(
            label,
            Box::new(move |setup| {
                let outputs = setup.take_outputs(edge);
                let writer = RecordWriter::new(
                    outputs.senders,
                    setup.pool(),
                    outputs.first,
                    partitioner(),
                    setup.env.clone(),
                    setup.config.buffer_timeout,
                )
                .with_idle_age(setup.config.idle_flush_age())
                .for_exchange(Arc::clone(&exchange));
                let output = NetworkOutput::new(writer, Arc::clone(setup.env.metrics()));
                head(setup, Box::new(output))
            }),
        );
        Stream {
            graph,
            max_parallelism,
            vertex: to,
            parallelism: parallelism.max(1),
            names: Vec::new(),
            branch: false,
            head: Rc::new(move |setup, chain| {
                let gate = InputGate::new(setup.take_inputs(edge));
                Ok(Some(Box::new(InputTask::new(
                    setup.env.clone(),
                    gate,
                    chain,
                    ticker(setup),
                    Arc::clone(&input_uid),
                )?)))
            }),
        }
    }

    /// Redistributes records round robin to `parallelism` subtasks (Flink's `rebalance`).
    pub fn rebalance(self, parallelism: usize) -> Stream<T> {
        self.exchange(parallelism, "rebalance", || Partitioner::Rebalance {
            next: 0,
        })
    }

    /// Sends every record to each of `parallelism` subtasks.
    pub fn broadcast(self, parallelism: usize) -> Stream<T> {
        self.exchange(parallelism, "broadcast", || Partitioner::Broadcast)
    }

    /// Partitions the stream by key: all records of a key go to the subtask owning its key
    /// group.
    pub fn key_by<K, KF>(self, key_of: KF) -> KeyedStream<T, K>
    where
        KF: Fn(&T) -> K + Send + Sync + 'static,
        K: Hash + 'static,
    {
        let key_of = Arc::new(key_of);
        KeyedStream {
            stream: self,
            key_hash: key_hash_of(Arc::clone(&key_of)),
            key_of,
        }
    }
}

/// A stream partitioned by key, waiting for its keyed operator.
#[must_use = "a keyed stream does nothing until a keyed operator consumes it"]
pub struct KeyedStream<T, K> {
    stream: Stream<T>,
    key_of: KeyFn<T, K>,
    /// The hash of `key_of`'s key, with the selector's type kept (a batch is hashed in one
    /// call).
    key_hash: Arc<dyn KeyHash<T>>,
}

impl<T, K> std::fmt::Debug for KeyedStream<T, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedStream")
            .field("upstream", &self.stream)
            .finish()
    }
}

impl<T: Codec, K: Hash + Eq + Clone + Send + 'static> KeyedStream<T, K> {
    /// Exchanges the stream by key group to `parallelism` subtasks and returns the stream that
    /// the keyed operator will consume, with the key function.
    pub fn exchange(self, parallelism: usize) -> (Stream<T>, KeyFn<T, K>) {
        let max_parallelism = self.stream.max_parallelism;
        let groups = match KeyGroups::new(max_parallelism, parallelism) {
            Ok(groups) => groups,
            Err(message) => {
                self.stream
                    .graph
                    .borrow_mut()
                    .error
                    .get_or_insert(JobError::Invalid(message));
                KeyGroups::new(1, 1).expect("1 of 1 is valid")
            }
        };
        let key_hash = self.key_hash;
        let stream = self
            .stream
            .exchange(parallelism, "key_by", move || Partitioner::KeyGroups {
                key_hash: Arc::clone(&key_hash),
                groups: groups.clone(),
            });
        (stream, self.key_of)
    }

    /// Runs a keyed process function with `parallelism` subtasks; `make` builds one instance per
    /// subtask. Its per-key state is checkpointed and restored, also at another parallelism
    /// ([`KeyedProcess`]); state in the function's own fields is not.
    pub fn process<U, F>(
        self,
        name: &str,
        parallelism: usize,
        make: impl Fn() -> F + 'static,
    ) -> Stream<U>
    where
        K: StateKey,
        U: Send + 'static,
        F: KeyedProcessFunction<K, T, U>,
    {
        let (stream, key_of) = self.exchange(parallelism);
        stream.process(name, move || {
            let key_of = Arc::clone(&key_of);
            KeyedProcess::new(move |record: &T| key_of(record), make())
        })
    }

    /// Like [`KeyedStream::process`], with a closure `(key, state, record, out)` as the function.
    pub fn process_fn<U, S, F>(self, name: &str, parallelism: usize, f: F) -> Stream<U>
    where
        K: StateKey,
        U: Send + 'static,
        S: StateValue + Default,
        F: FnMut(
                &K,
                &mut KeyedState<'_, K, S>,
                T,
                &mut Collector<'_, U>,
            ) -> Result<(), OperatorError>
            + Clone
            + Send
            + 'static,
    {
        self.process(name, parallelism, move || ProcessFn {
            f: f.clone(),
            _state: std::marker::PhantomData,
        })
    }
}

/// A closure as a [`KeyedProcessFunction`].
struct ProcessFn<F, S> {
    f: F,
    _state: std::marker::PhantomData<fn() -> S>,
}

impl<K, In, Out, S, F> KeyedProcessFunction<K, In, Out> for ProcessFn<F, S>
where
    S: StateValue + Default,
    F: FnMut(
            &K,
            &mut KeyedState<'_, K, S>,
            In,
            &mut Collector<'_, Out>,
        ) -> Result<(), OperatorError>
        + Send
        + 'static,
{
    type State = S;

    #[inline]
    fn process(
        &mut self,
        key: &K,
        state: &mut KeyedState<'_, K, S>,
        record: In,
        out: &mut Collector<'_, Out>,
    ) -> Result<(), OperatorError> {
        (self.f)(key, state, record, out)
    }
}
