//! The transactions of a subtask's outputs (Flink's `TwoPhaseCommitSinkFunction`, seen from
//! the task): every transactional writer a subtask creates registers here, and at each
//! barrier the task pre-commits all of them, after its chain has processed every record
//! before the barrier.
//!
//! Registration is by scope: the runtime enters a subtask's scope on the thread that builds
//! the subtask's chain and on the subtask's own thread, so writers created anywhere in an
//! operator's construction, `open`, or a source reader's opening register with the right
//! subtask without being threaded through every constructor. Outside a scope (a job without
//! checkpoints, a test) registration reports `false` and the writer is on its own.

use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{CheckpointId, PendingPart};

/// An output with a transaction open for the current checkpoint epoch.
pub trait Transaction: Send {
    /// Makes the epoch's data durable as a part under `part_dir` and begins the next epoch;
    /// `None` when the epoch wrote nothing.
    fn pre_commit(
        &mut self,
        checkpoint: CheckpointId,
        part_dir: &Path,
    ) -> std::io::Result<Option<PendingPart>>;
}

/// A registered transaction, shared by its writer and its subtask.
pub type SharedTransaction = Arc<Mutex<dyn Transaction>>;

/// The transactions of one subtask, and its pre-committed parts whose checkpoint has not
/// completed yet.
///
/// A part pre-committed for checkpoint `n` is committed with `n`, or, if `n` is aborted (it
/// expired, was declined, or its metadata failed), with the next checkpoint that completes
/// (Flink's `TwoPhaseCommitSinkFunction` keeps such pending transactions the same way): at the
/// next barrier the subtask moves it from `chk-n/parts/` into the new checkpoint's part folder
/// and acknowledges it again. An abort therefore never removes a checkpoint's `parts/`.
#[derive(Clone, Default)]
pub struct Transactions {
    inner: Arc<Mutex<Vec<SharedTransaction>>>,
    /// Parts acknowledged for a checkpoint that had not completed when they were, with it.
    pending: Arc<Mutex<Vec<(CheckpointId, PendingPart)>>>,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transactions")
            .field("count", &self.inner.lock().map_or(0, |v| v.len()))
            .finish()
    }
}

thread_local! {
    static SCOPE: RefCell<Option<Transactions>> = const { RefCell::new(None) };
}

impl Transactions {
    /// Makes this subtask's registry the current thread's until the guard drops.
    pub(crate) fn enter(&self) -> ScopeGuard {
        let previous = SCOPE.with(|s| s.borrow_mut().replace(self.clone()));
        ScopeGuard { previous }
    }

    /// Pre-commits every registered transaction for `checkpoint`.
    /// Returns the parts to acknowledge: those of the checkpoints after `completed` (the newest
    /// completed one: the others were aborted, their parts are moved into `part_dir` and carried
    /// into this checkpoint), then this epoch's. Called at barrier `checkpoint`, when every
    /// earlier checkpoint has completed or aborted (one is in flight at a time).
    pub(crate) fn pre_commit_all(
        &self,
        checkpoint: CheckpointId,
        part_dir: &Path,
        completed: CheckpointId,
    ) -> std::io::Result<Vec<PendingPart>> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|(epoch, _)| *epoch > completed);
        let mut parts = Vec::with_capacity(pending.len());
        for (_, part) in pending.drain(..) {
            parts.push(carry(part, part_dir)?);
        }
        let all = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for tx in all {
            let mut tx = tx.lock().unwrap_or_else(|p| p.into_inner());
            parts.extend(tx.pre_commit(checkpoint, part_dir)?);
        }
        pending.extend(parts.iter().map(|part| (checkpoint, part.clone())));
        Ok(parts)
    }
}

/// Moves the part of an aborted checkpoint into `part_dir` (whose entry the checkpoint's
/// completion makes durable, as for every part it names).
fn carry(part: PendingPart, part_dir: &Path) -> std::io::Result<PendingPart> {
    let name = part.path.file_name().ok_or_else(|| {
        std::io::Error::other(format!(
            "{}: a part without a file name",
            part.path.display()
        ))
    })?;
    std::fs::create_dir_all(part_dir)?;
    let target = part_dir.join(name);
    crate::sink::two_phase::durable::move_file(&part.path, &target).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "carrying {} into {}: {e}",
                part.path.display(),
                part_dir.display()
            ),
        )
    })?;
    Ok(PendingPart {
        path: target,
        ..part
    })
}

/// Restores the thread's previous scope on drop.
#[derive(Debug)]
pub(crate) struct ScopeGuard {
    previous: Option<Transactions>,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        SCOPE.with(|s| *s.borrow_mut() = previous);
    }
}

/// Registers `transaction` with the subtask whose scope this thread is in; `false` outside
/// any scope (no checkpointing: the caller then writes without transactions).
pub fn register_transaction(transaction: SharedTransaction) -> bool {
    SCOPE.with(|s| match &*s.borrow() {
        Some(registry) => {
            registry
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(transaction);
            true
        }
        None => false,
    })
}

/// Whether this thread is in a subtask's scope of a checkpointed job.
pub fn in_transaction_scope() -> bool {
    SCOPE.with(|s| s.borrow().is_some())
}
