//! Checkpoints through the real `weir` binary: a run killed with SIGKILL (or failed by an
//! injected failure) and restarted with `--restore latest` until it ends commits exactly the
//! output of an uninterrupted run without checkpoints, and only whole lines in between; so do
//! restores from every retained checkpoint, restores at another parallelism, and a restore that
//! has to pass over a damaged checkpoint. Edge cases: state larger than the network buffer pool,
//! a source subtask without partitions, a partition that ends before a checkpoint, checkpoints
//! that time out. The report's checkpoint section and the command's refusals.
//!
//! Nothing here asserts on time: `--rate` only slows a run so that kills land mid-way.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// How long any child may take before a test calls it hung.
const WATCHDOG: Duration = Duration::from_secs(120);

/// The committed outputs, and whether their line order is fixed for a one-partition,
/// punctuated job. `late.jsonl` and `rejected.jsonl` have two writers each (the two windows'
/// late streams; the parser and the timestamp guard), so their lines of one epoch interleave
/// by epoch boundaries: compared as sorted lines.
const OUTPUTS: [(&str, bool); 5] = [
    ("flow_1m.jsonl", true),
    ("origin_5m.jsonl", true),
    ("origins.jsonl", true),
    ("late.jsonl", false),
    ("rejected.jsonl", false),
];

/// One partition, punctuated watermarks: every output is a function of the input alone.
const ONE_PARTITION: &[&str] = &[
    "--generate",
    "50000",
    "--partitions",
    "1",
    "-p",
    "1",
    "--watermark",
    "punctuated",
];

/// Checkpoints every 20 ms.
const CHECKPOINTED: &[&str] = &["--checkpoint-interval", "20ms"];

/// Unaligned checkpoints.
const UNALIGNED: &[&str] = &["--checkpoint-mode", "unaligned"];

/// Aligned checkpoints with a timeout so small that they go unaligned (at the sources already
/// when they see the trigger late, or at a task whose barrier came late).
const ALIGNED_TIMEOUT: &[&str] = &["--aligned-timeout", "1ms"];

