//! The Nexmark queries as weir jobs, and the run that executes one.
//!
//! Every query reads the whole event stream (persons, auctions and bids) from
//! [`NexmarkSource`], so its throughput counts all events, as Flink's Nexmark does.
//!
//! With checkpointing on (`NexmarkJob::runtime.checkpoint`), every query's state lives in its
//! window operators (the accumulators are codecs) and the source's offsets: the maps, filters
//! and row conversions keep none. The rows go to a transactional `<query>.jsonl`, so after any
//! number of restarts it holds exactly the rows of an uninterrupted run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use weir_core::codec::{Codec, DecodeError, Decoder, Encoder};
use weir_core::error::OperatorError;
use weir_core::runtime::JobControl;
use weir_core::sink::{CollectSink, JobOutputs, OutputFile, Sink};
use weir_core::time::WatermarkEmit;
use weir_core::window::{
    AggregateFunction, Count, GlobalAggregation, WindowAssigner, WindowResult, WindowSpec,
};
use weir_core::{Job, JobResult, RuntimeConfig, Stream};

use super::generator::{Word, WordList};
use super::model::{AuctionPrice, Bid, Event, HighestBid, HotItem, NewSeller, Row, decode_word};
use super::source::{EventsConfig, EventsRead, NexmarkSource, watermarks};
use crate::output_dir::{each_line, job_outputs};

/// q5's sliding window: 10 s every 2 s.
pub const Q5_SIZE_MS: i64 = 10_000;
/// q5's slide.
pub const Q5_SLIDE_MS: i64 = 2_000;
/// q7's and q8's tumbling window: 10 s.
pub const TUMBLE_MS: i64 = 10_000;
/// q2 keeps the bids on auctions whose id is a multiple of this (Flink's q2).
pub const Q2_MODULUS: u64 = 123;

/// A Nexmark query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Query {
    /// Pass-through: every bid.
    Q0,
    /// Currency conversion: every bid with its price in euros (`price * 908 / 1000`).
    Q1,
    /// Selection: bids on auctions whose id is a multiple of 123.
    Q2,
    /// Hot items: the auctions with the most bids per sliding window (10 s every 2 s).
    Q5,
    /// Highest bid per tumbling 10 s window (a global window).
    Q7,
    /// New sellers: people who were created and opened an auction in the same 10 s window.
    Q8,
}

impl Query {
    /// Every query, in the order they are built.
    pub const ALL: [Query; 6] = [
        Query::Q0,
        Query::Q1,
        Query::Q2,
        Query::Q5,
        Query::Q7,
        Query::Q8,
    ];

    /// `q0`, `q1`, ...
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
        }
    }

    /// Flink's published Nexmark v1 throughput per core, events/s.
    pub fn flink_per_core(self) -> f64 {
        match self {
            Query::Q0 => 155_000.0,
            Query::Q1 => 158_000.0,
            Query::Q2 => 175_000.0,
            Query::Q5 => 22_000.0,
            Query::Q7 => 12_300.0,
            Query::Q8 => 146_000.0,
        }
    }

    /// Whether the query has windows (its default sink writes JSON lines).
    pub fn is_windowed(self) -> bool {
        matches!(self, Query::Q5 | Query::Q7 | Query::Q8)
    }

    /// The file of its rows in the output folder: `q0.jsonl`, `q1.jsonl`, ...
    pub fn rows_file(self) -> String {
        format!("{}.jsonl", self.name())
    }
}

/// How q7's global window is aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregation {
    /// One subtask sees every bid (Flink's `windowAll`).
    WindowAll,
    /// Each subtask pre-aggregates, then the partials merge per window.
    Parallel,
}

/// Where a query's rows go.
#[derive(Debug, Clone)]
pub enum RowOutput {
    /// Counted and dropped (not with checkpointing: the count would not survive a restart).
    Discard,
    /// Written as JSON lines to [`Query::rows_file`] in this folder: a plain file, or with
    /// checkpointing a transactional one that only ever holds the rows of completed
    /// checkpoints.
    Jsonl(PathBuf),
    /// Collected in memory (tests; not with checkpointing: a restart would collect again).
    Collect(Arc<Mutex<Vec<Row>>>),
}

/// When the source emits watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Watermarks {
    /// Streaming: periodically, every this long.
    Periodic(#[serde(with = "ms")] Duration),
    /// Batch: one final watermark at the end of the input.
    EndOfInput,
}

mod ms {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u128(d.as_millis())
    }
}

