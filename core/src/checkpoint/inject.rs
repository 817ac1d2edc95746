//! Failure injection for exactly-once tests (`--inject-failures K --failure-seed S`): fails a
//! random subtask `K` times, at random points of the checkpoint life cycle.
//!
//! The plan is drawn once from the seed: each failure has a [`Site`], a subtask and a countdown
//! (how many times the site must be reached first). One planned failure is armed at a time;
//! once it fires, the next is armed (in the next attempt). Reaching a site that is not armed
//! costs one relaxed load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::JobError;

/// Where a failure is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Site {
    /// While processing records (checked once per buffer or source batch).
    Processing = 1,
    /// When a barrier arrives at a task that is aligning.
    Aligning = 2,
    /// In the synchronous part of a snapshot, on the task thread.
    SyncSnapshot = 3,
    /// In the asynchronous part, on a snapshot thread.
    AsyncSnapshot = 4,
    /// After a checkpoint's metadata is durable, before its outputs are committed.
    BeforeCommit = 5,
    /// While a task restores its state.
    Restoring = 6,
}

const SITES: [Site; 6] = [
    Site::Processing,
    Site::Aligning,
    Site::SyncSnapshot,
    Site::AsyncSnapshot,
    Site::BeforeCommit,
    Site::Restoring,
];

#[derive(Debug, Clone, Copy)]
struct Planned {
    site: Site,
    /// The subtask (global task index) it hits; sites outside tasks match any.
    task: usize,
    countdown: u64,
}

/// The failure plan of one job, shared by its threads over all attempts.
#[derive(Debug, Default)]
pub struct FailureInjector {
    armed_site: AtomicU8,
    state: Mutex<Plan>,
}

#[derive(Debug, Default)]
struct Plan {
    planned: Vec<Planned>,
    fired: Vec<String>,
}

impl FailureInjector {
    /// No failures.
    pub fn none() -> Self {
        Self::default()
    }

    /// `count` failures drawn from `seed` over `tasks` subtasks.
    pub fn new(count: u32, seed: u64, tasks: usize) -> Self {
        let mut rng = SplitMix(seed);
        let mut planned: Vec<Planned> = (0..count)
            .map(|i| {
                let mut site = SITES[(rng.next() % SITES.len() as u64) as usize];
                if i == 0 && site == Site::Restoring {
                    // Nothing restores before the first failure.
                    site = Site::Processing;
                }
                let countdown = match site {
                    Site::Processing => 1 + rng.next() % 100,
                    _ => 1 + rng.next() % 2,
                };
                Planned {
                    site,
                    task: (rng.next() % tasks.max(1) as u64) as usize,
                    countdown,
                }
            })
            .collect();
        planned.reverse(); // popped from the back, in drawing order
        let injector = Self {
            armed_site: AtomicU8::new(0),
            state: Mutex::new(Plan {
                planned,
                fired: Vec::new(),
            }),
        };
        injector.arm(&injector.state.lock().expect("fresh"));
        injector
    }

    fn arm(&self, plan: &Plan) {
        let site = plan.planned.last().map_or(0, |p| p.site as u8);
        self.armed_site.store(site, Ordering::Relaxed);
    }

    /// Reached `site` in task `task` (`usize::MAX` outside tasks): fails if the armed failure
    /// is due here.
    #[inline]
    pub fn hit(&self, site: Site, task: usize) -> Result<(), JobError> {
        if self.armed_site.load(Ordering::Relaxed) != site as u8 {
            return Ok(());
        }
        self.hit_armed(site, task)
    }

    #[cold]
    fn hit_armed(&self, site: Site, task: usize) -> Result<(), JobError> {
        let mut plan = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(next) = plan.planned.last_mut() else {
            return Ok(());
        };
        // Sites that only some tasks reach (aligning needs two inputs, restoring needs state) or
        // that run outside
        // the task (snapshot threads, the coordinator) fire wherever they are reached first.
        let any_task = matches!(
            site,
            Site::BeforeCommit | Site::AsyncSnapshot | Site::Aligning | Site::Restoring
        );
        if next.site != site || !(any_task || next.task == task) {
            return Ok(());
        }
        next.countdown -= 1;
        if next.countdown > 0 {
            return Ok(());
        }
        let fired = plan.planned.pop().expect("checked");
        let at = match if any_task { task } else { fired.task } {
            usize::MAX => "the coordinator".to_owned(),
            index => format!("subtask index {index}"),
        };
        let message = format!(
            "injected failure {} ({:?}, {at})",
            plan.fired.len() + 1,
            fired.site,
        );
        plan.fired.push(message.clone());
        self.arm(&plan);
        Err(JobError::Injected(message))
    }

    /// The failures injected so far.
    pub fn fired(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fired
            .clone()
    }

    /// Failures still planned.
    pub fn remaining(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .planned
            .len()
    }
}

/// SplitMix64: a tiny, well-known generator; the plan (and the state tests) only need to be
/// reproducible.
pub(crate) struct SplitMix(pub(crate) u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_fires_each_failure_once_in_order() {
        let injector = FailureInjector::new(3, 7, 4);
        let mut fired = 0;
        for _ in 0..10_000 {
            for site in SITES {
                for task in 0..4 {
                    if injector.hit(site, task).is_err() {
                        fired += 1;
                    }
                }
            }
        }
        assert_eq!(fired, 3);
        assert_eq!(injector.fired().len(), 3);
        assert_eq!(injector.remaining(), 0);
    }

    #[test]
    fn the_same_seed_draws_the_same_plan() {
        let a = FailureInjector::new(5, 42, 3);
        let b = FailureInjector::new(5, 42, 3);
        let plan = |i: &FailureInjector| {
            i.state
                .lock()
                .unwrap()
                .planned
                .iter()
                .map(|p| (p.site, p.task, p.countdown))
                .collect::<Vec<_>>()
        };
        assert_eq!(plan(&a), plan(&b));
        assert!(FailureInjector::none().hit(Site::Processing, 0).is_ok());
    }
}
