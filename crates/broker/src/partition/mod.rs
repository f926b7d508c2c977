//! One partition replica on this node: the log, the idempotent producer state, the topic
//! settings the produce path enforces, the replica set that decides the high watermark, and
//! the channels parked fetches and acks=all produces wait on.
//!
//! Lock order: `producers` (which also serialises appends, truncations and role changes)
//! before `replicas`.

mod appender;
mod markers;
mod producer_state;
mod replica_set;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use controller::PartitionMeta;
use kafka_protocol::error::ResponseError;
use parking_lot::{Mutex, RwLock};
use segment_store::{AppendOptions, BatchHeader, Log, ReadResult, RecordCheckError};
use tokio::sync::watch;

use crate::metrics::TopicStats;
use crate::topic_config::TopicSettings;
use appender::AppendQueue;
pub(crate) use appender::{check_shape, AppendOrigin, Hold};
use producer_state::{ProducerStateTable, SequenceError};
use replica_set::ReplicaSet;
pub(crate) use replica_set::Transition;

/// Kafka's effective `min.insync.replicas` (`Partition.effectiveMinIsr`): the topic's
/// setting capped at the partition's replica count, so that a minimum above the replication
/// factor does not refuse every acks=all write.
fn effective_min_isr(min_insync_replicas: usize, replicas: usize) -> usize {
    min_insync_replicas.min(replicas.max(1))
}

/// Why a produce to this partition was refused; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProduceError {
    #[error("record batch of {size} bytes is larger than max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("produce v3+ must carry exactly one record batch")]
    InvalidRecord,
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// The batch's records fail Kafka's `LogValidator` checks.
    #[error(transparent)]
    Records(#[from] RecordCheckError),
    #[error("min.insync.replicas is {required} but the in-sync replicas are {isr}")]
    NotEnoughReplicas { required: usize, isr: usize },
    #[error("this broker no longer leads the partition")]
    NotLeader,
    #[error(transparent)]
    Storage(#[from] segment_store::Error),
    /// The write of a group of appends failed; every request in it gets this.
    #[error("append failed: {0}")]
    AppendFailed(Arc<segment_store::Error>),
    /// The partition's writer stopped before answering.
    #[error("the append was abandoned")]
    AppendAborted,
}

impl ProduceError {
    /// The Kafka error the client gets.
    pub(crate) fn kafka_error(&self) -> ResponseError {
        match self {
            Self::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            Self::InvalidRecord => ResponseError::InvalidRecord,
            Self::Sequence(SequenceError::InvalidProducerEpoch { .. }) => {
                ResponseError::InvalidProducerEpoch
            }
            Self::Sequence(
                SequenceError::OutOfOrderSequence { .. }
                | SequenceError::EarlierBatchVerifying { .. },
            ) => ResponseError::OutOfOrderSequenceNumber,
            Self::Sequence(SequenceError::CoordinatorFenced { .. }) => {
                ResponseError::TransactionCoordinatorFenced
            }
            Self::Records(RecordCheckError::InvalidTimestamps(_)) => {
                ResponseError::InvalidTimestamp
            }
            Self::Records(_) => ResponseError::InvalidRecord,
            Self::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            Self::NotLeader => ResponseError::NotLeaderOrFollower,
            Self::Storage(e) => storage_error(e),
            Self::AppendFailed(e) => storage_error(e),
            Self::AppendAborted => ResponseError::KafkaStorageError,
        }
    }
}

impl ProduceError {
    /// Kafka's `record_errors` for the response (empty unless individual records failed).
    pub(crate) fn record_errors(&self) -> &[segment_store::RecordError] {
        match self {
            Self::Records(e) => e.record_errors(),
            _ => &[],
        }
    }
}

/// Maps a storage error to the Kafka error a client understands.
pub(crate) fn storage_error(error: &segment_store::Error) -> ResponseError {
    use segment_store::Error as E;
    match error {
        E::CorruptBatch { .. } => ResponseError::CorruptMessage,
        E::UnsupportedMagic { .. } => ResponseError::UnsupportedForMessageFormat,
        E::BatchTooLarge { .. } => ResponseError::RecordListTooLarge,
        E::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        _ => ResponseError::KafkaStorageError,
    }
}

/// Offsets given to an accepted produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Produced {
    pub(crate) base_offset: i64,
    /// The LogAppendTime stamped, or -1 for CreateTime topics.
    pub(crate) log_append_time: i64,
    /// One past the last offset: the high watermark that commits the records.
    pub(crate) end_offset: i64,
    /// The leader epoch they were written in.
    pub(crate) leader_epoch: i32,
}

