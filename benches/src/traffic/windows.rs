//! Event-time windows over tagged records, shared by the weir job and its timely peer.
//!
//! Two tumbling windowed outputs, with windows aligned to the epoch: the window of `ts` is
//! `[start, start + size)` with `start = ts - ts.rem_euclid(size)` ([`window_start`]), so a
//! record exactly on a boundary belongs to the later window.
//!
//! - `flow_1m.jsonl` ([`FLOW_FILE`]): all tagged records per [`FLOW_WINDOW_MS`] window,
//!   `{"window_start":MS,"window_end":MS,"count":N}` ([`FlowCount`]).
//! - `origin_5m.jsonl` ([`ORIGIN_FILE`]): tagged records per [`ORIGIN_WINDOW_MS`] window and
//!   origin, `{"window_start":MS,"window_end":MS,"origin":"local","count":N,"long_term":M}`
//!   ([`OriginWindowCount`]).
//!
//! [`WindowTotals`] holds complete results; [`brute_force`] is the reference they are
//! tested against.
//!
//! Timestamps span all of `i64`. The few windows that cross the ends of that range are
//! clipped to it: the first starts at `i64::MIN` and the last ends at `i64::MAX` and also holds
//! `i64::MAX` (the contract of [`weir_core::time::arith`], which computes every bound here).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use weir_core::codec::{Codec, DecodeError, Decoder, Encoder};
use weir_core::time::arith::tumbling_window;

use super::json_line::{JsonLine, int_field, str_field};
use super::record::Origin;
use super::tag::Tagged;

/// The size of a flow window: one minute.
pub const FLOW_WINDOW_MS: i64 = 60_000;

/// The size of an origin window: five minutes.
pub const ORIGIN_WINDOW_MS: i64 = 300_000;

/// The file of the per-minute flow, one [`FlowCount`] a line.
pub const FLOW_FILE: &str = "flow_1m.jsonl";

/// The file of the five-minute counts by origin, one [`OriginWindowCount`] a line.
pub const ORIGIN_FILE: &str = "origin_5m.jsonl";

/// The start of the epoch-aligned window of `size` milliseconds that holds `ts`: the
/// largest multiple of `size` not above `ts` (for negative `ts` too; `i64::MAX` counts as
/// `i64::MAX − 1`), or `i64::MIN` when that multiple is below it.
///
/// `size` must be positive.
#[inline]
pub fn window_start(ts: i64, size: i64) -> i64 {
    tumbling_window(ts, size, 0).start
}

/// The end (exclusive) of the window of `size` milliseconds that starts at `start`, as
/// returned by [`window_start`]; `i64::MAX` when the window ends above it.
#[inline]
pub fn window_end(start: i64, size: i64) -> i64 {
    // A window's (clipped) start lies in the window itself.
    tumbling_window(start, size, 0).end
}

fn serialize_origin<S: Serializer>(origin: &Origin, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_str(origin.as_str())
}

/// An origin by its name, read in place (no allocation per line).
pub(crate) fn deserialize_origin<'de, D: Deserializer<'de>>(input: D) -> Result<Origin, D::Error> {
    struct Name;
    impl serde::de::Visitor<'_> for Name {
        type Value = Origin;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an origin")
        }
        fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Origin, E> {
            Origin::ALL
                .into_iter()
                .find(|origin| origin.as_str() == name)
                .ok_or_else(|| {
                    E::custom(format!(
                        "origin {name:?} is not \"local\", \"province\" or \"other\""
                    ))
                })
        }
    }
    input.deserialize_str(Name)
}

/// One line of `flow_1m.jsonl`: the tagged records in `[window_start, window_end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowCount {
    /// The window's first instant, epoch milliseconds.
    pub window_start: i64,
    /// The instant after the window's last, epoch milliseconds.
    pub window_end: i64,
    /// Tagged records in the window.
    pub count: u64,
}

impl JsonLine for FlowCount {
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        int_field(out, b"{\"window_start\":", self.window_start);
        int_field(out, b",\"window_end\":", self.window_end);
        int_field(out, b",\"count\":", self.count);
        out.push(b'}');
        Ok(())
    }
}

