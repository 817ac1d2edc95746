//! The `weir` binary: `weir run traffic` writes its outputs and report, compares engines,
//! fails loudly on an injected panic, documents its options and refuses bad arguments.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// `weir run traffic` with a small generated input, unpinned, writing to `output`.
fn traffic(output: &Path, extra: &[&str]) -> Command {
    let mut cmd = weir();
    cmd.args(["run", "traffic", "--generate", "20000", "--pin", "off"])
        .arg("--output")
        .arg(output)
        .args(extra);
    cmd
}

fn run_ok(mut cmd: Command) -> Output {
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn run_err(mut cmd: Command) -> String {
    let output = cmd.output().unwrap();
    assert!(
        !output.status.success(),
        "{cmd:?} succeeded:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// How long any child may take before a test calls it hung.
const WATCHDOG: Duration = Duration::from_secs(120);

/// Waits for `child` to exit; kills it and fails the test when it outlives the watchdog.
fn wait(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + WATCHDOG;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{what} hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A run over far more generated records than a test waits for, its output discarded.
fn endless(output: &Path) -> Child {
    let mut cmd = weir();
    cmd.args(["run", "traffic", "--generate", "5000000000", "--pin", "off"])
        .arg("--output")
        .arg(output)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().unwrap()
}

/// Waits until `child` is inside its job: its report.json says "incomplete", the earlier
/// run's files are removed (origins.jsonl is only written at the end) and the first
/// per-minute window has fired into `flow_1m.jsonl`.
fn wait_until_running(child: &mut Child, output: &Path) {
    let pid = child.id();
    let running = || {
        let report = fs::read_to_string(output.join("report.json")).unwrap_or_default();
        let incomplete = serde_json::from_str::<serde_json::Value>(&report)
            .is_ok_and(|r| r["status"] == "incomplete" && r["pid"] == pid);
        incomplete
            && !output.join("origins.jsonl").exists()
            && fs::metadata(output.join("flow_1m.jsonl")).is_ok_and(|m| m.len() > 0)
    };
    let deadline = Instant::now() + WATCHDOG;
    while !running() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended before writing a window: {status}");
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("no window within the watchdog");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

fn json(path: &Path) -> serde_json::Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn run_traffic_writes_origins_rejections_and_report() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(traffic(dir.path(), &["--partitions", "2", "-p", "2"]));

    let origins = fs::read_to_string(dir.path().join("origins.jsonl")).unwrap();
    let origins: Vec<serde_json::Value> = origins
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = origins
        .iter()
        .map(|o| o["origin"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["local", "province", "other"]);

    let rejected = fs::read_to_string(dir.path().join("rejected.jsonl")).unwrap();
    let report = json(&dir.path().join("report.json"));
    let number = |field: &str| {
        report[field]
            .as_u64()
            .unwrap_or_else(|| panic!("report.json lacks {field}: {report:#}"))
    };
    let (records_in, rejected_n, quarantined, tagged) = (
        number("records_in"),
        number("records_rejected"),
        number("records_quarantined"),
        number("records_tagged"),
    );
    let (counted_in_flow, late) = (number("records_counted"), number("records_late_dropped"));
    assert_eq!(records_in, 20_000);
    assert_eq!(records_in, tagged + rejected_n + quarantined);
    assert_eq!(
        records_in,
        counted_in_flow + late + rejected_n + quarantined,
        "the report's accounting identity"
    );
    assert_eq!(rejected.lines().count() as u64, rejected_n + quarantined);
    let counted: u64 = origins.iter().map(|o| o["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, tagged);

    assert!(report["throughput_records_per_s"].as_f64().unwrap() > 0.0);
    assert!(report.get("latency").is_some(), "{report:#}");
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    let tasks = report["tasks"].as_array().unwrap();
    assert!(!tasks.is_empty());
    for task in tasks {
        assert!(task["backPressuredTimeMsPerSecond"].is_number(), "{task}");
        // Pinning is off: the field is there, and null.
        assert!(task.get("core").is_some_and(|c| c.is_null()), "{task}");
    }
}

#[test]
fn two_engines_give_the_same_origins_and_a_comparison() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(traffic(
        dir.path(),
        &["--partitions", "2", "-p", "2", "--engine", "weir,timely"],
    ));
    // A second invocation with --repeat, into a fresh folder.
    let dir = tempfile::tempdir().unwrap();
    run_ok(traffic(
        dir.path(),
        &["--engine", "weir,timely", "--repeat", "2"],
    ));
    let weir = fs::read_to_string(dir.path().join("weir/origins.jsonl")).unwrap();
    let timely = fs::read_to_string(dir.path().join("timely/origins.jsonl")).unwrap();
    assert_eq!(weir.lines().count(), 3);
    assert_eq!(weir, timely);
    let compare = json(&dir.path().join("compare.json"));
    assert!(
        compare["ratio_weir_over_timely"].as_f64().unwrap() > 0.0,
        "{compare:#}"
    );
    assert_eq!(compare["runs"].as_array().unwrap().len(), 4);
}

#[test]
fn the_plain_timely_program_reads_files_with_the_guard_off_and_refuses_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    fs::write(
        &input,
        "ts_ms,plate,checkpoint_id\n1772409600000,浙A12345,1\n1772409600001,,2\n1772409600002,京A00001,3\n",
    )
    .unwrap();
    let plain = |output: &Path, extra: &[&str]| {
        let mut cmd = weir();
        cmd.args(["run", "traffic", "--pin", "off", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(output)
            .args(extra);
        cmd
    };
    let out = dir.path().join("out");
    let guard_off = ["--max-future-skew", "off", "--max-past-skew", "off"];
    let engines = ["--engine", "weir,timely,timely-plain", "--mode", "batch"];
    run_ok(plain(&out, &[&guard_off[..], &engines[..]].concat()));
    let weir = fs::read_to_string(out.join("weir/origins.jsonl")).unwrap();
    let timely_plain = fs::read_to_string(out.join("timely-plain/origins.jsonl")).unwrap();
    assert_eq!(weir, timely_plain);
    let report = json(&out.join("timely-plain/report.json"));
    assert_eq!(
        (
            &report["engine"],
            &report["records_in"],
            &report["records_rejected"]
        ),
        (&"timely-plain".into(), &3.into(), &1.into()),
        "{report:#}"
    );
    let compare = json(&out.join("compare.json"));
    assert!(
        compare["ratio_weir_over_timely_plain"].as_f64().unwrap() > 0.0,
        "{compare:#}"
    );

    let stderr = run_err(plain(&out, &["--engine", "timely-plain"]));
    assert!(stderr.contains("--max-future-skew off"), "{stderr}");
    let stderr = run_err(traffic(dir.path(), &["--engine", "weir,timely-plain"]));
    assert!(stderr.contains("--input"), "{stderr}");
}

#[test]
fn an_injected_failure_names_the_operator_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = traffic(dir.path(), &["--fail-after", "100"]);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain stderr on a thread so that the child never blocks on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let status = wait(&mut child, "weir run traffic --fail-after 100");
    let stderr = reader.join().unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("operator 'tag'"), "{stderr}");
    assert!(stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_lists_every_option_with_its_default() {
    let output = run_ok({
        let mut cmd = weir();
        cmd.args(["run", "traffic", "--help"]);
        cmd
    });
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "--input",
        "--generate",
        "[default: 1000000]",
        "--partitions",
        "--seed",
        "--home",
        "--parallelism",
        "[default: 2]",
        "--output",
        "[default: out]",
        "--engine",
        "[default: weir]",
        "--repeat",
        "--fail-after",
        "--pin",
        "[default: on]",
        "--buffer-timeout",
        "[default: 100ms]",
        "--segment-size",
        "--buffers",
        "--exclusive-buffers",
        "--floating-buffers",
        "--latency-interval",
        "--max-parallelism",
    ] {
        assert!(help.contains(expected), "help lacks {expected:?}:\n{help}");
    }
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = weir();
    cmd.args([
        "run",
        "traffic",
        "--pin",
        "off",
        "--input",
        "/nonexistent/path",
    ])
    .arg("--output")
    .arg(dir.path());
    let stderr = run_err(cmd);
    assert!(stderr.contains("/nonexistent/path"), "{stderr}");

    let stderr = run_err(traffic(dir.path(), &["--buffer-timeout", "5x"]));
    assert!(stderr.contains("unit"), "{stderr}");
    assert!(stderr.contains("--buffer-timeout"), "{stderr}");

    let stderr = run_err(traffic(dir.path(), &["-p", "0"]));
    assert!(stderr.contains("--parallelism"), "{stderr}");
}

/// The files a traffic run writes besides report.json.
const OUTPUT_FILES: [&str; 5] = [
    "origins.jsonl",
    "flow_1m.jsonl",
    "origin_5m.jsonl",
    "late.jsonl",
    "rejected.jsonl",
];

#[test]
fn a_run_that_fails_after_a_completed_one_leaves_no_mixed_folder() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(traffic(dir.path(), &[]));
    assert_eq!(json(&dir.path().join("report.json"))["status"], "completed");
    let stderr = run_err(traffic(dir.path(), &["--fail-after", "1000"]));
    assert!(stderr.contains("operator 'tag'"), "{stderr}");
    let report = json(&dir.path().join("report.json"));
    assert_eq!(report["status"], "failed", "{report:#}");
    assert!(
        report["error"].as_str().unwrap().contains("operator 'tag'"),
        "{report:#}"
    );
    // The earlier run's results are gone: origins.jsonl is only written at the end of a run.
    assert!(!dir.path().join("origins.jsonl").exists());
}

#[test]
fn a_killed_run_leaves_a_folder_that_says_it_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(traffic(dir.path(), &[]));
    let mut child = endless(dir.path());
    wait_until_running(&mut child, dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    let report = json(&dir.path().join("report.json"));
    assert_eq!(report["status"], "incomplete", "{report:#}");
    assert_eq!(report["pid"], child.id(), "{report:#}");
    assert!(
        !dir.path().join("origins.jsonl").exists(),
        "the earlier run's origins.jsonl stands beside the killed run's files"
    );
}

#[test]
fn sigint_and_sigterm_stop_the_job_exit_130_and_143_and_still_write_the_report() {
    for (name, code) in [("INT", 130), ("TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = endless(dir.path());
        wait_until_running(&mut child, dir.path());
        signal(&child, name);
        let status = wait(&mut child, &format!("a run after SIG{name}"));
        assert_eq!(status.code(), Some(code), "SIG{name}: {status}");
        let report = json(&dir.path().join("report.json"));
        assert_eq!(report["status"], "stopped_early", "SIG{name}: {report:#}");
        assert_eq!(report["stopped_early"], true, "{report:#}");
        let n = |f: &str| report[f].as_u64().unwrap();
        assert!(n("records_in") < 5_000_000_000);
        // Everything read was processed: the accounting still adds up.
        assert_eq!(
            n("records_in"),
            n("records_counted")
                + n("records_late_dropped")
                + n("records_rejected")
                + n("records_quarantined")
        );
        for file in OUTPUT_FILES {
            assert!(dir.path().join(file).exists(), "SIG{name}: no {file}");
        }
    }
}

#[test]
fn numeric_options_are_range_checked_with_the_option_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "traffic", "--partitions", "0"], "--partitions"),
        (
            &["run", "traffic", "--partitions", "100000"],
            "--partitions",
        ),
        (&["run", "traffic", "--generate", "0"], "--generate"),
        (&["run", "traffic", "--repeat", "0"], "--repeat"),
        (&["run", "traffic", "-p", "0"], "--parallelism"),
        (&["run", "traffic", "--segment-size", "0"], "--segment-size"),
        (
            &["run", "traffic", "--exclusive-buffers", "1000000"],
            "--exclusive-buffers",
        ),
        (
            &[
                "run",
                "traffic",
                "--exclusive-buffers",
                "0",
                "--floating-buffers",
                "0",
            ],
            "--floating-buffers",
        ),
        (
            &["run", "traffic", "-p", "8", "--max-parallelism", "4"],
            "--max-parallelism",
        ),
        (
            &["run", "nexmark", "--query", "q1", "--partitions", "0"],
            "--partitions",
        ),
        (
            &["run", "nexmark", "--query", "q1", "--events", "0"],
            "--events",
        ),
        (
            &["run", "nexmark", "--query", "q1", "--rate", "0"],
            "--rate",
        ),
        (
            &[
                "run",
                "nexmark",
                "--query",
                "q1",
                "--watermark-interval",
                "0",
            ],
            "--watermark-interval",
        ),
        (
            &["suite", "event-time", "--partitions", "0"],
            "--partitions",
        ),
        (&["suite", "event-time", "--records", "0"], "--records"),
        (
            &["suite", "event-time", "--window-records", "0"],
            "--window-records",
        ),
    ];
    for (args, option) in cases {
        let mut cmd = weir();
        cmd.args(*args).args(["--pin", "off", "--output", out]);
        let stderr = run_err(cmd);
        assert!(stderr.contains(option), "{args:?}: {stderr}");
        assert!(!stderr.contains("NaN"), "{args:?}: {stderr}");
    }
    assert!(!Path::new(out).exists(), "a refused run writes nothing");
}

#[test]
fn misleading_messages_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    let stderr = run_err(traffic(&file, &[]));
    assert!(
        stderr.contains(&format!(
            "--output {} is a file, not a folder",
            file.display()
        )),
        "{stderr}"
    );

    let out = dir.path().join("out");
    let stderr = run_err(traffic(&out, &["--buffers", "0"]));
    assert!(stderr.contains("--buffers at least"), "{stderr}");
    assert!(stderr.contains("0 configured"), "{stderr}");
    assert!(!stderr.contains("are left of"), "{stderr}");

    let stderr = run_err(traffic(&out, &["--max-parallelism", "0"]));
    assert!(stderr.contains("'--max-parallelism"), "{stderr}");
    assert!(!stderr.contains("parallelism 2"), "{stderr}");

    for option in [
        "--out-of-orderness",
        "--allowed-lateness",
        "--max-past-skew",
        "--buffer-timeout",
    ] {
        let stderr = run_err(traffic(&out, &[option, "-5s"]));
        assert!(
            stderr.contains("durations cannot be negative"),
            "{option}: {stderr}"
        );
        assert!(stderr.contains(option), "{option}: {stderr}");
    }
}

#[test]
fn help_says_what_weir_is_for_and_names_every_output_file() {
    let help = |args: &[&str]| {
        let mut cmd = weir();
        cmd.args(args);
        String::from_utf8(run_ok(cmd).stdout).unwrap()
    };
    let top = help(&["--help"]);
    assert!(top.contains("Run stream-processing jobs"), "{top}");
    assert!(top.contains("Examples:"), "{top}");
    for example in [
        "weir run traffic --input",
        "weir run nexmark",
        "weir suite event-time",
    ] {
        assert!(top.contains(example), "{example}: {top}");
    }
    let traffic = help(&["run", "traffic", "--help"]);
    let output = &traffic[traffic.find("--output").unwrap()..traffic.find("--engine").unwrap()];
    for file in OUTPUT_FILES.iter().chain(&["report.json", "compare.json"]) {
        assert!(
            output.contains(file),
            "--output's help lacks {file}: {output}"
        );
    }
    assert!(output.contains("incomplete"), "{output}");
}