/// An exactly-once test run once per exactly-once barrier mode on the heap backend, with
/// aligned barriers on the memory-mapped backend, in task slots, and with windows firing one
/// result per turn: `fn name(checkpointed)` becomes the module `name` with the tests
/// `aligned`, `unaligned`, `aligned_timeout`, `mmap`, `task_slots` and `firing_in_turns`; the
/// body gets `checkpointed`, [`CHECKPOINTED`] with the mode's (or backend's, threads' or
/// firing's) flags, for every run.
macro_rules! in_every_exactly_once_mode {
    ($(#[$doc:meta])* fn $name:ident($checkpointed:ident) $body:block) => {
        $(#[$doc])*
        mod $name {
            use super::*;

            fn run(mode: &[&str]) {
                let with_mode: Vec<&str> = [CHECKPOINTED, mode].concat();
                let $checkpointed: &[&str] = &with_mode;
                $body
            }

            #[test]
            fn aligned() {
                run(&[]);
            }

            #[test]
            fn unaligned() {
                run(UNALIGNED);
            }

            #[test]
            fn aligned_timeout() {
                run(ALIGNED_TIMEOUT);
            }

            #[test]
            fn mmap() {
                run(MMAP);
            }

            #[test]
            fn task_slots() {
                run(TASK_SLOTS);
            }

            #[test]
            fn firing_in_turns() {
                run(FIRING_IN_TURNS);
            }
        }
    };
}

/// Windows fire one result per turn: barriers (and every other element but records and
/// latency markers) meet operators part way through firing.
const FIRING_IN_TURNS: &[&str] = &["--firing-budget", "1"];

/// Firing one result per turn, with allowed lateness so that records refire windows while
/// the watermark that fired them is held, writes what firing at once writes, line for line,
/// under both aggregation plans (keyed windows behind an exchange; a local step chained into
/// the tagging task and a merge step behind it).
#[test]
fn firing_in_turns_with_late_firings_writes_what_firing_at_once_writes() {
    let dir = tempfile::tempdir().unwrap();
    for aggregation in ["window-all", "parallel"] {
        let job: &[&str] = &["--allowed-lateness", "10s", "--aggregation", aggregation];
        let at_once = dir.path().join(format!("{aggregation}-all"));
        run_ok(traffic(
            &at_once,
            &[ONE_PARTITION, job, &["--firing-budget", "all"]],
        ));
        let in_turns = dir.path().join(format!("{aggregation}-1"));
        run_ok(traffic(&in_turns, &[ONE_PARTITION, job, FIRING_IN_TURNS]));
        assert_same_outputs(&at_once, &in_turns, true);
        // Late firings happened: a window's line more than once.
        let flow = read(&at_once.join("flow_1m.jsonl"));
        let windows: std::collections::HashSet<_> = flow
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["window_start"].clone())
            .map(|start| start.to_string())
            .collect();
        assert!(
            windows.len() < flow.lines().count(),
            "{aggregation}: no late firing"
        );
    }
}

/// One thread per task slot, its subtasks run cooperatively.
const TASK_SLOTS: &[&str] = &["--threads", "per-slot"];

/// Aligned checkpoints of memory-mapped keyed state, snapshotted incrementally.
const MMAP: &[&str] = &["--state-backend", "mmap"];

/// The keyed-state backends every exactly-once test runs with: full copy-on-write snapshots
/// of heap maps, and incremental snapshots of memory-mapped state into shared files.
const BACKENDS: [&[&str]; 2] = [&["--state-backend", "heap"], &["--state-backend", "mmap"]];

/// `weir run traffic`, unpinned, writing into `output`.
fn traffic(output: &Path, args: &[&[&str]]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args(["run", "traffic", "--pin", "off", "--output"])
        .arg(output)
        .args(args.iter().flat_map(|a| a.iter()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// A started child whose stderr is drained on a thread (it never blocks on a full pipe).
struct Running {
    child: Child,
    stderr: JoinHandle<String>,
    what: String,
}

fn start(mut cmd: Command) -> Running {
    let what = format!("{cmd:?}");
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    });
    Running {
        child,
        stderr,
        what,
    }
}

impl Running {
    /// Waits for the exit; kills the child and fails the test past the watchdog.
    fn finish(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + WATCHDOG;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                self.child.wait().unwrap();
                panic!("{} hangs", self.what);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        (status, self.stderr.join().unwrap())
    }

    /// SIGKILL after `delay` (if it still runs then); `true` if it was killed, `false` if it had
    /// ended by itself, successfully.
    fn kill_after(mut self, delay: Duration) -> bool {
        std::thread::sleep(delay);
        let killed = self.child.try_wait().unwrap().is_none();
        if killed {
            self.child.kill().unwrap();
        }
        let what = self.what.clone();
        let (status, stderr) = self.finish();
        assert!(killed || status.success(), "{what}: {status}\n{stderr}");
        killed
    }
}

/// Runs `cmd` to a successful end; its stderr.
fn run_ok(cmd: Command) -> String {
    let running = start(cmd);
    let what = running.what.clone();
    let (status, stderr) = running.finish();
    assert!(status.success(), "{what}: {status}\n{stderr}");
    stderr
}

/// Runs `cmd`, which must fail; its stderr.
fn run_err(cmd: Command) -> String {
    let running = start(cmd);
    let what = running.what.clone();
    let (status, stderr) = running.finish();
    assert!(!status.success(), "{what} succeeded\n{stderr}");
    stderr
}

/// The uninterrupted run without checkpoints that the others must match, in `dir/base`.
fn baseline(dir: &Path, job: &[&str]) -> PathBuf {
    let base = dir.join("base");
    run_ok(traffic(&base, &[job]));
    base
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

/// `actual`'s committed outputs are `expected`'s: byte for byte where the order is fixed and
/// `ordered`, as sorted lines otherwise.
fn assert_same_outputs(expected: &Path, actual: &Path, ordered: bool) {
    for (name, fixed_order) in OUTPUTS {
        let (want, got) = (read(&expected.join(name)), read(&actual.join(name)));
        if ordered && fixed_order {
            assert!(want == got, "{name} of {} differs", actual.display());
        } else {
            assert!(
                sorted_lines(&want) == sorted_lines(&got),
                "{name} of {} holds other lines",
                actual.display()
            );
        }
        assert!(got.is_empty() || got.ends_with('\n'), "{name}");
    }
}

/// What a killed one-partition run left in `dir` is on its way to `base`'s outputs: every
/// line ending in `\n` parses as JSON; an ordered output is a byte prefix of the baseline's
/// (a commit that a kill interrupted may have left the start of its next line, which the next
/// start cuts off); the whole lines of the others are among the baseline's. Returns the
/// outputs that had such a torn tail.
fn assert_on_the_way(dir: &Path, base: &Path) -> usize {
    let mut torn = 0;
    for (name, fixed_order) in OUTPUTS {
        let Ok(text) = fs::read(dir.join(name)) else {
            continue; // not created yet (origins.jsonl is written at the end)
        };
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let lines = std::str::from_utf8(&text[..whole]).expect("whole lines are UTF-8");
        for line in lines.lines() {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
        }
        torn += usize::from(whole < text.len());
        let want = read(&base.join(name));
        if fixed_order {
            assert!(
                want.as_bytes().starts_with(&text),
                "{name} is no prefix of the uninterrupted run's"
            );
        } else {
            let mut left: BTreeMap<&str, usize> = BTreeMap::new();
            for line in want.lines() {
                *left.entry(line).or_default() += 1;
            }
            for line in lines.lines() {
                let n = left.get_mut(line).filter(|n| **n > 0);
                *n.unwrap_or_else(|| panic!("{name}: a line too many: {line}")) -= 1;
            }
        }
    }
    torn
}

/// The chk-N folders of `dir/checkpoints` with a `_metadata` (completed), by N.
fn completed_checkpoints(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = fs::read_dir(dir.join("checkpoints")) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("_metadata").exists())
        .filter_map(|p| {
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix("chk-")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    found.sort();
    found
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn report(dir: &Path) -> serde_json::Value {
    let path = dir.join("report.json");
    serde_json::from_str(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// records_in = counted + late + rejected + quarantined, read from the committed files.
fn assert_accounting(report: &serde_json::Value) {
    let n = |f: &str| {
        report[f]
            .as_u64()
            .unwrap_or_else(|| panic!("report.json lacks {f}"))
    };
    assert_eq!(
        n("records_in"),
        n("records_counted")
            + n("records_late_dropped")
            + n("records_rejected")
            + n("records_quarantined"),
        "{report:#}"
    );
}

/// The largest state file of the newest completed checkpoint of `dir`.
fn largest_state_file(checkpoint: &Path) -> PathBuf {
    fs::read_dir(checkpoint)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "state"))
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .expect("a checkpoint holds state files")
}

fn flip_a_byte(file: &Path) {
    let mut bytes = fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(file, bytes).unwrap();
}

/// How a crash round ends a run.
#[derive(Debug, Clone, Copy)]
enum Interruption {
    /// SIGKILL after this long.
    Kill(Duration),
    /// One injected failure of this seed, with `--restart-strategy none`.
    Inject(u64),
}

in_every_exactly_once_mode! {
    fn sigkill_at_random_moments_and_restores_commit_the_uninterrupted_output(checkpointed) {
        let dir = tempfile::tempdir().unwrap();
        let base = baseline(dir.path(), ONE_PARTITION);
        let out = dir.path().join("crashed");
        let slow: &[&str] = &["--rate", "40000"];
        // Seeds whose first injected failure lands (by the plan `inject.rs` draws) between a
        // checkpoint's durable metadata and its commit (2, 8), in the asynchronous snapshot (3)
        // and in the synchronous one (5).
        let mut rng = Pcg64::seed_from_u64(7);
        let mut plan: Vec<Interruption> = Vec::new();
        for seed in [2, 3, 5, 8] {
            plan.push(Interruption::Kill(Duration::from_millis(
                rng.random_range(60..400),
            )));
            plan.push(Interruption::Inject(seed));
        }
        let (mut killed, mut injected, mut torn) = (0, 0, 0);
        for interruption in plan {
            let restore: &[&str] = match completed_checkpoints(&out).is_empty() {
                true => &[],
                false => &["--restore", "latest"],
            };
            let seed = match interruption {
                Interruption::Inject(seed) => seed.to_string(),
                Interruption::Kill(_) => String::new(),
            };
            let inject: &[&str] = match interruption {
                Interruption::Inject(_) => &[
                    "--inject-failures",
                    "1",
                    "--failure-seed",
                    &seed,
                    "--restart-strategy",
                    "none",
                ],
                Interruption::Kill(_) => &[],
            };
            let cmd = traffic(&out, &[ONE_PARTITION, checkpointed, slow, restore, inject]);
            match interruption {
                Interruption::Kill(delay) => killed += usize::from(start(cmd).kill_after(delay)),
                Interruption::Inject(_) => {
                    let (status, stderr) = start(cmd).finish();
                    if !status.success() {
                        assert!(stderr.contains("injected failure 1"), "{stderr}");
                        injected += 1;
                    }
                }
            }
            torn += assert_on_the_way(&out, &base);
        }
        let restore: &[&str] = match completed_checkpoints(&out).is_empty() {
            true => &[],
            false => &["--restore", "latest"],
        };
        run_ok(traffic(&out, &[ONE_PARTITION, checkpointed, restore]));
        assert_same_outputs(&base, &out, true);
        assert_accounting(&report(&out));
        eprintln!("{killed} kills, {injected} injected failures, {torn} torn tails seen");
        assert!(
            killed + injected > 0,
            "every round ended before its interruption"
        );
    }
}

in_every_exactly_once_mode! {
    fn a_restore_from_any_retained_checkpoint_gives_the_same_output(checkpointed) {
        let dir = tempfile::tempdir().unwrap();
        let base = baseline(dir.path(), ONE_PARTITION);
        let out = dir.path().join("run");
        let retain: &[&str] = &["--retained-checkpoints", "100", "--rate", "40000"];
        run_ok(traffic(&out, &[ONE_PARTITION, checkpointed, retain]));
        let checkpoints = completed_checkpoints(&out);
        assert!(!checkpoints.is_empty(), "the final checkpoint is retained");
        // The commit marker keeps the output lengths of the last few commits only: a restore from
        // an older checkpoint cannot cut the outputs back and must say so.
        let mut restored = Vec::new();
        for (n, _) in &checkpoints {
            let copy = dir.path().join(format!("from-{n}"));
            copy_dir(&out, &copy);
            let chk = copy.join("checkpoints").join(format!("chk-{n}"));
            let cmd = traffic(&copy, &[ONE_PARTITION, checkpointed, &["--restore"]]);
            let mut cmd = cmd;
            cmd.arg(&chk);
            let (status, stderr) = start(cmd).finish();
            if status.success() {
                assert_same_outputs(&base, &copy, true);
                restored.push(*n);
            } else {
                assert!(
                    stderr.contains(&format!("cannot roll the outputs back to checkpoint {n}")),
                    "chk-{n}: {stderr}"
                );
            }
            fs::remove_dir_all(&copy).unwrap();
        }
        let newest: Vec<u64> = checkpoints
            .iter()
            .rev()
            .take(restored.len())
            .map(|c| c.0)
            .rev()
            .collect();
        assert_eq!(
            restored, newest,
            "the restorable checkpoints are the newest ones"
        );
        assert!(restored.len() >= checkpoints.len().min(2), "{restored:?}");
    }
}

/// Three partitions in batch mode: nothing late, the output independent of parallelism.
const THREE_PARTITIONS: &[&str] = &[
    "--generate",
    "60000",
    "--partitions",
    "3",
    "--mode",
    "batch",
];

in_every_exactly_once_mode! {
    fn a_restore_at_another_parallelism_completes_the_same_output(checkpointed) {
        let dir = tempfile::tempdir().unwrap();
        let base = baseline(dir.path(), THREE_PARTITIONS);
        for (from, to) in [("1", "3"), ("3", "2")] {
            let out = dir.path().join(format!("{from}-to-{to}"));
            let fail: &[&str] = &[
                "--rate",
                "30000",
                "--fail-after",
                "15000",
                "--restart-strategy",
                "none",
            ];
            let stderr = run_err(traffic(
                &out,
                &[THREE_PARTITIONS, checkpointed, &["-p", from], fail],
            ));
            assert!(stderr.contains("operator 'tag'"), "{stderr}");
            assert!(
                !completed_checkpoints(&out).is_empty(),
                "-p {from}: no checkpoint before the failure"
            );
            run_ok(traffic(
                &out,
                &[
                    THREE_PARTITIONS,
                    checkpointed,
                    &["-p", to, "--restore", "latest"],
                ],
            ));
            assert_same_outputs(&base, &out, false);
            assert_accounting(&report(&out));
        }
    }
}

#[test]
fn a_damaged_latest_checkpoint_is_passed_over_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path(), ONE_PARTITION);
    for backend in BACKENDS {
        let out = dir.path().join(format!("run-{}", backend[1]));
        run_ok(traffic(
            &out,
            &[ONE_PARTITION, CHECKPOINTED, backend, &["--rate", "40000"]],
        ));
        let checkpoints = completed_checkpoints(&out);
        assert_eq!(checkpoints.len(), 2, "--retained-checkpoints defaults to 2");
        let restore: &[&[&str]] = &[
            ONE_PARTITION,
            CHECKPOINTED,
            backend,
            &["--restore", "latest"],
        ];

        type Damage = fn(&Path);
        let damages: [(&str, Damage); 2] = [
            ("flipped", flip_a_byte),
            ("truncated", |file| {
                let len = fs::metadata(file).unwrap().len();
                fs::OpenOptions::new()
                    .write(true)
                    .open(file)
                    .unwrap()
                    .set_len(len / 2)
                    .unwrap();
            }),
        ];
        for (how, damage) in damages {
            let copy = dir.path().join(format!("{how}-{}", backend[1]));
            copy_dir(&out, &copy);
            let (newest, _) = checkpoints.last().unwrap();
            let file = largest_state_file(&copy.join("checkpoints").join(format!("chk-{newest}")));
            damage(&file);
            let stderr = run_ok(traffic(&copy, restore));
            let name = format!(
                "chk-{newest}/{}",
                file.file_name().unwrap().to_str().unwrap()
            );
            let message = stderr
                .lines()
                .find(|l| l.contains(&name))
                .unwrap_or_else(|| panic!("{how}: no message names {name}:\n{stderr}"));
            assert!(message.contains("skipped"), "{how}: {message}");
            assert_same_outputs(&base, &copy, true);
        }

        // A shared file of incremental snapshots that only the newest checkpoint refers to: its
        // damage makes the restore fall back to the checkpoint before, as a state file's does.
        if let [.., (older, _), (newest, _)] = checkpoints.as_slice()
            && let Some(file) = shared_files(&out, *newest)
                .into_iter()
                .find(|f| !shared_files(&out, *older).contains(f))
        {
            let copy = dir.path().join(format!("shared-{}", backend[1]));
            copy_dir(&out, &copy);
            flip_a_byte(&copy.join("checkpoints").join(&file));
            let stderr = run_ok(traffic(&copy, restore));
            let message = stderr
                .lines()
                .find(|l| l.contains(&file))
                .unwrap_or_else(|| panic!("no message names {file}:\n{stderr}"));
            assert!(message.contains("checkpoint skipped"), "{message}");
            assert_same_outputs(&base, &copy, true);
        }

        for (n, chk) in &checkpoints {
            flip_a_byte(&largest_state_file(chk));
            assert!(chk.ends_with(format!("chk-{n}")));
        }
        let stderr = run_err(traffic(&out, restore));
        for (n, _) in &checkpoints {
            assert!(stderr.contains(&format!("chk-{n}/")), "{stderr}");
        }
    }
}

/// The shared files (`shared/NAME`) that checkpoint `n` of `dir` refers to, read from its
/// `_metadata` (header 8 bytes, then one frame: length 8, JSON, CRC32 4).
fn shared_files(dir: &Path, n: u64) -> Vec<String> {
    let bytes = fs::read(dir.join("checkpoints").join(format!("chk-{n}/_metadata"))).unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&bytes[16..bytes.len() - 4]).unwrap();
    let mut files: Vec<String> = metadata["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["shared"].as_array())
        .flatten()
        .map(|f| f["file"].as_str().unwrap().to_owned())
        .collect();
    files.sort();
    files.dedup();
    files
}

/// `--restart-strategy fixed-delay` with room for every injected failure, 5 ms apart.
const RESTARTS: &[&str] = &[
    "--restart-strategy",
    "fixed-delay",
    "--restart-attempts",
    "10",
    "--restart-delay",
    "5ms",
];

in_every_exactly_once_mode! {
    fn state_larger_than_the_buffer_pool_survives_failures(checkpointed) {
        let dir = tempfile::tempdir().unwrap();
        let base = baseline(dir.path(), ONE_PARTITION);
        let out = dir.path().join("run");
        let small_pool: &[&str] = &[
            "--segment-size",
            "1024",
            "--inject-failures",
            "2",
            "--failure-seed",
            "7",
        ];
        run_ok(traffic(
            &out,
            &[ONE_PARTITION, checkpointed, RESTARTS, small_pool],
        ));
        assert_same_outputs(&base, &out, true);
        let report = report(&out);
        let pool_bytes = report["network"]["segments"].as_u64().unwrap()
            * report["network"]["segment_bytes"].as_u64().unwrap();
        let state_bytes = report["checkpoints"]["lastCheckpointFullSize"]
            .as_u64()
            .unwrap();
        assert!(state_bytes > pool_bytes, "{state_bytes} <= {pool_bytes}");
    }
}

#[test]
fn a_source_subtask_without_partitions_checkpoints_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let job: &[&str] = &[
        "--generate",
        "40000",
        "--partitions",
        "1",
        "-p",
        "2",
        "--mode",
        "batch",
    ];
    let base = baseline(dir.path(), job);
    let out = dir.path().join("run");
    let inject: &[&str] = &["--inject-failures", "3", "--failure-seed", "4"];
    run_ok(traffic(&out, &[job, CHECKPOINTED, RESTARTS, inject]));
    assert_same_outputs(&base, &out, false);
    assert_accounting(&report(&out));
}

/// A CSV partition of `records` records, one a second, plates of one city.
fn csv(path: &Path, records: usize) {
    const START_MS: i64 = 1_772_409_600_000;
    let mut text = String::from("ts_ms,plate,checkpoint_id\n");
    for i in 0..records {
        let ts = START_MS + 1000 * i as i64;
        text.push_str(&format!("{ts},浙A{:05},{}\n", i % 4000, 1 + i % 50));
    }
    fs::write(path, text).unwrap();
}

#[test]
fn a_partition_that_ended_before_a_checkpoint_is_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    fs::create_dir(&input).unwrap();
    csv(&input.join("a.csv"), 100);
    csv(&input.join("b.csv"), 30_000);
    let input = input.to_str().unwrap();
    let job: &[&str] = &["--input", input, "-p", "2", "--mode", "batch"];
    let base = baseline(dir.path(), job);
    let out = dir.path().join("run");
    let fail: &[&str] = &["--rate", "30000", "--fail-after", "10000"];
    run_ok(traffic(&out, &[job, CHECKPOINTED, RESTARTS, fail]));
    assert_same_outputs(&base, &out, false);
    let report = report(&out);
    assert_eq!(report["records_in"], 30_100, "{report:#}");
    assert_eq!(report["checkpoints"]["numRestarts"], 1, "{report:#}");
}

#[test]
fn an_expired_checkpoint_fails_the_job_when_none_is_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let expire: &[&str] = &["--checkpoint-timeout", "1ms", "--restart-strategy", "none"];
    let stderr = run_err(traffic(&out, &[ONE_PARTITION, CHECKPOINTED, expire]));
    assert!(stderr.contains("expired after 1 ms"), "{stderr}");
    assert!(stderr.contains("0 tolerated"), "{stderr}");
}

