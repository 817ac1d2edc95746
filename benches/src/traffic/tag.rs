//! The tagging step: each record's origin, the per-plate long-term flag, and the counts
//! the job reports.
//!
//! A plate is long-term once it has been seen on [`LONG_TERM_DAYS`] distinct UTC days. Only
//! non-local plates carry the flag, so only they need per-plate state ([`Tagged::new`]).

use serde::{Deserialize, Serialize};
use weir_core::codec::{Codec, DecodeError, Decoder, Encoder};

use super::record::{Home, Origin, TrafficRecord};

/// Distinct UTC days after which a plate is long-term.
pub const LONG_TERM_DAYS: u8 = 3;

const DAY_MS: i64 = 86_400_000;

/// The UTC day number of `ts_ms` (day 0 is 1970-01-01; earlier instants are negative).
#[inline]
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// A plate's long-term state: the distinct days it has been seen on, up to
/// [`LONG_TERM_DAYS`].
///
/// Only the first two days are kept: the third distinct day makes the plate long-term for
/// good, and after it no day needs remembering. Packed: 17 bytes at alignment 1 (a plate's
/// entry in a hash map is 28 bytes instead of 40, so more of them share a cache line), `Copy`
/// (fields are read by value, never by reference).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C, packed)]
pub struct LongTermTracker {
    days: [i64; 2],
    /// Distinct days seen, saturating at [`LONG_TERM_DAYS`].
    distinct: u8,
}

impl LongTermTracker {
    /// Records a sighting on UTC `day`; returns whether the plate is now long-term.
    #[inline]
    pub fn observe(&mut self, day: i64) -> bool {
        let (mut days, distinct) = (self.days, self.distinct);
        if distinct < LONG_TERM_DAYS && !days[..usize::from(distinct)].contains(&day) {
            if let Some(slot) = days.get_mut(usize::from(distinct)) {
                *slot = day;
            }
            self.days = days;
            self.distinct = distinct + 1;
        }
        self.is_long_term()
    }

    /// Whether the plate has been seen on [`LONG_TERM_DAYS`] distinct days.
    #[inline]
    pub fn is_long_term(&self) -> bool {
        self.distinct >= LONG_TERM_DAYS
    }
}

/// Encoded as the two days and the count: 17 bytes.
impl Codec for LongTermTracker {
    const FIXED_SIZE: Option<usize> = Some(17);

    fn encoded_len(&self) -> usize {
        17
    }

    fn encode(&self, out: &mut Encoder<'_>) {
        let days = self.days;
        out.put_i64(days[0]);
        out.put_i64(days[1]);
        out.put_u8(self.distinct);
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let days = [input.take_i64()?, input.take_i64()?];
        let distinct = input.take_u8()?;
        if distinct > LONG_TERM_DAYS {
            return Err(DecodeError::Invalid("long-term day count above 3"));
        }
        Ok(Self { days, distinct })
    }
}

/// A record with its origin and long-term flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tagged {
    /// The record.
    pub record: TrafficRecord,
    /// Where its plate comes from.
    pub origin: Origin,
    /// Whether its plate is non-local and now seen on 3 or more distinct days.
    pub long_term: bool,
}

impl Tagged {
    /// Tags `record`. For a non-local plate, `observe(plate, day)` is called once with the
    /// record's UTC day and must update the plate's [`LongTermTracker`] and return its
    /// answer; for a local plate it is not called, so local plates need no state.
    #[inline]
    pub fn new(
        record: TrafficRecord,
        home: &Home,
        observe: impl FnOnce(&TrafficRecord, i64) -> bool,
    ) -> Self {
        let origin = Origin::of(&record.plate, home);
        Self::with_origin(record, origin, observe)
    }

    /// [`new`](Self::new) for a record whose `origin` the caller found
    /// ([`HomePrefix::origin`](crate::traffic::record::HomePrefix::origin)).
    #[inline]
    pub fn with_origin(
        record: TrafficRecord,
        origin: Origin,
        observe: impl FnOnce(&TrafficRecord, i64) -> bool,
    ) -> Self {
        let long_term = origin != Origin::Local && observe(&record, day_of(record.ts_ms));
        Self {
            record,
            origin,
            long_term,
        }
    }
}

