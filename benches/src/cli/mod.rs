//! The `weir` command line.

pub mod checkpointing;
pub mod duration;
mod nexmark;
mod progress;
pub mod signals;
pub mod state_backend;
mod suite;
mod traffic;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use weir_core::RuntimeConfig;
use weir_core::keyed::DEFAULT_MAX_PARALLELISM;
use weir_core::net::PoolConfig;
use weir_core::runtime::{DEFAULT_FIRING_BUDGET, JobControl, TaskThreads};

use duration::{OptionalDuration, parse_auto_duration, parse_duration, parse_optional_duration};

/// Run a job on weir, Apache Flink's runtime mechanisms on a lock-free Rust core, and measure
/// it.
#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Run stream-processing jobs on weir (Flink's runtime mechanisms on a lock-free Rust core) and measure them, also against timely dataflow",
    long_about = "Run stream-processing jobs on weir, Apache Flink's runtime mechanisms (network \
        buffers with credit-based backpressure, event time with watermarks and windows, keyed \
        state) on a lock-free Rust core, and measure them: count your camera records (CSV) or \
        generated ones by origin and time window with the traffic job, run a Nexmark query, \
        compare either with timely dataflow in the same process, or run a suite of side-by-side \
        comparisons with its report and plots. Every run writes its results and report.json \
        into --output.",
    after_help = "Examples:
  weir run traffic --input cameras/ --home 浙A -p 4   count your CSV records by origin and window
  weir run traffic --engine weir,timely --repeat 5   weir against timely dataflow: medians, ratio
  weir run nexmark --query q5 --events 10000000      a Nexmark query, against Flink's figures
  weir suite event-time                              watermarks, aggregation, delay, batch compared
  weir suite checkpoints                             barrier modes and snapshot strategies compared"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The most partitions of a generated input: far above any sensible setting, low enough that
/// a typo cannot allocate the machine away.
const MAX_PARTITIONS: u64 = 4096;
/// The most subtasks of a step (one thread each).
const MAX_PARALLELISM: u64 = 1024;
/// The most runs of one configuration.
const MAX_REPEAT: u64 = 10_000;
/// The most buffers per channel or per gate.
const MAX_BUFFERS_PER: u64 = 65_536;
/// The largest network buffer segment, bytes (1 GiB).
const MAX_SEGMENT_BYTES: u64 = 1 << 30;
/// The most key groups: a key group's owner is stored in 16 bits.
const MAX_KEY_GROUPS: u64 = u16::MAX as u64;

/// A count option that must lie in `min..=max`; clap's error names the option and the range.
fn count(min: u64, max: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(min..=max)
}

/// `--firing-budget`: a number of results per turn, or `None` for `all`.
#[derive(Debug, Clone, Copy)]
struct FiringBudget(Option<usize>);

impl std::fmt::Display for FiringBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("all"),
        }
    }
}

fn parse_firing_budget(text: &str) -> Result<FiringBudget, String> {
    let text = text.trim();
    if text == "all" {
        return Ok(FiringBudget(None));
    }
    match text.parse::<usize>() {
        Ok(n @ 1..=0x1_0000_0000) => Ok(FiringBudget(Some(n))),
        _ => Err(format!(
            "`{text}` is not a firing budget: a number of results from 1 to 4294967296, or `all`"
        )),
    }
}

/// A number of records or events: at least one.
fn records() -> RangedU64ValueParser<u64> {
    RangedU64ValueParser::new().range(1..)
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a reference job and write its outputs and report.json.
    Run {
        #[command(subcommand)]
        job: RunJob,
    },
    /// Run a side-by-side comparison suite in one process (configurations interleaved round
    /// robin, medians of the repetitions, ratios of the medians) and write report.json,
    /// report.md and SVG plots.
    Suite(suite::SuiteArgs),
}

#[derive(Debug, Subcommand)]
enum RunJob {
    /// The seed's road-traffic job: parse camera records, tag each plate's origin and
    /// long-term flag, count by origin (origins.jsonl), per minute (flow_1m.jsonl) and by
    /// origin per five minutes (origin_5m.jsonl) in event time.
    ///
    /// Input is a CSV file or folder (--input) or the built-in generator (--generate, the
    /// default). Every line ends as exactly one of: counted in flow_1m.jsonl, dropped as late
    /// (late.jsonl), rejected as malformed with file, line and reason, or quarantined for an
    /// implausible timestamp (both in rejected.jsonl); the run checks that the four add up to
    /// records_in and fails loudly if not.
    Traffic(Box<traffic::TrafficArgs>),
    /// A Nexmark query (q0, q1, q2, q5, q7, q8) over the `nexmark` crate's generator: writes
    /// `<query>.jsonl` (or counts and discards) and report.json with throughput per core and
    /// its ratio to Flink's published figure.
    Nexmark(Box<nexmark::NexmarkArgs>),
}

