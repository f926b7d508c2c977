//! Kafka v2 record batches: header decoding, validation, the offset/epoch/timestamp header
//! rewrite, and the small amount of record decoding a timestamp lookup needs.
//!
//! Layout of the 61-byte header (big endian):
//! `base_offset i64 | batch_length i32 | partition_leader_epoch i32 | magic i8 | crc u32 |
//! attributes i16 | last_offset_delta i32 | base_timestamp i64 | max_timestamp i64 |
//! producer_id i64 | producer_epoch i16 | base_sequence i32 | records_count i32`.
//! The CRC32C covers bytes `21..` (attributes to the end), so the base offset and the leader
//! epoch can be rewritten without recomputing it.

use crate::error::{Error, Result};

/// Length of a v2 record batch header (base offset through records count).
pub const BATCH_HEADER_LEN: usize = 61;

/// Bytes before the part of the batch that `batch_length` counts.
pub(crate) const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attributes bit 6 (KIP-534): the base timestamp holds the batch's delete horizon.
pub(crate) const DELETE_HORIZON_FLAG: i16 = 0x40;

/// The fixed 61-byte header of a v2 record batch, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field (whole batch = 12 + batch_length).
    pub batch_length: i32,
    /// Leader epoch stamped by the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Format version; 2 for every batch this crate stores.
    pub magic: i8,
    /// CRC32C of bytes 21 to the end of the batch.
    pub crc: u32,
    /// Compression (bits 0-2), timestamp type (bit 3), transactional (4), control (5),
    /// delete horizon set (6).
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// The base of the records' timestamp deltas: the first record's timestamp, or the
    /// delete horizon when attributes bit 6 is set.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (the append time for LogAppendTime batches).
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`; `None` if `buf` is shorter than 61 bytes.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < BATCH_HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: buf[16] as i8,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Encodes the header into its 61-byte wire form (the inverse of [`BatchHeader::parse`]).
    pub fn encode(&self) -> [u8; BATCH_HEADER_LEN] {
        let mut b = [0u8; BATCH_HEADER_LEN];
        b[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        b[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        b[16] = self.magic as u8;
        b[17..21].copy_from_slice(&self.crc.to_be_bytes());
        b[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        b[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        b[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        b[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        b[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        b[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        b[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        b[57..61].copy_from_slice(&self.records_count.to_be_bytes());
        b
    }

    /// Offset of the last record: `base_offset + last_offset_delta` (at most `i64::MAX`, as a
    /// forged header may claim more).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }
    /// Whole batch size in bytes, length field included. A negative (corrupt) length reads
    /// as one above 2 GiB, which no records set holds.
    pub fn total_size(&self) -> usize {
        12 + self.batch_length as u32 as usize
    }
    /// Attributes bit 4: part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    /// Attributes bit 5: a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// Compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }
    /// The time (ms) from which the cleaner may remove the batch's tombstones, or the batch
    /// itself for a transaction marker: the base timestamp when attributes bit 6 is set
    /// (Kafka's `DefaultRecordBatch.deleteHorizonMs`, KIP-534).
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & DELETE_HORIZON_FLAG != 0).then_some(self.base_timestamp)
    }
    /// Attributes bit 3: timestamps are the broker's LogAppendTime.
    pub fn timestamp_type_is_log_append(&self) -> bool {
        self.attributes & 0x08 != 0
    }
}

/// The CRC32C a v2 batch should carry: Castagnoli over bytes 21 to the end.
/// `batch` must hold at least the 61-byte header.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// The header of a plausible, complete batch starting at `pos` of `buf`: magic 2, a length
/// that covers at least the header, and every byte within `buf`. Does not check the CRC.
/// Used by every scan over segment bytes, so garbage (zeroed reserved space, a torn tail)
/// ends a scan instead of derailing it.
pub(crate) fn complete_batch_at(buf: &[u8], pos: usize) -> Option<BatchHeader> {
    let h = BatchHeader::parse(buf.get(pos..)?)?;
    if h.magic != 2 || h.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
        return None;
    }
    if h.last_offset_delta < 0 {
        return None;
    }
    let end = pos.checked_add(h.total_size())?;
    (end <= buf.len()).then_some(h)
}

/// One validated batch of an append's records set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValidBatch {
    pub(crate) position: usize,
    pub(crate) header: BatchHeader,
}

/// A producer's records set whose batches passed [`ValidatedRecords::new`]: what
/// [`crate::Log::append_validated`] takes, so a set is checked (and its CRC computed) once.
#[derive(Debug, Clone)]
pub struct ValidatedRecords<'a> {
    pub(crate) records: &'a [u8],
    pub(crate) batches: Vec<ValidBatch>,
}

impl<'a> ValidatedRecords<'a> {
    /// Checks every batch of `records` (magic 2, lengths, CRC32C, offset deltas, increasing
    /// offsets); fails on the first invalid one. An empty set is invalid.
    pub fn new(records: &'a [u8]) -> Result<Self> {
        Ok(Self {
            batches: validate_records(records)?,
            records,
        })
    }

    /// The set's size in bytes.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Always false: an empty set does not validate.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The headers of its batches, in order.
    pub fn headers(&self) -> impl Iterator<Item = &BatchHeader> + '_ {
        self.batches.iter().map(|b| &b.header)
    }

    /// How many offsets the set takes when the leader assigns them.
    pub fn offset_count(&self) -> i64 {
        self.headers()
            .map(|h| i64::from(h.last_offset_delta) + 1)
            .sum()
    }
}

/// Validates every batch of a producer's records set (magic, lengths, CRC32C, offset deltas)
/// and returns them in order. Fails on the first invalid batch; an empty set is invalid.
pub(crate) fn validate_records(records: &[u8]) -> Result<Vec<ValidBatch>> {
    let mut out = Vec::new();
    let mut pos = 0;
    if records.is_empty() {
        return Err(Error::CorruptBatch {
            position: 0,
            reason: "empty records set",
        });
    }
    while pos < records.len() {
        let rest = &records[pos..];
        let corrupt = |reason| Error::CorruptBatch {
            position: pos,
            reason,
        };
        if rest.len() > 16 && rest[16] as i8 != 2 {
            return Err(Error::UnsupportedMagic {
                position: pos,
                magic: rest[16] as i8,
            });
        }
        let header = BatchHeader::parse(rest).ok_or_else(|| corrupt("shorter than a header"))?;
        if header.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(corrupt("batch length smaller than the header"));
        }
        if header.total_size() > rest.len() {
            return Err(corrupt("batch length past the end of the records set"));
        }
        if header.last_offset_delta < 0 || header.records_count < 0 {
            return Err(corrupt("negative last offset delta or records count"));
        }
        let batch = &rest[..header.total_size()];
        // One pass over the batch (crc32c_combine costs tens of microseconds a call).
        if crc32c::crc32c(&batch[CRC_START..]) != header.crc {
            return Err(corrupt("CRC32C mismatch"));
        }
        if let Some(prev) = out.last().map(|b: &ValidBatch| b.header) {
            if header.base_offset <= prev.last_offset() {
                // Only matters for replica appends (leaders reassign), but a producer set
                // must be ordered either way.
                return Err(corrupt("batch offsets do not increase"));
            }
        }
        out.push(ValidBatch {
            position: pos,
            header,
        });
        pos += header.total_size();
    }
    Ok(out)
}

/// The header a batch is stored with: new base offset, optionally a new leader epoch and a
/// LogAppendTime stamp (which sets attributes bit 3 and the max timestamp, so the CRC is
/// recomputed over the new header bytes and the records). `original` starts at the batch.
pub(crate) fn rewrite_header(
    batch: &ValidBatch,
    original: &[u8],
    base_offset: i64,
    leader_epoch: Option<i32>,
    log_append_time: Option<i64>,
) -> [u8; BATCH_HEADER_LEN] {
    let mut h: [u8; BATCH_HEADER_LEN] = original[..BATCH_HEADER_LEN]
        .try_into()
        .expect("validated batch has a header");
    h[0..8].copy_from_slice(&base_offset.to_be_bytes());
    if let Some(epoch) = leader_epoch {
        h[12..16].copy_from_slice(&epoch.to_be_bytes());
    }
    if let Some(t) = log_append_time {
        let attrs = batch.header.attributes | ATTR_LOG_APPEND_TIME;
        h[21..23].copy_from_slice(&attrs.to_be_bytes());
        h[35..43].copy_from_slice(&t.to_be_bytes());
        let records = &original[BATCH_HEADER_LEN..batch.header.total_size()];
        let crc = crc32c::crc32c_append(crc32c::crc32c(&h[CRC_START..]), records);
        h[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    h
}

/// Reads a zigzag varint (Kafka's `varint`/`varlong`) at `*pos`.
fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        raw |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// Appends a zigzag varint (Kafka's `varlong`).
fn write_varlong(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8 & 0x7f) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// Appends the record `raw` (length prefix included) with its timestamp delta moved from
/// base `from` to base `to`, so its timestamp stays the same; `None` if it does not decode.
pub(crate) fn rebase_record(out: &mut Vec<u8>, raw: &[u8], from: i64, to: i64) -> Option<()> {
    let mut pos = 0;
    let len = usize::try_from(read_varlong(raw, &mut pos)?).ok()?;
    let body = raw.get(pos..pos.checked_add(len)?)?;
    let attributes = *body.first()?;
    let mut at = 1;
    let delta = read_varlong(body, &mut at)?;
    let mut fields = vec![attributes];
    write_varlong(&mut fields, from.wrapping_add(delta).wrapping_sub(to));
    fields.extend_from_slice(&body[at..]);
    write_varlong(out, fields.len() as i64);
    out.extend_from_slice(&fields);
    Some(())
}

/// One record of a batch, as compaction sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawRecord<'a> {
    /// Absolute offset (base offset + offset delta).
    pub(crate) offset: i64,
    /// The key, `None` when null.
    pub(crate) key: Option<&'a [u8]>,
    /// The value, `None` when null (a tombstone).
    pub(crate) value: Option<&'a [u8]>,
    /// The whole record, its length prefix included (copied as is into a rewritten batch).
    pub(crate) raw: &'a [u8],
}

/// Decodes the `h.records_count` records of `payload`, the records of the batch `h` (after
/// decompression for a compressed batch); `None` unless they decode and fill it exactly.
pub(crate) fn decode_payload<'a>(h: &BatchHeader, payload: &'a [u8]) -> Option<Vec<RawRecord<'a>>> {
    let end = payload.len();
    let mut out = Vec::with_capacity(h.records_count.clamp(0, 1 << 16) as usize);
    let mut pos = 0;
    let bytes = |buf: &'_ [u8], pos: &mut usize| -> Option<Option<(usize, usize)>> {
        let len = read_varlong(buf, pos)?;
        if len < 0 {
            return Some(None);
        }
        let start = *pos;
        let stop = start.checked_add(usize::try_from(len).ok()?)?;
        *pos = stop;
        Some(Some((start, stop)))
    };
    for _ in 0..h.records_count {
        let rec_start = pos;
        let len = usize::try_from(read_varlong(payload, &mut pos)?).ok()?;
        let body = pos;
        let rec_end = body.checked_add(len)?;
        if rec_end > end {
            return None;
        }
        let buf = &payload[..rec_end];
        pos += 1; // record attributes
        read_varlong(buf, &mut pos)?; // timestamp delta
        let offset_delta = read_varlong(buf, &mut pos)?;
        let key = bytes(buf, &mut pos)?;
        let value = bytes(buf, &mut pos)?;
        if pos > rec_end {
            return None;
        }
        out.push(RawRecord {
            offset: h.base_offset.checked_add(offset_delta)?,
            key: key.map(|(a, b)| &payload[a..b]),
            value: value.map(|(a, b)| &payload[a..b]),
            raw: &payload[rec_start..rec_end],
        });
        pos = rec_end;
    }
    (pos == end).then_some(out)
}

/// The first record of an uncompressed batch whose timestamp is >= `target`, as
/// `(timestamp, offset)`. `None` if no record qualifies or the records do not decode.
/// For LogAppendTime batches every record carries the batch's max timestamp.
pub(crate) fn first_record_at_or_after(batch: &[u8], target: i64) -> Option<(i64, i64)> {
    let h = BatchHeader::parse(batch)?;
    if h.timestamp_type_is_log_append() {
        return (h.max_timestamp >= target).then_some((h.max_timestamp, h.base_offset));
    }
    if h.compression() != 0 {
        return None;
    }
    let mut pos = BATCH_HEADER_LEN;
    for _ in 0..h.records_count {
        let len = read_varlong(batch, &mut pos)?;
        let start = pos;
        pos += 1; // record attributes
        let ts_delta = read_varlong(batch, &mut pos)?;
        let offset_delta = read_varlong(batch, &mut pos)?;
        let ts = h.base_timestamp + ts_delta;
        if ts >= target {
            return Some((ts, h.base_offset + offset_delta));
        }
        pos = start.checked_add(usize::try_from(len).ok()?)?;
    }
    None
}

/// The first record of an uncompressed batch carrying the batch's max timestamp, as its
/// offset; the batch's last offset when the records cannot be decoded (compressed).
pub(crate) fn offset_of_max_timestamp(batch: &[u8]) -> Option<i64> {
    let h = BatchHeader::parse(batch)?;
    Some(first_record_at_or_after(batch, h.max_timestamp).map_or(h.last_offset(), |(_, o)| o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::BatchBuilder;

    #[test]
    fn header_encode_parse_round_trip() {
        let batch = BatchBuilder::new(42).timestamp(1000).records(3, 10).build();
        let h = BatchHeader::parse(&batch).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 44);
        assert_eq!(h.total_size(), batch.len());
        assert_eq!(h.encode(), batch[..BATCH_HEADER_LEN]);
        assert_eq!(h.crc, compute_crc(&batch));
    }

    #[test]
    fn validate_rejects_flipped_byte_and_bad_magic() {
        let mut batch = BatchBuilder::new(0).records(2, 20).build();
        assert!(validate_records(&batch).is_ok());
        batch[70] ^= 1;
        assert!(matches!(
            validate_records(&batch),
            Err(Error::CorruptBatch {
                reason: "CRC32C mismatch",
                ..
            })
        ));
        batch[16] = 1;
        assert!(matches!(
            validate_records(&batch),
            Err(Error::UnsupportedMagic { magic: 1, .. })
        ));
    }

    /// Found by the broker's fuzz test: these overflowed (a panic in debug builds).
    #[test]
    fn forged_lengths_and_offsets_do_not_overflow() {
        let mut h =
            BatchHeader::parse(&BatchBuilder::new(i64::MAX - 1).records(3, 10).build()).unwrap();
        assert_eq!(h.last_offset(), i64::MAX);
        h.batch_length = -1;
        assert!(h.total_size() > i32::MAX as usize);
    }

    #[test]
    fn validate_rejects_truncated_batch() {
        let batch = BatchBuilder::new(0).records(2, 20).build();
        assert!(validate_records(&batch[..batch.len() - 1]).is_err());
        assert!(validate_records(&batch[..30]).is_err());
        assert!(validate_records(&[]).is_err());
    }

    #[test]
    fn rewrite_with_log_append_time_keeps_crc_valid() {
        let batch = BatchBuilder::new(0).timestamp(5).records(4, 8).build();
        let v = validate_records(&batch).unwrap()[0];
        let h = rewrite_header(&v, &batch, 100, Some(7), Some(99_999));
        let mut out = h.to_vec();
        out.extend_from_slice(&batch[BATCH_HEADER_LEN..]);
        let parsed = BatchHeader::parse(&out).unwrap();
        assert_eq!(parsed.base_offset, 100);
        assert_eq!(parsed.partition_leader_epoch, 7);
        assert!(parsed.timestamp_type_is_log_append());
        assert_eq!(parsed.max_timestamp, 99_999);
        assert_eq!(parsed.crc, compute_crc(&out));
    }

    #[test]
    fn a_rebased_record_keeps_its_timestamp() {
        let batch = BatchBuilder::new(10).timestamps(&[100, 300]).build();
        let h = BatchHeader::parse(&batch).unwrap();
        let records = decode_payload(&h, &batch[BATCH_HEADER_LEN..]).unwrap();
        let horizon = 5_000_000_000_000;
        let mut payload = Vec::new();
        for r in &records {
            rebase_record(&mut payload, r.raw, h.base_timestamp, horizon).unwrap();
        }
        let mut nh = h;
        nh.base_timestamp = horizon;
        nh.attributes |= DELETE_HORIZON_FLAG;
        nh.batch_length = (BATCH_HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32;
        let mut out = nh.encode().to_vec();
        out.extend_from_slice(&payload);
        assert_eq!(
            BatchHeader::parse(&out).unwrap().delete_horizon_ms(),
            Some(horizon)
        );
        assert_eq!(h.delete_horizon_ms(), None);
        assert_eq!(first_record_at_or_after(&out, 0), Some((100, 10)));
        assert_eq!(first_record_at_or_after(&out, 101), Some((300, 11)));
        let rebased = decode_payload(&nh, &payload).unwrap();
        assert_eq!(rebased.len(), 2);
        assert_eq!(
            (rebased[1].key, rebased[1].value),
            (records[1].key, records[1].value)
        );
    }

    #[test]
    fn record_timestamps_decode_to_exact_offset() {
        let batch = BatchBuilder::new(10)
            .timestamps(&[100, 300, 200, 400])
            .build();
        assert_eq!(first_record_at_or_after(&batch, 150), Some((300, 11)));
        assert_eq!(first_record_at_or_after(&batch, 400), Some((400, 13)));
        assert_eq!(first_record_at_or_after(&batch, 401), None);
        assert_eq!(offset_of_max_timestamp(&batch), Some(13));
    }
}
