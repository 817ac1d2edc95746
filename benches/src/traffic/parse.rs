//! Parsing CSV lines into records, with a reason for every line that is not one.
//!
//! [`LineReader`] reads lines from any [`BufRead`] and never holds more than
//! `max_line_bytes` of one line: an oversized line is rejected as soon as it passes the
//! bound, and its tail is skipped in bounded steps ([`RawLine::Skipped`]), so an endless line
//! never keeps the caller from looking up. [`LineParser`] recognises a header, splits a line
//! into fields with `csv-core` (RFC 4180 quoting) and turns it into a [`TrafficRecord`] or a
//! [`RejectReason`]; a [`Rejection`] is what the job writes, one JSON object per line, to
//! `rejected.jsonl`.
//!
//! A record is one line: a line break always ends it, also inside quotes (a quoted field
//! cannot span lines; its line is rejected as an unclosed quote). Within a line, a field may
//! be quoted (`"浙A12345"`, with `""` for a quote inside); the quotes are not part of the
//! value. Fields are not trimmed.

use std::fmt;
use std::io::{self, BufRead};

use csv_core::{ReadRecordResult, Terminator};
use serde::Serialize;

use super::input::LineRef;
use super::record::{LinePos, Plate, PlateError, TrafficRecord};

/// The columns of a data line, in the order they have without a header.
pub const COLUMNS: [&str; 3] = ["ts_ms", "plate", "checkpoint_id"];

/// The header line a file may start with (the columns may come in any order).
pub const HEADER: &str = "ts_ms,plate,checkpoint_id";

/// The default limit on one line's length in bytes, without its line ending.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024;

/// The most characters of a rejected line kept in its [`Rejection`].
pub const REJECTED_TEXT_CHARS: usize = 200;

/// The UTF-8 byte order mark, skipped at the start of a file.
pub const BOM: &[u8] = b"\xef\xbb\xbf";

/// Why a line is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// A quoted field is not closed before the end of the line.
    UnclosedQuote,
    /// The line does not have exactly three fields.
    FieldCount {
        /// The number of fields found.
        found: usize,
    },
    /// `ts_ms` is not a signed 64-bit integer.
    BadTimestamp,
    /// `checkpoint_id` is not an unsigned 32-bit integer.
    BadCheckpointId,
    /// The plate does not follow the plate rule (see [`Plate`]).
    BadPlate(PlateError),
    /// The line is empty.
    EmptyLine,
    /// The line is longer than the reader's limit.
    Oversized {
        /// The limit, in bytes.
        max_line_bytes: usize,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnclosedQuote => {
                f.write_str("unclosed quote: a quoted field runs to the end of the line")
            }
            Self::FieldCount { found } => {
                write!(f, "wrong field count: expected 3, found {found}")
            }
            Self::BadTimestamp => f.write_str("bad ts_ms: not a signed 64-bit integer"),
            Self::BadCheckpointId => {
                f.write_str("bad checkpoint_id: not an unsigned 32-bit integer")
            }
            Self::BadPlate(fault) => fault.fmt(f),
            Self::EmptyLine => f.write_str("empty line"),
            Self::Oversized { max_line_bytes } => {
                write!(f, "line longer than {max_line_bytes} bytes")
            }
        }
    }
}

/// A line that is not a record, as written to `rejected.jsonl`: where it is (`file` and
/// `line`, or generator `partition` and `offset`), why, and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The line.
    #[serde(flatten)]
    pub at: LineRef,
    /// Why it was rejected.
    pub reason: String,
    /// The line's text, lossily decoded and cut to [`REJECTED_TEXT_CHARS`] characters.
    pub text: String,
}

impl Rejection {
    /// A rejection of the line `at`, holding `bytes`.
    pub fn new(at: LineRef, reason: RejectReason, bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        Self {
            at,
            reason: reason.to_string(),
            text: text.chars().take(REJECTED_TEXT_CHARS).collect(),
        }
    }

    /// The rejection as one JSON object, without a line ending.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a rejection has only strings and numbers")
    }
}

/// Why a header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// A column name that is none of [`COLUMNS`].
    Unknown(String),
    /// A column named twice.
    Duplicate(&'static str),
    /// A column missing.
    Missing(&'static str),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(name) => write!(f, "unknown column {name:?}")?,
            Self::Duplicate(name) => write!(f, "column {name:?} appears twice")?,
            Self::Missing(name) => write!(f, "column {name:?} is missing")?,
        }
        write!(
            f,
            "; expected the columns {} in any order",
            COLUMNS.join(", ")
        )
    }
}

impl std::error::Error for HeaderError {}

/// Which column each field of a line holds: `order[i]` is the index in [`COLUMNS`] of field
/// `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    order: [u8; 3],
}

impl Default for Columns {
    /// The order of [`COLUMNS`], as without a header.
    fn default() -> Self {
        Self { order: [0, 1, 2] }
    }
}

/// Splits lines into fields and parses them as records. Allocates its buffers once (they
/// grow only for a line longer than any before).
#[derive(Debug)]
pub struct LineParser {
    csv: csv_core::Reader,
    /// The unquoted bytes of the fields of the last line.
    fields: Vec<u8>,
    /// Where each field ends in `fields`.
    ends: Vec<usize>,
    columns: Columns,
}

impl Default for LineParser {
    fn default() -> Self {
        Self::new()
    }
}

impl LineParser {
    /// A parser of lines in the order of [`COLUMNS`], until [`LineParser::header`] says
    /// otherwise.
    pub fn new() -> Self {
        Self {
            csv: csv_core::ReaderBuilder::new()
                .terminator(Terminator::Any(b'\n'))
                .build(),
            fields: vec![0; DEFAULT_MAX_LINE_BYTES],
            ends: vec![0; DEFAULT_MAX_LINE_BYTES + 1],
            columns: Columns::default(),
        }
    }

    /// The columns data lines are read in.
    pub fn columns(&self) -> Columns {
        self.columns
    }

    /// Takes `line` (the first of a file, without a byte order mark) as the header if one of
    /// its fields is a column name, and then reads data lines in its order: `Ok(true)`.
    /// `Ok(false)`: the line names no column, it is data. An error: it names a column, but
    /// also an unknown one, one twice, or not all three.
    pub fn header(&mut self, line: &[u8]) -> Result<bool, HeaderError> {
        let Ok(found) = self.split(line) else {
            return Ok(false);
        };
        let column_of = |name: &[u8]| COLUMNS.iter().position(|c| c.as_bytes() == name);
        if !(0..found).any(|i| column_of(self.field(i)).is_some()) {
            return Ok(false);
        }
        let mut order = [0u8; 3];
        let mut seen = [false; 3];
        for i in 0..found {
            let name = self.field(i);
            let column = column_of(name)
                .ok_or_else(|| HeaderError::Unknown(String::from_utf8_lossy(name).into_owned()))?;
            if std::mem::replace(&mut seen[column], true) {
                return Err(HeaderError::Duplicate(COLUMNS[column]));
            }
            if let Some(slot) = order.get_mut(i) {
                *slot = column as u8;
            }
        }
        if let Some(missing) = seen.iter().position(|seen| !seen) {
            return Err(HeaderError::Missing(COLUMNS[missing]));
        }
        self.columns = Columns { order };
        Ok(true)
    }

