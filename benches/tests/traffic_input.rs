//! The traffic job's CSV input as a user meets it: symlinked files in a folder, headers by
//! name in any order, byte order marks, quoting, the plate rule, the rejection warning, the
//! line every dropped record names, an endless line that Ctrl-C still stops, and random lines
//! that always end as exactly one record or one rejection.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use weir_bench::traffic::input::{InputError, Line, LineRef, TrafficInput};
use weir_bench::traffic::job::{DEFAULT_GUARD, EventTimeOptions, TrafficJob, Watermarks, run};
use weir_bench::traffic::parse::{HEADER, LineParser, RejectReason};
use weir_bench::traffic::record::{LinePos, Plate, PlateError};
use weir_core::window::GlobalAggregation;

/// 2026-03-02T00:00:00Z.
const T: i64 = 1_772_409_600_000;

fn read_all(input: &TrafficInput, p: usize) -> Result<Vec<Line>, InputError> {
    let mut reader = input.open(p)?;
    let mut lines = Vec::new();
    while let Some(line) = reader.next_item()? {
        lines.push(line);
    }
    Ok(lines)
}

/// A line number and a text: a record's plate, or a rejection's reason.
type Numbered = Vec<(u64, String)>;

/// (line, plate) of each record and (line, reason) of each rejection.
fn outcome(lines: &[Line]) -> (Numbered, Numbered) {
    let mut records = Vec::new();
    let mut rejections = Vec::new();
    for line in lines {
        match line {
            Line::Record(r) => records.push((r.at.line, r.plate.to_string())),
            Line::Rejected(r) => match &r.at {
                LineRef::File { line, .. } => rejections.push((*line, r.reason.clone())),
                LineRef::Generated { .. } => panic!("a file line: {r:?}"),
            },
            Line::Skipped => {}
        }
    }
    (records, rejections)
}

fn file_input(dir: &Path, name: &str, bytes: &[u8]) -> TrafficInput {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    TrafficInput::from_path(&path).unwrap()
}

#[cfg(unix)]
#[test]
fn symlinked_csv_files_in_a_folder_are_read_and_bad_links_are_errors() {
    use std::os::unix::fs::symlink;
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("cameras.csv");
    fs::write(&target, format!("{HEADER}\n{T},浙A12345,1\n")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.csv"), format!("{T},京A00001,2\n")).unwrap();
    symlink(&target, dir.path().join("b.csv")).unwrap();
    symlink(elsewhere.path(), dir.path().join("notes")).unwrap();

    let input = TrafficInput::from_path(dir.path()).unwrap();
    assert_eq!(
        input.files(),
        [dir.path().join("a.csv"), dir.path().join("b.csv")]
    );
    let (records, _) = outcome(&read_all(&input, 1).unwrap());
    assert_eq!(records, [(2, "浙A12345".to_owned())]);

    // A folder of links only is not "no csv files".
    let links = tempfile::tempdir().unwrap();
    symlink(&target, links.path().join("only.csv")).unwrap();
    assert_eq!(
        TrafficInput::from_path(links.path()).unwrap().partitions(),
        1
    );

    for (name, make, what) in [
        (
            "dangling.csv",
            Box::new(|p: &Path| symlink("/nonexistent/x.csv", p).unwrap()) as Box<dyn Fn(&Path)>,
            "a link to nothing",
        ),
        (
            "folder.csv",
            Box::new(|p: &Path| symlink(std::env::temp_dir(), p).unwrap()),
            "a link to a folder",
        ),
        (
            "sub.csv",
            Box::new(|p: &Path| fs::create_dir(p).unwrap()),
            "a folder",
        ),
    ] {
        let bad = tempfile::tempdir().unwrap();
        fs::write(bad.path().join("good.csv"), "").unwrap();
        make(&bad.path().join(name));
        let err = TrafficInput::from_path(bad.path()).unwrap_err();
        assert!(matches!(err, InputError::NotAFile { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(name) && message.contains(what),
            "{message}"
        );
    }
}

#[test]
fn the_header_names_columns_in_any_order_after_an_optional_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "\u{feff}plate,checkpoint_id,ts_ms\r\n浙A12345,7,{T}\r\n京B00001,8,{}\r\n{T},浙A12345,7\r\n",
        T + 1
    );
    let input = file_input(dir.path(), "a.csv", text.as_bytes());
    let lines = read_all(&input, 0).unwrap();
    let (records, rejections) = outcome(&lines);
    assert_eq!(
        records,
        [(2, "浙A12345".to_owned()), (3, "京B00001".to_owned())]
    );
    assert_eq!(
        rejections,
        [(
            4,
            "bad plate: does not start with a province abbreviation".to_owned()
        )]
    );
    let Line::Record(first) = lines[0] else {
        panic!("{lines:?}")
    };
    assert_eq!((first.ts_ms, first.checkpoint_id), (T, 7));

    // A reader resumed past the header keeps its order.
    let mut resumed = input.open_at(0, 2).unwrap();
    let Some(Line::Record(second)) = resumed.next_item().unwrap() else {
        panic!("a record")
    };
    assert_eq!(
        (second.ts_ms, second.checkpoint_id, second.at.line),
        (T + 1, 8, 3)
    );

    // A byte order mark before a headerless first line is not part of its timestamp.
    let bom_data = file_input(
        dir.path(),
        "b.csv",
        format!("\u{feff}{T},浙A12345,7\n").as_bytes(),
    );
    assert_eq!(outcome(&read_all(&bom_data, 0).unwrap()).0.len(), 1);
}

#[test]
fn a_header_with_an_unknown_column_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (header, names) in [
        ("ts_ms,plate,camera", "unknown column \"camera\""),
        ("ts_ms,plate", "column \"checkpoint_id\" is missing"),
        ("plate,ts_ms,plate", "column \"plate\" appears twice"),
    ] {
        let input = file_input(
            dir.path(),
            "h.csv",
            format!("{header}\n{T},浙A12345,7\n").as_bytes(),
        );
        let err = read_all(&input, 0).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("h.csv, line 1"), "{message}");
        assert!(message.contains(names), "{message}");
        assert!(
            message.contains("expected the columns ts_ms, plate, checkpoint_id in any order"),
            "{message}"
        );
        assert!(
            input.open_at(0, 5).is_err(),
            "resuming reads the header too"
        );
    }
}

