//! The vehicle pass record, its plate, and the origin of a plate relative to a home city.
//!
//! A plate is stored inline ([`Plate`] is `Copy`, 11 bytes), so a [`TrafficRecord`] never
//! allocates and crosses channels in a fixed-size encoding (35 bytes). Every record carries the
//! [`LinePos`] it was read from, so a record dropped anywhere downstream names its line.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use weir_core::codec::{Codec, DecodeError, Decoder, Encoder};

/// The abbreviations of China's 31 provincial divisions, the first character of a plate.
pub const PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// A licence plate such as `浙A12345`.
///
/// The plate rule, the one place it is defined: a province abbreviation from [`PROVINCES`],
/// a city letter `A`-`Z`, then 5 letters `A`-`Z` or digits (6 for new-energy plates, such
/// as `浙AD12345`). Nothing else: no spaces, no lowercase, no other characters.
///
/// Contract: holds 9 or 10 bytes of text that follows the rule (so valid UTF-8); the bytes
/// past `len` are zero, so the derived equality and hash see only the plate's text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Plate {
    len: u8,
    bytes: [u8; Plate::MAX_BYTES],
}

impl Plate {
    /// The longest plate in UTF-8 bytes: a 3-byte province, the city letter, 6 characters.
    pub const MAX_BYTES: usize = 10;
    /// Letters or digits after the city letter: this many, or one more (new-energy plates).
    pub const SERIAL_CHARS: usize = 5;

    /// The plate in `bytes`, if they follow the plate rule (see [`Plate`]). Always inlined:
    /// the reader's one-pass path calls it once per line.
    #[inline(always)]
    pub fn parse(bytes: &[u8]) -> Result<Self, PlateError> {
        let Some((province, rest)) = bytes.split_first_chunk::<3>() else {
            return Err(Self::fault_at_start(bytes));
        };
        if !is_province(province) {
            return Err(Self::fault_at_start(bytes));
        }
        let Some((city, serial)) = rest.split_first() else {
            return Err(PlateError::NoCityLetter);
        };
        if !city.is_ascii_uppercase() {
            return Err(PlateError::NoCityLetter);
        }
        // The serial is the last 5 or 6 of at least 9 bytes: within the last 8.
        let serial_ok = (Self::SERIAL_CHARS..=Self::SERIAL_CHARS + 1).contains(&serial.len())
            && bytes
                .last_chunk::<8>()
                .is_some_and(|last| upper_or_digits(u64::from_le_bytes(*last), serial.len()));
        if !serial_ok {
            return Err(PlateError::BadSerial);
        }
        // 9 or 10 bytes, copied at fixed offsets: a copy of variable length (a call to
        // `memcpy`) wrote the plate in pieces its readers then read back before those writes
        // reached the cache, a stall of about 2% of the traffic job's cycles.
        let (head, tail) = bytes
            .split_first_chunk::<8>()
            .ok_or(PlateError::BadSerial)?;
        let mut plate = Self {
            len: bytes.len() as u8,
            bytes: [0; Self::MAX_BYTES],
        };
        plate.bytes[..8].copy_from_slice(head);
        plate.bytes[8] = tail.first().copied().unwrap_or(0);
        plate.bytes[9] = tail.get(1).copied().unwrap_or(0);
        Ok(plate)
    }

    /// Why `bytes`, which do not start with a province, are not a plate.
    #[cold]
    fn fault_at_start(bytes: &[u8]) -> PlateError {
        if bytes.is_empty() {
            PlateError::Empty
        } else if std::str::from_utf8(bytes).is_err() {
            PlateError::InvalidUtf8
        } else {
            PlateError::NoProvince
        }
    }

