//! Storm's at-least-once guarantee, on the traffic job: per-tuple acking with an XOR ledger,
//! replay from the spout after a timeout, `topology.max.spout.pending`. It is measured against
//! weir's barrier checkpoints by `weir suite checkpoints` (seed question 3: why move from
//! Storm to Flink).
//!
//! # Why a topology of its own, not weir's engine
//!
//! Storm's guarantee needs three things weir's runtime does not have, and adding them would
//! change the core for one comparison: (1) a source that is told `ack`/`fail` per record and
//! can re-emit one record on demand (weir's `Source` is a pull reader of sequential offsets);
//! (2) window operators that keep every record's anchor until the window fires, so the
//! window's records are acked then (weir's windows keep only accumulators, and their
//! snapshot format would change); (3) a source that stays open until its last trees are
//! acked, while weir's final watermark (which fires the last windows) follows the sources'
//! end, so such a source would wait forever. So this module is a faithful Storm topology of
//! its own: the same input readers, parser, timestamp guard, tagging and window logic as the
//! weir job (`crate::traffic`), the same generated input, on threads connected by bounded
//! `rtrb` rings:
//!
//! ```text
//! spout (p) --fields(plate)--> tag (p) --> sinks (1): count-origins, flow_1m, origin_5m
//!     |  ^                        |                     |
//!     |  +--- completed roots ----+-------- acker (1) <--+  (Init from spouts, Ack from bolts)
//!     +---------------- Init --------------> acker
//! ```
//!
//! - **Spout** ([`spout`]): reads its partitions, parses, guards timestamps, gives every record
//!   a random root id and edge id, registers `Init` with the acker and keeps the record in
//!   its [`pending::PendingTuples`] (the record carries its source offset, partition and
//!   line). A completed root is `ack`; a tree not complete within the message timeout fails
//!   and is re-emitted under a new root (at-least-once: nothing downstream is rolled back).
//! - **Tag** ([`bolts`]): per-plate long-term state, emits one tuple per branch (count,
//!   flow, origin) anchored to its input and acks the input with one XOR.
//! - **Sinks** ([`bolts`]): the three bolts of the job's outputs on one thread: count-origins
//!   acks at once; each window holds its tuples' anchors and acks them when it fires (as
//!   Storm's windowed bolts do), a late tuple is counted as late and acked.
//! - **Acker** ([`acker`]): the XOR ledger; tells the spout task of each completed tree.
//!
//! Event time as the weir job with punctuated watermarks: each spout's watermark is the
//! minimum over its partitions of the highest timestamp minus the out-of-orderness minus
//! 1 ms, carried on every tuple; a bolt's watermark is the minimum over its inputs; a window
//! `[start, end)` fires when the watermark reaches `end − 1`. A replay comes a timeout after
//! its first emission, usually after its windows fired: the windows then count it as late
//! (that is what at-least-once delivery gives event-time windows), and the count of every
//! tagged record (`origins`) counts it twice.
//!
//! # Channels, memory orderings, progress
//!
//! Every channel is an `rtrb` SPSC ring, one per producer and consumer pair, bounded; there
//! is no unbounded queue and no atomic of this module's own. A push publishes the slot with a
//! `Release` store of the ring's tail that the consumer's `Acquire` load of it pairs with, so
//! a popped message is fully visible; shutdown travels in band (`Flush`, then `Stop`, after
//! every message of its producer). A full ring is backpressure: the producer waits (spin,
//! yield, then 50 µs sleeps). Waits form no cycle: sinks wait on the acker, tags on the sinks
//! and the acker, the acker on the spouts' rings of completed roots, and a spout drains that
//! ring while it waits for anything, so the acker always moves on (the tests run every ring at
//! capacity 1). With no atomics of its own there is no new lock-free protocol to model in
//! loom; the rings are rtrb's.
//!
//! # Failure injection
//!
//! [`LoseTuples`]: the first tag task, after its `after`-th input, loses the flow branch of
//! its next `count` tuples (a tuple lost in the network between tag and flow_1m): their
//! trees never complete, the spout replays them after the timeout, and the replays are
//! counted again by count-origins and origin_5m (duplicates) while flow_1m gets them late.

pub mod acker;
pub mod bolts;
pub mod pending;
pub mod rotating;
pub mod spout;
mod topology;

use std::time::Duration;

use serde::Serialize;
use weir_core::time::GuardConfig;

