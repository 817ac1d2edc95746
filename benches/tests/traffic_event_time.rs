//! The event-time traffic job: batch results equal a brute-force reference and the timely
//! peer at any parallelism; streaming with an allowed lateness that covers the trace equals
//! batch under periodic and punctuated watermarks; both global aggregation modes agree;
//! every line is accounted for; late records, the timestamp guard at start-up and idleness
//! behave as specified on hand-written inputs.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use weir_bench::peer::timely_traffic;
use weir_bench::traffic::generator::GeneratorConfig;
use weir_bench::traffic::input::{Line, TrafficInput};
use weir_bench::traffic::job::{
    DEFAULT_GUARD, EventTimeOptions, TrafficJob, TrafficRun, Watermarks, run,
};
use weir_bench::traffic::parse::HEADER;
use weir_bench::traffic::record::{Home, Plate};
use weir_bench::traffic::tag::{LongTermTracker, Tagged};
use weir_bench::traffic::windows::{
    FLOW_FILE, FLOW_WINDOW_MS, FlowCount, ORIGIN_FILE, OriginWindowCount, WindowTotals, brute_force,
};
use weir_core::time::guard::Offer;
use weir_core::time::{GuardConfig, TimestampGuard};
use weir_core::window::GlobalAggregation;

/// 2026-03-02T00:00:00Z: a multiple of a minute (and of five).
const T: i64 = 1_772_409_600_000;
const MIN: i64 = FLOW_WINDOW_MS;
const DAY: i64 = 86_400_000;

/// Lateness that covers every generated trace below (a few days, records at most 3 h late).
const COVERING_LATENESS: Duration = Duration::from_secs(10 * 86_400);

const PARALLEL_2: GlobalAggregation = GlobalAggregation::Parallel { parallelism: 2 };

fn home() -> Home {
    "浙A".parse().unwrap()
}

/// `records` over `partitions`, four days of traffic (so plates become long-term and
/// windows span several days).
fn generated(records: u64, partitions: usize) -> TrafficInput {
    TrafficInput::Generate(GeneratorConfig {
        records,
        partitions,
        records_per_day: records / 4,
        seed: 11,
        ..GeneratorConfig::default()
    })
}

fn batch(guard: GuardConfig, aggregation: GlobalAggregation) -> EventTimeOptions {
    EventTimeOptions {
        guard,
        aggregation,
        batch: true,
        ..EventTimeOptions::default()
    }
}

fn streaming(
    watermarks: Watermarks,
    allowed_lateness: Duration,
    guard: GuardConfig,
    aggregation: GlobalAggregation,
) -> EventTimeOptions {
    EventTimeOptions {
        watermarks,
        allowed_lateness,
        guard,
        aggregation,
        batch: false,
        ..EventTimeOptions::default()
    }
}

/// Runs the job into `output` and checks the accounting on the way out ([`check`]).
fn run_job(
    input: &TrafficInput,
    parallelism: usize,
    output: &Path,
    event_time: EventTimeOptions,
) -> TrafficRun {
    let what = format!("p={parallelism} {event_time:?}");
    let job = TrafficJob {
        parallelism,
        event_time,
        ..TrafficJob::new(input.clone(), output)
    };
    let outcome = run(&job, |_, _| {}).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!outcome.result.stopped_early, "{what}");
    check(&outcome, output, &what);
    outcome
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    read_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn to_jsonl<T: Serialize>(lines: impl IntoIterator<Item = T>) -> String {
    lines
        .into_iter()
        .map(|line| serde_json::to_string(&line).unwrap() + "\n")
        .collect()
}

/// `flow_1m.jsonl` reduced to the last line of each window, by window start, as text.
fn final_flow_jsonl(output: &Path) -> String {
    let mut last = BTreeMap::new();
    for line in read_lines(&output.join(FLOW_FILE)) {
        let flow: FlowCount = serde_json::from_str(&line).unwrap();
        last.insert(flow.window_start, flow);
    }
    to_jsonl(last.into_values())
}

