//! A Nexmark generator that allocates nothing per event: the `nexmark` crate's events,
//! field for field for the fields weir's [`Event`] keeps, without making the strings it drops.
//!
//! The crate (0.2) makes event `n` from a `SmallRng` seeded with the event's id, drawing its
//! fields in a fixed order, and then its strings (e-mail, credit card, item name and
//! description, channel, URL, the padding `extra`): a bid's `extra` alone is some 70 draws
//! and an allocation, and every bid clones a channel and a URL. This generator seeds the same
//! RNG (rand 0.8's `SmallRng`, the crate's, as [`EventRng`]: the same state, seeded cheaper)
//! and makes the same draws in the same order up to
//! the last field weir keeps, discarding the draws of strings it does not keep (a person's
//! e-mail and credit card come before its city and state; an auction's item name and
//! description before its prices), and stops there. The same event number gives the same
//! event; `tests/nexmark.rs` checks it against the crate.
//!
//! A person's name, city and state come from the crate's fixed word lists, so they are
//! [`Word`]s (an index into a static list), and every [`Event`] is `Copy`: O(1) per event, no
//! allocation.
//!
//! Supported: the crate's configuration with one rate (`first_rate == next_rate`, as
//! [`super::EventsConfig`] sets it) and its default word lists; [`EventModel::new`] refuses
//! anything else rather than making other events.

use std::fmt;
use std::sync::OnceLock;

use ::nexmark::config::NexmarkConfig;
use rand08::Rng;
use rand08::seq::SliceRandom;
use serde::Serialize;

use super::model::{Auction, Bid, Event, Person};
use super::rng::EventRng;

/// The crate's first names (its default `first_names`).
pub const FIRST_NAMES: [&str; 11] = [
    "peter", "paul", "luke", "john", "saul", "vicky", "kate", "julie", "sarah", "deiter", "walter",
];
/// The crate's last names (its default `last_names`).
pub const LAST_NAMES: [&str; 9] = [
    "shultz", "abrams", "spencer", "white", "bartels", "walton", "smith", "jones", "noris",
];
/// The crate's US cities (its default `us_cities`).
pub const US_CITIES: [&str; 10] = [
    "phoenix",
    "los angeles",
    "san francisco",
    "boise",
    "portland",
    "bend",
    "redmond",
    "seattle",
    "kent",
    "cheyenne",
];
/// The crate's US states (its default `us_states`).
pub const US_STATES: [&str; 6] = ["az", "ca", "id", "or", "wa", "wy"];

/// The first names' and last names' combinations, `"first last"`, first name major.
fn full_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        FIRST_NAMES
            .iter()
            .flat_map(|first| LAST_NAMES.iter().map(move |last| format!("{first} {last}")))
            .collect()
    })
}

/// Which list a [`Word`] indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WordList {
    /// [`FIRST_NAMES`] × [`LAST_NAMES`]: `"first last"`.
    FullName,
    /// [`US_CITIES`].
    City,
    /// [`US_STATES`].
    State,
}

impl WordList {
    /// The list's words.
    fn len(self) -> usize {
        match self {
            Self::FullName => FIRST_NAMES.len() * LAST_NAMES.len(),
            Self::City => US_CITIES.len(),
            Self::State => US_STATES.len(),
        }
    }

    /// Word `index` of the list (`index < self.len()`).
    fn word(self, index: usize) -> &'static str {
        match self {
            Self::FullName => &full_names()[index],
            Self::City => US_CITIES[index],
            Self::State => US_STATES[index],
        }
    }
}

/// A word of one of the generator's fixed lists: a person's name, city or state. `Copy`,
/// two bytes; compares, orders and hashes as its text.
#[derive(Clone, Copy)]
pub struct Word {
    list: WordList,
    index: u8,
}

impl Word {
    /// Word `index` of `list`, if it has one.
    pub fn new(list: WordList, index: usize) -> Option<Self> {
        (index < list.len()).then_some(Self {
            list,
            index: index as u8,
        })
    }

    /// The word of `list` whose text is `text`, if any (O(list length)).
    pub fn find(list: WordList, text: &str) -> Option<Self> {
        (0..list.len())
            .find(|&i| list.word(i) == text)
            .and_then(|i| Self::new(list, i))
    }