in_every_exactly_once_mode! {
    /// Parts pre-committed for an expired checkpoint are carried into the next one that
    /// completes: nothing is lost, nothing doubled. The source is slowed so that the run
    /// spans several checkpoint intervals, and the timeout is the least there is, so that
    /// checkpoints expire however fast the machine (at 5 ms and full speed, a quiet machine
    /// ran only the final checkpoint and completed it); the final checkpoint's timeout grows
    /// until one completes.
    fn tolerated_expired_checkpoints_still_commit_exactly_once(checkpointed) {
        let dir = tempfile::tempdir().unwrap();
        let base = baseline(dir.path(), ONE_PARTITION);
        let out = dir.path().join("run");
        let expire: &[&str] = &[
            "--checkpoint-timeout",
            "1ms",
            "--tolerable-failed-checkpoints",
            "1000000",
            "--rate",
            "500000",
        ];
        run_ok(traffic(&out, &[ONE_PARTITION, checkpointed, expire]));
        assert_same_outputs(&base, &out, true);
        let checkpoints = &report(&out)["checkpoints"];
        let count = |field: &str| checkpoints[field].as_u64().unwrap();
        assert!(count("numberOfFailedCheckpoints") > 0, "{checkpoints:#}");
        assert!(count("numberOfCompletedCheckpoints") > 0, "{checkpoints:#}");
    }
}

