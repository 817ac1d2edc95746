//! Durable file moves: what "durable" means here is that the data and the directory entry are
//! both on disk (fsync of the file and of its folder), so a crash cannot lose a moved part.

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Makes the entries of folder `dir` durable (created, renamed or removed files).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Moves the synced file `from` to `to` durably: a rename, or across filesystems a copy, its
/// fsync and the removal of `from`. Returns once `to`'s folder entry is durable; `from` may
/// survive a crash on the copy path (it is an in-progress part then, which recovery removes).
pub fn move_durably(from: &Path, to: &Path) -> io::Result<()> {
    let to_dir = to.parent().expect("a part lives in a folder");
    match fs::rename(from, to) {
        Ok(()) => sync_dir(to_dir),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            copy_durably(from, to)?;
            fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

/// Copies `from` to `to`, syncing the copy and `to`'s folder.
fn copy_durably(from: &Path, to: &Path) -> io::Result<()> {
    let bytes = fs::copy(from, to)?;
    let copy = File::open(to)?;
    copy.sync_all()?;
    let copied = copy.metadata()?.len();
    if copied != bytes {
        return Err(io::Error::other(format!(
            "copied {bytes} bytes but {} holds {copied}",
            to.display()
        )));
    }
    sync_dir(to.parent().expect("a part lives in a folder"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_and_copy_both_move_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        fs::write(&a, b"one\ntwo\n").unwrap();
        move_durably(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"one\ntwo\n");
        // The cross-filesystem path, taken directly (a test cannot count on two filesystems).
        copy_durably(&b, &c).unwrap();
        assert_eq!(fs::read(&c).unwrap(), b"one\ntwo\n");
    }
}
