//! The checkpoint in flight and its acknowledgements (Flink's `PendingCheckpoint`, and the
//! matching of task reports to it in `CheckpointCoordinator.receiveAcknowledgeMessage` /
//! `receiveDeclineMessage`).
//!
//! [`PendingCheckpoints`] is the coordinator thread's bookkeeping, and the only writer of the
//! [`Signals`] tasks read. Its contract, which the loom model `checkpoint_acks.rs` checks:
//! - at most one checkpoint is in flight; ids grow by one per trigger and continue across
//!   attempts;
//! - an acknowledgement counts only towards the checkpoint it names, once per subtask;
//! - a checkpoint leaves flight exactly once: [`Received::Acknowledged`] when the last subtask
//!   acknowledged it, [`Received::Declined`], [`PendingCheckpoints::expire`], or
//!   [`PendingCheckpoints::end_attempt`]; so it is completed or aborted at most once, never both;
//! - a report of a recently aborted checkpoint is [`Received::Late`] (its files may have been
//!   written after the abort removed the others: the caller removes them again), never counted.
//!
//! Every operation is O(log subtasks) or O([`RECENT_ABORTED`]); nothing here blocks.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::signals::Signals;
use super::{CheckpointId, PendingPart, StateHandle};
use crate::net::CheckpointBarrier;

/// How many aborted ids are remembered to recognise their late reports (Flink's
/// `NUM_GHOST_CHECKPOINT_IDS`).
pub const RECENT_ABORTED: usize = 16;

/// Timings of one subtask's part of a checkpoint, ns.
#[derive(Debug, Clone, Copy, Default)]
pub struct AckTimings {
    pub(crate) sync_ns: u64,
    pub(crate) async_ns: u64,
    pub(crate) alignment_ns: u64,
    pub(crate) start_delay_ns: u64,
}

/// What a subtask's acknowledgement carries: its snapshot is durable in these files.
#[derive(Debug, Default)]
pub struct Acknowledgement {
    /// The operator states it wrote.
    pub states: Vec<StateHandle>,
    /// Its transactional outputs' pre-committed parts.
    pub parts: Vec<PendingPart>,
    /// Bytes written (states, channel state and parts).
    pub bytes: u64,
    /// Its timings.
    pub timings: AckTimings,
    /// Whether it snapshotted unaligned (by mode, or because its alignment timed out).
    pub unaligned: bool,
    /// Its channel state file, if it persisted in-flight data.
    pub channel_states: Vec<super::ChannelStateHandle>,
    /// In-flight bytes it persisted.
    pub persisted_in_flight_bytes: u64,
}

/// Tasks → coordinator: each subtask sends exactly one `Ack` or `Declined` per checkpoint it
/// took part in, and one `TaskEnded` when its thread ends.
#[derive(Debug)]
pub enum Report {
    /// A subtask's snapshot of `checkpoint` is durable.
    Ack {
        /// The checkpoint snapshotted.
        checkpoint: CheckpointId,
        /// The subtask's task index in the job.
        task: usize,
        /// What it wrote.
        ack: Acknowledgement,
    },
    /// A subtask could not snapshot `checkpoint`.
    Declined {
        /// The checkpoint declined.
        checkpoint: CheckpointId,
        /// The subtask's task index in the job.
        task: usize,
        /// Why.
        reason: String,
    },
    /// A task thread ended (for any reason).
    TaskEnded,
    /// A source subtask finished reading (counted in [`Signals`](super::Signals) before this
    /// was sent): the coordinator looks at once whether every source has, and triggers the
    /// final checkpoint then, instead of when its wait for the next trigger times out.
    SourceFinished,
}

/// One triggered checkpoint and the acknowledgements it has collected.
#[derive(Debug)]
pub struct PendingCheckpoint {
    id: CheckpointId,
    tasks: usize,
    triggered: Instant,
    triggered_at_ms: u64,
    acks: BTreeMap<usize, Acknowledgement>,
}

impl PendingCheckpoint {
    /// Its id.
    pub fn id(&self) -> CheckpointId {
        self.id
    }

    /// When it was triggered, ms since the Unix epoch (the barrier's time).
    pub fn triggered_at_ms(&self) -> u64 {
        self.triggered_at_ms
    }

    /// When it was triggered.
    pub fn triggered(&self) -> Instant {
        self.triggered
    }

    /// The acknowledgements so far, by task index.
    pub fn acknowledgements(&self) -> &BTreeMap<usize, Acknowledgement> {
        &self.acks
    }
}