/// Which engine runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// weir itself.
    Weir,
    /// The same job on timely dataflow 0.32, in the same process: the project's tuned peer
    /// (weir's byte-level CSV reader, inline plates, Fx hashing).
    Timely,
    /// The untuned reference program of issue 9: the job as a timely user writes it from
    /// timely's examples (`lines()`, `split(',')`, `String` plates, std `HashMap`s, an epoch
    /// per 1000 lines), the baseline of the speed targets. CSV files only (--input),
    /// timestamp guard off (--max-future-skew off --max-past-skew off); rejected lines are
    /// counted in report.json, not written (no rejected.jsonl).
    TimelyPlain,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Weir => "weir",
            Engine::Timely => "timely",
            Engine::TimelyPlain => "timely-plain",
        }
    }
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// How a job's subtasks are mapped onto threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Threads {
    /// A thread per task slot when the job has at least as many slots (its parallelism) as the
    /// process has cores, so that every core runs one slot; a thread per subtask otherwise, so
    /// that a job of fewer slots still pipelines its steps over the spare cores.
    Auto,
    /// One thread per subtask, as Flink runs them (a p=2 traffic job: eleven threads).
    PerSubtask,
    /// One thread per task slot: subtask i of every step of the highest parallelism shares
    /// slot i, steps of lower parallelism (sinks of one subtask) are spread over the slots, and
    /// each slot's thread runs its subtasks cooperatively, switching at every wait and after
    /// every batch (a p=2 job: two threads). Records that stay in their slot never leave the
    /// core's cache.
    PerSlot,
}

impl Threads {
    /// The mapping for a job of `parallelism` slots on `cores` cores (0: not known, as where
    /// the process cannot read its affinity: a thread per subtask).
    fn resolve(self, parallelism: usize, cores: usize) -> TaskThreads {
        match self {
            Self::Auto if cores > 0 && parallelism >= cores => TaskThreads::PerSlot,
            Self::Auto | Self::PerSubtask => TaskThreads::PerSubtask,
            Self::PerSlot => TaskThreads::PerSlot,
        }
    }
}

/// Runtime settings shared by every job.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Pin each thread (a subtask's, or a slot's with --threads per-slot) to a core, round
    /// robin over the cores the process may use.
    #[arg(long, value_enum, default_value = "on")]
    pin: Switch,
    /// Threads: one per subtask (Flink's plan), or one per task slot running the slot's
    /// subtasks cooperatively; `auto` takes per-slot when --parallelism is at least the number
    /// of cores the process may use (on 2 cores, -p 2: faster, and a lower latency tail), and
    /// per-subtask below it. The report's `config.runtime.threads` says which ran.
    #[arg(long, value_enum, default_value = "auto")]
    threads: Threads,
    /// Send a partly filled network buffer after this long (ms, s, m, h); 0 sends after every
    /// record.
    #[arg(long, value_parser = parse_duration, default_value = "100ms", allow_hyphen_values = true)]
    buffer_timeout: Duration,
    /// Also send partly filled buffers whenever a task runs out of work (an input task before
    /// it waits for input, a source before it sleeps for --rate): low latency at low load, full
    /// buffers under load, where tasks never run dry. `off` is Flink's behaviour (only the
    /// buffer timeout flushes).
    #[arg(long, value_enum, default_value = "on")]
    flush_on_idle: Switch,
    /// With --flush-on-idle: how long a buffer carrying records may wait through a task's idle
    /// moments before the idle flush sends it (ms, s), or `auto` (a hundredth of
    /// --buffer-timeout: 1 ms by default). A task that runs dry after every small input then
    /// sends one buffer per this age instead of one per input (fewer wake-ups downstream, a
    /// little more latency at low load); `0` sends at once.
    #[arg(long, value_parser = parse_auto_duration, default_value = "auto")]
    idle_flush_age: OptionalDuration,
    /// Bytes per network buffer segment (1 to 1 GiB); a record must fit one.
    #[arg(long, value_parser = count(1, MAX_SEGMENT_BYTES), default_value_t = weir_core::net::pool::DEFAULT_SEGMENT_BYTES)]
    segment_size: usize,
    /// Segments in the network buffer pool, at least what the job's channels need (a smaller
    /// pool is refused with that number) [default: exactly what they need].
    #[arg(long)]
    buffers: Option<usize>,
    /// Buffers reserved for each output channel (0 to 65536).
    #[arg(long, value_parser = count(0, MAX_BUFFERS_PER), default_value_t = weir_core::net::pool::DEFAULT_EXCLUSIVE_PER_CHANNEL)]
    exclusive_buffers: usize,
    /// Buffers shared by the channels of each task's output (0 to 65536; not both 0 with
    /// --exclusive-buffers).
    #[arg(long, value_parser = count(0, MAX_BUFFERS_PER), default_value_t = weir_core::net::pool::DEFAULT_FLOATING_PER_GATE)]
    floating_buffers: usize,
    /// Emit a latency marker from each source this often, or `off`.
    #[arg(long, value_parser = parse_optional_duration, default_value = "100ms", allow_hyphen_values = true)]
    latency_interval: OptionalDuration,
    /// Window results a window operator fires per turn when a watermark makes more due (1 to
    /// 2^32), or `all`. Between turns the task takes its next input: records and latency
    /// markers pass (a record that fires a window again, within allowed lateness, first gets
    /// the rest fired, so the results are those of firing at once), the watermark goes on
    /// after the last turn, so that a watermark firing thousands of windows does not hold up
    /// the input (and the latency tail) the whole time. `all` is Flink's behaviour.
    #[arg(long, value_parser = parse_firing_budget, default_value_t = FiringBudget(Some(DEFAULT_FIRING_BUDGET)))]
    firing_budget: FiringBudget,
    /// Number of key groups, 1 to 65535: the upper bound of any keyed operator's parallelism.
    #[arg(long, value_parser = count(1, MAX_KEY_GROUPS), default_value_t = DEFAULT_MAX_PARALLELISM)]
    max_parallelism: usize,
}

