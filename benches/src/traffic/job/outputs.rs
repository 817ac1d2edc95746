//! The job's output lines and sinks: quarantined and late records, windowed results as they
//! fire, and the merged origin counts.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use weir_core::error::OperatorError;
use weir_core::runtime::JobControl;
use weir_core::sink::{LineWriter, OutputFile, Sink};
use weir_core::time::Quarantine;
use weir_core::time::arith::fires_at;
use weir_core::window::{LatePartialRecords, LateRecords, Window, WindowResult};

use crate::traffic::input::{LineRef, TrafficInput};
use crate::traffic::json_line::{JsonLine, int_field, str_field};
use crate::traffic::record::{Origin, TrafficRecord};
use crate::traffic::tag::{OriginCounts, Tagged};
use crate::traffic::windows::{FlowCount, OriginWindowCount};

use super::Tally;

/// A record quarantined by the timestamp guard, as a line of `rejected.jsonl`: where it was
/// read (`file` and `line`, or generator `partition` and `offset`), why, and the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedRecord {
    /// The input line of the record.
    #[serde(flatten)]
    pub at: LineRef,
    /// Why.
    pub reason: String,
    /// The record's timestamp, ms.
    pub ts_ms: i64,
    /// The plate.
    pub plate: String,
    /// The camera.
    pub checkpoint_id: u32,
    /// The reference timestamp it was judged against, ms.
    pub reference_ms: i64,
}

impl QuarantinedRecord {
    /// The line for `record`, read from `input`, and the guard's verdict.
    pub fn new(record: &TrafficRecord, quarantine: &Quarantine, input: &TrafficInput) -> Self {
        Self {
            at: input.line_ref(record.at),
            reason: quarantine.reason.clone(),
            ts_ms: record.ts_ms,
            plate: record.plate.as_str().to_owned(),
            checkpoint_id: record.checkpoint_id,
            reference_ms: quarantine.reference_ms,
        }
    }
}

/// Records dropped as late, as a line of `late.jsonl`: one record, or (`records` > 1 or no
/// record fields) a partial aggregate the merge step of two-phase aggregation had to drop
/// because its subtask had been idle while the others moved the watermark past the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct LateRecord {
    pub(super) output: &'static str,
    pub(super) records: u64,
    #[serde(flatten)]
    pub(super) record: Option<LateFields>,
    pub(super) window_start: i64,
    pub(super) window_end: i64,
}

/// A late record: where it was read (`file` and `line`, or generator `partition` and
/// `offset`) and its fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct LateFields {
    #[serde(flatten)]
    at: LineRef,
    ts_ms: i64,
    plate: String,
    checkpoint_id: u32,
}

impl LateRecord {
    pub(super) fn new(
        output: &'static str,
        record: &TrafficRecord,
        window: Window,
        input: &TrafficInput,
    ) -> Self {
        Self {
            output,
            records: 1,
            record: Some(LateFields {
                at: input.line_ref(record.at),
                ts_ms: record.ts_ms,
                plate: record.plate.as_str().to_owned(),
                checkpoint_id: record.checkpoint_id,
            }),
            window_start: window.start,
            window_end: window.end,
        }
    }

    pub(super) fn partial(output: &'static str, window: Window, records: u64) -> Self {
        Self {
            output,
            records,
            record: None,
            window_start: window.start,
            window_end: window.end,
        }
    }
}

/// Serde's bytes: `output`, `records`, the flattened record (`file` and `line` or `partition`
/// and `offset`, `ts_ms`, `plate`, `checkpoint_id`) if any, then the window.
impl JsonLine for LateRecord {
    fn write_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        str_field(out, b"{\"output\":", self.output)?;
        int_field(out, b",\"records\":", self.records);
        if let Some(fields) = &self.record {
            match &fields.at {
                LineRef::File { file, line } => {
                    str_field(out, b",\"file\":", file)?;
                    int_field(out, b",\"line\":", *line);
                }
                LineRef::Generated { partition, offset } => {
                    int_field(out, b",\"partition\":", *partition);
                    int_field(out, b",\"offset\":", *offset);
                }
            }
            int_field(out, b",\"ts_ms\":", fields.ts_ms);
            str_field(out, b",\"plate\":", &fields.plate)?;
            int_field(out, b",\"checkpoint_id\":", fields.checkpoint_id);
        }
        int_field(out, b",\"window_start\":", self.window_start);
        int_field(out, b",\"window_end\":", self.window_end);
        out.push(b'}');
        Ok(())
    }
}

/// One window subtask's lines of `late.jsonl`: its late records (a keyed or local window) or
/// its late partials (a merge step). Lines are batched: written out when a batch fills and at
/// the end of input, or committed with their checkpoint (a transactional file), not written
/// one by one.
pub(super) struct LateLines {
    output: &'static str,
    lines: LineWriter<LateRecord>,
    input: Arc<TrafficInput>,
}

impl LateLines {
    pub(super) fn new(
        output: &'static str,
        lines: LineWriter<LateRecord>,
        input: Arc<TrafficInput>,
    ) -> Self {
        Self {
            output,
            lines,
            input,
        }
    }

    /// Writes `line`; `what` names it in an error ("record" or "partial").
    fn write(&mut self, line: &LateRecord, what: &str) -> Result<(), OperatorError> {
        self.lines
            .write_formatted(|out| line.write_json(out))
            .map_err(|e| format!("writing a late {what}: {e}").into())
    }

