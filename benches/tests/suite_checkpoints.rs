//! `weir suite checkpoints --quick` through the binary: every configuration completes
//! checkpoints, and the report, its words and its plots are written.

use std::process::Command;

#[test]
fn the_quick_suite_reports_every_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("checkpoints");
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "suite",
            "checkpoints",
            "--quick",
            "--pin",
            "off",
            "--output",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["status"], "completed");
    let configs = json["configs"].as_array().unwrap();
    let parts = |part: &str| configs.iter().filter(|c| c["part"] == part).count();
    assert!(
        parts("barriers") > 0 && parts("snapshots") > 0,
        "{configs:?}"
    );
    for mode in ["aligned", "unaligned", "at-least-once"] {
        assert!(configs.iter().any(|c| c["mode"] == mode), "no {mode} run");
    }
    for strategy in ["heap-async", "heap-sync", "mmap-incremental"] {
        assert!(
            configs.iter().any(|c| c["strategy"] == strategy),
            "no {strategy} run"
        );
    }
    // Under backpressure unaligned barriers overtake: some checkpoint persisted in-flight data.
    let barriers = json["barriers"].as_array().unwrap();
    assert!(
        barriers.iter().any(|p| p["mode"] == "unaligned"
            && p["persisted_in_flight_bytes_p50"].as_f64().unwrap_or(0.0) > 0.0),
        "{barriers:?}"
    );
    let runs = json["runs"].as_array().unwrap();
    for config in configs {
        let name = config["name"].as_str().unwrap();
        let mine: Vec<_> = runs.iter().filter(|r| r["config"] == name).collect();
        assert!(!mine.is_empty(), "{name} did not run");
        for run in mine {
            assert!(
                run["checkpoints_completed"].as_u64().unwrap() > 0,
                "{name} completed no checkpoint: {run}"
            );
            assert!(run["checkpointed_bytes"]["p50"].as_f64().unwrap() > 0.0);
            assert_eq!(run["records_in"], config["records"]);
        }
        assert!(
            json["medians"][name]["duration_p50_ms"]["median"].is_number(),
            "{name}"
        );
    }
    assert_eq!(
        json["barriers"].as_array().unwrap().len(),
        parts("barriers")
    );
    assert_eq!(
        json["snapshots"].as_array().unwrap().len(),
        parts("snapshots")
    );
    // Barriers against Storm's acking: every configuration ran; after the failure the
    // barrier run counts every record once, the acked run counts each lost tree again.
    let rows = json["acking"]["rows"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["config"] == name).unwrap();
    for name in ["weir-none", "weir-aligned", "storm-none", "storm-acking"] {
        assert!(
            row(name)["ratio_to_no_guarantee"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        assert_eq!(row(name)["duplicates"], 0.0, "{name}");
    }
    assert_eq!(row("weir-aligned-failure")["duplicates"], 0.0);
    assert!(row("weir-aligned-failure")["restarts"].as_f64().unwrap() >= 1.0);
    let lost = json["acking"]["lost_tuples"].as_f64().unwrap();
    assert!(row("storm-acking-lost")["duplicates"].as_f64().unwrap() >= lost);
    assert!(row("storm-acking-lost")["replays"].as_f64().unwrap() >= lost);
    // Recovery: every run failed once and restarted; a restore from a checkpoint read state.
    let recovery = json["recovery"]["runs"].as_array().unwrap();
    assert!(!recovery.is_empty());
    for run in recovery {
        assert!(run["restarts"].as_u64().unwrap() >= 1, "{run}");
        if !run["restored_checkpoint"].is_null() {
            assert!(run["restored_bytes"].as_u64().unwrap() > 0, "{run}");
            assert!(run["recovery_ms"].as_f64().is_some(), "{run}");
        }
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("Barriers against Storm's acking"));
    assert!(md.contains("## Recovery"));
    assert!(md.contains("Targets (medians)"));
    assert!(md.contains("## State backends against state size and changed fraction"));
    let state = json["state"]["runs"].as_array().unwrap();
    assert!(!state.is_empty());
    for run in state {
        assert!(run["written_bytes"].as_u64().unwrap() > 0, "{run}");
    }
    for svg in ["duration-vs-buffers.svg", "stall-vs-state.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("<polyline"),
            "{svg}"
        );
    }
    assert!(!out.join("runs").exists(), "scratch runs are removed");
}
