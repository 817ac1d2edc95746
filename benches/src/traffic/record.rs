//! The vehicle pass record, its plate, and the origin of a plate relative to a home city.
//!
//! A plate is stored inline ([`Plate`] is `Copy`, 24 bytes), so a [`TrafficRecord`] never
//! allocates and moves through channels as plain bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use weir_core::codec::{Codec, DecodeError, Decoder, Encoder};

/// A licence plate such as `浙A12345`: a province character, a city letter, then five
/// characters.
///
/// Contract: holds 1 to [`Plate::MAX_BYTES`] bytes of valid UTF-8; the bytes past `len` are
/// zero, so the derived equality and hash see only the plate's text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Plate {
    len: u8,
    bytes: [u8; Plate::MAX_BYTES],
}

impl Plate {
    /// The longest plate in UTF-8 bytes (a Chinese plate takes 8 or 9).
    pub const MAX_BYTES: usize = 23;

    /// The plate's text.
    pub fn as_str(&self) -> &str {
        // The constructors only accept valid UTF-8 (`TryFrom<&str>` and a checked decode).
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The plate's UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Hashes the plate's text in one write (equal plates have equal bytes, see the contract).
impl std::hash::Hash for Plate {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
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
    /// The text has more than [`Plate::MAX_BYTES`] bytes.
    TooLong {
        /// Its length in bytes.
        bytes: usize,
    },
}

impl fmt::Display for PlateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty plate"),
            Self::TooLong { bytes } => write!(
                f,
                "plate too long: {bytes} bytes, at most {}",
                Plate::MAX_BYTES
            ),
        }
    }
}

impl std::error::Error for PlateError {}

impl TryFrom<&str> for Plate {
    type Error = PlateError;

    fn try_from(text: &str) -> Result<Self, PlateError> {
        let len = text.len();
        if len == 0 {
            return Err(PlateError::Empty);
        }
        if len > Self::MAX_BYTES {
            return Err(PlateError::TooLong { bytes: len });
        }
        let mut bytes = [0; Self::MAX_BYTES];
        bytes[..len].copy_from_slice(text.as_bytes());
        Ok(Self {
            len: len as u8,
            bytes,
        })
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

/// Encoded as one length byte and then the plate's bytes.
impl Codec for Plate {
    #[inline]
    fn encoded_len(&self) -> usize {
        1 + usize::from(self.len)
    }

    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_u8(self.len);
        out.put_raw(self.as_bytes());
    }

    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let len = usize::from(input.take_u8()?);
        if len == 0 || len > Self::MAX_BYTES {
            return Err(DecodeError::Invalid("plate length is not 1 to 23 bytes"));
        }
        // No UTF-8 check: the bytes were encoded from a valid plate by this codec, and
        // `as_str` never trusts them blindly.
        let mut plate = Self {
            len: len as u8,
            bytes: [0; Self::MAX_BYTES],
        };
        plate.bytes[..len].copy_from_slice(input.take_raw(len)?);
        Ok(plate)
    }
}

/// One vehicle pass: camera `checkpoint_id` saw `plate` at `ts_ms` (epoch milliseconds, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrafficRecord {
    /// Event time, epoch milliseconds.
    pub ts_ms: i64,
    /// The vehicle's plate.
    pub plate: Plate,
    /// The camera's id.
    pub checkpoint_id: u32,
}

impl Codec for TrafficRecord {
    #[inline]
    fn encoded_len(&self) -> usize {
        8 + self.plate.encoded_len() + 4
    }

    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_i64(self.ts_ms);
        self.plate.encode(out);
        out.put_u32(self.checkpoint_id);
    }

    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            ts_ms: input.take_i64()?,
            plate: Plate::decode(input)?,
            checkpoint_id: input.take_u32()?,
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

    /// Parses exactly two characters: a non-ASCII province character, then an ASCII
    /// uppercase city letter.
    fn from_str(text: &str) -> Result<Self, HomeParseError> {
        let mut chars = text.chars();
        match (chars.next(), chars.next(), chars.next()) {
            (Some(province), Some(city), None)
                if !province.is_ascii() && city.is_ascii_uppercase() =>
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
    /// second with the home city letter.
    #[inline]
    pub fn of(plate: &Plate, home: &Home) -> Self {
        let mut chars = plate.as_str().chars();
        if chars.next() != Some(home.province) {
            Self::Other
        } else if chars.next() == Some(home.city) {
            Self::Local
        } else {
            Self::Province
        }
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
    fn plates_keep_their_text_and_reject_empty_or_long_text() {
        let p = plate("浙A12345");
        assert_eq!(p.as_str(), "浙A12345");
        assert_eq!(Plate::try_from(""), Err(PlateError::Empty));
        assert_eq!(
            Plate::try_from("x".repeat(24).as_str()),
            Err(PlateError::TooLong { bytes: 24 })
        );
        assert_eq!(plate(&"x".repeat(23)).as_str().len(), 23);
    }

    #[test]
    fn records_origins_and_plates_round_trip() {
        round_trip(plate("浙A12345"));
        round_trip(TrafficRecord {
            ts_ms: -5,
            plate: plate("京B0000X"),
            checkpoint_id: u32::MAX,
        });
        for origin in Origin::ALL {
            round_trip(origin);
        }
    }

    #[test]
    fn bad_plate_bytes_are_decode_errors() {
        for bytes in [&[0u8][..], &[24u8; 25][..], &[3, b'a'][..]] {
            assert!(
                Plate::decode(&mut Decoder::new(bytes)).is_err(),
                "{bytes:?}"
            );
        }
        assert!(Origin::decode(&mut Decoder::new(&[3])).is_err());
    }

    #[test]
    fn origin_compares_province_and_city() {
        let home: Home = "浙A".parse().unwrap();
        assert_eq!(Origin::of(&plate("浙A12345"), &home), Origin::Local);
        assert_eq!(Origin::of(&plate("浙B12345"), &home), Origin::Province);
        assert_eq!(Origin::of(&plate("浙"), &home), Origin::Province);
        assert_eq!(Origin::of(&plate("沪A12345"), &home), Origin::Other);
        assert_eq!(Origin::of(&plate("A12345"), &home), Origin::Other);
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
        for bad in ["", "浙", "浙AB", "AA", "浙a"] {
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
    }
}
