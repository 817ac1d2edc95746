//! The checkpointing options every job takes: the flags, and Flink's configuration keys as
//! `-D key=value`.
//!
//! Each setting can come from its flag or from its Flink key; giving both is an error (the
//! command would otherwise have to pick one silently). An unknown key is an error naming the
//! nearest known key. Settings that only make sense with checkpoints (restore, restarts,
//! injected failures) are refused without `--checkpoint-interval`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use weir_backends::storage::{DEFAULT_RETAINED, FsCheckpointStorage};
use weir_core::RuntimeConfig;
use weir_core::checkpoint::{
    BarrierMode, CheckpointConfig, RestartStrategy, SnapshotMode, exponential_defaults,
};
use weir_core::runtime::RestoreFrom;

use super::duration::{parse_duration, parse_positive_duration};
use super::state_backend::{self, BACKEND, Backend, INCREMENTAL, INCREMENTAL_NEW};

/// The checkpoint folder inside the output folder when `--checkpoint-dir` is not given.
pub const DEFAULT_CHECKPOINT_DIR: &str = "checkpoints";

/// The most checkpoints kept, and the most failures injected: far above any sensible setting.
const MAX_COUNT: u64 = 1_000_000;

/// Checkpoints, restore, restarts and failure injection.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Checkpoints")]
pub struct CheckpointArgs {
    /// Take a checkpoint this often (ms, s, m, h); checkpointing is off without it. With it,
    /// every output is transactional: OUTPUT/<name>.jsonl only ever holds the lines of
    /// completed checkpoints, whole lines, also after a crash. [-D execution.checkpointing.interval]
    #[arg(long, value_parser = parse_positive_duration)]
    checkpoint_interval: Option<Duration>,
    /// `aligned`: exactly once, a channel that delivered a barrier waits for the others;
    /// `unaligned`: exactly once, the barrier overtakes the buffers in flight, which are
    /// written into the checkpoint and replayed on restore (checkpoints stay fast under
    /// backpressure, at the cost of that I/O); `at-least-once`: nothing waits, and records
    /// may be counted twice after a restore. [default: aligned]
    /// [-D execution.checkpointing.mode=EXACTLY_ONCE|AT_LEAST_ONCE,
    /// -D execution.checkpointing.unaligned.enabled=true|false]
    #[arg(long, value_enum)]
    checkpoint_mode: Option<Mode>,
    /// Aligned checkpoints that go unaligned where they are late: a subtask whose barrier
    /// comes more than this long after the trigger (its start delay) stops aligning, and
    /// barriers still queued overtake; 0 is unaligned from the start. Implies exactly once;
    /// refused with `at-least-once`. With `--checkpoint-mode unaligned` it means the same as
    /// alone (Flink's semantic: aligned first). The report lists the subtasks that went
    /// unaligned. [default: none, never switch]
    /// [-D execution.checkpointing.aligned-checkpoint-timeout]
    #[arg(long, value_parser = parse_duration)]
    aligned_timeout: Option<Duration>,
    /// Abort a checkpoint that has not completed after this long. [default: 10m]
    /// [-D execution.checkpointing.timeout]
    #[arg(long, value_parser = parse_positive_duration)]
    checkpoint_timeout: Option<Duration>,
    /// Least time from the end of one checkpoint to the start of the next. [default: 0]
    /// [-D execution.checkpointing.min-pause]
    #[arg(long, value_parser = parse_duration)]
    min_pause: Option<Duration>,
    /// Failed checkpoints in a row the job tolerates before it fails. [default: 0]
    /// [-D execution.checkpointing.tolerable-failed-checkpoints]
    #[arg(long, value_parser = clap::value_parser!(u32))]
    tolerable_failed_checkpoints: Option<u32>,
    /// Folder of the checkpoints, one chk-N folder each. [default: OUTPUT/checkpoints]
    /// [-D state.checkpoints.dir]
    #[arg(long)]
    checkpoint_dir: Option<PathBuf>,
    /// Completed checkpoints kept, 1 or more; older ones are removed. [default: 2]
    /// [-D state.checkpoints.num-retained]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
    retained_checkpoints: Option<u64>,
    /// `async`: the task takes a copy-on-write view and a snapshot thread writes it while
    /// the task goes on; `sync`: the task serializes its whole state first (the baseline).
    /// [default: async]
    #[arg(long, value_enum)]
    snapshot: Option<Snapshot>,
    /// Where keyed state lives. `heap`: typed maps on the heap, each checkpoint a full
    /// copy-on-write snapshot. `mmap`: values in memory-mapped files (out of the heap, paged by
    /// the kernel), an index per key group; its snapshots are always incremental: a checkpoint
    /// writes only the keys changed since the last completed one into DIR/shared/ and refers to
    /// the earlier files, which are removed once no retained checkpoint needs them (Flink's
    /// state.backend.incremental=true). [default: heap] [-D state.backend.type=hashmap|mmap]
    #[arg(long, value_enum)]
    state_backend: Option<Backend>,
    /// Folder of the mmap backend's segment files (unlinked once mapped, so it stays empty).
    /// [default: the system's temporary folder/weir-mmap]
    #[arg(long, requires = "state_backend")]
    state_local_dir: Option<PathBuf>,
    /// Start from a checkpoint in --checkpoint-dir: `latest` (the newest usable one; a damaged
    /// one is reported and the one before it used) or the path of a chk-N folder. The
    /// parallelism may differ from the run that wrote it. The outputs continue from what that
    /// checkpoint committed.
    #[arg(long, value_parser = parse_restore)]
    restore: Option<RestoreFrom>,
    /// Fail a random subtask this many times at random points (processing, aligning, the
    /// synchronous and asynchronous snapshot, between pre-commit and commit, restoring); the
    /// job restarts by its restart strategy.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
    inject_failures: Option<u64>,
    /// Seed of the injected failures' plan: the same seed picks the same subtasks and points.
    #[arg(long, default_value_t = 1, requires = "inject_failures")]
    failure_seed: u64,
    /// What to do after a failure. [default: exponential-delay] [-D restart-strategy.type]
    #[arg(long, value_enum)]
    restart_strategy: Option<Strategy>,
    /// Restarts allowed (fixed-delay [default: 1], exponential-delay [default: unbounded]).
    /// [-D restart-strategy.fixed-delay.attempts,
    /// restart-strategy.exponential-delay.attempts-before-reset-backoff]
    #[arg(long, value_parser = clap::value_parser!(u32))]
    restart_attempts: Option<u32>,
    /// Wait before a restart (fixed-delay, failure-rate [default: 1s]); the first wait of
    /// exponential-delay [default: 1s]. [-D restart-strategy.fixed-delay.delay,
    /// restart-strategy.failure-rate.delay, restart-strategy.exponential-delay.initial-backoff]
    #[arg(long, value_parser = parse_duration)]
    restart_delay: Option<Duration>,
    /// Longest wait of exponential-delay. [default: 1m]
    /// [-D restart-strategy.exponential-delay.max-backoff]
    #[arg(long, value_parser = parse_duration)]
    restart_max_delay: Option<Duration>,
    /// Growth of exponential-delay's wait per restart, at least 1. [default: 1.5]
    /// [-D restart-strategy.exponential-delay.backoff-multiplier]
    #[arg(long)]
    restart_multiplier: Option<f64>,
    /// Quiet time after which exponential-delay's wait starts again from --restart-delay.
    /// [default: 1h] [-D restart-strategy.exponential-delay.reset-backoff-threshold]
    #[arg(long, value_parser = parse_positive_duration)]
    restart_reset_after: Option<Duration>,
    /// Failures allowed per --failure-rate-interval (failure-rate). [default: 1]
    /// [-D restart-strategy.failure-rate.max-failures-per-interval]
    #[arg(long, value_parser = clap::value_parser!(u32))]
    failure_rate_max_failures: Option<u32>,
    /// The interval failure-rate counts failures in. [default: 1m]
    /// [-D restart-strategy.failure-rate.failure-rate-interval]
    #[arg(long, value_parser = parse_positive_duration)]
    failure_rate_interval: Option<Duration>,
    /// A Flink configuration key and its value (repeatable): the execution.checkpointing.*,
    /// state.checkpoints.*, state.backend.type and restart-strategy.* keys named beside the
    /// flags, state.backend.incremental (or execution.checkpointing.incremental: true with
    /// mmap, false with heap; each backend has one way), and
    /// execution.checkpointing.max-concurrent-checkpoints (1 only). Durations as Flink writes
    /// them (10 s, 500 ms, 1 min) or as the flags do (10s).
    #[arg(short = 'D', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
}