/// What a report did to the bookkeeping.
#[derive(Debug)]
#[must_use]
pub enum Received {
    /// An acknowledgement of the checkpoint in flight counted (or repeated one counted); more
    /// are awaited.
    Pending,
    /// The last acknowledgement: every subtask's snapshot is durable. The checkpoint left
    /// flight; the caller writes its metadata and then calls
    /// [`PendingCheckpoints::completed`] (or [`PendingCheckpoints::aborted`] if it cannot).
    Acknowledged(PendingCheckpoint),
    /// A subtask declined the checkpoint in flight, which left flight: the caller aborts it.
    Declined {
        /// The checkpoint, to abort.
        checkpoint: PendingCheckpoint,
        /// The subtask's task index.
        task: usize,
        /// Its reason.
        reason: String,
    },
    /// A report of checkpoint `0`, aborted before the report arrived: not counted; the files
    /// the subtask wrote for it may postdate the abort's removal.
    Late(CheckpointId),
    /// A report of a checkpoint neither in flight nor recently aborted (a repeat, or older than
    /// the last [`RECENT_ABORTED`] aborts): ignored, and its files left alone.
    Unknown,
    /// A task thread ended.
    TaskEnded,
    /// A source subtask finished reading.
    SourceFinished,
}

/// The coordinator's bookkeeping of triggered checkpoints; one per job, so ids continue across
/// attempts. Owned by the coordinator thread (`Send`, not shared).
#[derive(Debug)]
pub struct PendingCheckpoints {
    next_id: CheckpointId,
    in_flight: Option<PendingCheckpoint>,
    /// The last [`RECENT_ABORTED`] aborted ids, oldest first.
    recent_aborted: VecDeque<CheckpointId>,
}

impl PendingCheckpoints {
    /// Bookkeeping whose first checkpoint is `first_id` (at least 1).
    pub fn new(first_id: CheckpointId) -> Self {
        Self {
            next_id: first_id.max(1),
            in_flight: None,
            recent_aborted: VecDeque::with_capacity(RECENT_ABORTED),
        }
    }

    /// Ids continue after a restore from `id`.
    pub fn continue_after(&mut self, id: CheckpointId) {
        self.next_id = self.next_id.max(id + 1);
    }

    /// The checkpoint in flight, if any.
    pub fn in_flight(&self) -> Option<&PendingCheckpoint> {
        self.in_flight.as_ref()
    }

    /// Triggers the next checkpoint, to be acknowledged by `tasks` subtasks, and publishes its
    /// barrier in `signals`; `final_checkpoint`: the job's last. Returns the barrier.
    ///
    /// # Panics
    /// If a checkpoint is in flight (at most one is).
    pub fn trigger(
        &mut self,
        signals: &Signals,
        tasks: usize,
        final_checkpoint: bool,
    ) -> CheckpointBarrier {
        assert!(self.in_flight.is_none(), "at most one checkpoint in flight");
        let id = self.next_id;
        self.next_id += 1;
        let barrier = CheckpointBarrier {
            checkpoint_id: id,
            triggered_at_ms: super::unix_ms(),
            unaligned: false,
            final_checkpoint,
        };
        self.in_flight = Some(PendingCheckpoint {
            id,
            tasks,
            triggered: Instant::now(),
            triggered_at_ms: barrier.triggered_at_ms,
            acks: BTreeMap::new(),
        });
        signals.publish_trigger(barrier, final_checkpoint);
        barrier
    }

    /// Matches a task's report to the checkpoint in flight.
    pub fn receive(&mut self, report: Report) -> Received {
        match report {
            Report::TaskEnded => Received::TaskEnded,
            Report::SourceFinished => Received::SourceFinished,
            Report::Ack {
                checkpoint,
                task,
                ack,
            } => {
                let Some(f) = self.in_flight.as_mut().filter(|f| f.id == checkpoint) else {
                    return self.not_in_flight(checkpoint);
                };
                f.acks.insert(task, ack);
                if f.acks.len() < f.tasks {
                    return Received::Pending;
                }
                Received::Acknowledged(self.in_flight.take().expect("acknowledged above"))
            }
            Report::Declined {
                checkpoint,
                task,
                reason,
            } => match self.in_flight.take_if(|f| f.id == checkpoint) {
                Some(checkpoint) => Received::Declined {
                    checkpoint,
                    task,
                    reason,
                },
                None => self.not_in_flight(checkpoint),
            },
        }
    }

    /// What a report of `checkpoint`, not the one in flight, is.
    fn not_in_flight(&self, checkpoint: CheckpointId) -> Received {
        if self.recent_aborted.contains(&checkpoint) {
            Received::Late(checkpoint)
        } else {
            Received::Unknown
        }
    }

    /// Takes the checkpoint in flight out of flight if it was triggered at least `timeout`
    /// ago: the caller aborts it.
    pub fn expire(&mut self, timeout: Duration) -> Option<PendingCheckpoint> {
        self.in_flight.take_if(|f| f.triggered.elapsed() >= timeout)
    }

