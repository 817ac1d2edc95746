//! The traffic job as a plain, idiomatic timely dataflow program: a stand-in for issue 9's
//! reference program.
//!
//! Issue 9 measures weir against "a plain, idiomatic timely dataflow program doing the same
//! job on the same files" (weir at 2.5x its wall time, the project's timely peer at 1.33x,
//! at commit `ee581f5`); the project did not have that program, and this module is one, so
//! that such figures can be measured. It turned out slower than the (2.7x the CPU of
//! the peer of `ee581f5`, where the ran faster than that peer:
//! `results/2026-12-02-plain-timely/`), so the project's peer remains the comparison that binds.
//! It is written the way a timely user writes it from timely's examples (`hello.rs`,
//! `wordcount.rs`) and the standard library's documentation, and is deliberately **not
//! tuned**: the project's own peer, [`super::timely_traffic`], is the tuned one (weir's
//! byte-level reader, inline plates, Fx hashing). Do not make this one faster: it is a
//! baseline, and its figures only mean something while it stays what a user would write.
//!
//! What it does, per worker:
//! - opens the files `i` with `i % workers == index` in turn, reads them with
//!   `BufReader::new(File)` and `.lines()`, skips line 1 when it is the header
//!   [`HEADER`], splits every other line with `split(',')`, parses `ts_ms` and
//!   `checkpoint_id` with `str::parse` and copies the plate into a `String`; a line that is
//!   not three such fields with a plate that follows the plate rule (or that is not UTF-8) is
//!   rejected: counted, not written anywhere;
//! - sends each record into an [`InputHandle`], advances the epoch every
//!   [`LINES_PER_EPOCH`] lines and steps the worker while the probe lags the input, as the
//!   examples do (parking while it waits, not spinning: see [`LINES_PER_EPOCH`]);
//! - exchanges the records by the `DefaultHasher` hash of their plate to a tagging operator
//!   that keeps, in `std::collections::HashMap`s, the distinct UTC days of each non-local
//!   plate (long-term from the [`LONG_TERM_DAYS`]-th), the origin counts, the 1-minute flow
//!   windows by start and the 5-minute origin windows by start and origin; it holds its
//!   capability at its input frontier and sends its counts to worker 0 once the frontier is
//!   empty, so every window is complete;
//! - worker 0 sums the counts it receives; the caller converts them to the project's
//!   [`OriginCounts`] and [`WindowTotals`] (for the output only), so the answer can be
//!   compared with weir's and the peer's.
//!
//! The definitions are the job's (origin, plate rule, UTC day, window start), and on the
//! CSV the generator writes (unquoted, with the header or none) the answer equals weir's
//! and the peer's with the timestamp guard off. What it does not read the way they do: a
//! quoted field (its line is rejected), a byte order mark or a header naming the columns in
//! another order (both refused with the file's name). It has no timestamp guard and no
//! generator.
//!
//! The per-plate answer does not depend on the worker count: a plate lives in one file, one
//! worker reads that file in order, timely channels are FIFO between a pair of workers and
//! the tagging operator tags records as they arrive.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use timely::Config;
use timely::dataflow::channels::pact::Exchange as ExchangePact;
use timely::dataflow::operators::{Exchange, Input, Inspect, Operator, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

use crate::traffic::parse::{COLUMNS, HEADER};
use crate::traffic::record::{Home, Origin, PROVINCES};
use crate::traffic::tag::{LONG_TERM_DAYS, OriginCounts, day_of};
use crate::traffic::windows::{FLOW_WINDOW_MS, ORIGIN_WINDOW_MS, WindowTotals, window_start};

/// Data lines a worker reads into one epoch before it steps the dataflow until the probe
/// has seen the epoch through.
///
/// The examples wait with `while probe.less_than(..) { worker.step() }`, which spins; this
/// program parks instead (`step_or_park_while(None, ..)`, woken by the other workers'
/// progress messages). With an epoch every 1000 lines, two spinning workers on two cores that
/// other processes also use wait on each other for whole scheduler slices: on the shared
/// 2-core machine of `results/2026-12-02-plain-timely/` that ran 3x to 5x slower than parking
/// (10 to 14 s against 2.5 to 4.8 s), and the baseline would measure the scheduler.
pub const LINES_PER_EPOCH: u64 = 1000;

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainOutcome {
    /// Data lines read (headers excluded): tagged plus rejected.
    pub records_in: u64,
    /// Lines rejected as malformed.
    pub records_rejected: u64,
    /// Tagged records by origin.
    pub counts: OriginCounts,
    /// Tagged records by flow window and by origin window: complete.
    pub windows: WindowTotals,
    /// From the start of the workers until the last of them finished.
    pub wall: Duration,
}

/// One vehicle pass, as read from a line.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pass {
    ts_ms: i64,
    plate: String,
    checkpoint_id: u32,
}

