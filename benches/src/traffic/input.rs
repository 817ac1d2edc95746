//! The job's input: CSV files (one file per partition) or the generator, read one line at
//! a time with a checkpointable position.
//!
//! A [`PartitionReader`] turns every line after an optional header into exactly one
//! [`Line`]: a record or a rejection. Its [`PartitionReader::offset`] counts the lines
//! consumed (header included), and [`TrafficInput::open_at`] resumes after that many lines.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use super::generator::{GeneratorConfig, GeneratorError, PartitionGenerator};
use super::parse::{
    DEFAULT_MAX_LINE_BYTES, LineReader, RawLine, RejectReason, Rejection, is_header, parse_line,
};
use super::record::TrafficRecord;

/// Read buffer of a file partition.
const FILE_BUFFER_BYTES: usize = 64 * 1024;

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
            Self::EmptyFolder(_) | Self::NoSuchPartition { .. } => None,
        }
    }
}

impl TrafficInput {
    /// The input at `path`: one file, or the `*.csv` files of a folder sorted by name.
    pub fn from_path(path: &Path) -> Result<Self, InputError> {
        let io_error = |source| InputError::Io {
            file: path.display().to_string(),
            source,
        };
        if !fs::metadata(path).map_err(io_error)?.is_dir() {
            return Ok(Self::Files(vec![path.to_owned()]));
        }
        let mut files = Vec::new();
        for entry in fs::read_dir(path).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            let is_csv = entry
                .path()
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
            if is_csv && entry.file_type().map_err(io_error)?.is_file() {
                files.push(entry.path());
            }
        }
        if files.is_empty() {
            return Err(InputError::EmptyFolder(path.to_owned()));
        }
        files.sort();
        Ok(Self::Files(files))
    }

    /// The number of partitions.
    pub fn partitions(&self) -> usize {
        match self {
            Self::Files(files) => files.len(),
            Self::Generate(config) => config.partitions,
        }
    }

    /// A reader of partition `p` from its first line.
    pub fn open(&self, p: usize) -> Result<PartitionReader, InputError> {
        let partitions = self.partitions();
        if p >= partitions {
            return Err(InputError::NoSuchPartition {
                partition: p,
                partitions,
            });
        }
        let (name, source) = match self {
            Self::Files(files) => {
                let path = &files[p];
                let name = path.display().to_string();
                let file = File::open(path).map_err(|source| InputError::Io {
                    file: name.clone(),
                    source,
                })?;
                let lines = LineReader::new(
                    BufReader::with_capacity(FILE_BUFFER_BYTES, file),
                    DEFAULT_MAX_LINE_BYTES,
                );
                (name, Source::File(lines))
            }
            Self::Generate(config) => {
                let generator =
                    PartitionGenerator::new(config, p).map_err(InputError::Generator)?;
                (
                    format!("generated-p{p}"),
                    Source::Generated(Box::new(generator)),
                )
            }
        };
        Ok(PartitionReader {
            name,
            source,
            buf: Vec::with_capacity(DEFAULT_MAX_LINE_BYTES + 1),
            offset: 0,
        })
    }

    /// A reader of partition `p` that has skipped its first `offset` lines (fewer if the
    /// partition is shorter; [`PartitionReader::offset`] says how many).
    pub fn open_at(&self, p: usize, offset: u64) -> Result<PartitionReader, InputError> {
        let mut reader = self.open(p)?;
        while reader.offset < offset && reader.next_raw()?.is_some() {}
        Ok(reader)
    }
}

/// One data line of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// The line is a record.
    Record(TrafficRecord),
    /// The line is not a record.
    Rejected(Rejection),
}

#[derive(Debug)]
enum Source {
    File(LineReader<BufReader<File>>),
    /// Boxed: the generator's state is several times a file reader's.
    Generated(Box<PartitionGenerator>),
}

/// Reads one partition's lines as records and rejections.
#[derive(Debug)]
pub struct PartitionReader {
    name: String,
    source: Source,
    buf: Vec<u8>,
    offset: u64,
}

impl PartitionReader {
    /// The partition's name in rejections and errors: the file's path, or `generated-p{p}`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lines consumed so far, header included: the position to resume from.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next data line, or `None` at the end of the partition. Line 1 is skipped when it
    /// is the header.
    pub fn next_item(&mut self) -> Result<Option<Line>, InputError> {
        loop {
            let Some(raw) = self.next_raw()? else {
                return Ok(None);
            };
            let parsed = match raw {
                RawLine::Fits if self.offset == 1 && is_header(&self.buf) => continue,
                RawLine::Fits => parse_line(&self.buf),
                RawLine::Oversized => Err(RejectReason::Oversized {
                    max_line_bytes: DEFAULT_MAX_LINE_BYTES,
                }),
            };
            return Ok(Some(match parsed {
                Ok(record) => Line::Record(record),
                Err(reason) => {
                    Line::Rejected(Rejection::new(&self.name, self.offset, reason, &self.buf))
                }
            }));
        }
    }

    /// Reads the next line into `buf` and counts it.
    fn next_raw(&mut self) -> Result<Option<RawLine>, InputError> {
        let raw = match &mut self.source {
            Source::File(lines) => {
                lines
                    .read_line(&mut self.buf)
                    .map_err(|source| InputError::Io {
                        file: self.name.clone(),
                        source,
                    })?
            }
            Source::Generated(generator) => {
                generator.next_line(&mut self.buf).then_some(RawLine::Fits)
            }
        };
        if raw.is_some() {
            self.offset += 1;
        }
        Ok(raw)
    }
}
