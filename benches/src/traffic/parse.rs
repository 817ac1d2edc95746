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
    #[inline]
    pub fn parse(&mut self, line: &[u8], at: LinePos) -> Result<TrafficRecord, RejectReason> {
        if line.is_empty() {
            return Err(RejectReason::EmptyLine);
        }
        let found = self.split(line)?;
        if found != 3 {
            return Err(RejectReason::FieldCount { found });
        }
        let mut field = [&[][..]; 3];
        for (i, &column) in self.columns.order.iter().enumerate() {
            field[usize::from(column)] = self.field(i);
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

/// `bytes` as a decimal `i64`: an optional sign, then digits (as [`str::parse`] reads it).
#[inline]
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first()? {
        (b'-', digits) => (true, digits),
        (b'+', digits) => (false, digits),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulated towards the sign, so that i64::MIN parses.
    let mut value: i64 = 0;
    for &b in digits {
        let digit = i64::from(b.wrapping_sub(b'0'));
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

/// `bytes` as a decimal `u32`: an optional `+`, then digits (as [`str::parse`] reads it).
#[inline]
pub fn parse_u32(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.strip_prefix(b"+").unwrap_or(bytes);
    if digits.is_empty() {
        return None;
    }
    let mut value: u32 = 0;
    for &b in digits {
        let digit = u32::from(b.wrapping_sub(b'0'));
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(digit)?;
    }
    Some(value)
}

/// One read of a [`LineReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLine {
    /// A line that fits: its bytes, without the line ending, are in the caller's buffer.
    Fits,
    /// A line longer than the limit: the buffer holds its first `max_line_bytes` bytes. Its
    /// tail, if not read yet, is skipped by the next reads ([`RawLine::Skipped`]).
    Oversized,
    /// Part of an oversized line's tail was skipped (at most one read of the inner reader's
    /// buffer) and its end is not reached yet; the caller's buffer is empty. No line is
    /// counted: call again.
    Skipped,
}

/// Reads lines (ending in `\n` or `\r\n`, the last one possibly unterminated) and numbers
/// them from 1.
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
}

impl<R: BufRead> LineReader<R> {
    /// A reader over `inner` that cuts lines longer than `max_line_bytes`.
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        Self {
            inner,
            max_line_bytes,
            line: 0,
            skipping: false,
        }
    }

    /// The number of the last line read (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// The inner reader's next bytes, retrying interrupted reads.
    fn fill(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.inner.fill_buf() {
                Ok(_) => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        self.inner.fill_buf()
    }

    /// Reads the next line into `buf` (cleared first); `None` at the end of the input.
    pub fn read_line(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<RawLine>> {
        buf.clear();
        if self.skipping {
            let available = self.fill()?;
            if available.is_empty() {
                self.skipping = false;
                return Ok(None);
            }
            let (used, ended) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (end + 1, true),
                None => (available.len(), false),
            };
            self.inner.consume(used);
            if !ended {
                return Ok(Some(RawLine::Skipped));
            }
            self.skipping = false;
        }
        // One byte over the limit, so that a `\r` before the `\n` fits.
        let keep = self.max_line_bytes + 1;
        let mut started = false;
        loop {
            let available = self.fill()?;
            if available.is_empty() {
                if !started {
                    return Ok(None);
                }
                break;
            }
            started = true;
            let (chunk, used, ended) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], end + 1, true),
                None => (available, available.len(), false),
            };
            let room = keep - buf.len();
            if chunk.len() > room {
                // Past the bound: the line is oversized whatever follows.
                buf.extend_from_slice(&chunk[..room]);
                self.inner.consume(if ended { used } else { room });
                self.skipping = !ended;
                self.line += 1;
                buf.truncate(self.max_line_bytes);
                return Ok(Some(RawLine::Oversized));
            }
            buf.extend_from_slice(chunk);
            self.inner.consume(used);
            if ended {
                break;
            }
        }
        self.line += 1;
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        if buf.len() > self.max_line_bytes {
            buf.truncate(self.max_line_bytes);
            return Ok(Some(RawLine::Oversized));
        }
        Ok(Some(RawLine::Fits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &str, max_line_bytes: usize) -> Vec<(u64, RawLine, String)> {
        let mut reader = LineReader::new(input.as_bytes(), max_line_bytes);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(raw) = reader.read_line(&mut buf).unwrap() {
            if raw != RawLine::Skipped {
                out.push((
                    reader.line_number(),
                    raw,
                    String::from_utf8(buf.clone()).unwrap(),
                ));
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
        let mut buf = Vec::new();
        let mut kinds = Vec::new();
        while let Some(raw) = reader.read_line(&mut buf).unwrap() {
            if raw != RawLine::Skipped {
                kinds.push((raw, buf.len()));
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
            let mut buf = Vec::new();
            assert_eq!(
                reader.read_line(&mut buf).unwrap(),
                Some(RawLine::Oversized)
            );
            assert_eq!(buf.len(), MAX);
            assert_eq!(reader.line_number(), 1);
            for step in 1..=50u64 {
                assert_eq!(reader.read_line(&mut buf).unwrap(), Some(RawLine::Skipped));
                assert!(buf.is_empty());
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
}