    /// Parses one data line, without its line ending, read from `at`.
    ///
    /// The checks run in the order: empty line, quoting, field count, `ts_ms`, plate,
    /// `checkpoint_id` (whatever the columns' order), and the first failure is the reason.
    ///
    /// `canonical`, inlined into the caller, or else `parse_any`, out of line. The reader calls
    /// the two itself, so that a canonical record never shares a result value with the other
    /// lines' (see `PartitionReader::next_item`).
    #[inline(always)]
    pub fn parse(&mut self, line: &[u8], at: LinePos) -> Result<TrafficRecord, RejectReason> {
        match self.canonical(line, at) {
            Some(record) => Ok(record),
            None => self.parse_any(line, at),
        }
    }

    /// The record of `line` if it is canonical and the columns are in their default order
    /// ([`parse`](Self::parse)'s inlined path); `None` says to ask [`parse_any`](Self::parse_any).
    #[inline(always)]
    pub(crate) fn canonical(&self, line: &[u8], at: LinePos) -> Option<TrafficRecord> {
        if self.columns.order == Columns::default().order {
            canonical_line(line, at)
        } else {
            None
        }
    }

    /// [`parse`](Self::parse) for a line that is not canonical, or columns in another order.
    #[inline(never)]
    pub(crate) fn parse_any(
        &mut self,
        line: &[u8],
        at: LinePos,
    ) -> Result<TrafficRecord, RejectReason> {
        let order = self.columns.order;
        if line.is_empty() {
            return Err(RejectReason::EmptyLine);
        }
        let fields = match split_unquoted(line) {
            Unquoted::Fields(fields) => fields,
            Unquoted::FieldCount(found) => return Err(RejectReason::FieldCount { found }),
            Unquoted::Quoted => match split_simply_quoted(line) {
                Some(fields) => fields,
                None => self.quoted_fields(line)?,
            },
        };
        record(fields, order, at)
    }

    /// The three fields of a non-empty `line`, split by `csv-core` (any line; the path of
    /// lines with quotes).
    fn quoted_fields(&mut self, line: &[u8]) -> Result<[&[u8]; 3], RejectReason> {
        let found = self.split(line)?;
        if found != 3 {
            return Err(RejectReason::FieldCount { found });
        }
        Ok([self.field(0), self.field(1), self.field(2)])
    }

    /// Field `i` of the last line split.
    #[inline]
    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.fields[start..self.ends[i]]
    }

    /// Splits a non-empty `line` into fields; returns their number.
    #[inline]
    fn split(&mut self, line: &[u8]) -> Result<usize, RejectReason> {
        if self.fields.len() < line.len() {
            self.fields.resize(line.len(), 0);
            self.ends.resize(line.len() + 1, 0);
        }
        let (_, _, nout, nend) = self.csv.read_record(line, &mut self.fields, &mut self.ends);
        // The line holds no line break, so only the terminator ends the record: the buffers
        // hold the whole line (a field is never longer unquoted), and the record ends here
        // unless a quote is still open.
        let (ended, _, _, last) =
            self.csv
                .read_record(b"\n", &mut self.fields[nout..], &mut self.ends[nend..]);
        if ended != ReadRecordResult::Record {
            self.csv.reset();
            return Err(RejectReason::UnclosedQuote);
        }
        Ok(nend + last)
    }
}

/// The record of a line's `fields`, in the columns' `order`, read from `at`: `ts_ms`, then
/// the plate, then `checkpoint_id` (whatever the columns' order); the first failure is the
/// reason.
#[inline]
fn record(fields: [&[u8]; 3], order: [u8; 3], at: LinePos) -> Result<TrafficRecord, RejectReason> {
    let mut field = [&[][..]; 3];
    for (&column, value) in order.iter().zip(fields) {
        field[usize::from(column)] = value;
    }
    let ts_ms = parse_i64(field[0]).ok_or(RejectReason::BadTimestamp)?;
    let plate = Plate::parse(field[1]).map_err(RejectReason::BadPlate)?;
    let checkpoint_id = parse_u32(field[2]).ok_or(RejectReason::BadCheckpointId)?;
    Ok(TrafficRecord {
        ts_ms,
        plate,
        checkpoint_id,
        at,
    })
}

/// The record of `line` read in the default column order, if the line has the shape of
/// nearly every line (a camera feed's, the generator's): a timestamp of 9 to 15 digits, a
/// plate of 9 or 10 bytes, bare or in quotes, a `checkpoint_id`, and nothing else. Parsed in one pass from the
/// front, without splitting the line first: the timestamp from two 8-byte words, then the
/// plate and the id where the commas must be. `None` for any other line, which the general
/// path then reads (and rejects with its reason).
///
/// Where it returns a record, the general path returns the same one: every byte of the line is
/// checked by one of its fields (digits, the plate rule, which admits no comma and no quote,
/// digits) or is a quote this found around the plate, so the line holds exactly two commas,
/// where this found them, and no quote but those two, which RFC 4180 reads away; and each
/// field is read by the general path's own function or to the same value (a timestamp or an
/// id of at most 8 digits, digits only, which [`parse_i64`] and [`parse_u32`] read as this
/// does).
#[inline(always)]
fn canonical_line(line: &[u8], at: LinePos) -> Option<TrafficRecord> {
    /// `10^k` for the timestamp's digits past its first eight.
    const POW10: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];
    let (head, _) = line.split_first_chunk::<16>()?;
    let [a, b, c, d, e, f, g, h, rest @ ..] = *head;
    let first = eight_digits(u64::from_le_bytes([a, b, c, d, e, f, g, h]))?;
    let word = u64::from_le_bytes(rest);
    // 1 to 7 more digits, then the comma, all in the second word.
    let more = leading_digits(word);
    if more == 0 || more == 8 || rest[more] != b',' {
        return None;
    }
    // The `more` digits moved to the top of a word of `0`s: an 8-digit number of that value.
    let shifted = (word << (8 * (8 - more))) | (ASCII_ZEROS >> (8 * more));
    let ts = first * POW10[more] + eight_digits(shifted)?;
    let tail = &line[9 + more..];
    let (plate, id) = if tail.first() == Some(&b'"') {
        plate_field::<1>(tail)?
    } else {
        plate_field::<0>(tail)?
    };
    let checkpoint_id = match id.len() {
        // The id is the line's last bytes, and the line holds at least 16: the last 8 hold it
        // whole, at their top. Anything but digits (a sign) is left to `parse_u32`.
        1..=8 => {
            let (_, last) = line.split_last_chunk::<8>()?;
            let keep = !0u64 << (8 * (8 - id.len()));
            match eight_digits((u64::from_le_bytes(*last) & keep) | (ASCII_ZEROS & !keep)) {
                Some(id) => id as u32,
                None => parse_u32(id)?,
            }
        }
        _ => parse_u32(id)?,
    };
    Some(TrafficRecord {
        // At most 15 digits: below 2^63.
        ts_ms: ts as i64,
        plate,
        checkpoint_id,
        at,
    })
}

