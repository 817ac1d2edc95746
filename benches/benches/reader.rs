//! The traffic job's input path in bytes per second: parsing lines into records, and reading
//! a CSV file through the bounded line reader into records.
//!
//! The lines are the built-in generator's (its header, then [`LINES`] records: real plates,
//! rush-hour timestamps, about 0.01% malformed), the text a file of the job would hold. The
//! `quoted` variant quotes every plate (`"浙A12345"`), which the one-pass path reads as it
//! reads a bare plate; `quoted-all` quotes every field, which is split without `csv-core`
//! (fields quoted whole) and then parsed as a line in another column order is.
//!
//! - `parse/plain`, `parse/quoted`, `parse/quoted-all`: [`LineParser::parse`] over lines
//!   already split, the field splitting, integer parsing and plate check alone;
//! - `read/file`: [`PartitionReader::next_item`] over a file of the same lines, everything the
//!   source does per line (line reader, BOM and header handling, parse, rejections).

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_bench::traffic::generator::{GeneratorConfig, PartitionGenerator};
use weir_bench::traffic::input::TrafficInput;
use weir_bench::traffic::parse::LineParser;
use weir_bench::traffic::record::LinePos;

/// Records per iteration.
const LINES: u64 = 100_000;

/// The generator's lines, header first, each without its line ending.
fn generated_lines() -> Vec<Vec<u8>> {
    let config = GeneratorConfig {
        records: LINES,
        ..GeneratorConfig::default()
    };
    let mut generator = PartitionGenerator::new(&config, 0).expect("a valid configuration");
    let mut lines = Vec::new();
    let mut line = Vec::new();
    while generator.next_line(&mut line) {
        lines.push(line.clone());
    }
    lines
}

/// `line` with its fields numbered in `quote` quoted, as a CSV writer that quotes text (the
/// plate, field 1) or every field would write it.
fn quote_fields(line: &[u8], quote: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 2 * quote.len());
    for (i, field) in line.split(|&b| b == b',').enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if quote.contains(&i) {
            out.push(b'"');
            out.extend_from_slice(field);
            out.push(b'"');
        } else {
            out.extend_from_slice(field);
        }
    }
    out
}

fn parse(c: &mut Criterion) {
    let lines = generated_lines();
    let data = &lines[1..];
    let quoted = |fields: &[usize]| -> Vec<Vec<u8>> {
        data.iter().map(|l| quote_fields(l, fields)).collect()
    };
    let (plate, all) = (quoted(&[1]), quoted(&[0, 1, 2]));
    let mut group = c.benchmark_group("parse");
    for (name, lines) in [
        ("plain", data),
        ("quoted", &plate[..]),
        ("quoted-all", &all[..]),
    ] {
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            let mut parser = LineParser::new();
            b.iter(|| {
                let mut ok = 0u64;
                for line in lines {
                    ok += u64::from(parser.parse(black_box(line), LinePos::default()).is_ok());
                }
                ok
            })
        });
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    for line in generated_lines() {
        file.write_all(&line).expect("written");
        file.write_all(b"\n").expect("written");
    }
    file.flush().expect("flushed");
    let bytes = file.as_file().metadata().expect("metadata").len();
    let input = TrafficInput::Files(vec![file.path().to_owned()]);
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("file", |b| {
        b.iter(|| {
            let mut reader = input.open(0).expect("the file opens");
            let mut items = 0u64;
            while let Some(line) = reader.next_item().expect("the file reads") {
                black_box(line);
                items += 1;
            }
            items
        })
    });
    group.finish();
}

criterion_group!(benches, parse, read);
criterion_main!(benches);
