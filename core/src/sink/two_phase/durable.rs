//! Moving parts durably: what "durable" means here is that the data and the directory entry
//! are both on disk. A move syncs the data ([`move_file`]); the folder's entry is made durable
//! by a sync of the folder ([`sync_dir`]), which for parts moved into a checkpoint is the
//! checkpoint storage's completion, once for all of them, before the metadata names them.

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Makes the entries of folder `dir` durable (created, renamed or removed files).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Moves the synced file `from` to `to`: a rename, or across filesystems a copy, its fsync and
/// the removal of `from`. `to`'s bytes are durable when it returns, its folder entry only once
/// the folder is synced: the caller's duty (a part moved into a checkpoint's folder: the
/// checkpoint's completion syncs the folders of all its parts at once). `from` may survive a
/// crash on the copy path (it is an in-progress part then, which recovery removes).
pub fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            copy_synced(from, to)?;
            fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

/// Copies `from` to `to` and syncs the copy (not `to`'s folder).
fn copy_synced(from: &Path, to: &Path) -> io::Result<()> {
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
    Ok(())
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
        move_file(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"one\ntwo\n");
        // The cross-filesystem path, taken directly (a test cannot count on two filesystems).
        copy_synced(&b, &c).unwrap();
        assert_eq!(fs::read(&c).unwrap(), b"one\ntwo\n");
    }
}
