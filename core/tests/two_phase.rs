//! Transactional outputs: what a reader of `OUTPUT/<name>` sees through writes, pre-commits,
//! commits, crashes (simulated by forgetting writers and reopening) and recoveries.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use serde::Serialize;
use weir_core::checkpoint::{CheckpointId, PendingPart};
use weir_core::sink::two_phase::HISTORY_LEN;
use weir_core::sink::{
    Commit, OutputError, Sink, TransactionalFile, TransactionalOutputs, TxWriter,
};

#[derive(Debug, Serialize)]
struct Rec {
    subtask: usize,
    n: u64,
    pad: String,
}

impl Rec {
    fn line(&self) -> String {
        serde_json::to_string(self).unwrap() + "\n"
    }
}

/// A job's output folder and checkpoint folder in one temporary root.
struct Job {
    root: tempfile::TempDir,
}

impl Job {
    fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn out(&self) -> PathBuf {
        self.root.path().join("out")
    }

    fn parts(&self, id: CheckpointId) -> PathBuf {
        self.root.path().join(format!("checkpoints/chk-{id}/parts"))
    }

    fn open(&self) -> TransactionalOutputs {
        TransactionalOutputs::open(self.out()).unwrap()
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.out().join(name)).unwrap()
    }

    fn in_progress(&self) -> usize {
        fs::read_dir(self.out().join(".weir/in-progress"))
            .unwrap()
            .count()
    }
}

/// Writes `count` records numbered from `first`; returns their lines.
fn write(writer: &mut TxWriter<Rec>, subtask: usize, first: u64, count: u64, pad: usize) -> String {
    (first..first + count)
        .map(|n| {
            let rec = Rec {
                subtask,
                n,
                pad: "x".repeat(pad),
            };
            writer.write_line(&rec).unwrap();
            rec.line()
        })
        .collect()
}

fn assert_whole_lines(text: &str) {
    assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
    for line in text.lines() {
        let _: serde_json::Value = serde_json::from_str(line).expect("a whole JSON line");
    }
}

#[test]
fn a_committed_file_holds_exactly_the_lines_of_its_epochs() {
    let job = Job::new();
    let outputs = job.open();
    let file = outputs.file("a.jsonl").unwrap();
    let mut writer = file.writer::<Rec>(0);
    // Enough to spill into the in-progress part several times.
    let first = write(&mut writer, 0, 0, 3000, 100);
    assert_eq!(job.in_progress(), 1, "spilled past the batch bound");
    assert_eq!(job.read("a.jsonl"), "", "nothing before the commit");
    let part = writer.pre_commit(1, &job.parts(1)).unwrap().unwrap();
    assert_eq!(job.in_progress(), 0, "the part moved into the checkpoint");
    assert_eq!((part.output.as_str(), part.lines), ("a.jsonl", 3000));
    assert_eq!(part.bytes, first.len() as u64);
    assert!(part.path.is_absolute() && part.path.starts_with(job.parts(1)));
    assert_eq!(job.read("a.jsonl"), "", "pre-committed is not committed");

    let done = outputs.commit(1, std::slice::from_ref(&part)).unwrap();
    assert_eq!(
        done,
        Commit::Done {
            lines: 3000,
            bytes: part.bytes
        }
    );
    assert_eq!(job.read("a.jsonl"), first);

    let second = write(&mut writer, 0, 3000, 10, 0);
    let part = writer.pre_commit(2, &job.parts(2)).unwrap().unwrap();
    outputs.commit(2, &[part]).unwrap();
    assert_eq!(job.read("a.jsonl"), first + &second);
    assert_eq!(outputs.committed_lines("a.jsonl"), 3010);
    assert_eq!(outputs.last_committed(), 2);
}

#[test]
fn committing_twice_is_idempotent() {
    let job = Job::new();
    let outputs = job.open();
    let file = outputs.file("a.jsonl").unwrap();
    let mut writer = file.writer::<Rec>(0);
    let text = write(&mut writer, 0, 0, 5, 0);
    let part = writer.pre_commit(1, &job.parts(1)).unwrap().unwrap();
    let parts = [part];
    assert!(matches!(
        outputs.commit(1, &parts).unwrap(),
        Commit::Done { lines: 5, .. }
    ));
    assert_eq!(outputs.commit(1, &parts).unwrap(), Commit::AlreadyCommitted);
    // Also in a new process, and through a restore from the same checkpoint.
    drop(outputs);
    let outputs = job.open();
    assert_eq!(outputs.commit(1, &parts).unwrap(), Commit::AlreadyCommitted);
    let recovery = outputs.recover(Some((1, &parts))).unwrap();
    assert!(!recovery.redone && recovery.retracted.is_empty());
    assert_eq!(job.read("a.jsonl"), text);
}