#[test]
fn quoted_fields_and_crlf_follow_rfc_4180() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "\"ts_ms\",\"plate\",\"checkpoint_id\"\r\n{T},\"浙A12345\",7\r\n\"{T}\",\"沪B0000X\",\"8\"\r\n{T},\"浙A1,2345\",9\r\n{T},\"浙A12345,9\n"
    );
    let input = file_input(dir.path(), "q.csv", text.as_bytes());
    let (records, rejections) = outcome(&read_all(&input, 0).unwrap());
    assert_eq!(
        records,
        [(2, "浙A12345".to_owned()), (3, "沪B0000X".to_owned())]
    );
    assert_eq!(
        rejections,
        [
            (
                4,
                "bad plate: not 5 or 6 letters A-Z or digits after the city letter".to_owned()
            ),
            (5, RejectReason::UnclosedQuote.to_string()),
        ]
    );
}

#[test]
fn plates_that_break_the_plate_rule_are_rejected_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad: [(&[u8], PlateError); 7] = [
        ("浙".as_bytes(), PlateError::NoCityLetter),
        ("浙A1".as_bytes(), PlateError::BadSerial),
        ("浙A123456789".as_bytes(), PlateError::BadSerial),
        ("浙A12\x0045".as_bytes(), PlateError::BadSerial),
        (" 浙A12345".as_bytes(), PlateError::NoProvince),
        ("浙A12345 ".as_bytes(), PlateError::BadSerial),
        ("x浙A12345".as_bytes(), PlateError::NoProvince),
    ];
    let mut text = Vec::new();
    for (plate, _) in &bad {
        text.extend_from_slice(format!("{T},").as_bytes());
        text.extend_from_slice(plate);
        text.extend_from_slice(b",1\n");
    }
    text.extend_from_slice(format!("{T},浙AD12345,1\n").as_bytes());
    let input = file_input(dir.path(), "plates.csv", &text);
    let (records, rejections) = outcome(&read_all(&input, 0).unwrap());
    assert_eq!(records, [(8, "浙AD12345".to_owned())], "a new-energy plate");
    let expected: Vec<(u64, String)> = bad
        .iter()
        .enumerate()
        .map(|(i, (_, fault))| (i as u64 + 1, fault.to_string()))
        .collect();
    assert_eq!(rejections, expected);
}