/// The plate at the front of `tail` (the line after the timestamp's comma) and the bytes after
/// its comma, if the plate is bare (`QUOTES` 0) or quoted whole (`QUOTES` 1: `"浙A12345"`, as
/// writers that quote every text field write it; a quoted field without a quote inside reads
/// as its content). A constant, so that the bare plate keeps its fixed offsets.
#[inline(always)]
fn plate_field<const QUOTES: usize>(tail: &[u8]) -> Option<(Plate, &[u8])> {
    let plate_len = match (tail.get(9 + 2 * QUOTES), tail.get(10 + 2 * QUOTES)) {
        (Some(b','), _) => 9,
        (_, Some(b',')) => 10,
        _ => return None,
    };
    if QUOTES == 1 && tail[plate_len + 1] != b'"' {
        return None;
    }
    let plate = Plate::parse(&tail[QUOTES..QUOTES + plate_len]).ok()?;
    Some((plate, &tail[plate_len + 2 * QUOTES + 1..]))
}

/// How many of `word`'s bytes, from the lowest (the first in the line), are ASCII digits
/// before the first that is not: 0 to 8 ([`digit_nibbles`], byte by byte). A carry out of a
/// byte above `0xF9` can only spoil the bytes above it, past the first non-digit.
#[inline]
fn leading_digits(word: u64) -> usize {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let not_digit = !bytes_equal_to(digit_nibbles(word), 0x33) & HIGH_BITS;
    (not_digit.trailing_zeros() / 8) as usize
}

/// A line split without `csv-core`, when it holds no quote.
enum Unquoted<'a> {
    /// Exactly three fields.
    Fields([&'a [u8]; 3]),
    /// Another number of fields.
    FieldCount(usize),
    /// The line holds a quote: only `csv-core` splits it right.
    Quoted,
}

/// Splits `line` at its commas if it holds no quote: then RFC 4180 (and `csv-core`) reads it
/// the same way, every byte but the comma being field data (the line holds no line break).
/// One pass over the line, eight bytes at a time ([`bytes_equal_to`]), the tail byte by byte.
#[inline]
fn split_unquoted(line: &[u8]) -> Unquoted<'_> {
    let mut commas = [0usize; 2];
    let mut found = 0;
    let mut comma_at = |at: usize| {
        if let Some(comma) = commas.get_mut(found) {
            *comma = at;
        }
        found += 1;
    };
    let mut words = line.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let word = u64::from_le_bytes([
            word[0], word[1], word[2], word[3], word[4], word[5], word[6], word[7],
        ]);
        if bytes_equal_to(word, b'"') != 0 {
            return Unquoted::Quoted;
        }
        let mut hits = bytes_equal_to(word, b',');
        while hits != 0 {
            comma_at(base + (hits.trailing_zeros() / 8) as usize);
            hits &= hits - 1;
        }
        base += 8;
    }
    for (at, &b) in words.remainder().iter().enumerate() {
        if b == b'"' {
            return Unquoted::Quoted;
        }
        if b == b',' {
            comma_at(base + at);
        }
    }
    match found {
        2 => Unquoted::Fields([
            &line[..commas[0]],
            &line[commas[0] + 1..commas[1]],
            &line[commas[1] + 1..],
        ]),
        _ => Unquoted::FieldCount(found + 1),
    }
}

/// Splits a `line` that holds quotes into its three fields if each is bare (no quote) or
/// quoted whole with no quote inside (`"浙A12345"`, `"1772409600000"`, as writers that quote
/// every field write them): RFC 4180 (and `csv-core`) reads such a field as what its quotes
/// enclose, commas included. `None` for any other line (a doubled quote, a quote inside a bare
/// field, bytes after a closing quote, an unclosed quote, another number of fields), which
/// `csv-core` then splits and, where it is no record, gives its reason.
fn split_simply_quoted(line: &[u8]) -> Option<[&[u8]; 3]> {
    let mut fields = [&[][..]; 3];
    let mut rest = line;
    for (i, field) in fields.iter_mut().enumerate() {
        let (value, after) = match rest.strip_prefix(b"\"") {
            Some(quoted) => {
                let close = memchr::memchr(b'"', quoted)?;
                (&quoted[..close], &quoted[close + 1..])
            }
            None => {
                let end = memchr::memchr(b',', rest).unwrap_or(rest.len());
                if memchr::memchr(b'"', &rest[..end]).is_some() {
                    return None;
                }
                rest.split_at(end)
            }
        };
        *field = value;
        rest = match (i == 2, after) {
            (true, []) => after,
            (false, [b',', tail @ ..]) => tail,
            _ => return None,
        };
    }
    Some(fields)
}