/// Encoded as three 8-byte integers: 24 bytes.
impl Codec for FlowCount {
    const FIXED_SIZE: Option<usize> = Some(24);

    fn encoded_len(&self) -> usize {
        24
    }

    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_i64(self.window_start);
        out.put_i64(self.window_end);
        out.put_u64(self.count);
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let value = Self {
            window_start: input.take_i64()?,
            window_end: input.take_i64()?,
            count: input.take_u64()?,
        };
        if value.window_end <= value.window_start {
            return Err(DecodeError::Invalid("window ends before it starts"));
        }
        Ok(value)
    }
}

/// One line of `origin_5m.jsonl`: the tagged records of `origin` in
/// `[window_start, window_end)`. `origin` is serialized by its [`Origin::as_str`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginWindowCount {
    /// The window's first instant, epoch milliseconds.
    pub window_start: i64,
    /// The instant after the window's last, epoch milliseconds.
    pub window_end: i64,
    /// Where the plates come from.
    #[serde(
        serialize_with = "serialize_origin",
        deserialize_with = "deserialize_origin"
    )]
    pub origin: Origin,
    /// Tagged records of this origin in the window.
    pub count: u64,
    /// How many of them carried the long-term flag.
    pub long_term: u64,
}

impl JsonLine for OriginWindowCount {
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        int_field(out, b"{\"window_start\":", self.window_start);
        int_field(out, b",\"window_end\":", self.window_end);
        str_field(out, b",\"origin\":", self.origin.as_str())?;
        int_field(out, b",\"count\":", self.count);
        int_field(out, b",\"long_term\":", self.long_term);
        out.push(b'}');
        Ok(())
    }
}

/// Encoded as the window, the origin byte and the two counts: 33 bytes.
impl Codec for OriginWindowCount {
    const FIXED_SIZE: Option<usize> = Some(33);

    fn encoded_len(&self) -> usize {
        33
    }

    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_i64(self.window_start);
        out.put_i64(self.window_end);
        self.origin.encode(out);
        out.put_u64(self.count);
        out.put_u64(self.long_term);
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let value = Self {
            window_start: input.take_i64()?,
            window_end: input.take_i64()?,
            origin: Origin::decode(input)?,
            count: input.take_u64()?,
            long_term: input.take_u64()?,
        };
        if value.window_end <= value.window_start {
            return Err(DecodeError::Invalid("window ends before it starts"));
        }
        if value.long_term > value.count {
            return Err(DecodeError::Invalid("more long-term records than records"));
        }
        Ok(value)
    }
}

/// Complete windowed counts: every tagged record counted in its flow window and in its
/// origin window.
///
/// Serde support is for binary transports (timely's exchange); the tuple keys of `origin`
/// have no JSON form, so JSON goes through [`WindowTotals::write_jsonl`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTotals {
    /// Tagged records per [`FLOW_WINDOW_MS`] window, by window start.
    pub flow: BTreeMap<i64, u64>,
    /// Tagged records and long-term ones per [`ORIGIN_WINDOW_MS`] window, by window start
    /// and [`Origin::index`].
    pub origin: BTreeMap<(i64, usize), (u64, u64)>,
}

impl WindowTotals {
    /// Counts one tagged record in its windows.
    pub fn add(&mut self, tagged: &Tagged) {
        let ts = tagged.record.ts_ms;
        *self
            .flow
            .entry(window_start(ts, FLOW_WINDOW_MS))
            .or_default() += 1;
        let (count, long_term) = self
            .origin
            .entry((window_start(ts, ORIGIN_WINDOW_MS), tagged.origin.index()))
            .or_default();
        *count += 1;
        *long_term += u64::from(tagged.long_term);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &WindowTotals) {
        for (&start, &n) in &other.flow {
            *self.flow.entry(start).or_default() += n;
        }
        for (&key, &(n, long_term)) in &other.origin {
            let slot = self.origin.entry(key).or_default();
            slot.0 += n;
            slot.1 += long_term;
        }
    }

    /// All tagged records counted: the sum of the flow counts.
    pub fn counted(&self) -> u64 {
        self.flow.values().sum()
    }

