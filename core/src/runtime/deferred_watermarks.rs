//! Punctuated watermarks deferred to the end of a source batch ([`crate::time::deferred`])
//! change no result. A job whose source gathers records past its punctuated watermarks must
//! give the window results, late records, late partials and quarantined records of the
//! record-by-record path: here the source's own clock, guard and window operators, fed one
//! record at a time in the source's read order, each followed by its watermark.
//!
//! With two source subtasks the results depend on how the channels interleave, with or without
//! deferral; what must hold is that only a record behind its own channel's record-by-record
//! watermark can be late, and that every other record is counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;

use super::source_clock::SourceClock;
use super::source_task::SOURCE_BATCH;
use crate::operator::Operator;
use crate::operator::testing::{VecOutput, context};
use crate::sink::CollectSink;
use crate::source::VecSource;
use crate::time::guard::Offer;
use crate::time::{
    GuardConfig, Punctuation, Quarantine, QuarantineFactory, TimestampGuard, Watermark,
    WatermarkEmit, WatermarkStrategy, arith,
};
use crate::window::{
    Count, LateOutput, LatePartials, LocalPreAggregate, Partial, Window, WindowAggregate,
    WindowAssigner, WindowMerge, WindowResult, WindowSpec,
};
use crate::{Job, JobResult, RuntimeConfig};

/// `(id, event timestamp)`; the id is `partition * ID_STRIDE + index`.
type Ev = (u64, i64);
type Shared<T> = Arc<Mutex<Vec<T>>>;
type Results = Vec<WindowResult<u64, u64>>;

const ID_STRIDE: u64 = 1_000_000;
/// The guard's limits when it is on: the bogus timestamps below are further out.
const GUARD: GuardConfig = GuardConfig {
    max_future_skew_ms: Some(200),
    max_past_skew_ms: Some(400),
};

/// How the windows are aggregated.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Keyed windows at parallelism 1 (`key_by().window()`).
    Keyed,
    /// Local pre-aggregation chained with the source, merged at parallelism 1.
    TwoPhase,
}

#[derive(Debug, Clone)]
struct Case {
    partitions: Vec<Vec<Ev>>,
    bound_ms: u64,
    assigner: WindowAssigner,
    lateness_ms: i64,
    keys: u64,
    /// Punctuate only after records whose id is a multiple of this.
    marks: Option<u64>,
    guard: bool,
    shape: Shape,
}

/// Everything a run produces that deferral must leave alone, in arrival order.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    results: Results,
    late: Vec<(Ev, Window)>,
    late_partials: Vec<(Window, u64)>,
    quarantined: Vec<(Ev, Quarantine)>,
}

fn shared<T>() -> Shared<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn take<T>(target: &Shared<T>) -> Vec<T> {
    std::mem::take(&mut *target.lock().unwrap())
}

fn late_into(target: &Shared<(Ev, Window)>) -> LateOutput<Ev> {
    let target = Arc::clone(target);
    Arc::new(move |_| {
        let target = Arc::clone(&target);
        Ok(Box::new(move |record: &Ev, window| {
            target.lock().unwrap().push((*record, window));
            Ok(())
        }))
    })
}

fn late_partials_into(target: &Shared<(Window, u64)>) -> LatePartials {
    let target = Arc::clone(target);
    Arc::new(move |_| {
        let target = Arc::clone(&target);
        Ok(Box::new(move |window, records| {
            target.lock().unwrap().push((window, records));
            Ok(())
        }))
    })
}

fn spec(
    case: &Case,
    late: &Shared<(Ev, Window)>,
    partials: &Shared<(Window, u64)>,
) -> WindowSpec<Ev> {
    WindowSpec {
        assigner: case.assigner,
        allowed_lateness_ms: case.lateness_ms,
        timestamp: Arc::new(|e: &Ev| e.1),
        late: Some(late_into(late)),
        late_partials: Some(late_partials_into(partials)),
    }
}

/// The job's strategy: punctuated, the guard quarantining into `quarantined`.
fn strategy(case: &Case, quarantined: &Shared<(Ev, Quarantine)>) -> WatermarkStrategy<Ev> {
    let mut s = WatermarkStrategy::bounded_out_of_orderness(
        Duration::from_millis(case.bound_ms),
        |e: &Ev| e.1,
    );
    s.emit = WatermarkEmit::Punctuated(case.marks.map(|k| {
        let marks: Punctuation<Ev> = Arc::new(move |e: &Ev| e.0.is_multiple_of(k));
        marks
    }));
    if case.guard {
        s.guard = GUARD;
        let target = Arc::clone(quarantined);
        let factory: QuarantineFactory<Ev> = Arc::new(move |_| {
            let target = Arc::clone(&target);
            Ok(Box::new(move |record: Ev, why: Quarantine| {
                target.lock().unwrap().push((record, why));
                Ok(())
            }))
        });
        s.quarantine = Some(factory);
    }
    s
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        pin: false,
        ..RuntimeConfig::default()
    }
}

