//! How a job checkpoints and restarts: Flink's `execution.checkpointing.*` and
//! `restart-strategy.*`, as plain structs with Flink's defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::CheckpointStorage;
use crate::net::CheckpointBarrier;

/// How a task treats barriers (Flink's `execution.checkpointing.mode`,
/// `.unaligned.enabled` and `.aligned-checkpoint-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BarrierMode {
    /// Exactly once: a channel that delivered barrier `n` is blocked until every channel has
    /// (Flink's aligned `SingleCheckpointBarrierHandler`).
    Aligned,
    /// Exactly once without blocking: the barrier overtakes the in-flight buffers, the task
    /// snapshots at the first barrier and persists the overtaken buffers as channel state
    /// (Flink's unaligned checkpoints).
    Unaligned,
    /// Exactly once: starts aligned; a subtask whose start delay (time from the trigger to
    /// now) passes `timeout` switches this checkpoint to unaligned, and barriers still queued
    /// in its output channels overtake (Flink's unaligned checkpoints with a positive
    /// `aligned-checkpoint-timeout`). A zero timeout is unaligned from the start.
    AlignedWithTimeout {
        /// The start delay after which alignment gives way.
        #[serde(serialize_with = "ms")]
        timeout: Duration,
    },
    /// At least once: nothing blocks; the snapshot is taken when the last barrier arrives
    /// (Flink's `CheckpointBarrierTracker`). After a restore, records may be counted twice.
    AtLeastOnce,
}

impl BarrierMode {
    /// When `barrier` stops waiting for alignment (ms since the Unix epoch): never (`None`)
    /// for aligned and at-least-once barriers and for the final checkpoint's, always (0) for
    /// unaligned ones, its trigger plus the timeout for aligned ones with a timeout.
    pub fn unaligned_from_ms(&self, barrier: &CheckpointBarrier) -> Option<u64> {
        if barrier.final_checkpoint {
            return None;
        }
        let triggered = barrier.triggered_at_ms;
        match self {
            Self::Aligned | Self::AtLeastOnce => None,
            Self::Unaligned => Some(0),
            Self::AlignedWithTimeout { timeout } => {
                Some(triggered.saturating_add(timeout.as_millis() as u64))
            }
        }
    }

    /// Whether `barrier` goes unaligned at `now_ms`.
    pub fn is_unaligned_at(&self, barrier: &CheckpointBarrier, now_ms: u64) -> bool {
        self.unaligned_from_ms(barrier)
            .is_some_and(|from| now_ms >= from)
    }
}

/// Where the serialization of a snapshot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotMode {
    /// The task thread takes a copy-on-write view (O(key groups)) and a snapshot thread
    /// serializes and writes it while the task goes on (Flink's asynchronous snapshots).
    Async,
    /// The task thread serializes everything before it goes on: the baseline.
    Sync,
}

/// Checkpointing of one job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckpointConfig {
    /// Time between the end of one checkpoint's trigger and the next trigger.
    #[serde(serialize_with = "ms")]
    pub interval: Duration,
    /// Aligned, unaligned, aligned with a timeout, or at least once.
    pub mode: BarrierMode,
    /// A checkpoint not complete after this long is aborted (Flink: 10 min).
    #[serde(serialize_with = "ms")]
    pub timeout: Duration,
    /// Least time from one checkpoint's end to the next trigger (Flink: 0).
    #[serde(serialize_with = "ms")]
    pub min_pause: Duration,
    /// Failed checkpoints in a row tolerated before the job fails (Flink: 0).
    pub tolerable_failed: u32,
    /// Asynchronous (copy-on-write) or synchronous snapshots.
    pub snapshot: SnapshotMode,
    /// Threads that serialize and write snapshots.
    pub snapshot_threads: usize,
    /// The checkpoint folder (Flink's `state.checkpoints.dir`).
    pub dir: PathBuf,
    /// Where checkpoints are written.
    #[serde(skip)]
    pub storage: Arc<dyn CheckpointStorage>,
}

impl CheckpointConfig {
    /// Flink's defaults (aligned, 10 min timeout, no pause, no tolerated failure, async
    /// snapshots) at `interval`, writing into `storage` at `dir`.
    pub fn new(interval: Duration, dir: PathBuf, storage: Arc<dyn CheckpointStorage>) -> Self {
        Self {
            interval,
            mode: BarrierMode::Aligned,
            timeout: Duration::from_secs(600),
            min_pause: Duration::ZERO,
            tolerable_failed: 0,
            snapshot: SnapshotMode::Async,
            snapshot_threads: 2,
            dir,
            storage,
        }
    }
}

/// What to do after a failure (Flink's restart strategies, with their defaults).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RestartStrategy {
    /// Fail the job at the first failure.
    None,
    /// Restart up to `attempts` times, `delay` apart.
    FixedDelay {
        /// Restarts allowed.
        attempts: u32,
        /// Wait before each restart.
        #[serde(serialize_with = "ms")]
        delay: Duration,
    },
    /// Restart with a delay that grows by `multiplier` from `initial` up to `max`; it resets
    /// after `reset_after` without failure (Flink's default since 1.19: 1 s, 1 min, 1.5, 1 h).
    ExponentialDelay {
        /// First delay.
        #[serde(serialize_with = "ms")]
        initial: Duration,
        /// Largest delay.
        #[serde(serialize_with = "ms")]
        max: Duration,
        /// Growth per restart.
        multiplier: f64,
        /// Quiet time after which the delay starts again from `initial`.
        #[serde(serialize_with = "ms")]
        reset_after: Duration,
        /// Restarts allowed in all (Flink: unbounded; here `u32::MAX`).
        attempts: u32,
    },
    /// Restart after `delay` unless more than `max_failures` happened within `interval`.
    FailureRate {
        /// Failures allowed per interval.
        max_failures: u32,
        /// The measuring interval.
        #[serde(serialize_with = "ms")]
        interval: Duration,
        /// Wait before each restart.
        #[serde(serialize_with = "ms")]
        delay: Duration,
    },
}