#[test]
fn a_torn_commit_is_cut_off_and_redone_on_recovery() {
    let job = Job::new();
    let outputs = job.open();
    let file = outputs.file("a.jsonl").unwrap();
    let mut writer = file.writer::<Rec>(0);
    let one = write(&mut writer, 0, 0, 4, 0);
    outputs
        .commit(1, &[writer.pre_commit(1, &job.parts(1)).unwrap().unwrap()])
        .unwrap();
    let two = write(&mut writer, 0, 4, 4, 0);
    let parts = [writer.pre_commit(2, &job.parts(2)).unwrap().unwrap()];
    // Checkpoint 2 completed; its commit appended half a line, then the process was killed.
    std::mem::forget(writer);
    drop(outputs);
    fs::write(file.path(), one.clone() + &two[..two.len() / 2 + 3]).unwrap();

    let outputs = job.open();
    outputs.file("a.jsonl").unwrap();
    let recovery = outputs.recover(Some((2, &parts))).unwrap();
    assert!(recovery.redone);
    assert_eq!(job.read("a.jsonl"), one + &two);
}

#[test]
fn uncommitted_parts_and_in_progress_files_are_discarded_on_recovery() {
    let job = Job::new();
    let outputs = job.open();
    let file = outputs.file("a.jsonl").unwrap();
    let mut writer = file.writer::<Rec>(0);
    let one = write(&mut writer, 0, 0, 3, 0);
    let parts = [writer.pre_commit(1, &job.parts(1)).unwrap().unwrap()];
    outputs.commit(1, &parts).unwrap();
    // Epoch 2 is pre-committed but checkpoint 2 never completes; epoch 3 is in progress.
    write(&mut writer, 0, 3, 3, 0);
    writer.pre_commit(2, &job.parts(2)).unwrap().unwrap();
    write(&mut writer, 0, 6, 2000, 100);
    assert_eq!(job.in_progress(), 1);
    std::mem::forget(writer);
    drop(outputs);

    let outputs = job.open();
    let recovery = outputs.recover(Some((1, &parts))).unwrap();
    assert_eq!(recovery.discarded_parts, 1);
    assert_eq!(recovery.committed, 1);
    assert_eq!(job.in_progress(), 0);
    assert_eq!(job.read("a.jsonl"), one);
}

#[test]
fn an_aborted_or_dropped_writer_leaves_no_in_progress_part() {
    let job = Job::new();
    let outputs = job.open();
    let file = outputs.file("a.jsonl").unwrap();
    let mut writer = file.writer::<Rec>(0);
    write(&mut writer, 0, 0, 2000, 100);
    assert_eq!(job.in_progress(), 1);
    writer.abort().unwrap();
    assert_eq!((job.in_progress(), writer.pending_lines()), (0, 0));
    assert_eq!(writer.pre_commit(1, &job.parts(1)).unwrap(), None);
    write(&mut writer, 0, 0, 2000, 100);
    drop(writer);
    assert_eq!(job.in_progress(), 0);
}

#[test]
fn a_fallback_retracts_to_the_lengths_of_the_older_checkpoint() {
    let job = Job::new();
    let outputs = job.open();
    let file = outputs.file("a.jsonl").unwrap();
    let mut writer = file.writer::<Rec>(0);
    let mut texts = Vec::new();
    for id in 1..=3 {
        texts.push(write(&mut writer, 0, id * 10, id, 0));
        let part = writer.pre_commit(id, &job.parts(id)).unwrap().unwrap();
        outputs.commit(id, &[part]).unwrap();
    }
    std::mem::forget(writer);
    drop(outputs);

    // Checkpoints 2 and 3 are damaged: restore from 1.
    let outputs = job.open();
    let recovery = outputs.recover(Some((1, &[]))).unwrap();
    assert_eq!(recovery.committed, 1);
    assert_eq!(recovery.retracted.len(), 1);
    let retraction = &recovery.retracted[0];
    assert_eq!(
        (retraction.lines, retraction.from, retraction.to),
        (5, 3, 1)
    );
    let message = retraction.to_string();
    assert!(message.contains("a.jsonl: retracted 5 lines"), "{message}");
    assert_eq!(job.read("a.jsonl"), texts[0]);
    assert_eq!(outputs.last_committed(), 1);

    // The replay reuses checkpoint id 2: its commit is not mistaken for the old one.
    let mut writer = file_writer(&outputs, "a.jsonl", 0);
    let again = write(&mut writer, 0, 100, 2, 0);
    let part = writer.pre_commit(2, &job.parts(2)).unwrap().unwrap();
    assert!(matches!(
        outputs.commit(2, &[part]).unwrap(),
        Commit::Done { lines: 2, .. }
    ));
    assert_eq!(job.read("a.jsonl"), texts[0].clone() + &again);
}