fn late_dropped(result: &JobResult) -> u64 {
    result.tasks.iter().map(|t| t.numLateRecordsDropped).sum()
}

/// Runs the case as a job with `parallelism` source subtasks; its outcome and the late count.
fn run_job(case: &Case, parallelism: usize) -> (Outcome, u64) {
    let (results, late, partials, quarantined) = (shared(), shared(), shared(), shared());
    let job = Job::new(config());
    let source = job.source_with_watermarks(
        "events",
        parallelism,
        VecSource::new(case.partitions.clone()),
        strategy(case, &quarantined),
    );
    let keys = case.keys;
    let spec = spec(case, &late, &partials);
    let windows = match case.shape {
        Shape::Keyed => source
            .key_by(move |e: &Ev| e.0 % keys)
            .window("window", 1, spec, Count),
        Shape::TwoPhase => {
            source.window_two_phase("window", move |e: &Ev| e.0 % keys, 1, spec, Count)
        }
    };
    let target = Arc::clone(&results);
    windows.sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let result = job.execute().expect("job runs");
    let outcome = Outcome {
        results: take(&results),
        late: take(&late),
        late_partials: take(&partials),
        quarantined: take(&quarantined),
    };
    (outcome, late_dropped(&result))
}

/// What the source subtask reads next: a record of a partition, or the partition's end.
#[derive(Debug, Clone, Copy)]
enum Step {
    Record(usize, Ev),
    End(usize),
}

