//! `weir run nexmark` with checkpoints: runs with injected failures commit exactly the rows of
//! an uninterrupted run without checkpoints, the report counts every event and row once over
//! the attempts and has its checkpoints section, and a restored run continues the rows of the
//! run it restores.
//!
//! The queries without windows are deterministic in their set of rows in any mode; the
//! windowed ones run in batch mode (one final watermark), where every window is complete
//! whatever the timing. Rows of different subtasks may come in any order, so files are
//! compared sorted.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Events per run: several checkpoints at 20 ms in a debug build, and q7's and q8's 10 s
/// windows several times over at the rate below.
const EVENTS: &str = "20000";
/// Events per second of event time: 20 000 events span 40 s.
const RATE: &str = "500";
/// Seeds of the injected failures' plans.
const SEEDS: [u64; 3] = [1, 2, 3];

/// Runs `weir run nexmark` for `query` into `out` with `extra` flags; fails the test with the
/// command's output if it fails.
fn weir(query: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "nexmark", "--query", query, "--events", EVENTS])
        .args([
            "--rate",
            RATE,
            "--partitions",
            "3",
            "-p",
            "2",
            "--pin",
            "off",
        ])
        .args(["--sink", "jsonl", "--output"])
        .arg(out)
        .args(extra)
        .output()
        .expect("weir runs");
    assert!(
        output.status.success(),
        "{query} {extra:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The rows file's lines, sorted; every line is checked to be JSON.
fn sorted_rows(out: &Path, query: &str) -> Vec<String> {
    let text = std::fs::read_to_string(out.join(format!("{query}.jsonl"))).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for line in &lines {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{query}: {line:?}: {e}"));
    }
    lines.sort();
    lines
}

fn report(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

/// The mode flags under which `query` gives the same rows in every run.
fn mode(query: &str) -> &'static [&'static str] {
    match query {
        "q0" | "q1" | "q2" => &[],
        _ => &["--mode", "batch"],
    }
}

/// An uninterrupted run without checkpoints, then one run with injected failures per seed:
/// each commits exactly the reference's rows and reports them.
fn commits_the_uninterrupted_rows(query: &str) {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    weir(query, &reference, mode(query));
    let want = sorted_rows(&reference, query);
    assert!(!want.is_empty(), "{query}: the reference has rows");
    assert!(report(&reference)["checkpoints"].is_null());
    let mut fired = 0;
    for seed in SEEDS {
        let out = dir.path().join(format!("seed-{seed}"));
        let seed_text = seed.to_string();
        let mut flags = vec![
            "--checkpoint-interval",
            "20ms",
            "--inject-failures",
            "3",
            "--failure-seed",
            &seed_text,
            "--restart-delay",
            "5ms",
        ];
        flags.extend_from_slice(mode(query));
        let output = weir(query, &out, &flags);
        let got = sorted_rows(&out, query);
        assert!(
            got == want,
            "{query} seed {seed}: {} rows committed, {} in the uninterrupted run",
            got.len(),
            want.len()
        );
        let json = report(&out);
        assert_eq!(json["status"], "completed", "{query} seed {seed}");
        assert_eq!(json["events_in"], EVENTS.parse::<u64>().unwrap());
        assert_eq!(json["rows_out"], want.len() as u64, "{query} seed {seed}");
        let checkpoints = &json["checkpoints"];
        assert!(
            checkpoints["numberOfCompletedCheckpoints"]
                .as_u64()
                .unwrap()
                >= 1,
            "{query} seed {seed}: at least the final checkpoint: {checkpoints}"
        );
        let injected = json["injected_failures"].as_array().unwrap();
        fired += injected.len();
        assert_eq!(
            checkpoints["numRestarts"].as_u64().unwrap(),
            injected.len() as u64,
            "{query} seed {seed}: one restart per injected failure"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("checkpoints: "),
            "{query} seed {seed}: the summary describes the checkpoints:\n{stdout}"
        );
    }
    // A failure planned past the end of the run does not fire; over the seeds some do.
    assert!(
        fired > 0,
        "{query}: no injected failure fired over {SEEDS:?}"
    );
}

#[test]
fn q0_commits_the_uninterrupted_rows_after_injected_failures() {
    commits_the_uninterrupted_rows("q0");
}

#[test]
fn q1_commits_the_uninterrupted_rows_after_injected_failures() {
    commits_the_uninterrupted_rows("q1");
}

#[test]
fn q2_commits_the_uninterrupted_rows_after_injected_failures() {
    commits_the_uninterrupted_rows("q2");
}

#[test]
fn q5_commits_the_uninterrupted_rows_after_injected_failures() {
    commits_the_uninterrupted_rows("q5");
}

#[test]
fn q7_commits_the_uninterrupted_rows_after_injected_failures() {
    commits_the_uninterrupted_rows("q7");
}

#[test]
fn q8_commits_the_uninterrupted_rows_after_injected_failures() {
    commits_the_uninterrupted_rows("q8");
}

#[test]
fn a_restored_run_keeps_the_rows_it_continues_and_counts_the_restored_events() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let flags = ["--checkpoint-interval", "20ms", "--mode", "batch"];
    weir("q7", &out, &flags);
    let first = sorted_rows(&out, "q7");
    assert!(!first.is_empty());
    // From the final checkpoint: every partition had ended, nothing is left to read.
    weir("q7", &out, &[&flags[..], &["--restore", "latest"]].concat());
    assert_eq!(sorted_rows(&out, "q7"), first, "the committed rows stay");
    let json = report(&out);
    assert_eq!(json["status"], "completed");
    assert_eq!(json["events_in"], EVENTS.parse::<u64>().unwrap());
    assert_eq!(json["rows_out"], first.len() as u64);
    assert_eq!(json["checkpoints"]["numRestarts"], 0);
}

#[test]
fn checkpoints_need_the_rows_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "nexmark", "--query", "q1", "--events", "100"])
        .args(["--sink", "discard", "--checkpoint-interval", "20ms"])
        .args(["--pin", "off", "--output"])
        .arg(dir.path())
        .output()
        .expect("weir runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--sink discard cannot be checkpointed"),
        "{stderr}"
    );
}
