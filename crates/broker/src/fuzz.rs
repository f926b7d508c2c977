//! Fuzzing entry points over the request path, needing no running broker.
//!
//! [`client_stream`] takes the bytes a client sends through the same steps as a connection:
//! framing ([`crate::server`]'s `FrameReader`), request decoding (`api::decode_request` and
//! the hand-written decoders of old versions), and, for Produce, the validation the append
//! path applies to each partition's records ([`produce_records`]). Neither may panic, whatever
//! the input. They are driven by a bounded test on stable Rust (`tests` below, run in CI) and
//! by the cargo-fuzz targets in `fuzz/` at the workspace root (nightly).

use bytes::Bytes;
use kafka_protocol::messages::RequestKind;

use std::time::Duration;

use crate::server::{Budget, FrameReader};

/// The largest frame accepted while fuzzing; a larger length prefix is refused as a
/// connection refuses one above `socket.request.max.bytes`.
const MAX_FRAME: usize = 1 << 20;

/// Feeds `input`, a client's byte stream of length-prefixed request frames, through framing,
/// request decoding and record validation, as a connection would, stopping where a
/// connection would be closed for bad framing. Returns how many frames decoded to a request
/// of a served API. Never panics.
pub fn client_stream(input: &[u8]) -> usize {
    thread_local! {
        // The frame reader's receive timeout needs tokio's timer.
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    let budget = std::sync::Arc::new(Budget::new(None));
    let mut reader = FrameReader::new(input, MAX_FRAME, budget, Duration::from_secs(30));
    let mut decoded = 0;
    RUNTIME.with(|runtime| {
        // Reading from a slice never waits.
        while let Ok(Some(frame)) = runtime.block_on(reader.next()) {
            decoded += usize::from(request_frame(frame.bytes));
        }
    });
    decoded
}

/// One request frame without its length prefix; `true` if it decoded to a request of a
/// served API (hand-answered old versions count as not decoded).
fn request_frame(frame: Bytes) -> bool {
    let Some(request) = crate::api::decode_without_broker(frame) else {
        return false;
    };
    if let RequestKind::Produce(produce) = &request {
        for topic in &produce.topic_data {
            for partition in &topic.partition_data {
                if let Some(records) = &partition.records {
                    produce_records(records);
                }
            }
        }
    }
    true
}

/// The checks the append path makes of one partition's records in a Produce request before
/// writing them: one whole batch ([`crate::partition::check_shape`]), every batch's lengths,
/// offsets and CRC32C (`segment_store::ValidatedRecords::new`), then Kafka's client-batch
/// checks, records decompressed and walked one by one (`segment_store::check_client_batch`,
/// under a compacted topic's policy so keys are checked too). Returns whether the records
/// passed. Never panics.
pub fn produce_records(records: &[u8]) -> bool {
    if crate::partition::check_shape(records, usize::MAX).is_err() {
        return false;
    }
    if segment_store::ValidatedRecords::new(records).is_err() {
        return false;
    }
    let policy = segment_store::ClientBatchPolicy {
        partition: "fuzz-0",
        now_ms: 0,
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        compacted: true,
        max_decompressed_bytes: MAX_FRAME * 16,
    };
    segment_store::check_client_batch(records, &policy).is_ok()
}

#[cfg(test)]
mod tests;
