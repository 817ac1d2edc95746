//! Records per second through the per-record serialization path of a network exchange, one
//! thread, the two halves timed apart: `encode` is `RecordWriter::emit` (route, frame, encode
//! into the open buffer, send it when full), `decode` is `decode_elements` of full buffers into
//! a batch, as an input task does. The records are the traffic job's two exchanged types:
//! [`TrafficRecord`] (source -> tag, keyed by plate) and [`Tagged`] (tag -> windows), 1 in 8
//! with a new-energy (10-byte) plate.
//!
//! One iteration is [`BATCH`] records: encode drains and drops its buffers after each batch
//! (returning them to the pool); decode reads the buffers one encoded batch filled.

mod support;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use weir_bench::traffic::generator::vehicle_plate;
use weir_bench::traffic::record::{LinePos, Origin, Plate, TrafficRecord};
use weir_bench::traffic::tag::Tagged;
use weir_core::codec::{Codec, DecodeError};
use weir_core::net::element::{StreamElement, decode_elements};
use weir_core::net::{ChannelReceiver, Envelope, Flush, RecordWriter, TaskNotifier};

/// Records per iteration: about 4 of the 32 KiB buffers, well inside the pool of 10.
const BATCH: usize = 4096;

/// A writer over one channel (a buffer timeout that never expires within a batch) and the
/// channel's receiving end.
fn writer<T: Codec>() -> (RecordWriter<T>, ChannelReceiver) {
    let (writer, rx, _) = support::one_channel_writer(
        "bench-codec",
        Arc::new(TaskNotifier::new()),
        Duration::from_secs(3600),
    );
    (writer, rx)
}

/// Writes `records` and returns the bytes of the buffers they filled.
fn encode_batch<T: Codec>(
    writer: &mut RecordWriter<T>,
    rx: &mut ChannelReceiver,
    records: &[T],
) -> Vec<Vec<u8>> {
    writer.emit_all(records).expect("emit");
    writer.flush_all(Flush::All).expect("flush");
    std::iter::from_fn(|| rx.try_recv())
        .map(|envelope| match envelope {
            Envelope::Buffer(buffer) => buffer.read(<[u8]>::to_vec),
            Envelope::Event(_) => panic!("the writer sends no events"),
        })
        .collect()
}

fn bench_type<T: Codec>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    records: &[T],
) {
    let (mut writer, mut rx) = writer::<T>();
    group.bench_function(format!("encode/{name}"), |b| {
        b.iter(|| {
            writer.emit_all(records).expect("emit");
            writer.flush_all(Flush::All).expect("flush");
            while let Some(envelope) = rx.try_recv() {
                black_box(&envelope);
            }
        })
    });
    let buffers = encode_batch(&mut writer, &mut rx, records);
    let mut batch = Vec::with_capacity(BATCH);
    group.bench_function(format!("decode/{name}"), |b| {
        b.iter(|| {
            for bytes in &buffers {
                decode_elements::<T, DecodeError>(bytes, |element| {
                    if let StreamElement::Record(record) = element {
                        batch.push(record);
                    }
                    Ok(())
                })
                .expect("the writer's records decode");
                black_box(&mut batch).clear();
            }
        })
    });
}

fn records() -> Vec<TrafficRecord> {
    (0..BATCH as u32)
        .map(|i| {
            let plate = if i % 8 == 7 {
                Plate::try_from(format!("浙AD{:05}", i % 100_000).as_str()).expect("a plate")
            } else {
                vehicle_plate(i)
            };
            TrafficRecord {
                ts_ms: 1_772_409_600_000 + i64::from(i) * 37,
                plate,
                checkpoint_id: i % 200,
                at: LinePos {
                    partition: i % 4,
                    line: u64::from(i) + 2,
                },
            }
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let records = records();
    let tagged: Vec<Tagged> = records
        .iter()
        .enumerate()
        .map(|(i, record)| Tagged {
            record: *record,
            origin: Origin::ALL[i % 3],
            long_term: i % 5 == 0,
        })
        .collect();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(BATCH as u64));
    bench_type(&mut group, "traffic_record", &records);
    bench_type(&mut group, "tagged", &tagged);
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
