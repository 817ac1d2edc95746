//! The traffic job on timely dataflow: nothing lost, and the same answer at any worker count.

use std::fs;

use weir_bench::peer::timely_traffic::{Dropped, TimelyOutcome, run};
use weir_bench::traffic::generator::GeneratorConfig;
use weir_bench::traffic::input::{LineRef, TrafficInput};
use weir_bench::traffic::parse::{HEADER, Rejection};
use weir_bench::traffic::record::Home;
use weir_core::time::GuardConfig;

fn home() -> Home {
    "浙A".parse().unwrap()
}

fn run_collecting(input: &TrafficInput, workers: usize) -> (TimelyOutcome, Vec<Rejection>) {
    let mut rejections = Vec::new();
    // The guard off: every record is tagged or rejected.
    let outcome = run(input, home(), workers, GuardConfig::OFF, |d| {
        if let Dropped::Rejected(r) = d {
            rejections.push(r.clone());
        }
    })
    .unwrap();
    rejections.sort_by(|a, b| a.at.cmp(&b.at));
    (outcome, rejections)
}

#[test]
fn every_record_is_tagged_or_rejected_and_the_answer_ignores_the_worker_count() {
    // Four days of traffic, so that plates become long-term.
    let config = GeneratorConfig {
        records: 60_000,
        partitions: 3,
        records_per_day: 15_000,
        seed: 11,
        ..GeneratorConfig::default()
    };
    let input = TrafficInput::Generate(config.clone());
    let (first, first_rejections) = run_collecting(&input, 1);
    assert_eq!(first.records_in, config.records);
    assert_eq!(
        first.records_in,
        first.counts.total() + first.records_rejected
    );
    assert_eq!(first_rejections.len() as u64, first.records_rejected);
    assert!(first.records_rejected > 0, "the generator writes bad lines");
    assert_eq!(
        first.counts.long_term[0], 0,
        "local plates are never long-term"
    );
    assert!(first.counts.long_term[1] > 0 && first.counts.long_term[2] > 0);
    assert!(first.counts.count.iter().all(|&n| n > 0));

    // 2 and 4 workers, and 4 and 5 are more workers than partitions.
    for workers in [2, 4, 5] {
        let (outcome, rejections) = run_collecting(&input, workers);
        assert_eq!(outcome.records_in, first.records_in, "{workers} workers");
        assert_eq!(outcome.records_rejected, first.records_rejected);
        assert_eq!(outcome.counts, first.counts, "{workers} workers");
        assert_eq!(rejections, first_rejections);
    }
}

#[test]
fn file_rejections_reach_the_caller_and_unreadable_input_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("a.csv");
    fs::write(
        &good,
        format!("{HEADER}\n1772409600000,浙A12345,1\n1772409600001,,2\n1772409600002,京A00001,3\n"),
    )
    .unwrap();
    let (outcome, rejections) = run_collecting(&TrafficInput::Files(vec![good.clone()]), 2);
    assert_eq!((outcome.records_in, outcome.records_rejected), (3, 1));
    assert_eq!(outcome.counts.count, [1, 0, 1]);
    assert_eq!(rejections.len(), 1);
    assert_eq!(
        rejections[0].at,
        LineRef::File {
            file: good.display().to_string(),
            line: 3
        }
    );
    assert_eq!(rejections[0].reason, "empty plate");

    let missing = dir.path().join("gone.csv");
    let err = run(
        &TrafficInput::Files(vec![good, missing]),
        home(),
        2,
        GuardConfig::OFF,
        |_| {},
    )
    .unwrap_err();
    assert!(err.contains("gone.csv"), "{err}");

    let input = TrafficInput::Generate(GeneratorConfig::default());
    assert!(run(&input, home(), 0, GuardConfig::OFF, |_| {}).is_err());
}
