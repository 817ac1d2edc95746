//! Timestamps at the ends of `i64` (issue 6, item 1): a file with good lines and lines whose
//! `ts_ms` is at or near `i64::MIN` or `i64::MAX` finishes, in streaming and batch mode, with
//! the guard on and off, every window ends after it starts, and every line is accounted for.
//! Each run is watched: a run that does not finish within [`DEADLINE`], or (in process) grows
//! past [`MEMORY_LIMIT_BYTES`], fails the test instead of hanging it.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use weir_bench::traffic::input::TrafficInput;
use weir_bench::traffic::job::{
    DEFAULT_GUARD, EventTimeOptions, TrafficJob, TrafficRun, Watermarks, run,
};
use weir_bench::traffic::parse::HEADER;
use weir_bench::traffic::windows::{FLOW_FILE, FlowCount, ORIGIN_FILE, OriginWindowCount};
use weir_core::time::GuardConfig;
use weir_core::window::GlobalAggregation;

/// 2026-03-02T00:00:00Z.
const T: i64 = 1_772_409_600_000;

/// A run that has not finished by then hangs: the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// Memory a run may take: `ulimit -v` of the child binary, and the resident size at which an
/// in-process run fails its test.
const MEMORY_LIMIT_BYTES: u64 = 4 << 30;

/// Timestamps at and near both ends of `i64`, each its own line among good ones.
const EXTREMES: [i64; 8] = [
    i64::MAX,
    i64::MAX - 1,
    9_223_372_036_854_775_806 - 30_000,
    i64::MAX - 60_000,
    i64::MIN,
    i64::MIN + 1,
    i64::MIN + 60_000,
    -1,
];

/// 60 good lines a second apart with the extremes spread among them, as CSV text.
fn csv_with_extremes() -> String {
    let mut text = format!("{HEADER}\n");
    for i in 0..60i64 {
        text.push_str(&format!("{},浙A12345,1\n", T + i * 1_000));
        if i % 7 == 3 {
            let ts = EXTREMES[(i as usize / 7) % EXTREMES.len()];
            text.push_str(&format!("{ts},京B54321,2\n"));
        }
    }
    for ts in EXTREMES {
        text.push_str(&format!("{ts},沪C00001,3\n"));
    }
    text
}

/// Every window in a file of windowed results ends after it starts.
fn check_window_files(output: &Path, what: &str) {
    for line in read(&output.join(FLOW_FILE)).lines() {
        let flow: FlowCount = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(flow.window_start < flow.window_end, "{what}: {line}");
    }
    for line in read(&output.join(ORIGIN_FILE)).lines() {
        let origin: OriginWindowCount =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(origin.window_start < origin.window_end, "{what}: {line}");
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The four counts of a run add up, the files agree with them, and no window is empty.
fn check(outcome: &TrafficRun, output: &Path, what: &str) {
    assert!(!outcome.result.stopped_early, "{what}");
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
    assert_eq!(
        read(&output.join("rejected.jsonl")).lines().count() as u64,
        outcome.records_rejected + outcome.records_quarantined,
        "{what}"
    );
    for line in outcome.windows.flow_lines() {
        assert!(line.window_start < line.window_end, "{what}: {line:?}");
    }
    check_window_files(output, what);
}

/// This process's resident memory, where `/proc` tells it.
fn resident_bytes() -> Option<u64> {
    let statm = fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Runs `job` in a thread; fails the test if it does not finish within [`DEADLINE`] or the
/// process grows past [`MEMORY_LIMIT_BYTES`] (and then asks the job to stop).
fn run_watched(job: TrafficJob) -> TrafficRun {
    let what = format!("p={} {:?}", job.parallelism, job.event_time);
    let (done_tx, done) = mpsc::channel();
    let (control_tx, control) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = run(&job, |c, _| drop(control_tx.send(c)));
        drop(done_tx.send(outcome));
    });
    let started = Instant::now();
    let failure = loop {
        match done.recv_timeout(Duration::from_millis(100)) {
            Ok(outcome) => return outcome.unwrap_or_else(|e| panic!("{what}: {e}")),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the job thread died"),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if started.elapsed() > DEADLINE {
            break format!("did not finish within {DEADLINE:?}");
        }
        if let Some(bytes) = resident_bytes().filter(|&b| b > MEMORY_LIMIT_BYTES) {
            break format!("grew to {bytes} bytes");
        }
    };
    if let Ok(control) = control.try_recv() {
        control.request_stop();
    }
    panic!("{what}: {failure}");
}

fn options(batch: bool, guard: GuardConfig, watermarks: Watermarks) -> EventTimeOptions {
    EventTimeOptions {
        batch,
        guard,
        watermarks,
        ..EventTimeOptions::default()
    }
}

fn input_file(dir: &Path, text: &str) -> TrafficInput {
    let path = dir.join("cameras.csv");
    fs::write(&path, text).unwrap();
    TrafficInput::from_path(&path).unwrap()
}

#[test]
fn extreme_timestamps_finish_and_add_up_through_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let input = input_file(dir.path(), &csv_with_extremes());
    let lines = csv_with_extremes().lines().count() as u64 - 1;
    for batch in [true, false] {
        for guard in [DEFAULT_GUARD, GuardConfig::OFF] {
            for watermarks in [
                Watermarks::Punctuated,
                Watermarks::Periodic(Duration::from_millis(1)),
            ] {
                for parallelism in [1, 2] {
                    let output = dir.path().join("out");
                    let job = TrafficJob {
                        parallelism,
                        event_time: options(batch, guard, watermarks),
                        ..TrafficJob::new(input.clone(), &output)
                    };
                    let what = format!("p={parallelism} {:?}", job.event_time);
                    let outcome = run_watched(job);
                    check(&outcome, &output, &what);
                    assert_eq!(outcome.records_in, lines, "{what}");
                    if guard.is_on() {
                        // Each partition's reference is near T: every extreme is quarantined.
                        let extremes = lines - 60;
                        assert_eq!(outcome.records_quarantined, extremes, "{what}");
                        assert!(
                            read(&output.join("rejected.jsonl"))
                                .lines()
                                .all(|l| !l.contains(" is -")),
                            "{what}: a negative distance"
                        );
                    }
                    if batch && !guard.is_on() {
                        // Nothing is late in batch mode: the windows at both ends are counted.
                        assert_eq!(outcome.records_counted(), lines, "{what}");
                        let flow = outcome.windows.flow_lines();
                        assert_eq!(flow.first().map(|f| f.window_start), Some(i64::MIN));
                        assert_eq!(flow.last().map(|f| f.window_end), Some(i64::MAX));
                    }
                }
            }
        }
    }
}

