//! The job's input: CSV files (one file per partition) or the generator, read one line at
//! a time with a checkpointable position.
//!
//! A [`PartitionReader`] turns every line after an optional header into exactly one
//! [`Line`]: a record or a rejection (and, inside an oversized line, [`Line::Skipped`] steps
//! that hand control back). Its [`PartitionReader::offset`] counts the lines consumed (header
//! included), and [`TrafficInput::open_at`] resumes after that many lines.
//!
//! The header is optional: line 1 is the header when one of its fields is a column name
//! ([`COLUMNS`]), and then it must name the three columns, in any order, and nothing else;
//! otherwise line 1 is data. A UTF-8 byte order mark before line 1 is skipped.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::Serialize;

use super::generator::{GeneratorConfig, GeneratorError, PartitionGenerator};
use super::parse::{
    BOM, COLUMNS, DEFAULT_MAX_LINE_BYTES, HeaderError, LineParser, LineReader, RawLine,
    RejectReason, Rejection,
};
use super::record::{LinePos, TrafficRecord};

/// Bytes of a file partition one read hands out at most (the read buffer of a file read with
/// `read(2)`, the window of a mapped one): also the most bytes of an oversized line's tail one
/// read skips.
const FILE_BUFFER_BYTES: usize = 64 * 1024;

/// A partition that rejects more than `1 / REJECT_WARNING_FRACTION` of its lines is worth a
/// warning: the input is likely not what the job expects.
pub const REJECT_WARNING_FRACTION: u64 = 10;

/// Where the records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficInput {
    /// CSV files, one partition each, in this order.
    Files(Vec<PathBuf>),
    /// The built-in generator.
    Generate(GeneratorConfig),
}

/// Why the input cannot be read.
#[derive(Debug)]
pub enum InputError {
    /// Reading or listing `file` failed.
    Io {
        /// The file or folder.
        file: String,
        /// The failure.
        source: io::Error,
    },
    /// A folder holds no `*.csv` file.
    EmptyFolder(PathBuf),
    /// A `*.csv` entry of a folder is not a file: a folder, or a link to a folder or to
    /// nothing.
    NotAFile {
        /// The entry.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// Line 1 of `file` names columns, but not the expected ones.
    Header {
        /// The file.
        file: String,
        /// What is wrong.
        problem: HeaderError,
    },
    /// The partition asked for does not exist.
    NoSuchPartition {
        /// The partition asked for.
        partition: usize,
        /// The input's partitions.
        partitions: usize,
    },
    /// The generator's configuration is unusable.
    Generator(GeneratorError),
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { file, source } => write!(f, "{file}: {source}"),
            Self::EmptyFolder(path) => {
                write!(f, "{}: the folder holds no *.csv files", path.display())
            }
            Self::NotAFile { path, what } => write!(
                f,
                "{}: {what}, not a CSV file (a folder's *.csv entries must be files or links to files)",
                path.display()
            ),
            Self::Header { file, problem } => {
                write!(f, "{file}, line 1: the header is not usable: {problem}")
            }
            Self::NoSuchPartition {
                partition,
                partitions,
            } => write!(
                f,
                "input partition {partition} does not exist (partitions: {partitions})"
            ),
            Self::Generator(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Generator(err) => Some(err),
            Self::Header { problem, .. } => Some(problem),
            Self::EmptyFolder(_) | Self::NotAFile { .. } | Self::NoSuchPartition { .. } => None,
        }
    }
}

/// An input line as the outputs name it: `file` and `line` (from 1), or, for the generator,
/// `partition` and `offset` (the lines before it, header included:
/// [`TrafficInput::open_at`]`(partition, offset)` reads it next).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum LineRef {
    /// A line of a file.
    File {
        /// The file's path.
        file: String,
        /// The line's number, from 1.
        line: u64,
    },
    /// A generated line.
    Generated {
        /// The generator's partition.
        partition: u32,
        /// The lines before it in its partition.
        offset: u64,
    },
}