    /// The plate's text.
    pub fn as_str(&self) -> &str {
        // The constructors only accept the plate rule's text, which is valid UTF-8.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The plate's UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Whether the top `n` bytes (1 to 8) of `word`, the last `n` of the 8 it was loaded from
/// little-endian, are each `A`-`Z` or `0`-`9`: one test of all eight bytes at once, the others
/// replaced by `A`. With every byte below `0x80`, adding `0x80 - c` to a byte sets its bit 7
/// exactly when the byte is at least `c`, and carries out of none.
#[inline(always)]
fn upper_or_digits(word: u64, n: usize) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let keep = !0u64 << (8 * (8 - n));
    let word = (word & keep) | ((u64::from(b'A') * ONES) & !keep);
    let at_least = |c: u8| word.wrapping_add(u64::from(0x80 - c) * ONES) & HIGH;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let upper = at_least(b'A') & !at_least(b'Z' + 1);
    word & HIGH == 0 && digit | upper == HIGH
}

/// Multiplier of [`province_slot`]: it sends the keys of the 31 provinces to 31 different
/// slots of [`PROVINCE_TABLE`] (found by a search over odd multipliers; the table's constant
/// fails to compile if two keys ever share a slot).
const PROVINCE_HASH: u32 = 0x7739_b195;

/// Slots of [`PROVINCE_TABLE`]: `2^6`, twice the provinces.
const PROVINCE_SLOT_BITS: u32 = 6;

/// A table slot no key can match: keys have 24 bits.
const NO_PROVINCE: u32 = u32::MAX;

/// The slot of `key` in [`PROVINCE_TABLE`]: the top bits of a multiplicative hash.
const fn province_slot(key: u32) -> usize {
    (key.wrapping_mul(PROVINCE_HASH) >> (32 - PROVINCE_SLOT_BITS)) as usize
}

/// The UTF-8 of each character of [`PROVINCES`] as a big-endian number, at its
/// [`province_slot`]; every other slot [`NO_PROVINCE`]. A perfect hash: membership is one
/// multiply, one load and one compare, with no branch on the key (a binary search over
/// random plates' provinces mispredicts about half its 5 steps: measured 4.7% of the traffic
/// job's cycles).
const PROVINCE_TABLE: [u32; 1 << PROVINCE_SLOT_BITS] = {
    let bytes = PROVINCES.as_bytes();
    let mut table = [NO_PROVINCE; 1 << PROVINCE_SLOT_BITS];
    let mut i = 0;
    while i < bytes.len() / 3 {
        let key = province_key(&[bytes[3 * i], bytes[3 * i + 1], bytes[3 * i + 2]]);
        let slot = province_slot(key);
        assert!(
            table[slot] == NO_PROVINCE,
            "two provinces share a slot: choose another PROVINCE_HASH"
        );
        table[slot] = key;
        i += 1;
    }
    table
};

const fn province_key(bytes: &[u8; 3]) -> u32 {
    u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]])
}

/// Whether `bytes` are the UTF-8 of a character of [`PROVINCES`].
#[inline]
fn is_province(bytes: &[u8; 3]) -> bool {
    let key = province_key(bytes);
    PROVINCE_TABLE[province_slot(key)] == key
}

/// Hashes the plate's text in one write (equal plates have equal bytes, see the contract).
/// Hashes the ten bytes as two fixed-size words (one 8-byte and one 2-byte write, no length
/// loop): the bytes past `len` are zero, so equal plates hash equally and the text alone
/// decides.
impl std::hash::Hash for Plate {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, i, j] = self.bytes;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
        state.write_u16(u16::from_le_bytes([i, j]));
    }
}

