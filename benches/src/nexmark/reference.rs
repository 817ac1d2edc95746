//! The queries computed directly over a list of events, with maps and loops: the reference the
//! engine's results are checked against. Rows come back sorted.

use std::collections::{BTreeMap, BTreeSet};

use super::generator::Word;
use super::model::{AuctionPrice, Event, HighestBid, HotItem, NewSeller, Row};
use super::queries::{Q2_MODULUS, Q5_SIZE_MS, Q5_SLIDE_MS, Query, TUMBLE_MS, to_euros};

/// The rows of `query` over `events`, sorted.
pub fn rows(query: Query, events: &[Event]) -> Vec<Row> {
    let bids = || events.iter().filter_map(|e| e.into_bid());
    let mut rows: Vec<Row> = match query {
        Query::Q0 => bids().map(Row::Bid).collect(),
        Query::Q1 => bids().map(|b| Row::Bid(to_euros(b))).collect(),
        Query::Q2 => bids()
            .filter(|b| b.auction % Q2_MODULUS == 0)
            .map(|b| {
                Row::AuctionPrice(AuctionPrice {
                    auction: b.auction,
                    price: b.price,
                })
            })
            .collect(),
        Query::Q5 => {
            // (window start, auction) -> bids, over every sliding window a bid is in.
            let mut counts: BTreeMap<(i64, u64), u64> = BTreeMap::new();
            for b in bids() {
                let last_start = b.date_time.div_euclid(Q5_SLIDE_MS) * Q5_SLIDE_MS;
                let mut start = last_start;
                while start > b.date_time - Q5_SIZE_MS {
                    *counts.entry((start, b.auction)).or_default() += 1;
                    start -= Q5_SLIDE_MS;
                }
            }
            let mut max: BTreeMap<i64, u64> = BTreeMap::new();
            for (&(start, _), &n) in &counts {
                let m = max.entry(start).or_default();
                *m = (*m).max(n);
            }
            counts
                .into_iter()
                .filter(|&((start, _), n)| n == max[&start])
                .map(|((start, auction), num)| {
                    Row::HotItem(HotItem {
                        window_start: start,
                        window_end: start + Q5_SIZE_MS,
                        auction,
                        num,
                    })
                })
                .collect()
        }
        Query::Q7 => {
            let mut max: BTreeMap<i64, u64> = BTreeMap::new();
            for b in bids() {
                let start = b.date_time.div_euclid(TUMBLE_MS) * TUMBLE_MS;
                let m = max.entry(start).or_default();
                *m = (*m).max(b.price);
            }
            bids()
                .filter(|b| max[&(b.date_time.div_euclid(TUMBLE_MS) * TUMBLE_MS)] == b.price)
                .map(|b| {
                    let start = b.date_time.div_euclid(TUMBLE_MS) * TUMBLE_MS;
                    Row::HighestBid(HighestBid {
                        window_start: start,
                        window_end: start + TUMBLE_MS,
                        auction: b.auction,
                        bidder: b.bidder,
                        price: b.price,
                        date_time: b.date_time,
                    })
                })
                .collect()
        }
        Query::Q8 => {
            let window = |t: i64| t.div_euclid(TUMBLE_MS) * TUMBLE_MS;
            let mut people: BTreeMap<(u64, i64), Word> = BTreeMap::new();
            let mut sellers: BTreeSet<(u64, i64)> = BTreeSet::new();
            for e in events {
                match e {
                    Event::Person(p) => {
                        people.insert((p.id, window(p.date_time)), p.name);
                    }
                    Event::Auction(a) => {
                        sellers.insert((a.seller, window(a.date_time)));
                    }
                    Event::Bid(_) => {}
                }
            }
            people
                .into_iter()
                .filter(|(key, _)| sellers.contains(key))
                .map(|((id, window_start), name)| {
                    Row::NewSeller(NewSeller {
                        id,
                        name,
                        window_start,
                    })
                })
                .collect()
        }
    };
    rows.sort();
    rows
}