#[test]
fn a_partition_rejecting_more_than_a_tenth_is_warned_about_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let partition = |bad: usize| {
        let mut text = format!("{HEADER}\n");
        for i in 0..20 {
            match i < bad {
                true => text.push_str("garbage\n"),
                false => text.push_str(&format!("{},浙A12345,1\n", T + i as i64)),
            }
        }
        text
    };
    let folder = dir.path().join("in");
    fs::create_dir(&folder).unwrap();
    fs::write(folder.join("a.csv"), partition(2)).unwrap();
    fs::write(folder.join("b.csv"), partition(3)).unwrap();
    let input = TrafficInput::from_path(&folder).unwrap();

    let mut readers: Vec<_> = (0..2).map(|p| input.open(p).unwrap()).collect();
    for reader in &mut readers {
        while reader.next_item().unwrap().is_some() {}
    }
    assert_eq!(
        readers[0].reject_warning(),
        None,
        "2 of 20 is a tenth, not more"
    );
    let warning = readers[1].reject_warning().unwrap();
    assert!(
        warning.contains("b.csv") && warning.contains("3 of 20"),
        "{warning}"
    );

    let out = tempfile::tempdir().unwrap();
    let job = TrafficJob::new(input, out.path());
    let outcome = run(&job, |_, _| {}).unwrap();
    let too_many: Vec<_> = outcome
        .rejects_by_partition
        .iter()
        .map(|p| (p.partition, p.lines, p.rejected, p.too_many()))
        .collect();
    assert_eq!(too_many, [(0, 20, 2, false), (1, 20, 3, true)]);
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn quarantined_and_late_records_name_their_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // Punctuated watermarks, no out-of-orderness or lateness: line 4 is late for the
    // window [T, T+1m) once line 3 moved the watermark past it; line 5 is 30 days old,
    // quarantined by the guard (judged against the first records).
    let text = format!(
        "{HEADER}\n{T},浙A12345,1\n{},浙A12346,2\n{},浙A12347,3\n{},浙A12348,4\n",
        T + 120_000,
        T + 1_000,
        T - 30 * 86_400_000,
    );
    let input = file_input(dir.path(), "cams.csv", text.as_bytes());
    let file = input.files()[0].display().to_string();
    let out = tempfile::tempdir().unwrap();
    let job = TrafficJob {
        parallelism: 1,
        event_time: EventTimeOptions {
            watermarks: Watermarks::Punctuated,
            out_of_orderness: Duration::ZERO,
            aggregation: GlobalAggregation::WindowAll,
            guard: DEFAULT_GUARD,
            ..EventTimeOptions::default()
        },
        ..TrafficJob::new(input, out.path())
    };
    let outcome = run(&job, |_, _| {}).unwrap();
    assert_eq!(outcome.records_quarantined, 1);
    assert_eq!(outcome.records_late_dropped, 1);

    let rejected = read_jsonl(&out.path().join("rejected.jsonl"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["file"], file.as_str());
    assert_eq!(rejected[0]["line"], 5);
    let late = read_jsonl(&out.path().join("late.jsonl"));
    let flow: Vec<_> = late.iter().filter(|l| l["output"] == "flow_1m").collect();
    assert_eq!(flow.len(), 1, "{late:?}");
    assert_eq!(flow[0]["file"], file.as_str());
    assert_eq!(flow[0]["line"], 4);
    assert_eq!(flow[0]["plate"], "浙A12347");
}

#[test]
fn generated_dropped_records_name_their_partition_and_offset() {
    let input = TrafficInput::Generate(weir_bench::traffic::generator::GeneratorConfig {
        records: 20_000,
        partitions: 2,
        ..Default::default()
    });
    let mut checked = 0;
    for p in 0..2 {
        for line in read_all(&input, p).unwrap() {
            let Line::Rejected(rejection) = line else {
                continue;
            };
            let LineRef::Generated { partition, offset } = rejection.at else {
                panic!("{rejection:?}");
            };
            assert_eq!(partition as usize, p);
            // Reopening at the offset reads the rejected line next.
            let mut again = input.open_at(p, offset).unwrap();
            assert_eq!(again.next_item().unwrap(), Some(Line::Rejected(rejection)));
            checked += 1;
        }
    }
    assert!(checked > 0, "the generator writes bad lines");
}

