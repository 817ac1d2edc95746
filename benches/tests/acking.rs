//! Storm-style acking on the traffic topology: exactly once without failures, at least once
//! (never a record lost, the lost ones replayed and counted again) after lost tuples.

use std::time::Duration;

use weir_bench::acking::{self, AckingJob, AckingRun, LoseTuples};
use weir_bench::traffic::generator::GeneratorConfig;
use weir_bench::traffic::input::TrafficInput;

fn job(records: u64) -> AckingJob {
    AckingJob::new(TrafficInput::Generate(GeneratorConfig {
        records,
        partitions: 4,
        seed: 11,
        ..GeneratorConfig::default()
    }))
}

/// Every accepted record is in flow_1m or counted late there, and in count-origins.
fn assert_every_record_counted(run: &AckingRun) {
    let accepted = run.records_accepted();
    assert!(accepted > 0);
    assert!(
        run.counts.total() >= accepted,
        "count-origins lost records: {run:?}"
    );
    assert!(
        run.windows.counted() + run.flow_late >= accepted,
        "flow_1m lost records: {run:?}"
    );
}

#[test]
fn an_acked_run_without_failures_counts_every_record_exactly_once() {
    let run = acking::run(&job(20_000)).unwrap();
    assert_eq!(run.records_in, 20_000);
    assert_eq!(run.replays, 0);
    assert_eq!(run.duplicates(), 0);
    assert_eq!(run.trees_acked, run.records_accepted());
    assert_eq!(run.counts.total(), run.records_accepted());
    assert_eq!(
        run.windows.counted() + run.flow_late,
        run.records_accepted()
    );
    let origin: u64 = run.windows.origin.values().map(|(n, _)| n).sum();
    assert_eq!(origin + run.origin_late, run.records_accepted());
    assert_eq!(run.acker_expired, 0);
}

#[test]
fn rings_of_one_message_still_finish_exactly_once() {
    let run = acking::run(&AckingJob {
        ring_capacity: 1,
        parallelism: 3,
        ..job(3_000)
    })
    .unwrap();
    assert_eq!((run.replays, run.duplicates()), (0, 0));
    assert_eq!(run.trees_acked, run.records_accepted());
}

#[test]
fn max_spout_pending_bounds_the_trees_in_flight() {
    let max = 2_000;
    let run = acking::run(&AckingJob {
        max_spout_pending: max,
        ..job(20_000)
    })
    .unwrap();
    // The guard's release of its 16 warm-up records may overshoot by those.
    let bound = max + weir_core::time::guard::WARMUP_RECORDS;
    assert!(run.peak_pending > 0 && run.peak_pending <= bound, "{run:?}");
    assert_eq!((run.replays, run.duplicates()), (0, 0));
}

#[test]
fn without_acking_every_record_is_counted_once_and_nothing_is_tracked() {
    let run = acking::run(&AckingJob {
        acking: false,
        ..job(10_000)
    })
    .unwrap();
    assert_eq!(run.counts.total(), run.records_accepted());
    assert_eq!(
        run.windows.counted() + run.flow_late,
        run.records_accepted()
    );
    assert_eq!((run.replays, run.acker_expired), (0, 0));
}

#[test]
fn lost_tuples_time_out_are_replayed_and_counted_again_never_lost() {
    let run = acking::run(&AckingJob {
        message_timeout: Duration::from_millis(200),
        lose: Some(LoseTuples {
            after: 500,
            count: 25,
        }),
        ..job(10_000)
    })
    .unwrap();
    assert_eq!(run.tuples_lost, 25);
    assert!(run.replays >= 25, "{run:?}");
    // Each lost tree reached count-origins before its replay did: counted twice.
    assert!(run.duplicates() >= 25, "{run:?}");
    assert_eq!(run.trees_acked, run.records_accepted());
    assert_every_record_counted(&run);
}