/// `--checkpoint-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Exactly once, aligned.
    Aligned,
    /// Exactly once, unaligned.
    Unaligned,
    /// At least once.
    AtLeastOnce,
}

/// `--snapshot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Snapshot {
    /// Copy-on-write views written by snapshot threads.
    Async,
    /// A full copy on the task thread.
    Sync,
}

/// `--restart-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Fail the job at the first failure.
    None,
    /// Restart up to --restart-attempts times, --restart-delay apart.
    FixedDelay,
    /// Restart after a wait that grows by --restart-multiplier up to --restart-max-delay.
    ExponentialDelay,
    /// Restart after --restart-delay unless more than --failure-rate-max-failures happened
    /// within --failure-rate-interval.
    FailureRate,
}

fn parse_restore(text: &str) -> Result<RestoreFrom, String> {
    match text.trim() {
        "" => Err("--restore takes `latest` or the path of a chk-N folder".into()),
        "latest" => Ok(RestoreFrom::Latest),
        path => Ok(RestoreFrom::Path(PathBuf::from(path))),
    }
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))?;
    Ok((key.trim().to_owned(), value.trim().to_owned()))
}

/// The Flink keys `-D` takes.
const KEYS: [&str; 25] = [
    BACKEND,
    INCREMENTAL,
    INCREMENTAL_NEW,
    INTERVAL,
    MODE,
    UNALIGNED,
    ALIGNED_TIMEOUT,
    TIMEOUT,
    MIN_PAUSE,
    MAX_CONCURRENT,
    TOLERABLE,
    DIR,
    RETAINED,
    STRATEGY,
    FIXED_ATTEMPTS,
    FIXED_DELAY,
    RATE_MAX,
    RATE_INTERVAL,
    RATE_DELAY,
    EXP_INITIAL,
    EXP_MAX,
    EXP_MULTIPLIER,
    EXP_RESET,
    EXP_ATTEMPTS,
    EXP_JITTER,
];
const INTERVAL: &str = "execution.checkpointing.interval";
const MODE: &str = "execution.checkpointing.mode";
const UNALIGNED: &str = "execution.checkpointing.unaligned.enabled";
const ALIGNED_TIMEOUT: &str = "execution.checkpointing.aligned-checkpoint-timeout";
const TIMEOUT: &str = "execution.checkpointing.timeout";
const MIN_PAUSE: &str = "execution.checkpointing.min-pause";
const MAX_CONCURRENT: &str = "execution.checkpointing.max-concurrent-checkpoints";
const TOLERABLE: &str = "execution.checkpointing.tolerable-failed-checkpoints";
const DIR: &str = "state.checkpoints.dir";
const RETAINED: &str = "state.checkpoints.num-retained";
const STRATEGY: &str = "restart-strategy.type";
const FIXED_ATTEMPTS: &str = "restart-strategy.fixed-delay.attempts";
const FIXED_DELAY: &str = "restart-strategy.fixed-delay.delay";
const RATE_MAX: &str = "restart-strategy.failure-rate.max-failures-per-interval";
const RATE_INTERVAL: &str = "restart-strategy.failure-rate.failure-rate-interval";
const RATE_DELAY: &str = "restart-strategy.failure-rate.delay";
const EXP_INITIAL: &str = "restart-strategy.exponential-delay.initial-backoff";
const EXP_MAX: &str = "restart-strategy.exponential-delay.max-backoff";
const EXP_MULTIPLIER: &str = "restart-strategy.exponential-delay.backoff-multiplier";
const EXP_RESET: &str = "restart-strategy.exponential-delay.reset-backoff-threshold";
const EXP_ATTEMPTS: &str = "restart-strategy.exponential-delay.attempts-before-reset-backoff";
const EXP_JITTER: &str = "restart-strategy.exponential-delay.jitter-factor";

