//! The traffic job on weir: nothing lost, the same answer at any parallelism and on timely
//! dataflow, and every malformed line rejected with its file, line and reason.

use std::fs;
use std::path::Path;

mod generated_csv;

use generated_csv::write_partitions;
use weir_bench::peer::timely_traffic;
use weir_bench::traffic::generator::GeneratorConfig;
use weir_bench::traffic::input::TrafficInput;
use weir_bench::traffic::job::{DEFAULT_GUARD, TrafficJob, TrafficRun, run};
use weir_bench::traffic::parse::HEADER;
use weir_bench::traffic::record::Home;

fn home() -> Home {
    "浙A".parse().unwrap()
}

/// Four days of traffic, so that non-local plates become long-term.
fn generated(records: u64, partitions: usize) -> GeneratorConfig {
    GeneratorConfig {
        records,
        partitions,
        records_per_day: records / 4,
        seed: 7,
        ..GeneratorConfig::default()
    }
}

fn run_job(input: TrafficInput, parallelism: usize, output: &Path) -> TrafficRun {
    let job = TrafficJob {
        parallelism,
        ..TrafficJob::new(input, output)
    };
    let outcome = run(&job, |_, _| {}).unwrap_or_else(|e| panic!("p={parallelism}: {e}"));
    assert!(!outcome.result.stopped_early);
    outcome
}

fn assert_nothing_lost(outcome: &TrafficRun, what: &str) {
    let dropped = outcome.records_rejected + outcome.records_quarantined;
    assert_eq!(
        outcome.records_in,
        outcome.counts.total() + dropped,
        "{what}: records_in != tagged + rejected + quarantined ({:?})",
        outcome.counts
    );
    assert_eq!(
        outcome.records_in,
        outcome.records_counted() + outcome.records_late_dropped + dropped,
        "{what}: records_in != counted + late + rejected + quarantined"
    );
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn nothing_is_lost_at_any_parallelism_on_generated_input() {
    let config = generated(30_000, 2);
    for p in [1, 2, 4] {
        let out = tempfile::tempdir().unwrap();
        let outcome = run_job(TrafficInput::Generate(config.clone()), p, out.path());
        assert_eq!(outcome.records_in, config.records, "p={p}");
        assert_nothing_lost(&outcome, &format!("p={p}"));
        assert!(
            outcome.records_rejected > 0,
            "the generator writes bad lines"
        );
    }
}

#[test]
fn nothing_is_lost_on_file_input_and_files_match_the_generator() {
    let config = generated(30_000, 2);
    let input_dir = tempfile::tempdir().unwrap();
    let files = write_partitions(&config, input_dir.path());
    let input = TrafficInput::from_path(input_dir.path()).unwrap();
    assert_eq!(input, TrafficInput::Files(files));

    let out = tempfile::tempdir().unwrap();
    let from_files = run_job(input, 2, out.path());
    assert_eq!(from_files.records_in, config.records);
    assert_nothing_lost(&from_files, "files");

    let out = tempfile::tempdir().unwrap();
    let generated = run_job(TrafficInput::Generate(config), 2, out.path());
    assert_eq!(from_files.counts, generated.counts);
    assert_eq!(from_files.records_rejected, generated.records_rejected);
}

#[test]
fn nothing_is_lost_with_more_source_subtasks_than_partitions() {
    let config = generated(20_000, 1);
    let out = tempfile::tempdir().unwrap();
    let outcome = run_job(TrafficInput::Generate(config.clone()), 4, out.path());
    assert_eq!(outcome.records_in, config.records);
    assert_nothing_lost(&outcome, "1 partition, p=4");
    assert_eq!(
        read_jsonl(&out.path().join("rejected.jsonl")).len() as u64,
        outcome.records_rejected + outcome.records_quarantined
    );
}

#[test]
fn the_answer_ignores_parallelism_and_matches_timely() {
    let config = generated(40_000, 3);
    let input = TrafficInput::Generate(config);
    let mut answers = Vec::new();
    for p in [1, 2, 4] {
        let out = tempfile::tempdir().unwrap();
        let outcome = run_job(input.clone(), p, out.path());
        let origins = fs::read_to_string(out.path().join("origins.jsonl")).unwrap();
        assert_eq!(origins, outcome.counts.to_jsonl(), "p={p}");
        answers.push((p, outcome.counts, outcome.records_rejected, origins));
    }
    let (_, counts, rejected, origins) = answers[0].clone();
    assert!(counts.count.iter().all(|&n| n > 0), "{counts:?}");
    assert!(
        counts.long_term[1] > 0 && counts.long_term[2] > 0,
        "{counts:?}"
    );
    assert_eq!(counts.long_term[0], 0, "local plates are never long-term");
    for (p, other_counts, other_rejected, other_origins) in &answers[1..] {
        assert_eq!(*other_counts, counts, "p={p} vs p=1");
        assert_eq!(*other_rejected, rejected, "p={p} vs p=1");
        assert_eq!(*other_origins, origins, "origins.jsonl at p={p} vs p=1");
    }

    let timely = timely_traffic::run(&input, home(), 2, DEFAULT_GUARD, |_| {}).unwrap();
    assert_eq!(timely.counts, counts, "timely vs weir");
    assert_eq!(timely.records_rejected, rejected, "timely vs weir");
    assert_eq!(timely.counts.to_jsonl(), origins);
}

#[test]
fn malformed_lines_are_rejected_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    let oversized = format!("1772409600000,浙A{},1", "9".repeat(1100));
    let lines: Vec<Vec<u8>> = vec![
        HEADER.into(),                              // 1
        "1772409600000,浙A12345,1".into(),          // 2 good, local
        "1772409600000,浙A12345".into(),            // 3 wrong field count
        "1772409600001,浙B12345,2".into(),          // 4 good, province
        "17724x9600000,浙A12345,1".into(),          // 5 bad ts_ms
        "1772409600000,浙A12345,cam".into(),        // 6 bad checkpoint_id
        "1772409600002,京A00001,3".into(),          // 7 good, other
        b"1772409600000,\xff\xfeA12345,1".to_vec(), // 8 invalid UTF-8
        "1772409600000,,1".into(),                  // 9 empty plate
        oversized.into_bytes(),                     // 10 oversized
        "1772409600003,浙A12345,4\r".into(),        // 11 good, local (CRLF)
        "1,2,3,4".into(),                           // 12 wrong field count
        "1772409600004,沪C00002,5".into(),          // 13 good, other
    ];
    let mut text = lines.join(&b'\n');
    text.push(b'\n');
    fs::write(&file, text).unwrap();

    let out = tempfile::tempdir().unwrap();
    let outcome = run_job(TrafficInput::from_path(&file).unwrap(), 2, out.path());
    assert_eq!(outcome.records_in, 12, "the header is not a data line");
    assert_eq!(outcome.records_rejected, 7);
    assert_eq!(outcome.counts.count, [2, 1, 2]);
    assert_nothing_lost(&outcome, "bad.csv");

    let mut rejected = read_jsonl(&out.path().join("rejected.jsonl"));
    rejected.sort_by_key(|r| r["line"].as_u64());
    let expected: [(u64, &str); 7] = [
        (3, "wrong field count: expected 3, found 2"),
        (5, "bad ts_ms"),
        (6, "bad checkpoint_id"),
        (8, "invalid UTF-8"),
        (9, "empty plate"),
        (10, "line longer than 1024 bytes"),
        (12, "wrong field count: expected 3, found 4"),
    ];
    assert_eq!(rejected.len(), expected.len(), "{rejected:?}");
    let name = file.display().to_string();
    for (rejection, (line, reason)) in rejected.iter().zip(expected) {
        assert_eq!(rejection["file"], name.as_str(), "{rejection}");
        assert_eq!(rejection["line"], line, "{rejection}");
        let got = rejection["reason"].as_str().unwrap();
        assert!(
            got.contains(reason),
            "line {line}: {got:?} lacks {reason:?}"
        );
        assert!(rejection["text"].is_string(), "{rejection}");
    }
}

