//! The alternative to barriers, built faithfully: sources and a counting operator that each
//! snapshot on their own timer, with records in flight in the channels between them.
//!
//! The pipeline is simulated tick by tick from a seed, so every interleaving is reproducible
//! and nothing depends on wall-clock time: [`SOURCES`] sources, each with an offset and a
//! bounded FIFO channel (its network buffers) to one operator that counts the records it has
//! taken out of the channels. Per tick each source pushes a record with its own probability
//! (when its channel has room: backpressure) and the operator takes up to [`SOURCES`] items,
//! each with its probability, from a non-empty channel chosen at random.
//!
//! A checkpoint `k` is what a restore would use: the sum of the sources' offsets and the
//! operator's count. Restoring from it, the operator starts at its count and the sources replay
//! everything after their offsets, so the records counted at the end are
//! `count + (input − offsets)`: the cut is consistent exactly when `count == offsets`. Its
//! error `count − offsets` is negative for lost records (read before the sources' snapshot but
//! not yet counted at the operator's: they were in a channel) and positive for records counted
//! twice (counted before the operator's snapshot but read after the sources').
//!
//! The same simulation also runs the barrier protocol, as a control: each source's timer (the
//! coordinator's trigger reaching it, skewed like any timer) snapshots its offset and puts a
//! marker into its channel; the operator snapshots when markers have arrived, aligned or at
//! least once. O(ticks) per run; a run is about 3,000 ticks.

use std::collections::VecDeque;
use std::fmt;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// Sources, each with its own channel to the counting operator.
const SOURCES: usize = 2;
/// Records per source.
const PER_SOURCE: u64 = 2_000;
/// Checkpoints per run.
pub const CHECKPOINTS: usize = 8;
/// Ticks between two firings of one timer; [`CHECKPOINTS`] periods span the input.
const PERIOD_TICKS: u64 = 300;
/// Ticks after which a run that has not finished is a bug of the simulation.
const MAX_TICKS: u64 = 100_000;

/// How the simulated pipeline takes its snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Snapshots {
    /// Every source and the operator snapshot on their own timer, each firing at
    /// `k · period + skew`, with a skew per node drawn from the seed in `0..=max_skew_ticks`.
    Timers {
        /// The largest skew; 0 is perfectly synchronised clocks.
        max_skew_ticks: u64,
    },
    /// Barriers, aligned: a channel that delivered marker `k` is not read until every channel
    /// has; the operator snapshots then.
    AlignedMarkers,
    /// Barriers, at least once: nothing is blocked; the operator snapshots when the last
    /// marker of `k` arrives.
    AtLeastOnceMarkers,
}

/// Skew of the sources' timers in the barrier runs (the trigger reaches sources at different
/// moments); the barrier cut must not depend on it.
const MARKER_SKEW_TICKS: u64 = 30;

#[derive(Debug, Clone, Copy)]
enum Item {
    Record,
    Marker(usize),
}

#[derive(Debug)]
struct SimSource {
    offset: u64,
    push_probability: f64,
    skew_ticks: u64,
    channel: VecDeque<Item>,
    /// A marker waiting for room in the channel (it goes before any further record).
    outbox: Option<usize>,
    /// Offset at each timer firing, in checkpoint order.
    snapshots: Vec<u64>,
}

#[derive(Debug)]
struct SimOperator {
    count: u64,
    take_probability: f64,
    skew_ticks: u64,
    /// Markers of each checkpoint that have arrived.
    markers: [usize; CHECKPOINTS],
    /// Channels blocked by alignment.
    blocked: [bool; SOURCES],
    /// Count at each snapshot, by checkpoint.
    snapshots: [Option<u64>; CHECKPOINTS],
}

