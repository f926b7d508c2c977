//! What a coordinator needs of its internal topic's partitions, as a trait the broker
//! implements over its own partitions ([`CoordinatorLog`]), and the record batch format the
//! records travel in.

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};

use crate::error::LogError;

/// One record of an internal topic: key and value (`None`: a tombstone).
pub type Record = (Bytes, Option<Bytes>);

/// What a replay reads back from an internal topic: a record (with its producer when it
/// was written in a transaction) or a transaction marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEntry {
    /// A record; `producer_id` is set for records of a transactional batch, which count
    /// only once their producer's COMMIT marker follows.
    Record {
        key: Bytes,
        value: Option<Bytes>,
        producer_id: Option<i64>,
    },
    /// A COMMIT (or ABORT) marker of `producer_id`'s transaction.
    Marker { producer_id: i64, commit: bool },
}

/// Resolves once appended records are written and replicated (the high watermark covers
/// them), or with the reason they will not be by the deadline given to
/// [`CoordinatorLog::append`].
pub type Replication<'a> = Pin<Box<dyn Future<Output = Result<(), LogError>> + Send + 'a>>;

/// One partition of a coordinator's internal topic, led by this node.
pub trait CoordinatorLog: Send + Sync {
    /// The log start and end offsets now: the range a load replays.
    fn offsets(&self) -> (i64, i64);

    /// The entries of the whole batches from `from` up to `end` (exclusive), with the
    /// offset after the last batch returned; `None` when nothing more can be read.
    fn read(&self, from: i64, end: i64) -> Result<Option<(Vec<LogEntry>, i64)>, LogError>;

    /// Queues `records` as one batch stamped `now_ms` on the partition's append path, in
    /// the order of the calls, and returns at once: the returned future resolves once they
    /// are written and replicated, or with why not (by `deadline` at most). An error here
    /// means nothing was queued. Dropping the future does not cancel the append.
    fn append(
        &self,
        records: &[Record],
        now_ms: i64,
        deadline: tokio::time::Instant,
    ) -> Result<Replication<'_>, LogError> {
        self.append_as(records, None, now_ms, deadline)
    }

    /// [`Self::append`], as a transactional batch of `producer` (id, epoch) when given: its
    /// records count once the producer's COMMIT marker follows them.
    fn append_as(
        &self,
        records: &[Record],
        producer: Option<(i64, i16)>,
        now_ms: i64,
        deadline: tokio::time::Instant,
    ) -> Result<Replication<'_>, LogError>;

    /// The partition's leader epoch while led here. Ownership records it when the
    /// partition is gained; a transaction coordinator's markers carry that as their
    /// coordinator epoch (Kafka's `coordinatorEpoch`), so that partition leaders refuse
    /// those of a coordinator whose partition has since moved on.
    fn leader_epoch(&self) -> i32;

    /// What the log is, as an address: two handles of one log (an adapter made afresh on
    /// every leadership report, say) must give the same, and handles of different logs
    /// different ones. Ownership keeps a partition's loaded state while it is led through
    /// the same log. The default is the handle's own address.
    fn identity(&self) -> *const () {
        (self as *const Self).cast()
    }
}

/// One record batch of `(key, value)` records (a `None` value is a tombstone), transactional
/// for `producer` (id, epoch) when given.
pub fn encode_batch(entries: &[Record], timestamp: i64, producer: Option<(i64, i16)>) -> Bytes {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Kept one less than the offset so that the encoder makes a single batch.
            sequence: (i as i32).wrapping_sub(1),
            timestamp,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding uncompressed records cannot fail");
    buf.freeze()
}

/// Decodes every entry of whole batches in `records`: records, with their producer for
/// transactional batches, and transaction markers.
pub fn decode_batches(records: &Bytes) -> Vec<LogEntry> {
    let mut out = Vec::new();
    let mut rest = records.clone();
    while rest.len() >= 61 {
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let Ok(len) = usize::try_from(len) else { break };
        if rest.len() < 12 + len {
            break;
        }
        let mut one = rest.split_to(12 + len);
        match kafka_protocol::records::RecordBatchDecoder::decode(&mut one) {
            Ok(set) => {
                for r in set.records {
                    if r.control {
                        // An EndTxnMarker key: version, then type (0 abort, 1 commit).
                        if let Some(key) = r.key.filter(|k| k.len() >= 4) {
                            out.push(LogEntry::Marker {
                                producer_id: r.producer_id,
                                commit: i16::from_be_bytes([key[2], key[3]]) == 1,
                            });
                        }
                    } else if let Some(key) = r.key {
                        out.push(LogEntry::Record {
                            key,
                            value: r.value,
                            producer_id: r.transactional.then_some(r.producer_id),
                        });
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "undecodable batch in an internal topic"),
        }
    }
    out
}