fn file_writer(outputs: &TransactionalOutputs, name: &str, subtask: usize) -> TxWriter<Rec> {
    outputs.file(name).unwrap().writer(subtask)
}

#[test]
fn a_fallback_past_the_history_is_an_error_and_changes_nothing() {
    let job = Job::new();
    let outputs = job.open();
    let mut writer = file_writer(&outputs, "a.jsonl", 0);
    let last = HISTORY_LEN as u64 + 2;
    for id in 1..=last {
        write(&mut writer, 0, id, 1, 0);
        let part = writer.pre_commit(id, &job.parts(id)).unwrap().unwrap();
        outputs.commit(id, &[part]).unwrap();
    }
    let before = job.read("a.jsonl");
    let err = outputs.recover(Some((2, &[]))).unwrap_err();
    assert!(matches!(
        err,
        OutputError::NotInHistory { checkpoint: 2, .. }
    ));
    let message = err.to_string();
    assert!(
        message.contains("committed.json") && message.contains("[3, 4"),
        "{message}"
    );
    assert_eq!(job.read("a.jsonl"), before);
    assert_eq!(outputs.last_committed(), last);
    // The oldest checkpoint still in the history is fine.
    let recovery = outputs.recover(Some((3, &[]))).unwrap();
    assert_eq!(recovery.retracted[0].lines, last - 3);
}

#[test]
fn a_start_without_checkpoint_empties_the_outputs() {
    let job = Job::new();
    fs::create_dir_all(job.out()).unwrap();
    fs::write(
        job.out().join("stale.jsonl"),
        "an earlier run without checkpoints\n",
    )
    .unwrap();
    let outputs = job.open();
    outputs.file("stale.jsonl").unwrap();
    assert_eq!(job.read("stale.jsonl"), "", "nothing of it was committed");

    let mut writer = file_writer(&outputs, "a.jsonl", 0);
    write(&mut writer, 0, 0, 3, 0);
    let part = writer.pre_commit(4, &job.parts(4)).unwrap().unwrap();
    outputs.commit(4, &[part]).unwrap();
    drop((writer, outputs));

    let outputs = job.open();
    let recovery = outputs.recover(None).unwrap();
    assert_eq!(recovery.committed, 0);
    assert_eq!(recovery.retracted[0].lines, 3);
    assert_eq!(job.read("a.jsonl"), "");
    // A fresh run numbers its checkpoints from 1 again.
    let mut writer = file_writer(&outputs, "a.jsonl", 0);
    let text = write(&mut writer, 0, 0, 1, 0);
    let part = writer.pre_commit(1, &job.parts(1)).unwrap().unwrap();
    outputs.commit(1, &[part]).unwrap();
    assert_eq!(job.read("a.jsonl"), text);
}

#[test]
fn empty_epochs_commit_without_parts() {
    let job = Job::new();
    let outputs = job.open();
    let mut writer = file_writer(&outputs, "a.jsonl", 0);
    assert_eq!(writer.pre_commit(1, &job.parts(1)).unwrap(), None);
    assert!(!job.parts(1).exists(), "an empty epoch leaves no part");
    assert_eq!(
        outputs.commit(1, &[]).unwrap(),
        Commit::Done { lines: 0, bytes: 0 }
    );
    let text = write(&mut writer, 0, 0, 2, 0);
    let part = writer.pre_commit(2, &job.parts(2)).unwrap().unwrap();
    outputs.commit(2, &[part]).unwrap();
    // The final checkpoint of a bounded job: nothing written since the last one.
    assert_eq!(writer.pre_commit(3, &job.parts(3)).unwrap(), None);
    assert!(Sink::finish(&mut writer).is_ok());
    outputs.commit(3, &[]).unwrap();
    assert_eq!(outputs.last_committed(), 3);
    assert_eq!(job.read("a.jsonl"), text);
    assert!(
        outputs
            .recover(Some((3, &[])))
            .unwrap()
            .retracted
            .is_empty()
    );
}