/// Flink's defaults of the exponential-delay strategy (since 1.19), the default strategy.
pub mod exponential_defaults {
    use std::time::Duration;
    /// `restart-strategy.exponential-delay.initial-backoff`.
    pub const INITIAL: Duration = Duration::from_secs(1);
    /// `restart-strategy.exponential-delay.max-backoff`.
    pub const MAX: Duration = Duration::from_secs(60);
    /// `restart-strategy.exponential-delay.backoff-multiplier`.
    pub const MULTIPLIER: f64 = 1.5;
    /// `restart-strategy.exponential-delay.reset-backoff-threshold`.
    pub const RESET_AFTER: Duration = Duration::from_secs(3600);
    /// `restart-strategy.exponential-delay.attempts-before-reset-backoff` (unbounded).
    pub const ATTEMPTS: u32 = u32::MAX;
}

impl Default for RestartStrategy {
    fn default() -> Self {
        use exponential_defaults as d;
        Self::ExponentialDelay {
            initial: d::INITIAL,
            max: d::MAX,
            multiplier: d::MULTIPLIER,
            reset_after: d::RESET_AFTER,
            attempts: d::ATTEMPTS,
        }
    }
}

/// Decides, failure by failure, whether and when to restart.
#[derive(Debug)]
pub(crate) struct RestartBackoff {
    strategy: RestartStrategy,
    restarts: u32,
    next_delay: Duration,
    last_failure: Option<std::time::Instant>,
    recent: std::collections::VecDeque<std::time::Instant>,
}

impl RestartBackoff {
    pub(crate) fn new(strategy: RestartStrategy) -> Self {
        let next_delay = match strategy {
            RestartStrategy::ExponentialDelay { initial, .. } => initial,
            _ => Duration::ZERO,
        };
        Self {
            strategy,
            restarts: 0,
            next_delay,
            last_failure: None,
            recent: std::collections::VecDeque::new(),
        }
    }

    /// A failure happened now: the delay before the restart, or `None` to give up.
    pub(crate) fn on_failure(&mut self, now: std::time::Instant) -> Option<Duration> {
        let delay = match self.strategy {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                (self.restarts < attempts).then_some(delay)
            }
            RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
                reset_after,
                attempts,
            } => {
                if self
                    .last_failure
                    .is_some_and(|last| now.duration_since(last) >= reset_after)
                {
                    self.next_delay = initial;
                }
                let delay = self.next_delay.min(max);
                self.next_delay = delay.mul_f64(multiplier.max(1.0)).min(max);
                (self.restarts < attempts).then_some(delay)
            }
            RestartStrategy::FailureRate {
                max_failures,
                interval,
                delay,
            } => {
                self.recent.push_back(now);
                while self
                    .recent
                    .front()
                    .is_some_and(|&t| now.duration_since(t) > interval)
                {
                    self.recent.pop_front();
                }
                (self.recent.len() as u64 <= u64::from(max_failures)).then_some(delay)
            }
        };
        self.last_failure = Some(now);
        if delay.is_some() {
            self.restarts += 1;
        }
        delay
    }
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn exponential_delay_grows_to_its_cap() {
        let mut backoff = RestartBackoff::new(RestartStrategy::ExponentialDelay {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(200),
            multiplier: 1.5,
            reset_after: Duration::from_secs(3600),
            attempts: 3,
        });
        let now = Instant::now();
        assert_eq!(backoff.on_failure(now), Some(Duration::from_millis(100)));
        assert_eq!(backoff.on_failure(now), Some(Duration::from_millis(150)));
        assert_eq!(backoff.on_failure(now), Some(Duration::from_millis(200)));
        assert_eq!(backoff.on_failure(now), None, "three restarts allowed");
        assert_eq!(backoff.restarts, 3);
    }

    #[test]
    fn fixed_delay_counts_and_none_gives_up_at_once() {
        let mut fixed = RestartBackoff::new(RestartStrategy::FixedDelay {
            attempts: 1,
            delay: Duration::from_millis(5),
        });
        let now = Instant::now();
        assert_eq!(fixed.on_failure(now), Some(Duration::from_millis(5)));
        assert_eq!(fixed.on_failure(now), None);
        assert_eq!(
            RestartBackoff::new(RestartStrategy::None).on_failure(now),
            None
        );
    }

    #[test]
    fn failure_rate_gives_up_when_failures_crowd_an_interval() {
        let mut rate = RestartBackoff::new(RestartStrategy::FailureRate {
            max_failures: 2,
            interval: Duration::from_secs(60),
            delay: Duration::ZERO,
        });
        let now = Instant::now();
        assert!(rate.on_failure(now).is_some());
        assert!(rate.on_failure(now).is_some());
        assert!(
            rate.on_failure(now).is_none(),
            "a third failure within the minute"
        );
        let later = now + Duration::from_secs(120);
        assert!(
            rate.on_failure(later).is_some(),
            "the old failures left the window"
        );
    }
}
