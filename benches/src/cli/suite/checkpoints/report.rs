//! The checkpoint suite's `report.md`.

use std::fmt::Write as _;

use super::super::medians::{cell, num};
use super::*;

pub(super) fn markdown(report: &SuiteReport) -> String {
    let med = &report.medians;
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(
        w,
        "# Checkpoint suite: barrier modes and snapshot strategies\n"
    );
    let _ = writeln!(
        w,
        "Command: `weir suite checkpoints{} --repeat {} -p {} --partitions {} --segment-size {}`\n",
        if report.quick { " --quick" } else { "" },
        report.repeat,
        report.parallelism,
        report.partitions,
        report.segment_bytes
    );
    let _ = writeln!(
        w,
        "Machine: {} logical cores, {}. The traffic job over generated input (seed {}), a \
         checkpoint every {:.0} ms (none in flight at once, no pause: the next starts when one \
         ends), {}-byte network buffers, {} floating buffers per gate. Every configuration ran \
         once per round, round robin, {} rounds in one process; cells are `median \
         (lowest–highest)` over the rounds of each run's figure over its completed checkpoints \
         (p50 or p99 as named). Raw runs are in `report.json`.\n",
        report.machine.cores,
        report.machine.cpu_model,
        report.seed,
        report.interval_ms,
        report.segment_bytes,
        report.floating_per_gate,
        report.repeat
    );

    let _ = writeln!(
        w,
        "## 1. Barrier modes under backpressure\n\nThe tagging step sleeps the given time per \
         record (flink-benchmarks' slow sink), so the sources are backpressured and the buffers \
         between them fill. Aligned and at-least-once barriers queue behind every buffered \
         record; unaligned ones overtake them and persist them; aligned ones with a {:.0} ms \
         timeout switch to unaligned at a subtask whose barrier is that late. \
         ![checkpoint duration against buffers per channel](duration-vs-buffers.svg)\n",
        ALIGNED_TIMEOUT.as_secs_f64() * 1e3
    );
    let _ = writeln!(
        w,
        "| configuration | records | completed | went unaligned | duration p50 ms | duration p99 ms | start delay p99 ms | alignment p99 ms | bytes per checkpoint (p50) | persisted in-flight bytes (p50) | records/s | sources backpressured ms/s |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for c in report.configs.iter().filter(|c| c.part == Part::Barriers) {
        let n = c.name.as_str();
        let _ = writeln!(
            w,
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.records,
            cell(med, n, "checkpoints_completed", 1.0, 0),
            cell(med, n, "checkpoints_unaligned", 1.0, 0),
            cell(med, n, "duration_p50_ms", 1.0, 1),
            cell(med, n, "duration_p99_ms", 1.0, 1),
            cell(med, n, "start_delay_p99_ms", 1.0, 1),
            cell(med, n, "alignment_p99_ms", 1.0, 1),
            cell(med, n, "checkpointed_bytes_p50", 1.0, 0),
            cell(med, n, "persisted_in_flight_bytes_p50", 1.0, 0),
            cell(med, n, "throughput_records_per_s", 1.0, 0),
            cell(med, n, "source_backpressured_ms_per_s", 1.0, 0),
        );
    }
    let _ = writeln!(w, "\n{}", targets(report));

    let _ = writeln!(
        w,
        "## 2. Snapshot strategies against state size\n\nNo slow step. The state grows with the \
         distinct plates the tagging step holds (the generator's fleet is fixed at {} vehicles, \
         so the records read drive it); the x axis is the bytes each checkpoint wrote. \
         ![synchronous stall against state size](stall-vs-state.svg)\n",
        crate::traffic::generator::FLEET_VEHICLES
    );
    let _ = writeln!(
        w,
        "| strategy | records | completed | bytes written per checkpoint (p50) | state referred to (p50) | synchronous stall p99 ms | asynchronous part p99 ms | duration p99 ms | records/s |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|---|---|");
    for c in report.configs.iter().filter(|c| c.part == Part::Snapshots) {
        let n = c.name.as_str();
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.strategy.name(),
            c.records,
            cell(med, n, "checkpoints_completed", 1.0, 0),
            cell(med, n, "checkpointed_bytes_p50", 1.0, 0),
            cell(med, n, "full_state_bytes_p50", 1.0, 0),
            cell(med, n, "sync_p99_ms", 1.0, 2),
            cell(med, n, "async_p99_ms", 1.0, 2),
            cell(med, n, "duration_p99_ms", 1.0, 1),
            cell(med, n, "throughput_records_per_s", 1.0, 0),
        );
    }
    let largest = report.snapshots.iter().map(|p| p.records).max();
    let at = |strategy: &str, f: fn(&SnapshotPoint) -> Option<f64>| {
        report
            .snapshots
            .iter()
            .find(|p| p.strategy == strategy && Some(p.records) == largest)
            .and_then(f)
    };
    let ratio =
        |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
    let _ = writeln!(
        w,
        "\nAt the largest state: synchronous stall sync / async {}×, throughput async / sync {}. \
         mmap bytes written / heap-async bytes written {} (an increment holds the keys changed \
         since the last completed checkpoint; the tagging step changes a plate's entry at every \
         sighting, so on this job most of the fleet changes between two checkpoints). \
         The asynchronous snapshot takes a copy-on-write view on the task thread (O(key groups)) \
         and serializes on a snapshot thread; the synchronous one serializes the whole state \
         before the task goes on.\n",
        num(
            ratio(
                at("heap-sync", |p| p.sync_p99_ms),
                at("heap-async", |p| p.sync_p99_ms)
            ),
            1
        ),
        num(
            ratio(
                at("heap-async", |p| p.throughput_records_per_s),
                at("heap-sync", |p| p.throughput_records_per_s)
            ),
            3
        ),
        num(
            ratio(
                at("mmap-incremental", |p| p.checkpointed_bytes_p50),
                at("heap-async", |p| p.checkpointed_bytes_p50)
            ),
            3
        ),
    );
    md.push_str(&super::acking::markdown(&report.acking));
    md.push_str(&super::recovery::markdown(&report.recovery));
    md.push_str(&super::state::markdown(&report.state));
    md
}

