//! A deterministic generator of vehicle pass records, partitioned like a Kafka topic keyed
//! by plate.
//!
//! Each partition yields the CSV text a file would hold (the [`HEADER`], then one line per
//! record, without line endings), so files and generated input go through the same parser.
//!
//! Contracts:
//! - Partition `p` yields [`GeneratorConfig::share`] data lines; the shares sum to `records`.
//! - A partition's lines depend only on the configuration and `p` (a [`Pcg64Mcg`] seeded
//!   from `seed` and `p`), never on the machine or on other partitions.
//! - A vehicle, and so a plate, always appears on the same partition
//!   ([`partition_of_vehicle`]), so each plate's arrival order does not depend on how many
//!   workers read the partitions.
//! - Every partition covers the same event-time span: `records / records_per_day` days of
//!   traffic from `start_ms`, denser in the rush hours ([`HOURLY_RATE`]).
//! - Apart from a partition clock that never goes backwards, records are out of order, late,
//!   bogus or malformed in the shares named by the constants below.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use super::parse::HEADER;
use super::record::Plate;

/// Default traffic density: records per day over all partitions.
pub const DEFAULT_RECORDS_PER_DAY: u64 = 250_000;
/// Default start of event time: 2026-03-02T00:00:00Z (a Monday).
pub const DEFAULT_START_MS: i64 = 1_772_409_600_000;
/// The most partitions a generator splits into (about 100 vehicles each at the most).
pub const MAX_PARTITIONS: usize = 1024;

/// Vehicles in the fleet; plates repeat across days because the fleet is finite.
pub const FLEET_VEHICLES: u32 = 100_000;
/// Popularity skew: a record's vehicle is drawn at rank `u^POPULARITY_EXPONENT` of its
/// partition's fleet (`u` uniform), so the top 1% of vehicles make about 22% of the records.
pub const POPULARITY_EXPONENT: i32 = 3;
/// Share of vehicles with a local plate (`浙A`).
pub const LOCAL_SHARE: f64 = 0.60;
/// Share of vehicles from the home province's other cities (`浙B` to `浙L`).
pub const PROVINCE_SHARE: f64 = 0.25;
/// Share of vehicles from other provinces (the rest: `京`, `沪`, `苏`, `粤`, `皖`, ...).
pub const OTHER_SHARE: f64 = 1.0 - LOCAL_SHARE - PROVINCE_SHARE;
/// Cameras, with ids `1..=CHECKPOINTS`.
pub const CHECKPOINTS: u32 = 400;

/// Relative traffic rate per UTC hour: rush hours 07-09 and 17-19, quiet nights.
pub const HOURLY_RATE: [f64; 24] = [
    0.15, 0.1, 0.1, 0.1, 0.15, 0.3, 0.6, 1.0, //
    2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, //
    1.0, 1.0, 2.0, 2.0, 0.8, 0.6, 0.4, 0.25,
];

/// Share of records whose timestamp is 0 to [`OUT_OF_ORDER_MAX_MS`] behind the partition
/// clock.
pub const OUT_OF_ORDER_SHARE: f64 = 0.10;
/// The most an out-of-order record lags the partition clock.
pub const OUT_OF_ORDER_MAX_MS: i64 = 8_000;
/// Share of records from a device that is hours late: [`LATE_MIN_MS`] to [`LATE_MAX_MS`]
/// behind the partition clock.
pub const LATE_SHARE: f64 = 0.005;
/// The least a late record lags the partition clock (1 h).
pub const LATE_MIN_MS: i64 = 3_600_000;
/// The most a late record lags the partition clock (3 h).
pub const LATE_MAX_MS: i64 = 10_800_000;
/// Share of records with a bogus timestamp, [`BOGUS_MIN_DAYS`] to [`BOGUS_MAX_DAYS`] in the
/// past.
pub const BOGUS_SHARE: f64 = 0.000_02;
/// The least a bogus timestamp lags the partition clock, in days.
pub const BOGUS_MIN_DAYS: i64 = 1;
/// The most a bogus timestamp lags the partition clock, in days.
pub const BOGUS_MAX_DAYS: i64 = 30;
/// Share of malformed lines: wrong field count, bad number, empty plate or invalid UTF-8.
pub const MALFORMED_SHARE: f64 = 0.000_1;

