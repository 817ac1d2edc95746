//! Loom model of the checkpoint coordinator's acknowledgement counting: the real
//! `PendingCheckpoints` and `Signals`, with the reports on the shim's channel (loom's `mpsc`).
//!
//! - `a_late_ack_of_an_aborted_checkpoint_counts_for_nothing`: the coordinator triggers
//!   checkpoint 1, takes the reports already in, then times 1 out (`expire` with a zero
//!   timeout: under loom there is no clock, so "the timeout fired" is this program point),
//!   triggers 2 and receives until both subtasks ended. Each subtask looks three times for a
//!   barrier newer than the last it acknowledged, acknowledges each it finds (one may see 2
//!   without ever seeing 1, or see neither), and reads the signals after each look. In every
//!   interleaving: 1 is completed or aborted, never both; an ack counts only towards the
//!   checkpoint it names; every ack of an aborted 1 was counted before the abort or is reported
//!   `Late`; 2 completes exactly once if both subtasks acknowledged it, else stays in flight
//!   until the attempt ends; the completed id a task reads never decreases and is never an
//!   aborted one; the final signals match what the coordinator did. At least one explored
//!   interleaving has a late ack of 1 and then 2 completing.
#![cfg(weir_loom)]

use std::time::Duration;

use loom::sync::{Arc, mpsc};
use loom::thread;
use weir_core::checkpoint::{
    Acknowledgement, CheckpointId, PendingCheckpoints, Received, Report, Signals,
};

/// Subtasks acknowledging.
const TASKS: usize = 2;

/// How many times a subtask looks for a newer barrier.
const POLLS: usize = 3;

/// Executions in which 1 was aborted, an ack of it came late, and 2 completed: the scenario
/// the model is for must be among those loom explored (std's atomic: outside the model).
static LATE_THEN_COMPLETED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// What the coordinator did, in order.
#[derive(Debug, Default)]
struct Log {
    completed: Vec<CheckpointId>,
    aborted: Vec<CheckpointId>,
    /// Acks of the aborted checkpoint counted before it was aborted.
    counted_before_abort: usize,
    late: Vec<CheckpointId>,
}

/// What a subtask did and saw.
#[derive(Debug)]
struct Seen {
    acked: Vec<CheckpointId>,
    completed: Vec<CheckpointId>,
}

/// Subtask `task`: looks for a newer barrier [`POLLS`] times (a task reads the trigger once
/// per batch), acknowledging each it finds, then ends. Its ack's `bytes` carry the id it
/// snapshotted, so the coordinator can check what it counted.
///
/// The looks are bounded, not a spin until the last barrier: loom assumes no fair scheduler,
/// and two spinning subtasks that yield to each other would starve the coordinator forever.
fn subtask(task: usize, signals: &Signals, reports: &mpsc::Sender<Report>) -> Seen {
    let mut seen = Seen {
        acked: Vec::new(),
        completed: Vec::new(),
    };
    let mut injected = 0;
    for _ in 0..POLLS {
        if let Some(barrier) = signals.trigger_after(injected) {
            injected = barrier.checkpoint_id;
            let ack = Acknowledgement {
                bytes: injected,
                ..Acknowledgement::default()
            };
            reports
                .send(Report::Ack {
                    checkpoint: injected,
                    task,
                    ack,
                })
                .expect("the coordinator receives until every task ended");
            seen.acked.push(injected);
        }
        let aborted = signals.aborted();
        let completed = signals.completed();
        assert!(
            completed == 0 || completed != aborted,
            "checkpoint {completed} reported both completed and aborted"
        );
        if let Some(&before) = seen.completed.last() {
            assert!(
                completed >= before,
                "completed went from {before} to {completed}"
            );
        }
        seen.completed.push(completed);
        thread::yield_now();
    }
    reports
        .send(Report::TaskEnded)
        .expect("the coordinator receives until every task ended");
    seen
}

