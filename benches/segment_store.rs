//! Segment store throughput: append of 16 KiB and 1 MiB batches, and sequential reads,
//! next to a plain memcpy over the same amount of data. Figures in `RESULTS.md`.
//!
//! The log lives under `SEGMENT_STORE_BENCH_DIR` (default: the system temp dir), which should
//! be the filesystem fio was run on.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use segment_store::testing::BatchBuilder;
use segment_store::{AppendOptions, Log, LogConfig};

/// Bytes appended to one log before it is replaced (outside the timed region), so the
/// benchmark measures steady appends, not the disk filling up.
const LOG_BUDGET: u64 = 1 << 30;
/// Size of the log the read benchmarks scan, larger than the CPU caches.
const READ_LOG_BYTES: usize = 256 << 20;

fn bench_dir() -> PathBuf {
    std::env::var_os("SEGMENT_STORE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// One batch of about `size` bytes: 1 KiB records, like a producer's linger batch.
fn batch_of(size: usize) -> Vec<u8> {
    let records = (size / 1024).max(1);
    BatchBuilder::new(0)
        .timestamp(1_700_000_000_000)
        .records(records, 1024 - 12)
        .build()
}

fn leader() -> AppendOptions {
    AppendOptions {
        assign_offsets: true,
        leader_epoch: Some(1),
        log_append_time: None,
    }
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("segment_store_append");
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(10);
    for size in [16 << 10, 1 << 20] {
        let batch = batch_of(size);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{}KiB", size >> 10)),
            &batch,
            |b, batch| {
                let root = tempfile::tempdir_in(bench_dir()).unwrap();
                let mut generation = 0;
                let open = |generation: &mut u32| {
                    *generation += 1;
                    Log::open(
                        &root.path().join(format!("bench-{generation}")),
                        LogConfig::default(),
                        0,
                        true,
                    )
                    .unwrap()
                };
                let mut log = open(&mut generation);
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        if log.size_in_bytes() + batch.len() as u64 > LOG_BUDGET {
                            let old = std::mem::replace(&mut log, open(&mut generation));
                            let dir = old.dir().to_path_buf();
                            drop(old);
                            std::fs::remove_dir_all(dir).unwrap();
                        }
                        let t = Instant::now();
                        black_box(log.append(batch, &leader()).unwrap());
                        spent += t.elapsed();
                    }
                    spent
                });
            },
        );
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let root = tempfile::tempdir_in(bench_dir()).unwrap();
    let log = Log::open(&root.path().join("read-0"), LogConfig::default(), 0, true).unwrap();
    let batch = batch_of(16 << 10);
    while (log.size_in_bytes() as usize) < READ_LOG_BYTES {
        log.append(&batch, &leader()).unwrap();
    }
    let end = log.log_end_offset();
    let mut group = c.benchmark_group("segment_store_read");
    group
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(10);
    const FETCH: usize = 1 << 20;
    group.throughput(Throughput::Bytes(FETCH as u64));
    let mut sink = vec![0u8; FETCH + batch.len()];
    // A fetch: lookup plus copying the returned bytes out (what a socket write does).
    let mut offset = 0;
    group.bench_function("fetch_1MiB_and_copy", |b| {
        b.iter(|| {
            let r = log.read(offset, FETCH, end, true).unwrap();
            sink[..r.records.len()].copy_from_slice(&r.records);
            let last =
                segment_store::BatchHeader::parse(&r.records[r.records.len() - batch.len()..])
                    .unwrap();
            offset = if last.last_offset() + 1 >= end {
                0
            } else {
                last.last_offset() + 1
            };
            black_box(&sink);
        })
    });
    // The zero-copy lookup alone.
    let mut offset = 0;
    group.bench_function("fetch_1MiB_zero_copy", |b| {
        b.iter(|| {
            let r = log.read(offset, FETCH, end, true).unwrap();
            offset = (offset + (FETCH / batch.len()) as i64 * 16) % end;
            black_box(r.records.len())
        })
    });
    // Baseline: memcpy of 1 MiB chunks walking a buffer as large as the log.
    let source = vec![7u8; READ_LOG_BYTES];
    let mut at = 0;
    group.bench_function("memcpy_1MiB", |b| {
        b.iter(|| {
            sink[..FETCH].copy_from_slice(&source[at..at + FETCH]);
            at = (at + FETCH) % (READ_LOG_BYTES - FETCH);
            black_box(&sink);
        })
    });
    group.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