/// One seeded run: the error `count − offsets` of each of its [`CHECKPOINTS`] cuts.
pub fn run(seed: u64, snapshots: Snapshots) -> [i64; CHECKPOINTS] {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let capacity = rng.random_range(4..=64usize);
    let max_skew = match snapshots {
        Snapshots::Timers { max_skew_ticks } => max_skew_ticks,
        _ => MARKER_SKEW_TICKS,
    };
    let mut sources: Vec<SimSource> = (0..SOURCES)
        .map(|_| SimSource {
            offset: 0,
            push_probability: rng.random_range(0.5..0.95),
            skew_ticks: rng.random_range(0..=max_skew),
            channel: VecDeque::with_capacity(capacity + 1),
            outbox: None,
            snapshots: Vec::with_capacity(CHECKPOINTS),
        })
        .collect();
    let mut op = SimOperator {
        count: 0,
        take_probability: rng.random_range(0.5..1.0),
        skew_ticks: rng.random_range(0..=max_skew),
        markers: [0; CHECKPOINTS],
        blocked: [false; SOURCES],
        snapshots: [None; CHECKPOINTS],
    };
    let timers = matches!(snapshots, Snapshots::Timers { .. });
    let mut tick = 0u64;
    while !finished(&sources, &op) {
        tick += 1;
        assert!(tick < MAX_TICKS, "seed {seed}: the simulation does not end");
        for source in &mut sources {
            if let Some(k) = firing(tick, source.skew_ticks) {
                source.snapshots.push(source.offset);
                if !timers {
                    debug_assert!(
                        source.outbox.is_none(),
                        "the previous marker left within one period"
                    );
                    source.outbox = Some(k);
                }
            }
        }
        if timers && let Some(k) = firing(tick, op.skew_ticks) {
            op.snapshots[k] = Some(op.count);
        }
        for source in &mut sources {
            if source.channel.len() < capacity && rng.random_bool(source.push_probability) {
                if let Some(k) = source.outbox.take() {
                    source.channel.push_back(Item::Marker(k));
                } else if source.offset < PER_SOURCE {
                    source.channel.push_back(Item::Record);
                    source.offset += 1;
                }
            }
        }
        for _ in 0..SOURCES {
            if rng.random_bool(op.take_probability) {
                take(&mut rng, &mut sources, &mut op, snapshots);
            }
        }
    }
    std::array::from_fn(|k| {
        let offsets: u64 = sources.iter().map(|s| s.snapshots[k]).sum();
        let count = op.snapshots[k].expect("every checkpoint was taken");
        count as i64 - offsets as i64
    })
}

/// The checkpoint whose timer fires at `tick` on a node with `skew_ticks`, if any.
fn firing(tick: u64, skew_ticks: u64) -> Option<usize> {
    let t = tick.checked_sub(skew_ticks)?;
    let k = t / PERIOD_TICKS;
    (t.is_multiple_of(PERIOD_TICKS) && (1..=CHECKPOINTS as u64).contains(&k))
        .then(|| k as usize - 1)
}

/// Every record read and counted, every snapshot of every checkpoint taken.
fn finished(sources: &[SimSource], op: &SimOperator) -> bool {
    sources.iter().all(|s| {
        s.offset == PER_SOURCE
            && s.outbox.is_none()
            && s.channel.is_empty()
            && s.snapshots.len() == CHECKPOINTS
    }) && op.snapshots.iter().all(Option::is_some)
}

/// The operator takes one item from a readable channel chosen at random.
fn take(rng: &mut Pcg64Mcg, sources: &mut [SimSource], op: &mut SimOperator, mode: Snapshots) {
    let readable: Vec<usize> = (0..SOURCES)
        .filter(|&c| !op.blocked[c] && !sources[c].channel.is_empty())
        .collect();
    if readable.is_empty() {
        return;
    }
    let channel = readable[rng.random_range(0..readable.len())];
    match sources[channel].channel.pop_front().expect("readable") {
        Item::Record => op.count += 1,
        Item::Marker(k) => {
            op.markers[k] += 1;
            if mode == Snapshots::AlignedMarkers {
                op.blocked[channel] = true;
            }
            if op.markers[k] == SOURCES {
                debug_assert!(op.snapshots[k].is_none(), "one snapshot per checkpoint");
                op.snapshots[k] = Some(op.count);
                op.blocked = [false; SOURCES];
            }
        }
    }
}

/// The cuts of a sweep over seeds, sorted by how they restore.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Cuts examined.
    pub cuts: usize,
    /// Cuts after which records are lost.
    pub lost_cuts: usize,
    /// Records lost, over all of them.
    pub lost_records: u64,
    /// The most records one cut lost.
    pub max_lost: u64,
    /// Cuts after which records are counted twice.
    pub double_cuts: usize,
    /// Records counted twice, over all of them.
    pub double_records: u64,
    /// The most records one cut counted twice.
    pub max_double: u64,
}

impl Sweep {
    /// Runs `seeds` runs (seeds `0..seeds`) of `snapshots` and sorts their cuts.
    pub fn run(snapshots: Snapshots, seeds: u64) -> Self {
        let mut sweep = Self::default();
        for seed in 0..seeds {
            for error in run(seed, snapshots) {
                sweep.cuts += 1;
                let n = error.unsigned_abs();
                if error < 0 {
                    sweep.lost_cuts += 1;
                    sweep.lost_records += n;
                    sweep.max_lost = sweep.max_lost.max(n);
                } else if error > 0 {
                    sweep.double_cuts += 1;
                    sweep.double_records += n;
                    sweep.max_double = sweep.max_double.max(n);
                }
            }
        }
        sweep
    }

    /// Cuts that restore every record exactly once.
    pub fn consistent(&self) -> usize {
        self.cuts - self.lost_cuts - self.double_cuts
    }
}

impl fmt::Display for Sweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cuts: {} consistent, {} lose records ({} in all, at most {}), \
             {} count records twice ({} in all, at most {})",
            self.cuts,
            self.consistent(),
            self.lost_cuts,
            self.lost_records,
            self.max_lost,
            self.double_cuts,
            self.double_records,
            self.max_double
        )
    }
}