#[test]
fn rejected_jsonl_holds_one_object_per_rejected_record() {
    let config = generated(40_000, 2);
    let out = tempfile::tempdir().unwrap();
    let outcome = run_job(TrafficInput::Generate(config), 2, out.path());
    assert!(
        outcome.records_rejected > 0,
        "the generator writes bad lines"
    );
    let lines = read_jsonl(&out.path().join("rejected.jsonl"));
    assert_eq!(
        lines.len() as u64,
        outcome.records_rejected + outcome.records_quarantined
    );
    // Quarantined records carry their timestamp and the reference; every dropped line, both
    // kinds, names its generator partition and offset.
    let (quarantined, rejected): (Vec<_>, Vec<_>) =
        lines.iter().partition(|r| r.get("reference_ms").is_some());
    assert_eq!(rejected.len() as u64, outcome.records_rejected);
    for q in &quarantined {
        assert!(q["reason"].as_str().unwrap().contains("behind"), "{q}");
        assert!(q["ts_ms"].is_i64() && q["reference_ms"].is_i64(), "{q}");
    }
    let mut places: Vec<(u64, u64)> = lines
        .iter()
        .map(|r| {
            assert!(r.get("file").is_none(), "{r}");
            let partition = r["partition"].as_u64().unwrap();
            assert!(partition < 2, "{r}");
            assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
            // Offset 0 is the header.
            let offset = r["offset"].as_u64().unwrap();
            assert!(offset >= 1, "{r}");
            (partition, offset)
        })
        .collect();
    places.sort();
    places.dedup();
    assert_eq!(places.len(), lines.len(), "a line was dropped twice");
}
