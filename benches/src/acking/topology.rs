//! The topology's wiring: rings, threads, the acker's thread, and the run's result.

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer, PushError, RingBuffer};
use rustc_hash::FxHasher;
use weir_core::source::owned_partitions;

use super::acker::{AckerLedger, AckerMsg};
use super::bolts::{SinkBolts, TagBolt};
use super::spout::Spout;
use super::{AckingJob, AckingRun};
use crate::traffic::record::Plate;

/// What a data ring carries: tuples, then `Flush` (the producer's watermark is at its end:
/// every window may fire), then `Stop` (nothing more, not even replays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg<T> {
    /// A tuple.
    Tuple(T),
    /// End of input: the producer's watermark is `i64::MAX`.
    Flush,
    /// The producer is done.
    Stop,
}

/// Waits without burning a core for long: spins, then yields, then sleeps 50 µs a time.
#[derive(Debug, Default)]
pub(super) struct Backoff(u32);

impl Backoff {
    const SPINS: u32 = 64;
    const YIELDS: u32 = 128;

    pub(super) fn reset(&mut self) {
        self.0 = 0;
    }

    pub(super) fn snooze(&mut self) {
        if self.0 < Self::SPINS {
            std::hint::spin_loop();
        } else if self.0 < Self::YIELDS {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
        self.0 = self.0.saturating_add(1);
    }
}

/// Pushes `msg`, calling `while_full` between tries while the ring is full (backpressure).
/// Returns `false`, dropping the message, when the consumer is gone and the ring full.
pub(super) fn push_waiting<T>(
    ring: &mut Producer<T>,
    mut msg: T,
    mut while_full: impl FnMut(),
) -> bool {
    let mut backoff = Backoff::default();
    loop {
        match ring.push(msg) {
            Ok(()) => return true,
            Err(PushError::Full(back)) if !ring.is_abandoned() => {
                msg = back;
                while_full();
                backoff.snooze();
            }
            Err(PushError::Full(_)) => return false,
        }
    }
}

/// The tag task of `plate` among `tasks` (Storm's fields grouping).
pub(super) fn route(plate: &Plate, tasks: usize) -> usize {
    let mut h = FxHasher::default();
    plate.hash(&mut h);
    (h.finish() % tasks as u64) as usize
}

/// `n` rings of `capacity`, as producers and consumers.
fn rings<T>(n: usize, capacity: usize) -> (Vec<Producer<T>>, Vec<Consumer<T>>) {
    (0..n).map(|_| RingBuffer::new(capacity)).unzip()
}

/// The first of `ends`, taken; `None` when there are none (no acking).
fn next<T>(ends: &mut Vec<T>) -> Option<T> {
    (!ends.is_empty()).then(|| ends.remove(0))
}

/// Runs the topology to its end: every spout read its partitions and, with acking, every
/// tree completed or failed and was replayed until it completed.
///
/// Errors: an input that cannot be read (file, reason); the topology is stopped first.
pub fn run(job: &AckingJob) -> Result<AckingRun, String> {
    let p = job.parallelism.max(1);
    let capacity = job.ring_capacity.max(1);
    let partitions = job.input.partitions();
    let start = Instant::now();
    // spout i -> tag j: ring i * p + j.
    let (mut to_tags, from_spouts) = rings(p * p, capacity);
    let (to_sinks, from_tags) = rings(p, capacity);
    // The acker's inputs: spouts 0..p, tags p..2p, the sinks 2p.
    let acker_inputs = if job.acking { 2 * p + 1 } else { 0 };
    let (mut to_acker, from_bolts) = rings(acker_inputs, capacity);
    let (to_spouts, mut completed) = rings(if job.acking { p } else { 0 }, capacity);
    let mut from_spouts: Vec<Option<_>> = from_spouts.into_iter().map(Some).collect();

    let mut spouts = Vec::with_capacity(p);
    for task in 0..p {
        let readers = owned_partitions(partitions, task, p)
            .into_iter()
            .map(|q| job.input.open(q).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let rings: Vec<_> = to_tags.drain(..p).collect();
        let acks = next(&mut to_acker).zip(next(&mut completed));
        spouts.push(Spout::new(job, task, readers, rings, acks, start));
    }
    let mut tags = Vec::with_capacity(p);
    for (task, output) in to_sinks.into_iter().enumerate() {
        let inputs = (0..p)
            .map(|spout| spout * p + task)
            .map(|ring| {
                from_spouts[ring]
                    .take()
                    .expect("each ring has one consumer")
            })
            .collect();
        let lose = if task == 0 { job.lose } else { None };
        tags.push(TagBolt::new(
            job,
            task,
            inputs,
            output,
            next(&mut to_acker),
            lose,
        ));
    }
    let sinks = SinkBolts::new(from_tags, next(&mut to_acker));
    let timeout = job.message_timeout;

    std::thread::scope(|scope| {
        let acker = job
            .acking
            .then(|| scope.spawn(move || run_acker(from_bolts, to_spouts, timeout)));
        let spouts: Vec<_> = spouts
            .into_iter()
            .map(|s| scope.spawn(move || s.run()))
            .collect();
        let tags: Vec<_> = tags
            .into_iter()
            .map(|t| scope.spawn(move || t.run()))
            .collect();
        let sinks = scope.spawn(move || sinks.run());
        let mut run = AckingRun::default();
        let mut error = None;
        for spout in spouts {
            match spout.join().expect("a spout thread panicked") {
                Ok(stats) => stats.add_to(&mut run),
                Err(e) => error = error.or(Some(e)),
            }
        }
        for tag in tags {
            run.tuples_lost += tag.join().expect("a tag thread panicked");
        }
        sinks
            .join()
            .expect("the sinks thread panicked")
            .add_to(&mut run);
        if let Some(acker) = acker {
            run.acker_expired = acker.join().expect("the acker thread panicked");
        }
        run.wall_s = start.elapsed().as_secs_f64();
        error.map_or(Ok(run), Err)
    })
}

/// The acker's thread: applies every message to the ledger, tells each completed tree's
/// spout task, rotates the ledger every `timeout`; ends once every input sent `Stop`.
/// Returns the entries it expired.
fn run_acker(
    mut inputs: Vec<Consumer<AckerMsg>>,
    mut spouts: Vec<Producer<u64>>,
    timeout: Duration,
) -> u64 {
    const BATCH: usize = 256;
    let mut ledger = AckerLedger::default();
    let mut stopped = vec![false; inputs.len()];
    let mut running = inputs.len();
    let mut next_rotation = Instant::now() + timeout;
    let mut backoff = Backoff::default();
    while running > 0 {
        let mut progress = false;
        for (input, stopped) in inputs.iter_mut().zip(&mut stopped) {
            for _ in 0..BATCH {
                if *stopped {
                    break;
                }
                let Ok(msg) = input.pop() else { break };
                progress = true;
                if msg == AckerMsg::Stop {
                    *stopped = true;
                    running -= 1;
                } else if let Some((root, spout)) = ledger.apply(msg) {
                    // A spout that has ended dropped its ring: the root is no longer wanted.
                    push_waiting(&mut spouts[usize::from(spout)], root, || {});
                }
            }
        }
        let now = Instant::now();
        while now >= next_rotation {
            ledger.rotate();
            next_rotation += timeout;
        }
        if progress {
            backoff.reset();
        } else {
            backoff.snooze();
        }
    }
    ledger.expired()
}