impl RuntimeArgs {
    /// The runtime configuration for a job of `parallelism` subtasks per step; refuses
    /// settings no job can run with, naming the options.
    fn config(&self, parallelism: usize) -> Result<RuntimeConfig, String> {
        if parallelism > self.max_parallelism {
            return Err(format!(
                "--parallelism {parallelism} is above --max-parallelism {}: a keyed step cannot have more subtasks than key groups",
                self.max_parallelism
            ));
        }
        if self.exclusive_buffers == 0 && self.floating_buffers == 0 {
            return Err(
                "--exclusive-buffers and --floating-buffers are both 0: a channel needs at least one buffer"
                    .into(),
            );
        }
        Ok(RuntimeConfig {
            pool: PoolConfig {
                segment_bytes: self.segment_size,
                segments: self.buffers,
                exclusive_per_channel: self.exclusive_buffers,
                floating_per_gate: self.floating_buffers,
            },
            buffer_timeout: self.buffer_timeout,
            flush_on_idle: self.flush_on_idle == Switch::On,
            idle_flush_age: self.idle_flush_age.0,
            pin: self.pin == Switch::On,
            threads: self
                .threads
                .resolve(parallelism, weir_core::runtime::available_cores().len()),
            latency_interval: self.latency_interval.0,
            max_parallelism: self.max_parallelism,
            firing_budget: self.firing_budget.0,
            ..RuntimeConfig::default()
        })
    }
}

/// The job that Ctrl-C or SIGTERM stops.
fn current_job() -> &'static Mutex<Option<Arc<JobControl>>> {
    static CURRENT: OnceLock<Mutex<Option<Arc<JobControl>>>> = OnceLock::new();
    CURRENT.get_or_init(|| Mutex::new(None))
}

/// Runs the command line; the error is the message to print.
pub fn run(cli: Cli) -> Result<(), String> {
    // Read the cores before any thread is pinned.
    let _ = weir_core::runtime::available_cores();
    signals::install();
    match cli.command {
        Command::Run {
            job: RunJob::Traffic(args),
        } => traffic::run(&args),
        Command::Run {
            job: RunJob::Nexmark(args),
        } => nexmark::run(&args),
        Command::Suite(args) => suite::run(&args),
    }
}

/// Where one engine's outputs go: the output folder itself for a single engine, a folder per
/// engine when several run.
fn engine_dir(output: &std::path::Path, engine: Engine, engines: usize) -> PathBuf {
    if engines == 1 {
        output.to_path_buf()
    } else {
        output.join(engine.name())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::traffic::job::Watermarks;

    /// The command line's watermark defaults are the engine's, not a second literal that can
    /// drift from it.
    #[test]
    fn the_default_watermark_interval_is_the_engines() {
        let interval = weir_core::time::DEFAULT_WATERMARK_INTERVAL;
        let parsed = |args: &[&str]| match Cli::try_parse_from(args).expect("parses").command {
            Command::Run { job } => job,
            Command::Suite(_) => unreachable!("a run command"),
        };
        match parsed(&["weir", "run", "traffic"]) {
            RunJob::Traffic(args) => assert_eq!(args.watermark, Watermarks::Periodic(interval)),
            RunJob::Nexmark(_) => unreachable!("the traffic job"),
        }
        match parsed(&["weir", "run", "nexmark", "--query", "q5"]) {
            RunJob::Nexmark(args) => assert_eq!(args.watermark_interval, interval),
            RunJob::Traffic(_) => unreachable!("a Nexmark query"),
        }
    }

    #[test]
    fn auto_threads_take_a_slot_per_core_when_the_job_has_a_slot_for_each() {
        let auto = |parallelism, cores| Threads::Auto.resolve(parallelism, cores);
        assert_eq!(auto(2, 2), TaskThreads::PerSlot);
        assert_eq!(auto(4, 2), TaskThreads::PerSlot);
        assert_eq!(
            auto(1, 2),
            TaskThreads::PerSubtask,
            "one slot would not pipeline"
        );
        assert_eq!(auto(2, 16), TaskThreads::PerSubtask);
        assert_eq!(auto(2, 0), TaskThreads::PerSubtask, "cores unknown");
        for cores in [0, 2, 16] {
            assert_eq!(Threads::PerSlot.resolve(1, cores), TaskThreads::PerSlot);
            assert_eq!(
                Threads::PerSubtask.resolve(16, cores),
                TaskThreads::PerSubtask
            );
        }
    }
}