impl TrafficInput {
    /// The input at `path`: one file, or the `*.csv` entries of a folder sorted by name.
    ///
    /// A folder's entries are taken by name (`*.csv`, any case), and symbolic links are
    /// followed: a link to a file is read as that file; a `*.csv` entry that is a folder,
    /// a link to one or a dangling link is an error, never skipped. Other entries are ignored.
    pub fn from_path(path: &Path) -> Result<Self, InputError> {
        let io_error = |file: &Path| {
            let file = file.display().to_string();
            move |source| InputError::Io { file, source }
        };
        if !fs::metadata(path).map_err(io_error(path))?.is_dir() {
            return Ok(Self::Files(vec![path.to_owned()]));
        }
        let mut files = Vec::new();
        for entry in fs::read_dir(path).map_err(io_error(path))? {
            let entry = entry.map_err(io_error(path))?.path();
            let is_csv = entry
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
            if !is_csv {
                continue;
            }
            // Follows links; a dangling link has no metadata.
            let what = match fs::metadata(&entry) {
                Ok(meta) if !meta.is_dir() => {
                    files.push(entry);
                    continue;
                }
                Ok(_) if entry.is_symlink() => "a link to a folder",
                Ok(_) => "a folder",
                Err(err) if err.kind() == io::ErrorKind::NotFound && entry.is_symlink() => {
                    "a link to nothing"
                }
                Err(err) => return Err(io_error(&entry)(err)),
            };
            return Err(InputError::NotAFile { path: entry, what });
        }
        if files.is_empty() {
            return Err(InputError::EmptyFolder(path.to_owned()));
        }
        files.sort();
        Ok(Self::Files(files))
    }

    /// The files read, one per partition in partition order; empty for the generator.
    pub fn files(&self) -> &[PathBuf] {
        match self {
            Self::Files(files) => files,
            Self::Generate(_) => &[],
        }
    }

    /// The number of partitions.
    pub fn partitions(&self) -> usize {
        match self {
            Self::Files(files) => files.len(),
            Self::Generate(config) => config.partitions,
        }
    }

    /// The name of partition `p` in messages: its file, or `generated-p{p}` (also for a
    /// file partition that does not exist).
    pub fn partition_name(&self, p: usize) -> String {
        match self.files().get(p) {
            // A UTF-8 path as it is (what `display` writes for it, without the formatter: a late
            // line asks for its file's name); any other through `display`.
            Some(file) => file
                .to_str()
                .map_or_else(|| file.display().to_string(), str::to_owned),
            None => format!("generated-p{p}"),
        }
    }

    /// The line `at` as the outputs name it.
    pub fn line_ref(&self, at: LinePos) -> LineRef {
        match self {
            Self::Files(_) => LineRef::File {
                file: self.partition_name(at.partition as usize),
                line: at.line,
            },
            Self::Generate(_) => LineRef::Generated {
                partition: at.partition,
                offset: at.line.saturating_sub(1),
            },
        }
    }

    /// A reader of partition `p` from its first line.
    pub fn open(&self, p: usize) -> Result<PartitionReader, InputError> {
        let partitions = self.partitions();
        let no_such = InputError::NoSuchPartition {
            partition: p,
            partitions,
        };
        if p >= partitions {
            return Err(no_such);
        }
        let partition = u32::try_from(p).map_err(|_| no_such)?;
        let name = self.partition_name(p);
        let source = match self {
            Self::Files(files) => {
                let file = File::open(&files[p]).map_err(|source| InputError::Io {
                    file: name.clone(),
                    source,
                })?;
                let bytes = FileBytes::open(file).map_err(|source| InputError::Io {
                    file: name.clone(),
                    source,
                })?;
                Source::File(LineReader::new(bytes, DEFAULT_MAX_LINE_BYTES))
            }
            Self::Generate(config) => Source::Generated(Box::new(Generated {
                generator: PartitionGenerator::new(config, p).map_err(InputError::Generator)?,
                line: Vec::with_capacity(DEFAULT_MAX_LINE_BYTES),
            })),
        };
        Ok(PartitionReader {
            input: self.clone(),
            partition,
            lines: Lines {
                name,
                source,
                offset: 0,
                header: false,
            },
            parser: LineParser::new(),
            rejected: 0,
        })
    }

