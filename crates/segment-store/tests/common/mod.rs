//! Shared helpers of the integration tests.
#![allow(dead_code, unreachable_pub)]

use segment_store::testing::BatchBuilder;
use segment_store::{AppendOptions, Log, LogConfig};

pub fn leader() -> AppendOptions {
    AppendOptions {
        assign_offsets: true,
        ..Default::default()
    }
}

/// Small segments and a dense index so tests exercise rolls and index lookups.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 16 << 10,
        segment_index_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// Every batch of the log, read one by one from the start, as (base offset, bytes).
pub fn all_batches(log: &Log) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let r = log.read(offset, 1, end, true).unwrap();
        let h = segment_store::BatchHeader::parse(&r.records).expect("one batch");
        assert_eq!(h.total_size(), r.records.len());
        out.push((h.base_offset, r.records.to_vec()));
        offset = h.last_offset() + 1;
    }
    out
}

pub fn batch(records: usize, value_len: usize, ts: i64, seed: u8) -> Vec<u8> {
    BatchBuilder::new(0)
        .timestamp(ts)
        .records(records, value_len)
        .seed(seed)
        .build()
}

/// A printable summary of batches: (base offset, length, CRC32C of the bytes).
pub fn summary(batches: &[(i64, Vec<u8>)]) -> Vec<(i64, usize, u32)> {
    batches
        .iter()
        .map(|(o, b)| (*o, b.len(), crc32c::crc32c(b)))
        .collect()
}
