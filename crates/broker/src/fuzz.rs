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

use crate::server::FrameReader;

/// The largest frame accepted while fuzzing; a larger length prefix is refused as a
/// connection refuses one above `socket.request.max.bytes`.
const MAX_FRAME: usize = 1 << 20;

/// Feeds `input`, a client's byte stream of length-prefixed request frames, through framing,
/// request decoding and record validation, as a connection would, stopping where a
/// connection would be closed for bad framing. Returns how many frames decoded to a request
/// of a served API. Never panics.
pub fn client_stream(input: &[u8]) -> usize {
    let mut reader = FrameReader::new(input, MAX_FRAME);
    let mut decoded = 0;
    // Reading from a slice never waits, so polling once completes each read.
    while let Ok(Some(frame)) = futures::executor::block_on(reader.next()) {
        decoded += usize::from(request_frame(frame));
    }
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
/// writing them: one whole batch ([`crate::partition::check_shape`]), then every batch's
/// lengths, offsets and CRC32C (`segment_store::ValidatedRecords::new`). Returns whether the
/// records passed. Never panics.
///
/// Record validation added to the produce path (decompression, record-level checks) gets its
/// call here too, after `ValidatedRecords::new`, so the fuzz targets cover it.
pub fn produce_records(records: &[u8]) -> bool {
    if crate::partition::check_shape(records, usize::MAX).is_err() {
        return false;
    }
    segment_store::ValidatedRecords::new(records).is_ok()
}

#[cfg(test)]
mod tests;
