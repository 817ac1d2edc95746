//! Flink's event-time semantics end to end, with hand-computed expectations: bounded
//! out-of-orderness, the firing boundary `end − 1`, lateness and re-firing, sliding windows, the
//! watermark minimum over channels, idleness, the timestamp guard, monotone watermarks, the two
//! global aggregation modes, and split streams.
//!
//! Wherever the exact firing point matters, the source has ONE partition at parallelism 1 and
//! emits a punctuated watermark after every record: records are then processed in order, and
//! each record arrives after the watermark of the record before it whenever that watermark
//! could make it late (the source defers a punctuated watermark to the end of its batch only
//! while the records gathered after it are ahead of it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_core::error::OperatorError;
use weir_core::operator::{Collector, Operator, OperatorContext};
use weir_core::sink::CollectSink;
use weir_core::source::{PartitionReader, Read, Source, VecSource};
use weir_core::time::{
    GuardConfig, Quarantine, QuarantineFactory, Watermark, WatermarkEmit, WatermarkStrategy,
};
use weir_core::window::{
    Count, GlobalAggregation, LateOutput, Window, WindowAggregate, WindowAssigner, WindowResult,
    WindowSpec,
};
use weir_core::{Job, JobResult, RuntimeConfig};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A test record: `(id, event timestamp in ms)`.
type Ev = (u64, i64);

type Shared<T> = Arc<Mutex<Vec<T>>>;

fn shared<T>() -> Shared<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn take<T: Clone>(target: &Shared<T>) -> Vec<T> {
    target.lock().unwrap().clone()
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        pin: false,
        ..RuntimeConfig::default()
    }
}

fn ts_of(e: &Ev) -> i64 {
    e.1
}

/// Records with ids 0, 1, … at the given timestamps.
fn events(timestamps: &[i64]) -> Vec<Ev> {
    timestamps
        .iter()
        .enumerate()
        .map(|(id, &ts)| (id as u64, ts))
        .collect()
}

/// Bounded out-of-orderness `bound_ms` with the given emission.
fn strategy(bound_ms: u64, emit: WatermarkEmit<Ev>) -> WatermarkStrategy<Ev> {
    let mut s = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound_ms), ts_of);
    s.emit = emit;
    s
}

/// A watermark after every record: deterministic firing with one partition.
fn punctuated(bound_ms: u64) -> WatermarkStrategy<Ev> {
    strategy(bound_ms, WatermarkEmit::Punctuated(None))
}

fn spec(
    assigner: WindowAssigner,
    lateness_ms: i64,
    late: Option<LateOutput<Ev>>,
) -> WindowSpec<Ev> {
    WindowSpec {
        assigner,
        allowed_lateness_ms: lateness_ms,
        timestamp: Arc::new(ts_of),
        late,
        late_partials: None,
    }
}

/// A late output collecting `(record, window)` into `target`.
fn late_into(target: &Shared<(Ev, Window)>) -> LateOutput<Ev> {
    let target = Arc::clone(target);
    Arc::new(move |_subtask| {
        let target = Arc::clone(&target);
        Ok(Box::new(move |record: &Ev, window: Window| {
            target.lock().unwrap().push((*record, window));
            Ok(())
        }))
    })
}

fn w(start: i64, end: i64) -> Window {
    Window { start, end }
}

/// `(window, value)` of global results, in arrival order.
fn lines(results: &[WindowResult<(), u64>]) -> Vec<(Window, u64)> {
    results.iter().map(|r| (r.window, r.value)).collect()
}

/// The last value emitted per window (re-fires replace earlier lines).
fn last_per_window(results: &[WindowResult<(), u64>]) -> BTreeMap<Window, u64> {
    results.iter().map(|r| (r.window, r.value)).collect()
}

fn late_dropped(result: &JobResult) -> u64 {
    result.tasks.iter().map(|t| t.numLateRecordsDropped).sum()
}

/// A deterministic pseudo-random sequence (SplitMix64).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` records per partition, roughly `step` ms apart with up to `jitter` ms of disorder.
fn disordered(partitions: u64, n: u64, step: i64, jitter: u64) -> Vec<Vec<Ev>> {
    (0..partitions)
        .map(|p| {
            (0..n)
                .map(|i| {
                    let id = p * 1_000_000 + i;
                    (id, i as i64 * step + (mix(id) % jitter) as i64)
                })
                .collect()
        })
        .collect()
}

/// Reference counts per window, computed directly from the records.
fn expected_counts(records: &[Vec<Ev>], assigner: WindowAssigner) -> BTreeMap<Window, u64> {
    let mut counts = BTreeMap::new();
    let mut windows = Vec::new();
    for &(_, ts) in records.iter().flatten() {
        windows.clear();
        assigner.assign(ts, &mut windows);
        for &window in &windows {
            *counts.entry(window).or_insert(0) += 1;
        }
    }
    counts
}