    /// A reader of partition `p` that has skipped its first `offset` lines (fewer if the
    /// partition is shorter; [`PartitionReader::offset`] says how many). Line 1 is still
    /// read as a possible header, so the columns' order holds after the resume.
    pub fn open_at(&self, p: usize, offset: u64) -> Result<PartitionReader, InputError> {
        let mut reader = self.open(p)?;
        while reader.lines.offset < offset && reader.lines.next_raw(&mut reader.parser)?.is_some() {
        }
        Ok(reader)
    }
}

/// One step of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line is a record.
    Record(TrafficRecord),
    /// The line is not a record (boxed: rare, and several times a record's size, it would
    /// make every line's move through the reader that much longer).
    Rejected(Box<Rejection>),
    /// A bounded part of an oversized line's tail was skipped; no line ended. Callers may
    /// look at stop requests before they ask for the next line.
    Skipped,
}

#[derive(Debug)]
enum Source {
    File(LineReader<FileBytes>),
    /// Boxed: the generator's state is several times a file reader's.
    Generated(Box<Generated>),
}

/// A partition file's bytes, as a [`BufRead`] that hands out at most [`FILE_BUFFER_BYTES`] at a
/// time. A regular file is mapped into memory and its lines are read in place, where the
/// page cache holds them: no copy into a read buffer (a `read(2)` of every byte was 9% of the
/// traffic job's cycles, measured). Anything else (a pipe, a device, an empty file) is read
/// with `read(2)` into a buffer, as is a file its file system cannot map.
///
/// Contract of a mapped file, Flink's for a file source: the file does not change while the
/// job reads it. Bytes appended after the open are not read; a file truncated under the
/// reader ends the process with `SIGBUS` when it reaches the lost pages.
#[derive(Debug)]
enum FileBytes {
    /// The file mapped, and the offset of the next byte to hand out.
    Mapped { map: Mapping, at: usize },
    /// The file read into a buffer.
    Read(BufReader<File>),
}

impl FileBytes {
    fn open(file: File) -> io::Result<Self> {
        let read = |file| Self::Read(BufReader::with_capacity(FILE_BUFFER_BYTES, file));
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() == 0 {
            return Ok(read(file));
        }
        // SAFETY: the map is read-only and private to this reader, and nothing in this process
        // writes the file. Another process that changes it breaks the contract above: a
        // truncation is a `SIGBUS` at the next access to a lost page, not a silent misread.
        let Ok(map) = (unsafe { Mmap::map(&file) }) else {
            // A file system that cannot map (some network and FUSE ones) is read instead.
            return Ok(read(file));
        };
        // Read front to back once: the kernel reads ahead and may drop pages behind. Advice
        // only; a kernel that ignores it costs nothing but the read-ahead.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(Self::Mapped {
            map: Mapping(Some(map)),
            at: 0,
        })
    }
}

/// Mappings at least this large are unmapped on a thread of their own ([`Mapping`]).
const UNMAP_APART_BYTES: usize = 4 << 20;

/// A mapped file, unmapped on a thread of its own when dropped if it is large: tearing down
/// the mapping of a 27 MB file took 1.4 to 2.6 ms here, which the source task's thread (a
/// task slot's, shared with the subtasks the source feeds) spent at the end of each partition
/// while latency markers and records waited in its buffers. If no thread can be started, it
/// is unmapped in place.
#[derive(Debug)]
struct Mapping(Option<Mmap>);

impl std::ops::Deref for Mapping {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or_default()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Some(map) = self.0.take().filter(|map| map.len() >= UNMAP_APART_BYTES) {
            // On failure the closure, and the map with it, is dropped here.
            let _ = std::thread::Builder::new()
                .name("weir-unmap".into())
                .spawn(move || drop(map));
        }
    }
}

impl Read for FileBytes {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for FileBytes {
    #[inline]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Self::Mapped { map, at } => {
                let end = map.len().min(*at + FILE_BUFFER_BYTES);
                Ok(&map[*at..end])
            }
            Self::Read(reader) => reader.fill_buf(),
        }
    }

    #[inline]
    fn consume(&mut self, amount: usize) {
        match self {
            Self::Mapped { map, at } => *at = map.len().min(*at + amount),
            Self::Read(reader) => reader.consume(amount),
        }
    }
}

