//! The bolts: tagging, and the three output bolts (count-origins, the flow and origin
//! windows) on one thread.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rtrb::{Consumer, Producer};
use rustc_hash::FxHashMap;

use super::acker::AckerMsg;
use super::spout::SpoutTuple;
use super::topology::{Backoff, Msg, push_waiting};
use super::{AckingJob, AckingRun, LoseTuples};
use crate::traffic::record::{Home, Plate};
use crate::traffic::tag::{LongTermTracker, OriginCounts, Tagged};
use crate::traffic::windows::{
    FLOW_WINDOW_MS, ORIGIN_WINDOW_MS, WindowTotals, window_end, window_start,
};

/// A tagged tuple with the edge ids of its three branches (count-origins, flow_1m,
/// origin_5m), all anchored to the tag task's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagTuple {
    /// The tagged record.
    pub tagged: Tagged,
    /// The tree's root id; 0 without acking.
    pub root: u64,
    /// Edge ids of the three branches; 0 without acking.
    pub edges: [u64; 3],
    /// The tag task's watermark when it emitted the tuple.
    pub watermark: i64,
    /// The flow branch was lost (injected failure): flow_1m never sees it.
    pub flow_lost: bool,
}

/// Tuples popped from one input before a bolt turns to the next.
const BATCH: usize = 256;

/// Sends `Ack { root, xor }` unless acking is off.
fn ack(acker: &mut Option<Producer<AckerMsg>>, root: u64, xor: u64) {
    if let Some(acker) = acker {
        push_waiting(acker, AckerMsg::Ack { root, xor }, || {});
    }
}

/// Per-input watermarks of a bolt: each never goes backwards; the bolt's is their minimum.
struct Watermarks(Vec<i64>);

impl Watermarks {
    fn new(inputs: usize) -> Self {
        Self(vec![i64::MIN; inputs])
    }

    /// Input `i` reached `watermark`; returns the bolt's watermark.
    fn advance(&mut self, i: usize, watermark: i64) -> i64 {
        self.0[i] = self.0[i].max(watermark);
        self.0.iter().copied().min().unwrap_or(i64::MAX)
    }
}

/// What a bolt's inputs deliver.
enum Input<T> {
    /// A tuple from input `.0`.
    Tuple(usize, T),
    /// Every input has sent `Flush`.
    Flushed,
}

/// Drives a bolt's inputs: pops round robin until every input sent `Stop`, handing each
/// tuple and, once, the end of every input's flush to `handle`.
fn drive<T>(inputs: &mut [Consumer<Msg<T>>], mut handle: impl FnMut(Input<T>)) {
    let n = inputs.len();
    let mut flushes = 0;
    let mut stopped = vec![false; inputs.len()];
    let mut running = inputs.len();
    let mut backoff = Backoff::default();
    while running > 0 {
        let mut progress = false;
        for (i, input) in inputs.iter_mut().enumerate() {
            for _ in 0..BATCH {
                if stopped[i] {
                    break;
                }
                let Ok(msg) = input.pop() else { break };
                progress = true;
                match msg {
                    Msg::Tuple(t) => handle(Input::Tuple(i, t)),
                    Msg::Flush => {
                        flushes += 1;
                        if flushes == n {
                            handle(Input::Flushed);
                        }
                    }
                    Msg::Stop => {
                        stopped[i] = true;
                        running -= 1;
                    }
                }
            }
        }
        if progress {
            backoff.reset();
        } else {
            backoff.snooze();
        }
    }
}

/// A tag task: per-plate long-term state, one tuple per branch anchored to its input.
pub(super) struct TagBolt {
    inputs: Vec<Consumer<Msg<SpoutTuple>>>,
    output: Producer<Msg<TagTuple>>,
    acker: Option<Producer<AckerMsg>>,
    home: Home,
    state: FxHashMap<Plate, LongTermTracker>,
    rng: Pcg64Mcg,
    lose: Option<LoseTuples>,
}

impl TagBolt {
    pub(super) fn new(
        job: &AckingJob,
        task: usize,
        inputs: Vec<Consumer<Msg<SpoutTuple>>>,
        output: Producer<Msg<TagTuple>>,
        acker: Option<Producer<AckerMsg>>,
        lose: Option<LoseTuples>,
    ) -> Self {
        Self {
            inputs,
            output,
            acker,
            home: job.home,
            state: FxHashMap::default(),
            rng: Pcg64Mcg::seed_from_u64(0x7a9_u64 << 16 | task as u64),
            lose,
        }
    }

    /// Runs the task until every spout stopped; returns the flow tuples it lost.
    pub(super) fn run(self) -> u64 {
        let Self {
            mut inputs,
            mut output,
            mut acker,
            home,
            mut state,
            mut rng,
            lose,
        } = self;
        let mut watermarks = Watermarks::new(inputs.len());
        let (mut seen, mut lost) = (0u64, 0u64);
        let output = &mut output;
        drive(&mut inputs, |input| {
            let (i, t) = match input {
                Input::Tuple(i, t) => (i, t),
                Input::Flushed => {
                    push_waiting(output, Msg::Flush, || {});
                    return;
                }
            };
            {
                let watermark = watermarks.advance(i, t.watermark);
                let tagged = Tagged::new(t.record, &home, |r, day| {
                    state.entry(r.plate).or_default().observe(day)
                });
                let edges = match acker {
                    Some(_) => [(); 3].map(|()| nonzero(&mut rng)),
                    None => [0; 3],
                };
                seen += 1;
                let flow_lost = lose.is_some_and(|l| seen > l.after && lost < l.count);
                lost += u64::from(flow_lost);
                let tuple = TagTuple {
                    tagged,
                    root: t.root,
                    edges,
                    watermark,
                    flow_lost,
                };
                push_waiting(output, Msg::Tuple(tuple), || {});
                ack(&mut acker, t.root, t.edge ^ edges[0] ^ edges[1] ^ edges[2]);
            }
        });
        push_waiting(output, Msg::Stop, || {});
        if let Some(acker) = &mut acker {
            push_waiting(acker, AckerMsg::Stop, || {});
        }
        lost
    }
}

