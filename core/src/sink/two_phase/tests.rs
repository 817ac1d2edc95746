//! Crashes inside the commit and the rollback, simulated by running their first steps only.

use super::*;

fn lines(n: u32) -> impl Iterator<Item = String> {
    (0..n).map(|i| format!("line {i}"))
}

fn expected(n: u32) -> String {
    lines(n).map(|l| format!("\"{l}\"\n")).collect()
}

/// Writes `n` lines through one writer and pre-commits them for checkpoint `id`.
fn epoch(file: &Arc<TransactionalFile>, root: &Path, id: CheckpointId, n: u32) -> PendingPart {
    let mut writer = file.writer::<String>(0);
    for line in lines(n) {
        writer.write_line(&line).unwrap();
    }
    let part_dir = root.join(format!("chk-{id}/parts"));
    writer.pre_commit(id, &part_dir).unwrap().unwrap()
}

#[test]
fn a_crash_after_the_append_before_the_marker_is_redone_once() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let part = {
        let outputs = TransactionalOutputs::open(&out).unwrap();
        let file = outputs.file("a.jsonl").unwrap();
        let part = epoch(&file, root.path(), 1, 1000);
        // The commit's steps up to, not including, the marker: then the process dies.
        let inner = outputs.lock();
        let committed = inner.marker.current();
        outputs.truncate_outputs(&inner.marker, &committed).unwrap();
        let mut lengths = committed.clone();
        outputs.append_parts(&[&part], &mut lengths).unwrap();
        assert_eq!(lengths["a.jsonl"].lines, 1000);
        part
    };
    assert_eq!(
        fs::read_to_string(out.join("a.jsonl")).unwrap(),
        expected(1000)
    );

    let outputs = TransactionalOutputs::open(&out).unwrap();
    assert_eq!(
        outputs.last_committed(),
        0,
        "the marker is the commit point"
    );
    let recovery = outputs.recover(Some((1, &[part]))).unwrap();
    assert!(recovery.redone);
    assert_eq!(recovery.committed, 1);
    assert_eq!(
        fs::read_to_string(out.join("a.jsonl")).unwrap(),
        expected(1000)
    );
    assert_eq!(outputs.committed_lines("a.jsonl"), 1000);
}

#[test]
fn a_crash_inside_a_rollback_after_the_marker_is_finished_by_the_next_recovery() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    {
        let outputs = TransactionalOutputs::open(&out).unwrap();
        let file = outputs.file("a.jsonl").unwrap();
        for (id, n) in [(1, 3), (2, 5)] {
            let part = epoch(&file, root.path(), id, n);
            outputs.commit(id, &[part]).unwrap();
        }
        // The rollback to 1 writes the marker first; the process dies before truncating.
        let mut inner = outputs.lock();
        let mut next = inner.marker.clone();
        next.roll_back(1);
        next.write(&outputs.marker_path).unwrap();
        inner.marker = next;
    }
    let outputs = TransactionalOutputs::open(&out).unwrap();
    assert_eq!(outputs.last_committed(), 1);
    let recovery = outputs.recover(Some((1, &[]))).unwrap();
    assert!(!recovery.redone);
    assert!(recovery.retracted.is_empty(), "the marker already said 1");
    assert_eq!(
        fs::read_to_string(out.join("a.jsonl")).unwrap(),
        expected(3)
    );
}

#[test]
fn a_part_that_does_not_match_its_record_fails_the_commit_and_leaves_the_output_committed() {
    let root = tempfile::tempdir().unwrap();
    let outputs = TransactionalOutputs::open(root.path().join("out")).unwrap();
    let file = outputs.file("a.jsonl").unwrap();
    let first = epoch(&file, root.path(), 1, 2);
    outputs.commit(1, &[first]).unwrap();

    let part = epoch(&file, root.path(), 2, 4);
    let mut wrong_lines = part.clone();
    wrong_lines.lines = 3;
    let err = outputs.commit(2, &[wrong_lines]).unwrap_err().to_string();
    assert!(err.contains("read 36 bytes in 4 lines"), "{err}");
    assert_eq!(fs::read_to_string(file.path()).unwrap(), expected(2));

    let mut torn = part.clone();
    fs::write(&part.path, b"\"line 0\"\n\"li").unwrap();
    torn.bytes = 12;
    let err = outputs.commit(2, &[torn]).unwrap_err().to_string();
    assert!(err.contains("torn last line"), "{err}");
    assert_eq!(fs::read_to_string(file.path()).unwrap(), expected(2));
    assert_eq!(outputs.last_committed(), 1);
}

/// Outputs are appended in parallel: each gets its own parts, in order, and a bad part of one
/// output fails the commit with both outputs left at their committed lengths.
#[test]
fn a_commit_of_several_outputs_appends_each_and_fails_as_a_whole() {
    let root = tempfile::tempdir().unwrap();
    let outputs = TransactionalOutputs::open(root.path().join("out")).unwrap();
    let (a, b, c) = (
        outputs.file("a.jsonl").unwrap(),
        outputs.file("b.jsonl").unwrap(),
        outputs.file("c.jsonl").unwrap(),
    );
    let parts = [
        epoch(&a, root.path(), 1, 3),
        epoch(&b, root.path(), 1, 5),
        epoch(&c, root.path(), 1, 7),
    ];
    outputs.commit(1, &parts).unwrap();
    for (file, n) in [(&a, 3), (&b, 5), (&c, 7)] {
        assert_eq!(fs::read_to_string(file.path()).unwrap(), expected(n));
    }
    assert_eq!(outputs.committed_lines("c.jsonl"), 7);

    let mut bad = epoch(&c, root.path(), 2, 2);
    bad.lines = 1;
    let parts = [epoch(&a, root.path(), 2, 4), bad];
    let err = outputs.commit(2, &parts).unwrap_err().to_string();
    assert!(err.contains("in 2 lines"), "{err}");
    assert_eq!(
        fs::read_to_string(a.path()).unwrap(),
        expected(3),
        "cut back"
    );
    assert_eq!(fs::read_to_string(c.path()).unwrap(), expected(7));
    assert_eq!(outputs.last_committed(), 1);
}

#[test]
fn declared_outputs_are_in_the_marker_before_their_files_are_opened() {
    let root = tempfile::tempdir().unwrap();
    let outputs = TransactionalOutputs::open(root.path()).unwrap();
    assert!(
        outputs.declare(&["a.jsonl", "../b.jsonl"]).is_err(),
        "a bad name"
    );
    assert!(
        Marker::read(&outputs.marker_path).unwrap().is_none(),
        "nothing written for a refused declaration"
    );
    outputs.declare(&["a.jsonl", "b.jsonl"]).unwrap();
    let mut on_disk = Marker::read(&outputs.marker_path).unwrap().unwrap();
    assert!(!on_disk.know(["a.jsonl", "b.jsonl"]), "both known at once");
    let written = fs::metadata(&outputs.marker_path)
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    outputs.file("a.jsonl").unwrap();
    outputs.file("b.jsonl").unwrap();
    let after = fs::metadata(&outputs.marker_path)
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(written, after, "opening a declared output writes no marker");
    assert!(root.path().join("a.jsonl").exists() && root.path().join("b.jsonl").exists());
}