    /// The lines of `flow_1m.jsonl`, by window start.
    pub fn flow_lines(&self) -> Vec<FlowCount> {
        self.flow
            .iter()
            .map(|(&window_start, &count)| FlowCount {
                window_start,
                window_end: window_end(window_start, FLOW_WINDOW_MS),
                count,
            })
            .collect()
    }

    /// The lines of `origin_5m.jsonl`, by window start and then origin in the order local,
    /// province, other. Only origins seen in a window have a line.
    pub fn origin_lines(&self) -> Vec<OriginWindowCount> {
        self.origin
            .iter()
            .filter_map(|(&(window_start, index), &(count, long_term))| {
                Some(OriginWindowCount {
                    window_start,
                    window_end: window_end(window_start, ORIGIN_WINDOW_MS),
                    origin: Origin::from_index(index)?,
                    count,
                    long_term,
                })
            })
            .collect()
    }

    /// The text of `flow_1m.jsonl`: one JSON object a line, each ending in `\n`.
    pub fn flow_jsonl(&self) -> String {
        to_jsonl(&self.flow_lines())
    }

    /// The text of `origin_5m.jsonl`: one JSON object a line, each ending in `\n`.
    pub fn origin_jsonl(&self) -> String {
        to_jsonl(&self.origin_lines())
    }