/// One Nexmark run: which query, over which events, how.
#[derive(Debug, Clone)]
pub struct NexmarkJob {
    /// The query.
    pub query: Query,
    /// The events.
    pub events: EventsConfig,
    /// Subtasks of the source and of every other step (the `windowAll` step has 1).
    pub parallelism: usize,
    /// q7's aggregation mode (other queries ignore it).
    pub aggregation: Aggregation,
    /// When watermarks are emitted.
    pub watermarks: Watermarks,
    /// Bounded out-of-orderness of the watermarks.
    pub out_of_orderness: Duration,
    /// The runtime settings.
    pub runtime: RuntimeConfig,
    /// Where the rows go.
    pub output: RowOutput,
}

/// What a run produced. Both counts hold over restarts: each event and each row counts once.
#[derive(Debug)]
pub struct NexmarkRun {
    /// Events the source read: the sum of the partitions' final offsets (with a restore, the
    /// restored run's events before its offsets too: [`EventsRead::at_end`]).
    pub events_in: u64,
    /// Rows out: the lines the rows file holds once the job has ended ([`RowOutput::Jsonl`],
    /// read back), or the rows the sink received (the others).
    pub rows_out: u64,
    /// From the start of the job to its end, over every attempt (restarts and their delays
    /// included).
    pub wall: Duration,
    /// The engine's result: task metrics and latency (of the last attempt), checkpoints.
    pub result: JobResult,
}

/// Runs `job`; `started` gets the job's control (for Ctrl-C) and the source's event counter
/// before it executes.
///
/// With checkpointing on, the rows must go to [`RowOutput::Jsonl`]; the job restarts after
/// failures by its restart strategy, and `job.runtime.restore` starts it from a checkpoint of
/// an earlier run, whose committed rows it continues.
pub fn run(
    job: &NexmarkJob,
    started: impl FnOnce(Arc<JobControl>, Arc<EventsRead>),
) -> Result<NexmarkRun, String> {
    if job.parallelism == 0 {
        return Err("parallelism must be at least 1".into());
    }
    let checkpointed = job.runtime.checkpoint.is_some();
    let target = match &job.output {
        RowOutput::Jsonl(dir) => {
            let outputs = job_outputs(dir, &job.runtime)?;
            let file = outputs
                .file(&job.query.rows_file())
                .map_err(|e| e.to_string())?;
            Target::Jsonl(outputs, file)
        }
        RowOutput::Discard | RowOutput::Collect(_) if checkpointed => {
            return Err(
                "with checkpoints the rows go to a transactional JSON-lines file: discarded or collected rows could not be counted once over restarts"
                    .into(),
            );
        }
        RowOutput::Discard => Target::Discard,
        RowOutput::Collect(rows) => Target::Collect(Arc::clone(rows)),
    };
    let source = NexmarkSource::new(job.events.clone())?;
    let events_read = source.events_read();
    let emit = match job.watermarks {
        Watermarks::Periodic(interval) => WatermarkEmit::Periodic(interval),
        Watermarks::EndOfInput => WatermarkEmit::EndOfInput,
    };
    let weir_job = Job::new(RuntimeConfig {
        committer: match &target {
            Target::Jsonl(outputs, _) => outputs.committer(),
            Target::Discard | Target::Collect(_) => None,
        },
        ..job.runtime.clone()
    });
    let events = weir_job.source_with_watermarks(
        "nexmark",
        job.parallelism,
        source,
        watermarks(job.out_of_orderness, emit),
    );
    let rows = build(job.query, events, job.parallelism, job.aggregation);
    let sink_parallelism = rows.parallelism();
    let received = Arc::new(AtomicU64::new(0));
    let rows_path = match target {
        Target::Jsonl(_, file) => {
            let path = file.path().to_path_buf();
            rows.try_sink("sink", sink_parallelism, move |subtask| {
                Ok(file.writer::<Row>(subtask)?)
            });
            Some(path)
        }
        Target::Discard | Target::Collect(_) => {
            let total = Arc::clone(&received);
            rows.sink("sink", sink_parallelism, move |_| RowSink {
                collect: match &target {
                    Target::Collect(rows) => Some(CollectSink::new(Arc::clone(rows))),
                    _ => None,
                },
                count: 0,
                total: Arc::clone(&total),
            });
            None
        }
    };
    started(weir_job.control(), Arc::clone(&events_read));
    let start = Instant::now();
    let result = weir_job.execute().map_err(|e| e.to_string())?;
    let wall = start.elapsed();
    let rows_out = match rows_path {
        Some(path) => committed_rows(&path)?,
        None => received.load(Ordering::Relaxed),
    };
    Ok(NexmarkRun {
        events_in: events_read.at_end(job.runtime.restore.is_some()),
        rows_out,
        wall,
        result,
    })
}