/// The bytes of `word` equal to `byte`: bit 7 of each such byte set, every other bit clear.
/// Exact (no carry crosses a byte, unlike the `(x - 0x01..) & !x` trick, which also flags a
/// byte one above a match): `(x & 0x7f) + 0x7f` sets bit 7 exactly when the low seven bits
/// of `x` are not all zero.
#[inline]
fn bytes_equal_to(word: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (u64::from(byte) * 0x0101_0101_0101_0101);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// `bytes` as a decimal `i64`: an optional sign, then digits (as [`str::parse`] reads it).
#[inline]
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first()? {
        (b'-', digits) => (true, digits),
        (b'+', digits) => (false, digits),
        _ => (false, bytes),
    };
    let magnitude = parse_digits(digits)?;
    if negative {
        // i64::MIN's magnitude, 2^63, wraps to itself.
        (magnitude <= i64::MIN.unsigned_abs()).then(|| (magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `bytes` as a decimal `u32`: an optional `+`, then digits (as [`str::parse`] reads it).
#[inline]
pub fn parse_u32(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.strip_prefix(b"+").unwrap_or(bytes);
    u32::try_from(parse_digits(digits)?).ok()
}

/// The most significant digits [`parse_digits`] takes: 10^19 - 1 fits a `u64`.
const MAX_DIGITS: usize = 19;

/// The value of the decimal `digits` (at least one, nothing but `0`-`9`), if it has at most
/// [`MAX_DIGITS`] digits after its leading zeros.
///
/// Eight digits at a time, checked and combined in one `u64` (SWAR: a timestamp's 13 digits
/// are two steps and a 5-digit tail, not a 13-step multiply chain).
#[inline]
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let zeros = digits.iter().take_while(|&&b| b == b'0').count();
    let significant = &digits[zeros..];
    if significant.len() > MAX_DIGITS {
        return None;
    }
    let mut value = 0u64;
    let mut chunks = significant.chunks_exact(8);
    for chunk in &mut chunks {
        let chunk = u64::from_le_bytes(chunk.try_into().ok()?);
        value = value * 100_000_000 + eight_digits(chunk)?;
    }
    for &b in chunks.remainder() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u64::from(digit);
    }
    Some(value)
}

/// The value of eight ASCII digits loaded little-endian (the first digit in the lowest
/// byte), or `None` if a byte is not a digit. The check and the combination are
/// `fast_float`'s: every byte's high nibble is 3 and adding 6 does not carry out of the low
/// one; then pairs, quads and the halves are combined by multiplication.
#[inline(always)]
fn eight_digits(chunk: u64) -> Option<u64> {
    if digit_nibbles(chunk) != 0x3333_3333_3333_3333 {
        return None;
    }
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let mut value = chunk - ASCII_ZEROS;
    value = value * 10 + (value >> 8);
    value = ((value & MASK).wrapping_mul(MUL1) + ((value >> 16) & MASK).wrapping_mul(MUL2)) >> 32;
    Some(value)
}

/// Eight ASCII `0`s as a word.
const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// `0x33` in each byte of `word` that is an ASCII digit, another value in every other byte
/// (below the first non-digit): the byte's high nibble, and the high nibble of the byte plus
/// 6 moved down, which is 3 exactly when adding 6 does not carry out of a digit's low nibble.
#[inline(always)]
fn digit_nibbles(word: u64) -> u64 {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    (word & HIGH_NIBBLES) | ((word.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) >> 4)
}

/// One read of a [`LineReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLine {
    /// A line that fits: the bytes handed out are the line, without its line ending.
    Fits,
    /// A line longer than the limit: the bytes handed out are its first `max_line_bytes`.
    /// Its tail, if not read yet, is skipped by the next reads ([`RawLine::Skipped`]).
    Oversized,
    /// Part of an oversized line's tail was skipped (at most one read of the inner reader's
    /// buffer) and its end is not reached yet; the bytes handed out are empty. No line is
    /// counted: call again.
    Skipped,
}

/// Reads lines (ending in `\n` or `\r\n`, the last one possibly unterminated) and numbers
/// them from 1.
///
/// A line that lies whole in the inner reader's buffer is handed out in place, not copied
/// (the common case: one pass finds the ends of up to [`SCAN_LINES`] lines, consumed
/// together); only a line that straddles two reads of the inner reader is gathered into the
/// reader's own buffer.
///
/// Bounds: holds at most `max_line_bytes + 1` bytes of a line, whatever the input, and one
/// call consumes at most `max_line_bytes + 1` bytes plus one buffer of the inner reader
/// before it returns: an endless line is an [`RawLine::Oversized`] and then
/// [`RawLine::Skipped`] reads, never a call that does not return.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max_line_bytes: usize,
    line: u64,
    /// Inside the tail of an oversized line.
    skipping: bool,
    /// Bytes of the inner buffer handed out since it was last consumed: the lines read in
    /// place from [`ends`](Self::ends), consumed together once those run out.
    pending: usize,
    /// Where the lines found by the last scan of the inner buffer end (their `\n`), from the
    /// buffer's start at that scan; [`SCAN_LINES`] at most. The next read hands out the line
    /// ending at `ends[next]` without looking at the inner reader again.
    ends: Vec<usize>,
    next: usize,
    /// A line gathered across reads of the inner reader.
    gathered: Vec<u8>,
}

/// Line ends a [`LineReader`] finds in one scan of its inner buffer ([`line_ends`]): one pass
/// per this many short lines instead of a search per line, and a bounded list.
const SCAN_LINES: usize = 128;

/// Appends to `ends` where the first lines of `bytes` end (each `\n`), up to [`SCAN_LINES`]
/// in all: 32 bytes at a time, as a mask of the bytes that are `\n` ([`newline_mask`]), then
/// the tail byte by byte. Lines of a few dozen
/// bytes are what it is for: a `memchr` per line end pays its setup for every line.
#[inline]
fn line_ends(bytes: &[u8], ends: &mut Vec<usize>) {
    const BLOCK: usize = 32;
    let mut blocks = bytes.chunks_exact(BLOCK);
    let mut base = 0;
    for block in &mut blocks {
        let (low, high) = block.split_at(BLOCK / 2);
        let mut hits = newline_mask(low) | (newline_mask(high) << 16);
        while hits != 0 {
            ends.push(base + hits.trailing_zeros() as usize);
            if ends.len() == SCAN_LINES {
                return;
            }
            hits &= hits - 1;
        }
        base += BLOCK;
    }
    for (at, &b) in blocks.remainder().iter().enumerate() {
        if b == b'\n' {
            ends.push(base + at);
            if ends.len() == SCAN_LINES {
                return;
            }
        }
    }
}

/// Bit `i` set for each byte `i` of the 16 `bytes` that is `\n`: one vector compare and a
/// move mask (SSE2, which every x86-64 processor has).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn newline_mask(bytes: &[u8]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    assert_eq!(bytes.len(), 16);
    // SAFETY: the load reads exactly the 16 bytes of `bytes` (checked above), unaligned loads
    // are what `_mm_loadu_si128` is for, and SSE2 is part of the x86-64 baseline.
    let mask = unsafe {
        let block = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(block, _mm_set1_epi8(b'\n' as i8)))
    };
    mask as u32
}

/// Bit `i` set for each byte `i` of the 16 `bytes` that is `\n` (elsewhere than x86-64, byte by
/// byte).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn newline_mask(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &b)| mask | (u32::from(b == b'\n') << i))
}

/// What a [`LineReader`]'s scan of its inner buffer found.
enum Scan {
    /// The ends of one or more lines.
    Lines,
    /// No line end: the next line continues past the buffer (or is the unterminated last).
    Straddles,
    /// A part of an oversized line's tail, skipped.
    Skipped,
    /// The end of the input.
    End,
}

