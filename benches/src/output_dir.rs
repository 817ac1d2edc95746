//! The output folder's contract, the same for every command that writes one (`weir run
//! traffic`, `weir run nexmark`, `weir suite`):
//!
//! 1. [`OutputDir::open`] first replaces `report.json` with a marker whose `status` is
//!    `"incomplete"`, then removes the files of weir's own names that the run writes, so that
//!    nothing of an earlier run stays beside the new files.
//! 2. The run writes its files.
//! 3. [`OutputDir::finish`] replaces `report.json`, last, with the run's report under a
//!    `status` of `"completed"`, `"stopped_early"` or `"failed"` (with the `error`).
//!
//! `report.json` is only ever replaced by a rename, so it is never half written. However the
//! process ends, a SIGKILL included, the folder holds either the previous run untouched (the
//! process died before step 1) or a `report.json` that says which run it is and how it ended:
//! `"incomplete"` after a kill, when the other files may be partial. Files of other names are
//! left alone. Atomic against a killed process, not against power loss: nothing is synced.
//!
//! One run at a time per folder: two runs writing the same folder mix their files.
//!
//! A job's own outputs are opened with [`job_outputs`] (plain, or transactional when the job
//! checkpoints) and read back, as a reader of the folder sees them, with [`each_line`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use weir_core::RuntimeConfig;
use weir_core::sink::JobOutputs;

/// The transactional outputs' commit marker and in-progress parts, inside the output folder.
const TRANSACTION_LOG: &str = ".weir";

/// The report, written last; its `status` says whether the rest of the folder is complete.
pub const REPORT_FILE: &str = "report.json";

/// How a run ended, as `report.json`'s `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Written at the start; still there once the process is gone: it was killed, the other
    /// files may be partial.
    Incomplete,
    /// Every input record was processed and every file written.
    Completed,
    /// Interrupted (Ctrl-C, SIGTERM): everything read was processed and written.
    StoppedEarly,
    /// The run failed; `error` says why, the other files are partial.
    Failed,
}

/// `report.json`: the status, the error of a failed run, then the report's own fields.
#[derive(Serialize)]
struct Envelope<'a, R> {
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(flatten)]
    report: Option<&'a R>,
}

/// An output folder that a run is writing: `report.json` says `"incomplete"` until
/// [`OutputDir::finish`] or [`OutputDir::fail`] replaces it.
#[derive(Debug)]
#[must_use = "an output folder left unfinished says \"incomplete\""]
pub struct OutputDir {
    dir: PathBuf,
}

impl OutputDir {
    /// Creates `dir` if needed, marks it incomplete, then removes `files` (the names the run
    /// writes besides `report.json`) where they exist.
    pub fn open(dir: impl Into<PathBuf>, files: &[&str]) -> Result<Self, String> {
        let dir = dir.into();
        create(&dir)?;
        let out = Self { dir };
        out.write_report(&Envelope::<()> {
            status: Status::Incomplete,
            error: None,
            pid: Some(std::process::id()),
            report: None,
        })?;
        remove(&out.dir, files)?;
        Ok(out)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `report` as `report.json` with `status` (and `error` for a failed run): the last
    /// write of the run. `report` must serialize as a map (a struct).
    pub fn finish<R: Serialize>(
        self,
        status: Status,
        error: Option<&str>,
        report: &R,
    ) -> Result<(), String> {
        self.write_report(&Envelope {
            status,
            error,
            pid: None,
            report: Some(report),
        })
    }

    /// Marks the run failed with `error` and no report; returns `error` for the caller to
    /// pass on (with the reason `report.json` could not be written, if it could not).
    pub fn fail(self, error: String) -> String {
        let envelope = Envelope::<()> {
            status: Status::Failed,
            error: Some(&error),
            pid: None,
            report: None,
        };
        match self.write_report(&envelope) {
            Ok(()) => error,
            Err(e) => format!("{error}; {e}"),
        }
    }

    fn write_report<R: Serialize>(&self, envelope: &Envelope<'_, R>) -> Result<(), String> {
        let json = serde_json::to_string_pretty(envelope).map_err(|e| e.to_string())?;
        write_atomically(&self.dir.join(REPORT_FILE), &(json + "\n"))
    }
}

/// Creates `dir` and its parents if needed; an existing file there is an error that says so.
pub fn create(dir: &Path) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "--output {} is a file, not a folder",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Removes `files` from `dir` where they exist.
pub fn remove(dir: &Path, files: &[&str]) -> Result<(), String> {
    for name in files {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {e}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The outputs of a job run by `runtime` in `dir` (created if needed): transactional when it
/// checkpoints, plain otherwise. A run that does not restore starts afresh, so the commit
/// marker of an earlier run's transactional outputs is removed first; a restored run keeps it
/// and continues the outputs that the restored checkpoint committed.
pub fn job_outputs(dir: &Path, runtime: &RuntimeConfig) -> Result<JobOutputs, String> {
    create(dir)?;
    if runtime.restore.is_none() {
        let log = dir.join(TRANSACTION_LOG);
        match std::fs::remove_dir_all(&log) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("removing {}: {e}", log.display()));
            }
            _ => {}
        }
    }
    JobOutputs::open(dir, runtime.checkpoint.is_some()).map_err(|e| e.to_string())
}

