//! Record-level validation of a producer's v2 batch, with the semantics of Apache Kafka's
//! `LogValidator` (client origin): batch-level checks, then a walk over every record (the
//! compressed ones decompressed as a stream, never recompressed), collecting per-record errors
//! the way Kafka's `RecordValidationException` carries them.
//!
//! The walk follows `DefaultRecord.readFrom`: length varint, attributes, timestamp delta,
//! offset delta, key, value, headers, and the record's bytes must be exactly its length. An
//! uncompressed batch is walked in place without allocating; a compressed one is read through
//! a bounded decoder ([`ClientBatchPolicy::max_decompressed_bytes`]), so a zip bomb costs at
//! most that many bytes of decoding and no more memory than a small buffer (snappy: the
//! decompressed size, within the same bound).
//!
//! Strata stores the client's batch as is. Kafka does so too ("in-place assignment") for a
//! compressed v2 batch whose inner offsets are 0..n-1; for any other compressed batch Kafka
//! recompresses, and this module refuses it instead (no v2 client writes one).

use std::fmt;
use std::io::{BufRead, BufReader, Read};

use crate::batch::{BatchHeader, BATCH_HEADER_LEN};
use crate::codec::{snappy_decompress, stream_decoder, CODEC_NAMES};

/// What the walk checks a client batch against (a topic's settings, the broker's clock).
#[derive(Debug, Clone, Copy)]
pub struct ClientBatchPolicy<'a> {
    /// `topic-partition`, as Kafka names it in its messages.
    pub partition: &'a str,
    /// The broker's clock, ms.
    pub now_ms: i64,
    /// `message.timestamp.type=LogAppendTime`: timestamps are not range-checked.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    /// Bound on a compressed batch's decompressed records; past it the batch is refused.
    pub max_decompressed_bytes: usize,
}

/// One refused record: its index in the batch and why (Kafka's `RecordError`, sent in
/// `ProduceResponse.record_errors` from v8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the record within its batch.
    pub batch_index: i32,
    /// Kafka's message for it.
    pub message: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecordError(batchIndex={}, message='{}')",
            self.batch_index, self.message
        )
    }
}