const DAY_MS: f64 = 86_400_000.0;
const HOUR_MS: f64 = 3_600_000.0;
const OTHER_CITIES: [char; 10] = ['B', 'C', 'D', 'E', 'F', 'G', 'H', 'J', 'K', 'L'];
const OTHER_PROVINCES: [char; 10] = ['京', '沪', '苏', '粤', '皖', '闽', '赣', '鲁', '豫', '湘'];
/// Plate characters after the city letter: digits and letters without I and O.
const PLATE_ALPHABET: &[u8; 34] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// 34^5: the number of distinct five-character plate suffixes.
const SUFFIXES: u64 = 45_435_424;
/// Odd and prime to 17, so `v * SUFFIX_MULTIPLIER % SUFFIXES` is a bijection.
const SUFFIX_MULTIPLIER: u64 = 0x2545_F491;

/// What to generate. Plain data: set the fields, default the rest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GeneratorConfig {
    /// Data lines over all partitions (the header lines are extra).
    pub records: u64,
    /// Partitions, `1..=MAX_PARTITIONS`.
    pub partitions: usize,
    /// The seed every partition's random stream derives from.
    pub seed: u64,
    /// Traffic density, over all partitions; sets the event-time span.
    pub records_per_day: u64,
    /// Event time of the first records, epoch milliseconds.
    pub start_ms: i64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            records: 1_000_000,
            partitions: 1,
            seed: 42,
            records_per_day: DEFAULT_RECORDS_PER_DAY,
            start_ms: DEFAULT_START_MS,
        }
    }
}

impl GeneratorConfig {
    /// The data lines of partition `p`: an equal share, the first `records % partitions`
    /// partitions one more.
    pub fn share(&self, p: usize) -> u64 {
        let partitions = self.partitions.max(1) as u64;
        let p = p as u64;
        self.records / partitions + u64::from(p < self.records % partitions)
    }
}

/// Why a partition cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeneratorError {
    /// `partitions` is 0 or above [`MAX_PARTITIONS`].
    Partitions(usize),
    /// The partition asked for is not below `partitions`.
    NoSuchPartition {
        /// The partition asked for.
        partition: usize,
        /// The configured partitions.
        partitions: usize,
    },
    /// `records_per_day` is 0.
    ZeroRecordsPerDay,
    /// No vehicle of the fleet hashes to the partition.
    NoVehicles {
        /// The partition.
        partition: usize,
    },
}

impl fmt::Display for GeneratorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partitions(n) => write!(
                f,
                "generator partitions must be 1 to {MAX_PARTITIONS}, not {n}"
            ),
            Self::NoSuchPartition {
                partition,
                partitions,
            } => write!(
                f,
                "generator partition {partition} does not exist (partitions: {partitions})"
            ),
            Self::ZeroRecordsPerDay => f.write_str("generator records_per_day must be positive"),
            Self::NoVehicles { partition } => write!(
                f,
                "generator partition {partition} has no vehicles; use fewer partitions"
            ),
        }
    }
}

impl std::error::Error for GeneratorError {}

/// A stable 64-bit mix (splitmix64's finaliser).
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The partition that carries every record of `vehicle`: a stable hash of its id modulo
/// `partitions` (at least 1).
pub fn partition_of_vehicle(vehicle: u32, partitions: usize) -> usize {
    (mix64(u64::from(vehicle)) % partitions.max(1) as u64) as usize
}

/// The plate of `vehicle`. Distinct vehicles have distinct plates (the last five
/// characters encode the id); the prefix follows [`LOCAL_SHARE`] and [`PROVINCE_SHARE`].
pub fn vehicle_plate(vehicle: u32) -> Plate {
    let h = mix64(u64::from(vehicle) ^ 0x05EE_D0FF_1EE7);
    let class = (h % 10_000) as f64 / 10_000.0;
    let pick = (h >> 32) as usize;
    let (province, city) = if class < LOCAL_SHARE {
        ('浙', 'A')
    } else if class < LOCAL_SHARE + PROVINCE_SHARE {
        ('浙', OTHER_CITIES[pick % OTHER_CITIES.len()])
    } else {
        let province = OTHER_PROVINCES[pick % OTHER_PROVINCES.len()];
        (province, char::from(b'A' + (pick / 16 % 5) as u8))
    };
    let mut text = [0u8; Plate::MAX_BYTES];
    let mut len = province.encode_utf8(&mut text).len();
    text[len] = city as u8;
    len += 1;
    let mut suffix = u64::from(vehicle) * SUFFIX_MULTIPLIER % SUFFIXES;
    for i in (0..5).rev() {
        text[len + i] = PLATE_ALPHABET[(suffix % 34) as usize];
        suffix /= 34;
    }
    len += 5;
    let text = std::str::from_utf8(&text[..len]).expect("plates are built from whole chars");
    Plate::try_from(text).expect("a generated plate follows the plate rule")
}

