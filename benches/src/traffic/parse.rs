//! Parsing CSV lines into records, with a reason for every line that is not one.
//!
//! [`LineReader`] reads lines from any [`BufRead`] and never holds more than
//! `max_line_bytes` of one line: the rest of an oversized line is skipped up to its newline.
//! [`parse_line`] turns one line into a [`TrafficRecord`] or a [`RejectReason`]; a
//! [`Rejection`] is what the job writes, one JSON object per line, to `rejected.jsonl`.

use std::fmt;
use std::io::{self, BufRead};

use serde::Serialize;

use super::record::{Plate, PlateError, TrafficRecord};

/// The header line a file may start with; it is not a data line.
pub const HEADER: &str = "ts_ms,plate,checkpoint_id";

/// The default limit on one line's length in bytes, without its line ending.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024;

/// The most characters of a rejected line kept in its [`Rejection`].
pub const REJECTED_TEXT_CHARS: usize = 200;

/// Why a line is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line does not have exactly three comma-separated fields.
    FieldCount {
        /// The number of fields found.
        found: usize,
    },
    /// `ts_ms` is not a signed 64-bit integer.
    BadTimestamp,
    /// `checkpoint_id` is not an unsigned 32-bit integer.
    BadCheckpointId,
    /// The plate field is empty.
    EmptyPlate,
    /// The plate field is longer than [`Plate::MAX_BYTES`].
    PlateTooLong {
        /// Its length in bytes.
        bytes: usize,
    },
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
            Self::InvalidUtf8 => f.write_str("invalid UTF-8"),
            Self::FieldCount { found } => {
                write!(f, "wrong field count: expected 3, found {found}")
            }
            Self::BadTimestamp => f.write_str("bad ts_ms: not a signed 64-bit integer"),
            Self::BadCheckpointId => {
                f.write_str("bad checkpoint_id: not an unsigned 32-bit integer")
            }
            Self::EmptyPlate => f.write_str("empty plate"),
            Self::PlateTooLong { bytes } => write!(
                f,
                "plate too long: {bytes} bytes, at most {}",
                Plate::MAX_BYTES
            ),
            Self::EmptyLine => f.write_str("empty line"),
            Self::Oversized { max_line_bytes } => {
                write!(f, "line longer than {max_line_bytes} bytes")
            }
        }
    }
}

/// A line that is not a record, as written to `rejected.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The file (or generated partition) the line came from.
    pub file: String,
    /// The line's number, from 1.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
    /// The line's text, lossily decoded and cut to [`REJECTED_TEXT_CHARS`] characters.
    pub text: String,
}

impl Rejection {
    /// A rejection of line `line` of `file`, holding `bytes`.
    pub fn new(file: &str, line: u64, reason: RejectReason, bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        Self {
            file: file.to_owned(),
            line,
            reason: reason.to_string(),
            text: text.chars().take(REJECTED_TEXT_CHARS).collect(),
        }
    }

    /// The rejection as one JSON object, without a line ending.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a rejection has only strings and numbers")
    }
}

/// Whether `line` is the [`HEADER`] (a leading UTF-8 byte order mark is allowed).
pub fn is_header(line: &[u8]) -> bool {
    line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line) == HEADER.as_bytes()
}

/// Parses one line, without its line ending, as `ts_ms,plate,checkpoint_id`.
///
/// Fields are taken as they are (no trimming, no quoting); the checks run in the order
/// empty line, UTF-8, field count, `ts_ms`, plate, `checkpoint_id`, and the first failure
/// is the reason.
pub fn parse_line(line: &[u8]) -> Result<TrafficRecord, RejectReason> {
    if line.is_empty() {
        return Err(RejectReason::EmptyLine);
    }
    let text = std::str::from_utf8(line).map_err(|_| RejectReason::InvalidUtf8)?;
    let mut fields = text.split(',');
    let (Some(ts), Some(plate), Some(checkpoint), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(RejectReason::FieldCount {
            found: text.split(',').count(),
        });
    };
    let ts_ms = ts.parse::<i64>().map_err(|_| RejectReason::BadTimestamp)?;
    let plate = Plate::try_from(plate).map_err(|err| match err {
        PlateError::Empty => RejectReason::EmptyPlate,
        PlateError::TooLong { bytes } => RejectReason::PlateTooLong { bytes },
    })?;
    let checkpoint_id = checkpoint
        .parse::<u32>()
        .map_err(|_| RejectReason::BadCheckpointId)?;
    Ok(TrafficRecord {
        ts_ms,
        plate,
        checkpoint_id,
    })
}