/// Encoded as the record, the origin byte and the flag byte: fixed size, 37 bytes.
impl Codec for Tagged {
    const FIXED_SIZE: Option<usize> = Some(TrafficRecord::ENCODED_BYTES + 2);

    #[inline]
    fn encoded_len(&self) -> usize {
        TrafficRecord::ENCODED_BYTES + 2
    }

    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_fixed(TrafficRecord::ENCODED_BYTES + 2, |out| {
            self.record.encode(out);
            self.origin.encode(out);
            out.put_u8(u8::from(self.long_term));
        });
    }

    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        input.take_fixed(TrafficRecord::ENCODED_BYTES + 2, |input| {
            let record = TrafficRecord::decode(input)?;
            let origin = Origin::decode(input)?;
            let long_term = match input.take_u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Invalid("long-term flag is neither 0 nor 1")),
            };
            Ok(Self {
                record,
                origin,
                long_term,
            })
        })
    }
}

/// Tagged records per origin, indexed by [`Origin::index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginCounts {
    /// Records per origin.
    pub count: [u64; 3],
    /// Records per origin whose plate was long-term when tagged.
    pub long_term: [u64; 3],
}

impl OriginCounts {
    /// Counts one tagged record.
    #[inline]
    pub fn add(&mut self, tagged: &Tagged) {
        let i = tagged.origin.index();
        self.count[i] += 1;
        self.long_term[i] += u64::from(tagged.long_term);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &OriginCounts) {
        for i in 0..3 {
            self.count[i] += other.count[i];
            self.long_term[i] += other.long_term[i];
        }
    }

    /// All tagged records.
    pub fn total(&self) -> u64 {
        self.count.iter().sum()
    }

    /// Exactly three JSON lines, each ending in `\n`, in the order local, province, other:
    /// `{"origin":"local","count":N,"long_term":M}`.
    pub fn to_jsonl(&self) -> String {
        Origin::ALL
            .iter()
            .map(|origin| {
                let i = origin.index();
                format!(
                    "{{\"origin\":\"{}\",\"count\":{},\"long_term\":{}}}\n",
                    origin.as_str(),
                    self.count[i],
                    self.long_term[i]
                )
            })
            .collect()
    }
}

/// Encoded as six `u64`: the counts, then the long-term counts.
impl Codec for OriginCounts {
    const FIXED_SIZE: Option<usize> = Some(6 * 8);

    fn encoded_len(&self) -> usize {
        6 * 8
    }

    fn encode(&self, out: &mut Encoder<'_>) {
        for v in self.count.iter().chain(&self.long_term) {
            out.put_u64(*v);
        }
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let mut counts = Self::default();
        for v in counts.count.iter_mut().chain(&mut counts.long_term) {
            *v = input.take_u64()?;
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use weir_core::codec::encode_to_vec;
    use weir_core::net::element::{self, ControlElement, StreamElement};

    use super::*;
    use crate::traffic::record::Plate;

    fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(value: T) {
        assert_eq!(weir_core::codec::round_trip(&value), Ok(value));
    }

    fn record(ts_ms: i64, plate: &str) -> TrafficRecord {
        TrafficRecord {
            ts_ms,
            plate: Plate::try_from(plate).unwrap(),
            checkpoint_id: 1,
            at: Default::default(),
        }
    }

    #[test]
    fn days_are_utc_and_floor_negative_instants() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(-DAY_MS), -1);
        assert_eq!(day_of(-DAY_MS - 1), -2);
        assert_eq!(day_of(1_772_409_600_000), 20_514);
    }

    #[test]
    fn a_plate_becomes_long_term_on_its_third_distinct_day() {
        let mut tracker = LongTermTracker::default();
        assert!(!tracker.observe(5));
        assert!(!tracker.observe(5));
        assert!(!tracker.observe(3));
        assert!(!tracker.observe(5));
        assert!(!tracker.observe(3));
        assert!(tracker.observe(-1));
        assert!(tracker.observe(5));
        assert!(tracker.observe(100));
        assert_eq!(size_of::<LongTermTracker>(), 17);
        assert_eq!(align_of::<LongTermTracker>(), 1);
        round_trip(tracker);
        round_trip(LongTermTracker::default());
        let mut bad = encode_to_vec(&tracker);
        bad[16] = 4;
        assert!(LongTermTracker::decode(&mut Decoder::new(&bad)).is_err());
    }

