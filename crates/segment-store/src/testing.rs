//! Builders of valid v2 record batches for tests and benchmarks (feature `test-util`).

use crate::batch::{compute_crc, BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// An owned record key and value (`None` = null).
type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A record's key and value for [`BatchBuilder::key_values`] (`None` = null).
pub type KeyValueRef<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Builds one uncompressed v2 record batch with a valid CRC32C.
///
/// ```
/// use segment_store::testing::BatchBuilder;
/// let batch = BatchBuilder::new(0).timestamp(1_000).records(3, 100).build();
/// let h = segment_store::BatchHeader::parse(&batch).unwrap();
/// assert_eq!(h.records_count, 3);
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    base_offset: i64,
    timestamps: Vec<i64>,
    value_len: usize,
    seed: u8,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: i16,
    leader_epoch: i32,
    /// Explicit keys and values (`None` = null), one per record, when set.
    key_values: Option<Vec<KeyValue>>,
}

impl BatchBuilder {
    /// A batch of one empty record at timestamp 0 starting at `base_offset`.
    pub fn new(base_offset: i64) -> Self {
        Self {
            base_offset,
            timestamps: vec![0],
            value_len: 0,
            seed: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
            leader_epoch: -1,
            key_values: None,
        }
    }
    /// Sets every record's timestamp to `ts` (keeps the record count).
    pub fn timestamp(mut self, ts: i64) -> Self {
        let n = self.timestamps.len();
        self.timestamps = vec![ts; n];
        self
    }
    /// `count` records (>= 1) with values of `value_len` bytes, all at the first timestamp.
    pub fn records(mut self, count: usize, value_len: usize) -> Self {
        let ts = self.timestamps[0];
        self.timestamps = vec![ts; count.max(1)];
        self.value_len = value_len;
        self
    }
    /// One record per timestamp, in this order.
    pub fn timestamps(mut self, ts: &[i64]) -> Self {
        assert!(!ts.is_empty(), "a batch holds at least one record");
        self.timestamps = ts.to_vec();
        self
    }
    /// Value length of every record.
    pub fn value_len(mut self, len: usize) -> Self {
        self.value_len = len;
        self
    }
    /// Varies the value bytes so different batches differ.
    pub fn seed(mut self, seed: u8) -> Self {
        self.seed = seed;
        self
    }
    /// Idempotent producer fields.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }
    /// Raw attributes (compression bits, transactional, control). Records stay uncompressed.
    pub fn attributes(mut self, attributes: i16) -> Self {
        self.attributes = attributes;
        self
    }
    /// One record per `(key, value)` pair (`None` is null: a null value is a tombstone),
    /// all at the first timestamp.
    pub fn key_values(mut self, kvs: &[KeyValueRef<'_>]) -> Self {
        assert!(!kvs.is_empty(), "a batch holds at least one record");
        let ts = self.timestamps[0];
        self.timestamps = vec![ts; kvs.len()];
        self.key_values = Some(
            kvs.iter()
                .map(|(k, v)| (k.map(<[u8]>::to_vec), v.map(<[u8]>::to_vec)))
                .collect(),
        );
        self
    }
    /// The encoded batch.
    pub fn build(&self) -> Vec<u8> {
        let base_ts = self.timestamps[0];
        let mut records = Vec::with_capacity(self.timestamps.len() * (self.value_len + 16));
        let mut rec = Vec::with_capacity(self.value_len + 16);
        for (i, ts) in self.timestamps.iter().enumerate() {
            rec.clear();
            rec.push(0); // attributes
            put_varlong(&mut rec, ts - base_ts);
            put_varlong(&mut rec, i as i64);
            match self.key_values.as_ref().and_then(|kv| kv.get(i)) {
                Some((key, value)) => {
                    for field in [key, value] {
                        match field {
                            Some(b) => {
                                put_varlong(&mut rec, b.len() as i64);
                                rec.extend_from_slice(b);
                            }
                            None => put_varlong(&mut rec, -1),
                        }
                    }
                }
                None => {
                    put_varlong(&mut rec, -1); // null key
                    put_varlong(&mut rec, self.value_len as i64);
                    rec.extend((0..self.value_len).map(|j| (j as u8) ^ (i as u8) ^ self.seed));
                }
            }
            put_varlong(&mut rec, 0); // no headers
            put_varlong(&mut records, rec.len() as i64);
            records.extend_from_slice(&rec);
        }
        let header = BatchHeader {
            base_offset: self.base_offset,
            batch_length: (BATCH_HEADER_LEN - LOG_OVERHEAD + records.len()) as i32,
            partition_leader_epoch: self.leader_epoch,
            magic: 2,
            crc: 0,
            attributes: self.attributes,
            last_offset_delta: self.timestamps.len() as i32 - 1,
            base_timestamp: base_ts,
            max_timestamp: *self.timestamps.iter().max().expect("non-empty"),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count: self.timestamps.len() as i32,
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(&records);
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

/// Concatenates batches into one records set (what a producer sends).
pub fn records_set(batches: &[Vec<u8>]) -> Vec<u8> {
    batches.concat()
}

/// A decoded record of an uncompressed batch: offset, key and value (`None` = null).
pub type DecodedRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Decodes every record of the batches in `records` (whole batches, as a read returns them;
/// compressed ones decompressed), in order. Panics on bytes that do not decode.
pub fn decode_records(records: &[u8]) -> Vec<DecodedRecord> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let h = BatchHeader::parse(&records[pos..]).expect("a batch header");
        let batch = &records[pos..pos + h.total_size()];
        assert_eq!(
            h.crc,
            compute_crc(batch),
            "CRC of the batch at {}",
            h.base_offset
        );
        let payload = &batch[BATCH_HEADER_LEN..];
        let inflated = match h.compression() {
            0 => None,
            codec => Some(crate::codec::decompress(codec, payload, 1 << 30).expect("decompresses")),
        };
        let payload = inflated.as_deref().unwrap_or(payload);
        for r in crate::batch::decode_payload(&h, payload).expect("records decode") {
            out.push((
                r.offset,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
            ));
        }
        pos += h.total_size();
    }
    out
}

/// Re-encodes an uncompressed batch with `codec` (1 gzip, 2 snappy in xerial framing, 3 lz4,
/// 4 zstd), framed as the log cleaner writes it: same header fields, the records
/// compressed, a fresh CRC.
pub fn compress_batch(batch: &[u8], codec: i16) -> Vec<u8> {
    let h = BatchHeader::parse(batch).expect("a batch header");
    let records = &batch[BATCH_HEADER_LEN..h.total_size()];
    let payload = crate::codec::compress(codec, records).expect("a known codec");
    with_payload(batch, (h.attributes & !0x07) | codec, &payload)
}

/// `batch` with its records replaced by `payload` and its attributes by `attributes`
/// (length and CRC recomputed; other header fields kept).
pub fn with_payload(batch: &[u8], attributes: i16, payload: &[u8]) -> Vec<u8> {
    let h = BatchHeader::parse(batch).expect("a batch header");
    let header = BatchHeader {
        batch_length: (BATCH_HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32,
        attributes,
        ..h
    };
    let mut out = header.encode().to_vec();
    out.extend_from_slice(payload);
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}