/// One line read by a [`LineReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLine {
    /// A line that fits: its bytes, without the line ending, are in the caller's buffer.
    Fits,
    /// A line longer than the limit: the buffer holds its first `max_line_bytes` bytes,
    /// and the rest was skipped.
    Oversized,
}

/// Reads lines (ending in `\n` or `\r\n`, the last one possibly unterminated) and numbers
/// them from 1.
///
/// Bound: holds at most `max_line_bytes + 1` bytes of a line, whatever the input.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max_line_bytes: usize,
    line: u64,
}

impl<R: BufRead> LineReader<R> {
    /// A reader over `inner` that cuts lines longer than `max_line_bytes`.
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        Self {
            inner,
            max_line_bytes,
            line: 0,
        }
    }

    /// The number of the last line read (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// Reads the next line into `buf` (cleared first); `None` at the end of the input.
    pub fn read_line(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<RawLine>> {
        buf.clear();
        // One byte over the limit, so that a `\r` before the `\n` fits.
        let keep = self.max_line_bytes + 1;
        let mut dropped = false;
        let mut started = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
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
                dropped = true;
            }
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.inner.consume(used);
            if ended {
                break;
            }
        }
        self.line += 1;
        if !dropped && buf.last() == Some(&b'\r') {
            buf.pop();
        }
        if dropped || buf.len() > self.max_line_bytes {
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
            out.push((
                reader.line_number(),
                raw,
                String::from_utf8(buf.clone()).unwrap(),
            ));
        }
        out
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
            lines("abcd\r\nabcde\nabcdefghij\r\nok", 4),
            vec![
                (1, RawLine::Fits, "abcd".into()),
                (2, RawLine::Oversized, "abcd".into()),
                (3, RawLine::Oversized, "abcd".into()),
                (4, RawLine::Fits, "ok".into()),
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
            kinds.push((raw, buf.len()));
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

    #[test]
    fn parse_line_accepts_records_and_names_each_fault() {
        let record = parse_line("1772409600000,浙A12345,17".as_bytes()).unwrap();
        assert_eq!(record.ts_ms, 1_772_409_600_000);
        assert_eq!(record.plate.as_str(), "浙A12345");
        assert_eq!(record.checkpoint_id, 17);
        assert_eq!(parse_line(b"-5,x,0").unwrap().ts_ms, -5);

        let long = format!("1,{},2", "x".repeat(24));
        let cases: [(&[u8], RejectReason); 9] = [
            (b"", RejectReason::EmptyLine),
            (b"1,\xff\xfe,2", RejectReason::InvalidUtf8),
            (b"1,2", RejectReason::FieldCount { found: 2 }),
            (b"1,a,2,3", RejectReason::FieldCount { found: 4 }),
            (b"1x,a,2", RejectReason::BadTimestamp),
            (b"1,a,-2", RejectReason::BadCheckpointId),
            (b"1,a,4294967296", RejectReason::BadCheckpointId),
            (b"1,,2", RejectReason::EmptyPlate),
            (long.as_bytes(), RejectReason::PlateTooLong { bytes: 24 }),
        ];
        for (line, reason) in cases {
            assert_eq!(parse_line(line), Err(reason), "{line:?}");
        }
        assert_eq!(
            RejectReason::FieldCount { found: 2 }.to_string(),
            "wrong field count: expected 3, found 2"
        );
    }

    #[test]
    fn header_is_recognised_with_or_without_a_byte_order_mark() {
        assert!(is_header(HEADER.as_bytes()));
        assert!(is_header("\u{feff}ts_ms,plate,checkpoint_id".as_bytes()));
        assert!(!is_header(b"ts_ms,plate"));
    }

    #[test]
    fn rejections_are_one_json_object_with_cut_lossy_text() {
        let bytes = [b"\xff".as_slice(), "é".repeat(300).as_bytes()].concat();
        let rejection = Rejection::new("a.csv", 3, RejectReason::InvalidUtf8, &bytes);
        assert_eq!(rejection.text.chars().count(), REJECTED_TEXT_CHARS);
        assert!(rejection.text.starts_with('\u{fffd}'));
        let json = rejection.to_json();
        assert!(!json.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["file"], "a.csv");
        assert_eq!(value["line"], 3);
        assert_eq!(value["reason"], "invalid UTF-8");
    }
}
