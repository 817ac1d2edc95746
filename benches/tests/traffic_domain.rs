//! The traffic job's domain: reading files and generated partitions, rejections, and the
//! generator's guarantees.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use weir_bench::traffic::generator::{
    BOGUS_SHARE, GeneratorConfig, LATE_SHARE, MALFORMED_SHARE, OUT_OF_ORDER_SHARE,
    PartitionGenerator,
};
use weir_bench::traffic::input::{InputError, Line, LineRef, TrafficInput};
use weir_bench::traffic::parse::{HEADER, Rejection};
use weir_bench::traffic::record::{Plate, TrafficRecord};

fn read_all(input: &TrafficInput, p: usize) -> Vec<Line> {
    let mut reader = input.open(p).unwrap();
    let mut lines = Vec::new();
    while let Some(line) = reader.next_item().unwrap() {
        lines.push(line);
    }
    lines
}

fn split(lines: Vec<Line>) -> (Vec<TrafficRecord>, Vec<Rejection>) {
    let mut records = Vec::new();
    let mut rejections = Vec::new();
    for line in lines {
        match line {
            Line::Record(record) => records.push(record),
            Line::Rejected(rejection) => rejections.push(*rejection),
            Line::Skipped => {}
        }
    }
    (records, rejections)
}

/// The line number of a rejection in a file.
fn line_of(rejection: &Rejection) -> u64 {
    match &rejection.at {
        LineRef::File { line, .. } => *line,
        LineRef::Generated { .. } => panic!("a file line: {rejection:?}"),
    }
}

fn file_input(dir: &Path, name: &str, bytes: &[u8]) -> TrafficInput {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    TrafficInput::from_path(&path).unwrap()
}

#[test]
fn every_bad_line_is_rejected_with_its_number_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    text.extend_from_slice(format!("{HEADER}\r\n").as_bytes());
    text.extend_from_slice("1772409600000,浙A12345,7\r\n".as_bytes()); // 2
    text.extend_from_slice(b"1,\xff\xfeA12345,7\n"); // 3
    text.extend_from_slice("1,浙A12345\n".as_bytes()); // 4
    text.extend_from_slice("12:00,浙A12345,7\n".as_bytes()); // 5
    text.extend_from_slice("1,浙A12345,seven\n".as_bytes()); // 6
    text.extend_from_slice(b"1,,7\n"); // 7
    text.extend_from_slice(format!("1,浙A{},7\n", "Z".repeat(30)).as_bytes()); // 8
    text.extend_from_slice(b"\r\n"); // 9
    text.extend_from_slice(format!("1,{},7\n", "Z".repeat(2000)).as_bytes()); // 10
    text.extend_from_slice("-86400001,沪B00001,0".as_bytes()); // 11, unterminated
    let input = file_input(dir.path(), "cams.csv", &text);

    let (records, rejections) = split(read_all(&input, 0));
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].plate.as_str(), "浙A12345");
    assert_eq!(records[1].ts_ms, -86_400_001);
    let got: Vec<(u64, &str)> = rejections
        .iter()
        .map(|r| (line_of(r), r.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (3, "bad plate: invalid UTF-8"),
            (4, "wrong field count: expected 3, found 2"),
            (5, "bad ts_ms: not a signed 64-bit integer"),
            (6, "bad checkpoint_id: not an unsigned 32-bit integer"),
            (7, "empty plate"),
            (
                8,
                "bad plate: not 5 or 6 letters A-Z or digits after the city letter"
            ),
            (9, "empty line"),
            (10, "line longer than 1024 bytes"),
        ]
    );
    let file = input.files()[0].display().to_string();
    assert!(
        rejections
            .iter()
            .all(|r| matches!(&r.at, LineRef::File { file: f, .. } if *f == file))
    );
    assert_eq!(rejections[0].text, "1,\u{fffd}\u{fffd}A12345,7");
    assert_eq!(rejections[7].text.chars().count(), 200);
}

