//! Windows at the ends of event time, end to end: records at and near `i64::MIN` and
//! `i64::MAX` are windowed without overflow (every window ends after it starts, the last ends
//! at `i64::MAX`), in batch and streaming, in both global aggregation modes, and every record
//! is counted or dropped as late; an assigner that cannot work fails the job's build.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_core::sink::CollectSink;
use weir_core::source::VecSource;
use weir_core::time::{WatermarkEmit, WatermarkStrategy};
use weir_core::window::{
    Count, GlobalAggregation, Window, WindowAssigner, WindowResult, WindowSpec,
};
use weir_core::{Job, RuntimeConfig};

type Ev = (u64, i64);

const TIMESTAMPS: [i64; 9] = [
    0,
    i64::MIN,
    7,
    i64::MIN + 1,
    i64::MAX - 1,
    12,
    i64::MAX,
    i64::MAX - 60_000,
    -1,
];

fn run(
    assigner: WindowAssigner,
    mode: GlobalAggregation,
    emit: WatermarkEmit<Ev>,
) -> Result<(BTreeMap<Window, u64>, u64), String> {
    let records: Vec<Ev> = TIMESTAMPS
        .iter()
        .enumerate()
        .map(|(id, &ts)| (id as u64, ts))
        .collect();
    let mut strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::ZERO, |e: &Ev| e.1);
    strategy.emit = emit;
    let out = Arc::new(Mutex::new(Vec::<WindowResult<(), u64>>::new()));
    let target = Arc::clone(&out);
    let job = Job::new(RuntimeConfig {
        pin: false,
        ..RuntimeConfig::default()
    });
    job.source_with_watermarks("events", 1, VecSource::new(vec![records]), strategy)
        .window_global(
            "window",
            mode,
            WindowSpec {
                assigner,
                allowed_lateness_ms: 0,
                timestamp: Arc::new(|e: &Ev| e.1),
                late: None,
                late_partials: None,
            },
            Count,
        )
        .sink("collect", 1, move |_| CollectSink::new(Arc::clone(&target)));
    let result = job.execute().map_err(|e| e.to_string())?;
    let late = result.tasks.iter().map(|t| t.numLateRecordsDropped).sum();
    let last = out
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.window, r.value))
        .collect();
    Ok((last, late))
}

#[test]
fn records_at_the_ends_of_i64_are_windowed_and_accounted_for() {
    let n = TIMESTAMPS.len() as u64;
    for (assigner, per_record) in [
        (WindowAssigner::tumbling(60_000), 1),
        (WindowAssigner::sliding(10, 5), 2),
        (
            WindowAssigner::Tumbling {
                size_ms: 60_000,
                offset_ms: i64::MAX,
            },
            1,
        ),
    ] {
        for mode in [
            GlobalAggregation::WindowAll,
            GlobalAggregation::Parallel { parallelism: 2 },
        ] {
            let what = format!("{assigner:?} {mode:?}");
            let (batch, late) = run(assigner, mode, WatermarkEmit::EndOfInput).unwrap();
            assert_eq!(late, 0, "{what}");
            assert_eq!(batch.values().sum::<u64>(), n * per_record, "{what}");
            assert!(batch.keys().all(|w| w.start < w.end), "{what}: {batch:?}");
            assert_eq!(
                batch.keys().next().map(|w| w.start),
                Some(i64::MIN),
                "{what}"
            );
            assert_eq!(batch.keys().last().map(|w| w.end), Some(i64::MAX), "{what}");

            // Streaming: the record at i64::MAX − 1 moves the watermark to i64::MAX − 2 and
            // later records are late for every window; each record is counted or late.
            let (streaming, late) = run(assigner, mode, WatermarkEmit::Punctuated(None)).unwrap();
            assert!(late > 0, "{what}");
            assert!(streaming.keys().all(|w| w.start < w.end), "{what}");
            let counted: u64 = streaming.values().sum();
            if per_record == 1 {
                assert_eq!(counted + late, n, "{what}");
            }
        }
    }
}

#[test]
fn an_unusable_assigner_fails_the_build_with_the_reason() {
    for (assigner, reason) in [
        (
            WindowAssigner::tumbling(0),
            "window size 0 ms is not positive",
        ),
        (
            WindowAssigner::sliding(10, -5),
            "window slide -5 ms is not positive",
        ),
        (
            WindowAssigner::sliding(86_400_000, 1),
            "puts each record in 86400000 windows",
        ),
    ] {
        for mode in [
            GlobalAggregation::WindowAll,
            GlobalAggregation::Parallel { parallelism: 2 },
        ] {
            let err = run(assigner, mode, WatermarkEmit::EndOfInput).unwrap_err();
            assert!(
                err.contains("window 'window'") && err.contains(reason),
                "{assigner:?} {mode:?}: {err}"
            );
        }
    }
}
