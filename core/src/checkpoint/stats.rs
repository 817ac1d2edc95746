//! Checkpoint statistics with Flink's names: counts, the last checkpoint, and one history entry
//! per checkpoint with its durations (the slowest subtask's), for `report.json`.

use serde::Serialize;

use super::CheckpointId;
use super::pending::Acknowledgement;

/// How a checkpoint ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every subtask acknowledged and the metadata is durable.
    Completed,
    /// A subtask declined it, or its metadata could not be written.
    Failed(String),
    /// It passed the checkpoint timeout.
    Expired(String),
}

impl Status {
    /// Why it did not complete.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Completed => None,
            Self::Failed(r) | Self::Expired(r) => Some(r),
        }
    }
}

impl Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Completed => "COMPLETED",
            Self::Failed(_) => "FAILED",
            Self::Expired(_) => "EXPIRED",
        })
    }
}

/// One checkpoint, as Flink's web UI history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointRecord {
    /// The checkpoint's id.
    pub id: CheckpointId,
    /// Trigger time, ms since the Unix epoch.
    pub trigger_timestamp_ms: u64,
    /// How it ended.
    pub status: Status,
    /// Why it failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// From trigger to completion (or abort), ms.
    pub end_to_end_duration_ms: f64,
    /// The slowest subtask's synchronous part, ms.
    pub sync_duration_ms: f64,
    /// The slowest subtask's asynchronous part, ms.
    pub async_duration_ms: f64,
    /// The longest alignment (`checkpointAlignmentTime`), ms.
    pub alignment_duration_ms: f64,
    /// The longest time from trigger to a subtask's first barrier (`checkpointStartDelay`), ms.
    pub start_delay_ms: f64,
    /// Bytes written for it (state files, new shared files of incremental snapshots, output
    /// parts): Flink's checkpointed size.
    pub checkpointed_bytes: u64,
    /// Bytes of the whole checkpoint: its state files, every shared file it refers to
    /// (written now or by earlier checkpoints) and its output parts: Flink's full state size.
    /// Equal to `checkpointed_bytes` without incremental snapshots.
    pub full_state_bytes: u64,
    /// In-flight data persisted (unaligned checkpoints; 0 when aligned).
    pub persisted_in_flight_bytes: u64,
    /// Subtasks that acknowledged.
    pub acknowledged_subtasks: usize,
    /// The task indices (as in the report's task list) of the subtasks that snapshotted
    /// unaligned: every one in unaligned mode, those whose alignment timed out (or that
    /// received an overtaking barrier) with an aligned timeout.
    pub unaligned_subtasks: Vec<usize>,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

impl CheckpointRecord {
    pub(crate) fn new(id: CheckpointId, trigger_timestamp_ms: u64) -> Self {
        Self {
            id,
            trigger_timestamp_ms,
            status: Status::Completed,
            failure_reason: None,
            end_to_end_duration_ms: 0.0,
            sync_duration_ms: 0.0,
            async_duration_ms: 0.0,
            alignment_duration_ms: 0.0,
            start_delay_ms: 0.0,
            checkpointed_bytes: 0,
            full_state_bytes: 0,
            persisted_in_flight_bytes: 0,
            acknowledged_subtasks: 0,
            unaligned_subtasks: Vec::new(),
        }
    }

    pub(crate) fn add_subtask(&mut self, task: usize, ack: &Acknowledgement) {
        let t = ack.timings;
        self.checkpointed_bytes += ack.bytes;
        self.persisted_in_flight_bytes += ack.persisted_in_flight_bytes;
        self.acknowledged_subtasks += 1;
        if ack.unaligned {
            self.unaligned_subtasks.push(task);
        }
        self.sync_duration_ms = self.sync_duration_ms.max(ms(t.sync_ns));
        self.async_duration_ms = self.async_duration_ms.max(ms(t.async_ns));
        self.alignment_duration_ms = self.alignment_duration_ms.max(ms(t.alignment_ns));
        self.start_delay_ms = self.start_delay_ms.max(ms(t.start_delay_ns));
    }

    pub(crate) fn finish(&mut self, duration: std::time::Duration, status: Status) {
        self.end_to_end_duration_ms = duration.as_secs_f64() * 1e3;
        self.failure_reason = status.reason().map(str::to_owned);
        self.status = status;
    }
}

/// p50, p99 and max of one figure over the completed checkpoints.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    /// p50, p99 and max of `values` (all 0 when empty). O(n log n).
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Self {
            p50: at(0.5),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// A restart after a failure.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    /// What failed.
    pub cause: String,
    /// The checkpoint restored from (`None`: from the beginning).
    pub restored_checkpoint: Option<CheckpointId>,
    /// Delay before the restart, ms.
    pub delay_ms: f64,
}

/// Every checkpoint of a job, over all its attempts.
#[derive(Debug, Clone, Default)]
pub struct CheckpointStats {
    /// One entry per checkpoint, in trigger order.
    pub history: Vec<CheckpointRecord>,
    /// The restarts, in order.
    pub restarts: Vec<Restart>,
    /// When the last restore happened, ms since the Unix epoch.
    pub last_restore_timestamp_ms: Option<u64>,
    /// Bytes of state read by the last restore.
    pub last_restored_bytes: u64,
    /// Time from the failure to the restored attempt's start (tasks built, state read), ms.
    pub last_recovery_ms: Option<f64>,
    /// Time from the failure to the first record a sink received after the restore, ms: the
    /// recovery as a consumer of the outputs sees it (`None` if no sink received one).
    pub last_recovery_to_output_ms: Option<f64>,
}