/// `origin_5m.jsonl` reduced to the last line of each (window, origin), as text.
fn final_origin_jsonl(output: &Path) -> String {
    let mut last = BTreeMap::new();
    for line in read_lines(&output.join(ORIGIN_FILE)) {
        let origin: OriginWindowCount = serde_json::from_str(&line).unwrap();
        last.insert((origin.window_start, origin.origin.index()), origin);
    }
    to_jsonl(last.into_values())
}

/// The accounting every run must satisfy, and the files agreeing with the run's report.
fn check(outcome: &TrafficRun, output: &Path, what: &str) {
    assert_eq!(
        outcome.records_in,
        outcome.records_counted()
            + outcome.records_late_dropped
            + outcome.records_rejected
            + outcome.records_quarantined,
        "{what}: records_in != counted + late + rejected + quarantined"
    );
    assert_eq!(
        outcome.records_in,
        outcome.counts.total() + outcome.records_rejected + outcome.records_quarantined,
        "{what}: records_in != tagged + rejected + quarantined"
    );
    let late = read_jsonl(&output.join("late.jsonl"));
    // A record line names its input line: file and line, or partition and offset.
    for l in late.iter().filter(|l| l.get("ts_ms").is_some()) {
        assert!(
            l["line"].is_u64() && l["file"].is_string()
                || l["offset"].is_u64() && l["partition"].is_u64(),
            "{what}: a late record without its line: {l}"
        );
    }
    // A line is one record, or a partial of `records` records the merge step dropped.
    let late_of = |name: &str| -> u64 {
        late.iter()
            .filter(|l| l["output"] == name)
            .map(|l| l["records"].as_u64().expect("records"))
            .sum()
    };
    assert_eq!(late_of("flow_1m"), outcome.records_late_dropped, "{what}");
    assert_eq!(
        late_of("origin_5m"),
        outcome.records_late_dropped_origin_5m,
        "{what}"
    );
    assert_eq!(
        late.iter()
            .map(|l| l["records"].as_u64().expect("records"))
            .sum::<u64>(),
        outcome.records_late_dropped + outcome.records_late_dropped_origin_5m,
        "{what}: late.jsonl holds only flow_1m and origin_5m lines"
    );
    assert_eq!(
        read_lines(&output.join("rejected.jsonl")).len() as u64,
        outcome.records_rejected + outcome.records_quarantined,
        "{what}"
    );
    assert_eq!(
        final_flow_jsonl(output),
        outcome.windows.flow_jsonl(),
        "{what}"
    );
    assert_eq!(
        final_origin_jsonl(output),
        outcome.windows.origin_jsonl(),
        "{what}"
    );
    // Origin windows count every tagged record not late for them.
    let origin_total: u64 = outcome.windows.origin.values().map(|(n, _)| n).sum();
    assert_eq!(
        origin_total + outcome.records_late_dropped_origin_5m,
        outcome.counts.total(),
        "{what}"
    );
}