/// Why a client batch is refused. Every variant but [`Self::InvalidTimestamps`] is Kafka's
/// `INVALID_RECORD`; that one is `INVALID_TIMESTAMP`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordCheckError {
    /// The batch as a whole (counts, offsets, control flag, record structure): Kafka's
    /// `InvalidRecordException`, no record errors.
    #[error("{0}")]
    InvalidBatch(String),
    /// Some records are invalid (compacted topic without key): all of them listed.
    #[error("One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]", .0.len(), first_three(.0))]
    InvalidRecords(Vec<RecordError>),
    /// Some records have timestamps out of range (or the producer set LogAppendTime).
    #[error("One or more records have been rejected due to invalid timestamp")]
    InvalidTimestamps(Vec<RecordError>),
    /// Attribute bits 0-2 name no codec (5, 6, 7).
    #[error("Unknown compression type id: {0}")]
    UnknownCodec(i16),
    /// The compressed payload does not decompress (or decompresses past the bound).
    #[error("Failed to decompress record stream ({codec}): {reason}")]
    Decompression {
        /// gzip, snappy, lz4 or zstd.
        codec: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

fn first_three(errors: &[RecordError]) -> String {
    errors
        .iter()
        .take(3)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl RecordCheckError {
    /// The per-record errors, for `ProduceResponse.record_errors` (empty for batch errors).
    pub fn record_errors(&self) -> &[RecordError] {
        match self {
            Self::InvalidRecords(e) | Self::InvalidTimestamps(e) => e,
            _ => &[],
        }
    }
}

/// What the walk learnt of a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedBatch {
    /// Records walked (= `records_count`).
    pub records: i32,
    /// Largest record timestamp (-1 if none); the batch's max timestamp for LogAppendTime
    /// batches.
    pub max_timestamp: i64,
}

/// Validates one producer batch (already checked for magic, length and CRC) as Kafka's
/// `LogValidator` does for a client append; `batch` is the whole batch, header included.
pub fn check_client_batch(
    batch: &[u8],
    policy: &ClientBatchPolicy<'_>,
) -> Result<CheckedBatch, RecordCheckError> {
    let h = BatchHeader::parse(batch).ok_or_else(|| {
        RecordCheckError::InvalidBatch("Record batch is shorter than its header".into())
    })?;
    let tp = policy.partition;
    let invalid = |m: String| Err(RecordCheckError::InvalidBatch(m));
    if h.base_offset != 0 {
        return invalid(format!(
            "The baseOffset of the record batch in the append to {tp} should be 0, but it is {}",
            h.base_offset
        ));
    }
    let last = i64::from(h.last_offset_delta);
    let count_from_offsets = last + 1;
    if count_from_offsets <= 0 {
        return invalid(format!(
            "Batch has an invalid offset range: [0, {last}] in topic partition {tp}"
        ));
    }
    let count = h.records_count;
    if count <= 0 {
        return invalid(format!(
            "Invalid reported count for record batch: {count} in topic partition {tp}"
        ));
    }
    if count_from_offsets != i64::from(count) {
        return invalid(format!(
            "Inconsistent batch offset range [0, {last}] and count of records {count} in topic partition {tp}"
        ));
    }
    if h.is_control() {
        return invalid(format!(
            "Clients are not allowed to write control records in topic partition {tp}"
        ));
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return invalid(format!(
            "Invalid sequence number {} in record batch with producerId {} in topic partition {tp}",
            h.base_sequence, h.producer_id
        ));
    }
    let payload = &batch[BATCH_HEADER_LEN..h.total_size().min(batch.len())];
    let codec = h.compression();
    let mut walk = Walk::new(&h, policy);
    match codec {
        0 => walk.run(
            &mut SliceInput {
                buf: payload,
                pos: 0,
            },
            false,
        )?,
        1 | 3 | 4 => {
            let name = CODEC_NAMES[codec as usize];
            let decoder = stream_decoder(codec, payload, policy.max_decompressed_bytes)
                .map_err(|e| decompression(name, &e))?;
            let mut input = StreamInput {
                reader: BufReader::with_capacity(16 * 1024, decoder),
                codec: name,
            };
            walk.run(&mut input, true)?;
        }
        2 => {
            let bytes =
                snappy_decompress(payload, policy.max_decompressed_bytes).map_err(|reason| {
                    RecordCheckError::Decompression {
                        codec: "snappy",
                        reason,
                    }
                })?;
            walk.run(
                &mut SliceInput {
                    buf: &bytes,
                    pos: 0,
                },
                true,
            )?;
        }
        other => return Err(RecordCheckError::UnknownCodec(other)),
    }
    walk.finish()
}

fn decompression(codec: &'static str, e: &std::io::Error) -> RecordCheckError {
    RecordCheckError::Decompression {
        codec,
        reason: e.to_string(),
    }
}

/// Where a walk reads record bytes from.
trait Input {
    /// The next byte, `None` at the end.
    fn byte(&mut self) -> Result<Option<u8>, RecordCheckError>;
    /// Skips `n` bytes; false if the input ends first.
    fn skip(&mut self, n: usize) -> Result<bool, RecordCheckError>;
    /// Bytes consumed so far.
    fn position(&self) -> usize;
    /// Whether nothing is left.
    fn at_end(&mut self) -> Result<bool, RecordCheckError>;
    /// Bytes left, when known without reading (in-memory input).
    fn remaining(&self) -> Option<usize>;
}

struct SliceInput<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Input for SliceInput<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, RecordCheckError> {
        let b = self.buf.get(self.pos).copied();
        self.pos += usize::from(b.is_some());
        Ok(b)
    }
    #[inline]
    fn skip(&mut self, n: usize) -> Result<bool, RecordCheckError> {
        if self.buf.len() - self.pos < n {
            self.pos = self.buf.len();
            return Ok(false);
        }
        self.pos += n;
        Ok(true)
    }
    fn position(&self) -> usize {
        self.pos
    }
    fn at_end(&mut self) -> Result<bool, RecordCheckError> {
        Ok(self.pos == self.buf.len())
    }
    fn remaining(&self) -> Option<usize> {
        Some(self.buf.len() - self.pos)
    }
}