/// A partition's replication state as the metrics endpoint shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionHealth {
    pub(crate) leader: bool,
    pub(crate) replicas: usize,
    pub(crate) isr: usize,
    pub(crate) min_isr: usize,
}

/// A partition with a replica on this node, led here or followed.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: String,
    pub(crate) index: i32,
    /// `topic-index`, as Kafka names a partition in its error messages.
    name: String,
    pub(crate) log: Arc<Log>,
    settings: RwLock<TopicSettings>,
    /// Also serialises appends, truncations and role changes, so sequence checks, offsets
    /// and the leader epoch agree.
    producers: Mutex<ProducerStateTable>,
    /// Produce requests waiting for the writer (see [`appender`]).
    appends: AppendQueue,
    leader_epoch: AtomicI32,
    replicas: Mutex<ReplicaSet>,
    /// Set when this node starts following in a new leader epoch: the fetcher checks the
    /// log against the leader's epochs (and truncates a divergent tail) before fetching.
    needs_truncation: AtomicBool,
    high_watermark: watch::Sender<i64>,
    log_end: watch::Sender<i64>,
    /// The first offset of the oldest open transaction (`i64::MAX`: none), kept with the
    /// producer state so fetches read the last stable offset without its lock.
    first_unstable: AtomicI64,
    /// Its topic's byte and record counters.
    pub(crate) stats: Arc<TopicStats>,
}

impl Partition {
    /// Wraps an opened log; restores producer state from its snapshot and the batches after
    /// it. The partition has no role until [`Partition::apply_metadata`].
    pub(crate) fn new(
        topic: String,
        index: i32,
        log: Arc<Log>,
        settings: TopicSettings,
        node_id: i32,
        stats: Arc<TopicStats>,
    ) -> Result<Self, segment_store::Error> {
        let producers = restore_producer_state(&log)?;
        let first_unstable = AtomicI64::new(producers.first_unstable_offset().unwrap_or(i64::MAX));
        let (high_watermark, _) = watch::channel(log.high_watermark());
        let (log_end, _) = watch::channel(log.log_end_offset());
        Ok(Self {
            name: format!("{topic}-{index}"),
            topic,
            index,
            log,
            settings: RwLock::new(settings),
            producers: Mutex::new(producers),
            appends: AppendQueue::default(),
            leader_epoch: AtomicI32::new(-1),
            replicas: Mutex::new(ReplicaSet::new(node_id)),
            needs_truncation: AtomicBool::new(false),
            high_watermark,
            log_end,
            first_unstable,
            stats,
        })
    }