impl CheckpointStats {
    pub(crate) fn push(&mut self, record: CheckpointRecord) {
        self.history.push(record);
    }

    fn completed(&self) -> impl Iterator<Item = &CheckpointRecord> {
        self.history
            .iter()
            .filter(|r| r.status == Status::Completed)
    }

    /// `numberOfCompletedCheckpoints`.
    pub fn completed_count(&self) -> usize {
        self.completed().count()
    }

    /// `numberOfFailedCheckpoints`.
    pub fn failed_count(&self) -> usize {
        self.history.len() - self.completed_count()
    }

    /// The summary a command prints at the end: counts, durations, and every failed
    /// checkpoint and restart with its cause, one per line.
    pub fn describe(&self) -> String {
        let d = Summary::of(self.completed().map(|r| r.end_to_end_duration_ms).collect());
        let a = Summary::of(self.completed().map(|r| r.alignment_duration_ms).collect());
        let size = self.completed().last().map_or(0, |r| r.checkpointed_bytes);
        let in_flight: u64 = self.completed().map(|r| r.persisted_in_flight_bytes).sum();
        let unaligned = self
            .completed()
            .filter(|r| !r.unaligned_subtasks.is_empty())
            .count();
        let mut text = format!(
            "checkpoints: {} completed ({unaligned} unaligned, {in_flight} in-flight bytes persisted), {} failed, {} restarts; duration p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; alignment p99 {:.1} ms; last size {} bytes\n",
            self.completed_count(),
            self.failed_count(),
            self.restarts.len(),
            d.p50,
            d.p99,
            d.max,
            a.p99,
            size,
        );
        for r in self
            .history
            .iter()
            .filter(|r| r.status != Status::Completed)
        {
            text += &format!(
                "  checkpoint {} failed: {}\n",
                r.id,
                r.failure_reason.as_deref().unwrap_or("(no reason)")
            );
        }
        for r in &self.restarts {
            let from = r.restored_checkpoint.map_or_else(
                || "the beginning".to_owned(),
                |id| format!("checkpoint {id}"),
            );
            text += &format!(
                "  restart after {:.0} ms from {from}: {}\n",
                r.delay_ms, r.cause
            );
        }
        text
    }

    /// The report's `checkpoints` object, with Flink's metric names.
    pub fn to_json(&self) -> serde_json::Value {
        let summary = |f: fn(&CheckpointRecord) -> f64| {
            Summary::of(self.completed().map(f).collect::<Vec<_>>())
        };
        let last = self.completed().last();
        serde_json::json!({
            "numberOfCompletedCheckpoints": self.completed_count(),
            "numberOfFailedCheckpoints": self.failed_count(),
            "totalNumberOfCheckpoints": self.history.len(),
            "numRestarts": self.restarts.len(),
            "lastCompletedCheckpointId": last.map(|r| r.id),
            "lastCheckpointDuration": last.map(|r| r.end_to_end_duration_ms),
            "lastCheckpointSize": last.map(|r| r.checkpointed_bytes),
            "lastCheckpointFullSize": last.map(|r| r.full_state_bytes),
            "lastCheckpointPersistedData": last.map(|r| r.persisted_in_flight_bytes),
            "lastCheckpointRestoreTimestamp": self.last_restore_timestamp_ms,
            "last_restored_bytes": self.last_restored_bytes,
            "last_recovery_ms": self.last_recovery_ms,
            "last_recovery_to_output_ms": self.last_recovery_to_output_ms,
            "end_to_end_duration_ms": summary(|r| r.end_to_end_duration_ms),
            "sync_duration_ms": summary(|r| r.sync_duration_ms),
            "async_duration_ms": summary(|r| r.async_duration_ms),
            "alignment_duration_ms": summary(|r| r.alignment_duration_ms),
            "start_delay_ms": summary(|r| r.start_delay_ms),
            "checkpointed_bytes": summary(|r| r.checkpointed_bytes as f64),
            "full_state_bytes": summary(|r| r.full_state_bytes as f64),
            "persisted_in_flight_bytes": summary(|r| r.persisted_in_flight_bytes as f64),
            "restarts": self.restarts,
            "history": self.history,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_cover_completed_checkpoints_only() {
        let mut stats = CheckpointStats::default();
        for (id, ms_, ok) in [(1, 10.0, true), (2, 30.0, true), (3, 1000.0, false)] {
            let mut r = CheckpointRecord::new(id, 0);
            let status = if ok {
                Status::Completed
            } else {
                Status::Expired("too slow".into())
            };
            r.finish(std::time::Duration::from_secs_f64(ms_ / 1e3), status);
            stats.push(r);
        }
        let json = stats.to_json();
        assert_eq!(json["numberOfCompletedCheckpoints"], 2);
        assert_eq!(json["numberOfFailedCheckpoints"], 1);
        assert_eq!(json["end_to_end_duration_ms"]["max"], 30.0);
        assert_eq!(json["history"][2]["status"], "EXPIRED");
        assert_eq!(json["history"][2]["failure_reason"], "too slow");
    }
}