/// Handles one report as the coordinator does (minus storage); `true` when a task ended.
fn on_report(
    pending: &mut PendingCheckpoints,
    signals: &Signals,
    log: &mut Log,
    report: Report,
) -> bool {
    match pending.receive(report) {
        Received::Pending => {}
        Received::Acknowledged(f) => {
            let acks = f.acknowledgements();
            assert_eq!(acks.len(), TASKS, "checkpoint {} completed early", f.id());
            for (task, ack) in acks {
                assert_eq!(
                    ack.bytes,
                    f.id(),
                    "task {task}'s ack of checkpoint {} counted towards {}",
                    ack.bytes,
                    f.id()
                );
            }
            log.completed.push(f.id());
            pending.completed(signals, f);
        }
        Received::Late(id) => {
            assert!(
                log.aborted.contains(&id),
                "late report of {id}, never aborted"
            );
            log.late.push(id);
        }
        Received::TaskEnded => return true,
        other => panic!("no subtask declines or repeats itself: {other:?}"),
    }
    false
}

#[test]
fn a_late_ack_of_an_aborted_checkpoint_counts_for_nothing() {
    loom::model(|| {
        let signals = Arc::new(Signals::default());
        let (reports, inbox) = mpsc::channel::<Report>();

        let coordinator = {
            let signals = Arc::clone(&signals);
            thread::spawn(move || {
                let mut pending = PendingCheckpoints::new(1);
                let mut log = Log::default();
                let first = pending.trigger(&signals, TASKS, false).checkpoint_id;
                while let Ok(report) = inbox.try_recv() {
                    assert!(!on_report(&mut pending, &signals, &mut log, report));
                }
                if let Some(f) = pending.expire(Duration::ZERO) {
                    assert_eq!(f.id(), first);
                    log.counted_before_abort = f.acknowledgements().len();
                    log.aborted.push(f.id());
                    pending.aborted(&signals, f);
                }
                let second = pending.trigger(&signals, TASKS, false).checkpoint_id;
                assert_eq!(second, first + 1);
                let mut ended = 0;
                while ended < TASKS {
                    let report = inbox.recv().expect("a task still holds a sender");
                    if on_report(&mut pending, &signals, &mut log, report) {
                        ended += 1;
                    }
                }
                let left = pending.end_attempt().map(|f| f.id());
                (log, left)
            })
        };
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (signals, reports) = (Arc::clone(&signals), reports.clone());
                thread::spawn(move || subtask(task, &signals, &reports))
            })
            .collect();
        drop(reports);
        let seen: Vec<Seen> = tasks
            .into_iter()
            .map(|t| t.join().expect("subtask"))
            .collect();
        let (log, left_in_flight) = coordinator.join().expect("coordinator");

        // 1 is completed xor aborted.
        let first_completed = log.completed.contains(&1);
        assert_ne!(first_completed, log.aborted.contains(&1), "{log:?}");
        // 2 completes exactly once, last, if and only if both subtasks acknowledged it.
        let both_acked_second = seen.iter().all(|s| s.acked.contains(&2));
        let mut expected = Vec::new();
        if first_completed {
            expected.push(1);
        }
        if both_acked_second {
            expected.push(2);
        }
        assert_eq!(log.completed, expected, "{log:?} {seen:?}");
        assert_eq!(left_in_flight, (!both_acked_second).then_some(2), "{log:?}");
        // Every ack of an aborted 1 was counted before the abort or recognised as late.
        let acks_of_first = seen.iter().filter(|s| s.acked.contains(&1)).count();
        if !first_completed {
            assert_eq!(
                log.counted_before_abort + log.late.len(),
                acks_of_first,
                "{log:?} {seen:?}"
            );
        }
        // The tasks only ever read completed ids.
        for s in &seen {
            assert!(
                s.completed
                    .iter()
                    .all(|c| *c == 0 || log.completed.contains(c)),
                "{s:?} {log:?}"
            );
        }
        assert_eq!(
            signals.completed(),
            log.completed.last().copied().unwrap_or(0)
        );
        assert_eq!(signals.aborted(), if first_completed { 0 } else { 1 });
        if !log.late.is_empty() && both_acked_second {
            LATE_THEN_COMPLETED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert!(
        LATE_THEN_COMPLETED.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no explored execution had a late ack of 1 and then 2 completing"
    );
}
