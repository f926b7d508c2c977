//! Transaction markers written into a partition this node leads (WriteTxnMarkers): a control
//! batch of one record, appended through the partition's append path and acknowledged once
//! the in-sync replicas have it, as Kafka writes markers with acks=all.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use segment_store::{marker_record, MarkerType, TxnMarker};

use super::{AppendOrigin, Partition};
use crate::broker::now_ms;

/// How long a marker waits for the in-sync replicas.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// The control batch of a marker of `producer_id`/`epoch`.
pub(crate) fn marker_batch(producer_id: i64, epoch: i16, marker: TxnMarker) -> bytes::Bytes {
    let (key, value) = marker_record(marker);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key: Some(bytes::Bytes::copy_from_slice(&key)),
        value: Some(bytes::Bytes::copy_from_slice(&value)),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding one uncompressed record cannot fail");
    buf.freeze()
}

impl Partition {
    /// Writes the COMMIT (or ABORT) marker of `producer_id`/`epoch` and waits until the
    /// in-sync replicas have it. INVALID_PRODUCER_EPOCH if the producer moved to a newer
    /// epoch already; NOT_LEADER_OR_FOLLOWER if this node does not lead the partition.
    pub(crate) async fn write_marker(
        self: &Arc<Self>,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<(), ResponseError> {
        let marker = TxnMarker {
            kind: if commit {
                MarkerType::Commit
            } else {
                MarkerType::Abort
            },
            coordinator_epoch,
        };
        let batch = marker_batch(producer_id, epoch, marker);
        let produced = self
            .append(batch, -1, AppendOrigin::TxnMarker, None)
            .await
            .map_err(|e| e.kafka_error())?;
        self.wait_committed(&produced, tokio::time::Instant::now() + MARKER_TIMEOUT)
            .await
    }
}

#[cfg(test)]
mod tests {
    use segment_store::{marker_of, BatchHeader};

    use super::*;

    #[test]
    fn a_marker_batch_is_a_transactional_control_batch_kafka_can_read() {
        let batch = marker_batch(
            42,
            3,
            TxnMarker {
                kind: MarkerType::Abort,
                coordinator_epoch: 7,
            },
        );
        let header = BatchHeader::parse(&batch).unwrap();
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id, header.producer_epoch), (42, 3));
        assert_eq!(
            marker_of(&header, &batch),
            Some(TxnMarker {
                kind: MarkerType::Abort,
                coordinator_epoch: 7
            })
        );
    }
}
