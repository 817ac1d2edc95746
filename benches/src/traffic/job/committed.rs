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
use crate::traffic::windows::{FLOW_FILE, FlowCount, ORIGIN_FILE, OriginWindowCount, WindowTotals};

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
    output: String,
    records: u64,
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
    origin: String,
    count: u64,
    long_term: u64,
}

impl Committed {
    /// Reads the outputs in `dir`. A missing `origins.jsonl` (a run stopped before its end)
    /// counts nothing; a line that does not parse is an error naming the file and line.
    pub(super) fn read(dir: &Path) -> Result<Self, String> {
        let mut c = Self::default();
        each_line(&dir.join(FLOW_FILE), |line: FlowCount| {
            c.windows.flow.insert(line.window_start, line.count);
        })?;
        each_line(&dir.join(ORIGIN_FILE), |line: OriginWindowCount| {
            c.windows.origin.insert(
                (line.window_start, line.origin.index()),
                (line.count, line.long_term),
            );
        })?;
        each_line(&dir.join(LATE_FILE), |line: LateLine| {
            if line.output == "flow_1m" {
                c.late_flow += line.records;
            } else {
                c.late_origin += line.records;
            }
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
            let mut bad = None;
            each_line(&origins, |line: OriginLine| {
                match Origin::ALL.iter().find(|o| o.as_str() == line.origin) {
                    Some(origin) => {
                        c.counts.count[origin.index()] = line.count;
                        c.counts.long_term[origin.index()] = line.long_term;
                    }
                    None => bad = Some(line.origin),
                }
            })?;
            if let Some(origin) = bad {
                return Err(format!("{}: unknown origin {origin:?}", origins.display()));
            }
        }
        Ok(c)
    }
}