/// The error of an inner reader whose buffer changed without a consume.
#[cold]
fn shrank() -> io::Error {
    io::Error::other("the input's buffer shrank between two reads without a consume")
}

/// The inner reader's next bytes, retrying interrupted reads. Called once per line: inlined,
/// or a change elsewhere in the crate can make the compiler call it (measured: 24
/// instructions per record more).
#[inline(always)]
fn fill<R: BufRead>(inner: &mut R) -> io::Result<&[u8]> {
    loop {
        match inner.fill_buf() {
            Ok(_) => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    inner.fill_buf()
}

/// A line without its `\n`: without a trailing `\r`, and cut to `max_line_bytes`.
#[inline]
fn cut(line: &[u8], max_line_bytes: usize) -> (RawLine, &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max_line_bytes {
        (RawLine::Oversized, &line[..max_line_bytes])
    } else {
        (RawLine::Fits, line)
    }
}

impl<R: BufRead> LineReader<R> {
    /// A reader over `inner` that cuts lines longer than `max_line_bytes`.
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        Self {
            inner,
            max_line_bytes,
            line: 0,
            skipping: false,
            pending: 0,
            ends: Vec::with_capacity(SCAN_LINES),
            next: 0,
            gathered: Vec::new(),
        }
    }

    /// The number of the last line read (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// The next line, or `None` at the end of the input. The bytes are valid until the next
    /// call. Inlined into the reader's loop, once per line.
    #[inline]
    pub fn next_line(&mut self) -> io::Result<Option<(RawLine, &[u8])>> {
        if self.next == self.ends.len() {
            match self.scan()? {
                Scan::Lines => {}
                Scan::End => return Ok(None),
                Scan::Skipped => return Ok(Some((RawLine::Skipped, &[]))),
                // One byte over the limit, so that a `\r` before the `\n` fits.
                Scan::Straddles => return self.gather(self.max_line_bytes + 1),
            }
        }
        // In place: the whole line and its `\n` are in the inner buffer, which `fill_buf`
        // hands out again unchanged (nothing was consumed since the scan).
        let end = self.ends[self.next];
        self.next += 1;
        let start = std::mem::replace(&mut self.pending, end + 1);
        self.line += 1;
        let line = self.inner.fill_buf()?.get(start..end).ok_or_else(shrank)?;
        Ok(Some(cut(line, self.max_line_bytes)))
    }

    /// Consumes the lines handed out in place, then finds the ends of the next lines that lie
    /// whole in the inner buffer (a line longer than the limit among them is cut as one
    /// gathered would be), after skipping the rest of an oversized line.
    fn scan(&mut self) -> io::Result<Scan> {
        self.ends.clear();
        self.next = 0;
        self.inner.consume(std::mem::take(&mut self.pending));
        if self.skipping {
            let available = fill(&mut self.inner)?;
            if available.is_empty() {
                self.skipping = false;
                return Ok(Scan::End);
            }
            let (used, ended) = match memchr::memchr(b'\n', available) {
                Some(end) => (end + 1, true),
                None => (available.len(), false),
            };
            self.inner.consume(used);
            if !ended {
                return Ok(Scan::Skipped);
            }
            self.skipping = false;
        }
        let available = fill(&mut self.inner)?;
        if available.is_empty() {
            return Ok(Scan::End);
        }
        line_ends(available, &mut self.ends);
        Ok(if self.ends.is_empty() {
            Scan::Straddles
        } else {
            Scan::Lines
        })
    }

    /// Reads a line that does not end in the inner buffer into `gathered`, keeping at most
    /// `keep` bytes of it.
    fn gather(&mut self, keep: usize) -> io::Result<Option<(RawLine, &[u8])>> {
        let buf = &mut self.gathered;
        buf.clear();
        let mut past_bound = false;
        loop {
            let available = fill(&mut self.inner)?;
            if available.is_empty() {
                break;
            }
            let (chunk, used, ended) = match memchr::memchr(b'\n', available) {
                Some(end) => (&available[..end], end + 1, true),
                None => (available, available.len(), false),
            };
            let room = keep - buf.len();
            if chunk.len() > room {
                // Past the bound: the line is oversized whatever follows.
                buf.extend_from_slice(&chunk[..room]);
                self.inner.consume(if ended { used } else { room });
                self.skipping = !ended;
                past_bound = true;
                break;
            }
            buf.extend_from_slice(chunk);
            self.inner.consume(used);
            if ended {
                break;
            }
        }
        self.line += 1;
        if past_bound {
            return Ok(Some((
                RawLine::Oversized,
                &self.gathered[..self.max_line_bytes],
            )));
        }
        Ok(Some(cut(&self.gathered, self.max_line_bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(input: &str, max_line_bytes: usize) -> Vec<(u64, RawLine, String)> {
        let mut reader = LineReader::new(input.as_bytes(), max_line_bytes);
        let mut out = Vec::new();
        while let Some((raw, line)) = reader.next_line().unwrap() {
            if raw != RawLine::Skipped {
                let line = String::from_utf8(line.to_vec()).unwrap();
                out.push((reader.line_number(), raw, line));
            }
        }
        out
    }

    fn parse(line: &[u8]) -> Result<TrafficRecord, RejectReason> {
        LineParser::new().parse(line, LinePos::default())
    }

    #[test]
    fn lines_end_in_lf_or_crlf_and_the_last_may_be_unterminated() {
        assert_eq!(
            lines("a\r\nbb\n\nccc", 8),
            vec![
                (1, RawLine::Fits, "a".into()),
                (2, RawLine::Fits, "bb".into()),
                (3, RawLine::Fits, "".into()),
                (4, RawLine::Fits, "ccc".into()),
            ]
        );
        assert!(lines("", 8).is_empty());
        assert_eq!(lines("x\n", 8).len(), 1);
    }

    #[test]
    fn oversized_lines_are_cut_and_skipped_to_their_newline() {
        assert_eq!(
            lines("abcd\r\nabcde\nabcdefghij\r\nok\nabcdefgh", 4),
            vec![
                (1, RawLine::Fits, "abcd".into()),
                (2, RawLine::Oversized, "abcd".into()),
                (3, RawLine::Oversized, "abcd".into()),
                (4, RawLine::Fits, "ok".into()),
                (5, RawLine::Oversized, "abcd".into()),
            ]
        );
    }

    #[test]
    fn a_tiny_read_buffer_gives_the_same_lines() {
        let text = "1,浙A12345,7\r\n".repeat(3) + &"x".repeat(50) + "\nlast";
        let mut reader = LineReader::new(io::BufReader::with_capacity(3, text.as_bytes()), 20);
        let mut kinds = Vec::new();
        while let Some((raw, line)) = reader.next_line().unwrap() {
            if raw != RawLine::Skipped {
                kinds.push((raw, line.len()));
            }
        }
        let record = "1,浙A12345,7".len();
        assert_eq!(
            kinds,
            vec![
                (RawLine::Fits, record),
                (RawLine::Fits, record),
                (RawLine::Fits, record),
                (RawLine::Oversized, 20),
                (RawLine::Fits, 4),
            ]
        );
    }

    /// Yields `byte` forever, counting the bytes handed out.
    struct Endless {
        byte: u8,
        served: u64,
    }

    impl io::Read for Endless {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            out.fill(self.byte);
            self.served += out.len() as u64;
            Ok(out.len())
        }
    }

    #[test]
    fn an_endless_line_returns_control_after_each_bounded_read() {
        const BUFFER: usize = 4096;
        const MAX: usize = 100;
        for byte in [b'x', 0] {
            let endless = Endless { byte, served: 0 };
            let mut reader = LineReader::new(io::BufReader::with_capacity(BUFFER, endless), MAX);
            let (raw, line) = reader.next_line().unwrap().unwrap();
            assert_eq!((raw, line.len()), (RawLine::Oversized, MAX));
            assert_eq!(reader.line_number(), 1);
            for step in 1..=50u64 {
                let (raw, line) = reader.next_line().unwrap().unwrap();
                assert_eq!((raw, line.len()), (RawLine::Skipped, 0));
                // Each call reads at most one buffer more.
                assert!(reader.inner.get_ref().served <= (step + 1) * BUFFER as u64);
            }
            assert_eq!(
                reader.line_number(),
                1,
                "no line ends inside the endless one"
            );
        }
    }

    #[test]
    fn parse_accepts_records_and_names_each_fault() {
        let record = parse("1772409600000,浙A12345,17".as_bytes()).unwrap();
        assert_eq!(record.ts_ms, 1_772_409_600_000);
        assert_eq!(record.plate.as_str(), "浙A12345");
        assert_eq!(record.checkpoint_id, 17);
        assert_eq!(parse("-5,京A0000X,0".as_bytes()).unwrap().ts_ms, -5);

        let bad_plate = RejectReason::BadPlate;
        let cases: [(&[u8], RejectReason); 14] = [
            (b"", RejectReason::EmptyLine),
            (b"1,\xff\xfe,2", bad_plate(PlateError::InvalidUtf8)),
            (b"1,2", RejectReason::FieldCount { found: 2 }),
            (b"1,a,2,3", RejectReason::FieldCount { found: 4 }),
            (b"1x,a,2", RejectReason::BadTimestamp),
            (b"9223372036854775808,a,2", RejectReason::BadTimestamp),
            ("1,浙A12345,-2".as_bytes(), RejectReason::BadCheckpointId),
            (
                "1,浙A12345,4294967296".as_bytes(),
                RejectReason::BadCheckpointId,
            ),
            (b"1,,2", bad_plate(PlateError::Empty)),
            ("1,浙,2".as_bytes(), bad_plate(PlateError::NoCityLetter)),
            ("1,浙A1,2".as_bytes(), bad_plate(PlateError::BadSerial)),
            (
                "1,浙A123456789,2".as_bytes(),
                bad_plate(PlateError::BadSerial),
            ),
            (
                "1, 浙A12345,2".as_bytes(),
                bad_plate(PlateError::NoProvince),
            ),
            ("1,\"浙A12345,2".as_bytes(), RejectReason::UnclosedQuote),
        ];
        for (line, reason) in cases {
            assert_eq!(
                parse(line),
                Err(reason),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(
            RejectReason::FieldCount { found: 2 }.to_string(),
            "wrong field count: expected 3, found 2"
        );
    }

    #[test]
    fn quoted_fields_follow_rfc_4180_within_a_line() {
        let mut parser = LineParser::new();
        let at = LinePos::default();
        let record = parser
            .parse("\"1\",\"浙A12345\",\"7\"".as_bytes(), at)
            .unwrap();
        assert_eq!(
            (record.ts_ms, record.plate.as_str(), record.checkpoint_id),
            (1, "浙A12345", 7)
        );
        // A quoted comma stays in its field; a doubled quote is a quote.
        assert_eq!(
            parser.parse("1,\"浙A1,2345\",7".as_bytes(), at),
            Err(RejectReason::BadPlate(PlateError::BadSerial))
        );
        assert_eq!(
            parser.parse("1,\"浙A\"\"2345\",7".as_bytes(), at),
            Err(RejectReason::BadPlate(PlateError::BadSerial))
        );
        // An unclosed quote does not leak into the next line.
        assert_eq!(
            parser.parse("1,\"浙A12345,7".as_bytes(), at),
            Err(RejectReason::UnclosedQuote)
        );
        assert!(parser.parse("2,浙A12345,7".as_bytes(), at).is_ok());
    }

    #[test]
    fn integers_parse_from_bytes_as_std_parses_them() {
        for text in [
            "0",
            "-0",
            "+7",
            "-7",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "",
            "-",
            "+",
            "1 ",
            " 1",
            "1_0",
            "4294967295",
            "4294967296",
            "٣",
        ] {
            assert_eq!(parse_i64(text.as_bytes()), text.parse().ok(), "{text:?}");
            assert_eq!(parse_u32(text.as_bytes()), text.parse().ok(), "{text:?}");
        }
    }

    #[test]
    fn a_header_names_the_columns_in_any_order() {
        let mut parser = LineParser::new();
        assert_eq!(parser.header(HEADER.as_bytes()), Ok(true));
        assert_eq!(parser.columns(), Columns::default());
        assert_eq!(parser.header(b"plate,checkpoint_id,ts_ms"), Ok(true));
        let record = parser
            .parse("浙A12345,7,1772409600000".as_bytes(), LinePos::default())
            .unwrap();
        assert_eq!((record.ts_ms, record.checkpoint_id), (1_772_409_600_000, 7));
        assert_eq!(parser.header(b"\"ts_ms\",plate,checkpoint_id"), Ok(true));

        let mut parser = LineParser::new();
        assert_eq!(parser.header("5,浙A00001,1".as_bytes()), Ok(false));
        assert_eq!(parser.header(b"a,b,c"), Ok(false));
        assert_eq!(parser.columns(), Columns::default());
        for (line, problem) in [
            (
                &b"ts_ms,plate,camera"[..],
                HeaderError::Unknown("camera".into()),
            ),
            (b"ts_ms,plate", HeaderError::Missing("checkpoint_id")),
            (b"ts_ms,plate,plate", HeaderError::Duplicate("plate")),
            (
                b"ts_ms,plate,checkpoint_id,x",
                HeaderError::Unknown("x".into()),
            ),
            (
                b"ts_ms,plate,checkpoint_id,ts_ms",
                HeaderError::Duplicate("ts_ms"),
            ),
        ] {
            assert_eq!(parser.header(line), Err(problem.clone()));
        }
        let message = HeaderError::Unknown("camera".into()).to_string();
        assert_eq!(
            message,
            "unknown column \"camera\"; expected the columns ts_ms, plate, checkpoint_id in any order"
        );
    }

    #[test]
    fn rejections_are_one_json_object_with_cut_lossy_text() {
        let bytes = [b"\xff".as_slice(), "é".repeat(300).as_bytes()].concat();
        let at = LineRef::File {
            file: "a.csv".into(),
            line: 3,
        };
        let rejection = Rejection::new(at, RejectReason::EmptyLine, &bytes);
        assert_eq!(rejection.text.chars().count(), REJECTED_TEXT_CHARS);
        assert!(rejection.text.starts_with('\u{fffd}'));
        let json = rejection.to_json();
        assert!(!json.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["file"], "a.csv");
        assert_eq!(value["line"], 3);
        assert_eq!(value["reason"], "empty line");
        let generated = LineRef::Generated {
            partition: 2,
            offset: 9,
        };
        let value: serde_json::Value = serde_json::from_str(
            &Rejection::new(generated, RejectReason::EmptyLine, b"").to_json(),
        )
        .unwrap();
        assert_eq!(
            (&value["partition"], &value["offset"]),
            (&2.into(), &9.into())
        );
    }

    /// Lines of the bytes where the fast path and `csv-core` could part: separators, quotes,
    /// line-end bytes, signs, digits, a plate's bytes (a province's UTF-8 included), bytes that
    /// are not UTF-8.
    fn tricky_line() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(&b","[..]),
            Just(&b"\""[..]),
            Just(&b"\"\""[..]),
            Just(&b"\r"[..]),
            Just(&b"-"[..]),
            Just(&b"+"[..]),
            Just(&b" "[..]),
            Just(&b"0"[..]),
            Just(&b"7"[..]),
            Just(&b"1772409600000"[..]),
            Just(&b"18446744073709551616"[..]),
            Just("浙".as_bytes()),
            Just(&b"A1234"[..]),
            Just(&b"Z"[..]),
            Just(&b"\xe6\xb5"[..]),
            Just(&b"\xff"[..]),
        ];
        proptest::collection::vec(piece, 1..12).prop_map(|pieces| pieces.concat())
    }

    /// The general path's reading of `line` in the default column order.
    fn by_fields(line: &[u8]) -> Result<TrafficRecord, RejectReason> {
        let mut parser = LineParser::new();
        parser
            .quoted_fields(line)
            .and_then(|f| record(f, Columns::default().order, LinePos::default()))
    }

    #[test]
    fn canonical_lines_take_the_one_pass_path_and_read_as_split_lines_do() {
        let at = LinePos::default();
        for line in [
            "1772409600000,浙A12345,7",
            "1772409600000,浙AD12345,4294967295",
            "177240960,京B0000Z,0",
            "000000001772409,粤Z99999,+12",
            "999999999999999,浙A12345,00000000000000000000012",
            "1772409600000,\"浙A12345\",7",
            "1772409600000,\"浙AD12345\",42",
        ] {
            let record = canonical_line(line.as_bytes(), at);
            assert!(record.is_some(), "{line}");
            assert_eq!(
                record.ok_or(RejectReason::EmptyLine),
                by_fields(line.as_bytes()),
                "{line}"
            );
        }
        // Other shapes go to the general path, which reads or rejects them.
        for line in [
            "1772409600000:浙A12345,7",          // no comma after the timestamp
            "17724096,浙A12345,7",               // 8 digits
            "1772409600000000,浙A12345,7",       // 16 digits
            "-1772409600000,浙A12345,7",         // a sign
            "\"1772409600000\",浙A12345,7",      // a quoted timestamp
            "1772409600000,\"浙A12345,7",        // an unclosed quote
            "1772409600000,\"浙A12345\"7",       // no comma after the quote
            "1772409600000,\"浙A1234\",7",       // a short quoted plate
            "1772409600000,\"浙A12345\"\",7",    // a doubled quote
            "1772409600000,浙A1234,7",           // short plate
            "1772409600000,浙A12345,7,",         // a fourth field
            "1772409600000,浙A12345,4294967296", // id out of range
            "1772409600000,浙a12345,7",          // lower case
            "1772409600000,浙A12345,",           // empty id
            "1772409600000,浙A12345",            // two fields
        ] {
            assert_eq!(canonical_line(line.as_bytes(), at), None, "{line}");
        }
    }

    /// Lines near the canonical shape: digits, plates, commas, quotes, signs and stray bytes
    /// in every arrangement, most of them a byte or a field away from a record.
    fn near_canonical_line() -> impl Strategy<Value = Vec<u8>> {
        let separator = || {
            prop_oneof![
                4 => Just(","),
                1 => Just(":"),
                1 => Just(""),
                1 => Just(",,"),
                1 => Just("\""),
                1 => Just(",\""),
                1 => Just("\","),
            ]
        };
        let plate = prop_oneof![
            3 => Just("浙A12345"),
            3 => Just("浙AD12345"),
            1 => Just("浙A1234"),
            1 => Just("浙A123456X"),
            1 => Just("浙a12345"),
            1 => Just("浙A12,45"),
            1 => Just("浙A1\"345"),
            1 => Just("A12345678"),
        ];
        let tail = prop_oneof![
            Just(&b"7"[..]),
            Just(&b"+7"[..]),
            Just(&b"-7"[..]),
            Just(&b"4294967296"[..]),
            Just(&b"7\r"[..]),
            Just(&b"7,"[..]),
            Just(&b"\"7\""[..]),
            Just(&b""[..]),
            Just(&b"\xfa\xff"[..]),
            Just(&b"9/"[..]),
        ];
        (
            any::<u64>(),
            separator(),
            plate,
            separator(),
            proptest::collection::vec(tail, 0..3),
        )
            .prop_map(|(ts, first, plate, second, tail)| {
                let ts = ts % 10u64.pow(1 + (ts % 17) as u32);
                let mut line = format!("{ts}{first}{plate}{second}").into_bytes();
                line.extend(tail.concat());
                line
            })
    }

    proptest! {
        // Most lines are not records: enough cases that every near miss comes up.
        #![proptest_config(ProptestConfig::with_cases(2048))]
        #[test]
        fn the_one_pass_path_reads_a_line_as_the_split_path_or_leaves_it(
            line in prop_oneof![near_canonical_line(), tricky_line()],
        ) {
            if let Some(record) = canonical_line(&line, LinePos::default()) {
                prop_assert_eq!(Ok(record), by_fields(&line), "{:?}", String::from_utf8_lossy(&line));
            }
        }
    }

    proptest! {
        #[test]
        fn canonical_records_bare_or_quoted_take_the_one_pass_path(
            ts in 100_000_000..1_000_000_000_000_000i64,
            plate in prop_oneof![Just("浙A12345"), Just("京BD1234Z"), Just("粤Z00000")],
            id: u32,
            quoted: bool,
        ) {
            let q = if quoted { "\"" } else { "" };
            let line = format!("{ts},{q}{plate}{q},{id}");
            let record = canonical_line(line.as_bytes(), LinePos::default());
            prop_assert!(record.is_some(), "{}", line);
            prop_assert_eq!(record.ok_or(RejectReason::EmptyLine), by_fields(line.as_bytes()), "{}", line);
        }
    }

    proptest! {
        #[test]
        fn records_with_fields_quoted_whole_split_without_csv_core_and_read_as_it_does(
            ts in any::<i64>(),
            plate in prop_oneof![Just("浙A12345"), Just("京BD1234Z"), Just("A,1\r")],
            id: u32,
            quoted in proptest::array::uniform3(any::<bool>()),
            order in Just([0u8, 1, 2]).prop_shuffle(),
        ) {
            let values = [ts.to_string(), plate.to_string(), id.to_string()];
            let fields: Vec<String> = order
                .iter()
                .map(|&column| {
                    let (value, q) = (&values[usize::from(column)], quoted[usize::from(column)]);
                    // A bare field cannot hold a comma.
                    if q || value.contains(',') { format!("\"{value}\"") } else { value.clone() }
                })
                .collect();
            let line = fields.join(",");
            prop_assert!(split_simply_quoted(line.as_bytes()).is_some(), "{}", line);
            let mut parser = LineParser::new();
            parser.columns = Columns { order };
            let at = LinePos::default();
            let by_csv_core = parser.quoted_fields(line.as_bytes()).and_then(|f| record(f, order, at));
            prop_assert_eq!(parser.parse(line.as_bytes(), at), by_csv_core, "{}", line);
        }
    }

    proptest! {
        #[test]
        fn line_ends_are_the_first_newlines_of_the_bytes(
            bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), Just(0x8au8), any::<u8>()], 0..600),
        ) {
            let mut ends = Vec::new();
            line_ends(&bytes, &mut ends);
            let expected: Vec<usize> = bytes
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i)
                .take(SCAN_LINES)
                .collect();
            prop_assert_eq!(ends, expected);
        }

        #[test]
        fn leading_digits_counts_the_digits_before_the_first_other_byte(
            bytes in proptest::array::uniform8(prop_oneof![Just(b'0'), Just(b'9'), Just(b'/'), Just(b':'), Just(0xfau8), Just(0xffu8), any::<u8>()]),
        ) {
            let expected = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            prop_assert_eq!(leading_digits(u64::from_le_bytes(bytes)), expected);
        }

        #[test]
        fn the_fast_path_reads_every_line_as_csv_core_does(
            line in tricky_line(),
            order in Just([0u8, 1, 2]).prop_shuffle(),
        ) {
            let mut parser = LineParser::new();
            parser.columns = Columns { order };
            let at = LinePos::default();
            let fast = parser.parse(&line, at);
            let by_csv_core = parser.quoted_fields(&line).and_then(|f| record(f, order, at));
            prop_assert_eq!(fast, by_csv_core, "{:?}", String::from_utf8_lossy(&line));
        }

        #[test]
        fn a_word_flags_exactly_its_bytes_equal_to_the_byte(
            bytes in proptest::array::uniform8(prop_oneof![Just(b','), Just(b'-'), Just(b'"'), Just(b'#'), Just(0u8), Just(0x80u8), any::<u8>()]),
            byte in prop_oneof![Just(b','), Just(b'"')],
        ) {
            let expected = bytes
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == byte)
                .fold(0u64, |mask, (i, _)| mask | 0x80 << (8 * i));
            prop_assert_eq!(bytes_equal_to(u64::from_le_bytes(bytes), byte), expected);
        }

        #[test]
        fn integers_parse_as_std_parses_them(
            text in "[+-]?0{0,25}[0-9]{0,22}[a ]?",
            value in any::<i64>(),
            zeros in 0usize..30,
        ) {
            prop_assert_eq!(parse_i64(text.as_bytes()), text.parse().ok(), "{}", &text);
            prop_assert_eq!(parse_u32(text.as_bytes()), text.parse().ok(), "{}", &text);
            let padded = format!("{}{}{}", if value < 0 { "-" } else { "" }, "0".repeat(zeros), value.unsigned_abs());
            prop_assert_eq!(parse_i64(padded.as_bytes()), Some(value));
            let small = value as u32;
            prop_assert_eq!(parse_u32(format!("+{small}").as_bytes()), Some(small));
        }

        #[test]
        fn lines_read_in_place_or_gathered_are_the_lines_of_the_text(
            pieces in proptest::collection::vec(
                prop_oneof![Just("\n"), Just("\r\n"), Just("\r"), Just("ab"), Just("浙A12345,7"), Just("xxxxxxxxxxxxxxxxx")],
                0..40,
            ),
            capacity in 1usize..64,
            max_line_bytes in 1usize..40,
        ) {
            let text = pieces.concat();
            // The model: split at `\n` (no line after a final one), drop one `\r` before it,
            // cut what is longer than the limit.
            let mut expected = Vec::new();
            let body = text.strip_suffix('\n').unwrap_or(&text);
            if !text.is_empty() {
                for line in body.split('\n') {
                    let line = line.strip_suffix('\r').unwrap_or(line).as_bytes();
                    expected.push(if line.len() > max_line_bytes {
                        (RawLine::Oversized, line[..max_line_bytes].to_vec())
                    } else {
                        (RawLine::Fits, line.to_vec())
                    });
                }
            }
            let inner = io::BufReader::with_capacity(capacity, text.as_bytes());
            let mut reader = LineReader::new(inner, max_line_bytes);
            let mut read = Vec::new();
            while let Some((raw, line)) = reader.next_line().unwrap() {
                if raw != RawLine::Skipped {
                    read.push((raw, line.to_vec()));
                    prop_assert_eq!(reader.line_number(), read.len() as u64);
                }
            }
            prop_assert_eq!(read, expected);
        }
    }
}