#[test]
fn the_report_counts_checkpoints_and_restarts_by_flinks_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let inject: &[&str] = &["--inject-failures", "3", "--failure-seed", "11"];
    run_ok(traffic(
        &out,
        &[ONE_PARTITION, CHECKPOINTED, RESTARTS, inject],
    ));
    let report = report(&out);
    assert_accounting(&report);
    assert_eq!(report["records_in"], 50_000);
    let c = &report["checkpoints"];
    let n = |f: &str| {
        c[f].as_u64()
            .unwrap_or_else(|| panic!("checkpoints lacks {f}: {c:#}"))
    };
    let fired = report["injected_failures"]
        .as_array()
        .expect("injected_failures");
    // A planned failure at a site the job no longer reaches (it ended first) does not fire.
    assert!((1..=3).contains(&fired.len()), "{report:#}");
    // Two failures can hit one attempt (the next is armed as soon as one fires, so a snapshot
    // thread of the failing attempt may fire it): one restart for both.
    let restarts = n("numRestarts") as usize;
    assert!((1..=fired.len()).contains(&restarts), "{report:#}");
    assert_eq!(c["restarts"].as_array().unwrap().len(), restarts, "{c:#}");
    assert_eq!(
        n("totalNumberOfCheckpoints"),
        n("numberOfCompletedCheckpoints") + n("numberOfFailedCheckpoints"),
        "{c:#}"
    );
    assert!(n("numberOfCompletedCheckpoints") >= 1);
    assert!(n("lastCompletedCheckpointId") >= n("numberOfCompletedCheckpoints"));
    let e2e = &c["end_to_end_duration_ms"];
    let (p50, p99, max) = (
        e2e["p50"].as_f64().unwrap(),
        e2e["p99"].as_f64().unwrap(),
        e2e["max"].as_f64().unwrap(),
    );
    assert!(p50 <= p99 && p99 <= max, "{e2e}");
    let history = c["history"].as_array().expect("history");
    let completed = history
        .iter()
        .filter(|h| h["status"] == "COMPLETED")
        .count();
    assert!(completed as u64 <= n("numberOfCompletedCheckpoints"));
    assert!(
        history
            .iter()
            .all(|h| h["id"].is_u64() && h["status"].is_string()),
        "{c:#}"
    );
}

