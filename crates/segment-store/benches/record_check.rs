//! Cost of `check_client_batch` on its own: a 16 KiB uncompressed batch of 1 KiB records
//! and a 1 MiB lz4 batch. `cargo bench -p segment-store --features test-util --bench record_check`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use segment_store::testing::{compress_batch, BatchBuilder};
use segment_store::{check_client_batch, ClientBatchPolicy};

fn policy() -> ClientBatchPolicy<'static> {
    ClientBatchPolicy {
        partition: "bench-0",
        now_ms: 1_000,
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        compacted: false,
        max_decompressed_bytes: 64 << 20,
    }
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let mut group = c.benchmark_group("check_client_batch");
    let plain = BatchBuilder::new(0)
        .timestamp(1_000)
        .records(16, 1024)
        .build();
    group.throughput(Throughput::Bytes(plain.len() as u64));
    group.bench_function("uncompressed_16KiB_1KiB_records", |b| {
        b.iter(|| check_client_batch(std::hint::black_box(&plain), &policy).unwrap())
    });
    // 1 MiB of records (1 KiB each), lz4-compressed; throughput counts decompressed bytes.
    let big = BatchBuilder::new(0)
        .timestamp(1_000)
        .records(1024, 1024)
        .build();
    let lz4 = compress_batch(&big, 3);
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("lz4_1MiB", |b| {
        b.iter(|| check_client_batch(std::hint::black_box(&lz4), &policy).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
