//! # weir-core
//!
//! The engine of weir: Apache Flink's runtime mechanisms, in Rust, on a lock-free core.
//!
//! Guarantees, as the modules state them in detail:
//! - **Allocates once on the data plane.** Network buffers come from a fixed pool allocated at
//!   job start ([`net::pool`]); moving records never allocates a buffer.
//! - **Never blocks on a lock on the hot path.** Channels are `rtrb` SPSC rings
//!   ([`net::channel`](mod@net::channel)); the pool is a set of atomic bit words.
//! - **Bounded.** A full pool or a full ring is backpressure: the writer waits and counts it as
//!   `backPressuredTimeMsPerSecond`, nothing grows.
//! - **One thread per subtask**, pinned to a core, waiting without burning the core
//!   ([`net::notify`]).
//! - **Nothing lost silently:** an operator's error or panic fails the job with the operator's
//!   name and subtask.
//!
//! Table of contents:
//! - [`graph`]: the job-graph builder ([`Job`], [`Stream`], [`KeyedStream`]).
//! - [`operator`]: operators, chains, keyed process functions.
//! - [`source`], [`sink`]: partitioned sources with offsets; JSON-lines, collect and discard sinks.
//! - [`net`]: the data plane: buffer pool, channels, stream elements, record writer, input gate.
//! - [`keyed`]: key groups.
//! - [`state`]: keyed state (value, map, list, reducing, aggregating) partitioned by key group,
//!   operator state, copy-on-write snapshots whose synchronous part is O(key groups), restore
//!   at another parallelism.
//! - [`time`]: watermark strategies, the timestamp guard, watermarks and their status, the
//!   watermark valve, latency markers.
//! - [`window`]: tumbling and sliding event-time windows, allowed lateness, late output,
//!   `windowAll` and local-global aggregation.
//! - [`runtime`]: task threads, job control, the executor.
//! - [`metrics`]: task metrics with Flink's names.
//! - [`checkpoint`]: checkpoint ids, snapshots, state handles, metadata, the storage contract.
//! - [`codec`]: record serialization.
//! - [`error`]: job errors.

pub mod checkpoint;
pub mod codec;
pub mod error;
pub mod graph;
pub mod keyed;
pub mod metrics;
pub mod net;
pub mod operator;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod state;
mod sync;
pub mod time;
pub mod window;

pub use codec::Codec;
pub use error::{JobError, OperatorError};
pub use graph::{Job, KeyedStream, Stream};
pub use runtime::{JobResult, RuntimeConfig};