    /// The attempt ended: the checkpoint in flight (its files to remove) leaves flight without
    /// an announcement, and no late report of this attempt can come any more.
    pub fn end_attempt(&mut self) -> Option<PendingCheckpoint> {
        self.recent_aborted.clear();
        self.in_flight.take()
    }

    /// Announces that `checkpoint` completed (its metadata is durable, its outputs committed).
    pub fn completed(&self, signals: &Signals, checkpoint: PendingCheckpoint) {
        signals.publish_completed(checkpoint.id);
    }

    /// Announces that `checkpoint` was aborted, and remembers its id to recognise its late
    /// reports.
    pub fn aborted(&mut self, signals: &Signals, checkpoint: PendingCheckpoint) {
        if self.recent_aborted.len() == RECENT_ABORTED {
            self.recent_aborted.pop_front();
        }
        self.recent_aborted.push_back(checkpoint.id);
        signals.publish_aborted(checkpoint.id);
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use super::*;

    fn ack(checkpoint: CheckpointId, task: usize) -> Report {
        Report::Ack {
            checkpoint,
            task,
            ack: Acknowledgement::default(),
        }
    }

    #[test]
    fn the_last_ack_of_the_checkpoint_in_flight_completes_it_once() {
        let (signals, mut pending) = (Signals::default(), PendingCheckpoints::new(5));
        assert_eq!(pending.trigger(&signals, 2, false).checkpoint_id, 5);
        assert_eq!(signals.trigger_after(0).map(|b| b.checkpoint_id), Some(5));
        assert!(matches!(pending.receive(ack(5, 0)), Received::Pending));
        assert!(
            matches!(pending.receive(ack(5, 0)), Received::Pending),
            "a repeat"
        );
        let Received::Acknowledged(f) = pending.receive(ack(5, 1)) else {
            panic!("both acknowledged");
        };
        assert_eq!((f.id(), f.acknowledgements().len()), (5, 2));
        pending.completed(&signals, f);
        assert_eq!((signals.completed(), signals.aborted()), (5, 0));
        assert!(matches!(pending.receive(ack(5, 1)), Received::Unknown));
        assert!(pending.in_flight().is_none());
    }

    #[test]
    fn a_report_of_an_aborted_checkpoint_is_late_and_counts_for_nothing() {
        let (signals, mut pending) = (Signals::default(), PendingCheckpoints::new(1));
        pending.trigger(&signals, 2, false);
        assert!(matches!(pending.receive(ack(1, 0)), Received::Pending));
        let f = pending
            .expire(Duration::ZERO)
            .expect("a zero timeout has passed");
        pending.aborted(&signals, f);
        assert_eq!(pending.trigger(&signals, 2, false).checkpoint_id, 2);
        assert!(matches!(pending.receive(ack(1, 1)), Received::Late(1)));
        assert!(matches!(pending.receive(ack(2, 0)), Received::Pending));
        assert_eq!(
            pending.in_flight().map(|f| f.acknowledgements().len()),
            Some(1)
        );
        assert!(matches!(
            pending.receive(ack(2, 1)),
            Received::Acknowledged(_)
        ));
        assert_eq!(signals.aborted(), 1);
    }

    #[test]
    fn a_decline_takes_the_checkpoint_out_of_flight() {
        let (signals, mut pending) = (Signals::default(), PendingCheckpoints::new(1));
        pending.trigger(&signals, 3, true);
        assert!(pending.expire(Duration::from_secs(3600)).is_none());
        let declined = Report::Declined {
            checkpoint: 1,
            task: 2,
            reason: "disk full".into(),
        };
        let Received::Declined {
            checkpoint, task, ..
        } = pending.receive(declined)
        else {
            panic!("declined");
        };
        assert_eq!((checkpoint.id(), task), (1, 2));
        pending.aborted(&signals, checkpoint);
        assert!(
            !signals.final_completed(),
            "the final checkpoint was aborted"
        );
        assert!(matches!(pending.receive(ack(1, 0)), Received::Late(1)));
    }

    #[test]
    fn only_the_recent_aborts_are_remembered_within_an_attempt() {
        let (signals, mut pending) = (Signals::default(), PendingCheckpoints::new(1));
        for _ in 0..=RECENT_ABORTED {
            pending.trigger(&signals, 1, false);
            let f = pending.expire(Duration::ZERO).expect("expired");
            pending.aborted(&signals, f);
        }
        assert!(matches!(pending.receive(ack(1, 0)), Received::Unknown));
        assert!(matches!(pending.receive(ack(2, 0)), Received::Late(2)));
        pending.trigger(&signals, 1, false);
        let left = pending.end_attempt().map(|f| f.id());
        assert_eq!(left, Some(RECENT_ABORTED as u64 + 2));
        assert!(matches!(pending.receive(ack(2, 0)), Received::Unknown));
        pending.continue_after(100);
        assert_eq!(pending.trigger(&signals, 1, false).checkpoint_id, 101);
    }
}
