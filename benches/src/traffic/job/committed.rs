//! The job's counts as its output files state them once it has ended: the window results
//! (each window's last line), the records dropped as late and rejected, and the origin
//! counts. Reading the files, rather than counters kept while running, makes the report agree
//! with what a reader of the outputs sees, whatever attempts and restarts produced them.

use std::path::Path;

use serde::Deserialize;

use super::{LATE_FILE, ORIGINS_FILE, REJECTED_FILE};
use crate::output_dir::each_line;
use crate::traffic::record::Origin;
use crate::traffic::tag::OriginCounts;
use crate::traffic::windows::{
    FLOW_FILE, FlowCount, ORIGIN_FILE, OriginWindowCount, WindowTotals, deserialize_origin,
};

/// What the output folder holds.
#[derive(Debug, Default)]
pub(super) struct Committed {
    pub(super) counts: OriginCounts,
    pub(super) windows: WindowTotals,
    pub(super) rejected: u64,
    pub(super) quarantined: u64,
    pub(super) late_flow: u64,
    pub(super) late_origin: u64,
}

/// The fields of a `late.jsonl` line the counts need.
#[derive(Deserialize)]
struct LateLine {
    output: LateOutput,
    records: u64,
}

/// The window output a late line was dropped from.
#[derive(Deserialize)]
enum LateOutput {
    #[serde(rename = "flow_1m")]
    Flow,
    #[serde(rename = "origin_5m")]
    Origin,
}

/// The field of a `rejected.jsonl` line that tells a quarantined record (it has the reference
/// timestamp it was judged against) from a malformed line.
#[derive(Deserialize)]
struct RejectedLine {
    reference_ms: Option<i64>,
}

/// A line of `origins.jsonl`.
#[derive(Deserialize)]
struct OriginLine {
    #[serde(deserialize_with = "deserialize_origin")]
    origin: Origin,
    count: u64,
    long_term: u64,
}

impl Committed {
    /// Reads the outputs in `dir`, the two window files and the late lines each on a thread of
    /// its own (the report waits for this after the job: a few per cent of a run's wall time
    /// read one after another). A missing `origins.jsonl` (a run stopped before its end) counts
    /// nothing; a line that does not parse is an error naming the file and line.
    pub(super) fn read(dir: &Path) -> Result<Self, String> {
        let mut c = Self::default();
        let (flow, origin) = (&mut c.windows.flow, &mut c.windows.origin);
        let (late_flow, late_origin) = (&mut c.late_flow, &mut c.late_origin);
        std::thread::scope(|s| {
            let flows = s.spawn(|| {
                each_line(&dir.join(FLOW_FILE), |line: FlowCount| {
                    flow.insert(line.window_start, line.count);
                })
            });
            let origins = s.spawn(|| {
                each_line(&dir.join(ORIGIN_FILE), |line: OriginWindowCount| {
                    origin.insert(
                        (line.window_start, line.origin.index()),
                        (line.count, line.long_term),
                    );
                })
            });
            let late = each_line(&dir.join(LATE_FILE), |line: LateLine| match line.output {
                LateOutput::Flow => *late_flow += line.records,
                LateOutput::Origin => *late_origin += line.records,
            });
            joined(flows)?;
            joined(origins)?;
            late
        })?;
        each_line(&dir.join(REJECTED_FILE), |line: RejectedLine| {
            if line.reference_ms.is_some() {
                c.quarantined += 1;
            } else {
                c.rejected += 1;
            }
        })?;
        let origins = dir.join(ORIGINS_FILE);
        if origins.exists() {
            each_line(&origins, |line: OriginLine| {
                c.counts.count[line.origin.index()] = line.count;
                c.counts.long_term[line.origin.index()] = line.long_term;
            })?;
        }
        Ok(c)
    }
}

/// What a reading thread returned; its panic goes on in the caller.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
