//! The `weir` command line.

pub mod duration;
mod nexmark;
mod progress;
mod suite;
mod traffic;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use weir_core::RuntimeConfig;
use weir_core::keyed::DEFAULT_MAX_PARALLELISM;
use weir_core::net::PoolConfig;
use weir_core::runtime::JobControl;

use duration::{OptionalDuration, parse_duration, parse_optional_duration};

/// weir: Apache Flink's runtime mechanisms on a lock-free Rust core, measured side by side.
#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "weir: Apache Flink's runtime mechanisms on a lock-free Rust core, measured side by side",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
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
    Traffic(traffic::TrafficArgs),
    /// A Nexmark query (q0, q1, q2, q5, q7, q8) over the `nexmark` crate's generator: writes
    /// `<query>.jsonl` (or counts and discards) and report.json with throughput per core and
    /// its ratio to Flink's published figure.
    Nexmark(nexmark::NexmarkArgs),
}

/// Which engine runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// weir itself.
    Weir,
    /// The same job on timely dataflow 0.32, in the same process.
    Timely,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Weir => "weir",
            Engine::Timely => "timely",
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

/// Runtime settings shared by every job.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// Pin each subtask's thread to a core (round robin over the cores the process may use).
    #[arg(long, value_enum, default_value = "on")]
    pin: Switch,
    /// Send a partly filled network buffer after this long (ms, s, m, h); 0 sends after every
    /// record.
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    buffer_timeout: Duration,
    /// Bytes per network buffer segment.
    #[arg(long, default_value_t = weir_core::net::pool::DEFAULT_SEGMENT_BYTES)]
    segment_size: usize,
    /// Segments in the network buffer pool [default: exactly what the job's channels need].
    #[arg(long)]
    buffers: Option<usize>,
    /// Buffers reserved for each output channel.
    #[arg(long, default_value_t = weir_core::net::pool::DEFAULT_EXCLUSIVE_PER_CHANNEL)]
    exclusive_buffers: usize,
    /// Buffers shared by the channels of each task's output.
    #[arg(long, default_value_t = weir_core::net::pool::DEFAULT_FLOATING_PER_GATE)]
    floating_buffers: usize,
    /// Emit a latency marker from each source this often, or `off`.
    #[arg(long, value_parser = parse_optional_duration, default_value = "100ms")]
    latency_interval: OptionalDuration,
    /// Number of key groups (the upper bound of any keyed operator's parallelism).
    #[arg(long, default_value_t = DEFAULT_MAX_PARALLELISM)]
    max_parallelism: usize,
}

impl RuntimeArgs {
    fn config(&self) -> RuntimeConfig {
        RuntimeConfig {
            pool: PoolConfig {
                segment_bytes: self.segment_size,
                segments: self.buffers,
                exclusive_per_channel: self.exclusive_buffers,
                floating_per_gate: self.floating_buffers,
            },
            buffer_timeout: self.buffer_timeout,
            pin: self.pin == Switch::On,
            latency_interval: self.latency_interval.0,
            max_parallelism: self.max_parallelism,
            ..RuntimeConfig::default()
        }
    }
}

/// The job that Ctrl-C stops.
fn current_job() -> &'static Mutex<Option<Arc<JobControl>>> {
    static CURRENT: OnceLock<Mutex<Option<Arc<JobControl>>>> = OnceLock::new();
    CURRENT.get_or_init(|| Mutex::new(None))
}

/// Ctrl-C asks the running job to stop: sources end their input, everything read is processed
/// and the report is written. A second Ctrl-C exits at once.
fn install_ctrl_c() {
    let result = ctrlc::set_handler(|| {
        let current = current_job().lock().unwrap_or_else(|p| p.into_inner());
        match current.as_ref() {
            Some(control) if !control.stop_requested() => {
                eprintln!("\nweir: stopping (Ctrl-C again to exit now)");
                control.request_stop();
            }
            _ => std::process::exit(130),
        }
    });
    if let Err(e) = result {
        eprintln!("weir: Ctrl-C will not stop jobs cleanly: {e}");
    }
}

/// Runs the command line; the error is the message to print.
pub fn run(cli: Cli) -> Result<(), String> {
    // Read the cores before any thread is pinned.
    let _ = weir_core::runtime::available_cores();
    install_ctrl_c();
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