#[test]
fn finishing_with_lines_after_the_last_pre_commit_is_an_error() {
    let job = Job::new();
    let outputs = job.open();
    let mut writer = file_writer(&outputs, "a.jsonl", 2);
    write(&mut writer, 2, 0, 3, 0);
    let err = Sink::finish(&mut writer).unwrap_err().to_string();
    assert!(
        err.contains("3 lines of subtask 2") && err.contains("final checkpoint"),
        "{err}"
    );
}

#[test]
fn several_subtasks_commit_in_subtask_order_without_interleaving() {
    let job = Job::new();
    let outputs = job.open();
    let file = outputs.file("a.jsonl").unwrap();
    let subtasks = 12;
    let handles: Vec<_> = (0..subtasks)
        .map(|s| {
            let file: Arc<TransactionalFile> = Arc::clone(&file);
            let dir = job.parts(1);
            std::thread::spawn(move || {
                let mut writer = file.writer::<Rec>(s);
                let text = write(&mut writer, s, 0, 500, 200);
                (s, text, writer.pre_commit(1, &dir).unwrap().unwrap())
            })
        })
        .collect();
    let mut results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // The coordinator gets the acknowledgements in any order.
    results.reverse();
    let parts: Vec<PendingPart> = results.iter().map(|r| r.2.clone()).collect();
    outputs.commit(1, &parts).unwrap();
    results.sort_by_key(|r| r.0);
    let expected: String = results.iter().map(|r| r.1.as_str()).collect();
    let text = job.read("a.jsonl");
    assert_whole_lines(&text);
    assert_eq!(
        text, expected,
        "subtask 0 first, subtask 11 last, each whole"
    );
}

#[test]
fn bad_names_and_outputs_changed_outside_are_errors() {
    let job = Job::new();
    let outputs = job.open();
    for name in ["", ".weir", "../a.jsonl", "x/y"] {
        assert!(outputs.file(name).is_err(), "{name:?}");
    }
    let mut writer = file_writer(&outputs, "a.jsonl", 0);
    write(&mut writer, 0, 0, 3, 0);
    let part = writer.pre_commit(1, &job.parts(1)).unwrap().unwrap();
    outputs.commit(1, &[part]).unwrap();

    let mut missing = writer_part(&job, &outputs, 2);
    fs::remove_file(&missing.path).unwrap();
    missing.lines = 1;
    let err = outputs.commit(2, &[missing]).unwrap_err().to_string();
    assert!(err.contains("parts/b.jsonl"), "{err}");
    assert_eq!(outputs.last_committed(), 1);

    fs::write(job.out().join("a.jsonl"), "{}\n").unwrap();
    let err = outputs.recover(Some((1, &[]))).unwrap_err().to_string();
    assert!(
        err.contains("a.jsonl") && err.contains("changed outside weir"),
        "{err}"
    );
    let err = job.open().recover(Some((1, &[]))).unwrap_err().to_string();
    assert!(err.contains("changed outside weir"), "{err}");
}

fn writer_part(job: &Job, outputs: &TransactionalOutputs, id: CheckpointId) -> PendingPart {
    let mut writer = file_writer(outputs, "b.jsonl", 0);
    write(&mut writer, 0, 0, 1, 0);
    writer.pre_commit(id, &job.parts(id)).unwrap().unwrap()
}

#[test]
fn a_damaged_marker_is_an_error_naming_it() {
    let job = Job::new();
    let outputs = job.open();
    outputs.file("a.jsonl").unwrap();
    drop(outputs);
    let marker = job.out().join(".weir/committed.json");
    fs::write(&marker, "{\"version\": 1, \"last").unwrap();
    let err = TransactionalOutputs::open(job.out())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("committed.json") && err.contains("not a commit marker"),
        "{err}"
    );
}

// ---- The model-based test ----

const OUTPUTS: [&str; 2] = ["a.jsonl", "b.jsonl"];
const SUBTASKS: usize = 3;

#[derive(Debug, Clone)]
enum After {
    Commit,
    Leave,
    /// The commit appended this many thousandths of its bytes, then the process was killed.
    CrashMidCommit(u32),
}