#[test]
fn checkpoint_options_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stderr = run_err(traffic(
        &out,
        &[
            ONE_PARTITION,
            &["-D", "execution.checkpointing.intervall=1s"],
        ],
    ));
    assert!(
        stderr.contains("execution.checkpointing.intervall"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nearest known one is execution.checkpointing.interval"),
        "{stderr}"
    );

    let stderr = run_err(traffic(&out, &[ONE_PARTITION, &["--restore", "latest"]]));
    assert!(stderr.contains("--restore"), "{stderr}");
    assert!(stderr.contains("--checkpoint-interval"), "{stderr}");

    let stderr = run_err(traffic(
        &out,
        &[ONE_PARTITION, CHECKPOINTED, &["--restore", "latest"]],
    ));
    assert!(stderr.contains("checkpoint"), "{stderr}");
    assert!(
        stderr.contains(&out.join("checkpoints").display().to_string()),
        "{stderr}"
    );
}

/// Restoring into an output folder that does not hold what the checkpoint's predecessors
/// committed would leave a gap in the outputs: it is refused, naming both checkpoints.
#[test]
fn a_restore_into_other_outputs_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let fail: &[&str] = &[
        "--rate",
        "20000",
        "--fail-after",
        "20000",
        "--restart-strategy",
        "none",
    ];
    run_err(traffic(&out, &[ONE_PARTITION, CHECKPOINTED, fail]));
    assert!(
        completed_checkpoints(&out).len() >= 2,
        "two checkpoints before the failure"
    );
    let elsewhere = dir.path().join("elsewhere");
    let checkpoints = out.join("checkpoints");
    let stderr = run_err(traffic(
        &elsewhere,
        &[
            ONE_PARTITION,
            CHECKPOINTED,
            &[
                "--restore",
                "latest",
                "--checkpoint-dir",
                checkpoints.to_str().unwrap(),
            ],
        ],
    ));
    assert!(
        stderr.contains("restore into the output folder of the run that wrote the checkpoint"),
        "{stderr}"
    );
}