/// Calls `f` with every line of the JSON-lines file at `path`, parsed, in O(file) time and
/// O(longest line) memory; a missing file has no lines. A line that does not parse (a torn
/// or foreign line) is an error naming the file and the line.
pub fn each_line<T: for<'de> Deserialize<'de>>(
    path: &Path,
    mut f: impl FnMut(T),
) -> Result<(), String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    // One buffer for every line, parsed as bytes (serde_json checks the UTF-8 of what it
    // reads): no allocation and no separate UTF-8 pass per line.
    let (mut reader, mut line) = (BufReader::new(file), Vec::new());
    for n in 1.. {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if read == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let parsed = serde_json::from_slice(text)
            .map_err(|e| format!("{} line {n}: {e}", path.display()))?;
        f(parsed);
    }
    Ok(())
}

/// Writes `text` to `path` through a hidden temporary file beside it and a rename: a reader
/// sees the old file or the new one, never a part.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let name = path
        .file_name()
        .map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&temporary, text)
        .map_err(|e| format!("writing {}: {e}", temporary.display()))?;
    std::fs::rename(&temporary, path)
        .map_err(|e| format!("moving {} to {}: {e}", temporary.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dir: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(REPORT_FILE)).unwrap()).unwrap()
    }

    #[derive(Serialize)]
    struct Counts {
        records_in: u64,
    }

    #[test]
    fn open_marks_incomplete_and_removes_stale_files_finish_replaces_the_report() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), "old\n").unwrap();
        std::fs::write(dir.path().join("mine.txt"), "kept\n").unwrap();
        let out = OutputDir::open(dir.path(), &["a.jsonl", "b.jsonl"]).unwrap();
        assert!(!dir.path().join("a.jsonl").exists());
        assert!(dir.path().join("mine.txt").exists(), "other names are kept");
        assert_eq!(report(dir.path())["status"], "incomplete");
        assert_eq!(report(dir.path())["pid"], std::process::id());
        out.finish(Status::StoppedEarly, None, &Counts { records_in: 7 })
            .unwrap();
        let json = report(dir.path());
        assert_eq!(json["status"], "stopped_early");
        assert_eq!(json["records_in"], 7);
        assert!(json.get("pid").is_none() && json.get("error").is_none());
        let text = std::fs::read_to_string(dir.path().join(REPORT_FILE)).unwrap();
        assert!(text.trim_start().starts_with("{\n  \"status\""), "{text}");
    }

    #[test]
    fn fail_records_the_error_and_a_file_is_not_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputDir::open(dir.path(), &[]).unwrap();
        assert_eq!(out.fail("boom".into()), "boom");
        assert_eq!(report(dir.path())["status"], "failed");
        assert_eq!(report(dir.path())["error"], "boom");
        let file = dir.path().join(REPORT_FILE);
        let err = OutputDir::open(&file, &[]).unwrap_err();
        assert_eq!(
            err,
            format!("--output {} is a file, not a folder", file.display())
        );
    }

    #[test]
    fn each_line_reads_every_line_and_names_the_one_that_does_not_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lines.jsonl");
        // Line ends of either kind, and a last line without one.
        std::fs::write(&path, "{\"n\":1}\n{\"n\":2}\r\n{\"n\":3}").unwrap();
        #[derive(Deserialize)]
        struct N {
            n: u64,
        }
        let mut seen = Vec::new();
        each_line(&path, |line: N| seen.push(line.n)).unwrap();
        assert_eq!(seen, [1, 2, 3]);
        std::fs::write(&path, "{\"n\":1}\n{\"n\":\n").unwrap();
        let err = each_line(&path, |_: N| {}).unwrap_err();
        assert!(
            err.starts_with(&format!("{} line 2: ", path.display())),
            "{err}"
        );
        each_line(&dir.path().join("missing.jsonl"), |_: N| panic!("no lines")).unwrap();
    }
}