/// What [`source_rate`] measured.
#[derive(Debug, Clone, Copy)]
pub struct SourceRun {
    /// Events read.
    pub events_in: u64,
    /// From the start of the job to its end.
    pub wall: Duration,
    /// The source's subtasks (one thread each).
    pub subtasks: usize,
}

/// The generator's own rate inside weir: `events` read by `parallelism` source subtasks,
/// each chained straight into a sink that drops them (no exchange, no operator), with
/// `runtime`'s settings but no checkpoints, restore or injected failures. The ceiling of
/// every query over the same events.
pub fn source_rate(
    events: &EventsConfig,
    parallelism: usize,
    watermarks: Watermarks,
    runtime: &RuntimeConfig,
) -> Result<SourceRun, String> {
    let source = NexmarkSource::new(events.clone())?;
    let events_read = source.events_read();
    let emit = match watermarks {
        Watermarks::Periodic(interval) => WatermarkEmit::Periodic(interval),
        Watermarks::EndOfInput => WatermarkEmit::EndOfInput,
    };
    let job = Job::new(RuntimeConfig {
        checkpoint: None,
        restore: None,
        inject_failures: None,
        committer: None,
        latency_interval: None,
        ..runtime.clone()
    });
    job.source_with_watermarks(
        "nexmark",
        parallelism.max(1),
        source,
        super::source::watermarks(Duration::ZERO, emit),
    )
    .sink("discard", parallelism.max(1), |_| DiscardEvents);
    let start = Instant::now();
    job.execute().map_err(|e| e.to_string())?;
    Ok(SourceRun {
        events_in: events_read.at_end(false),
        wall: start.elapsed(),
        subtasks: parallelism.max(1),
    })
}

/// Drops every event.
struct DiscardEvents;

impl Sink<Event> for DiscardEvents {
    #[inline]
    fn write(&mut self, event: Event) -> Result<(), OperatorError> {
        std::hint::black_box(event);
        Ok(())
    }
}

/// The rows the file at `path` holds, each checked to be a whole JSON line: with
/// checkpointing, exactly the committed rows of every attempt.
fn committed_rows(path: &Path) -> Result<u64, String> {
    let mut rows = 0;
    each_line(path, |_: serde::de::IgnoredAny| rows += 1)?;
    Ok(rows)
}

/// Builds `query` on the event stream; the result is the stream of rows for the sink.
pub fn build(
    query: Query,
    events: Stream<Event>,
    parallelism: usize,
    aggregation: Aggregation,
) -> Stream<Row> {
    match query {
        Query::Q0 => events.flat_map("q0: bids", |event, out| {
            if let Event::Bid(bid) = event {
                out.collect(Row::Bid(bid));
            }
            Ok(())
        }),
        Query::Q1 => events.flat_map("q1: bids in euros", |event, out| {
            if let Event::Bid(bid) = event {
                out.collect(Row::Bid(to_euros(bid)));
            }
            Ok(())
        }),
        Query::Q2 => events.flat_map("q2: bids on auctions % 123", |event, out| {
            if let Event::Bid(bid) = event
                && bid.auction % Q2_MODULUS == 0
            {
                out.collect(Row::AuctionPrice(AuctionPrice {
                    auction: bid.auction,
                    price: bid.price,
                }));
            }
            Ok(())
        }),
        Query::Q5 => q5(bids(events), parallelism),
        Query::Q7 => q7(bids(events), parallelism, aggregation),
        Query::Q8 => q8(events, parallelism),
    }
}

/// q1's conversion, in integer cents: `price * 0.908`, rounded down.
#[inline]
pub fn to_euros(bid: Bid) -> Bid {
    Bid {
        price: bid.price * 908 / 1000,
        ..bid
    }
}

fn bids(events: Stream<Event>) -> Stream<Bid> {
    events.flat_map("bids", |event, out| {
        if let Event::Bid(bid) = event {
            out.collect(bid);
        }
        Ok(())
    })
}

fn spec<T>(
    assigner: WindowAssigner,
    timestamp: impl Fn(&T) -> i64 + Send + Sync + 'static,
) -> WindowSpec<T> {
    WindowSpec {
        assigner,
        allowed_lateness_ms: 0,
        timestamp: Arc::new(timestamp),
        late: None,
        late_partials: None,
    }
}