/// The `checkpoints` object of the report in `dir`, and its completed and failed counts.
fn checkpoint_counts(dir: &Path) -> (serde_json::Value, u64, u64) {
    let checkpoints = report(dir)["checkpoints"].clone();
    let n = |key: &str| checkpoints[key].as_u64().unwrap();
    let (completed, failed) = (
        n("numberOfCompletedCheckpoints"),
        n("numberOfFailedCheckpoints"),
    );
    (checkpoints, completed, failed)
}

/// The `_metadata` of the checkpoint in `folder`, as JSON (the file frames it: an 8-byte
/// header and an 8-byte length before it, a 4-byte checksum after).
fn metadata(folder: &Path) -> serde_json::Value {
    let bytes = fs::read(folder.join("_metadata")).unwrap();
    serde_json::from_slice(&bytes[16..bytes.len() - 4]).unwrap()
}

/// A slow tagging step backs the sources up: the newest checkpoint before the failure holds
/// in-flight data, which a restore at another parallelism replays, re-routed by key group,
/// before any new input; the outputs are the uninterrupted run's.
#[test]
fn an_unaligned_checkpoint_with_in_flight_data_restores_at_another_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let base = baseline(dir.path(), THREE_PARTITIONS);
    for (from, to) in [("2", "3"), ("3", "1")] {
        let out = dir.path().join(format!("{from}-to-{to}"));
        let fail: &[&str] = &[
            "--slow-tag",
            "1ms",
            "--segment-size",
            "2048",
            "--fail-after",
            "1500",
            "--restart-strategy",
            "none",
        ];
        let stderr = run_err(traffic(
            &out,
            &[
                THREE_PARTITIONS,
                CHECKPOINTED,
                UNALIGNED,
                &["-p", from],
                fail,
            ],
        ));
        assert!(stderr.contains("operator 'tag'"), "{stderr}");
        let (_, newest) = completed_checkpoints(&out)
            .pop()
            .unwrap_or_else(|| panic!("-p {from}: no checkpoint before the failure"));
        let states = metadata(&newest)["channel_states"].clone();
        let in_flight: u64 = states
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["chunks"].as_array().unwrap())
            .map(|c| c["bytes"].as_u64().unwrap())
            .sum();
        assert!(in_flight > 0, "{}: no in-flight data", newest.display());
        run_ok(traffic(
            &out,
            &[
                THREE_PARTITIONS,
                CHECKPOINTED,
                UNALIGNED,
                &["-p", to, "--restore", "latest"],
            ],
        ));
        assert_same_outputs(&base, &out, false);
        assert_accounting(&report(&out));
    }
}