/// The settings resolved from the flags and the keys.
#[derive(Debug, Clone)]
pub struct Checkpointing {
    /// Checkpointing, if on.
    pub config: Option<CheckpointConfig>,
    /// After a failure.
    pub restart: RestartStrategy,
    /// Where the run starts.
    pub restore: Option<RestoreFrom>,
    /// Failures to inject and their seed.
    pub inject_failures: Option<(u32, u64)>,
    /// Where keyed state lives.
    pub state_backend: weir_core::state::StateBackendRef,
}

impl Checkpointing {
    /// Sets the runtime's checkpointing fields (the committer is the job's to set).
    pub fn apply(&self, runtime: &mut RuntimeConfig) {
        runtime.checkpoint = self.config.clone();
        runtime.restart = self.restart;
        runtime.restore = self.restore.clone();
        runtime.inject_failures = self.inject_failures;
        runtime.state_backend = Arc::clone(&self.state_backend);
    }
}

/// One setting from its flag or its key, never both.
struct Source<'a> {
    keys: &'a [(String, String)],
}

impl Source<'_> {
    /// The value of `flag` or of key `key` (parsed with `parse`).
    fn pick<T: Clone>(
        &self,
        flag: (&str, &Option<T>),
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        let mut from_key = None;
        for (k, v) in self.keys.iter().filter(|(k, _)| k == key) {
            if from_key.is_some() {
                return Err(format!("-D {k} is given twice"));
            }
            from_key = Some(parse(v).map_err(|e| format!("-D {k}={v}: {e}"))?);
        }
        match (flag.1, from_key) {
            (Some(_), Some(_)) => Err(format!(
                "--{} and -D {key} set the same thing: give one",
                flag.0
            )),
            (Some(v), None) => Ok(Some(v.clone())),
            (None, v) => Ok(v),
        }
    }

    /// The value of key `key` alone (settings without a flag).
    fn key<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        self.pick::<()>(("", &None), key, |_| Ok(()))?;
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(k, v)| parse(v).map_err(|e| format!("-D {k}={v}: {e}")))
            .transpose()
    }
}