    /// The last stable offset: the high watermark, or the first offset of the oldest open
    /// transaction if that is lower. read_committed consumers read up to it.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        self.log
            .high_watermark()
            .min(self.first_unstable.load(Ordering::Acquire))
    }

    /// Whether a transactional batch of `producer_id`/`epoch` starting at `sequence` needs
    /// verifying with the coordinator (no transaction of the producer open here at that
    /// epoch); if so, the batch's sequence is noted so a later batch cannot overtake it.
    pub(crate) fn needs_txn_verification(
        &self,
        producer_id: i64,
        epoch: i16,
        sequence: i32,
    ) -> bool {
        let mut producers = self.producers.lock();
        if producers.has_open_txn(producer_id, epoch) {
            return false;
        }
        producers.start_verification(producer_id, epoch, sequence);
        true
    }

    /// Forgets the verification of `producer_id`'s writes noted by
    /// [`Self::needs_txn_verification`]: the coordinator refused them for good, so the
    /// client does not retry them.
    pub(crate) fn abandon_txn_verification(&self, producer_id: i64, epoch: i16) {
        self.producers
            .lock()
            .abandon_verification(producer_id, epoch);
    }

    /// Records appended batches in the producer state: an ABORT marker's entry goes to
    /// the `.txnindex`, and the first unstable offset is republished. `batches` are whole
    /// batches as written (with their offsets).
    fn record_batches(&self, producers: &mut ProducerStateTable, batches: &[u8]) {
        let mut rest = batches;
        while let Some(header) = BatchHeader::parse(rest) {
            let marker = segment_store::marker_of(&header, rest);
            if let Some(aborted) = producers.record(&header, marker) {
                if let Err(error) = self.log.append_aborted_txn(aborted) {
                    tracing::error!(partition = %self.name, %error, "writing the transaction index failed");
                }
            }
            rest = rest.get(header.total_size()..).unwrap_or_default();
        }
        self.publish_first_unstable(producers);
    }

    /// Publishes the producer state's first unstable offset for [`Self::last_stable_offset`].
    fn publish_first_unstable(&self, producers: &ProducerStateTable) {
        self.first_unstable.store(
            producers.first_unstable_offset().unwrap_or(i64::MAX),
            Ordering::Release,
        );
    }

    /// Takes this partition's metadata: a new leader starts its epoch in the log, a new
    /// follower is marked for truncation, and waiters of the old role are woken.
    pub(crate) fn apply_metadata(&self, meta: &PartitionMeta, now_ms: i64) -> Transition {
        let _appends = self.producers.lock();
        let mut replicas = self.replicas.lock();
        let isr_before = replicas.is_leader().then(|| replicas.isr().len());
        let transition = replicas.apply(meta, self.log.log_end_offset(), now_ms);
        if let (Some(before), Transition::Unchanged, true) =
            (isr_before, transition, replicas.is_leader())
        {
            match meta.isr.len().cmp(&before) {
                std::cmp::Ordering::Less => TopicStats::add(&self.stats.isr_shrinks, 1),
                std::cmp::Ordering::Greater => TopicStats::add(&self.stats.isr_expands, 1),
                std::cmp::Ordering::Equal => {}
            }
        }
        self.leader_epoch
            .store(meta.leader_epoch, Ordering::Release);
        match transition {
            Transition::BecameLeader => {
                if let Err(error) = self.log.assign_epoch(meta.leader_epoch) {
                    tracing::error!(topic = %self.topic, partition = self.index, %error, "recording the leader epoch failed");
                }
                tracing::debug!(topic = %self.topic, partition = self.index, epoch = meta.leader_epoch, "leading");
            }
            Transition::BecameFollower => {
                self.needs_truncation.store(true, Ordering::Release);
                tracing::debug!(topic = %self.topic, partition = self.index, leader = meta.leader, epoch = meta.leader_epoch, "following");
            }
            Transition::Unchanged => {}
        }
        self.advance_high_watermark(&replicas);
        drop(replicas);
        if transition != Transition::Unchanged {
            // Wake acks=all produces and fetches parked under the old role.
            self.high_watermark.send_replace(self.log.high_watermark());
            self.log_end.send_replace(self.log.log_end_offset());
        }
        transition
    }

    /// Moves the high watermark up to what the replicas allow (leader only).
    fn advance_high_watermark(&self, replicas: &ReplicaSet) {
        let Some(hw) = replicas.high_watermark(self.log.log_end_offset()) else {
            return;
        };
        if hw > self.log.high_watermark() {
            self.log.set_high_watermark(hw);
            self.high_watermark.send_replace(hw);
        }
    }

    /// For the metrics endpoint: whether this node leads the partition, its replica and
    /// in-sync replica counts, and its `min.insync.replicas`.
    pub(crate) fn health(&self) -> PartitionHealth {
        let min_isr = self.settings.read().min_insync_replicas;
        let replicas = self.replicas.lock();
        let min_isr = effective_min_isr(min_isr, replicas.replicas().len());
        PartitionHealth {
            leader: replicas.is_leader(),
            replicas: replicas.replicas().len(),
            isr: replicas.isr().len(),
            min_isr,
        }
    }

    /// Whether this node leads the partition.
    pub(crate) fn is_leader(&self) -> bool {
        self.replicas.lock().is_leader()
    }

    /// KIP-207: a new leader's high watermark may trail the previous leader's until its
    /// followers fetch; while it is below the start of this leader's epoch, offsets that
    /// depend on it are not answered (`OFFSET_NOT_AVAILABLE`), so they never go backwards.
    pub(crate) fn high_watermark_settled(&self) -> bool {
        let replicas = self.replicas.lock();
        !replicas.is_leader() || self.log.high_watermark() >= replicas.epoch_start_offset()
    }

    /// The leader's node id (-1 when none) and its epoch.
    pub(crate) fn leader(&self) -> (i32, i32) {
        let replicas = self.replicas.lock();
        (replicas.leader(), replicas.leader_epoch())
    }

    pub(crate) fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Checks a client's view of the leader epoch (KIP-320): -1 skips the check; an older
    /// epoch is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH.
    pub(crate) fn check_leader_epoch(&self, client_epoch: i32) -> Result<i32, ResponseError> {
        let epoch = self.leader_epoch();
        match client_epoch {
            e if e < 0 || e == epoch => Ok(epoch),
            e if e > epoch => Err(ResponseError::UnknownLeaderEpoch),
            _ => Err(ResponseError::FencedLeaderEpoch),
        }
    }

    /// Applies new topic settings to the produce path and the log.
    pub(crate) fn update_settings(&self, settings: TopicSettings) {
        let mut current = self.settings.write();
        if current.log != settings.log {
            self.log.set_config(settings.log.clone());
        }
        *current = settings;
    }

    /// Waits until the high watermark reaches `produced.end_offset` (acks=all), answering
    /// with Kafka's error code when leadership moved (`NOT_LEADER_OR_FOLLOWER`), the ISR
    /// fell below `min.insync.replicas` meanwhile (`NOT_ENOUGH_REPLICAS_AFTER_APPEND`) or
    /// `deadline` passed first (`REQUEST_TIMED_OUT`).
    pub(crate) async fn wait_committed(
        &self,
        produced: &Produced,
        deadline: tokio::time::Instant,
    ) -> Result<(), ResponseError> {
        let mut hw = self.high_watermark.subscribe();
        loop {
            if self.leader_epoch() != produced.leader_epoch || !self.is_leader() {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            if *hw.borrow_and_update() >= produced.end_offset {
                let required = self.settings.read().min_insync_replicas;
                let replicas = self.replicas.lock();
                if replicas.isr().len() < effective_min_isr(required, replicas.replicas().len()) {
                    return Err(ResponseError::NotEnoughReplicasAfterAppend);
                }
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, hw.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(ResponseError::RequestTimedOut),
            }
        }
    }

    /// Serves a follower's fetch: records that `replica` holds everything below
    /// `fetch_offset`, moves the high watermark, and reads from there up to the log end.
    pub(crate) fn read_for_follower(
        &self,
        replica: i32,
        fetch_offset: i64,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<ReadResult, ResponseError> {
        {
            let mut replicas = self.replicas.lock();
            if !replicas.is_leader() {
                return Err(ResponseError::NotLeaderOrFollower);
            }
            let log_end = self.log.log_end_offset();
            if fetch_offset <= log_end {
                replicas.record_fetch(replica, fetch_offset, log_end, now_ms);
                self.advance_high_watermark(&replicas);
            }
        }
        let end = self.log.log_end_offset();
        self.log
            .read(fetch_offset, max_bytes, end, true)
            .map_err(|e| storage_error(&e))
    }

    /// Appends batches fetched from the leader of `leader_epoch` at their own offsets,
    /// recording their producers, then takes the leader's high watermark and log start
    /// (records the leader deleted go here too). Refused with [`ProduceError::NotLeader`] if
    /// the partition moved to another epoch meanwhile.
    pub(crate) fn append_as_follower(
        &self,
        records: &Bytes,
        leader_epoch: i32,
        (leader_high_watermark, leader_log_start): (i64, i64),
    ) -> Result<(), ProduceError> {
        let mut producers = self.producers.lock();
        if self.leader_epoch() != leader_epoch || self.replicas.lock().is_leader() {
            return Err(ProduceError::NotLeader);
        }
        if !records.is_empty() {
            let info = self.log.append(records, &AppendOptions::default())?;
            TopicStats::add(&self.stats.replication_bytes_in, records.len() as u64);
            self.record_batches(&mut producers, records);
            self.log_end.send_replace(info.last_offset + 1);
        }
        drop(producers);
        let hw = leader_high_watermark.min(self.log.log_end_offset());
        if hw > self.log.high_watermark() {
            self.log.set_high_watermark(hw);
            self.high_watermark.send_replace(hw);
        }
        if leader_log_start > self.log.log_start_offset() {
            self.log
                .delete_records(leader_log_start.min(self.log.high_watermark()))?;
        }
        Ok(())
    }

    /// Makes the fetcher check this log against the leader's epochs before fetching again.
    pub(crate) fn mark_for_truncation(&self) {
        self.needs_truncation.store(true, Ordering::Release);
    }

    /// Whether the fetcher must check this log against the leader's epochs first.
    pub(crate) fn needs_truncation(&self) -> bool {
        self.needs_truncation.load(Ordering::Acquire)
    }

    /// Cuts the log at `offset` (a tail the leader of `leader_epoch` does not have) and
    /// clears the truncation mark; the producer state is rebuilt from what remains.
    pub(crate) fn truncate_as_follower(
        &self,
        offset: i64,
        leader_epoch: i32,
    ) -> Result<(), ProduceError> {
        let mut producers = self.producers.lock();
        if self.leader_epoch() != leader_epoch || self.replicas.lock().is_leader() {
            return Err(ProduceError::NotLeader);
        }
        if offset < self.log.log_end_offset() {
            tracing::info!(topic = %self.topic, partition = self.index, from = self.log.log_end_offset(), to = offset, "truncating a divergent tail");
            self.log.truncate_to(offset)?;
            *producers = restore_producer_state(&self.log)?;
            self.publish_first_unstable(&producers);
            self.log_end.send_replace(self.log.log_end_offset());
        }
        self.needs_truncation.store(false, Ordering::Release);
        Ok(())
    }

    /// The ISR change this leader should submit now, as `(isr, leader epoch, partition
    /// epoch)`; it is then outstanding until metadata moves on or it is abandoned.
    /// Only `eligible` replicas (live brokers) may join.
    pub(crate) fn propose_isr_change(
        &self,
        now_ms: i64,
        lag_ms: i64,
        eligible: impl Fn(i32) -> bool,
    ) -> Option<(Vec<i32>, i32, i32)> {
        let mut replicas = self.replicas.lock();
        let isr = replicas.isr_change(now_ms, lag_ms, self.log.high_watermark(), eligible)?;
        let (leader_epoch, partition_epoch) = replicas.propose(isr.clone());
        Some((isr, leader_epoch, partition_epoch))
    }

    /// Forgets an ISR change the controller refused.
    pub(crate) fn abandon_isr_change(&self) {
        self.replicas.lock().abandon_proposal();
    }

    /// Reads batches for a consumer: up to the high watermark, or with `read_committed` up
    /// to the last stable offset.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
    ) -> Result<ReadResult, segment_store::Error> {
        let upper = if read_committed {
            self.last_stable_offset()
        } else {
            self.log.high_watermark()
        };
        self.log.read(offset, max_bytes, upper, min_one_batch)
    }

    /// A receiver that changes whenever the high watermark moves.
    pub(crate) fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// A receiver that changes whenever records are appended (followers wait on it).
    pub(crate) fn watch_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// The producers with idempotent state in this partition (DescribeProducers).
    pub(crate) fn active_producers(&self) -> Vec<producer_state::ActiveProducer> {
        self.producers.lock().active_producers()
    }

    /// The ids of the producers with state here.
    pub(crate) fn producer_ids(&self) -> std::collections::HashSet<i64> {
        self.producers.lock().producer_ids()
    }

    /// Forgets the producers idle for `expiration_ms` (`producer.id.expiration.ms`) with no
    /// transaction open here; returns how many went.
    pub(crate) fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.lock().remove_expired(now_ms, expiration_ms)
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
        Some((_, at)) if at > end => {
            // Taken before the log was cut below it: it describes records that are gone,
            // and would be taken for the records written in their place once the log grows
            // past it again.
            ProducerStateTable::remove_snapshot(log.dir()).map_err(|source| {
                segment_store::Error::Io {
                    path: log.dir().to_path_buf(),
                    source,
                }
            })?;
            (ProducerStateTable::default(), log.log_start_offset())
        }
        _ => (ProducerStateTable::default(), log.log_start_offset()),
    };
    table.truncate_from(end);
    if from < end {
        for header in log.batch_headers_from(from)? {
            // Markers are rare: only their batch is read to learn commit or abort.
            let marker = if header.is_control() && header.is_transactional() {
                let read = log.read(header.base_offset, 256, end, true)?;
                segment_store::marker_of(&header, &read.records)
            } else {
                None
            };
            if let Some(aborted) = table.record(&header, marker) {
                // Written already unless the crash came between the marker and its entry.
                log.append_aborted_txn(aborted)?;
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use segment_store::testing::BatchBuilder;
    use segment_store::{AppendOptions, Log, LogConfig};

    use super::*;

    fn idempotent_batch(offset: i64, sequence: i32) -> Vec<u8> {
        BatchBuilder::new(offset)
            .records(2, 8)
            .producer(7, 0, sequence)
            .build()
    }

    #[test]
    fn a_snapshot_above_a_truncation_is_not_taken_for_the_records_written_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default(), 0, true).unwrap();
        for (offset, sequence) in [(0, 0), (2, 2), (4, 4)] {
            log.append(
                &idempotent_batch(offset, sequence),
                &AppendOptions::default(),
            )
            .unwrap();
        }
        let table = restore_producer_state(&log).unwrap();
        table
            .write_snapshot(log.dir(), log.log_end_offset())
            .unwrap();
        // The tail goes (a divergent one), and other batches of the producer take its
        // offsets: the snapshot at 6 must not stand for them.
        log.truncate_to(2).unwrap();
        restore_producer_state(&log).unwrap();
        for (offset, sequence) in [(2, 2), (4, 4)] {
            let batch = BatchBuilder::new(offset)
                .records(2, 8)
                .seed(9)
                .producer(7, 1, sequence - 2)
                .build();
            log.append(&batch, &AppendOptions::default()).unwrap();
        }
        let table = restore_producer_state(&log).unwrap();
        let retry =
            BatchHeader::parse(&BatchBuilder::new(0).records(2, 8).producer(7, 1, 2).build())
                .unwrap();
        assert_eq!(
            table.check(&retry),
            Ok(producer_state::SequenceCheck::Duplicate {
                first_offset: 4,
                last_offset: 5
            }),
            "the producer's epoch-1 batches are known from the log"
        );
    }
}