    /// The list it is from.
    pub fn list(self) -> WordList {
        self.list
    }

    /// Its position in its list.
    pub fn index(self) -> u8 {
        self.index
    }

    /// Its text.
    pub fn as_str(self) -> &'static str {
        self.list.word(usize::from(self.index))
    }
}

impl PartialEq for Word {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Word {}

impl PartialOrd for Word {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Word {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Word {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Word {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The crate's constant: 1 in this many people, auctions and bidders are hot.
const HOT_RATIO: usize = 100;
/// The lengths of the strings the crate draws before the fields weir keeps.
const EMAIL_USER_CHARS: usize = 7;
const EMAIL_DOMAIN_CHARS: usize = 5;
const CREDIT_CARD_GROUPS: usize = 4;
const ITEM_NAME_CHARS: usize = 20;
const DESCRIPTION_CHARS: usize = 100;

/// The crate's event model for one configuration: what event number `n` is, computed from
/// `n` alone in O(1) without allocating.
#[derive(Debug, Clone)]
pub struct EventModel {
    cfg: NexmarkConfig,
    proportion_denominator: usize,
    /// Microseconds between events (the crate's one inter-event delay).
    inter_event_delay_us: f32,
}

impl EventModel {
    /// The model of `cfg`; an error for what the crate would generate differently from this
    /// model: several rates (a rate shape) or other word lists than the defaults.
    pub fn new(cfg: &NexmarkConfig) -> Result<Self, String> {
        if cfg.first_rate != cfg.next_rate {
            return Err(format!(
                "the allocation-free Nexmark generator takes one rate, not {} then {} (use the crate's generator)",
                cfg.first_rate, cfg.next_rate
            ));
        }
        let same = |words: &[String], ours: &[&str]| words.iter().eq(ours.iter().copied());
        let lists_ok = same(&cfg.first_names, &FIRST_NAMES)
            && same(&cfg.last_names, &LAST_NAMES)
            && same(&cfg.us_cities, &US_CITIES)
            && same(&cfg.us_states, &US_STATES);
        if !lists_ok {
            return Err(
                "the allocation-free Nexmark generator knows the crate's default word lists only"
                    .into(),
            );
        }
        if cfg.out_of_order_group_size == 0 || cfg.first_rate == 0 {
            return Err("the Nexmark configuration has a zero group size or rate".into());
        }
        let proportion_denominator =
            cfg.person_proportion + cfg.auction_proportion + cfg.bid_proportion;
        if cfg.person_proportion == 0 || cfg.auction_proportion == 0 {
            return Err("the Nexmark configuration has no persons or no auctions".into());
        }
        // As the crate computes it: `us_per_unit / rate * generators`, in f32.
        let inter_event_delay_us =
            cfg.us_per_unit as f32 / cfg.first_rate as f32 * cfg.num_event_generators as f32;
        Ok(Self {
            cfg: cfg.clone(),
            proportion_denominator,
            inter_event_delay_us,
        })
    }

    /// The event the crate's `EventGenerator` yields at its offset `offset` (its count of
    /// events so far times its step, plus its start offset).
    #[inline]
    pub fn event(&self, offset: u64) -> Event {
        let n = self.adjusted_event(offset as usize);
        let id = EventId::new(self.cfg.first_event_id + n, self.proportion_denominator);
        let time = self.timestamp(n);
        // The crate types event numbers and places ids; they coincide from id 0.
        let rem = match self.cfg.first_event_id {
            0 => id.offset,
            _ => n % self.proportion_denominator,
        };
        if rem < self.cfg.person_proportion {
            Event::Person(self.person(&id, time))
        } else if rem < self.cfg.person_proportion + self.cfg.auction_proportion {
            Event::Auction(self.auction(n, &id, time))
        } else {
            Event::Bid(self.bid(&id, time))
        }
    }

    /// The crate's `next_adjusted_event`: the event number of the `events_so_far`-th event.
    #[inline]
    fn adjusted_event(&self, events_so_far: usize) -> usize {
        let n = self.cfg.out_of_order_group_size;
        let number = self.cfg.first_event_number + events_so_far;
        if n == 1 {
            // No out-of-order groups (the default): no divisions.
            return number;
        }
        (number / n) * n + number.wrapping_mul(953) % n
    }