    #[test]
    fn only_non_local_plates_consult_state() {
        let home: Home = "浙A".parse().unwrap();
        let local = Tagged::new(record(0, "浙A00001"), &home, |_, _| {
            panic!("local plates need no state")
        });
        assert_eq!((local.origin, local.long_term), (Origin::Local, false));
        let mut tracker = LongTermTracker::default();
        let mut days = Vec::new();
        let mut tag = |ts_ms| {
            Tagged::new(record(ts_ms, "沪B00001"), &home, |_, day| {
                days.push(day);
                tracker.observe(day)
            })
        };
        assert!(!tag(0).long_term);
        assert!(!tag(DAY_MS).long_term);
        let third = tag(-1);
        assert_eq!((third.origin, third.long_term), (Origin::Other, true));
        assert_eq!(days, [0, 1, -1]);
        round_trip(third);
    }

    #[test]
    fn counts_add_merge_and_print_three_lines() {
        let home: Home = "浙A".parse().unwrap();
        let mut counts = OriginCounts::default();
        for (plate, long_term) in [
            ("浙A10000", false),
            ("浙B10000", true),
            ("浙C10000", false),
            ("京A10000", true),
        ] {
            counts.add(&Tagged::new(record(0, plate), &home, |_, _| long_term));
        }
        let mut merged = counts;
        merged.merge(&counts);
        assert_eq!(merged.count, [2, 4, 2]);
        assert_eq!(merged.long_term, [0, 2, 2]);
        assert_eq!(merged.total(), 8);
        assert_eq!(
            merged.to_jsonl(),
            "{\"origin\":\"local\",\"count\":2,\"long_term\":0}\n\
             {\"origin\":\"province\",\"count\":4,\"long_term\":2}\n\
             {\"origin\":\"other\",\"count\":2,\"long_term\":2}\n"
        );
        for line in merged.to_jsonl().lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        round_trip(merged);
    }

    /// Writes `elements` as a writer frames them.
    fn frame(elements: &[StreamElement<Tagged>]) -> Vec<u8> {
        let control = |e: &StreamElement<Tagged>| match *e {
            StreamElement::Record(_) => None,
            StreamElement::Watermark(w) => Some(ControlElement::Watermark(w)),
            StreamElement::Status(s) => Some(ControlElement::Status(s)),
            StreamElement::LatencyMarker(m) => Some(ControlElement::LatencyMarker(m)),
        };
        let mut out = Vec::new();
        for e in elements {
            let start = out.len();
            match (e, control(e)) {
                (StreamElement::Record(r), _) => {
                    out.resize(start + element::record_len(r), 0);
                    element::encode_record(r, &mut Encoder::new(&mut out[start..]));
                }
                (_, Some(c)) => {
                    out.resize(start + c.encoded_len(), 0);
                    c.encode(&mut Encoder::new(&mut out[start..]));
                }
                (_, None) => unreachable!("only records have no control element"),
            }
        }
        out
    }

    proptest::proptest! {
        /// A buffer of tagged records with one byte damaged decodes to an error, or (the
        /// format being checked field by field, every value having one encoding) to elements
        /// that frame back to exactly the damaged bytes: never a panic, never a silent shift.
        #[test]
        fn a_damaged_buffer_is_an_error_or_exactly_what_it_says(
            at in 0usize..4 * 38 + 9,
            value in proptest::prelude::any::<u8>(),
        ) {
            let home: Home = "浙A".parse().unwrap();
            let mut elements: Vec<_> = ["浙A00001", "沪B00002", "浙CD00003", "京A00004"]
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let tagged = Tagged::new(record(i as i64 * DAY_MS, p), &home, |_, _| i == 1);
                    StreamElement::Record(tagged)
                })
                .collect();
            elements.insert(2, StreamElement::Watermark(weir_core::time::Watermark(7)));
            let mut bytes = frame(&elements);
            proptest::prop_assert_eq!(bytes.len(), 4 * 38 + 9);
            bytes[at] = value;
            let mut decoded = Vec::new();
            let result = element::decode_elements::<Tagged, DecodeError>(&bytes, |e| {
                decoded.push(e);
                Ok(())
            });
            if result.is_ok() {
                proptest::prop_assert_eq!(frame(&decoded), bytes);
            }
        }
    }
}