use crate::traffic::input::TrafficInput;
use crate::traffic::record::Home;
use crate::traffic::tag::OriginCounts;
use crate::traffic::windows::WindowTotals;

pub use topology::run;

/// Storm's default `topology.message.timeout.secs`.
pub const DEFAULT_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Max spout pending per spout task, the default here (Storm's is unbounded; production
/// topologies set it, typically in the thousands). It must exceed the tuples a spout emits
/// while a window is open plus the out-of-orderness, or trees wait for a watermark that the
/// held-back spout cannot advance and fail by timeout.
pub const DEFAULT_MAX_SPOUT_PENDING: usize = 50_000;
/// Messages per ring, the default.
pub const DEFAULT_RING_CAPACITY: usize = 4096;

/// Lose tuples at a point, to time trees out (see the module's "Failure injection").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoseTuples {
    /// Inputs the first tag task processes normally first.
    pub after: u64,
    /// Flow-branch tuples it then loses.
    pub count: u64,
}

/// The acked traffic topology's settings.
#[derive(Debug, Clone)]
pub struct AckingJob {
    /// Files or generator, as the weir job reads them.
    pub input: TrafficInput,
    /// The home province and city.
    pub home: Home,
    /// Spout and tag tasks.
    pub parallelism: usize,
    /// Per-tuple acking; `false` is Storm with `topology.acker.executors: 0` (no guarantee:
    /// the spout acks each tuple as it emits it).
    pub acking: bool,
    /// `topology.message.timeout.secs`.
    pub message_timeout: Duration,
    /// `topology.max.spout.pending`, per spout task.
    pub max_spout_pending: usize,
    /// Messages per ring.
    pub ring_capacity: usize,
    /// Bounded out-of-orderness of the watermarks.
    pub out_of_orderness: Duration,
    /// Implausible-timestamp limits, as the weir job's guard.
    pub guard: GuardConfig,
    /// Failure injection.
    pub lose: Option<LoseTuples>,
}

impl AckingJob {
    /// The topology over `input` with acking on and every other setting at its default (the
    /// weir job's home, parallelism, out-of-orderness and guard; Storm's timeout).
    pub fn new(input: TrafficInput) -> Self {
        let weir = crate::traffic::job::TrafficJob::new(input.clone(), "");
        Self {
            input,
            home: weir.home,
            parallelism: weir.parallelism,
            acking: true,
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            max_spout_pending: DEFAULT_MAX_SPOUT_PENDING,
            ring_capacity: DEFAULT_RING_CAPACITY,
            out_of_orderness: weir.event_time.out_of_orderness,
            guard: weir.event_time.guard,
            lose: None,
        }
    }
}

/// What a run of the topology produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AckingRun {
    /// Data lines read (replays not counted again).
    pub records_in: u64,
    /// Malformed lines.
    pub records_rejected: u64,
    /// Records quarantined by the timestamp guard.
    pub records_quarantined: u64,
    /// Trees the spouts completed (`ack`).
    pub trees_acked: u64,
    /// Trees that failed by timeout and were re-emitted (`fail`, then replay).
    pub replays: u64,
    /// The most trees one spout task had in flight at once (max spout pending bounds it).
    pub peak_pending: usize,
    /// Flow-branch tuples lost by the injected failure.
    pub tuples_lost: u64,
    /// Ledger entries the acker dropped unfinished (lost trees, stragglers of failed ones).
    pub acker_expired: u64,
    /// Every tagged tuple count-origins counted, replays included.
    pub counts: OriginCounts,
    /// The final value of every fired window.
    pub windows: WindowTotals,
    /// Tuples flow_1m dropped as late.
    pub flow_late: u64,
    /// Tuples origin_5m dropped as late.
    pub origin_late: u64,
    /// Wall time from the first thread's start to the last one's end, s.
    pub wall_s: f64,
}

impl AckingRun {
    /// Records the guard let through: what an exactly-once run counts once each.
    pub fn records_accepted(&self) -> u64 {
        self.records_in - self.records_rejected - self.records_quarantined
    }

    /// Records counted more than once by count-origins (every tagged record): the counted
    /// total above the accepted records. 0 for an uninterrupted run.
    pub fn duplicates(&self) -> u64 {
        self.counts.total().saturating_sub(self.records_accepted())
    }

    /// Input records per second of wall time.
    pub fn throughput_records_per_s(&self) -> f64 {
        self.records_in as f64 / self.wall_s.max(1e-9)
    }
}
