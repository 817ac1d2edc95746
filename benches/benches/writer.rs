//! Records per second serialized by weir's `RecordWriter` and deserialized with
//! `decode_elements`, writer and reader on two pinned cores.
//!
//! The record is a small, realistic `(i64, String, u32)`: a timestamp, an 11-byte sensor id and
//! a reading, 28 bytes in a buffer with its tag. The writer runs as a task does: 32 KiB
//! buffers from a local pool of 2 exclusive and 8 floating buffers, a channel of
//! `2 + 8 + EVENT_SLOTS` slots, round robin over one channel and a 100 ms buffer timeout, so it
//! waits on its notifier when the reader falls behind. The reader waits on its own notifier,
//! decodes every buffer (allocating each record's `String`, as an operator receiving owned
//! records would) and drops it, which returns it to the writer's pool. One iteration is one
//! record written and read; each sample ends with `flush_all` and the reader's last record.

mod support;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir_core::codec::DecodeError;
use weir_core::net::element::{StreamElement, decode_elements};
use weir_core::net::{ChannelReceiver, Envelope, Flush, TaskNotifier};

type Reading = (i64, String, u32);

/// Distinct records the writer cycles through.
const DISTINCT_RECORDS: usize = 64;
/// The buffer timeout of the writer (it never expires within a sample: buffers go out full).
const BUFFER_TIMEOUT: Duration = Duration::from_millis(100);
/// How long the reader parks before it re-checks (as a task's idle wait).
const READER_PARK: Duration = Duration::from_millis(5);

/// The first two cores, read once before any thread is pinned; `None` on a single core.
fn two_cores() -> Option<(CoreId, CoreId)> {
    match core_affinity::get_core_ids()?.as_slice() {
        [a, b, ..] => Some((*a, *b)),
        _ => None,
    }
}

/// Receives and decodes until `records` records have arrived; returns a checksum.
fn read_records(task: &TaskNotifier, rx: &mut ChannelReceiver, records: u64) -> u64 {
    let (mut seen, mut checksum) = (0u64, 0u64);
    while seen < records {
        task.wait(|| rx.has_queued(), READER_PARK);
        while let Some(envelope) = rx.try_recv() {
            let Envelope::Buffer(buffer) = envelope else {
                panic!("the writer sends no events during a sample");
            };
            buffer
                .read(|bytes| {
                    decode_elements::<Reading, DecodeError>(bytes, |element| {
                        let StreamElement::Record((ts, id, value)) = element else {
                            panic!("the writer sends only records");
                        };
                        checksum = checksum
                            .wrapping_add(ts as u64)
                            .wrapping_add(id.len() as u64)
                            .wrapping_add(u64::from(value));
                        seen += 1;
                        Ok(())
                    })
                })
                .expect("the writer's records decode");
        }
    }
    checksum
}

fn writer(c: &mut Criterion) {
    let cores = two_cores();
    if let Some((writer_core, _)) = cores {
        core_affinity::set_for_current(writer_core);
    }
    let reader_core = cores.map(|(_, reader)| reader);

    let writer_task = Arc::new(TaskNotifier::new());
    writer_task.register_current();
    let (mut writer, mut rx, reader_task) =
        support::one_channel_writer::<Reading>("bench-writer", writer_task, BUFFER_TIMEOUT);
    let records: Vec<Reading> = (0..DISTINCT_RECORDS)
        .map(|i| {
            (
                1_764_000_000_000 + i as i64,
                format!("sensor-{i:04}"),
                i as u32,
            )
        })
        .collect();

    let mut group = c.benchmark_group("writer");
    group.throughput(Throughput::Elements(1));
    group.bench_function("emit_decode_tuple", |b| {
        b.iter_custom(|iters| {
            let ready = &Barrier::new(2);
            let (rx, reader_task) = (&mut rx, &reader_task);
            thread::scope(|s| {
                let reader = s.spawn(move || {
                    if let Some(core) = reader_core {
                        core_affinity::set_for_current(core);
                    }
                    reader_task.register_current();
                    ready.wait();
                    read_records(reader_task, rx, iters)
                });
                ready.wait();
                let start = Instant::now();
                for record in records.iter().cycle().take(iters as usize) {
                    writer.emit(record).expect("emit");
                }
                writer.flush_all(Flush::All).expect("flush");
                black_box(reader.join().expect("reader"));
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
