//! One partition as its leader serves it: the log, the idempotent producer state, the topic
//! settings the produce path enforces, and the high-watermark channel that parked fetches
//! wait on.

mod producer_state;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use parking_lot::{Mutex, RwLock};
use segment_store::{AppendOptions, BatchHeader, Log, ReadResult};
use tokio::sync::watch;

use crate::topic_config::TopicSettings;
use producer_state::{ProducerStateTable, SequenceCheck, SequenceError};

/// Why a produce to this partition was refused; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProduceError {
    #[error("record batch of {size} bytes is larger than max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("produce v3+ must carry exactly one record batch")]
    InvalidRecord,
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    #[error("min.insync.replicas is {required} but the in-sync replicas are {isr}")]
    NotEnoughReplicas { required: usize, isr: usize },
    #[error(transparent)]
    Storage(#[from] segment_store::Error),
}

impl ProduceError {
    /// The Kafka error code the client gets.
    pub(crate) fn code(&self) -> i16 {
        match self {
            Self::MessageTooLarge { .. } => ResponseError::MessageTooLarge.code(),
            Self::InvalidRecord => ResponseError::InvalidRecord.code(),
            Self::Sequence(SequenceError::InvalidProducerEpoch { .. }) => {
                ResponseError::InvalidProducerEpoch.code()
            }
            Self::Sequence(SequenceError::OutOfOrderSequence { .. }) => {
                ResponseError::OutOfOrderSequenceNumber.code()
            }
            Self::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas.code(),
            Self::Storage(e) => storage_error_code(e),
        }
    }
}

/// Maps a storage error to the Kafka error code a client understands.
pub(crate) fn storage_error_code(error: &segment_store::Error) -> i16 {
    use segment_store::Error as E;
    match error {
        E::CorruptBatch { .. } => ResponseError::CorruptMessage.code(),
        E::UnsupportedMagic { .. } => ResponseError::UnsupportedForMessageFormat.code(),
        E::BatchTooLarge { .. } => ResponseError::RecordListTooLarge.code(),
        E::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        _ => ResponseError::KafkaStorageError.code(),
    }
}

/// Offsets given to an accepted produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Produced {
    pub(crate) base_offset: i64,
    /// The LogAppendTime stamped, or -1 for CreateTime topics.
    pub(crate) log_append_time: i64,
}

/// A partition led by this broker.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) index: i32,
    pub(crate) log: Arc<Log>,
    settings: RwLock<TopicSettings>,
    /// Also serialises appends, so sequence checks and offsets agree.
    producers: Mutex<ProducerStateTable>,
    leader_epoch: AtomicI32,
    high_watermark: watch::Sender<i64>,
}

impl Partition {
    /// Wraps an opened log; restores producer state from its snapshot and the batches after it.
    pub(crate) fn new(
        topic: String,
        index: i32,
        log: Arc<Log>,
        settings: TopicSettings,
        leader_epoch: i32,
    ) -> Result<Self, segment_store::Error> {
        let producers = restore_producer_state(&log)?;
        // A single replica is the whole ISR: everything appended is committed.
        log.set_high_watermark(log.log_end_offset());
        let (high_watermark, _) = watch::channel(log.high_watermark());
        Ok(Self {
            topic,
            index,
            log,
            settings: RwLock::new(settings),
            producers: Mutex::new(producers),
            leader_epoch: AtomicI32::new(leader_epoch),
            high_watermark,
        })
    }

    pub(crate) fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Checks a client's view of the leader epoch (KIP-320): -1 skips the check; an older
    /// epoch is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH.
    pub(crate) fn check_leader_epoch(&self, client_epoch: i32) -> Result<i32, i16> {
        let epoch = self.leader_epoch();
        match client_epoch {
            e if e < 0 || e == epoch => Ok(epoch),
            e if e > epoch => Err(ResponseError::UnknownLeaderEpoch.code()),
            _ => Err(ResponseError::FencedLeaderEpoch.code()),
        }
    }

    pub(crate) fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }

    /// Applies new topic settings to the produce path and the log.
    pub(crate) fn update_settings(&self, settings: TopicSettings) {
        let mut current = self.settings.write();
        if current.log != settings.log {
            self.log.set_config(settings.log.clone());
        }
        *current = settings;
    }

    /// Appends one producer request's records for this partition.
    pub(crate) fn append(
        &self,
        records: &Bytes,
        acks: i16,
        now_ms: i64,
    ) -> Result<Produced, ProduceError> {
        let settings = self.settings.read().clone();
        let header = BatchHeader::parse(records).ok_or(segment_store::Error::CorruptBatch {
            position: 0,
            reason: "shorter than a record batch header",
        })?;
        if header.total_size() != records.len() {
            return Err(if header.total_size() > records.len() {
                segment_store::Error::CorruptBatch {
                    position: 0,
                    reason: "batch length exceeds the records",
                }
                .into()
            } else {
                ProduceError::InvalidRecord
            });
        }
        if records.len() > settings.max_message_bytes {
            return Err(ProduceError::MessageTooLarge {
                size: records.len(),
                max: settings.max_message_bytes,
            });
        }
        let isr = 1;
        if acks == -1 && isr < settings.min_insync_replicas {
            return Err(ProduceError::NotEnoughReplicas {
                required: settings.min_insync_replicas,
                isr,
            });
        }
        let mut producers = self.producers.lock();
        if header.producer_id >= 0 {
            if let SequenceCheck::Duplicate { first_offset } = producers.check(&header)? {
                return Ok(Produced {
                    base_offset: first_offset,
                    log_append_time: -1,
                });
            }
        }
        let options = AppendOptions {
            assign_offsets: true,
            leader_epoch: Some(self.leader_epoch()),
            log_append_time: settings.log_append_time.then_some(now_ms),
        };
        let info = self.log.append(records, &options)?;
        if header.producer_id >= 0 {
            producers.record(&BatchHeader {
                base_offset: info.first_offset,
                ..header
            });
        }
        drop(producers);
        self.log.set_high_watermark(info.last_offset + 1);
        self.high_watermark.send_replace(self.log.high_watermark());
        Ok(Produced {
            base_offset: info.first_offset,
            log_append_time: info.log_append_time,
        })
    }

    /// Reads committed batches for a consumer.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadResult, segment_store::Error> {
        self.log
            .read(offset, max_bytes, self.log.high_watermark(), min_one_batch)
    }

    /// A receiver that changes whenever the high watermark moves.
    pub(crate) fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Saves producer state so the next open scans only what comes after.
    pub(crate) fn snapshot_producer_state(&self) -> std::io::Result<()> {
        let producers = self.producers.lock();
        producers.write_snapshot(self.log.dir(), self.log.log_end_offset())
    }
}

fn restore_producer_state(log: &Log) -> Result<ProducerStateTable, segment_store::Error> {
    let end = log.log_end_offset();
    let (mut table, from) = match ProducerStateTable::read_snapshot(log.dir()) {
        Some((table, at)) if at <= end && at >= log.log_start_offset() => (table, at),
        _ => (ProducerStateTable::default(), log.log_start_offset()),
    };
    table.truncate_from(end);
    if from < end {
        for header in log.batch_headers_from(from)? {
            table.record(&header);
        }
    }
    Ok(table)
}