#[test]
fn the_header_is_skipped_only_on_line_one() {
    let dir = tempfile::tempdir().unwrap();
    let headerless = file_input(
        dir.path(),
        "a.csv",
        "5,浙A00001,1\n6,浙A00001,2\n".as_bytes(),
    );
    let (records, rejections) = split(read_all(&headerless, 0));
    assert_eq!((records.len(), rejections.len()), (2, 0));

    let header_only = file_input(dir.path(), "b.csv", format!("{HEADER}\n").as_bytes());
    assert!(read_all(&header_only, 0).is_empty());
    assert_eq!(header_only.open_at(0, 5).unwrap().offset(), 1);

    let late_header = file_input(
        dir.path(),
        "c.csv",
        format!("5,浙A00001,1\n{HEADER}\n").as_bytes(),
    );
    let (records, rejections) = split(read_all(&late_header, 0));
    assert_eq!(records.len(), 1);
    assert_eq!(
        (line_of(&rejections[0]), rejections[0].text.as_str()),
        (2, HEADER)
    );
}

#[test]
fn a_folder_is_its_csv_files_by_name_and_bad_paths_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.csv", "a.csv", "notes.txt"] {
        fs::write(dir.path().join(name), format!("{HEADER}\n1,京A00001,1\n")).unwrap();
    }
    fs::create_dir(dir.path().join("z.txt")).unwrap();
    let input = TrafficInput::from_path(dir.path()).unwrap();
    assert_eq!(
        input,
        TrafficInput::Files(vec![dir.path().join("a.csv"), dir.path().join("b.csv")])
    );
    assert_eq!(input.partitions(), 2);
    assert!(matches!(
        input.open(2),
        Err(InputError::NoSuchPartition { partition: 2, .. })
    ));

    let empty = tempfile::tempdir().unwrap();
    let err = TrafficInput::from_path(empty.path()).unwrap_err();
    assert!(matches!(err, InputError::EmptyFolder(_)));
    assert!(err.to_string().contains("no *.csv files"), "{err}");

    let missing = dir.path().join("missing.csv");
    let err = TrafficInput::from_path(&missing).unwrap_err();
    assert!(err.to_string().contains("missing.csv"), "{err}");
    let err = TrafficInput::Files(vec![missing]).open(0).unwrap_err();
    assert!(err.to_string().contains("missing.csv"), "{err}");
}

#[test]
fn reopening_at_an_offset_resumes_where_a_reader_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let config = GeneratorConfig {
        records: 500,
        partitions: 2,
        ..GeneratorConfig::default()
    };
    let mut file = Vec::new();
    let mut generator = PartitionGenerator::new(&config, 1).unwrap();
    let mut line = Vec::new();
    while generator.next_line(&mut line) {
        file.extend_from_slice(&line);
        file.push(b'\n');
    }
    let inputs = [
        TrafficInput::Generate(config),
        file_input(dir.path(), "p1.csv", &file),
    ];
    // The same records, read from different partitions.
    let fields = |records: Vec<TrafficRecord>| -> Vec<_> {
        records
            .into_iter()
            .map(|r| (r.ts_ms, r.plate, r.checkpoint_id, r.at.line))
            .collect()
    };
    let from_file = fields(split(read_all(&inputs[1], 0)).0);
    assert_eq!(from_file, fields(split(read_all(&inputs[0], 1)).0));
    for input in &inputs {
        let p = input.partitions() - 1;
        let all = read_all(input, p);
        let mut reader = input.open(p).unwrap();
        for _ in 0..100 {
            reader.next_item().unwrap();
        }
        let offset = reader.offset();
        assert_eq!(offset, 101, "the header and 100 data lines");
        let mut resumed = input.open_at(p, offset).unwrap();
        assert_eq!(resumed.offset(), offset);
        let mut rest = Vec::new();
        while let Some(line) = resumed.next_item().unwrap() {
            rest.push(line);
        }
        assert_eq!(rest, all[100..]);
    }
}

fn generated_lines(config: &GeneratorConfig, p: usize) -> Vec<Vec<u8>> {
    let mut generator = PartitionGenerator::new(config, p).unwrap();
    let mut lines = Vec::new();
    let mut line = Vec::new();
    while generator.next_line(&mut line) {
        lines.push(line.clone());
    }
    lines
}