/// The lines of one partition, produced one at a time.
#[derive(Debug)]
pub struct PartitionGenerator {
    rng: Pcg64Mcg,
    /// This partition's vehicles, most popular first.
    plates: Vec<Plate>,
    records: u64,
    /// Data lines produced so far.
    produced: u64,
    header_done: bool,
    start_ms: i64,
    /// Rate mass (hours weighted by [`HOURLY_RATE`]) covered by one record.
    mass_per_record: f64,
    /// `cumulative[h]`: rate mass of a day before hour `h`; `cumulative[24]` is a day's.
    cumulative: [f64; 25],
}

impl PartitionGenerator {
    /// The generator of partition `p` of `config`.
    pub fn new(config: &GeneratorConfig, p: usize) -> Result<Self, GeneratorError> {
        if config.partitions == 0 || config.partitions > MAX_PARTITIONS {
            return Err(GeneratorError::Partitions(config.partitions));
        }
        if p >= config.partitions {
            return Err(GeneratorError::NoSuchPartition {
                partition: p,
                partitions: config.partitions,
            });
        }
        if config.records_per_day == 0 {
            return Err(GeneratorError::ZeroRecordsPerDay);
        }
        let plates: Vec<Plate> = (0..FLEET_VEHICLES)
            .filter(|&v| partition_of_vehicle(v, config.partitions) == p)
            .map(vehicle_plate)
            .collect();
        if plates.is_empty() {
            return Err(GeneratorError::NoVehicles { partition: p });
        }
        let mut cumulative = [0.0; 25];
        for (h, rate) in HOURLY_RATE.iter().enumerate() {
            cumulative[h + 1] = cumulative[h] + rate;
        }
        let records = config.share(p);
        let span_days = config.records as f64 / config.records_per_day as f64;
        Ok(Self {
            rng: Pcg64Mcg::seed_from_u64(mix64(config.seed) ^ mix64(p as u64 ^ 0xA5A5)),
            plates,
            records,
            produced: 0,
            header_done: false,
            start_ms: config.start_ms,
            mass_per_record: span_days * cumulative[24] / records.max(1) as f64,
            cumulative,
        })
    }

    /// Writes the next line, without its line ending, into `buf` (cleared first): the header,
    /// then the data lines. Returns `false`, leaving `buf` empty, when the partition is done.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        if !self.header_done {
            self.header_done = true;
            buf.extend_from_slice(HEADER.as_bytes());
            return true;
        }
        if self.produced == self.records {
            return false;
        }
        let clock_ms = self.clock_ms(self.produced);
        self.produced += 1;
        // `new` refuses a partition without vehicles, so `plates` is not empty.
        let fleet = self.plates.len();
        let rank = (fleet as f64 * self.rng.random::<f64>().powi(POPULARITY_EXPONENT)) as usize;
        let plate = self.plates[rank.min(fleet - 1)];
        let checkpoint_id = self.rng.random_range(1..=CHECKPOINTS);
        let roll: f64 = self.rng.random();
        let mut ts_ms = clock_ms;
        let mut malformed = false;
        if roll < MALFORMED_SHARE {
            malformed = true;
        } else if roll < MALFORMED_SHARE + BOGUS_SHARE {
            ts_ms -= self.rng.random_range(BOGUS_MIN_DAYS..=BOGUS_MAX_DAYS) * DAY_MS as i64;
        } else if roll < MALFORMED_SHARE + BOGUS_SHARE + LATE_SHARE {
            ts_ms -= self.rng.random_range(LATE_MIN_MS..=LATE_MAX_MS);
        } else if roll < MALFORMED_SHARE + BOGUS_SHARE + LATE_SHARE + OUT_OF_ORDER_SHARE {
            ts_ms -= self.rng.random_range(0..=OUT_OF_ORDER_MAX_MS);
        }
        if malformed {
            self.write_malformed(buf, ts_ms, plate, checkpoint_id);
        } else {
            write_record(buf, ts_ms, plate.as_bytes(), checkpoint_id);
        }
        true
    }

    /// The partition clock at data line `i`: the `i`-th of `records` evenly spaced points of
    /// rate mass, jittered within its slot, mapped back through the hourly rate profile.
    fn clock_ms(&mut self, i: u64) -> i64 {
        let mass = (i as f64 + self.rng.random::<f64>()) * self.mass_per_record;
        let day_mass = self.cumulative[24];
        let day = (mass / day_mass).floor();
        let in_day = mass - day * day_mass;
        let hour = self.cumulative[1..24].partition_point(|&c| c <= in_day);
        let in_hour = ((in_day - self.cumulative[hour]) / HOURLY_RATE[hour]).min(1.0);
        self.start_ms + (day * DAY_MS + (hour as f64 + in_hour) * HOUR_MS) as i64
    }

    /// A line the parser must reject, of one of six kinds.
    fn write_malformed(&mut self, buf: &mut Vec<u8>, ts_ms: i64, plate: Plate, checkpoint: u32) {
        let plate = plate.as_bytes();
        match self.rng.random_range(0..6u8) {
            0 => {
                // Missing field.
                push_i64(buf, ts_ms);
                buf.push(b',');
                buf.extend_from_slice(plate);
            }
            1 => {
                // Extra field.
                write_record(buf, ts_ms, plate, checkpoint);
                buf.extend_from_slice(b",1");
            }
            2 => {
                // Bad timestamp.
                push_i64(buf, ts_ms);
                buf.extend_from_slice(b"ms,");
                buf.extend_from_slice(plate);
                buf.push(b',');
                push_u64(buf, u64::from(checkpoint));
            }
            3 => {
                // Bad checkpoint id.
                write_record(buf, ts_ms, plate, checkpoint);
                buf.extend_from_slice(b"-cam");
            }
            4 => write_record(buf, ts_ms, b"", checkpoint),
            _ => {
                // Invalid UTF-8: the province character's lead byte replaced.
                let mut bytes = plate.to_vec();
                bytes[0] = 0xFF;
                write_record(buf, ts_ms, &bytes, checkpoint);
            }
        }
    }
}