/// A bounded source whose partition `p` sleeps 1 ms every `sleep_every[p]` records (0: never),
/// so that a partition can be made slow on purpose. With `log`, each partition writes
/// [`Seen::SourceDone`] into it once it has handed out its last record.
#[derive(Debug, Clone)]
struct PacedSource {
    partitions: Vec<Vec<Ev>>,
    sleep_every: Vec<usize>,
    log: Option<Shared<Seen>>,
}

struct PacedReader {
    records: Vec<Ev>,
    next: usize,
    sleep_every: usize,
    log: Option<Shared<Seen>>,
}

impl Source for PacedSource {
    type Item = Ev;

    fn partitions(&self) -> usize {
        self.partitions.len()
    }

    fn open(
        &self,
        partition: usize,
        offset: u64,
    ) -> Result<Box<dyn PartitionReader<Ev>>, OperatorError> {
        Ok(Box::new(PacedReader {
            records: self.partitions[partition].clone(),
            next: offset as usize,
            sleep_every: self.sleep_every.get(partition).copied().unwrap_or(0),
            log: self.log.clone(),
        }))
    }
}

impl PartitionReader<Ev> for PacedReader {
    fn next(&mut self) -> Result<Read<Ev>, OperatorError> {
        let Some(&record) = self.records.get(self.next) else {
            if let Some(log) = self.log.take() {
                log.lock().unwrap().push(Seen::SourceDone);
            }
            return Ok(Read::End);
        };
        if self.sleep_every > 0 && self.next > 0 && self.next.is_multiple_of(self.sleep_every) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.next += 1;
        Ok(Read::Record(record))
    }

    fn offset(&self) -> u64 {
        self.next as u64
    }
}

/// What a logging operator saw, in order, within one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A record entering the window operator.
    In(Ev),
    /// A window result leaving it: window and value.
    Fired(Window, u64),
    /// A watermark.
    Wm(i64),
    /// A source partition handed out its last record.
    SourceDone,
}

/// Logs the records (and watermarks) entering the window operator it is chained before.
struct LogInput(Shared<Seen>);

impl Operator<Ev, Ev> for LogInput {
    fn process(&mut self, record: Ev, out: &mut Collector<'_, Ev>) -> Result<(), OperatorError> {
        self.0.lock().unwrap().push(Seen::In(record));
        out.collect(record);
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _out: &mut Collector<'_, Ev>,
    ) -> Result<(), OperatorError> {
        self.0.lock().unwrap().push(Seen::Wm(watermark.0));
        Ok(())
    }
}

/// Logs the results of the window operator it is chained after and, if `watermarks`, the
/// watermarks: a window operator fires on a watermark before passing it on, so the results a
/// watermark fired come right before it in the log.
struct LogResults {
    log: Shared<Seen>,
    watermarks: bool,
}

impl<K: Send + 'static> Operator<WindowResult<K, u64>, WindowResult<K, u64>> for LogResults {
    fn process(
        &mut self,
        result: WindowResult<K, u64>,
        out: &mut Collector<'_, WindowResult<K, u64>>,
    ) -> Result<(), OperatorError> {
        self.log
            .lock()
            .unwrap()
            .push(Seen::Fired(result.window, result.value));
        out.collect(result);
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _out: &mut Collector<'_, WindowResult<K, u64>>,
    ) -> Result<(), OperatorError> {
        if self.watermarks {
            self.log.lock().unwrap().push(Seen::Wm(watermark.0));
        }
        Ok(())
    }
}

/// A window result as a [`LogResults`] log with watermarks tells it.
#[derive(Debug, Clone, Copy)]
struct Firing {
    window: Window,
    value: u64,
    /// The watermark that fired it.
    watermark: i64,
    /// Whether it came after the source's [`Seen::SourceDone`].
    after_source_done: bool,
}

fn firings(log: &[Seen]) -> Vec<Firing> {
    let mut out = Vec::new();
    let mut pending = Vec::new();
    let mut source_done = false;
    for seen in log {
        match *seen {
            Seen::Fired(window, value) => pending.push((window, value, source_done)),
            Seen::Wm(watermark) => {
                out.extend(pending.drain(..).map(|(window, value, after)| Firing {
                    window,
                    value,
                    watermark,
                    after_source_done: after,
                }))
            }
            Seen::SourceDone => source_done = true,
            Seen::In(_) => {}
        }
    }
    assert!(
        pending.is_empty(),
        "results after the last watermark: {pending:?}"
    );
    out
}

