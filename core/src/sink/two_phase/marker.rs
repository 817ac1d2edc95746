//! The commit marker `OUTPUT/.weir/committed.json`: the last committed checkpoint and, for the
//! last [`HISTORY_LEN`] committed checkpoints, every output's committed length.
//!
//! It is the single point of truth of what is committed: an output's bytes past its length here
//! are the torn tail of an interrupted commit (or a retraction) and are cut off before anything
//! else touches the file. Replaced atomically (temp file, fsync, rename, fsync of the folder), so
//! a crash leaves either the old or the new marker, never a mix. Validated right before it is
//! written and right after it is read back.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::OutputError;
use super::durable::sync_dir;
use crate::checkpoint::CheckpointId;

/// Committed checkpoints whose lengths the marker keeps: a restore can fall back this far.
pub const HISTORY_LEN: usize = 8;

/// The marker's format version.
const VERSION: u32 = 1;

/// What one output holds once a checkpoint is committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// Bytes of the file.
    pub bytes: u64,
    /// Whole lines in it.
    pub lines: u64,
}

/// Every output's committed length; an output not listed holds nothing.
pub(super) type Lengths = BTreeMap<String, Committed>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    checkpoint: CheckpointId,
    lengths: Lengths,
}

/// The marker's content.
///
/// Invariants ([`check`](Self::check)): `history` holds at most [`HISTORY_LEN`] entries in
/// increasing checkpoint order; its last entry is `last_committed`, or it is empty and
/// `last_committed` is 0 (nothing committed); every output named in it is in `outputs`; an
/// output's length never shrinks from one entry to the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Marker {
    version: u32,
    last_committed: CheckpointId,
    /// Every output ever known here: named before its first byte is appended, so that a torn
    /// tail is always in a file the marker lists.
    outputs: BTreeSet<String>,
    history: Vec<Entry>,
}

impl Default for Marker {
    fn default() -> Self {
        Self {
            version: VERSION,
            last_committed: 0,
            outputs: BTreeSet::new(),
            history: Vec::new(),
        }
    }
}

