//! Building and reading v2 record batches.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

pub use kafka_protocol::records::Compression;

use crate::{ClientError, Result};

/// A record as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    /// Offset in its partition (ignored when producing).
    pub offset: i64,
    /// Timestamp in ms.
    pub timestamp: i64,
    /// Key, if any.
    pub key: Option<Bytes>,
    /// Value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The idempotent producer identity a batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdentity {
    /// Producer id from InitProducerId.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record.
    pub base_sequence: i32,
}

/// Encodes `records` as one batch with the given compression (offsets from 0).
pub fn encode_batch(records: &[OwnedRecord], compression: Compression) -> Result<Bytes> {
    encode_batch_as(records, compression, None)
}

/// Encodes `records` as one batch, stamped with an idempotent producer's identity if given.
pub fn encode_batch_as(
    records: &[OwnedRecord],
    compression: Compression,
    producer: Option<ProducerIdentity>,
) -> Result<Bytes> {
    encode(records, compression, producer, false)
}

/// Encodes `records` as one transactional batch of `producer` (part of its open transaction).
pub fn encode_transactional_batch(
    records: &[OwnedRecord],
    compression: Compression,
    producer: ProducerIdentity,
) -> Result<Bytes> {
    encode(records, compression, Some(producer), true)
}

fn encode(
    records: &[OwnedRecord],
    compression: Compression,
    producer: Option<ProducerIdentity>,
    transactional: bool,
) -> Result<Bytes> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.map_or(-1, |p| p.producer_id),
            producer_epoch: producer.map_or(-1, |p| p.producer_epoch),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset minus sequence is constant,
            // so a batch without a producer counts up from the -1 it stores as base sequence.
            sequence: producer
                .map_or(-1, |p| p.base_sequence)
                .wrapping_add(i as i32),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(buf.freeze())
}

/// Decodes the whole batches in `records` (a fetch response's records), skipping control
/// batches and ignoring a cut batch at the end.
pub fn decode_records(records: &Bytes) -> Result<Vec<OwnedRecord>> {
    let mut out = Vec::new();
    let mut rest = records.clone();
    while rest.len() >= 61 {
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let total = 12
            + usize::try_from(len)
                .map_err(|_| ClientError::Protocol("negative batch length".into()))?;
        if rest.len() < total {
            break;
        }
        let mut batch = rest.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        for r in set.records {
            if r.control {
                continue;
            }
            out.push(OwnedRecord {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_with_every_codec() {
        let records: Vec<OwnedRecord> = (0..20)
            .map(|i| OwnedRecord {
                offset: i,
                timestamp: 1_700_000_000_000 + i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: (i % 7 != 0).then(|| Bytes::from(vec![i as u8; 100])),
                headers: vec![
                    ("h".into(), Some(Bytes::from_static(b"v"))),
                    ("n".into(), None),
                ],
            })
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = encode_batch(&records, codec).unwrap();
            let len = i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]);
            assert_eq!(
                12 + len as usize,
                batch.len(),
                "one batch holds every record ({codec:?})"
            );
            assert_eq!(decode_records(&batch).unwrap(), records, "{codec:?}");
        }
    }
}