/// The generator and the line it wrote last.
#[derive(Debug)]
struct Generated {
    generator: PartitionGenerator,
    line: Vec<u8>,
}

impl Source {
    /// The next line, valid until the next call; `None` at the end of the partition.
    #[inline]
    fn next_line(&mut self) -> io::Result<Option<(RawLine, &[u8])>> {
        match self {
            Self::File(lines) => lines.next_line(),
            Self::Generated(generated) => {
                let Generated { generator, line } = &mut **generated;
                Ok(generator
                    .next_line(line)
                    .then_some((RawLine::Fits, &line[..])))
            }
        }
    }
}

/// Reads one partition's lines as records and rejections.
#[derive(Debug)]
pub struct PartitionReader {
    /// The input, to name rejected lines.
    input: TrafficInput,
    partition: u32,
    lines: Lines,
    parser: LineParser,
    rejected: u64,
}

/// A partition's lines, counted, with its header recognised.
#[derive(Debug)]
struct Lines {
    name: String,
    source: Source,
    offset: u64,
    /// Whether line 1 was a header.
    header: bool,
}

/// What [`Lines::next_raw`] read.
enum Raw<'a> {
    Header,
    /// A line as read (a byte order mark included), and its number.
    Line(RawLine, &'a [u8], u64),
}

impl PartitionReader {
    /// The partition's name in rejections and errors: the file's path, or `generated-p{p}`.
    pub fn name(&self) -> &str {
        &self.lines.name
    }

    /// Lines consumed so far, header included: the position to resume from.
    pub fn offset(&self) -> u64 {
        self.lines.offset
    }

    /// Data lines read so far (the header excluded).
    pub fn data_lines(&self) -> u64 {
        self.lines.offset - u64::from(self.lines.header)
    }

    /// Data lines rejected so far by this reader (not counting lines skipped by
    /// [`TrafficInput::open_at`]).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The warning for a partition that rejected more than a tenth of its lines, if it did:
    /// such an input is likely not what the job expects.
    pub fn reject_warning(&self) -> Option<String> {
        reject_warning(&self.lines.name, self.data_lines(), self.rejected)
    }

    /// The next data line, or `None` at the end of the partition. A header on line 1 is not
    /// a data line.
    ///
    /// O(line length); a line read whole into the reader's buffer is parsed in place, and
    /// nothing is allocated but a rejection.
    #[inline(always)]
    pub fn next_item(&mut self) -> Result<Option<Line>, InputError> {
        loop {
            let Some(raw) = self.lines.next_raw(&mut self.parser)? else {
                return Ok(None);
            };
            let (raw, bytes, line) = match raw {
                Raw::Header => continue,
                Raw::Line(raw, bytes, line) => (raw, bytes, line),
            };
            let at = LinePos {
                partition: self.partition,
                line,
            };
            let (parsed, bytes) = match raw {
                RawLine::Skipped => return Ok(Some(Line::Skipped)),
                RawLine::Fits => {
                    let line = match at.line {
                        1 => bytes.strip_prefix(BOM).unwrap_or(bytes),
                        _ => bytes,
                    };
                    // A canonical line's record goes straight into the line, apart from
                    // the other lines' results: joined with them in one value, it was built
                    // in memory piece by piece and copied out at once, and the copy waited
                    // for the pieces to reach the cache.
                    if let Some(record) = self.parser.canonical(line, at) {
                        return Ok(Some(Line::Record(record)));
                    }
                    (self.parser.parse_any(line, at), bytes)
                }
                RawLine::Oversized => (
                    Err(RejectReason::Oversized {
                        max_line_bytes: DEFAULT_MAX_LINE_BYTES,
                    }),
                    bytes,
                ),
            };
            return Ok(Some(match parsed {
                Ok(record) => Line::Record(record),
                Err(reason) => {
                    self.rejected += 1;
                    let at = self.input.line_ref(at);
                    Line::Rejected(Box::new(Rejection::new(at, reason, bytes)))
                }
            }));
        }
    }
}