fn write_record(buf: &mut Vec<u8>, ts_ms: i64, plate: &[u8], checkpoint: u32) {
    push_i64(buf, ts_ms);
    buf.push(b',');
    buf.extend_from_slice(plate);
    buf.push(b',');
    push_u64(buf, u64::from(checkpoint));
}

fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn decimal_formatting_matches_std() {
        for v in [0i64, 7, -7, 10, 1_772_409_600_000, i64::MIN, i64::MAX] {
            let mut buf = Vec::new();
            push_i64(&mut buf, v);
            assert_eq!(String::from_utf8(buf).unwrap(), v.to_string());
        }
    }

    #[test]
    fn vehicle_plates_are_distinct_and_well_formed() {
        let mut seen = HashSet::new();
        for v in 0..FLEET_VEHICLES {
            let plate = vehicle_plate(v);
            assert_eq!(plate.as_str().chars().count(), 7, "{plate}");
            assert_eq!(Plate::parse(plate.as_bytes()), Ok(plate), "{plate}");
            assert!(seen.insert(plate), "{plate} repeats");
        }
    }

    #[test]
    fn the_clock_follows_the_rush_hours() {
        let config = GeneratorConfig {
            records: 100_000,
            records_per_day: 100_000,
            ..GeneratorConfig::default()
        };
        let mut generator = PartitionGenerator::new(&config, 0).unwrap();
        let mut per_hour = [0u32; 24];
        let mut last = i64::MIN;
        for i in 0..config.records {
            let clock = generator.clock_ms(i);
            assert!(clock >= last, "the clock went back at {i}");
            last = clock;
            per_hour[((clock - config.start_ms) / HOUR_MS as i64) as usize] += 1;
        }
        assert!(last < config.start_ms + DAY_MS as i64);
        assert!(per_hour[8] > 4 * per_hour[3], "{per_hour:?}");
        assert!(per_hour[18] > per_hour[12], "{per_hour:?}");
    }

    #[test]
    fn bad_configurations_are_errors() {
        let zero = GeneratorConfig {
            partitions: 0,
            ..GeneratorConfig::default()
        };
        assert_eq!(
            PartitionGenerator::new(&zero, 0).unwrap_err(),
            GeneratorError::Partitions(0)
        );
        assert!(PartitionGenerator::new(&GeneratorConfig::default(), 1).is_err());
        let still = GeneratorConfig {
            records_per_day: 0,
            ..GeneratorConfig::default()
        };
        assert!(PartitionGenerator::new(&still, 0).is_err());
    }
}