/// Counts of tagged records: what a tagging operator sends worker 0, and their sum there.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counts {
    /// Records and long-term records per origin.
    origins: HashMap<Origin, (u64, u64)>,
    /// Records per 1-minute window start.
    flow_1m: HashMap<i64, u64>,
    /// Records and long-term records per 5-minute window start and origin.
    origin_5m: HashMap<(i64, Origin), (u64, u64)>,
}

impl Counts {
    fn add(&mut self, ts_ms: i64, origin: Origin, long_term: bool) {
        let long_term = u64::from(long_term);
        let slot = self.origins.entry(origin).or_default();
        slot.0 += 1;
        slot.1 += long_term;
        *self
            .flow_1m
            .entry(window_start(ts_ms, FLOW_WINDOW_MS))
            .or_default() += 1;
        let slot = self
            .origin_5m
            .entry((window_start(ts_ms, ORIGIN_WINDOW_MS), origin))
            .or_default();
        slot.0 += 1;
        slot.1 += long_term;
    }

    fn merge(&mut self, other: &Counts) {
        for (origin, (n, long_term)) in &other.origins {
            let slot = self.origins.entry(*origin).or_default();
            slot.0 += n;
            slot.1 += long_term;
        }
        for (start, n) in &other.flow_1m {
            *self.flow_1m.entry(*start).or_default() += n;
        }
        for (key, (n, long_term)) in &other.origin_5m {
            let slot = self.origin_5m.entry(*key).or_default();
            slot.0 += n;
            slot.1 += long_term;
        }
    }

    /// The project's result types, for comparison.
    fn into_results(self) -> (OriginCounts, WindowTotals) {
        let mut counts = OriginCounts::default();
        for (origin, (n, long_term)) in self.origins {
            counts.count[origin.index()] = n;
            counts.long_term[origin.index()] = long_term;
        }
        let windows = WindowTotals {
            flow: self.flow_1m.into_iter().collect(),
            origin: self
                .origin_5m
                .into_iter()
                .map(|((start, origin), n)| ((start, origin.index()), n))
                .collect(),
        };
        (counts, windows)
    }
}

/// What one worker read, and (on worker 0) the sum of the counts.
#[derive(Debug, Default)]
struct WorkerResult {
    records_in: u64,
    records_rejected: u64,
    counts: Counts,
}

/// Runs the job on `workers` timely workers in this process over the CSV `files`, one
/// partition each.
///
/// Fails with the file's name when a file cannot be opened or read, or when its line 1 names
/// columns but is not [`HEADER`].
pub fn run(files: &[PathBuf], home: Home, workers: usize) -> Result<PlainOutcome, String> {
    if workers == 0 {
        return Err("the plain timely program needs at least one worker".to_owned());
    }
    let files = files.to_vec();
    let started = Instant::now();
    let guards = timely::execute(Config::process(workers), move |worker| {
        run_worker(worker, &files, home)
    })?;
    let mut total = WorkerResult::default();
    for result in guards.join() {
        let result = result??;
        total.records_in += result.records_in;
        total.records_rejected += result.records_rejected;
        total.counts.merge(&result.counts);
    }
    let wall = started.elapsed();
    let (counts, windows) = total.counts.into_results();
    Ok(PlainOutcome {
        records_in: total.records_in,
        records_rejected: total.records_rejected,
        counts,
        windows,
        wall,
    })
}

fn plate_hash(plate: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    plate.hash(&mut hasher);
    hasher.finish()
}