impl fmt::Debug for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text is not a [`Plate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateError {
    /// The text is empty.
    Empty,
    /// The text is not valid UTF-8.
    InvalidUtf8,
    /// The text does not start with a province abbreviation.
    NoProvince,
    /// The province is not followed by a city letter `A`-`Z`.
    NoCityLetter,
    /// The city letter is not followed by 5 or 6 letters `A`-`Z` or digits, and nothing else.
    BadSerial,
}

impl fmt::Display for PlateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty plate",
            Self::InvalidUtf8 => "bad plate: invalid UTF-8",
            Self::NoProvince => "bad plate: does not start with a province abbreviation",
            Self::NoCityLetter => "bad plate: no city letter A-Z after the province",
            Self::BadSerial => "bad plate: not 5 or 6 letters A-Z or digits after the city letter",
        })
    }
}

impl std::error::Error for PlateError {}

impl TryFrom<&str> for Plate {
    type Error = PlateError;

    fn try_from(text: &str) -> Result<Self, PlateError> {
        Self::parse(text.as_bytes())
    }
}

impl TryFrom<String> for Plate {
    type Error = PlateError;

    fn try_from(text: String) -> Result<Self, PlateError> {
        Self::try_from(text.as_str())
    }
}

impl From<Plate> for String {
    fn from(plate: Plate) -> Self {
        plate.as_str().to_owned()
    }
}

/// The header bit of a plate's fixed-size encoding. Builds before it wrote the bare length (9
/// or 10) in the header byte and only that many bytes after it; the codec refuses those bytes
/// (a checkpoint of such a build does not restore) rather than misreading them.
const FIXED_PLATE: u8 = 0x80;

impl Plate {
    /// Bytes of a plate's encoding: a header byte (`0x80 | len`), then the 10 bytes of
    /// [`Plate::MAX_BYTES`], zero past `len`.
    pub const ENCODED_BYTES: usize = 1 + Self::MAX_BYTES;
}

/// Encoded in [`Plate::ENCODED_BYTES`] (11) bytes, fixed size: the header byte with the length,
/// then all of `bytes` (zero past the length, as the type's contract has them).
impl Codec for Plate {
    const FIXED_SIZE: Option<usize> = Some(Self::ENCODED_BYTES);

    #[inline]
    fn encoded_len(&self) -> usize {
        Self::ENCODED_BYTES
    }

    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_fixed(Self::ENCODED_BYTES, |out| {
            out.put_u8(FIXED_PLATE | self.len);
            out.put_raw(&self.bytes);
        });
    }

    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        input.take_fixed(Self::ENCODED_BYTES, Self::decode_fields)
    }
}

impl Plate {
    /// The fields of [`Plate`]'s encoding, from a decoder over exactly its bytes.
    #[inline]
    fn decode_fields(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let header = input.take_u8()?;
        if header & FIXED_PLATE == 0 {
            return Err(DecodeError::Invalid(
                "plate in the variable-size encoding of an older build",
            ));
        }
        let len = usize::from(header & !FIXED_PLATE);
        if !(Self::MAX_BYTES - 1..=Self::MAX_BYTES).contains(&len) {
            return Err(DecodeError::Invalid("plate length is not 9 or 10 bytes"));
        }
        let bytes = input.take_array::<{ Self::MAX_BYTES }>()?;
        // The contract (zero past `len`) is what derived equality and hashing rely on. No UTF-8
        // check: the bytes were encoded from a valid plate, and `as_str` never trusts them
        // blindly.
        if bytes[len..].iter().any(|&b| b != 0) {
            return Err(DecodeError::Invalid(
                "plate bytes past its length are not zero",
            ));
        }
        Ok(Self {
            len: len as u8,
            bytes,
        })
    }
}

/// Where a record was read: its input partition and its line there (from 1, a header line
/// included). The input names the partition (a file, or a generated partition); see
/// `TrafficInput::line_ref`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct LinePos {
    /// The input partition.
    pub partition: u32,
    /// The line's number in the partition, from 1.
    pub line: u64,
}

/// One vehicle pass: camera `checkpoint_id` saw `plate` at `ts_ms` (epoch milliseconds, UTC),
/// read from line `at` of the input. 40 bytes in memory (as before `at`: the plate shrank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrafficRecord {
    /// Event time, epoch milliseconds.
    pub ts_ms: i64,
    /// The vehicle's plate.
    pub plate: Plate,
    /// The camera's id.
    pub checkpoint_id: u32,
    /// The input line it was read from.
    pub at: LinePos,
}

impl TrafficRecord {
    /// Bytes of a record's encoding (see its [`Codec`]).
    pub const ENCODED_BYTES: usize = 8 + Plate::ENCODED_BYTES + 4 + 4 + 8;
}

/// Encoded as `ts_ms`, the plate, `checkpoint_id`, then `at` (partition, line): fixed size,
/// [`TrafficRecord::ENCODED_BYTES`] (35) bytes, each field at a constant offset.
impl Codec for TrafficRecord {
    const FIXED_SIZE: Option<usize> = Some(Self::ENCODED_BYTES);

    #[inline]
    fn encoded_len(&self) -> usize {
        Self::ENCODED_BYTES
    }

    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_fixed(Self::ENCODED_BYTES, |out| {
            out.put_i64(self.ts_ms);
            self.plate.encode(out);
            out.put_u32(self.checkpoint_id);
            out.put_u32(self.at.partition);
            out.put_u64(self.at.line);
        });
    }

    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        input.take_fixed(Self::ENCODED_BYTES, |input| {
            Ok(Self {
                ts_ms: input.take_i64()?,
                plate: Plate::decode(input)?,
                checkpoint_id: input.take_u32()?,
                at: LinePos {
                    partition: input.take_u32()?,
                    line: input.take_u64()?,
                },
            })
        })
    }
}

/// The home city the job tags plates against, such as `浙A` (Hangzhou).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Home {
    /// The province character, such as `浙`.
    pub province: char,
    /// The city letter, such as `A`.
    pub city: char,
}

/// Why a text is not a [`Home`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeParseError(String);

impl fmt::Display for HomeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "home {:?} is not a province character followed by a city letter, such as \"浙A\"",
            self.0
        )
    }
}

impl std::error::Error for HomeParseError {}

impl FromStr for Home {
    type Err = HomeParseError;

    /// Parses exactly two characters: a province abbreviation of [`PROVINCES`], then a
    /// city letter `A`-`Z` (the start of a [`Plate`]).
    fn from_str(text: &str) -> Result<Self, HomeParseError> {
        let mut chars = text.chars();
        match (chars.next(), chars.next(), chars.next()) {
            (Some(province), Some(city), None)
                if PROVINCES.contains(province) && city.is_ascii_uppercase() =>
            {
                Ok(Self { province, city })
            }
            _ => Err(HomeParseError(text.to_owned())),
        }
    }
}

impl fmt::Display for Home {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.province, self.city)
    }
}

/// The UTF-8 bytes of `c` as a little-endian word (unused high bytes zero) and their count,
/// 1 to 4, computed with shifts (what `char::encode_utf8` writes).
#[inline]
fn utf8_word(c: char) -> (u64, u32) {
    let c = u64::from(u32::from(c));
    let cont = |shift: u32| 0x80 | ((c >> shift) & 0x3F);
    match c {
        0..0x80 => (c, 1),
        0x80..0x800 => ((0xC0 | (c >> 6)) | cont(0) << 8, 2),
        0x800..0x1_0000 => ((0xE0 | (c >> 12)) | cont(6) << 8 | cont(0) << 16, 3),
        _ => (
            (0xF0 | (c >> 18)) | cont(12) << 8 | cont(6) << 16 | cont(0) << 24,
            4,
        ),
    }
}

/// The UTF-8 bytes of a [`Home`] as masks over a plate's first 8 bytes, made once so that
/// [`origin`](Self::origin) is two masked compares per plate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HomePrefix {
    province: u64,
    province_mask: u64,
    city: u64,
    city_mask: u64,
    province_bits: u32,
}

impl HomePrefix {
    /// The prefix of `home`.
    pub fn of(home: &Home) -> Self {
        let (province, province_len) = utf8_word(home.province);
        let (city, city_len) = utf8_word(home.city);
        let mask = |len: u32| (1u64 << (8 * len)) - 1;
        Self {
            province,
            province_mask: mask(province_len),
            city,
            city_mask: mask(city_len),
            province_bits: 8 * province_len,
        }
    }

    /// The origin of `plate`.
    ///
    /// Compares UTF-8 bytes, no decoding: a plate is valid UTF-8, so its first character is
    /// the home province exactly when its bytes start with that character's; both characters'
    /// bytes (at most 8) lie in the plate's first 8 bytes, read as one little-endian word and
    /// compared under the masks.
    #[inline]
    pub fn origin(&self, plate: &Plate) -> Origin {
        // A plate holds at least 9 bytes, and the bytes past its end are zero.
        let bytes = &plate.bytes;
        let word = u64::from_le_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        ]);
        if word & self.province_mask != self.province {
            Origin::Other
        } else if (word >> self.province_bits) & self.city_mask == self.city {
            Origin::Local
        } else {
            Origin::Province
        }
    }
}

/// Where a plate comes from, relative to the [`Home`] city.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Origin {
    /// Home province and home city.
    Local,
    /// Home province, another city.
    Province,
    /// Another province.
    Other,
}

impl Origin {
    /// Every origin, in index order.
    pub const ALL: [Origin; 3] = [Origin::Local, Origin::Province, Origin::Other];

    /// The origin of `plate`: compares its first character with the home province and its
    /// second with the home city letter ([`HomePrefix::origin`]; a caller that asks for many
    /// plates makes the prefix once).
    #[inline]
    pub fn of(plate: &Plate, home: &Home) -> Self {
        HomePrefix::of(home).origin(plate)
    }

    /// The name used in outputs: `local`, `province` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Province => "province",
            Self::Other => "other",
        }
    }

    /// The position in [`Origin::ALL`]: 0, 1 or 2.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The origin at `index` in [`Origin::ALL`], if any.
    pub fn from_index(index: usize) -> Option<Self> {
        Self::ALL.get(index).copied()
    }
}

/// Encoded as its index, one byte.
impl Codec for Origin {
    const FIXED_SIZE: Option<usize> = Some(1);

    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }

    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_u8(self.index() as u8);
    }

    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Self::from_index(usize::from(input.take_u8()?))
            .ok_or(DecodeError::Invalid("origin index is not 0, 1 or 2"))
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn plate(text: &str) -> Plate {
        Plate::try_from(text).unwrap()
    }

    fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(value: T) {
        assert_eq!(weir_core::codec::round_trip(&value), Ok(value));
    }

    #[test]
    fn plates_follow_the_plate_rule_and_every_fault_has_its_reason() {
        for good in ["浙A12345", "京B0000X", "浙AD12345", "琼Z99999", "新AABCDE"] {
            assert_eq!(plate(good).as_str(), good);
        }
        let cases: [(&[u8], PlateError); 14] = [
            (b"", PlateError::Empty),
            ("浙".as_bytes(), PlateError::NoCityLetter),
            ("浙A1".as_bytes(), PlateError::BadSerial),
            ("浙A1234".as_bytes(), PlateError::BadSerial),
            ("浙A123456789".as_bytes(), PlateError::BadSerial),
            ("浙A1234\0".as_bytes(), PlateError::BadSerial),
            ("浙A12\x0045".as_bytes(), PlateError::BadSerial),
            (" 浙A12345".as_bytes(), PlateError::NoProvince),
            ("浙A12345 ".as_bytes(), PlateError::BadSerial),
            ("浙a12345".as_bytes(), PlateError::NoCityLetter),
            ("浙A1234b".as_bytes(), PlateError::BadSerial),
            ("中A12345".as_bytes(), PlateError::NoProvince),
            ("AA12345".as_bytes(), PlateError::NoProvince),
            (b"\xe6\xb5A12345", PlateError::InvalidUtf8),
        ];
        for (bytes, fault) in cases {
            assert_eq!(
                Plate::parse(bytes),
                Err(fault),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(PROVINCES.chars().count(), 31);
        assert!(PROVINCES.chars().all(|c| c.len_utf8() == 3));
    }

    /// The perfect hash admits exactly the provinces: every 3-byte UTF-8 character (U+0800 to
    /// U+FFFF, the provinces' range), and the bytes around a province's that are not UTF-8.
    #[test]
    fn the_province_table_admits_exactly_the_provinces() {
        for c in ('\u{800}'..='\u{ffff}').filter(|c| c.len_utf8() == 3) {
            let mut bytes = [0u8; 3];
            c.encode_utf8(&mut bytes);
            assert_eq!(is_province(&bytes), PROVINCES.contains(c), "{c:?}");
        }
        for province in PROVINCES.chars() {
            let mut bytes = [0u8; 3];
            province.encode_utf8(&mut bytes);
            for i in 0..3 {
                for flip in 0..8 {
                    let mut other = bytes;
                    other[i] ^= 1 << flip;
                    let admitted = std::str::from_utf8(&other)
                        .ok()
                        .and_then(|s| s.chars().next())
                        .is_some_and(|c| PROVINCES.contains(c));
                    assert_eq!(is_province(&other), admitted, "{other:x?}");
                }
            }
        }
    }

    #[test]
    fn records_origins_and_plates_round_trip() {
        round_trip(plate("浙A12345"));
        let record = TrafficRecord {
            ts_ms: -5,
            plate: plate("京B0000X"),
            checkpoint_id: u32::MAX,
            at: LinePos {
                partition: 7,
                line: u64::MAX,
            },
        };
        round_trip(record);
        assert_eq!(
            weir_core::codec::encode_to_vec(&record).len(),
            record.encoded_len()
        );
        assert_eq!(std::mem::size_of::<TrafficRecord>(), 40);
        for origin in Origin::ALL {
            round_trip(origin);
        }
    }

    #[test]
    fn bad_plate_bytes_are_decode_errors() {
        for bytes in [&[0u8][..], &[11u8; 12][..], &[8u8; 9][..], &[9, b'a'][..]] {
            assert!(
                Plate::decode(&mut Decoder::new(bytes)).is_err(),
                "{bytes:?}"
            );
        }
        assert!(Origin::decode(&mut Decoder::new(&[3])).is_err());
        let good = weir_core::codec::encode_to_vec(&plate("浙A12345"));
        assert_eq!(good.len(), Plate::ENCODED_BYTES);
        assert_eq!((good[0], good[10]), (0x80 | 9, 0), "header, zero padding");
        let decode = |bytes: &[u8]| weir_core::codec::decode_exact::<Plate>(bytes);
        // The variable-size layout of builds before the fixed one (a 9-byte plate and the
        // next field's bytes after it) is refused, not misread.
        let mut legacy = vec![9];
        legacy.extend_from_slice("浙A12345".as_bytes());
        legacy.push(0);
        assert_eq!(
            decode(&legacy),
            Err(DecodeError::Invalid(
                "plate in the variable-size encoding of an older build"
            ))
        );
        let mut padded = good.clone();
        padded[10] = b'7';
        assert_eq!(
            decode(&padded),
            Err(DecodeError::Invalid(
                "plate bytes past its length are not zero"
            ))
        );
        let mut long = good.clone();
        long[0] = 0x80 | 11;
        assert!(decode(&long).is_err());
        assert!(matches!(
            decode(&good[..7]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn traffic_records_are_fixed_size_and_fields_sit_at_constant_offsets() {
        let record = TrafficRecord {
            ts_ms: 0x0102,
            plate: plate("浙AD12345"),
            checkpoint_id: 7,
            at: LinePos {
                partition: 3,
                line: 9,
            },
        };
        let bytes = weir_core::codec::encode_to_vec(&record);
        assert_eq!(
            TrafficRecord::FIXED_SIZE,
            Some(TrafficRecord::ENCODED_BYTES)
        );
        assert_eq!(bytes.len(), 35);
        assert_eq!(bytes[..2], [2, 1]);
        assert_eq!(bytes[8], 0x80 | 10);
        assert_eq!(bytes[19..23], 7u32.to_le_bytes());
        assert_eq!(bytes[23..27], 3u32.to_le_bytes());
        assert_eq!(bytes[27..], 9u64.to_le_bytes());
        for cut in 0..bytes.len() {
            assert!(
                weir_core::codec::decode_exact::<TrafficRecord>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn origin_compares_province_and_city() {
        let home: Home = "浙A".parse().unwrap();
        assert_eq!(Origin::of(&plate("浙A12345"), &home), Origin::Local);
        assert_eq!(Origin::of(&plate("浙B12345"), &home), Origin::Province);
        let odd = Home {
            province: '浙',
            city: 'é',
        };
        assert_eq!(Origin::of(&plate("浙A12345"), &odd), Origin::Province);
        let ascii = Home {
            province: 'A',
            city: 'A',
        };
        assert_eq!(Origin::of(&plate("浙A12345"), &ascii), Origin::Other);
        assert_eq!(Origin::of(&plate("浙BD12345"), &home), Origin::Province);
        assert_eq!(Origin::of(&plate("沪A12345"), &home), Origin::Other);
        assert_eq!(Origin::Province.as_str(), "province");
        assert_eq!(
            Origin::from_index(Origin::Other.index()),
            Some(Origin::Other)
        );
    }

    #[test]
    fn home_parses_two_characters_only() {
        assert_eq!(
            "浙A".parse::<Home>(),
            Ok(Home {
                province: '浙',
                city: 'A'
            })
        );
        for bad in ["", "浙", "浙AB", "AA", "浙a", "ЖA", "中A"] {
            let err = bad.parse::<Home>().unwrap_err();
            assert!(err.to_string().contains("province character"), "{err}");
        }
    }

    #[test]
    fn plates_serialize_as_text() {
        let p = plate("浙A12345");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"浙A12345\"");
        assert_eq!(serde_json::from_str::<Plate>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Plate>("\"\"").is_err());
        assert!(serde_json::from_str::<Plate>("\"浙A1\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn serials_are_checked_eight_bytes_at_a_time_as_byte_by_byte(
            bytes in proptest::array::uniform8(proptest::prop_oneof![
                proptest::sample::select(b"/09:@AZ[`az".to_vec()),
                proptest::num::u8::ANY,
                proptest::sample::select(vec![0x80u8, 0xb0, 0xc1, 0xda, 0xff]),
            ]),
            n in 1usize..=8,
        ) {
            let expected = bytes[8 - n..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            proptest::prop_assert_eq!(upper_or_digits(u64::from_le_bytes(bytes), n), expected);
        }

        #[test]
        fn origin_by_bytes_is_origin_by_characters(
            province in 0usize..31,
            city in proptest::char::range('A', 'Z'),
            serial in "[A-Z0-9]{5,6}",
            home_province in proptest::prop_oneof![
                proptest::char::range('A', 'Z'),
                proptest::sample::select(PROVINCES.chars().collect::<Vec<_>>()),
                proptest::char::any(),
            ],
            home_city in proptest::prop_oneof![proptest::char::range('A', 'Z'), proptest::char::any()],
        ) {
            let text = format!("{}{city}{serial}", PROVINCES.chars().nth(province).unwrap());
            let plate = plate(&text);
            let home = Home { province: home_province, city: home_city };
            let mut chars = text.chars();
            let by_chars = if chars.next() != Some(home_province) {
                Origin::Other
            } else if chars.next() == Some(home_city) {
                Origin::Local
            } else {
                Origin::Province
            };
            proptest::prop_assert_eq!(Origin::of(&plate, &home), by_chars);
        }
    }
}