/// The targets on barrier modes, from the medians: unaligned / aligned duration under
/// backpressure (target at most 0.01), unaligned p99 (at most 5 ms), and how each mode's
/// duration grows from the fewest to the most buffers per channel.
fn targets(report: &SuiteReport) -> String {
    let point = |mode: &str, slow: Option<f64>, buffers: usize| {
        report
            .barriers
            .iter()
            .find(|p| p.mode == mode && p.slow_tag_ms == slow && p.exclusive_buffers == buffers)
    };
    let (Some(&fewest), Some(&most)) = (
        report
            .barriers
            .iter()
            .map(|p| p.exclusive_buffers)
            .min()
            .as_ref(),
        report
            .barriers
            .iter()
            .map(|p| p.exclusive_buffers)
            .max()
            .as_ref(),
    ) else {
        return String::new();
    };
    let mut out = String::from("Targets (medians):\n\n");
    for slow in SLOW_TAGS.iter().flatten() {
        let ms = Some(slow.as_secs_f64() * 1e3);
        let duration =
            |mode: &str, buffers| point(mode, ms, buffers).and_then(|p| p.duration_p50_ms);
        let p99 = |mode: &str, buffers| point(mode, ms, buffers).and_then(|p| p.duration_p99_ms);
        let ratio =
            |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
        let _ = writeln!(
            out,
            "- slow step {} ms, {most} buffers per channel: unaligned / aligned duration p50 {} \
             (target at most 0.01); unaligned p99 {} ms (target at most 5 ms); from {fewest} to \
             {most} buffers the p50 grows ×{} aligned, ×{} unaligned, ×{} aligned-timeout.",
            slow.as_millis(),
            num(
                ratio(duration("unaligned", most), duration("aligned", most)),
                3
            ),
            num(p99("unaligned", most), 1),
            num(
                ratio(duration("aligned", most), duration("aligned", fewest)),
                2
            ),
            num(
                ratio(duration("unaligned", most), duration("unaligned", fewest)),
                2
            ),
            num(
                ratio(
                    duration("aligned-timeout", most),
                    duration("aligned-timeout", fewest)
                ),
                2
            ),
        );
    }
    out.push_str(
        "\nUnaligned barriers still wait for the record a task is processing and for the rest of \
         the input buffer it is in, and a source blocked inside a record on a full output pool \
         sees the trigger only after it: under a 10 ms step a buffer of several records is tens \
         of ms (see docs/ARCHITECTURE.md, limits of unaligned checkpoints).\n",
    );
    out
}