/// The order one source subtask reads its partitions in: round robin, up to [`SOURCE_BATCH`]
/// records per turn; a partition leaves the rotation (swapped out, as the task's reader list
/// is) in the turn that finds its end.
fn read_order(partitions: &[Vec<Ev>]) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut readers: Vec<(usize, usize)> = (0..partitions.len()).map(|p| (p, 0)).collect();
    while !readers.is_empty() {
        let mut i = 0;
        while i < readers.len() {
            let (p, next) = &mut readers[i];
            let mut ended = false;
            for _ in 0..SOURCE_BATCH {
                match partitions[*p].get(*next) {
                    Some(&record) => {
                        steps.push(Step::Record(*p, record));
                        *next += 1;
                    }
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            if ended {
                steps.push(Step::End(*p));
                readers.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
    steps
}

/// The window operators of a shape, fed directly.
trait Windows {
    fn record(&mut self, record: Ev);
    fn watermark(&mut self, watermark: Watermark);
    fn results(&mut self) -> Results;
}

struct KeyedWindows {
    op: WindowAggregate<Ev, u64, Count>,
    out: VecOutput<WindowResult<u64, u64>>,
}

impl Windows for KeyedWindows {
    fn record(&mut self, record: Ev) {
        self.op.process(record, &mut self.out.collector()).unwrap();
    }
    fn watermark(&mut self, watermark: Watermark) {
        self.op
            .on_watermark(watermark, &mut self.out.collector())
            .unwrap();
    }
    fn results(&mut self) -> Results {
        std::mem::take(&mut self.out.0)
    }
}

struct TwoPhaseWindows {
    local: LocalPreAggregate<Ev, u64, Count>,
    partials: VecOutput<Partial<u64, u64>>,
    merge: WindowMerge<Ev, u64, Count>,
    out: VecOutput<WindowResult<u64, u64>>,
}

impl TwoPhaseWindows {
    /// Sends what the local step emitted to the merge step, in order (one channel).
    fn forward(&mut self) {
        for partial in self.partials.0.drain(..) {
            self.merge
                .process(partial, &mut self.out.collector())
                .unwrap();
        }
    }
}

impl Windows for TwoPhaseWindows {
    fn record(&mut self, record: Ev) {
        self.local
            .process(record, &mut self.partials.collector())
            .unwrap();
        self.forward();
    }
    fn watermark(&mut self, watermark: Watermark) {
        self.local
            .on_watermark(watermark, &mut self.partials.collector())
            .unwrap();
        self.forward();
        self.merge
            .on_watermark(watermark, &mut self.out.collector())
            .unwrap();
    }
    fn results(&mut self) -> Results {
        std::mem::take(&mut self.out.0)
    }
}

/// The record-by-record path of the case (one source subtask): every accepted record goes to
/// the windows alone, followed by the watermark its punctuation emits.
fn record_by_record(case: &Case) -> Outcome {
    let (late, partials, quarantined) = (shared(), shared(), shared());
    let spec = spec(case, &late, &partials);
    let keys = case.keys;
    let key_of = Arc::new(move |e: &Ev| e.0 % keys);
    let ctx = context(0, 1, None);
    let mut windows: Box<dyn Windows> = match case.shape {
        Shape::Keyed => {
            let mut op = WindowAggregate::new(key_of, spec, Count);
            op.open(&ctx).unwrap();
            Box::new(KeyedWindows {
                op,
                out: VecOutput::new(),
            })
        }
        Shape::TwoPhase => {
            let lateness = spec.allowed_lateness_ms;
            let late_partials = spec.late_partials.clone();
            let mut local = LocalPreAggregate::new(key_of, spec, Count);
            local.open(&ctx).unwrap();
            let mut merge = WindowMerge::new(Count, lateness, late_partials);
            merge.open(&ctx).unwrap();
            Box::new(TwoPhaseWindows {
                local,
                partials: VecOutput::new(),
                merge,
                out: VecOutput::new(),
            })
        }
    };
    let strategy = strategy(case, &quarantined);
    let mut clock = SourceClock::new(&strategy, case.partitions.len());
    let mut guards: Vec<Option<TimestampGuard<Ev>>> = case
        .partitions
        .iter()
        .map(|_| case.guard.then(|| TimestampGuard::new(GUARD)))
        .collect();
    let mut judged = |p: usize, record: Ev, verdict: Option<Quarantine>| match verdict {
        Some(why) => quarantined.lock().unwrap().push((record, why)),
        None => {
            clock.observe(p, record.1);
            windows.record(record);
            let punctuate = case.marks.is_none_or(|k| record.0.is_multiple_of(k));
            if punctuate && let Some(watermark) = clock.poll().watermark {
                windows.watermark(watermark);
            }
        }
    };
    for step in read_order(&case.partitions) {
        match step {
            Step::Record(p, record) => match guards[p].as_mut() {
                None => judged(p, record, None),
                Some(guard) => match guard.offer(record, record.1) {
                    Offer::Judged(record, _, verdict) => judged(p, record, verdict),
                    Offer::Held => {}
                    Offer::Released(all) => {
                        for (record, _, verdict) in all {
                            judged(p, record, verdict);
                        }
                    }
                },
            },
            Step::End(p) => {
                for (record, _, verdict) in guards[p]
                    .as_mut()
                    .map(TimestampGuard::finish)
                    .into_iter()
                    .flatten()
                {
                    judged(p, record, verdict);
                }
            }
        }
    }
    windows.watermark(Watermark::MAX);
    Outcome {
        results: windows.results(),
        late: take(&late),
        late_partials: take(&partials),
        quarantined: take(&quarantined),
    }
}

/// How a record's timestamp is drawn.
#[derive(Debug, Clone, Copy)]
enum Draw {
    /// The partition's trend plus this offset: mostly a little disorder, some records far
    /// behind (late), a few far ahead (they push the watermark on, or the guard quarantines
    /// them).
    Trend(i64),
    /// Exactly at the partition's watermark so far (the boundary of lateness).
    AtWatermark,
}

fn draw() -> impl Strategy<Value = Draw> {
    prop_oneof![
        12 => (-40i64..=8).prop_map(Draw::Trend),
        2 => (-150i64..=-40).prop_map(Draw::Trend),
        2 => Just(Draw::AtWatermark),
        1 => (500i64..=700).prop_map(Draw::Trend),
        1 => (-1_200i64..=-800).prop_map(Draw::Trend),
    ]
}

/// Partition `p`'s records, about 2 ms apart from `start`, as `draws` say, under
/// out-of-orderness `bound_ms`.
fn partition(p: u64, start: i64, draws: &[Draw], bound_ms: u64) -> Vec<Ev> {
    let mut max: Option<i64> = None;
    let mut records = Vec::with_capacity(draws.len());
    for (i, draw) in draws.iter().enumerate() {
        let trend = start + 2 * i as i64;
        let ts = match (draw, max) {
            (Draw::AtWatermark, Some(max)) => arith::watermark_for(max, bound_ms as i64),
            (Draw::AtWatermark, None) => trend,
            (Draw::Trend(offset), _) => trend + offset,
        };
        max = Some(max.map_or(ts, |m| m.max(ts)));
        records.push((p * ID_STRIDE + i as u64, ts));
    }
    records
}

fn assigner() -> impl Strategy<Value = WindowAssigner> {
    prop_oneof![
        (5i64..=40).prop_map(WindowAssigner::tumbling),
        (1i64..=4, 5i64..=15).prop_map(|(n, slide)| WindowAssigner::sliding(n * slide, slide)),
    ]
}

fn case(partitions: std::ops::RangeInclusive<usize>, max: usize) -> impl Strategy<Value = Case> {
    let draws = partitions.prop_flat_map(move |n| {
        proptest::collection::vec((0i64..100, proptest::collection::vec(draw(), 0..max)), n)
    });
    (
        draws,
        0u64..=20,
        assigner(),
        prop_oneof![Just(0i64), 1i64..=40],
        1u64..=3,
        prop_oneof![3 => Just(None), 1 => (2u64..=4).prop_map(Some)],
        any::<bool>(),
        prop_oneof![Just(Shape::Keyed), Just(Shape::TwoPhase)],
    )
        .prop_map(
            |(draws, bound_ms, assigner, lateness_ms, keys, marks, guard, shape)| Case {
                partitions: draws
                    .iter()
                    .enumerate()
                    .map(|(p, (start, draws))| partition(p as u64, *start, draws, bound_ms))
                    .collect(),
                bound_ms,
                assigner,
                lateness_ms,
                keys,
                marks,
                guard,
                shape,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// One source subtask over one to three partitions (more than a turn each, so turns
    /// interleave): the job with deferred watermarks equals the record-by-record path, result
    /// for result and late record for late record, in order.
    #[test]
    fn deferred_punctuated_watermarks_give_the_record_by_record_results(
        case in case(1..=3, 3 * SOURCE_BATCH / 2),
    ) {
        let expected = record_by_record(&case);
        let (outcome, late_count) = run_job(&case, 1);
        let partials: u64 = expected.late_partials.iter().map(|p| p.1).sum();
        prop_assert_eq!(late_count, expected.late.len() as u64 + partials);
        prop_assert_eq!(outcome, expected);
    }

    /// Two source subtasks of one partition each into windows at parallelism 1 (the valve takes
    /// the minimum over two channels): a record dropped as late was behind its own channel's
    /// record-by-record watermark, and tumbling windows count every other record.
    #[test]
    fn over_two_channels_only_records_behind_their_own_watermark_are_late(
        mut case in case(2..=2, 400),
    ) {
        case.guard = false;
        case.marks = None;
        let (outcome, _) = run_job(&case, 2);
        // Each record's own watermark before it, record by record: max timestamp so far − B − 1.
        let mut behind = BTreeMap::new();
        for partition in &case.partitions {
            let mut max = None;
            for &(id, ts) in partition {
                let own = max.map_or(i64::MIN, |m| arith::watermark_for(m, case.bound_ms as i64));
                behind.insert(id, ts <= own);
                max = Some(max.map_or(ts, |m: i64| m.max(ts)));
            }
        }
        for ((id, ts), window) in &outcome.late {
            prop_assert!(
                behind[id],
                "record ({id}, {ts}) dropped from {window:?}, ahead of its channel's watermark"
            );
        }
        prop_assert!(outcome.late_partials.is_empty(), "{:?}", outcome.late_partials);
        if let WindowAssigner::Tumbling { .. } = case.assigner {
            let mut last = BTreeMap::new();
            for r in &outcome.results {
                last.insert((r.window, r.key), r.value);
            }
            let records: usize = case.partitions.iter().map(Vec::len).sum();
            prop_assert_eq!(last.values().sum::<u64>() as usize, records - outcome.late.len());
        }
    }
}

/// A record exactly at the deferred watermark, which is its window's max timestamp: the
/// watermark fires the window first, so the record is late (the slow start makes the source's
/// batches 1, 2 and 4 records long, so the record would otherwise share a batch with it).
#[test]
fn a_record_at_the_deferred_watermark_arrives_after_it() {
    // B = 0, tumbling 10, lateness 0:
    //   [1] wm 0; 5 defers 4, 3 cuts [5] off, wm 4; 3, 10 (defers 9), then 9: at 9, it cuts
    //   [3, 10] off; wm 9 fires [0, 10) = {1, 5, 3}; 9 is late for it.
    let case = Case {
        partitions: vec![vec![(0, 1), (1, 5), (2, 3), (3, 10), (4, 9)]],
        bound_ms: 0,
        assigner: WindowAssigner::tumbling(10),
        lateness_ms: 0,
        keys: 1,
        marks: None,
        guard: false,
        shape: Shape::Keyed,
    };
    let expected = record_by_record(&case);
    assert_eq!(expected.late, vec![((4, 9), Window { start: 0, end: 10 })]);
    let (outcome, late_count) = run_job(&case, 1);
    assert_eq!(late_count, 1);
    assert_eq!(outcome, expected);
}