    fn flush_lines(&mut self) -> Result<(), OperatorError> {
        self.lines
            .flush()
            .map_err(|e| format!("writing late records: {e}").into())
    }
}

impl LateRecords<Tagged> for LateLines {
    fn late(&mut self, tagged: &Tagged, window: Window) -> Result<(), OperatorError> {
        let line = LateRecord::new(self.output, &tagged.record, window, &self.input);
        self.write(&line, "record")
    }

    fn flush(&mut self) -> Result<(), OperatorError> {
        self.flush_lines()
    }
}

impl LatePartialRecords for LateLines {
    fn late(&mut self, window: Window, records: u64) -> Result<(), OperatorError> {
        self.write(
            &LateRecord::partial(self.output, window, records),
            "partial",
        )
    }

    fn flush(&mut self) -> Result<(), OperatorError> {
        self.flush_lines()
    }
}

/// Writes window results as they fire (a re-fire is a new line); measures the result latency
/// of each window's first line ([`Tally::first_result`](super::source::Tally::first_result)).
pub(super) struct WindowLines<R, L> {
    lines: LineWriter<L>,
    line: fn(Window, usize, &R) -> L,
    latency: Option<FlowLatency>,
}

/// Measures the result latency of flow windows at their sink.
pub(super) struct FlowLatency {
    pub(super) tally: Arc<Tally>,
    pub(super) control: Arc<JobControl>,
    pub(super) shift_ms: i64,
    pub(super) histogram: Arc<Mutex<hdrhistogram::Histogram<u64>>>,
}

impl<R: Copy + Send + 'static, L: JsonLine + Serialize + Send + 'static> WindowLines<R, L> {
    /// Subtask `subtask`'s writer of `file`, turning results into lines with `line`.
    pub(super) fn new(
        file: &OutputFile,
        subtask: usize,
        line: fn(Window, usize, &R) -> L,
        latency: Option<FlowLatency>,
    ) -> Result<Self, OperatorError> {
        Ok(Self {
            lines: file.writer(subtask)?,
            line,
            latency,
        })
    }

    fn write(&mut self, window: Window, key: usize, value: R) -> Result<(), OperatorError> {
        let line = (self.line)(window, key, &value);
        self.lines.write_formatted(|out| line.write_json(out))?;
        if let Some(latency) = &self.latency
            && let Some(passed) = latency
                .tally
                .first_result(fires_at(window.end, latency.shift_ms))
        {
            let now = latency.control.now_ns();
            latency
                .histogram
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .saturating_record(now.saturating_sub(passed).max(1));
        }
        Ok(())
    }
}

impl Sink<WindowResult<(), u64>> for WindowLines<u64, FlowCount> {
    fn write(&mut self, result: WindowResult<(), u64>) -> Result<(), OperatorError> {
        WindowLines::write(self, result.window, 0, result.value)
    }
    fn finish(&mut self) -> Result<(), OperatorError> {
        self.lines.finish()
    }
}

impl Sink<WindowResult<Origin, (u64, u64)>> for WindowLines<(u64, u64), OriginWindowCount> {
    fn write(&mut self, result: WindowResult<Origin, (u64, u64)>) -> Result<(), OperatorError> {
        WindowLines::write(self, result.window, result.key.index(), result.value)
    }
    fn finish(&mut self) -> Result<(), OperatorError> {
        self.lines.finish()
    }
}

/// Merges the partial counts and writes `origins.jsonl` when the input ends, by an atomic
/// rename: the file is the job's final answer, whole or absent. The partials arrive at end of
/// input only (after the final checkpoint): a restart before the file is written restores the
/// counting subtasks' state and sends them again.
pub(super) struct OriginsSink {
    path: PathBuf,
    total: OriginCounts,
}

impl OriginsSink {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            total: OriginCounts::default(),
        }
    }
}

impl Sink<OriginCounts> for OriginsSink {
    fn write(&mut self, partial: OriginCounts) -> Result<(), OperatorError> {
        self.total.merge(&partial);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), OperatorError> {
        crate::output_dir::write_atomically(&self.path, &self.total.to_jsonl())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A late line is serde_json's, byte for byte: a record read from a file (any path:
        /// control characters, quotes and all) or generated, or a partial.
        #[test]
        fn late_lines_write_the_json_serde_writes(
            file in proptest::prelude::any::<String>(),
            plate in proptest::prelude::any::<String>(),
            generated: bool,
            (line, partition, ts_ms, checkpoint_id) in proptest::prelude::any::<(u64, u32, i64, u32)>(),
            (records, window_start, window_end) in proptest::prelude::any::<(u64, i64, i64)>(),
            partial: bool,
        ) {
            let at = match generated {
                true => LineRef::Generated { partition, offset: line },
                false => LineRef::File { file, line },
            };
            let record = (!partial).then_some(LateFields { at, ts_ms, plate, checkpoint_id });
            let late = LateRecord { output: "flow_1m", records, record, window_start, window_end };
            let mut written = Vec::new();
            late.write_json(&mut written).unwrap();
            proptest::prop_assert_eq!(written, serde_json::to_vec(&late).unwrap());
        }
    }
}