/// q5: bids per auction per sliding window, then per window (keyed by its start, fired by the
/// same watermark right after the counts) the auctions with the highest count.
fn q5(bids: Stream<Bid>, parallelism: usize) -> Stream<Row> {
    bids.key_by(|b: &Bid| b.auction)
        .window(
            "q5: bids per auction",
            parallelism,
            spec(
                WindowAssigner::sliding(Q5_SIZE_MS, Q5_SLIDE_MS),
                |b: &Bid| b.date_time,
            ),
            Count,
        )
        .key_by(|r: &WindowResult<u64, u64>| r.window.start)
        .window(
            "q5: hottest per window",
            parallelism,
            // A count's window [s, s + size) ends on a multiple of the slide, so its last
            // millisecond lies in the slide-long tumbling window that ends with it.
            spec(
                WindowAssigner::tumbling(Q5_SLIDE_MS),
                |r: &WindowResult<u64, u64>| r.window.max_timestamp(),
            ),
            MaxCount,
        )
        .flat_map("q5: rows", |r, out| {
            let (num, auctions) = r.value;
            for auction in auctions {
                out.collect(Row::HotItem(HotItem {
                    window_start: r.key,
                    window_end: r.key + Q5_SIZE_MS,
                    auction,
                    num,
                }));
            }
            Ok(())
        })
}

/// The highest count of a window and the auctions that have it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaxCount;

impl AggregateFunction<WindowResult<u64, u64>> for MaxCount {
    type Acc = (u64, Vec<u64>);
    type Out = (u64, Vec<u64>);

    fn create(&self) -> Self::Acc {
        (0, Vec::new())
    }

    #[inline]
    fn add(&self, acc: &mut Self::Acc, input: &WindowResult<u64, u64>) {
        if input.value > acc.0 || acc.1.is_empty() {
            acc.0 = input.value;
            acc.1.clear();
            acc.1.push(input.key);
        } else if input.value == acc.0 {
            acc.1.push(input.key);
        }
    }

    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        if other.1.is_empty() || other.0 < acc.0 {
            return;
        }
        if other.0 > acc.0 || acc.1.is_empty() {
            *acc = other.clone();
        } else {
            acc.1.extend_from_slice(&other.1);
        }
    }

    fn result(&self, acc: &Self::Acc) -> Self::Out {
        let mut auctions = acc.1.clone();
        auctions.sort_unstable();
        (acc.0, auctions)
    }
}

/// q7: the highest bid(s) of each tumbling window over all bids.
fn q7(bids: Stream<Bid>, parallelism: usize, aggregation: Aggregation) -> Stream<Row> {
    let mode = match aggregation {
        Aggregation::WindowAll => GlobalAggregation::WindowAll,
        Aggregation::Parallel => GlobalAggregation::Parallel { parallelism },
    };
    bids.window_global(
        "q7: highest bid",
        mode,
        spec(WindowAssigner::tumbling(TUMBLE_MS), |b: &Bid| b.date_time),
        MaxBid,
    )
    .flat_map("q7: rows", |r, out| {
        for bid in r.value {
            out.collect(Row::HighestBid(HighestBid {
                window_start: r.window.start,
                window_end: r.window.end,
                auction: bid.auction,
                bidder: bid.bidder,
                price: bid.price,
                date_time: bid.date_time,
            }));
        }
        Ok(())
    })
}

/// The bids with the highest price (all of them on a tie).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaxBids(pub Vec<Bid>);

impl MaxBids {
    #[inline]
    fn price(&self) -> Option<u64> {
        self.0.first().map(|b| b.price)
    }
}

impl Codec for MaxBids {
    fn encoded_len(&self) -> usize {
        4 + self.0.iter().map(Codec::encoded_len).sum::<usize>()
    }
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_u32(u32::try_from(self.0.len()).expect("fewer than 2^32 tied bids"));
        for bid in &self.0 {
            bid.encode(out);
        }
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let n = input.take_u32()? as usize;
        let mut bids = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            bids.push(Bid::decode(input)?);
        }
        Ok(Self(bids))
    }
}

/// Keeps the highest bids.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaxBid;

impl AggregateFunction<Bid> for MaxBid {
    type Acc = MaxBids;
    type Out = Vec<Bid>;

    fn create(&self) -> MaxBids {
        MaxBids::default()
    }