impl Lines {
    /// Reads the next line and counts it; takes line 1 as the header if `parser` says it is
    /// one.
    #[inline(always)]
    fn next_raw(&mut self, parser: &mut LineParser) -> Result<Option<Raw<'_>>, InputError> {
        let Some((raw, bytes)) = self.source.next_line().map_err(|source| InputError::Io {
            file: self.name.clone(),
            source,
        })?
        else {
            return Ok(None);
        };
        if raw != RawLine::Skipped {
            self.offset += 1;
        }
        if self.offset == 1 && raw == RawLine::Fits {
            let line = bytes.strip_prefix(BOM).unwrap_or(bytes);
            self.header = parser.header(line).map_err(|problem| InputError::Header {
                file: self.name.clone(),
                problem,
            })?;
            if self.header {
                return Ok(Some(Raw::Header));
            }
        }
        Ok(Some(Raw::Line(raw, bytes, self.offset)))
    }
}

/// The warning for partition `name` if it rejected more than a tenth of its `lines`.
pub fn reject_warning(name: &str, lines: u64, rejected: u64) -> Option<String> {
    (rejected * REJECT_WARNING_FRACTION > lines).then(|| {
        format!(
            "{name}: {rejected} of {lines} lines rejected, more than a tenth; is it CSV with the columns {}? See rejected.jsonl",
            COLUMNS.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;

    /// Every line the line reader hands out over `bytes` (not the [`RawLine::Skipped`] steps
    /// inside an oversized line's tail: how many there are depends on where reads end).
    fn lines_of(bytes: FileBytes) -> Vec<(RawLine, Vec<u8>)> {
        let mut reader = LineReader::new(bytes, DEFAULT_MAX_LINE_BYTES);
        let mut lines = Vec::new();
        while let Some((raw, line)) = reader.next_line().expect("reads") {
            if raw != RawLine::Skipped {
                lines.push((raw, line.to_vec()));
            }
        }
        lines
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// A mapped file reads as the same lines as the file read with `read(2)`: lines that
        /// straddle the edge of a window, lines longer than the limit and than a window
        /// (their tails skipped in steps), an unterminated last line, `\r\n` endings.
        #[test]
        fn a_mapped_file_reads_as_the_file_read(
            lines in prop::collection::vec(
                (prop_oneof![8 => 0..40usize, 1 => 1000..1100usize, 1 => 60_000..140_000usize],
                 any::<bool>()),
                1..40,
            ),
            terminated in any::<bool>(),
        ) {
            let mut text = Vec::new();
            for (i, (len, crlf)) in lines.iter().enumerate() {
                text.extend((0..*len).map(|j| b'a' + ((i + j) % 26) as u8));
                if i + 1 < lines.len() || terminated {
                    text.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                }
            }
            let mut file = tempfile::NamedTempFile::new().unwrap();
            file.write_all(&text).unwrap();
            let mapped = FileBytes::open(File::open(file.path()).unwrap()).unwrap();
            // An empty file cannot be mapped: it is read (see the test below).
            let is_mapped = matches!(mapped, FileBytes::Mapped { .. });
            prop_assert_eq!(is_mapped, !text.is_empty());
            let read = FileBytes::Read(BufReader::with_capacity(
                FILE_BUFFER_BYTES,
                File::open(file.path()).unwrap(),
            ));
            prop_assert_eq!(lines_of(mapped), lines_of(read));
        }
    }

    #[test]
    fn an_empty_file_and_a_device_are_read_not_mapped() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let bytes = FileBytes::open(File::open(file.path()).unwrap()).unwrap();
        assert!(matches!(bytes, FileBytes::Read(_)));
        assert!(lines_of(bytes).is_empty());
        #[cfg(unix)]
        {
            let device = FileBytes::open(File::open("/dev/null").unwrap()).unwrap();
            assert!(matches!(device, FileBytes::Read(_)));
            assert!(lines_of(device).is_empty());
        }
    }
}