    /// The crate's `event_timestamp` with one rate.
    #[inline]
    fn timestamp(&self, event_number: usize) -> u64 {
        self.cfg.base_time
            + round_to_u64((event_number as f32 * self.inter_event_delay_us) / 1000.0)
    }

    // Inlined into `event`, as `auction` and `bid` are: returned through memory, the event's
    // fields were stored a word at a time and loaded two words at a time, a store-forwarding
    // stall per event.
    #[inline(always)]
    fn person(&self, id: &EventId, time: u64) -> Person {
        let rng = &mut EventRng::seeded(id.id as u64);
        let person_id = self.last_person_id(id) + self.cfg.first_person_id;
        let first = choose_index(rng, FIRST_NAMES.len());
        let last = choose_index(rng, LAST_NAMES.len());
        // The e-mail's letters and the credit card's groups, drawn as the crate draws them.
        for _ in 0..EMAIL_USER_CHARS + EMAIL_DOMAIN_CHARS {
            rng.gen_range(b'a'..=b'z');
        }
        for _ in 0..CREDIT_CARD_GROUPS {
            rng.gen_range(0..10_000i32);
        }
        let city = choose_index(rng, US_CITIES.len());
        let state = choose_index(rng, US_STATES.len());
        // The indices are below the lists' lengths, as `choose_index` draws them.
        let word = |list, index: usize| Word {
            list,
            index: index as u8,
        };
        Person {
            id: person_id as u64,
            name: word(WordList::FullName, first * LAST_NAMES.len() + last),
            city: word(WordList::City, city),
            state: word(WordList::State, state),
            date_time: time as i64,
        }
    }

    #[inline(always)]
    fn auction(&self, event_number: usize, id: &EventId, time: u64) -> Auction {
        let cfg = &self.cfg;
        let rng = &mut EventRng::seeded(id.id as u64);
        let auction_id = self.last_auction_id(id) + cfg.first_auction_id;
        // The item name's and description's letters.
        for _ in 0..ITEM_NAME_CHARS + DESCRIPTION_CHARS {
            rng.gen_range(b'a'..=b'z');
        }
        let initial_bid = price(rng);
        let reserve = initial_bid + price(rng);
        let expires = time + self.auction_length(event_number, rng, time);
        let seller = if rng.gen_range(0..cfg.hot_seller_ratio) > 0 {
            (self.last_person_id(id) / HOT_RATIO) * HOT_RATIO
        } else {
            self.next_person_id(id, rng)
        } + cfg.first_person_id;
        let category = cfg.first_category_id + rng.gen_range(0..cfg.num_categories);
        Auction {
            id: auction_id as u64,
            seller: seller as u64,
            category: category as u64,
            initial_bid: initial_bid as u64,
            reserve: reserve as u64,
            date_time: time as i64,
            expires: expires as i64,
        }
    }

    #[inline(always)]
    fn bid(&self, id: &EventId, time: u64) -> Bid {
        let cfg = &self.cfg;
        let rng = &mut EventRng::seeded(id.id as u64);
        let auction = if 0 < rng.gen_range(0..cfg.hot_auction_ratio) {
            (self.last_auction_id(id) / HOT_RATIO) * HOT_RATIO
        } else {
            self.next_auction_id(id, rng)
        };
        let bidder = if 0 < rng.gen_range(0..cfg.hot_bidder_ratio) {
            (self.last_person_id(id) / HOT_RATIO) * HOT_RATIO + 1
        } else {
            self.next_person_id(id, rng)
        };
        Bid {
            auction: (auction + cfg.first_auction_id) as u64,
            bidder: (bidder + cfg.first_person_id) as u64,
            price: price(rng) as u64,
            date_time: time as i64,
        }
    }

    /// The crate's `Person::last_id`.
    #[inline]
    fn last_person_id(&self, id: &EventId) -> usize {
        id.epoch * self.cfg.person_proportion + id.offset.min(self.cfg.person_proportion - 1)
    }