/// Under heavy backpressure (a slow tagging step, deep buffers) an aligned barrier waits
/// behind every queued buffer and its checkpoints expire; an unaligned one overtakes them and
/// its checkpoints complete, persisting the overtaken buffers; an aligned timeout switches
/// the late subtasks, which the report lists. Counts only: nothing here reads a duration.
#[test]
fn a_backpressured_job_completes_unaligned_checkpoints_where_aligned_ones_expire() {
    let dir = tempfile::tempdir().unwrap();
    let job: &[&str] = &[
        "--generate",
        "1500",
        "--partitions",
        "1",
        "-p",
        "1",
        "--slow-tag",
        "2ms",
        "--segment-size",
        "512",
        "--exclusive-buffers",
        "30",
        "--checkpoint-interval",
        "50ms",
        "--checkpoint-timeout",
        "400ms",
        "--tolerable-failed-checkpoints",
        "1000",
    ];
    let run = |name: &str, mode: &[&str]| {
        let out = dir.path().join(name);
        run_ok(traffic(&out, &[job, mode]));
        checkpoint_counts(&out)
    };
    let (_, aligned_completed, aligned_failed) = run("aligned", &[]);
    let (unaligned, unaligned_completed, unaligned_failed) = run("unaligned", UNALIGNED);
    let (timeout, timeout_completed, _) = run("timeout", &["--aligned-timeout", "10ms"]);
    // Aligned: at most the checkpoints before the queues filled and the final one complete.
    assert!(aligned_failed >= 3, "aligned: {aligned_failed} expired");
    assert!(
        unaligned_completed >= 2 * aligned_completed.max(2),
        "unaligned {unaligned_completed} completed, aligned {aligned_completed}"
    );
    assert!(
        unaligned_completed > unaligned_failed,
        "unaligned: {unaligned_completed} completed, {unaligned_failed} failed"
    );
    assert!(
        unaligned["persisted_in_flight_bytes"]["max"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(timeout_completed > aligned_completed, "{timeout:#}");
    let switched = timeout["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "COMPLETED")
        .filter(|r| !r["unaligned_subtasks"].as_array().unwrap().is_empty())
        .count();
    assert!(switched > 0, "no subtask went unaligned: {timeout:#}");
}

#[test]
fn barrier_mode_options_are_refused_when_they_contradict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let refused = |args: &[&str], expected: &str| {
        let stderr = run_err(traffic(&out, &[ONE_PARTITION, CHECKPOINTED, args]));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };
    refused(
        &[
            "--checkpoint-mode",
            "at-least-once",
            "--aligned-timeout",
            "1ms",
        ],
        "--aligned-timeout needs exactly once",
    );
    refused(
        &[
            "--checkpoint-mode",
            "aligned",
            "-D",
            "execution.checkpointing.unaligned.enabled=true",
        ],
        "set the same thing",
    );
    refused(
        &[
            "-D",
            "execution.checkpointing.mode=AT_LEAST_ONCE",
            "-D",
            "execution.checkpointing.unaligned.enabled=true",
        ],
        "cannot be at least once",
    );
    refused(
        &[
            "-D",
            "execution.checkpointing.unaligned.enabled=false",
            "--aligned-timeout",
            "5ms",
        ],
        "contradict",
    );
    refused(
        &["-D", "execution.checkpointing.unaligned.enabled=yes"],
        "'yes' is not true or false",
    );
    let stderr = run_err(traffic(
        &out,
        &[ONE_PARTITION, &["--aligned-timeout", "1ms"]],
    ));
    assert!(
        stderr.contains("--aligned-timeout needs checkpoints"),
        "{stderr}"
    );
}
