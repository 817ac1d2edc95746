//! Every Nexmark query on weir against a brute-force reference over the generator's events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_bench::nexmark::reference;
use weir_bench::nexmark::{
    Aggregation, Event, EventsConfig, Generator, NexmarkJob, Query, Row, RowOutput, Watermarks, run,
};
use weir_core::RuntimeConfig;

const EVENTS: u64 = 20_000;

fn events_config(events: u64) -> EventsConfig {
    EventsConfig {
        events,
        partitions: 3,
        // 2 000 events per second of event time: 20 000 events span 10 s windows and q5's
        // slides several times.
        rate: 2_000,
        ..EventsConfig::default()
    }
}

fn run_query(
    query: Query,
    events: u64,
    parallelism: usize,
    aggregation: Aggregation,
    watermarks: Watermarks,
) -> Vec<Row> {
    let rows = Arc::new(Mutex::new(Vec::new()));
    let job = NexmarkJob {
        query,
        events: events_config(events),
        parallelism,
        aggregation,
        watermarks,
        out_of_orderness: Duration::ZERO,
        runtime: RuntimeConfig {
            pin: false,
            ..RuntimeConfig::default()
        },
        output: RowOutput::Collect(Arc::clone(&rows)),
    };
    let outcome = run(&job, |_, _| {}).unwrap_or_else(|e| panic!("{}: {e}", query.name()));
    assert_eq!(outcome.events_in, events);
    let late: u64 = outcome
        .result
        .tasks
        .iter()
        .map(|t| t.numLateRecordsDropped)
        .sum();
    assert_eq!(late, 0, "{}: no event is late", query.name());
    let mut rows = std::mem::take(&mut *rows.lock().unwrap());
    assert_eq!(outcome.rows_out, rows.len() as u64);
    rows.sort();
    rows
}

fn expected(query: Query, events: u64) -> Vec<Row> {
    // The crate's own generator: the jobs run on weir's, so this also checks the two agree.
    let config = EventsConfig {
        generator: Generator::Crate,
        ..events_config(events)
    };
    let all: Vec<Event> = config.generate_all().unwrap();
    reference::rows(query, &all)
}

fn check_batch(query: Query) -> Vec<Row> {
    let want = expected(query, EVENTS);
    assert!(!want.is_empty(), "{}: the reference has rows", query.name());
    let got = run_query(
        query,
        EVENTS,
        2,
        Aggregation::Parallel,
        Watermarks::EndOfInput,
    );
    assert_eq!(got.len(), want.len(), "{}: row count", query.name());
    assert!(
        got == want,
        "{}: rows differ from the reference",
        query.name()
    );
    got
}

#[test]
fn q0_passes_every_bid_through() {
    let rows = check_batch(Query::Q0);
    // 46 of every 50 events are bids.
    assert_eq!(rows.len() as u64, EVENTS / 50 * 46);
}

#[test]
fn q1_converts_every_price_to_euros() {
    check_batch(Query::Q1);
}

#[test]
fn q2_keeps_bids_on_auctions_divisible_by_123() {
    let rows = check_batch(Query::Q2);
    assert!(
        rows.iter()
            .all(|r| matches!(r, Row::AuctionPrice(p) if p.auction % 123 == 0))
    );
}

#[test]
fn q5_finds_the_hottest_auctions_of_every_sliding_window() {
    let rows = check_batch(Query::Q5);
    let windows: std::collections::BTreeSet<i64> = rows
        .iter()
        .map(|r| match r {
            Row::HotItem(h) => h.window_start,
            other => panic!("not a q5 row: {other:?}"),
        })
        .collect();
    assert!(windows.len() > 5, "{} windows", windows.len());
}

#[test]
fn q7_finds_the_highest_bid_of_every_window_in_both_aggregation_modes() {
    let parallel = check_batch(Query::Q7);
    let window_all = run_query(
        Query::Q7,
        EVENTS,
        2,
        Aggregation::WindowAll,
        Watermarks::EndOfInput,
    );
    assert!(window_all == parallel, "windowAll and parallel disagree");
    // 20 000 events at 2 000 per second: 10 s, so at least one whole 10 s window.
    assert!(!parallel.is_empty());
}

#[test]
fn q8_finds_people_who_sell_in_their_first_window() {
    check_batch(Query::Q8);
}

#[test]
fn streaming_runs_with_periodic_watermarks_give_the_batch_results() {
    // The generator emits in order, so with watermarks every millisecond nothing is late and
    // every window is complete.
    for query in [Query::Q5, Query::Q7, Query::Q8] {
        let got = run_query(
            query,
            EVENTS,
            3,
            Aggregation::Parallel,
            Watermarks::Periodic(Duration::from_millis(1)),
        );
        assert!(
            got == expected(query, EVENTS),
            "{}: streaming rows differ",
            query.name()
        );
    }
}