#[derive(Debug, Clone)]
enum Op {
    Write {
        subtask: usize,
        output: usize,
        count: u64,
        pad: usize,
    },
    Checkpoint(After),
    /// Killed; on restart the newest checkpoint is damaged if `fallback`.
    Crash {
        fallback: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SUBTASKS, 0..OUTPUTS.len(), 0u64..40, prop_oneof![0usize..20, 1000usize..3000])
            .prop_map(|(subtask, output, count, pad)| Op::Write { subtask, output, count, pad }),
        3 => prop_oneof![
            3 => Just(After::Commit),
            1 => Just(After::Leave),
            1 => (0u32..=1000).prop_map(After::CrashMidCommit),
        ].prop_map(Op::Checkpoint),
        1 => any::<bool>().prop_map(|fallback| Op::Crash { fallback }),
    ]
}

/// A completed checkpoint: its parts and what its commit appends to each output.
#[derive(Debug, Clone)]
struct Completed {
    id: CheckpointId,
    parts: Vec<PendingPart>,
    texts: [String; 2],
    lines: [u64; 2],
}

struct Model {
    job: Job,
    outputs: TransactionalOutputs,
    /// `writers[subtask][output]` and the lines of its open transaction.
    writers: Vec<Vec<(TxWriter<Rec>, String)>>,
    completed: Vec<Completed>,
    /// Ids of committed checkpoints, in order (a prefix of `completed`).
    committed: usize,
    /// The marker's history, as the model expects it.
    history: Vec<CheckpointId>,
    next_id: CheckpointId,
    next_record: u64,
}

impl Model {
    fn new() -> Self {
        let job = Job::new();
        let outputs = job.open();
        let writers = Self::writers(&outputs);
        Self {
            job,
            outputs,
            writers,
            completed: Vec::new(),
            committed: 0,
            history: Vec::new(),
            next_id: 1,
            next_record: 0,
        }
    }

