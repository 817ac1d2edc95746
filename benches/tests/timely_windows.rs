//! The timely peer's event-time windows are complete: they equal the brute-force reference
//! over the same tagged records, at any worker count.

use std::collections::HashMap;
use std::fs;

use weir_bench::peer::timely_traffic::{TimelyOutcome, run};
use weir_bench::traffic::generator::GeneratorConfig;
use weir_bench::traffic::input::{Line, TrafficInput};
use weir_bench::traffic::parse::HEADER;
use weir_bench::traffic::record::{Home, Origin, Plate};
use weir_bench::traffic::tag::{LongTermTracker, Tagged};
use weir_bench::traffic::windows::{
    FLOW_FILE, FLOW_WINDOW_MS, ORIGIN_FILE, ORIGIN_WINDOW_MS, WindowTotals, brute_force,
};
use weir_core::time::GuardConfig;

fn home() -> Home {
    "浙A".parse().unwrap()
}

/// What the job tags: every record of every partition, read in partition order, tagged
/// with a per-plate tracker.
fn tag_sequentially(input: &TrafficInput) -> Vec<Tagged> {
    let home = home();
    let mut trackers = HashMap::<Plate, LongTermTracker>::new();
    let mut tagged = Vec::new();
    for p in 0..input.partitions() {
        let mut reader = input.open(p).unwrap();
        while let Some(line) = reader.next_item().unwrap() {
            if let Line::Record(record) = line {
                tagged.push(Tagged::new(record, &home, |record, day| {
                    trackers.entry(record.plate).or_default().observe(day)
                }));
            }
        }
    }
    tagged
}

fn run_timely(input: &TrafficInput, workers: usize) -> TimelyOutcome {
    run(input, home(), workers, GuardConfig::OFF, |_| {}).unwrap()
}

#[test]
fn timely_windows_equal_the_brute_force_reference_at_any_worker_count() {
    // Four days of traffic, so that plates become long-term, with late, out-of-order and
    // bogus (days-old) timestamps from the generator.
    let config = GeneratorConfig {
        records: 60_000,
        partitions: 3,
        records_per_day: 15_000,
        seed: 11,
        ..GeneratorConfig::default()
    };
    let input = TrafficInput::Generate(config);
    let tagged = tag_sequentially(&input);
    let expected = brute_force(&tagged);
    assert_eq!(expected.counted(), tagged.len() as u64);
    assert!(
        expected.flow.len() > 1_000,
        "{} windows",
        expected.flow.len()
    );
    let long_term: u64 = expected.origin.values().map(|&(_, lt)| lt).sum();
    assert!(long_term > 0, "some plates become long-term");

    for workers in [1, 2, 4] {
        let outcome = run_timely(&input, workers);
        assert_eq!(outcome.windows, expected, "{workers} workers");
        assert_eq!(outcome.windows.counted(), tagged.len() as u64);
        assert_eq!(outcome.windows.counted(), outcome.counts.total());
        // The origin windows add up to the origin counts.
        let mut by_origin = [(0, 0); 3];
        for (&(_, i), &(n, lt)) in &outcome.windows.origin {
            by_origin[i].0 += n;
            by_origin[i].1 += lt;
        }
        for origin in Origin::ALL {
            let i = origin.index();
            assert_eq!(
                by_origin[i],
                (outcome.counts.count[i], outcome.counts.long_term[i]),
                "{workers} workers, {origin:?}"
            );
        }
    }
}

#[test]
fn timely_windows_of_a_small_file_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.csv");
    // 2026-03-02T00:00:00Z, then a minute boundary, a five-minute boundary, a bad line,
    // and instants before the epoch.
    let t = 1_772_409_600_000_i64;
    let csv = format!(
        "{HEADER}\n{t},浙A00001,1\n{},浙B00001,1\n{},京A00001,1\n{},沪A00001,1\n,浙A1,1\n-1,浙A00002,2\n-300000,京A00002,2\n",
        t + FLOW_WINDOW_MS - 1,
        t + FLOW_WINDOW_MS,
        t + ORIGIN_WINDOW_MS,
    );
    fs::write(&file, csv).unwrap();
    let input = TrafficInput::Files(vec![file]);
    let tagged = tag_sequentially(&input);
    assert_eq!(tagged.len(), 6);
    for workers in [1, 2, 4] {
        let outcome = run_timely(&input, workers);
        assert_eq!(outcome.records_rejected, 1);
        let windows: &WindowTotals = &outcome.windows;
        assert_eq!(*windows, brute_force(&tagged), "{workers} workers");
        assert_eq!(windows.counted(), 6);
        let out = tempfile::tempdir().unwrap();
        windows.write_jsonl(out.path()).unwrap();
        assert_eq!(
            fs::read_to_string(out.path().join(FLOW_FILE)).unwrap(),
            format!(
                "{{\"window_start\":-300000,\"window_end\":-240000,\"count\":1}}\n\
                 {{\"window_start\":-60000,\"window_end\":0,\"count\":1}}\n\
                 {{\"window_start\":{t},\"window_end\":{},\"count\":2}}\n\
                 {{\"window_start\":{},\"window_end\":{},\"count\":1}}\n\
                 {{\"window_start\":{},\"window_end\":{},\"count\":1}}\n",
                t + 60_000,
                t + 60_000,
                t + 120_000,
                t + 300_000,
                t + 360_000,
            )
        );
        assert_eq!(
            fs::read_to_string(out.path().join(ORIGIN_FILE)).unwrap(),
            format!(
                "{{\"window_start\":-300000,\"window_end\":0,\"origin\":\"local\",\"count\":1,\"long_term\":0}}\n\
                 {{\"window_start\":-300000,\"window_end\":0,\"origin\":\"other\",\"count\":1,\"long_term\":0}}\n\
                 {{\"window_start\":{t},\"window_end\":{e},\"origin\":\"local\",\"count\":1,\"long_term\":0}}\n\
                 {{\"window_start\":{t},\"window_end\":{e},\"origin\":\"province\",\"count\":1,\"long_term\":0}}\n\
                 {{\"window_start\":{t},\"window_end\":{e},\"origin\":\"other\",\"count\":1,\"long_term\":0}}\n\
                 {{\"window_start\":{e},\"window_end\":{},\"origin\":\"other\",\"count\":1,\"long_term\":0}}\n",
                t + 600_000,
                e = t + 300_000,
            )
        );
    }
}