/// A Flink duration: `10 s`, `500 ms`, `1 min`, `2 h`, or the flags' `10s`.
fn flink_duration(text: &str) -> Result<Duration, String> {
    let compact: String = text.split_whitespace().collect();
    let digits = compact
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(compact.len());
    let (number, unit) = compact.split_at(digits);
    let unit = match unit {
        "" if number == "0" => "",
        "" => "ms",
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hour" | "hours" => "h",
        other => return Err(format!("'{other}' is not a unit: use ms, s, min or h")),
    };
    parse_duration(&format!("{number}{unit}"))
}

fn positive(text: &str) -> Result<Duration, String> {
    match flink_duration(text)? {
        d if d.is_zero() => Err("the duration must be more than 0".into()),
        d => Ok(d),
    }
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("'{text}' is not a whole number in range"))
}

fn mode(text: &str) -> Result<Mode, String> {
    match text {
        "EXACTLY_ONCE" => Ok(Mode::Aligned),
        "AT_LEAST_ONCE" => Ok(Mode::AtLeastOnce),
        other => Err(format!("'{other}' is not EXACTLY_ONCE or AT_LEAST_ONCE")),
    }
}

fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("'{other}' is not true or false")),
    }
}

/// The barrier mode from `--checkpoint-mode` (or `execution.checkpointing.mode`), the
/// unaligned key and the aligned timeout, refusing the combinations Flink refuses or that
/// contradict each other.
fn barrier_mode(
    mode: Option<Mode>,
    mode_from_flag: bool,
    unaligned_key: Option<bool>,
    aligned_timeout: Option<Duration>,
) -> Result<Option<BarrierMode>, String> {
    let mode = match (mode, unaligned_key) {
        (Some(_), Some(_)) if mode_from_flag => {
            return Err(format!(
                "--checkpoint-mode and -D {UNALIGNED} set the same thing: give one"
            ));
        }
        (Some(Mode::AtLeastOnce), Some(true)) => {
            return Err(format!(
                "-D {UNALIGNED}=true needs exactly once: unaligned checkpoints cannot be at least once"
            ));
        }
        (_, Some(true)) => Some(Mode::Unaligned),
        (mode, _) => mode,
    };
    Ok(match (mode, aligned_timeout) {
        (Some(Mode::AtLeastOnce), Some(_)) => {
            return Err(
                "--aligned-timeout needs exactly once: at-least-once checkpoints never align,                  so there is nothing to time out"
                    .into(),
            );
        }
        (_, Some(_)) if unaligned_key == Some(false) => {
            return Err(format!(
                "--aligned-timeout and -D {UNALIGNED}=false contradict: the timeout switches                  late subtasks to unaligned"
            ));
        }
        (_, Some(timeout)) => Some(BarrierMode::AlignedWithTimeout { timeout }),
        (Some(Mode::Aligned), None) => Some(BarrierMode::Aligned),
        (Some(Mode::Unaligned), None) => Some(BarrierMode::Unaligned),
        (Some(Mode::AtLeastOnce), None) => Some(BarrierMode::AtLeastOnce),
        (None, None) => None,
    })
}

fn strategy(text: &str) -> Result<Strategy, String> {
    match text.to_ascii_lowercase().as_str() {
        "none" | "off" | "disable" => Ok(Strategy::None),
        "fixed-delay" | "fixeddelay" => Ok(Strategy::FixedDelay),
        "exponential-delay" | "exponentialdelay" => Ok(Strategy::ExponentialDelay),
        "failure-rate" | "failurerate" => Ok(Strategy::FailureRate),
        other => Err(format!(
            "'{other}' is not a restart strategy: none, fixed-delay, exponential-delay or failure-rate"
        )),
    }
}

/// The known key nearest to `key` (for the error about an unknown one).
fn nearest_key(key: &str) -> &'static str {
    KEYS.iter()
        .copied()
        .min_by_key(|known| strsim::levenshtein(key, known))
        .expect("KEYS is not empty")
}