/// What the job must produce with nothing late: each partition read in order, its records
/// judged by its own [`TimestampGuard`] (when `guard` is on), the accepted ones tagged with a
/// per-plate [`LongTermTracker`] in partition order (a plate lives on one partition), then
/// counted by [`brute_force`]. Returns the windows and the quarantined count.
fn reference(input: &TrafficInput, guard: GuardConfig) -> (WindowTotals, u64) {
    let home = home();
    let mut trackers = HashMap::<Plate, LongTermTracker>::new();
    let mut tagged = Vec::new();
    let mut quarantined = 0;
    for p in 0..input.partitions() {
        let mut reader = input.open(p).unwrap();
        let mut partition_guard = guard.is_on().then(|| TimestampGuard::new(guard));
        let mut judged = Vec::new();
        loop {
            let line = reader.next_item().unwrap();
            let ended = line.is_none();
            match (line, &mut partition_guard) {
                (None, Some(g)) => judged.extend(g.finish()),
                (None, None) | (Some(Line::Rejected(_) | Line::Skipped), _) => {}
                (Some(Line::Record(record)), None) => judged.push((record, record.ts_ms, None)),
                (Some(Line::Record(record)), Some(g)) => match g.offer(record, record.ts_ms) {
                    Offer::Judged(record, ts, verdict) => judged.push((record, ts, verdict)),
                    Offer::Held => {}
                    Offer::Released(all) => judged.extend(all),
                },
            }
            for (record, _, verdict) in judged.drain(..) {
                if verdict.is_some() {
                    quarantined += 1;
                    continue;
                }
                tagged.push(Tagged::new(record, &home, |record, day| {
                    trackers.entry(record.plate).or_default().observe(day)
                }));
            }
            if ended {
                break;
            }
        }
    }
    (brute_force(&tagged), quarantined)
}

/// Writes `lines` (after the header) as a one-partition CSV input.
fn csv_input(dir: &Path, lines: &[(i64, &str, u32)]) -> TrafficInput {
    let mut text = format!("{HEADER}\n");
    for (ts, plate, checkpoint) in lines {
        text.push_str(&format!("{ts},{plate},{checkpoint}\n"));
    }
    let path = dir.join("cameras.csv");
    fs::write(&path, text).unwrap();
    TrafficInput::from_path(&path).unwrap()
}

#[test]
fn batch_equals_brute_force_and_timely_at_any_parallelism() {
    let input = generated(40_000, 3);
    for guard in [GuardConfig::OFF, DEFAULT_GUARD] {
        let (expected, quarantined) = reference(&input, guard);
        assert!(expected.flow.len() > 3 * 24 * 60, "spans days");
        assert!(
            expected
                .origin
                .values()
                .any(|&(_, long_term)| long_term > 0),
            "some plates become long-term"
        );
        let timely = timely_traffic::run(&input, home(), 2, guard, |_| {}).unwrap();
        assert_eq!(timely.windows, expected, "timely, guard {guard:?}");
        assert_eq!(timely.records_quarantined, quarantined);
        for p in [1, 2, 4] {
            let what = format!("p={p}, guard {guard:?}");
            let out = tempfile::tempdir().unwrap();
            let outcome = run_job(&input, p, out.path(), batch(guard, PARALLEL_2));
            assert_eq!(outcome.records_in, 40_000, "{what}");
            assert_eq!(outcome.records_late_dropped, 0, "{what}");
            assert_eq!(outcome.records_late_dropped_origin_5m, 0, "{what}");
            assert_eq!(outcome.records_quarantined, quarantined, "{what}");
            assert_eq!(outcome.records_rejected, timely.records_rejected, "{what}");
            assert_eq!(outcome.counts, timely.counts, "{what}");
            assert_eq!(outcome.windows, expected, "{what}");
            assert_eq!(outcome.windows, timely.windows, "{what}");
            assert_eq!(
                final_flow_jsonl(out.path()),
                expected.flow_jsonl(),
                "{what}"
            );
            assert_eq!(
                final_origin_jsonl(out.path()),
                expected.origin_jsonl(),
                "{what}"
            );
            // Batch fires each window once: one line per window (in any order: the two
            // merge subtasks interleave).
            let written = read_lines(&out.path().join(FLOW_FILE));
            assert_eq!(written.len(), expected.flow.len(), "{what}");
        }
    }
}