struct StreamInput<R> {
    reader: BufReader<R>,
    codec: &'static str,
}

impl<R: Read> StreamInput<R> {
    fn fill(&mut self) -> Result<&[u8], RecordCheckError> {
        let codec = self.codec;
        self.reader.fill_buf().map_err(|e| decompression(codec, &e))
    }
}

/// Position is not tracked for streams (records are length-checked by counting instead).
impl<R: Read> Input for StreamInput<R> {
    fn byte(&mut self) -> Result<Option<u8>, RecordCheckError> {
        let b = self.fill()?.first().copied();
        if b.is_some() {
            self.reader.consume(1);
        }
        Ok(b)
    }
    fn skip(&mut self, mut n: usize) -> Result<bool, RecordCheckError> {
        while n > 0 {
            let available = self.fill()?.len();
            if available == 0 {
                return Ok(false);
            }
            let step = available.min(n);
            self.reader.consume(step);
            n -= step;
        }
        Ok(true)
    }
    fn position(&self) -> usize {
        0
    }
    fn at_end(&mut self) -> Result<bool, RecordCheckError> {
        Ok(self.fill()?.is_empty())
    }
    fn remaining(&self) -> Option<usize> {
        None
    }
}

/// State of one batch's record walk.
struct Walk<'p> {
    header: BatchHeader,
    policy: &'p ClientBatchPolicy<'p>,
    record_errors: Vec<RecordError>,
    timestamp_error: bool,
    max_timestamp: i64,
}

/// A structural failure inside a record (Kafka: `InvalidRecordException`).
fn structure(message: impl Into<String>) -> RecordCheckError {
    RecordCheckError::InvalidBatch(message.into())
}

/// Reads a zigzag varint of at most `max_bytes` bytes (5 for Kafka's `varint`, 10 for
/// `varlong`), counting the bytes read into `used`.
#[inline]
fn read_varint<I: Input>(
    input: &mut I,
    max_bytes: u32,
    used: &mut usize,
) -> Result<i64, RecordCheckError> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let Some(b) = input.byte()? else {
            return Err(structure(
                "Incorrect declared batch size, premature EOF reached",
            ));
        };
        *used += 1;
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            if max_bytes == 5 && i32::try_from(v).is_err() {
                break;
            }
            return Ok(v);
        }
    }
    Err(structure(
        "Found invalid record structure (varint too long)",
    ))
}

impl<'p> Walk<'p> {
    fn new(header: &BatchHeader, policy: &'p ClientBatchPolicy<'p>) -> Self {
        Self {
            header: *header,
            policy,
            record_errors: Vec::new(),
            timestamp_error: false,
            max_timestamp: -1,
        }
    }

    /// Walks `records_count` records, then requires the input to be exhausted. `compressed`:
    /// inner offset deltas must be 0..n-1 (in-place assignment).
    fn run<I: Input>(&mut self, input: &mut I, compressed: bool) -> Result<(), RecordCheckError> {
        for index in 0..self.header.records_count {
            self.record(input, index, compressed)?;
        }
        if !input.at_end()? {
            return Err(structure(
                "Incorrect declared batch size, records still remaining in file",
            ));
        }
        Ok(())
    }