impl Marker {
    /// Reads and validates the marker at `path`; `None` if there is none.
    pub fn read(path: &Path) -> Result<Option<Self>, OutputError> {
        let text = match fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(OutputError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let corrupt = |reason: String| OutputError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let marker: Self = serde_json::from_slice(&text)
            .map_err(|e| corrupt(format!("not a commit marker: {e}")))?;
        marker.check().map_err(corrupt)?;
        Ok(Some(marker))
    }

    /// Replaces the marker at `path` durably: temp file, fsync, rename, fsync of the folder.
    ///
    /// # Panics
    /// If the marker breaks its invariants: that is a bug in this module, never bad input.
    pub fn write(&self, path: &Path) -> Result<(), OutputError> {
        if let Err(reason) = self.check() {
            panic!("bug: about to write an invalid commit marker: {reason}");
        }
        let text = serde_json::to_vec_pretty(self).expect("a marker always serializes");
        let tmp = path.with_extension("json.tmp");
        let io_at = |path: &Path| {
            let path = path.to_path_buf();
            move |source| OutputError::Io { path, source }
        };
        let mut file = File::create(&tmp).map_err(io_at(&tmp))?;
        file.write_all(&text).map_err(io_at(&tmp))?;
        file.sync_all().map_err(io_at(&tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_at(path))?;
        let dir = path.parent().expect("the marker lives in a folder");
        sync_dir(dir).map_err(io_at(dir))
    }

    fn check(&self) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "format version {} (this weir reads {VERSION})",
                self.version
            ));
        }
        if self.history.len() > HISTORY_LEN {
            return Err(format!(
                "{} history entries, at most {HISTORY_LEN}",
                self.history.len()
            ));
        }
        match self.history.last() {
            None if self.last_committed != 0 => {
                return Err(format!(
                    "last committed checkpoint {} has no history entry",
                    self.last_committed
                ));
            }
            Some(last) if last.checkpoint != self.last_committed => {
                return Err(format!(
                    "last committed checkpoint {} but the newest history entry is {}",
                    self.last_committed, last.checkpoint
                ));
            }
            _ => {}
        }
        for pair in self.history.windows(2) {
            let (older, newer) = (&pair[0], &pair[1]);
            if older.checkpoint >= newer.checkpoint {
                return Err(format!(
                    "history not in checkpoint order ({} before {})",
                    older.checkpoint, newer.checkpoint
                ));
            }
            for (output, was) in &older.lengths {
                let now = newer.lengths.get(output).copied().unwrap_or_default();
                if now.bytes < was.bytes || now.lines < was.lines {
                    return Err(format!(
                        "{output} shrinks from checkpoint {} to {}",
                        older.checkpoint, newer.checkpoint
                    ));
                }
            }
        }
        for entry in &self.history {
            for (output, len) in &entry.lengths {
                if !self.outputs.contains(output) {
                    return Err(format!(
                        "checkpoint {} names unknown output {output}",
                        entry.checkpoint
                    ));
                }
                if len.lines > len.bytes {
                    return Err(format!(
                        "{output} at checkpoint {}: {} lines in {} bytes",
                        entry.checkpoint, len.lines, len.bytes
                    ));
                }
            }
        }
        for output in &self.outputs {
            super::check_name(output).map_err(|reason| format!("output {output:?}: {reason}"))?;
        }
        Ok(())
    }

    /// The last committed checkpoint, 0 if none.
    pub fn last_committed(&self) -> CheckpointId {
        self.last_committed
    }

    /// Every output known, in name order.
    pub fn outputs(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().map(String::as_str)
    }

    /// Adds outputs; true if any was new (the marker must then be written before their first
    /// byte).
    pub fn know<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> bool {
        let before = self.outputs.len();
        self.outputs.extend(names.into_iter().map(str::to_owned));
        self.outputs.len() != before
    }

    /// The lengths after the last commit.
    pub fn current(&self) -> Lengths {
        self.history
            .last()
            .map(|e| e.lengths.clone())
            .unwrap_or_default()
    }

    /// What output `name` holds after the last commit.
    pub fn committed(&self, name: &str) -> Committed {
        self.history
            .last()
            .and_then(|e| e.lengths.get(name).copied())
            .unwrap_or_default()
    }

    /// The lengths after committed checkpoint `checkpoint` (0: all empty); `None` if it is not
    /// in the history.
    pub fn lengths_at(&self, checkpoint: CheckpointId) -> Option<Lengths> {
        if checkpoint == 0 {
            return Some(Lengths::new());
        }
        self.history
            .iter()
            .find(|e| e.checkpoint == checkpoint)
            .map(|e| e.lengths.clone())
    }

    /// The checkpoints in the history, oldest first.
    pub fn known_checkpoints(&self) -> Vec<CheckpointId> {
        self.history.iter().map(|e| e.checkpoint).collect()
    }

    /// Records the commit of `checkpoint`, newer than the last, forgetting the oldest entry past
    /// [`HISTORY_LEN`].
    pub fn record(&mut self, checkpoint: CheckpointId, lengths: Lengths) {
        assert!(
            checkpoint > self.last_committed,
            "commits go forward: {checkpoint} after {}",
            self.last_committed
        );
        self.history.push(Entry {
            checkpoint,
            lengths,
        });
        if self.history.len() > HISTORY_LEN {
            self.history.remove(0);
        }
        self.last_committed = checkpoint;
    }

    /// Forgets every commit after `checkpoint` (which is 0 or in the history).
    pub fn roll_back(&mut self, checkpoint: CheckpointId) {
        debug_assert!(self.lengths_at(checkpoint).is_some());
        self.history.retain(|e| e.checkpoint <= checkpoint);
        self.last_committed = checkpoint;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(bytes: u64, lines: u64) -> Lengths {
        Lengths::from([("a.jsonl".to_owned(), Committed { bytes, lines })])
    }

    #[test]
    fn round_trips_and_keeps_a_bounded_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("committed.json");
        let mut marker = Marker::default();
        marker.know(["a.jsonl"]);
        for c in 1..=(HISTORY_LEN as u64 + 3) {
            marker.record(c, lengths(10 * c, c));
        }
        marker.write(&path).unwrap();
        let back = Marker::read(&path).unwrap().unwrap();
        assert_eq!(back, marker);
        assert_eq!(back.known_checkpoints().len(), HISTORY_LEN);
        assert_eq!(back.known_checkpoints()[0], 4);
        assert_eq!(back.lengths_at(3), None);
        assert_eq!(back.lengths_at(0), Some(Lengths::new()));
        assert_eq!(back.current(), lengths(110, 11));
    }

    #[test]
    fn a_damaged_marker_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("committed.json");
        let mut marker = Marker::default();
        marker.know(["a.jsonl"]);
        marker.record(1, lengths(10, 2));
        marker.record(2, lengths(20, 3));
        marker.write(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();

        fs::write(&path, &text[..text.len() / 2]).unwrap();
        let err = Marker::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("committed.json") && err.contains("not a commit marker"),
            "{err}"
        );

        fs::write(&path, text.replace("\"bytes\": 20", "\"bytes\": 5")).unwrap();
        let err = Marker::read(&path).unwrap_err().to_string();
        assert!(err.contains("shrinks from checkpoint 1 to 2"), "{err}");

        fs::write(
            &path,
            text.replace("\"last_committed\": 2", "\"last_committed\": 7"),
        )
        .unwrap();
        let err = Marker::read(&path).unwrap_err().to_string();
        assert!(err.contains("newest history entry is 2"), "{err}");
    }

    #[test]
    fn roll_back_forgets_newer_commits() {
        let mut marker = Marker::default();
        marker.know(["a.jsonl"]);
        for c in [2, 3, 5] {
            marker.record(c, lengths(c, 1));
        }
        marker.roll_back(3);
        assert_eq!(marker.last_committed(), 3);
        assert_eq!(marker.known_checkpoints(), vec![2, 3]);
        marker.roll_back(0);
        assert_eq!(marker.last_committed(), 0);
        assert!(marker.known_checkpoints().is_empty());
        assert!(marker.check().is_ok());
    }
}