/// Runs `weir run traffic` on `input` under `ulimit -v` and the deadline, and returns the
/// report; a run that does not end in time is killed and fails the test.
fn run_binary(input: &Path, output: &Path, extra: &[&str]) -> serde_json::Value {
    let limit_kib = MEMORY_LIMIT_BYTES / 1024;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {limit_kib} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "traffic", "--pin", "off", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            // Ending the child we started, by its id.
            drop(child.kill());
            drop(child.wait());
            panic!("weir {extra:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        drop(std::io::Read::read_to_string(&mut pipe, &mut stderr));
    }
    assert!(status.success(), "weir {extra:?}: {status}\n{stderr}");
    serde_json::from_str(&read(&output.join("report.json"))).unwrap()
}

#[test]
fn extreme_timestamps_finish_and_add_up_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cameras.csv");
    fs::write(&input, csv_with_extremes()).unwrap();
    let guard_off = ["--max-future-skew", "off", "--max-past-skew", "off"];
    for mode in ["streaming", "batch"] {
        for guard in [&[][..], &guard_off[..]] {
            for p in ["1", "2"] {
                let output = dir.path().join(format!("out-{mode}-{}-{p}", guard.len()));
                let mut extra = vec!["--mode", mode, "-p", p];
                extra.extend_from_slice(guard);
                let report = run_binary(&input, &output, &extra);
                let field = |name: &str| {
                    report[name]
                        .as_u64()
                        .unwrap_or_else(|| panic!("{extra:?}: no {name} in {report}"))
                };
                assert_eq!(
                    field("records_in"),
                    field("records_counted")
                        + field("records_late_dropped")
                        + field("records_rejected")
                        + field("records_quarantined"),
                    "{extra:?}: {report}"
                );
                assert_eq!(
                    field("records_in"),
                    csv_with_extremes().lines().count() as u64 - 1
                );
                check_window_files(&output, &format!("{extra:?}"));
            }
        }
    }
}

/// A timestamp anywhere in `i64`, often at or near its ends, or a sane one near [`T`].
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => (0..600_000i64).prop_map(|d| T + d),
        1 => any::<i64>(),
        1 => (0..120_000i64).prop_map(|d| i64::MAX - d),
        1 => (0..120_000i64).prop_map(|d| i64::MIN + d),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random timestamps over all of `i64`, mixed with sane ones, through the whole job under
    /// random settings: it finishes, nothing panics, and the counts add up.
    #[test]
    fn random_timestamps_over_all_of_i64_finish_and_add_up(
        timestamps in prop::collection::vec(timestamp(), 1..80),
        batch in any::<bool>(),
        guard_on in any::<bool>(),
        punctuated in any::<bool>(),
        parallelism in 1..=2usize,
        two_phase in any::<bool>(),
        out_of_orderness_ms in prop_oneof![Just(0u64), 0..10_000u64, Just(u64::MAX)],
        lateness_ms in prop_oneof![Just(0u64), 0..600_000u64, Just(u64::MAX)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("{HEADER}\n");
        for (i, ts) in timestamps.iter().enumerate() {
            text.push_str(&format!("{ts},浙A{:05},{i}\n", i % 7));
        }
        let output = dir.path().join("out");
        let job = TrafficJob {
            parallelism,
            event_time: EventTimeOptions {
                out_of_orderness: Duration::from_millis(out_of_orderness_ms),
                allowed_lateness: Duration::from_millis(lateness_ms),
                aggregation: if two_phase {
                    GlobalAggregation::Parallel { parallelism: 2 }
                } else {
                    GlobalAggregation::WindowAll
                },
                ..options(
                    batch,
                    if guard_on { DEFAULT_GUARD } else { GuardConfig::OFF },
                    if punctuated { Watermarks::Punctuated } else { Watermarks::Periodic(Duration::from_millis(1)) },
                )
            },
            ..TrafficJob::new(input_file(dir.path(), &text), &output)
        };
        let what = format!("{timestamps:?} p={parallelism} {:?}", job.event_time);
        let outcome = run_watched(job);
        check(&outcome, &output, &what);
        prop_assert_eq!(outcome.records_in, timestamps.len() as u64);
    }
}