    #[inline]
    fn add(&self, acc: &mut MaxBids, bid: &Bid) {
        match acc.price() {
            Some(price) if bid.price < price => {}
            Some(price) if bid.price == price => acc.0.push(*bid),
            _ => {
                acc.0.clear();
                acc.0.push(*bid);
            }
        }
    }

    fn merge(&self, acc: &mut MaxBids, other: &MaxBids) {
        match (acc.price(), other.price()) {
            (_, None) => {}
            (Some(a), Some(b)) if b < a => {}
            (Some(a), Some(b)) if a == b => acc.0.extend_from_slice(&other.0),
            _ => acc.0.clone_from(&other.0),
        }
    }

    fn result(&self, acc: &MaxBids) -> Vec<Bid> {
        let mut bids = acc.0.clone();
        bids.sort_unstable();
        bids
    }
}

/// q8: persons and auctions keyed by person id and seller, one tumbling window per key.
fn q8(events: Stream<Event>, parallelism: usize) -> Stream<Row> {
    events
        .filter("q8: persons and auctions", |e| !matches!(e, Event::Bid(_)))
        .key_by(|e: &Event| match e {
            Event::Person(p) => p.id,
            Event::Auction(a) => a.seller,
            Event::Bid(b) => b.bidder,
        })
        .window(
            "q8: new sellers",
            parallelism,
            spec(WindowAssigner::tumbling(TUMBLE_MS), Event::date_time),
            NewSellerOf,
        )
        .flat_map("q8: rows", |r, out| {
            if let Some(name) = r.value {
                out.collect(Row::NewSeller(NewSeller {
                    id: r.key,
                    name,
                    window_start: r.window.start,
                }));
            }
            Ok(())
        })
}

/// Whether a person was created (with the name) and opened an auction in one window: 3
/// bytes, `Copy` (the name is a [`Word`], an index into the generator's list of names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seller {
    /// The name, if the person was created in the window.
    pub created: Option<Word>,
    /// Whether they opened an auction in the window.
    pub opened: bool,
}

/// Encoded as the name's presence and index, and the flag, as the window state checkpoints
/// it.
impl Codec for Seller {
    fn encoded_len(&self) -> usize {
        3
    }
    fn encode(&self, out: &mut Encoder<'_>) {
        self.created.is_some().encode(out);
        out.put_u8(self.created.map_or(0, Word::index));
        self.opened.encode(out);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let created = bool::decode(input)?;
        let name = decode_word(WordList::FullName, input)?;
        Ok(Self {
            created: created.then_some(name),
            opened: bool::decode(input)?,
        })
    }
}

/// Remembers whether a person was created and opened an auction; the result is their name
/// when both happened.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewSellerOf;

impl AggregateFunction<Event> for NewSellerOf {
    type Acc = Seller;
    type Out = Option<Word>;

    fn create(&self) -> Seller {
        Seller::default()
    }

    #[inline]
    fn add(&self, acc: &mut Seller, event: &Event) {
        match event {
            Event::Person(p) => {
                acc.created.get_or_insert(p.name);
            }
            Event::Auction(_) => acc.opened = true,
            Event::Bid(_) => {}
        }
    }

    fn merge(&self, acc: &mut Seller, other: &Seller) {
        acc.created = acc.created.or(other.created);
        acc.opened |= other.opened;
    }

    fn result(&self, acc: &Seller) -> Option<Word> {
        acc.created.filter(|_| acc.opened)
    }
}

/// Where the rows go, opened.
enum Target {
    Discard,
    Jsonl(JobOutputs, OutputFile),
    Collect(Arc<Mutex<Vec<Row>>>),
}

/// The sink of a run without a rows file: counts its rows and discards or collects them. Its
/// count is not state: such runs do not checkpoint.
struct RowSink {
    collect: Option<CollectSink<Row>>,
    count: u64,
    total: Arc<AtomicU64>,
}

impl Sink<Row> for RowSink {
    #[inline]
    fn write(&mut self, row: Row) -> Result<(), OperatorError> {
        self.count += 1;
        match &mut self.collect {
            None => {
                std::hint::black_box(row);
                Ok(())
            }
            Some(sink) => sink.write(row),
        }
    }

    fn finish(&mut self) -> Result<(), OperatorError> {
        self.total
            .fetch_add(std::mem::take(&mut self.count), Ordering::Relaxed);
        match &mut self.collect {
            None => Ok(()),
            Some(sink) => sink.finish(),
        }
    }
}