    fn writers(outputs: &TransactionalOutputs) -> Vec<Vec<(TxWriter<Rec>, String)>> {
        (0..SUBTASKS)
            .map(|s| {
                OUTPUTS
                    .iter()
                    .map(|name| (file_writer(outputs, name, s), String::new()))
                    .collect()
            })
            .collect()
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Write {
                subtask,
                output,
                count,
                pad,
            } => {
                let (writer, open) = &mut self.writers[subtask][output];
                open.push_str(&write(writer, subtask, self.next_record, count, pad));
                self.next_record += count;
            }
            Op::Checkpoint(ref after) => self.checkpoint(after),
            Op::Crash { fallback } => self.crash(fallback),
        }
        self.check();
    }

    fn commit_next(&mut self) {
        let c = &self.completed[self.committed];
        let lines = c.lines.iter().sum::<u64>();
        let bytes = c.parts.iter().map(|p| p.bytes).sum::<u64>();
        assert_eq!(
            self.outputs.commit(c.id, &c.parts).unwrap(),
            Commit::Done { lines, bytes }
        );
        self.record(c.id);
    }

    fn record(&mut self, id: CheckpointId) {
        self.committed += 1;
        self.history.push(id);
        if self.history.len() > HISTORY_LEN {
            self.history.remove(0);
        }
    }

    fn checkpoint(&mut self, after: &After) {
        // The coordinator commits a completed checkpoint before it triggers the next.
        if self.committed < self.completed.len() {
            self.commit_next();
        }
        let id = self.next_id;
        self.next_id += 1;
        let dir = self.job.parts(id);
        let mut texts = [String::new(), String::new()];
        let mut lines = [0, 0];
        let mut parts = Vec::new();
        // Barriers reach the subtasks in any order; here, reverse on even ids.
        let mut order: Vec<usize> = (0..SUBTASKS).collect();
        if id.is_multiple_of(2) {
            order.reverse();
        }
        for &s in &order {
            for (o, (writer, open)) in self.writers[s].iter_mut().enumerate() {
                let pending = writer.pre_commit(id, &dir).unwrap();
                assert_eq!(pending.is_some(), !open.is_empty());
                if let Some(part) = pending {
                    lines[o] += part.lines;
                    parts.push(part);
                }
            }
        }
        for writers in &mut self.writers {
            for (o, (_, open)) in writers.iter_mut().enumerate() {
                texts[o].push_str(&std::mem::take(open));
            }
        }
        self.completed.push(Completed {
            id,
            parts,
            texts,
            lines,
        });
        match *after {
            After::Commit => self.commit_next(),
            After::Leave => {}
            After::CrashMidCommit(thousandths) => {
                let c = self.completed.last().unwrap();
                let all: String = c.texts.concat();
                let mut left = all.len() * thousandths as usize / 1000;
                for (o, text) in c.texts.iter().enumerate() {
                    let n = left.min(text.len());
                    left -= n;
                    let path = self.job.out().join(OUTPUTS[o]);
                    let mut bytes = fs::read(&path).unwrap();
                    bytes.extend_from_slice(&text.as_bytes()[..n]);
                    fs::write(&path, bytes).unwrap();
                }
                self.crash(false);
            }
        }
    }

    fn crash(&mut self, fallback: bool) {
        for writer in std::mem::take(&mut self.writers).into_iter().flatten() {
            std::mem::forget(writer.0);
        }
        self.outputs = self.job.open();
        let mut retracted = 0;
        if fallback && self.completed.len() >= 2 {
            let target = self.completed[self.completed.len() - 2].id;
            if !self.history.contains(&target) {
                let err = self.outputs.recover(Some((target, &[]))).unwrap_err();
                assert!(matches!(err, OutputError::NotInHistory { .. }), "{err}");
            } else {
                let damaged = self.completed.pop().unwrap();
                if self.committed > self.completed.len() {
                    self.committed -= 1;
                    self.history.pop();
                    retracted = damaged.lines.iter().sum();
                }
            }
        }
        let restore = self.completed.last().map(|c| (c.id, c.parts.as_slice()));
        let recovery = self.outputs.recover(restore).unwrap();
        let restored = restore.map_or(0, |(id, _)| id);
        let redone = self.committed < self.completed.len();
        assert_eq!(recovery.redone, redone);
        assert_eq!(
            recovery.retracted.iter().map(|r| r.lines).sum::<u64>(),
            retracted
        );
        if redone {
            let id = self.completed[self.committed].id;
            self.record(id);
        }
        self.next_id = restored + 1;
        assert_eq!(recovery.committed, self.next_id - 1);
        assert_eq!(self.job.in_progress(), 0);
        self.writers = Self::writers(&self.outputs);
    }

    /// Every output holds exactly the committed epochs, in order, whole lines only.
    fn check(&self) {
        for (o, name) in OUTPUTS.iter().enumerate() {
            let expected: String = self.completed[..self.committed]
                .iter()
                .map(|c| c.texts[o].as_str())
                .collect();
            let text = self.job.read(name);
            assert_whole_lines(&text);
            assert_eq!(text.len(), expected.len(), "{name}");
            assert!(text == expected, "{name} differs from the committed epochs");
            let lines: u64 = self.completed[..self.committed]
                .iter()
                .map(|c| c.lines[o])
                .sum();
            assert_eq!(self.outputs.committed_lines(name), lines);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn committed_files_are_the_committed_epochs_in_order(ops in proptest::collection::vec(op(), 1..40)) {
        let mut model = Model::new();
        for op in &ops {
            model.run(op);
        }
        // The end of a bounded job: a final checkpoint, committed.
        model.run(&Op::Checkpoint(After::Commit));
        prop_assert_eq!(model.committed, model.completed.len());
    }
}

#[test]
fn the_model_reaches_every_path() {
    // One fixed sequence through a fallback, a torn commit and a fallback past the history.
    let mut model = Model::new();
    let w = |subtask, output| Op::Write {
        subtask,
        output,
        count: 5,
        pad: 3,
    };
    let mut ops = vec![w(0, 0), w(2, 1), w(1, 0), Op::Checkpoint(After::Commit)];
    for _ in 0..HISTORY_LEN + 1 {
        ops.extend([w(1, 1), Op::Checkpoint(After::Commit)]);
    }
    ops.extend([
        w(2, 0),
        Op::Checkpoint(After::CrashMidCommit(500)),
        Op::Crash { fallback: true },
    ]);
    ops.extend((0..HISTORY_LEN + 1).map(|_| Op::Crash { fallback: true }));
    ops.extend([
        w(0, 0),
        Op::Checkpoint(After::Leave),
        Op::Crash { fallback: false },
    ]);
    for op in &ops {
        model.run(op);
    }
    assert!(model.committed >= 2);
}