    fn record<I: Input>(
        &mut self,
        input: &mut I,
        index: i32,
        compressed: bool,
    ) -> Result<(), RecordCheckError> {
        let size = read_varint(input, 5, &mut 0)?;
        let start = input.position();
        let size = usize::try_from(size)
            .map_err(|_| structure(format!("Invalid record size: {size} is negative")))?;
        if let Some(left) = input.remaining().filter(|left| *left < size) {
            return Err(structure(format!(
                "Invalid record size: expected {size} bytes in record payload, but instead the buffer has only {left} remaining bytes."
            )));
        }
        let mut body = 0usize;
        let eof = || structure("Incorrect declared batch size, premature EOF reached");
        input.byte()?.ok_or_else(eof)?; // attributes
        body += 1;
        let timestamp_delta = read_varint(input, 10, &mut body)?;
        let offset_delta = read_varint(input, 5, &mut body)?;
        let key_len = read_varint(input, 5, &mut body)?;
        self.bytes(input, key_len, &mut body, size)?;
        let value_len = read_varint(input, 5, &mut body)?;
        self.bytes(input, value_len, &mut body, size)?;
        let headers = read_varint(input, 5, &mut body)?;
        if headers < 0 {
            return Err(structure(format!(
                "Found invalid number of record headers {headers}"
            )));
        }
        if headers as usize > size.saturating_sub(body) {
            return Err(structure(format!(
                "Found invalid number of record headers. {headers} is larger than the remaining size of the buffer"
            )));
        }
        for _ in 0..headers {
            let key = read_varint(input, 5, &mut body)?;
            if key < 0 {
                return Err(structure(format!("Invalid negative header key size {key}")));
            }
            self.bytes(input, key, &mut body, size)?;
            let value = read_varint(input, 5, &mut body)?;
            self.bytes(input, value, &mut body, size)?;
        }
        debug_assert!(input.position() == 0 || input.position() - start == body);
        if body != size {
            return Err(structure(format!(
                "Invalid record size: expected to read {size} bytes in record payload, but instead read {body}"
            )));
        }
        if compressed && offset_delta != i64::from(index) {
            return Err(structure(format!(
                "Compressed record {index} has offset delta {offset_delta}: inner offsets must be 0..n-1 in topic partition {}",
                self.policy.partition
            )));
        }
        self.check_record(index, timestamp_delta, offset_delta, key_len < 0);
        Ok(())
    }

    /// Skips a length-prefixed field of `len` bytes (negative: null) within a record of
    /// `size` bytes.
    #[inline]
    fn bytes<I: Input>(
        &self,
        input: &mut I,
        len: i64,
        body: &mut usize,
        size: usize,
    ) -> Result<(), RecordCheckError> {
        if len <= 0 {
            return Ok(());
        }
        let len = len as usize;
        if len > size.saturating_sub(*body) {
            return Err(structure(format!(
                "Invalid record size: expected {size} bytes in record payload, but a field of {len} bytes overruns it"
            )));
        }
        if !input.skip(len)? {
            return Err(structure(
                "Incorrect declared batch size, premature EOF reached",
            ));
        }
        *body += len;
        Ok(())
    }

    /// `LogValidator.validateKey` and `validateTimestamp` for one record.
    fn check_record(
        &mut self,
        index: i32,
        timestamp_delta: i64,
        offset_delta: i64,
        null_key: bool,
    ) {
        let h = &self.header;
        let p = self.policy;
        let batch_log_append = h.timestamp_type_is_log_append();
        let timestamp = if batch_log_append {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(timestamp_delta)
        };
        self.max_timestamp = self.max_timestamp.max(timestamp);
        if p.compacted && null_key {
            self.record_errors.push(RecordError {
                batch_index: index,
                message: format!(
                    "Compacted topic cannot accept message without key in topic partition {}",
                    p.partition
                ),
            });
            return;
        }
        if !p.log_append_time && timestamp != -1 {
            let diff = i128::from(p.now_ms) - i128::from(timestamp);
            if diff > i128::from(p.timestamp_before_max_ms)
                || -diff > i128::from(p.timestamp_after_max_ms)
            {
                self.timestamp_error = true;
                self.record_errors.push(RecordError {
                    batch_index: index,
                    message: format!(
                        "Timestamp {timestamp} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                        h.base_offset + offset_delta,
                        p.now_ms.saturating_sub(p.timestamp_before_max_ms),
                        p.now_ms.saturating_add(p.timestamp_after_max_ms)
                    ),
                });
            }
        } else if batch_log_append {
            self.timestamp_error = true;
            self.record_errors.push(RecordError {
                batch_index: index,
                message: format!(
                    "Invalid timestamp type in message with offset {}. Producer should not set timestamp type to LogAppendTime.",
                    h.base_offset + offset_delta
                ),
            });
        }
    }

