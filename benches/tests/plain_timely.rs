//! Issue 9's plain timely program: the same answer as weir and the project's timely peer on
//! the same files, every line tagged or counted as rejected, and bad files refused by name.

use std::fs;

mod generated_csv;

use generated_csv::write_partitions;
use weir_bench::peer::{plain_timely, timely_traffic};
use weir_bench::traffic::generator::GeneratorConfig;
use weir_bench::traffic::input::TrafficInput;
use weir_bench::traffic::job::{self, TrafficJob};
use weir_bench::traffic::parse::HEADER;
use weir_bench::traffic::record::Home;
use weir_core::time::GuardConfig;

fn home() -> Home {
    "浙A".parse().unwrap()
}

#[test]
fn the_plain_program_counts_what_weir_and_the_peer_count() {
    // Four days of traffic over three files, so that non-local plates become long-term; the
    // generator writes malformed lines of every kind.
    let config = GeneratorConfig {
        records: 40_000,
        partitions: 3,
        records_per_day: 10_000,
        seed: 5,
        ..GeneratorConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let files = write_partitions(&config, dir.path());
    let input = TrafficInput::Files(files.clone());

    // weir in batch mode: complete windows, as a timely program's; the guard off, as the
    // plain program has none.
    let mut weir_job = TrafficJob::new(input.clone(), dir.path().join("weir"));
    weir_job.event_time.batch = true;
    weir_job.event_time.guard = GuardConfig::OFF;
    let weir = job::run(&weir_job, |_, _| {}).unwrap();
    let peer = timely_traffic::run(&input, home(), 2, GuardConfig::OFF, |_| {}).unwrap();

    assert!(weir.records_rejected > 0, "the generator writes bad lines");
    assert!(weir.counts.long_term[1] > 0 && weir.counts.long_term[2] > 0);
    assert_eq!((weir.counts, &weir.windows), (peer.counts, &peer.windows));
    // 3 workers: one file each; 4: a worker without files.
    for workers in [1, 2, 3, 4] {
        let plain = plain_timely::run(&files, home(), workers).unwrap();
        assert_eq!(plain.records_in, config.records, "{workers} workers");
        assert_eq!(
            plain.records_rejected, weir.records_rejected,
            "{workers} workers"
        );
        assert_eq!(plain.counts, weir.counts, "{workers} workers");
        assert_eq!(plain.windows, weir.windows, "{workers} workers");
        assert_eq!(
            plain.records_in,
            plain.counts.total() + plain.records_rejected
        );
        assert_eq!(plain.windows.counted(), plain.counts.total());
    }
}

#[test]
fn bad_lines_are_counted_and_bad_files_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let with_header = dir.path().join("a.csv");
    let mut text = format!(
        "{HEADER}\n1772409600000,浙A12345,1\n1772409600001,,2\n1772409600002,京A00001,3\n\
         1772409600003,浙B12345\n1772409600004ms,浙B12345,4\n1772409600005,浙B12345,5-cam\n\n"
    )
    .into_bytes();
    text.extend_from_slice(b"1772409600006,\xffA12345,6\n1772409660000,\xe6\xb5\x99C00001,7\n");
    fs::write(&with_header, text).unwrap();
    // No header: line 1 is data.
    let without_header = dir.path().join("b.csv");
    fs::write(&without_header, "1772409600007,浙C12345,8\n").unwrap();

    let plain = plain_timely::run(&[with_header.clone(), without_header], home(), 2).unwrap();
    assert_eq!((plain.records_in, plain.records_rejected), (10, 6));
    assert_eq!(plain.counts.count, [1, 2, 1], "local, province, other");
    assert_eq!(plain.windows.counted(), 4);
    assert_eq!(plain.windows.flow.len(), 2, "two minutes");

    let reordered = dir.path().join("c.csv");
    fs::write(&reordered, "plate,ts_ms,checkpoint_id\n浙A12345,1,1\n").unwrap();
    let refused =
        plain_timely::run(&[with_header.clone(), reordered.clone()], home(), 2).unwrap_err();
    assert!(
        refused.contains(&reordered.display().to_string()) && refused.contains("header"),
        "{refused}"
    );
    let missing = dir.path().join("missing.csv");
    let refused = plain_timely::run(std::slice::from_ref(&missing), home(), 1).unwrap_err();
    assert!(
        refused.contains(&missing.display().to_string()),
        "{refused}"
    );
    assert!(plain_timely::run(&[with_header], home(), 0).is_err());
}