    /// Writes [`FLOW_FILE`] and [`ORIGIN_FILE`] into `dir`, replacing them.
    pub fn write_jsonl(&self, dir: &Path) -> Result<(), String> {
        for (name, text) in [
            (FLOW_FILE, self.flow_jsonl()),
            (ORIGIN_FILE, self.origin_jsonl()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

fn to_jsonl<T: Serialize>(lines: &[T]) -> String {
    let mut text = String::new();
    for line in lines {
        // Plain structs of integers and a string: serializing them cannot fail.
        text.push_str(&serde_json::to_string(line).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// The windowed counts of `records`, computed from the definition independently of
/// [`window_start`] and [`WindowTotals::add`]: the window of `ts` starts at
/// `floor(ts / size) * size`, in 128-bit arithmetic, clipped to `i64::MIN` (with `i64::MAX`
/// counted as `i64::MAX − 1`).
pub fn brute_force(records: &[Tagged]) -> WindowTotals {
    fn start(ts: i64, size: i64) -> i64 {
        let ts = ts.min(i64::MAX - 1);
        let exact = i128::from(ts).div_euclid(i128::from(size)) * i128::from(size);
        i64::try_from(exact).unwrap_or(i64::MIN)
    }
    let mut totals = WindowTotals::default();
    for tagged in records {
        let ts = tagged.record.ts_ms;
        let flow = totals.flow.entry(start(ts, FLOW_WINDOW_MS)).or_insert(0);
        *flow += 1;
        let key = (start(ts, ORIGIN_WINDOW_MS), tagged.origin.index());
        let origin = totals.origin.entry(key).or_insert((0, 0));
        origin.0 += 1;
        if tagged.long_term {
            origin.1 += 1;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use weir_core::codec::encode_to_vec;

    use super::*;
    use crate::traffic::record::{Home, Plate, TrafficRecord};

    const MIN: i64 = FLOW_WINDOW_MS;

    fn tagged(ts_ms: i64, plate: &str, long_term: bool) -> Tagged {
        let home: Home = "浙A".parse().unwrap();
        let record = TrafficRecord {
            ts_ms,
            plate: Plate::try_from(plate).unwrap(),
            checkpoint_id: 1,
            at: Default::default(),
        };
        Tagged::new(record, &home, |_, _| long_term)
    }

    fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(value: T) {
        assert_eq!(weir_core::codec::round_trip(&value), Ok(value));
    }

    #[test]
    fn windows_are_epoch_aligned_and_boundaries_belong_to_the_later_window() {
        assert_eq!(window_start(0, MIN), 0);
        assert_eq!(window_start(59_999, MIN), 0);
        assert_eq!(window_start(60_000, MIN), 60_000);
        assert_eq!(window_start(60_001, MIN), 60_000);
        assert_eq!(window_start(-1, MIN), -60_000);
        assert_eq!(window_start(-60_000, MIN), -60_000);
        assert_eq!(window_start(-60_001, MIN), -120_000);
        assert_eq!(window_start(299_999, ORIGIN_WINDOW_MS), 0);
        assert_eq!(window_start(300_000, ORIGIN_WINDOW_MS), 300_000);
        assert_eq!(window_start(-1, ORIGIN_WINDOW_MS), -300_000);
        // 2026-03-02T00:00:00Z and 00:04:59.999.
        assert_eq!(window_start(1_772_409_600_000, MIN), 1_772_409_600_000);
        assert_eq!(
            window_start(1_772_409_899_999, ORIGIN_WINDOW_MS),
            1_772_409_600_000
        );
        assert_eq!(window_end(-60_000, MIN), 0);
        assert_eq!(window_end(0, ORIGIN_WINDOW_MS), 300_000);
    }

    #[test]
    fn windows_past_the_ends_of_i64_are_clipped_not_overflowed() {
        // i64::MIN = -153_722_867_280_913 * 60_000 + 4_192: its window starts below i64::MIN.
        let first_end = -153_722_867_280_912 * MIN;
        assert_eq!(first_end, i64::MIN + 55_808);
        assert_eq!(window_start(i64::MIN, MIN), i64::MIN);
        assert_eq!(window_start(first_end - 1, MIN), i64::MIN);
        assert_eq!(window_end(i64::MIN, MIN), first_end);
        assert_eq!(window_start(first_end, MIN), first_end);
        // i64::MAX = 153_722_867_280_912 * 60_000 + 55_807: its window ends above i64::MAX.
        let last = 153_722_867_280_912 * MIN;
        assert_eq!(window_start(i64::MAX, MIN), last);
        assert_eq!(window_end(last, MIN), i64::MAX);
        assert_eq!(window_end(last - MIN, MIN), last);
        let records = [
            tagged(i64::MIN, "浙A10000", false),
            tagged(i64::MAX, "京A10000", true),
        ];
        let mut totals = WindowTotals::default();
        records.iter().for_each(|r| totals.add(r));
        assert_eq!(totals, brute_force(&records));
        assert_eq!(totals.flow_lines()[0].window_start, i64::MIN);
        assert_eq!(totals.flow_lines()[1].window_end, i64::MAX);
    }

    #[test]
    fn totals_count_by_hand() {
        let records = [
            tagged(0, "浙A10000", false),        // flow 0, origin 0 local
            tagged(59_999, "浙B10000", true),    // flow 0, origin 0 province (long-term)
            tagged(60_000, "浙B20000", false),   // flow 60_000, origin 0 province
            tagged(299_999, "京A10000", true),   // flow 240_000, origin 0 other (long-term)
            tagged(300_000, "京A10000", true),   // flow 300_000, origin 300_000 other
            tagged(-1, "浙A20000", false),       // flow -60_000, origin -300_000 local
            tagged(-300_000, "沪C10000", false), // flow -300_000, origin -300_000 other
            tagged(-300_001, "浙A30000", false), // flow -360_000, origin -600_000 local
        ];
        let mut totals = WindowTotals::default();
        for record in &records {
            totals.add(record);
        }
        assert_eq!(
            totals
                .flow
                .iter()
                .map(|(&s, &n)| (s, n))
                .collect::<Vec<_>>(),
            [
                (-360_000, 1),
                (-300_000, 1),
                (-60_000, 1),
                (0, 2),
                (60_000, 1),
                (240_000, 1),
                (300_000, 1)
            ]
        );
        assert_eq!(
            totals
                .origin
                .iter()
                .map(|(&k, &v)| (k, v))
                .collect::<Vec<_>>(),
            [
                ((-600_000, 0), (1, 0)),
                ((-300_000, 0), (1, 0)),
                ((-300_000, 2), (1, 0)),
                ((0, 0), (1, 0)),
                ((0, 1), (2, 1)),
                ((0, 2), (1, 1)),
                ((300_000, 2), (1, 1)),
            ]
        );
        assert_eq!(totals.counted(), 8);
        assert_eq!(brute_force(&records), totals);

        let mut merged = totals.clone();
        merged.merge(&brute_force(&records[..2]));
        assert_eq!(merged.counted(), 10);
        assert_eq!(merged.flow[&0], 4);
        assert_eq!(merged.origin[&(0, 1)], (3, 2));
        assert_eq!(merged.origin[&(0, 0)], (2, 0));
        let mut halves = brute_force(&records[..3]);
        halves.merge(&brute_force(&records[3..]));
        assert_eq!(halves, totals);
        assert_eq!(WindowTotals::default().counted(), 0);
    }

    #[test]
    fn lines_are_sorted_and_use_the_json_field_names() {
        // Added out of order: lines still come by window, then local, province, other.
        let records = [
            tagged(300_000, "京A10000", true),
            tagged(1, "京A10000", false),
            tagged(2, "浙B10000", true),
            tagged(3, "浙A10000", false),
        ];
        let totals = brute_force(&records);
        assert_eq!(
            totals.flow_jsonl(),
            "{\"window_start\":0,\"window_end\":60000,\"count\":3}\n\
             {\"window_start\":300000,\"window_end\":360000,\"count\":1}\n"
        );
        assert_eq!(
            totals.origin_jsonl(),
            "{\"window_start\":0,\"window_end\":300000,\"origin\":\"local\",\"count\":1,\"long_term\":0}\n\
             {\"window_start\":0,\"window_end\":300000,\"origin\":\"province\",\"count\":1,\"long_term\":1}\n\
             {\"window_start\":0,\"window_end\":300000,\"origin\":\"other\",\"count\":1,\"long_term\":0}\n\
             {\"window_start\":300000,\"window_end\":600000,\"origin\":\"other\",\"count\":1,\"long_term\":1}\n"
        );
        let origin_lines = totals.origin_lines();
        for (line, text) in origin_lines.iter().zip(totals.origin_jsonl().lines()) {
            assert_eq!(
                serde_json::from_str::<OriginWindowCount>(text).unwrap(),
                *line
            );
        }
        assert!(
            serde_json::from_str::<OriginWindowCount>(
                "{\"window_start\":0,\"window_end\":1,\"origin\":\"Local\",\"count\":1,\"long_term\":0}"
            )
            .is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        totals.write_jsonl(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FLOW_FILE)).unwrap(),
            totals.flow_jsonl()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(ORIGIN_FILE)).unwrap(),
            totals.origin_jsonl()
        );
        let missing = dir.path().join("missing");
        let err = totals.write_jsonl(&missing).unwrap_err();
        assert!(err.contains(FLOW_FILE), "{err}");
    }

    #[test]
    fn window_counts_round_trip_and_reject_bad_bytes() {
        let flow = FlowCount {
            window_start: -60_000,
            window_end: 0,
            count: 7,
        };
        round_trip(flow);
        let origin = OriginWindowCount {
            window_start: 0,
            window_end: 300_000,
            origin: Origin::Province,
            count: 5,
            long_term: 2,
        };
        round_trip(origin);
        let empty = FlowCount {
            window_end: -60_000,
            ..flow
        };
        assert!(FlowCount::decode(&mut Decoder::new(&encode_to_vec(&empty))).is_err());
        let too_many = OriginWindowCount {
            long_term: 6,
            ..origin
        };
        let bad = encode_to_vec(&too_many);
        assert!(OriginWindowCount::decode(&mut Decoder::new(&bad)).is_err());
        let mut bad_origin = encode_to_vec(&origin);
        bad_origin[16] = 3;
        assert!(OriginWindowCount::decode(&mut Decoder::new(&bad_origin)).is_err());
        assert!(FlowCount::decode(&mut Decoder::new(&[0; 23])).is_err());
    }

    proptest::proptest! {
        /// The hand-written lines are serde_json's, byte for byte.
        #[test]
        fn window_lines_write_the_json_serde_writes(
            window_start: i64,
            window_end: i64,
            count: u64,
            long_term: u64,
            origin in proptest::sample::select(Origin::ALL.to_vec()),
        ) {
            let flow = FlowCount { window_start, window_end, count };
            let by_origin = OriginWindowCount { window_start, window_end, origin, count, long_term };
            let mut line = Vec::new();
            flow.write_json(&mut line).unwrap();
            proptest::prop_assert_eq!(&line, &serde_json::to_vec(&flow).unwrap());
            line.clear();
            by_origin.write_json(&mut line).unwrap();
            proptest::prop_assert_eq!(&line, &serde_json::to_vec(&by_origin).unwrap());
        }
    }
}