    /// `LogValidator.processRecordErrors`.
    fn finish(self) -> Result<CheckedBatch, RecordCheckError> {
        if self.record_errors.is_empty() {
            return Ok(CheckedBatch {
                records: self.header.records_count,
                max_timestamp: self.max_timestamp,
            });
        }
        Err(if self.timestamp_error {
            RecordCheckError::InvalidTimestamps(self.record_errors)
        } else {
            RecordCheckError::InvalidRecords(self.record_errors)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{compress_batch, with_payload, BatchBuilder};
    use proptest::prelude::*;

    const NOW: i64 = 1_000_000;

    fn policy() -> ClientBatchPolicy<'static> {
        ClientBatchPolicy {
            partition: "t-0",
            now_ms: NOW,
            log_append_time: false,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            compacted: false,
            max_decompressed_bytes: 1 << 20,
        }
    }

    fn batch(n: usize, len: usize) -> Vec<u8> {
        BatchBuilder::new(0).timestamp(NOW).records(n, len).build()
    }

    fn set_i32(b: &mut Vec<u8>, at: usize, v: i32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        let attrs = i16::from_be_bytes([b[21], b[22]]);
        let payload = b[BATCH_HEADER_LEN..].to_vec();
        *b = with_payload(b, attrs, &payload);
    }

    fn is_invalid_batch(r: Result<CheckedBatch, RecordCheckError>) -> bool {
        matches!(r, Err(RecordCheckError::InvalidBatch(_)))
    }

    #[test]
    fn valid_batches_pass_for_every_codec() {
        let b = batch(5, 100);
        assert_eq!(check_client_batch(&b, &policy()).unwrap().records, 5);
        for codec in 1..=4 {
            let c = compress_batch(&b, codec);
            let checked = check_client_batch(&c, &policy()).unwrap();
            assert_eq!(checked.records, 5, "codec {codec}");
            assert_eq!(checked.max_timestamp, NOW);
        }
    }

    #[test]
    fn raw_snappy_without_xerial_header_is_read() {
        let b = batch(3, 10);
        let raw = snap::raw::Encoder::new()
            .compress_vec(&b[BATCH_HEADER_LEN..])
            .unwrap();
        let c = with_payload(&b, 2, &raw);
        assert!(check_client_batch(&c, &policy()).is_ok());
    }

    #[test]
    fn count_and_offset_range_must_agree() {
        let mut b = batch(2, 10);
        set_i32(&mut b, 57, 3); // records_count
        assert!(is_invalid_batch(check_client_batch(&b, &policy())));
        let mut b = batch(1, 10);
        set_i32(&mut b, 23, 1_000_000); // last_offset_delta
        let e = check_client_batch(&b, &policy()).unwrap_err();
        assert!(
            e.to_string().starts_with("Inconsistent batch offset range"),
            "{e}"
        );
        // Both claim a million records; the batch holds one.
        set_i32(&mut b, 57, 1_000_001);
        assert!(is_invalid_batch(check_client_batch(&b, &policy())));
        let mut b = batch(1, 10);
        set_i32(&mut b, 57, 0);
        set_i32(&mut b, 23, -1);
        assert!(is_invalid_batch(check_client_batch(&b, &policy())));
    }

    #[test]
    fn base_offset_control_and_sequence_are_client_checks() {
        let b = BatchBuilder::new(5).timestamp(NOW).build();
        assert!(is_invalid_batch(check_client_batch(&b, &policy())));
        let b = BatchBuilder::new(0).timestamp(NOW).attributes(0x20).build();
        let e = check_client_batch(&b, &policy()).unwrap_err();
        assert!(e.to_string().contains("control records"), "{e}");
        let b = BatchBuilder::new(0)
            .timestamp(NOW)
            .producer(7, 0, -1)
            .build();
        assert!(is_invalid_batch(check_client_batch(&b, &policy())));
    }

    #[test]
    fn garbage_payloads_and_unknown_codecs_are_refused() {
        let b = batch(2, 10);
        let garbage: Vec<u8> = (0..200u32).map(|i| (i * 7 + 13) as u8).collect();
        for codec in 1..=4 {
            let c = with_payload(&b, codec, &garbage);
            assert!(
                matches!(
                    check_client_batch(&c, &policy()),
                    Err(RecordCheckError::Decompression { .. } | RecordCheckError::InvalidBatch(_))
                ),
                "codec {codec}"
            );
        }
        for codec in 5..=7 {
            let c = with_payload(&b, codec, &b[BATCH_HEADER_LEN..]);
            assert_eq!(
                check_client_batch(&c, &policy()),
                Err(RecordCheckError::UnknownCodec(codec))
            );
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let b = BatchBuilder::new(0)
            .timestamp(NOW)
            .records(64, 64 * 1024)
            .build();
        let small = ClientBatchPolicy {
            max_decompressed_bytes: 1 << 20,
            ..policy()
        };
        for codec in 1..=4 {
            let c = compress_batch(&b, codec);
            let e = check_client_batch(&c, &small).unwrap_err();
            assert!(
                matches!(e, RecordCheckError::Decompression { .. }),
                "codec {codec}: {e}"
            );
            let big = ClientBatchPolicy {
                max_decompressed_bytes: 8 << 20,
                ..policy()
            };
            assert!(check_client_batch(&c, &big).is_ok(), "codec {codec}");
        }
    }

    #[test]
    fn truncated_overrunning_and_trailing_records_are_refused() {
        let b = batch(3, 10);
        let payload = &b[BATCH_HEADER_LEN..];
        // Truncated mid-record.
        let cut = with_payload(&b, 0, &payload[..payload.len() - 4]);
        assert!(is_invalid_batch(check_client_batch(&cut, &policy())));
        // Bytes after the last record.
        let mut extra = payload.to_vec();
        extra.extend_from_slice(&[0, 0, 0]);
        let trailing = with_payload(&b, 0, &extra);
        assert!(is_invalid_batch(check_client_batch(&trailing, &policy())));
        // First record's length varint claims far more than the batch holds.
        let mut over = payload.to_vec();
        over[0] = 0xfe;
        over.insert(1, 0x7f);
        let overrun = with_payload(&b, 0, &over);
        assert!(is_invalid_batch(check_client_batch(&overrun, &policy())));
        // The same inside a compressed batch.
        for codec in 1..=4 {
            let c = compress_batch(&cut, codec);
            assert!(
                is_invalid_batch(check_client_batch(&c, &policy())),
                "codec {codec}"
            );
            let c = compress_batch(&trailing, codec);
            assert!(
                is_invalid_batch(check_client_batch(&c, &policy())),
                "codec {codec}"
            );
        }
    }

    #[test]
    fn compressed_inner_offsets_must_be_sequential() {
        // Record 1 written with offset delta 2 (0-based records, deltas 0, 2, 2).
        let b = batch(3, 4);
        let mut payload = b[BATCH_HEADER_LEN..].to_vec();
        let first_len = payload[0] as usize / 2 + 1;
        // second record: [len][attr][ts delta][offset delta]...
        payload[first_len + 3] = 4; // zigzag(2)
        let odd = with_payload(&b, 0, &payload);
        assert!(
            check_client_batch(&odd, &policy()).is_ok(),
            "Kafka keeps uncompressed deltas"
        );
        let c = compress_batch(&odd, 3);
        assert!(is_invalid_batch(check_client_batch(&c, &policy())));
    }

    #[test]
    fn compacted_topics_need_keys_and_list_every_record() {
        let b = BatchBuilder::new(0)
            .timestamp(NOW)
            .key_values(&[(None, Some(b"a")), (Some(b"k"), Some(b"b")), (None, None)])
            .build();
        let compacted = ClientBatchPolicy {
            compacted: true,
            ..policy()
        };
        let e = check_client_batch(&b, &compacted).unwrap_err();
        assert!(matches!(e, RecordCheckError::InvalidRecords(_)));
        let indexes: Vec<i32> = e.record_errors().iter().map(|r| r.batch_index).collect();
        assert_eq!(indexes, [0, 2]);
        assert!(e.record_errors()[0]
            .message
            .starts_with("Compacted topic cannot accept message without key"));
        assert!(check_client_batch(&b, &policy()).is_ok());
    }

    #[test]
    fn timestamps_out_of_range_are_invalid_timestamp() {
        let b = BatchBuilder::new(0)
            .timestamps(&[NOW - 5_000, NOW, NOW + 5_000])
            .build();
        let strict = ClientBatchPolicy {
            timestamp_before_max_ms: 1_000,
            timestamp_after_max_ms: 1_000,
            ..policy()
        };
        let e = check_client_batch(&b, &strict).unwrap_err();
        assert!(matches!(e, RecordCheckError::InvalidTimestamps(_)));
        let indexes: Vec<i32> = e.record_errors().iter().map(|r| r.batch_index).collect();
        assert_eq!(indexes, [0, 2]);
        let lat = ClientBatchPolicy {
            log_append_time: true,
            ..strict
        };
        assert!(check_client_batch(&b, &lat).is_ok());
        // A producer may not claim LogAppendTime on a CreateTime topic... with no timestamp.
        let b = BatchBuilder::new(0).timestamp(-1).attributes(0x08).build();
        let mut h = BatchHeader::parse(&b).unwrap();
        h.max_timestamp = -1;
        let mut raw = h.encode().to_vec();
        raw.extend_from_slice(&b[BATCH_HEADER_LEN..]);
        let raw = with_payload(&raw, 0x08, &b[BATCH_HEADER_LEN..]);
        assert!(matches!(
            check_client_batch(&raw, &policy()),
            Err(RecordCheckError::InvalidTimestamps(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a client puts after a valid header, the walk answers (no panic), and
        /// never accepts a payload whose record count disagrees with its records.
        #[test]
        fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..300), codec in 0i16..8) {
            let b = batch(2, 8);
            let c = with_payload(&b, codec, &payload);
            let _ = check_client_batch(&c, &policy());
        }

        /// Every valid batch passes, compressed or not.
        #[test]
        fn valid_batches_pass(n in 1usize..40, len in 0usize..300, codec in 0i16..5) {
            let b = batch(n, len);
            let c = if codec == 0 { b } else { compress_batch(&b, codec) };
            prop_assert_eq!(check_client_batch(&c, &policy()).unwrap().records, n as i32);
        }

        /// Cutting or extending a valid uncompressed payload is always refused.
        #[test]
        fn resized_payloads_are_refused(n in 1usize..10, len in 0usize..50, cut in 1usize..20, grow in proptest::collection::vec(any::<u8>(), 1..20)) {
            let b = batch(n, len);
            let payload = &b[BATCH_HEADER_LEN..];
            let shorter = with_payload(&b, 0, &payload[..payload.len().saturating_sub(cut)]);
            prop_assert!(check_client_batch(&shorter, &policy()).is_err());
            let mut longer = payload.to_vec();
            longer.extend_from_slice(&grow);
            prop_assert!(check_client_batch(&with_payload(&b, 0, &longer), &policy()).is_err());
        }
    }
}