#[test]
fn streaming_with_covering_lateness_equals_batch() {
    let input = generated(40_000, 2);
    let out = tempfile::tempdir().unwrap();
    let batch_run = run_job(&input, 2, out.path(), batch(DEFAULT_GUARD, PARALLEL_2));
    assert_eq!(batch_run.windows, reference(&input, DEFAULT_GUARD).0);
    for watermarks in [
        Watermarks::Periodic(Duration::from_millis(1)),
        Watermarks::Punctuated,
    ] {
        for p in [1, 2] {
            let what = format!("{watermarks:?} p={p}");
            let out = tempfile::tempdir().unwrap();
            let options = streaming(watermarks, COVERING_LATENESS, DEFAULT_GUARD, PARALLEL_2);
            let outcome = run_job(&input, p, out.path(), options);
            assert_eq!(outcome.records_late_dropped, 0, "{what}");
            assert_eq!(outcome.records_late_dropped_origin_5m, 0, "{what}");
            assert_eq!(outcome.records_quarantined, batch_run.records_quarantined);
            assert_eq!(outcome.windows, batch_run.windows, "{what}");
            assert_eq!(outcome.counts, batch_run.counts, "{what}");
        }
    }
}

#[test]
fn window_all_and_parallel_aggregation_agree() {
    let input = generated(30_000, 2);
    let modes = [GlobalAggregation::WindowAll, PARALLEL_2];
    let mut runs = Vec::new();
    for aggregation in modes {
        for options in [
            batch(DEFAULT_GUARD, aggregation),
            streaming(
                Watermarks::Punctuated,
                COVERING_LATENESS,
                DEFAULT_GUARD,
                aggregation,
            ),
        ] {
            let out = tempfile::tempdir().unwrap();
            let outcome = run_job(&input, 2, out.path(), options.clone());
            assert_eq!(outcome.records_late_dropped, 0, "{options:?}");
            runs.push((options, outcome.windows));
        }
    }
    let (_, first) = &runs[0];
    assert_eq!(*first, reference(&input, DEFAULT_GUARD).0);
    for (options, windows) in &runs[1..] {
        assert_eq!(windows, first, "{options:?} vs window-all batch");
    }
}