impl CheckpointArgs {
    /// Resolves the flags and keys for a job writing into `output`; refuses unknown keys,
    /// settings given twice, values out of range and settings that need checkpoints without
    /// them, naming the option.
    pub fn resolve(&self, output: &Path) -> Result<Checkpointing, String> {
        for (key, _) in &self.config {
            if !KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "-D {key}: unknown key; the nearest known one is {}",
                    nearest_key(key)
                ));
            }
        }
        let src = Source { keys: &self.config };
        let interval = src.pick(
            ("checkpoint-interval", &self.checkpoint_interval),
            INTERVAL,
            positive,
        )?;
        let mode = src.pick(("checkpoint-mode", &self.checkpoint_mode), MODE, mode)?;
        let aligned_timeout = src.pick(
            ("aligned-timeout", &self.aligned_timeout),
            ALIGNED_TIMEOUT,
            flink_duration,
        )?;
        let unaligned_key = src.key(UNALIGNED, boolean)?;
        let barrier_mode = barrier_mode(
            mode,
            self.checkpoint_mode.is_some(),
            unaligned_key,
            aligned_timeout,
        )?;
        let timeout = src.pick(
            ("checkpoint-timeout", &self.checkpoint_timeout),
            TIMEOUT,
            positive,
        )?;
        let min_pause = src.pick(("min-pause", &self.min_pause), MIN_PAUSE, flink_duration)?;
        let tolerable = src.pick(
            (
                "tolerable-failed-checkpoints",
                &self.tolerable_failed_checkpoints,
            ),
            TOLERABLE,
            number::<u32>,
        )?;
        let dir = src.pick(("checkpoint-dir", &self.checkpoint_dir), DIR, |v| {
            Ok(PathBuf::from(v.strip_prefix("file://").unwrap_or(v)))
        })?;
        let retained = src.pick(
            ("retained-checkpoints", &self.retained_checkpoints),
            RETAINED,
            |v| {
                number::<u64>(v).and_then(|n| {
                    if (1..=MAX_COUNT).contains(&n) {
                        Ok(n)
                    } else {
                        Err(format!("keep 1 to {MAX_COUNT} checkpoints"))
                    }
                })
            },
        )?;
        if let Some(n) = src.key(MAX_CONCURRENT, number::<u32>)?
            && n != 1
        {
            return Err(format!(
                "-D {MAX_CONCURRENT}={n}: weir runs at most one checkpoint at a time (1 only)"
            ));
        }
        let restart = self.restart(&src)?;
        let backend = src
            .pick(
                ("state-backend", &self.state_backend),
                BACKEND,
                state_backend::parse,
            )?
            .unwrap_or_default();
        let incremental = match (
            src.key(INCREMENTAL, state_backend::parse_bool)?,
            src.key(INCREMENTAL_NEW, state_backend::parse_bool)?,
        ) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "-D {INCREMENTAL} and -D {INCREMENTAL_NEW} set the same thing: give one"
                ));
            }
            (a, b) => a.or(b),
        };
        state_backend::check_incremental(backend, incremental)?;
        let local_dir = self.state_local_dir.as_deref();
        let Some(interval) = interval else {
            let needs = [
                (self.restore.is_some(), "--restore"),
                (self.inject_failures.is_some(), "--inject-failures"),
                (restart.is_some(), "a restart strategy"),
                (aligned_timeout.is_some(), "--aligned-timeout"),
                (barrier_mode.is_some(), "--checkpoint-mode"),
                (timeout.is_some(), "--checkpoint-timeout"),
                (min_pause.is_some(), "--min-pause"),
                (tolerable.is_some(), "--tolerable-failed-checkpoints"),
                (dir.is_some(), "--checkpoint-dir"),
                (retained.is_some(), "--retained-checkpoints"),
                (self.snapshot.is_some(), "--snapshot"),
            ];
            if let Some((_, what)) = needs.iter().find(|(given, _)| *given) {
                return Err(format!(
                    "{what} needs checkpoints: add --checkpoint-interval (for example 1s)"
                ));
            }
            return Ok(Checkpointing {
                config: None,
                restart: RestartStrategy::None,
                restore: None,
                inject_failures: None,
                state_backend: state_backend::build(backend, local_dir, None)?,
            });
        };
        let dir = dir.unwrap_or_else(|| output.join(DEFAULT_CHECKPOINT_DIR));
        let retained = retained.map_or(DEFAULT_RETAINED, |n| n as usize);
        let storage = FsCheckpointStorage::new(dir.clone(), retained)
            .map_err(|e| format!("--checkpoint-dir {}: {e}", dir.display()))?;
        let state_backend = state_backend::build(
            backend,
            local_dir,
            Some((dir.clone(), storage.shared_registry())),
        )?;
        let mut config = CheckpointConfig::new(interval, dir, Arc::new(storage));
        if let Some(mode) = barrier_mode {
            config.mode = mode;
        }
        if let Some(timeout) = timeout {
            config.timeout = timeout;
        }
        if let Some(pause) = min_pause {
            config.min_pause = pause;
        }
        if let Some(tolerable) = tolerable {
            config.tolerable_failed = tolerable;
        }
        if let Some(snapshot) = self.snapshot {
            config.snapshot = match snapshot {
                Snapshot::Async => SnapshotMode::Async,
                Snapshot::Sync => SnapshotMode::Sync,
            };
        }
        let inject_failures = self
            .inject_failures
            .map(|k| (u32::try_from(k).unwrap_or(u32::MAX), self.failure_seed));
        Ok(Checkpointing {
            config: Some(config),
            restart: restart.unwrap_or_default(),
            restore: self.restore.clone(),
            inject_failures,
            state_backend,
        })
    }

    /// The restart strategy, if any setting names one; a parameter of another strategy than
    /// the chosen one is an error.
    fn restart(&self, src: &Source<'_>) -> Result<Option<RestartStrategy>, String> {
        let kind = src.pick(
            ("restart-strategy", &self.restart_strategy),
            STRATEGY,
            strategy,
        )?;
        let attempts_fixed = src.pick(
            ("restart-attempts", &self.restart_attempts),
            FIXED_ATTEMPTS,
            number::<u32>,
        )?;
        let attempts_exp = src.key(EXP_ATTEMPTS, number::<u32>)?;
        let delay_fixed = src.pick(
            ("restart-delay", &self.restart_delay),
            FIXED_DELAY,
            flink_duration,
        )?;
        let delay_rate = src.key(RATE_DELAY, flink_duration)?;
        let initial = src.key(EXP_INITIAL, flink_duration)?;
        let max = src.pick(
            ("restart-max-delay", &self.restart_max_delay),
            EXP_MAX,
            flink_duration,
        )?;
        let multiplier = src.pick(
            ("restart-multiplier", &self.restart_multiplier),
            EXP_MULTIPLIER,
            |v| {
                v.parse::<f64>()
                    .map_err(|_| format!("'{v}' is not a number"))
            },
        )?;
        let reset = src.pick(
            ("restart-reset-after", &self.restart_reset_after),
            EXP_RESET,
            positive,
        )?;
        let rate_max = src.pick(
            ("failure-rate-max-failures", &self.failure_rate_max_failures),
            RATE_MAX,
            number::<u32>,
        )?;
        let rate_interval = src.pick(
            ("failure-rate-interval", &self.failure_rate_interval),
            RATE_INTERVAL,
            positive,
        )?;
        if src
            .key(EXP_JITTER, |v| {
                v.parse::<f64>()
                    .map_err(|_| format!("'{v}' is not a number"))
            })?
            .is_some_and(|j| j != 0.0)
        {
            return Err(format!(
                "-D {EXP_JITTER}: weir's exponential delay has no jitter (0 only)"
            ));
        }
        let given =
            |pairs: &[(bool, &'static str)]| pairs.iter().find(|(g, _)| *g).map(|(_, n)| *n);
        let exponential_only = given(&[
            (attempts_exp.is_some(), EXP_ATTEMPTS),
            (initial.is_some(), EXP_INITIAL),
            (max.is_some(), "--restart-max-delay"),
            (multiplier.is_some(), "--restart-multiplier"),
            (reset.is_some(), "--restart-reset-after"),
        ]);
        let rate_only = given(&[
            (rate_max.is_some(), "--failure-rate-max-failures"),
            (rate_interval.is_some(), "--failure-rate-interval"),
            (delay_rate.is_some(), RATE_DELAY),
        ]);
        let any_parameter = given(&[
            (attempts_fixed.is_some(), "--restart-attempts"),
            (delay_fixed.is_some(), "--restart-delay"),
        ])
        .or(exponential_only)
        .or(rate_only);
        let kind = match kind {
            Some(kind) => kind,
            None if any_parameter.is_some() => Strategy::ExponentialDelay,
            None => return Ok(None),
        };
        let not_for = |what: Option<&'static str>, strategy: &str| match what {
            Some(what) => Err(format!(
                "{what} is not a parameter of the {strategy} restart strategy"
            )),
            None => Ok(()),
        };
        use exponential_defaults as d;
        Ok(Some(match kind {
            Strategy::None => {
                not_for(any_parameter, "none")?;
                RestartStrategy::None
            }
            Strategy::FixedDelay => {
                not_for(exponential_only.or(rate_only), "fixed-delay")?;
                RestartStrategy::FixedDelay {
                    attempts: attempts_fixed.unwrap_or(1),
                    delay: delay_fixed.unwrap_or(Duration::from_secs(1)),
                }
            }
            Strategy::FailureRate => {
                not_for(exponential_only, "failure-rate")?;
                if attempts_fixed.is_some() {
                    return Err("--restart-attempts is not a parameter of the failure-rate restart strategy: use --failure-rate-max-failures".into());
                }
                if delay_fixed.is_some() && delay_rate.is_some() {
                    return Err(format!(
                        "--restart-delay and -D {RATE_DELAY} set the same thing: give one"
                    ));
                }
                RestartStrategy::FailureRate {
                    max_failures: rate_max.unwrap_or(1),
                    interval: rate_interval.unwrap_or(Duration::from_secs(60)),
                    delay: delay_fixed.or(delay_rate).unwrap_or(Duration::from_secs(1)),
                }
            }
            Strategy::ExponentialDelay => {
                not_for(rate_only, "exponential-delay")?;
                let multiplier = multiplier.unwrap_or(d::MULTIPLIER);
                if !(multiplier.is_finite() && multiplier >= 1.0) {
                    return Err(format!(
                        "--restart-multiplier {multiplier}: the multiplier must be at least 1"
                    ));
                }
                if delay_fixed.is_some() && initial.is_some() {
                    return Err(format!(
                        "--restart-delay and -D {EXP_INITIAL} set the same thing: give one"
                    ));
                }
                if attempts_fixed.is_some() && attempts_exp.is_some() {
                    return Err(format!(
                        "--restart-attempts and -D {EXP_ATTEMPTS} set the same thing: give one"
                    ));
                }
                let initial = delay_fixed.or(initial).unwrap_or(d::INITIAL);
                let max = max.unwrap_or(d::MAX);
                if max < initial {
                    return Err(format!(
                        "--restart-max-delay {max:?} is below the first delay {initial:?}"
                    ));
                }
                RestartStrategy::ExponentialDelay {
                    initial,
                    max,
                    multiplier,
                    reset_after: reset.unwrap_or(d::RESET_AFTER),
                    attempts: attempts_fixed.or(attempts_exp).unwrap_or(d::ATTEMPTS),
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CheckpointArgs,
    }

    fn resolve(args: &[&str]) -> Result<Checkpointing, String> {
        let cli = Cli::try_parse_from(std::iter::once("weir").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        let dir = tempfile::tempdir().unwrap();
        cli.args.resolve(dir.path())
    }

    #[test]
    fn off_by_default_and_settings_that_need_checkpoints_say_so() {
        let off = resolve(&[]).unwrap();
        assert!(off.config.is_none() && off.restore.is_none());
        for args in [
            &["--restore", "latest"][..],
            &["--inject-failures", "2"],
            &["--restart-strategy", "fixed-delay"],
            &["-D", "state.checkpoints.num-retained=3"],
        ] {
            let e = resolve(args).unwrap_err();
            assert!(e.contains("needs checkpoints"), "{args:?}: {e}");
        }
    }

    #[test]
    fn flags_and_flink_keys_give_the_same_config() {
        let flags = resolve(&[
            "--checkpoint-interval",
            "2s",
            "--checkpoint-mode",
            "at-least-once",
            "--checkpoint-timeout",
            "30s",
            "--min-pause",
            "100ms",
            "--tolerable-failed-checkpoints",
            "3",
            "--restart-strategy",
            "fixed-delay",
            "--restart-attempts",
            "4",
            "--restart-delay",
            "10ms",
        ])
        .unwrap();
        let keys = resolve(&[
            "-D",
            "execution.checkpointing.interval=2 s",
            "-D",
            "execution.checkpointing.mode=AT_LEAST_ONCE",
            "-D",
            "execution.checkpointing.timeout=30 s",
            "-D",
            "execution.checkpointing.min-pause=100 ms",
            "-D",
            "execution.checkpointing.tolerable-failed-checkpoints=3",
            "-D",
            "execution.checkpointing.max-concurrent-checkpoints=1",
            "-D",
            "restart-strategy.type=fixed-delay",
            "-D",
            "restart-strategy.fixed-delay.attempts=4",
            "-D",
            "restart-strategy.fixed-delay.delay=10 ms",
        ])
        .unwrap();
        for c in [&flags, &keys] {
            let config = c.config.as_ref().unwrap();
            assert_eq!(config.interval, Duration::from_secs(2));
            assert_eq!(config.mode, BarrierMode::AtLeastOnce);
            assert_eq!(config.timeout, Duration::from_secs(30));
            assert_eq!(config.min_pause, Duration::from_millis(100));
            assert_eq!(config.tolerable_failed, 3);
            assert_eq!(
                c.restart,
                RestartStrategy::FixedDelay {
                    attempts: 4,
                    delay: Duration::from_millis(10)
                }
            );
        }
    }

    #[test]
    fn defaults_are_flinks() {
        let c = resolve(&["--checkpoint-interval", "1s"]).unwrap();
        let config = c.config.unwrap();
        assert_eq!(config.mode, BarrierMode::Aligned);
        assert_eq!(config.timeout, Duration::from_secs(600));
        assert_eq!(config.tolerable_failed, 0);
        assert_eq!(config.snapshot, SnapshotMode::Async);
        assert!(config.dir.ends_with(DEFAULT_CHECKPOINT_DIR));
        assert_eq!(c.restart, RestartStrategy::default());
    }

    #[test]
    fn unknown_keys_name_the_nearest_and_conflicts_are_refused() {
        let e = resolve(&["-D", "execution.checkpointing.intervall=1s"]).unwrap_err();
        assert!(
            e.contains("nearest known one is execution.checkpointing.interval"),
            "{e}"
        );
        let e = resolve(&[
            "--checkpoint-interval",
            "1s",
            "-D",
            "execution.checkpointing.interval=2s",
        ])
        .unwrap_err();
        assert!(e.contains("set the same thing"), "{e}");
        let e = resolve(&[
            "--checkpoint-interval",
            "1s",
            "-D",
            "execution.checkpointing.max-concurrent-checkpoints=2",
        ])
        .unwrap_err();
        assert!(e.contains("1 only"), "{e}");
        let e = resolve(&[
            "--checkpoint-interval",
            "1s",
            "--restart-strategy",
            "fixed-delay",
            "--restart-multiplier",
            "2",
        ])
        .unwrap_err();
        assert!(e.contains("not a parameter of the fixed-delay"), "{e}");
        let e = resolve(&[
            "--checkpoint-interval",
            "1s",
            "-D",
            "execution.checkpointing.mode=EXACTLY",
        ])
        .unwrap_err();
        assert!(e.contains("EXACTLY_ONCE"), "{e}");
        let e =
            resolve(&["--checkpoint-interval", "1s", "--restart-multiplier", "0.5"]).unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn restore_and_injection_resolve() {
        let c = resolve(&[
            "--checkpoint-interval",
            "1s",
            "--restore",
            "latest",
            "--inject-failures",
            "3",
            "--failure-seed",
            "9",
            "--restart-strategy",
            "exponential-delay",
            "--restart-delay",
            "5ms",
            "--restart-max-delay",
            "20ms",
        ])
        .unwrap();
        assert_eq!(c.restore, Some(RestoreFrom::Latest));
        assert_eq!(c.inject_failures, Some((3, 9)));
        match c.restart {
            RestartStrategy::ExponentialDelay { initial, max, .. } => {
                assert_eq!(
                    (initial, max),
                    (Duration::from_millis(5), Duration::from_millis(20))
                );
            }
            other => panic!("{other:?}"),
        }
        let path = resolve(&[
            "--checkpoint-interval",
            "1s",
            "--restore",
            "out/checkpoints/chk-4",
        ])
        .unwrap();
        assert_eq!(
            path.restore,
            Some(RestoreFrom::Path(PathBuf::from("out/checkpoints/chk-4")))
        );
    }

    #[test]
    fn unaligned_and_the_aligned_timeout_resolve_as_flink_reads_its_keys() {
        let mode = |args: &[&str]| {
            let mut all = vec!["--checkpoint-interval", "1s"];
            all.extend_from_slice(args);
            resolve(&all).map(|c| c.config.expect("checkpointing on").mode)
        };
        let timeout = |ms| BarrierMode::AlignedWithTimeout {
            timeout: Duration::from_millis(ms),
        };
        assert_eq!(
            mode(&["--checkpoint-mode", "unaligned"]),
            Ok(BarrierMode::Unaligned)
        );
        assert_eq!(
            mode(&["-D", "execution.checkpointing.unaligned.enabled=true"]),
            Ok(BarrierMode::Unaligned)
        );
        assert_eq!(mode(&["--aligned-timeout", "5ms"]), Ok(timeout(5)));
        assert_eq!(
            mode(&["--checkpoint-mode", "unaligned", "--aligned-timeout", "0"]),
            Ok(timeout(0)),
            "Flink's semantic: aligned first, here for 0 ms"
        );
        assert_eq!(
            mode(&[
                "-D",
                "execution.checkpointing.unaligned.enabled=true",
                "-D",
                "execution.checkpointing.aligned-checkpoint-timeout=30 s"
            ]),
            Ok(timeout(30_000))
        );
        assert_eq!(
            mode(&["-D", "execution.checkpointing.unaligned.enabled=false"]),
            Ok(BarrierMode::Aligned)
        );
        let refused = mode(&[
            "--checkpoint-mode",
            "at-least-once",
            "--aligned-timeout",
            "1s",
        ]);
        assert!(refused.unwrap_err().contains("needs exactly once"));
    }
}