fn nonzero(rng: &mut Pcg64Mcg) -> u64 {
    loop {
        let id = rng.random::<u64>();
        if id != 0 {
            return id;
        }
    }
}

/// One open window: its counts and the anchors (root, edge) of its tuples, acked when it
/// fires.
#[derive(Debug, Default)]
struct OpenWindow {
    count: u64,
    long_term: u64,
    anchors: Vec<(u64, u64)>,
}

/// Tumbling event-time windows keyed by (start, sub-key), as Storm's windowed bolt holds its
/// tuples until the window is evaluated.
struct Windows {
    size_ms: i64,
    open: BTreeMap<(i64, usize), OpenWindow>,
}

impl Windows {
    fn new(size_ms: i64) -> Self {
        Self {
            size_ms,
            open: BTreeMap::new(),
        }
    }

    /// Adds a tuple at `ts` unless its window has fired at `watermark`; `false`: late.
    fn add(
        &mut self,
        ts: i64,
        sub: usize,
        long_term: bool,
        anchor: (u64, u64),
        watermark: i64,
    ) -> bool {
        let start = window_start(ts, self.size_ms);
        if watermark >= window_end(start, self.size_ms) - 1 {
            return false;
        }
        let window = self.open.entry((start, sub)).or_default();
        window.count += 1;
        window.long_term += u64::from(long_term);
        if anchor.0 != 0 {
            window.anchors.push(anchor);
        }
        true
    }

    /// Fires, in order of start, every window whose end − 1 the watermark has reached.
    fn fire(&mut self, watermark: i64, mut fired: impl FnMut((i64, usize), OpenWindow)) {
        while let Some(entry) = self.open.first_entry() {
            if watermark < window_end(entry.key().0, self.size_ms) - 1 {
                return;
            }
            let key = *entry.key();
            fired(key, entry.remove());
        }
    }
}

/// What the output bolts produced.
pub(super) struct SinkResult {
    counts: OriginCounts,
    windows: WindowTotals,
    flow_late: u64,
    origin_late: u64,
}

impl SinkResult {
    pub(super) fn add_to(self, run: &mut AckingRun) {
        run.counts = self.counts;
        run.windows = self.windows;
        run.flow_late = self.flow_late;
        run.origin_late = self.origin_late;
    }
}

/// count-origins, flow_1m and origin_5m: three bolts on one thread, each acking its own
/// input tuple (count-origins at once, the windows when they fire or for a late tuple).
pub(super) struct SinkBolts {
    inputs: Vec<Consumer<Msg<TagTuple>>>,
    acker: Option<Producer<AckerMsg>>,
    watermarks: Watermarks,
    watermark: i64,
    flow: Windows,
    origin: Windows,
    out: SinkResult,
}

impl SinkBolts {
    pub(super) fn new(
        inputs: Vec<Consumer<Msg<TagTuple>>>,
        acker: Option<Producer<AckerMsg>>,
    ) -> Self {
        Self {
            watermarks: Watermarks::new(inputs.len()),
            inputs,
            acker,
            watermark: i64::MIN,
            flow: Windows::new(FLOW_WINDOW_MS),
            origin: Windows::new(ORIGIN_WINDOW_MS),
            out: SinkResult {
                counts: OriginCounts::default(),
                windows: WindowTotals::default(),
                flow_late: 0,
                origin_late: 0,
            },
        }
    }

    /// Runs the bolts until every tag task stopped.
    pub(super) fn run(mut self) -> SinkResult {
        let mut inputs = std::mem::take(&mut self.inputs);
        drive(&mut inputs, |input| match input {
            Input::Tuple(i, t) => self.tuple(i, t),
            // The end of input: every window fires, later tuples (replays) are late.
            Input::Flushed => self.advance(i64::MAX),
        });
        if let Some(acker) = &mut self.acker {
            push_waiting(acker, AckerMsg::Stop, || {});
        }
        self.out
    }

    fn tuple(&mut self, i: usize, t: TagTuple) {
        let (root, [to_count, to_flow, to_origin]) = (t.root, t.edges);
        let ts = t.tagged.record.ts_ms;
        self.out.counts.add(&t.tagged);
        ack(&mut self.acker, root, to_count);
        if !t.flow_lost && !self.flow.add(ts, 0, false, (root, to_flow), self.watermark) {
            self.out.flow_late += 1;
            ack(&mut self.acker, root, to_flow);
        }
        let (o, long_term) = (t.tagged.origin.index(), t.tagged.long_term);
        if !self
            .origin
            .add(ts, o, long_term, (root, to_origin), self.watermark)
        {
            self.out.origin_late += 1;
            ack(&mut self.acker, root, to_origin);
        }
        let watermark = self.watermarks.advance(i, t.watermark);
        self.advance(watermark);
    }

    /// Moves the watermark to `watermark` if that is later, firing the windows it passes.
    fn advance(&mut self, watermark: i64) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let (acker, windows) = (&mut self.acker, &mut self.out.windows);
        self.flow.fire(watermark, |(start, _), w| {
            windows.flow.insert(start, w.count);
            for (root, edge) in w.anchors {
                ack(acker, root, edge);
            }
        });
        self.origin.fire(watermark, |key, w| {
            windows.origin.insert(key, (w.count, w.long_term));
            for (root, edge) in w.anchors {
                ack(acker, root, edge);
            }
        });
    }
}