/// One late flow_1m record as `late.jsonl` holds it: ts, plate, window start and end.
fn late_lines(output: &Path, name: &str) -> Vec<(i64, String, i64, i64)> {
    read_jsonl(&output.join("late.jsonl"))
        .into_iter()
        .filter(|l| l["output"] == name)
        .map(|l| {
            (
                l["ts_ms"].as_i64().unwrap(),
                l["plate"].as_str().unwrap().to_owned(),
                l["window_start"].as_i64().unwrap(),
                l["window_end"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn punctuated_zero_lateness_drops_exactly_the_late_records() {
    // One partition, parallelism 1, punctuated watermarks, out-of-orderness 0, lateness 0:
    // after each record the watermark is (max ts so far) - 0 - 1; a record is late when its
    // window's end - 1 <= watermark. Flow windows are [T + k min, T + (k + 1) min).
    let records: [(i64, &str, u32); 13] = [
        (T, "浙A00001", 1),                    // 1  [T, T+1m)            wm T-1
        (T + 30_000, "浙A00002", 2),           // 2  [T, T+1m)            wm T+29_999
        (T + MIN, "浙B00001", 3), // 3  [T+1m, T+2m)         wm T+59_999: fires [T, T+1m) = 2
        (T + 59_999, "京A00001", 4), // 4  LATE: end-1 = T+59_999 <= wm
        (T + 90_000, "浙A00003", 5), // 5  [T+1m, T+2m)         wm T+89_999
        (T + 61_000, "浙B00002", 6), // 6  [T+1m, T+2m): end-1 = T+119_999 > wm, counted
        (T + 195_000, "沪C00001", 7), // 7  [T+3m, T+4m)         wm T+194_999: fires [T+1m, T+2m) = 3
        (T + 150_000, "粤B00001", 8), // 8  LATE: [T+2m, T+3m), end-1 = T+179_999 <= wm
        (T + 3 * MIN, "浙A00001", 9), // 9  [T+3m, T+4m)         wm stays T+194_999
        (T + 5 * MIN, "浙C00001", 10), // 10 [T+5m, T+6m)         wm T+299_999: fires [T+3m, T+4m) = 2
        (T + 299_999, "京A00001", 11), // 11 LATE: [T+4m, T+5m), end-1 = T+299_999 <= wm
        (T, "浙A00002", 12),           // 12 LATE: [T, T+1m)
        (T + 5 * MIN + 1_000, "浙A00004", 13), // 13 [T+5m, T+6m); end of input fires it = 2
    ];
    // Origin windows are five minutes, [T, T+5m) and [T+5m, T+10m); the same rule makes
    // only records 11 (wm T+299_999 at it) and 12 late for them. Records 4 and 8 are late for
    // flow_1m only, and counted in [T, T+5m).
    let expected_flow = [(T, 2), (T + MIN, 3), (T + 3 * MIN, 2), (T + 5 * MIN, 2)];
    let expected_late = [
        (T + 59_999, "京A00001", T, T + MIN),
        (T + 150_000, "粤B00001", T + 2 * MIN, T + 3 * MIN),
        (T + 299_999, "京A00001", T + 4 * MIN, T + 5 * MIN),
        (T, "浙A00002", T, T + MIN),
    ];
    let expected_late_origin = [
        (T + 299_999, "京A00001", T, T + 5 * MIN),
        (T, "浙A00002", T, T + 5 * MIN),
    ];
    // [T, T+5m): local 1, 2, 5, 9; province 3, 6; other 4, 7, 8. [T+5m, T+10m): local 13,
    // province 10. One day only: nothing long-term.
    let expected_origin: BTreeMap<(i64, usize), (u64, u64)> = [
        ((T, 0), (4, 0)),
        ((T, 1), (2, 0)),
        ((T, 2), (3, 0)),
        ((T + 5 * MIN, 0), (1, 0)),
        ((T + 5 * MIN, 1), (1, 0)),
    ]
    .into();
    let flow_text: String = expected_flow
        .iter()
        .map(|(start, count)| {
            format!(
                "{{\"window_start\":{start},\"window_end\":{},\"count\":{count}}}\n",
                start + MIN
            )
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let input = csv_input(dir.path(), &records);
    // With the guard on, the 13 records are all held for its warm-up and released in order
    // at the end of the partition, a watermark after each: the same answer.
    for guard in [GuardConfig::OFF, DEFAULT_GUARD] {
        for aggregation in [GlobalAggregation::WindowAll, PARALLEL_2] {
            let what = format!("{guard:?} {aggregation:?}");
            let out = tempfile::tempdir().unwrap();
            let options = EventTimeOptions {
                out_of_orderness: Duration::ZERO,
                ..streaming(Watermarks::Punctuated, Duration::ZERO, guard, aggregation)
            };
            let outcome = run_job(&input, 1, out.path(), options);
            assert_eq!(outcome.records_in, 13, "{what}");
            assert_eq!(outcome.records_rejected, 0, "{what}");
            assert_eq!(outcome.records_quarantined, 0, "{what}");
            assert_eq!(outcome.records_counted(), 9, "{what}");
            assert_eq!(outcome.records_late_dropped, 4, "{what}");
            assert_eq!(outcome.records_late_dropped_origin_5m, 2, "{what}");
            assert_eq!(outcome.counts.total(), 13, "{what}");
            assert_eq!(
                outcome.windows.flow,
                BTreeMap::from(expected_flow),
                "{what}"
            );
            assert_eq!(outcome.windows.origin, expected_origin, "{what}");

            let late = late_lines(out.path(), "flow_1m");
            let expected: Vec<_> = expected_late
                .iter()
                .map(|&(ts, plate, start, end)| (ts, plate.to_owned(), start, end))
                .collect();
            assert_eq!(late, expected, "{what}");
            let late = late_lines(out.path(), "origin_5m");
            let expected: Vec<_> = expected_late_origin
                .iter()
                .map(|&(ts, plate, start, end)| (ts, plate.to_owned(), start, end))
                .collect();
            assert_eq!(late, expected, "{what}");

            // Lateness 0: each window fires once. Window-all fires in window order; the
            // parallel merge's two subtasks may interleave, so compare sorted there.
            let written = fs::read_to_string(out.path().join(FLOW_FILE)).unwrap();
            if aggregation == GlobalAggregation::WindowAll {
                assert_eq!(written, flow_text, "{what}");
            } else {
                let mut lines: Vec<&str> = written.lines().collect();
                lines.sort_by_key(|l| serde_json::from_str::<FlowCount>(l).unwrap().window_start);
                assert_eq!(lines.join("\n") + "\n", flow_text, "{what}");
            }
        }
    }
}

#[test]
fn a_bogus_first_record_is_quarantined_at_start_up() {
    // The first data line is 20 days older than the rest; then 19 records 10 s apart.
    let old = T - 20 * DAY;
    let plates: Vec<String> = (0..20).map(|i| format!("浙A1{i:04}")).collect();
    let mut records = vec![(old, plates[0].as_str(), 1)];
    records.extend((1..20).map(|i| (T + (i - 1) * 10_000, plates[i as usize].as_str(), 2)));
    // The guard holds the first 16 records: sorted, [old, T, T+10 s, ..., T+140 s]; the
    // median (index 8) is T + 70 s, the reference the old record is judged against.
    let reference_ms = T + 70_000;
    let dir = tempfile::tempdir().unwrap();
    let input = csv_input(dir.path(), &records);
    for options in [
        batch(DEFAULT_GUARD, PARALLEL_2),
        streaming(
            Watermarks::Punctuated,
            Duration::ZERO,
            DEFAULT_GUARD,
            GlobalAggregation::WindowAll,
        ),
        streaming(
            Watermarks::Periodic(Duration::from_millis(1)),
            Duration::ZERO,
            DEFAULT_GUARD,
            PARALLEL_2,
        ),
    ] {
        let what = format!("{options:?}");
        let out = tempfile::tempdir().unwrap();
        let outcome = run_job(&input, 1, out.path(), options);
        assert_eq!(outcome.records_in, 20, "{what}");
        assert_eq!(outcome.records_quarantined, 1, "{what}");
        assert_eq!(outcome.records_rejected, 0, "{what}");
        assert_eq!(outcome.records_late_dropped, 0, "{what}");
        assert_eq!(outcome.records_counted(), 19, "{what}");
        // 19 records from T to T + 180 s: windows T .. T+3m, six in the first three minutes.
        let flow: Vec<(i64, u64)> = outcome.windows.flow.iter().map(|(&s, &n)| (s, n)).collect();
        assert_eq!(
            flow,
            [(T, 6), (T + MIN, 6), (T + 2 * MIN, 6), (T + 3 * MIN, 1)],
            "{what}"
        );
        assert!(!outcome.windows.flow.contains_key(&old), "{what}");
        assert!(
            read_jsonl(&out.path().join(FLOW_FILE))
                .iter()
                .all(|l| l["window_start"].as_i64().unwrap() >= T),
            "{what}"
        );

        let rejected = read_jsonl(&out.path().join("rejected.jsonl"));
        assert_eq!(rejected.len(), 1, "{what}: {rejected:?}");
        let q = &rejected[0];
        // Line 1 is the header: the old record is line 2 of the file.
        let file = input.files()[0].display().to_string();
        assert_eq!(
            (q["file"].as_str(), q["line"].as_u64()),
            (Some(file.as_str()), Some(2)),
            "{q}"
        );
        assert!(q["reason"].as_str().unwrap().contains("behind"), "{q}");
        assert_eq!(q["ts_ms"].as_i64(), Some(old), "{q}");
        assert_eq!(q["reference_ms"].as_i64(), Some(reference_ms), "{q}");
        assert_eq!(q["plate"], plates[0].as_str(), "{q}");
        assert_eq!(q["checkpoint_id"], 1, "{q}");
    }

    // Without the guard the old record is counted in a window 20 days back.
    let out = tempfile::tempdir().unwrap();
    let outcome = run_job(&input, 1, out.path(), batch(GuardConfig::OFF, PARALLEL_2));
    assert_eq!(outcome.records_quarantined, 0);
    assert_eq!(outcome.records_counted(), 20);
    assert_eq!(outcome.windows.flow.get(&old), Some(&1));
}

#[test]
fn idle_source_subtasks_do_not_stop_bounded_streaming_runs() {
    // One partition at parallelism 2: source subtask 1 reads nothing. With an idle timeout it
    // declares itself idle; without one it holds the watermark back. Either way the bounded
    // runs end (with the final watermark) and account for every record.
    let input = generated(20_000, 1);
    let out = tempfile::tempdir().unwrap();
    let batch_run = run_job(&input, 2, out.path(), batch(DEFAULT_GUARD, PARALLEL_2));
    for watermarks in [
        Watermarks::Punctuated,
        Watermarks::Periodic(Duration::from_millis(1)),
    ] {
        // A second: the empty subtask is idle at once (it owns no partition); subtask 0 is
        // not declared idle while it reads (see `idle_flapping_...` for a short timeout).
        for idle_timeout in [None, Some(Duration::from_secs(1))] {
            let what = format!("{watermarks:?} idle {idle_timeout:?}");
            let out = tempfile::tempdir().unwrap();
            let options = EventTimeOptions {
                idle_timeout,
                ..streaming(watermarks, Duration::ZERO, DEFAULT_GUARD, PARALLEL_2)
            };
            let outcome = run_job(&input, 2, out.path(), options);
            assert_eq!(outcome.records_in, 20_000, "{what}");
            assert_eq!(outcome.records_quarantined, batch_run.records_quarantined);
            assert_eq!(outcome.counts, batch_run.counts, "{what}");
            // Whatever the watermark did, every record is counted or dropped as late (the
            // identity, checked by `run_job`). Not necessarily nothing late without idleness:
            // the empty subtask holds event time back only until subtask 0 has finished
            // reading; its final watermark can then overtake subtask 0's records still
            // queued downstream, which meet subtask 0's own watermarks from then on.
            assert_eq!(
                outcome.records_counted() + outcome.records_late_dropped,
                batch_run.records_counted(),
                "{what}"
            );
            for (start, count) in &outcome.windows.flow {
                assert!(
                    batch_run.windows.flow.get(start) >= Some(count),
                    "{what}: window {start} counts {count}, more than in batch"
                );
            }
        }
    }
}

/// Regression test: a partition was once declared idle when pushing one batch of its records
/// took longer than the idle timeout (idleness was judged after the push, against a poll time
/// from before it), so the source flapped idle/active while reading; a tag subtask that went
/// idle holding unfired local windows was overtaken by the merge's watermark, and the merge
/// failed the job. Idleness is now judged at poll time, and a partial that does arrive after
/// its window's lateness is dropped as late and counted, never an error.
#[test]
fn idle_flapping_does_not_fail_the_two_phase_merge() {
    let input = generated(20_000, 1);
    for attempt in 0..20 {
        let out = tempfile::tempdir().unwrap();
        let options = EventTimeOptions {
            idle_timeout: Some(Duration::from_micros(200)),
            ..streaming(
                Watermarks::Periodic(Duration::from_millis(1)),
                Duration::ZERO,
                DEFAULT_GUARD,
                PARALLEL_2,
            )
        };
        let outcome = run_job(&input, 2, out.path(), options);
        assert_eq!(outcome.records_in, 20_000, "attempt {attempt}");
    }
}