/// Runs the binary on `/dev/zero` (one endless line), interrupts it once it reads, and
/// fails (instead of hanging) if it does not exit.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_run_inside_an_endless_line() {
    const WATCHDOG: Duration = Duration::from_secs(120);
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "run",
            "traffic",
            "--input",
            "/dev/zero",
            "--pin",
            "off",
            "--output",
        ])
        .arg(out.path().join("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let started = Instant::now();
    // The source prints this line once it opened the partition, inside the running job.
    while !seen
        .iter()
        .any(|l: &String| l.contains("reading /dev/zero"))
    {
        match received.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => seen.push(line),
            Err(_) if started.elapsed() < WATCHDOG => {}
            Err(_) => {
                child.kill().unwrap();
                panic!("the run never started reading: {seen:?}");
            }
        }
    }
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let interrupted_at = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if interrupted_at.elapsed() > WATCHDOG {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the run ignored Ctrl-C inside an endless line: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    seen.extend(received.try_iter());
    while let Ok(line) = received.recv_timeout(Duration::from_secs(5)) {
        seen.push(line);
    }
    assert!(
        seen.iter().any(|l| l.contains("stopping")),
        "the job itself was asked to stop ({status}): {seen:?}"
    );
}

/// One random line: a well-formed record (each field maybe quoted, any i64 timestamp), or
/// random bytes (no line break) with random quotes and commas.
fn any_line() -> impl Strategy<Value = (Vec<u8>, Option<(i64, u32)>)> {
    let quoted = |text: String, quote: bool| match quote {
        true => format!("\"{}\"", text.replace('"', "\"\"")),
        false => text,
    };
    let good = (
        any::<i64>(),
        0..31usize,
        "[A-Z][A-Z0-9]{5,6}",
        any::<u32>(),
        any::<[bool; 3]>(),
    )
        .prop_map(move |(ts, province, rest, checkpoint, q)| {
            let province = weir_bench::traffic::record::PROVINCES
                .chars()
                .nth(province)
                .unwrap();
            let line = format!(
                "{},{},{}",
                quoted(ts.to_string(), q[0]),
                quoted(format!("{province}{rest}"), q[1]),
                quoted(checkpoint.to_string(), q[2])
            );
            (line.into_bytes(), Some((ts, checkpoint)))
        });
    let noise = prop::collection::vec(
        prop_oneof![
            any::<u8>().prop_filter("no line break", |b| *b != b'\n'),
            Just(b'"'),
            Just(b','),
            Just(b'\r'),
        ],
        0..80,
    )
    .prop_map(|bytes| (bytes, None));
    let long = (1100..3000usize).prop_map(|n| (vec![b'9'; n], None));
    prop_oneof![4 => good, 4 => noise, 1 => long]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_random_line_is_one_record_or_one_rejection_at_its_line(
        lines in prop::collection::vec(any_line(), 1..60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("{HEADER}\n").into_bytes();
        for (line, _) in &lines {
            text.extend_from_slice(line);
            text.push(b'\n');
        }
        let input = file_input(dir.path(), "random.csv", &text);
        let mut numbers = Vec::new();
        for line in read_all(&input, 0).unwrap() {
            match line {
                Line::Record(record) => {
                    let i = (record.at.line - 2) as usize;
                    if let (_, Some((ts, checkpoint))) = &lines[i] {
                        prop_assert_eq!((record.ts_ms, record.checkpoint_id), (*ts, *checkpoint));
                    }
                    numbers.push(record.at.line);
                }
                Line::Rejected(rejection) => {
                    let LineRef::File { line, .. } = rejection.at else {
                        panic!("{rejection:?}")
                    };
                    prop_assert!(lines[(line - 2) as usize].1.is_none(), "a good line was rejected: {:?}", rejection);
                    numbers.push(line);
                }
                Line::Skipped => {}
            }
        }
        let expected: Vec<u64> = (2..lines.len() as u64 + 2).collect();
        prop_assert_eq!(numbers, expected);
    }

    #[test]
    fn the_parser_takes_any_line_without_panicking(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        ts in any::<i64>(),
    ) {
        let mut parser = LineParser::new();
        let at = LinePos { partition: 0, line: 1 };
        let _ = parser.parse(&bytes, at);
        let _ = LineParser::new().header(&bytes);
        // The parser is not left in a quote: a good line after any line parses.
        let good = format!("{ts},浙A12345,7");
        let record = parser.parse(good.as_bytes(), at);
        prop_assert_eq!(record.map(|r| (r.ts_ms, r.plate)), Ok((ts, Plate::try_from("浙A12345").unwrap())));
    }
}
