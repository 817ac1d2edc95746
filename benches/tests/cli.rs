//! The `weir` binary: `weir run traffic` writes its outputs and report, compares engines,
//! fails loudly on an injected panic, documents its options and refuses bad arguments.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
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
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("weir run traffic --fail-after 100 hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
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

#[test]
fn ctrl_c_stops_the_job_cleanly_and_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    // Far more records than a second can read in a debug build.
    let mut cmd = weir();
    cmd.args(["run", "traffic", "--generate", "500000000", "--pin", "off"])
        .arg("--output")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the job did not stop within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a stopped job exits 0: {status}");
    let report = json(&dir.path().join("report.json"));
    assert_eq!(report["stopped_early"], true, "{report:#}");
    let n = |f: &str| report[f].as_u64().unwrap();
    assert!(n("records_in") < 500_000_000);
    // Everything read was processed: the accounting still adds up.
    assert_eq!(
        n("records_in"),
        n("records_counted")
            + n("records_late_dropped")
            + n("records_rejected")
            + n("records_quarantined")
    );
}