#[test]
fn the_generator_is_deterministic_and_shares_sum_to_the_records() {
    let config = GeneratorConfig {
        records: 10_001,
        partitions: 3,
        seed: 7,
        ..GeneratorConfig::default()
    };
    let shares: Vec<u64> = (0..3).map(|p| config.share(p)).collect();
    assert_eq!(shares, [3334, 3334, 3333]);
    for (p, share) in shares.iter().enumerate() {
        let lines = generated_lines(&config, p);
        assert_eq!(lines[0], HEADER.as_bytes());
        assert_eq!(lines.len() as u64, share + 1);
        assert_eq!(
            lines,
            generated_lines(&config, p),
            "partition {p} is not stable"
        );
    }
    let other_seed = GeneratorConfig { seed: 8, ..config };
    assert_ne!(generated_lines(&other_seed, 0), generated_lines(&config, 0));
}

#[test]
fn each_plate_stays_on_one_partition() {
    let config = GeneratorConfig {
        records: 40_000,
        partitions: 4,
        ..GeneratorConfig::default()
    };
    let input = TrafficInput::Generate(config);
    let mut home_of: HashMap<Plate, usize> = HashMap::new();
    let mut repeats = 0;
    for p in 0..4 {
        for record in split(read_all(&input, p)).0 {
            let home = *home_of.entry(record.plate).or_insert(p);
            assert_eq!(home, p, "{} is on partitions {home} and {p}", record.plate);
            repeats += 1;
        }
    }
    assert!(
        home_of.len() * 4 < repeats * 3,
        "popular plates repeat: {} plates in {repeats} records",
        home_of.len()
    );
}

/// Counts per partition how far each record lags the latest timestamp before it.
#[derive(Debug, Default)]
struct Disorder {
    records: u64,
    out_of_order: u64,
    late: u64,
    bogus: u64,
    malformed: u64,
    origins: [u64; 3],
}

#[test]
fn the_generator_mixes_disorder_lateness_and_bad_lines_in_the_stated_shares() {
    let config = GeneratorConfig {
        records: 200_000,
        partitions: 2,
        ..GeneratorConfig::default()
    };
    let input = TrafficInput::Generate(config.clone());
    let home = "浙A".parse().unwrap();
    let mut seen = Disorder::default();
    let mut ends = Vec::new();
    for p in 0..2 {
        let mut clock = i64::MIN;
        let (records, rejections) = split(read_all(&input, p));
        seen.malformed += rejections.len() as u64;
        assert!(rejections.iter().all(
            |r| matches!(r.at, LineRef::Generated { partition, offset } if partition as usize == p && offset >= 1)
        ));
        for record in records {
            seen.records += 1;
            let lag_ms = clock.saturating_sub(record.ts_ms);
            match lag_ms {
                i64::MIN..=0 => {
                    if clock == i64::MIN {
                        assert!(
                            record.ts_ms - config.start_ms < 60_000,
                            "partition {p} starts late"
                        );
                    }
                    clock = record.ts_ms;
                }
                1..=60_000 => seen.out_of_order += 1,
                60_001..=14_400_000 => seen.late += 1,
                _ => seen.bogus += 1,
            }
            let origin = weir_bench::traffic::record::Origin::of(&record.plate, &home);
            seen.origins[origin.index()] += 1;
        }
        ends.push(clock);
    }
    let total = config.records as f64;
    let share = |n: u64| n as f64 / total;
    assert_eq!(seen.records + seen.malformed, config.records);
    assert!(
        (0.8 * OUT_OF_ORDER_SHARE..=OUT_OF_ORDER_SHARE).contains(&share(seen.out_of_order)),
        "{seen:?}"
    );
    assert!(
        (0.8 * LATE_SHARE..=1.2 * LATE_SHARE).contains(&share(seen.late)),
        "{seen:?}"
    );
    assert!(
        (0.3 * MALFORMED_SHARE..=2.0 * MALFORMED_SHARE).contains(&share(seen.malformed)),
        "{seen:?}"
    );
    assert!(share(seen.bogus) <= 5.0 * BOGUS_SHARE, "{seen:?}");
    let local = seen.origins[0] as f64 / seen.records as f64;
    let other = seen.origins[2] as f64 / seen.records as f64;
    assert!((0.45..0.75).contains(&local), "{seen:?}");
    assert!((0.05..0.30).contains(&other), "{seen:?}");
    // 200k records at 250k a day: both partitions span the same 0.8 day.
    assert!((ends[0] - ends[1]).abs() < 600_000, "{ends:?}");
    assert!(ends[0] < config.start_ms + 86_400_000, "{ends:?}");
}