/// Watermark sequences by `(stage, subtask)`.
type Traces = Arc<Mutex<BTreeMap<(&'static str, usize), Vec<i64>>>>;

/// Records every watermark a subtask sees, under `(stage, subtask)`.
struct WatermarkTrace<T> {
    stage: &'static str,
    subtask: usize,
    trace: Traces,
    _records: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static> Operator<T, T> for WatermarkTrace<T> {
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        self.subtask = context.subtask;
        Ok(())
    }

    fn process(&mut self, record: T, out: &mut Collector<'_, T>) -> Result<(), OperatorError> {
        out.collect(record);
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        _out: &mut Collector<'_, T>,
    ) -> Result<(), OperatorError> {
        self.trace
            .lock()
            .unwrap()
            .entry((self.stage, self.subtask))
            .or_default()
            .push(watermark.0);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Bounded out-of-orderness: watermark = max ts − B − 1; a window fires at end − 1
// ---------------------------------------------------------------------------------------------

#[test]
fn a_window_fires_exactly_when_the_watermark_reaches_its_end_minus_one() {
    // B = 5 ms, tumbling windows of 10 ms, lateness 0, one partition, watermark after each
    // record. The log is written by operators chained with the window in one task, so it is
    // the exact interleaving of records, watermarks and results at the window.
    //
    //   ts 1  -> max 1,  wm 1-5-1  = -5
    //   ts 3  -> max 3,  wm -3
    //   ts 14 -> max 14, wm 8      [0,10) needs wm >= 9: not yet
    //   ts 7  -> max 14, wm 8 (no new watermark); 7 is still on time: [0,10) = {1,3,7}
    //   ts 15 -> max 15, wm 9  -> [0,10) fires with 3
    //   ts 8  -> [0,10): 9 + 0 <= 9: late, dropped (numLateRecordsDropped = 1)
    //   ts 25 -> max 25, wm 19 -> [10,20) = {14,15} would fire with 2, but
    //   end   -> wm MAX follows with no record between and replaces 19 in the writer's open
    //            buffer: [10,20) fires with 2 and [20,30) = {25} with 1, both at MAX
    //
    // The source defers each punctuated watermark to the end of its batch (slow start: 1, 2,
    // 4 records) and cuts the batch before a record at or behind it: -3 is overtaken by 8
    // inside the batch [3, 14] (nothing in it could be late for -3), and ts 8 cuts [7, 15]
    // off so that it arrives after 9, as record by record.
    let log = shared();
    let out = shared();
    // No timed or idle flush can split the buffer, so the writer's coalescing below is
    // deterministic.
    let job = Job::new(RuntimeConfig {
        buffer_timeout: Duration::from_secs(60),
        flush_on_idle: false,
        ..config()
    });
    let (input_log, result_log, target) = (Arc::clone(&log), Arc::clone(&log), Arc::clone(&out));
    job.source_with_watermarks(
        "events",
        1,
        VecSource::new(vec![events(&[1, 3, 14, 7, 15, 8, 25])]),
        punctuated(5),
    )
    .rebalance(1)
    .process("log-in", move || LogInput(Arc::clone(&input_log)))
    .process("window", || {
        WindowAggregate::new(
            Arc::new(|_: &Ev| ()),
            WindowSpec {
                assigner: WindowAssigner::tumbling(10),
                allowed_lateness_ms: 0,
                timestamp: Arc::new(ts_of),
                late: None,
                late_partials: None,
            },
            Count,
        )
    })
    .process("log-out", move || LogResults {
        log: Arc::clone(&result_log),
        watermarks: false,
    })
    .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let result = job.execute().expect("job runs");

    use Seen::{Fired, In, Wm};
    assert_eq!(
        take(&log),
        vec![
            In((0, 1)),
            Wm(-5),
            In((1, 3)),
            In((2, 14)),
            Wm(8),
            In((3, 7)),
            In((4, 15)),
            Wm(9),
            Fired(w(0, 10), 3),
            In((5, 8)),
            In((6, 25)),
            // Watermark 19 and the final watermark follow each other with no record between:
            // the writer coalesces them in the open buffer, so [10, 20) fires at the final one
            // (the same results, nothing could be late in between).
            Wm(i64::MAX),
            Fired(w(10, 20), 2),
            Fired(w(20, 30), 1),
        ]
    );
    assert_eq!(
        lines(&take(&out)),
        vec![(w(0, 10), 3), (w(10, 20), 2), (w(20, 30), 1)]
    );
    assert_eq!(late_dropped(&result), 1);
}

// ---------------------------------------------------------------------------------------------
// 2. A record at the watermark boundary
// ---------------------------------------------------------------------------------------------

#[test]
fn a_record_is_late_once_the_watermark_reaches_its_window_end_minus_one() {
    // B = 5, tumbling 10, lateness 0.
    //   id0 ts 14 -> wm 8
    //   id1 ts 9  -> [0,10): 9 + 0 <= 8? no: counted (the window's max timestamp, wm one below)
    //   id2 ts 15 -> wm 9 -> [0,10) fires with {9} = 1
    //   id3 ts 9  -> [0,10): 9 + 0 <= 9: late -> late output ((3, 9), [0,10)), counted dropped
    //   id4 ts 10 -> [10,20): 19 <= 9? no: counted
    //   end       -> [10,20) = {14, 15, 10} = 3
    let out = shared();
    let late = shared();
    let target = Arc::clone(&out);
    let job = Job::new(config());
    job.source_with_watermarks(
        "events",
        1,
        VecSource::new(vec![events(&[14, 9, 15, 9, 10])]),
        punctuated(5),
    )
    .key_by(|_: &Ev| 0u64)
    .window(
        "window",
        1,
        spec(WindowAssigner::tumbling(10), 0, Some(late_into(&late))),
        Count,
    )
    .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let result = job.execute().expect("job runs");

    let got: Vec<(Window, u64, u64)> = take(&out)
        .iter()
        .map(|r| (r.window, r.key, r.value))
        .collect();
    assert_eq!(got, vec![(w(0, 10), 0, 1), (w(10, 20), 0, 3)]);
    assert_eq!(take(&late), vec![((3, 9), w(0, 10))]);
    assert_eq!(late_dropped(&result), 1);
    let window_task = result
        .tasks
        .iter()
        .find(|t| t.task.contains("window"))
        .expect("window task");
    assert_eq!(window_task.numLateRecordsDropped, 1);
}

// ---------------------------------------------------------------------------------------------
// 3. Allowed lateness: re-firing, then dropping after end − 1 + L
// ---------------------------------------------------------------------------------------------

#[test]
fn allowed_lateness_refires_a_window_until_the_watermark_reaches_end_minus_one_plus_lateness() {
    // B = 0 (wm = max ts − 1), tumbling 10, lateness L = 20: [0,10) is dropped once
    // wm >= 9 + 20 = 29, [10,20) once wm >= 39.
    //   ts 5  -> wm 4
    //   ts 11 -> wm 10 -> [0,10) fires: 1
    //   ts 7  -> [0,10) fired, 29 > 10: re-fires: 2
    //   ts 29 -> wm 28 -> [10,20) fires: 1 ({11})
    //   ts 2  -> [0,10): 29 <= 28? no: re-fires: 3
    //   ts 30 -> wm 29 -> [20,30) fires: 1 ({29}); [0,10) reaches 29: freed
    //   ts 3  -> [0,10): 29 <= 29: late -> late output, dropped
    //   ts 12 -> [10,20): 39 > 29: re-fires: 2
    //   end   -> [30,40) fires: 1 ({30})
    let out = shared();
    let late = shared();
    let target = Arc::clone(&out);
    let job = Job::new(config());
    job.source_with_watermarks(
        "events",
        1,
        VecSource::new(vec![events(&[5, 11, 7, 29, 2, 30, 3, 12])]),
        punctuated(0),
    )
    .window_global(
        "window",
        GlobalAggregation::WindowAll,
        spec(WindowAssigner::tumbling(10), 20, Some(late_into(&late))),
        Count,
    )
    .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let result = job.execute().expect("job runs");

    assert_eq!(
        lines(&take(&out)),
        vec![
            (w(0, 10), 1),
            (w(0, 10), 2),
            (w(10, 20), 1),
            (w(0, 10), 3),
            (w(20, 30), 1),
            (w(10, 20), 2),
            (w(30, 40), 1),
        ]
    );
    assert_eq!(take(&late), vec![((6, 3), w(0, 10))]);
    assert_eq!(late_dropped(&result), 1);
}

// ---------------------------------------------------------------------------------------------
// 4. Sliding windows
// ---------------------------------------------------------------------------------------------

#[test]
fn a_sliding_window_assigns_each_record_to_size_over_slide_windows() {
    // Size 10, slide 5: a record at ts is in the windows starting at floor(ts/5)*5 and 5 before.
    //   0  -> [-5,5), [0,10)
    //   4  -> [-5,5), [0,10)
    //   7  -> [0,10), [5,15)
    //   12 -> [5,15), [10,20)
    //   19 -> [10,20), [15,25)
    // Counts: [-5,5) 2, [0,10) 3, [5,15) 2, [10,20) 2, [15,25) 1; 5 records x 2 windows = 10.
    for emit in [WatermarkEmit::EndOfInput, WatermarkEmit::Punctuated(None)] {
        let out = shared();
        let target = Arc::clone(&out);
        let job = Job::new(config());
        job.source_with_watermarks(
            "events",
            1,
            VecSource::new(vec![events(&[0, 4, 7, 12, 19])]),
            strategy(0, emit.clone()),
        )
        .window_global(
            "window",
            GlobalAggregation::WindowAll,
            spec(WindowAssigner::sliding(10, 5), 0, None),
            Count,
        )
        .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
        let result = job.execute().expect("job runs");

        let mut got = lines(&take(&out));
        got.sort();
        assert_eq!(
            got,
            vec![
                (w(-5, 5), 2),
                (w(0, 10), 3),
                (w(5, 15), 2),
                (w(10, 20), 2),
                (w(15, 25), 1),
            ],
            "{emit:?}"
        );
        assert_eq!(late_dropped(&result), 0, "{emit:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. The watermark is the minimum over input channels
// ---------------------------------------------------------------------------------------------

#[test]
fn a_window_does_not_fire_while_another_input_channel_is_behind() {
    // Two partitions at source parallelism 2 into a window at parallelism 1; B = 0, tumbling
    // 100. Partition 0 ("fast"): ids 0..2000 at ts = id, read at full speed, so its watermark
    // runs ahead to 1999 − 1 = 1998. Partition 1 ("slow"): ids 10_000.. at ts 0, 2, …, 198,
    // with a 1 ms sleep every 5 records, so its watermark creeps up to 198 − 1 = 197.
    // The window's input watermark is the minimum over its two channels: until the last slow
    // record has arrived it never exceeds 197, so no window with end − 1 > 197 (all but
    // [0,100)) fires before that, and no slow record is late although the fast channel is
    // far ahead in event time.
    // Counts: [0,100) = 100 + 50, [100,200) = 100 + 50, [k*100,(k+1)*100) = 100 for k = 2..19.
    const SLOW: u64 = 10_000;
    let fast: Vec<Ev> = (0..2000).map(|i| (i as u64, i)).collect();
    let slow: Vec<Ev> = (0..100).map(|i| (SLOW + i as u64, 2 * i)).collect();
    let log = shared();
    let out = shared();
    let (input_log, result_log, target) = (Arc::clone(&log), Arc::clone(&log), Arc::clone(&out));
    let job = Job::new(config());
    job.source_with_watermarks(
        "events",
        2,
        PacedSource {
            partitions: vec![fast, slow],
            sleep_every: vec![0, 5],
            log: None,
        },
        punctuated(0),
    )
    .rebalance(1)
    .process("log-in", move || LogInput(Arc::clone(&input_log)))
    .process("window", || {
        WindowAggregate::new(
            Arc::new(|_: &Ev| ()),
            WindowSpec {
                assigner: WindowAssigner::tumbling(100),
                allowed_lateness_ms: 0,
                timestamp: Arc::new(ts_of),
                late: None,
                late_partials: None,
            },
            Count,
        )
    })
    .process("log-out", move || LogResults {
        log: Arc::clone(&result_log),
        watermarks: false,
    })
    .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let result = job.execute().expect("job runs");

    let mut expected = BTreeMap::from([(w(0, 100), 150), (w(100, 200), 150)]);
    for k in 2..20 {
        expected.insert(w(k * 100, (k + 1) * 100), 100);
    }
    assert_eq!(last_per_window(&take(&out)), expected);
    assert_eq!(take(&out).len(), 20, "each window fired once");
    assert_eq!(late_dropped(&result), 0);

    // Replay the window's own view: its watermark, and how many slow records it has seen.
    let (mut watermark, mut slow_seen) = (i64::MIN, 0);
    for seen in take(&log) {
        match seen {
            Seen::In((id, ts)) => {
                assert!(
                    ts > watermark,
                    "record ({id}, {ts}) behind watermark {watermark}"
                );
                if id >= SLOW {
                    slow_seen += 1;
                }
            }
            Seen::Wm(wm) => {
                assert!(
                    wm <= 197 || slow_seen == 100,
                    "watermark {wm} passed the slow channel's 197 with {slow_seen}/100 of it read"
                );
                watermark = wm;
            }
            Seen::SourceDone => {}
            Seen::Fired(window, _) => {
                assert!(window.max_timestamp() <= watermark);
                assert!(
                    window.max_timestamp() <= 197 || slow_seen == 100,
                    "{window:?} fired at {watermark} with {slow_seen}/100 slow records read"
                );
            }
        }
    }
    assert_eq!(slow_seen, 100);
}

// ---------------------------------------------------------------------------------------------
// 6. Idleness
// ---------------------------------------------------------------------------------------------

/// One partition at source parallelism 2 (subtask 1 owns none), periodic watermarks every
/// 10 ms, a slow reader; returns the window's firings and the number of late records.
fn idle_subtask_run(idle_timeout: Option<Duration>) -> (Vec<Firing>, u64) {
    // 4000 records, ts = i (ms), 1 ms sleep every 25 records: about 160 ms of reading, i.e.
    // about 16 watermark intervals, over 40 windows of 100 ms. A 1 ms buffer timeout sends
    // records and watermarks on as they come rather than in 100 ms batches.
    let records: Vec<Ev> = (0..4000).map(|i| (i as u64, i)).collect();
    let mut s = strategy(0, WatermarkEmit::Periodic(Duration::from_millis(10)));
    s.idle_timeout = idle_timeout;
    let log = shared();
    let result_log = Arc::clone(&log);
    let job = Job::new(RuntimeConfig {
        buffer_timeout: Duration::from_millis(1),
        ..config()
    });
    job.source_with_watermarks(
        "events",
        2,
        PacedSource {
            partitions: vec![records],
            sleep_every: vec![25],
            log: Some(Arc::clone(&log)),
        },
        s,
    )
    .window_global(
        "window",
        GlobalAggregation::WindowAll,
        spec(WindowAssigner::tumbling(100), 0, None),
        Count,
    )
    .process("log", move || LogResults {
        log: Arc::clone(&result_log),
        watermarks: true,
    })
    .sink("discard", 1, |_| weir_core::sink::DiscardSink);
    let result = job.execute().expect("job runs");
    let fired = firings(&take(&log));
    // Complete either way: 40 windows of 100 records each, each fired once.
    assert_eq!(fired.len(), 40, "{idle_timeout:?}");
    let counts: BTreeMap<Window, u64> = fired.iter().map(|f| (f.window, f.value)).collect();
    let expected: BTreeMap<Window, u64> =
        (0..40).map(|k| (w(k * 100, (k + 1) * 100), 100)).collect();
    assert_eq!(counts, expected, "{idle_timeout:?}");
    (fired, late_dropped(&result))
}

#[test]
fn a_subtask_without_partitions_holds_windows_back_until_the_end_without_idleness() {
    // Subtask 1 never emits a watermark and is never idle, so the window's input watermark
    // (the minimum over its channels) stays at MIN until subtask 1 sends MAX, which it does
    // only once the whole source has been read. Every window therefore fires after the last
    // record was read. (It may fire at a finite watermark: when subtask 1's MAX overtakes
    // subtask 0's backlog, the watermark follows subtask 0's, but only after reading ended.)
    let (fired, late) = idle_subtask_run(None);
    assert_eq!(late, 0);
    assert!(
        fired.iter().all(|f| f.after_source_done),
        "a window fired while the source was still being read: {fired:?}"
    );
}

#[test]
fn an_idle_subtask_without_partitions_lets_windows_fire_before_the_end() {
    // With a 20 ms idle timeout subtask 1 declares itself idle at its first check (it owns no
    // partition); the window then follows subtask 0's periodic watermarks and fires while the
    // source is still being read.
    let (fired, late) = idle_subtask_run(Some(Duration::from_millis(20)));
    assert_eq!(late, 0);
    assert!(
        fired
            .iter()
            .any(|f| !f.after_source_done && f.watermark < i64::MAX),
        "no window fired before the end of reading: {fired:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. The timestamp guard at start-up
// ---------------------------------------------------------------------------------------------

/// What [`guarded_window_all`] saw: the windows' counts, the quarantined records with why,
/// and the job's result.
struct Guarded {
    windows: Vec<(Window, u64)>,
    quarantined: Vec<(Ev, Quarantine)>,
    result: JobResult,
}

/// Runs `records` (one partition) through a source with punctuated watermarks and the
/// timestamp guard on (1 h future skew, 12 h past skew) into window-all counts of 10 s
/// windows.
fn guarded_window_all(records: Vec<Ev>) -> Guarded {
    let quarantined: Shared<(Ev, Quarantine)> = shared();
    let sink_q = Arc::clone(&quarantined);
    let factory: QuarantineFactory<Ev> = Arc::new(move |_subtask| {
        let sink_q = Arc::clone(&sink_q);
        Ok(Box::new(move |record: Ev, why: Quarantine| {
            sink_q.lock().unwrap().push((record, why));
            Ok(())
        }))
    });
    let mut s = punctuated(0);
    s.guard = GuardConfig {
        max_future_skew_ms: Some(3_600_000),
        max_past_skew_ms: Some(12 * 3_600_000),
    };
    s.quarantine = Some(factory);
    let out = shared();
    let target = Arc::clone(&out);
    let job = Job::new(config());
    job.source_with_watermarks("events", 1, VecSource::new(vec![records]), s)
        .window_global(
            "window",
            GlobalAggregation::WindowAll,
            spec(WindowAssigner::tumbling(10_000), 0, None),
            Count,
        )
        .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let result = job.execute().expect("job runs");
    Guarded {
        windows: lines(&take(&out)),
        quarantined: take(&quarantined),
        result,
    }
}

#[test]
fn a_bogus_first_timestamp_is_quarantined_and_never_fires_an_old_window() {
    const DAY: i64 = 86_400_000;
    // base = 100 days, a multiple of the 10 s window. Record 0 is 20 days older than the rest;
    // records 1..=39 are at base + id * 1000.
    // The guard holds the first 16 records; sorted, their median (index 8) is base + 8000.
    // Record 0 is 20 days behind it, more than the 12 h past skew: quarantined.
    // Windows of 10 s: [base, +10s) = ids 1..=9 = 9, then ids 10..=19, 20..=29, 30..=39 = 10 each.
    let base = 100 * DAY;
    let mut records = vec![(0u64, base - 20 * DAY)];
    records.extend((1..=39u64).map(|id| (id, base + id as i64 * 1000)));
    let Guarded {
        windows,
        quarantined,
        result,
    } = guarded_window_all(records);

    assert_eq!(
        windows,
        vec![
            (w(base, base + 10_000), 9),
            (w(base + 10_000, base + 20_000), 10),
            (w(base + 20_000, base + 30_000), 10),
            (w(base + 30_000, base + 40_000), 10),
        ]
    );
    assert_eq!(quarantined.len(), 1);
    let ((id, ts), why) = &quarantined[0];
    assert_eq!((*id, *ts), (0, base - 20 * DAY));
    assert_eq!(why.timestamp_ms, base - 20 * DAY);
    assert_eq!(why.reference_ms, base + 8000);
    assert!(why.reason.contains("behind"), "{}", why.reason);
    let source = result
        .tasks
        .iter()
        .find(|t| t.task.starts_with("events"))
        .expect("source task");
    assert_eq!(source.numRecordsQuarantined, 1);
    assert_eq!(
        result
            .tasks
            .iter()
            .map(|t| t.numRecordsQuarantined)
            .sum::<u64>(),
        1
    );
    assert_eq!(late_dropped(&result), 0);
}

#[test]
fn bogus_timestamps_past_the_warm_up_are_quarantined_in_order_from_a_batch_read() {
    // 2 000 records 100 ms apart; the source reads them record by record only in its first
    // turn (the guard's warm-up), then a batch at a time. Two records far ahead in a row and
    // one far behind, all well past the first turn, leave their batches for the quarantine;
    // the records around them are counted, in their windows, under punctuated watermarks.
    const DAY: i64 = 86_400_000;
    let base = 100 * DAY;
    let bogus = |id: u64| match id {
        700 | 701 => Some(base + 30 * DAY),
        1500 => Some(base - 30 * DAY),
        _ => None,
    };
    let records: Vec<Ev> = (0..2000u64)
        .map(|id| (id, bogus(id).unwrap_or(base + id as i64 * 100)))
        .collect();
    let Guarded {
        windows,
        quarantined,
        result,
    } = guarded_window_all(records);

    let expected: Vec<(Window, u64)> = (0..20i64)
        .map(|k| {
            let start = base + k * 10_000;
            let count = match k {
                7 => 98,
                15 => 99,
                _ => 100,
            };
            (w(start, start + 10_000), count)
        })
        .collect();
    assert_eq!(windows, expected);
    let ids: Vec<u64> = quarantined.iter().map(|((id, _), _)| *id).collect();
    assert_eq!(ids, [700, 701, 1500]);
    let source = result
        .tasks
        .iter()
        .find(|t| t.task.starts_with("events"))
        .expect("source task");
    assert_eq!(source.numRecordsQuarantined, 3);
    assert_eq!(late_dropped(&result), 0);
}

// ---------------------------------------------------------------------------------------------
// 8. Watermarks never go backwards
// ---------------------------------------------------------------------------------------------

#[test]
fn watermarks_strictly_increase_at_every_operator_on_out_of_order_input() {
    // Two partitions at parallelism 2, ts ≈ 10·i + up to 100 ms of disorder, B = 30: the
    // watermark generator sees plenty of records below its maximum. Every subtask of the
    // source chain and of the keyed window (2 channels each, combined by the valve) must see a
    // strictly increasing sequence of watermarks ending with MAX.
    let trace: Traces = Arc::default();
    let (at_source, after_window) = (Arc::clone(&trace), Arc::clone(&trace));
    let job = Job::new(config());
    job.source_with_watermarks(
        "events",
        2,
        VecSource::new(disordered(2, 2000, 10, 100)),
        punctuated(30),
    )
    .process("trace-source", move || WatermarkTrace::<Ev> {
        stage: "source",
        subtask: 0,
        trace: Arc::clone(&at_source),
        _records: std::marker::PhantomData,
    })
    .key_by(|e: &Ev| e.0 % 7)
    .window(
        "window",
        2,
        spec(WindowAssigner::tumbling(100), 0, None),
        Count,
    )
    .process("trace-window", move || WatermarkTrace {
        stage: "window",
        subtask: 0,
        trace: Arc::clone(&after_window),
        _records: std::marker::PhantomData,
    })
    .sink("discard", 2, |_| weir_core::sink::DiscardSink);
    job.execute().expect("job runs");

    let trace = trace.lock().unwrap();
    let keys: Vec<_> = trace.keys().copied().collect();
    assert_eq!(
        keys,
        vec![("source", 0), ("source", 1), ("window", 0), ("window", 1)]
    );
    for (at, seq) in trace.iter() {
        assert!(seq.len() > 10, "{at:?} saw only {seq:?}");
        assert_eq!(seq.last(), Some(&i64::MAX), "{at:?}");
        if let Some(pair) = seq.windows(2).find(|p| p[0] >= p[1]) {
            panic!("{at:?}: watermark {} after {}", pair[1], pair[0]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 9. The two global aggregation modes agree
// ---------------------------------------------------------------------------------------------

fn global_run(
    mode: GlobalAggregation,
    records: &[Vec<Ev>],
    strategy: WatermarkStrategy<Ev>,
    spec: WindowSpec<Ev>,
) -> (Vec<WindowResult<(), u64>>, u64) {
    let out = shared();
    let target = Arc::clone(&out);
    let job = Job::new(config());
    job.source_with_watermarks("events", 2, VecSource::new(records.to_vec()), strategy)
        .window_global("window", mode, spec, Count)
        .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let result = job.execute().expect("job runs");
    (take(&out), late_dropped(&result))
}

#[test]
fn window_all_and_local_global_aggregation_give_identical_results_in_batch() {
    // 2 partitions x 2000 records, ts ≈ 5·i + up to 200 ms of disorder, tumbling 100 ms; in
    // batch mode every window fires once, at the end, with the count of its records.
    let records = disordered(2, 2000, 5, 200);
    let assigner = WindowAssigner::tumbling(100);
    let expected = expected_counts(&records, assigner);
    assert_eq!(expected.values().sum::<u64>(), 4000);
    let batch = strategy(0, WatermarkEmit::EndOfInput);
    for mode in [
        GlobalAggregation::WindowAll,
        GlobalAggregation::Parallel { parallelism: 2 },
    ] {
        let (results, late) = global_run(mode, &records, batch.clone(), spec(assigner, 0, None));
        assert_eq!(late, 0, "{mode:?}");
        assert_eq!(
            results.len(),
            expected.len(),
            "{mode:?}: one line per window"
        );
        assert_eq!(last_per_window(&results), expected, "{mode:?}");
    }
}

#[test]
fn window_all_and_local_global_aggregation_give_identical_final_results_in_streaming() {
    // The same kind of trace, streaming with a watermark after each record (B = 20) and sliding
    // windows (100, slide 50). Lateness 1_000_000 ms covers the whole trace (ts < 10_200), so no
    // record is dropped: the last line of each window is its full count, in both modes, even
    // though windows fire early and re-fire.
    let records = disordered(2, 2000, 5, 200);
    let assigner = WindowAssigner::sliding(100, 50);
    let expected = expected_counts(&records, assigner);
    assert_eq!(expected.values().sum::<u64>(), 2 * 4000);
    let mut finals = Vec::new();
    for mode in [
        GlobalAggregation::WindowAll,
        GlobalAggregation::Parallel { parallelism: 2 },
    ] {
        let (results, late) = global_run(
            mode,
            &records,
            punctuated(20),
            spec(assigner, 1_000_000, None),
        );
        assert_eq!(late, 0, "{mode:?}");
        // Counts only grow: the last line per window is also its largest.
        let mut largest = BTreeMap::new();
        for r in &results {
            let v = largest.entry(r.window).or_insert(0);
            *v = (*v).max(r.value);
        }
        let last = last_per_window(&results);
        assert_eq!(last, largest, "{mode:?}: a re-fire went down");
        assert_eq!(last, expected, "{mode:?}");
        finals.push(last);
    }
    assert_eq!(finals[0], finals[1]);
}

// ---------------------------------------------------------------------------------------------
// 10. Split
// ---------------------------------------------------------------------------------------------

#[test]
fn both_branches_of_a_split_receive_every_record_and_the_job_finishes() {
    // Branch 1 collects the records; branch 2 counts them in tumbling windows of 100 ms
    // (watermarks must reach it too, or its windows would never fire).
    let records = disordered(2, 1000, 5, 50);
    let mut all: Vec<Ev> = records.iter().flatten().copied().collect();
    all.sort();
    let assigner = WindowAssigner::tumbling(100);
    let expected = expected_counts(&records, assigner);
    let (raw, counts) = (shared(), shared());
    let (raw_target, count_target) = (Arc::clone(&raw), Arc::clone(&counts));
    let job = Job::new(config());
    let (first, second) = job
        .source_with_watermarks("events", 2, VecSource::new(records), punctuated(50))
        .split();
    first.sink("raw", 1, move |_| CollectSink::new(Arc::clone(&raw_target)));
    second
        .window_global(
            "window",
            GlobalAggregation::WindowAll,
            spec(assigner, 0, None),
            Count,
        )
        .sink("counts", 1, move |_| {
            CollectSink::new(Arc::clone(&count_target))
        });
    let result = job.execute().expect("job finishes");

    let mut got = take(&raw);
    got.sort();
    assert_eq!(got, all);
    assert_eq!(late_dropped(&result), 0);
    assert_eq!(last_per_window(&take(&counts)), expected);
}