    /// The crate's `Person::next_id`.
    #[inline]
    fn next_person_id(&self, id: &EventId, rng: &mut EventRng) -> usize {
        let people = self.last_person_id(id) + 1;
        let active = people.min(self.cfg.active_people);
        people - active + rng.gen_range(0..active + self.cfg.person_id_lead)
    }

    /// The crate's `Auction::last_id` (with its wrap-around where an epoch would go below
    /// 0, which no auction or bid event reaches).
    #[inline]
    fn last_auction_id(&self, id: &EventId) -> usize {
        let cfg = &self.cfg;
        let (mut epoch, mut offset) = (id.epoch, id.offset);
        if offset < cfg.person_proportion {
            epoch = epoch.wrapping_sub(1);
            offset = cfg.auction_proportion - 1;
        } else if cfg.person_proportion + cfg.auction_proportion <= offset {
            offset = cfg.auction_proportion - 1;
        } else {
            offset -= cfg.person_proportion;
        }
        epoch
            .wrapping_mul(cfg.auction_proportion)
            .wrapping_add(offset)
    }

    /// The crate's `Auction::next_id`.
    #[inline]
    fn next_auction_id(&self, id: &EventId, rng: &mut EventRng) -> usize {
        let max_auction = self.last_auction_id(id);
        let min_auction = max_auction.saturating_sub(self.cfg.in_flight_auctions);
        min_auction + rng.gen_range(0..max_auction - min_auction + 1 + self.cfg.auction_id_lead)
    }

    /// The crate's `Auction::next_length`.
    fn auction_length(&self, event_number: usize, rng: &mut EventRng, time: u64) -> u64 {
        let cfg = &self.cfg;
        let events_for_auctions =
            (cfg.in_flight_auctions * self.proportion_denominator) / cfg.auction_proportion;
        let future_auction = self.timestamp(event_number + events_for_auctions);
        let horizon = future_auction - time;
        1 + rng.gen_range(0..(horizon * 2).max(1))
    }
}

/// An event id with its place in the person/auction/bid cycle, divided once per event.
#[derive(Debug, Clone, Copy)]
struct EventId {
    id: usize,
    /// `id / proportion_denominator`.
    epoch: usize,
    /// `id % proportion_denominator`.
    offset: usize,
}

impl EventId {
    #[inline]
    fn new(id: usize, proportion_denominator: usize) -> Self {
        Self {
            id,
            epoch: id / proportion_denominator,
            offset: id % proportion_denominator,
        }
    }
}

/// `x.round() as u64` (half away from zero, saturating, NaN to 0), without a call to libm's
/// `roundf` where `0 <= x < 2^63` (every price and timestamp): the truncation, plus one where
/// the fraction is at least a half. Exact: `x` minus its truncation is exact in `f32`, and
/// from 2^23 on every `f32` is an integer. The truncation is a signed conversion (on x86-64
/// one instruction and a clamp; `x as u64` branches, converts twice and clamps).
#[inline]
pub fn round_to_u64(x: f32) -> u64 {
    /// 2^63, exact in `f32`.
    const I64_END: f32 = 9_223_372_036_854_775_808.0;
    if !(0.0..I64_END).contains(&x) {
        return x.round() as u64;
    }
    let truncated = x as i64;
    let up = x - truncated as f32 >= 0.5;
    // Below 2^63 - 2^39 (the largest `f32` below 2^63): the sum cannot overflow.
    truncated as u64 + u64::from(up)
}

/// The index `SliceRandom::choose` picks in a slice of `len` (`len > 0`), with the same draw.
#[inline]
fn choose_index(rng: &mut EventRng, len: usize) -> usize {
    // `choose` on indices draws exactly as on the crate's word list of the same length.
    const INDICES: [u8; 256] = {
        let mut all = [0u8; 256];
        let mut i = 0;
        while i < 256 {
            all[i] = i as u8;
            i += 1;
        }
        all
    };
    INDICES[..len].choose(rng).map_or(0, |&i| usize::from(i))
}

/// The crate's `gen_price`: cents, log-uniform from 1 to a million dollars.
#[inline]
fn price(rng: &mut EventRng) -> usize {
    round_to_u64(10.0_f32.powf(rng.r#gen::<f32>() * 6.0) * 100.0) as usize
}