/// Builds the dataflow on one worker, feeds it this worker's files, and runs it to the end.
fn run_worker(
    worker: &mut timely::worker::Worker,
    files: &[PathBuf],
    home: Home,
) -> Result<WorkerResult, String> {
    let mut input = InputHandle::new();
    let probe = ProbeHandle::new();
    let sum = Rc::new(RefCell::new(Counts::default()));
    let sink = Rc::clone(&sum);
    worker.dataflow::<u64, _, _>(|scope| {
        scope
            .input_from(&mut input)
            .unary_frontier(
                ExchangePact::new(|pass: &Pass| plate_hash(&pass.plate)),
                "Tag",
                move |capability, _info| {
                    let mut capability = Some(capability);
                    let mut days_seen: HashMap<String, HashSet<i64>> = HashMap::new();
                    let mut counts = Counts::default();
                    move |(input, frontier), output| {
                        input.for_each(|_time, passes| {
                            for pass in passes.drain(..) {
                                let origin = origin(&pass.plate, home);
                                let long_term = origin != Origin::Local && {
                                    let days = days_seen.entry(pass.plate).or_default();
                                    days.insert(day_of(pass.ts_ms));
                                    days.len() >= usize::from(LONG_TERM_DAYS)
                                };
                                counts.add(pass.ts_ms, origin, long_term);
                            }
                        });
                        match frontier.frontier().as_option() {
                            Some(time) => {
                                if let Some(capability) = &mut capability {
                                    capability.downgrade(time);
                                }
                            }
                            None => {
                                if let Some(capability) = capability.take() {
                                    output
                                        .session(&capability)
                                        .give(std::mem::take(&mut counts));
                                }
                            }
                        }
                    }
                },
            )
            .container::<Vec<Counts>>()
            .exchange(|_| 0)
            .inspect(move |counts: &Counts| sink.borrow_mut().merge(counts))
            .probe_with(&probe);
    });

    let mut result = WorkerResult::default();
    for path in files.iter().skip(worker.index()).step_by(worker.peers()) {
        let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        for (number, line) in BufReader::new(file).lines().enumerate() {
            let line = match line {
                Ok(line) => line,
                // `lines` has consumed the line: the next one follows.
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    result.records_in += 1;
                    result.records_rejected += 1;
                    continue;
                }
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            };
            if number == 0 && is_header(&line, path)? {
                continue;
            }
            result.records_in += 1;
            match parse(&line) {
                Some(pass) => input.send(pass),
                None => result.records_rejected += 1,
            }
            if result.records_in % LINES_PER_EPOCH == 0 {
                input.advance_to(input.time() + 1);
                worker.step_or_park_while(None, || probe.less_than(input.time()));
            }
        }
    }
    input.close();
    while worker.step_or_park(None) {}
    result.counts = std::mem::take(&mut *sum.borrow_mut());
    Ok(result)
}

/// Whether line 1 of `path` is the header; an error if it names a column but is not
/// [`HEADER`].
fn is_header(line: &str, path: &Path) -> Result<bool, String> {
    if line == HEADER {
        Ok(true)
    } else if line.split(',').any(|field| COLUMNS.contains(&field)) {
        Err(format!(
            "{}: line 1 is not the header {HEADER:?}: the plain timely program reads only that header, or none",
            path.display()
        ))
    } else {
        Ok(false)
    }
}

/// The pass on `line`, if it is `ts_ms,plate,checkpoint_id` with a plate that follows the
/// plate rule.
fn parse(line: &str) -> Option<Pass> {
    let mut fields = line.split(',');
    let (Some(ts_ms), Some(plate), Some(checkpoint_id), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return None;
    };
    if !is_plate(plate) {
        return None;
    }
    Some(Pass {
        ts_ms: ts_ms.parse().ok()?,
        plate: plate.to_string(),
        checkpoint_id: checkpoint_id.parse().ok()?,
    })
}

/// The plate rule: a province abbreviation, a city letter `A`-`Z`, then 5 or 6 letters `A`-`Z`
/// or digits.
fn is_plate(plate: &str) -> bool {
    let mut chars = plate.chars();
    let province = chars.next().is_some_and(|c| PROVINCES.contains(c));
    let city = chars.next().is_some_and(|c| c.is_ascii_uppercase());
    // Bytes are characters once every one of them is ASCII.
    let serial = chars.as_str();
    province
        && city
        && (5..=6).contains(&serial.len())
        && serial
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Where `plate` comes from: its first character against the home province, its second
/// against the home city letter.
fn origin(plate: &str, home: Home) -> Origin {
    let mut chars = plate.chars();
    if chars.next() != Some(home.province) {
        Origin::Other
    } else if chars.next() == Some(home.city) {
        Origin::Local
    } else {
        Origin::Province
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> Home {
        "浙A".parse().unwrap()
    }

    #[test]
    fn lines_parse_by_the_job_rules() {
        let pass = parse("1772409600000,浙AD12345,7").unwrap();
        assert_eq!(
            (pass.ts_ms, pass.plate.as_str(), pass.checkpoint_id),
            (1772409600000, "浙AD12345", 7)
        );
        assert!(parse("+1,京B0000X,+3").is_some());
        for bad in [
            "",
            "1,浙A12345",
            "1,浙A12345,2,3",
            "1ms,浙A12345,2",
            "1,浙A12345,2-cam",
            "1,浙A12345,-2",
            "1,,2",
            "1,中A12345,2",
            "1,浙a12345,2",
            "1,浙A1234,2",
            "1,浙A1234567,2",
            "1,\"浙A12345\",2",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn origins_compare_province_then_city() {
        assert_eq!(origin("浙A12345", home()), Origin::Local);
        assert_eq!(origin("浙B12345", home()), Origin::Province);
        assert_eq!(origin("京A12345", home()), Origin::Other);
    }

    #[test]
    fn line_one_is_the_header_data_or_refused() {
        let path = Path::new("a.csv");
        assert_eq!(is_header(HEADER, path), Ok(true));
        assert_eq!(is_header("1,浙A12345,2", path), Ok(false));
        let refused = is_header("plate,ts_ms,checkpoint_id", path).unwrap_err();
        assert!(refused.starts_with("a.csv: line 1"), "{refused}");
    }
}
