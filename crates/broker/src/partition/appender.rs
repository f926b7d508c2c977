//! The leader's append path: group commit across producers.
//!
//! Produce requests for a partition queue here. Whoever finds the queue idle starts one drain
//! on tokio's blocking pool; the drain takes every queued request, validates each (CRC,
//! lengths, limits) and checks its idempotent sequence under the producer-state lock, then
//! writes all accepted batches with one [`Log::append_validated`]: one write and at most one
//! fsync for everything that queued while the previous write ran. Requests are appended in
//! the order they were queued, so one connection's pipelined requests keep their order.
//!
//! Nothing here runs on a tokio worker: writes, segment rolls and syncs may block.
//!
//! [`Log::append_validated`]: segment_store::Log::append_validated

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use segment_store::{
    check_client_batch, AppendOptions, BatchHeader, CleanupPolicy, ClientBatchPolicy,
    ValidatedRecords,
};
use tokio::sync::oneshot;

use super::producer_state::SequenceCheck;
use super::{effective_min_isr, restore_producer_state, Partition, ProduceError, Produced};
use crate::broker::now_ms;
use crate::metrics::TopicStats;

/// Requests waiting for the partition's writer.
#[derive(Debug, Default)]
pub(super) struct AppendQueue {
    state: Mutex<QueueState>,
}

#[derive(Debug, Default)]
struct QueueState {
    pending: Vec<PendingAppend>,
    /// A drain is running (or about to): it will take what is pending.
    draining: bool,
}

/// Kept by a queued append until its records are written, then dropped: a connection's
/// read-ahead budget, so the bytes a client has waiting to be written stay bounded.
pub(crate) type Hold = Arc<dyn Send + Sync>;

/// Who asked for an append: producers' batches get Kafka's client checks (record walk,
/// no control batches); the broker's own coordinators' batches do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendOrigin {
    /// A Produce request.
    Client,
    /// A coordinator writing its internal topic.
    Coordinator,
    /// A transaction marker (WriteTxnMarkers): a control batch, fenced by producer epoch
    /// rather than sequence-checked.
    TxnMarker,
}

/// Bound on a compressed batch's decompressed records: 16 × `max.message.bytes`, at least
/// 64 MiB. Kafka has none; past it the batch is refused as undecodable (a zip bomb).
pub(crate) fn max_decompressed_bytes(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(16).max(64 << 20)
}

struct PendingAppend {
    records: Bytes,
    acks: i16,
    origin: AppendOrigin,
    reply: oneshot::Sender<Result<Produced, ProduceError>>,
    _hold: Option<Hold>,
}

impl std::fmt::Debug for PendingAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAppend")
            .field("bytes", &self.records.len())
            .field("acks", &self.acks)
            .finish_non_exhaustive()
    }
}

/// Clears the queue if a drain unwinds, so the partition does not wait forever on a drain
/// that is gone (its callers then see [`ProduceError::AppendAborted`]).
struct DrainGuard<'a>(&'a AppendQueue);

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self.0.state.lock();
            state.pending.clear();
            state.draining = false;
        }
    }
}

/// What the drain decided for one request before the write.
enum Decision {
    Refused(ProduceError),
    /// A retry of batches already in the log (idempotent producer).
    Duplicate(Produced),
    /// Written with the others; the offset the producer state recorded it at.
    Accepted {
        base_offset: i64,
    },
}

impl Partition {
    /// Queues one producer request's records (`acks` -1, 0 or 1) for this partition; `hold`
    /// is dropped once they are written. The future resolves then (acks=all then waits with
    /// [`Partition::wait_committed`]); dropping it does not cancel the append. Requests are
    /// appended in the order of the calls. Must be called within a tokio runtime.
    pub(crate) fn append(
        self: &Arc<Self>,
        records: Bytes,
        acks: i16,
        origin: AppendOrigin,
        hold: Option<Hold>,
    ) -> impl Future<Output = Result<Produced, ProduceError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let start_drain = {
            let mut state = self.appends.state.lock();
            state.pending.push(PendingAppend {
                records,
                acks,
                origin,
                reply,
                _hold: hold,
            });
            !std::mem::replace(&mut state.draining, true)
        };
        if start_drain {
            let partition = Arc::clone(self);
            tokio::task::spawn_blocking(move || partition.drain_appends());
        }
        async move { answer.await.unwrap_or(Err(ProduceError::AppendAborted)) }
    }

    /// Appends queued requests, group by group, until the queue is empty. Blocking.
    fn drain_appends(&self) {
        let _guard = DrainGuard(&self.appends);
        loop {
            let group = {
                let mut state = self.appends.state.lock();
                if state.pending.is_empty() {
                    state.draining = false;
                    return;
                }
                std::mem::take(&mut state.pending)
            };
            self.append_group(group);
        }
    }

    /// Validates and sequence-checks each request, writes the accepted ones in one
    /// `append_validated`, and answers every request.
    fn append_group(&self, group: Vec<PendingAppend>) {
        let settings = self.settings.read().clone();
        let mut producers = self.producers.lock();
        let (is_leader, isr, min_isr) = {
            let replicas = self.replicas.lock();
            let min_isr =
                effective_min_isr(settings.min_insync_replicas, replicas.replicas().len());
            (replicas.is_leader(), replicas.isr().len(), min_isr)
        };
        let leader_epoch = self.leader_epoch();
        let policy = ClientBatchPolicy {
            partition: &self.name,
            now_ms: now_ms(),
            log_append_time: settings.log_append_time,
            timestamp_before_max_ms: settings.timestamp_before_max_ms,
            timestamp_after_max_ms: settings.timestamp_after_max_ms,
            compacted: matches!(
                settings.log.cleanup_policy,
                CleanupPolicy::Compact | CleanupPolicy::CompactDelete
            ),
            max_decompressed_bytes: max_decompressed_bytes(settings.max_message_bytes),
        };
        let mut next_offset = self.log.log_end_offset();
        // ABORT markers' `.txnindex` entries, written once their markers are.
        let mut aborted = Vec::new();
        let mut sets = Vec::with_capacity(group.len());
        let mut decisions = Vec::with_capacity(group.len());
        for request in &group {
            let decided = (|| {
                let header = check_shape(&request.records, settings.max_message_bytes)?;
                if !is_leader {
                    return Err(ProduceError::NotLeader);
                }
                if request.acks == -1 && isr < min_isr {
                    return Err(ProduceError::NotEnoughReplicas {
                        required: min_isr,
                        isr,
                    });
                }
                let set = ValidatedRecords::new(&request.records)?;
                if request.origin == AppendOrigin::Client {
                    // Transactional batches go in as sent once the producer state accepts
                    // them (KIP-98); KIP-890's check with the coordinator is not done yet.
                    check_client_batch(&request.records, &policy)?;
                }
                if request.origin == AppendOrigin::TxnMarker {
                    let marker = segment_store::marker_of(&header, &request.records)
                        .ok_or(ProduceError::InvalidRecord)?;
                    producers.check_marker(&header, marker)?;
                    let at = BatchHeader {
                        base_offset: next_offset,
                        ..header
                    };
                    if let Some(entry) = producers.record(&at, Some(marker)) {
                        aborted.push(entry);
                    }
                } else if header.producer_id >= 0 && request.origin == AppendOrigin::Coordinator {
                    // A coordinator's transactional records (TxnOffsetCommit): no sequence
                    // to check; the open transaction is recorded for its marker.
                    producers.record(
                        &BatchHeader {
                            base_offset: next_offset,
                            ..header
                        },
                        None,
                    );
                } else if header.producer_id >= 0 {
                    if let SequenceCheck::Duplicate {
                        first_offset,
                        last_offset,
                    } = producers.check(&header)?
                    {
                        return Ok(Decision::Duplicate(Produced {
                            base_offset: first_offset,
                            log_append_time: -1,
                            end_offset: last_offset + 1,
                            leader_epoch,
                        }));
                    }
                    // Recorded now, so a later request of the same producer in this group
                    // is checked against it; undone below if the write fails.
                    producers.record(
                        &BatchHeader {
                            base_offset: next_offset,
                            ..header
                        },
                        None,
                    );
                }
                let base_offset = next_offset;
                next_offset += set.offset_count();
                sets.push(set);
                Ok(Decision::Accepted { base_offset })
            })();
            decisions.push(decided.unwrap_or_else(Decision::Refused));
        }
        // Transactions these batches open hold the last stable offset back before their
        // records can be read or replicated: a fetch woken by the high watermark must not see
        // them as stable (markers' closings are published only once written, below).
        self.first_unstable.fetch_min(
            producers.first_unstable_offset().unwrap_or(i64::MAX),
            Ordering::AcqRel,
        );
        let written = if sets.is_empty() {
            Ok(Vec::new())
        } else {
            let options = AppendOptions {
                assign_offsets: true,
                leader_epoch: Some(leader_epoch),
                log_append_time: settings.log_append_time.then(now_ms),
            };
            self.log.append_validated(&sets, &options)
        };
        drop(sets);
        let mut written = match written {
            Ok(infos) => Ok(infos.into_iter()),
            Err(error) => {
                tracing::warn!(topic = %self.topic, partition = self.index, %error, "append failed");
                self.rebuild_producer_state(&mut producers);
                Err(Arc::new(error))
            }
        };
        if written.is_ok() {
            for entry in aborted {
                if let Err(error) = self.log.append_aborted_txn(entry) {
                    tracing::error!(partition = %self.name, %error, "writing the transaction index failed");
                }
            }
        }
        // The `.txnindex` has the aborted transactions before their markers' closings move
        // the last stable offset, and both before the high watermark moves.
        self.publish_first_unstable(&producers);
        if written.is_ok() {
            self.advance_high_watermark(&self.replicas.lock());
        }
        drop(producers);
        self.log_end.send_replace(self.log.log_end_offset());
        for (request, decision) in group.into_iter().zip(decisions) {
            let outcome = match decision {
                Decision::Refused(error) => Err(error),
                Decision::Duplicate(produced) => Ok(produced),
                Decision::Accepted { base_offset } => match &mut written {
                    Ok(infos) => {
                        let info = infos.next().expect("one append info per accepted set");
                        debug_assert_eq!(info.first_offset, base_offset);
                        TopicStats::add(&self.stats.bytes_in, request.records.len() as u64);
                        let records = info.last_offset - info.first_offset + 1;
                        TopicStats::add(&self.stats.messages_in, records.max(0) as u64);
                        Ok(Produced {
                            base_offset: info.first_offset,
                            log_append_time: info.log_append_time,
                            end_offset: info.last_offset + 1,
                            leader_epoch,
                        })
                    }
                    Err(error) => Err(ProduceError::AppendFailed(Arc::clone(error))),
                },
            };
            if let Err(error) = &outcome {
                tracing::debug!(topic = %self.topic, partition = self.index, %error, "produce refused");
            }
            let _ = request.reply.send(outcome);
        }
    }

    /// After a failed write: producer state as the log now has it.
    fn rebuild_producer_state(&self, producers: &mut super::ProducerStateTable) {
        match restore_producer_state(&self.log) {
            Ok(table) => *producers = table,
            Err(error) => {
                tracing::error!(topic = %self.topic, partition = self.index, %error, "rebuilding producer state failed")
            }
        }
    }
}

/// The one record batch a Produce v3+ request must carry for a partition, within
/// `max.message.bytes`.
pub(crate) fn check_shape(
    records: &[u8],
    max_message_bytes: usize,
) -> Result<BatchHeader, ProduceError> {
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
    if records.len() > max_message_bytes {
        return Err(ProduceError::MessageTooLarge {
            size: records.len(),
            max: max_message_bytes,
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicBool;

    use controller::PartitionMeta;
    use segment_store::testing::BatchBuilder;
    use segment_store::{Log, MarkerType, TxnMarker};

    use super::*;
    use crate::partition::markers::marker_batch;
    use crate::topic_config::TopicSettings;

    /// The transactional bit of a batch's attributes.
    const TRANSACTIONAL: i16 = 0x10;

    /// One transactional record of `producer_id`, epoch 0, sequence 0.
    fn txn_batch(producer_id: i64) -> Bytes {
        let batch = BatchBuilder::new(0)
            .timestamp(now_ms())
            .key_values(&[(None, Some(b"aborted".as_slice()))])
            .producer(producer_id, 0, 0)
            .attributes(TRANSACTIONAL)
            .build();
        Bytes::from(batch)
    }

    /// What a read_committed fetch from `offset` does (data up to the last stable offset,
    /// then the aborted transactions up to it); returns the offset after the batches read
    /// and the offsets of transactional data batches it would hand out as committed.
    fn fetch_committed(partition: &Partition, offset: i64) -> (i64, Vec<i64>) {
        let read = partition.read(offset, 1 << 20, true, true).unwrap();
        let upper = partition.last_stable_offset().max(offset);
        let aborted = partition.log.aborted_txns(offset, upper).unwrap();
        let (mut next, mut visible) = (offset, Vec::new());
        let mut rest = &read.records[..];
        while let Some(header) = BatchHeader::parse(rest) {
            let dropped = aborted.iter().any(|a| {
                a.producer_id == header.producer_id && a.first_offset <= header.base_offset
            });
            if header.is_transactional() && !header.is_control() && !dropped {
                visible.push(header.base_offset);
            }
            next = header.last_offset() + 1;
            rest = &rest[header.total_size()..];
        }
        (next, visible)
    }

    /// Every transaction here is aborted, so a read_committed reader polling as fast as it
    /// can must never get one of their records: the last stable offset holds a transaction's
    /// records back from the moment the high watermark passes them (a fetch woken by the
    /// high watermark once read them as stable before the transaction was published open).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_committed_never_sees_an_aborted_transaction_as_stable() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TopicSettings::from_effective(&BTreeMap::new());
        let log = Arc::new(Log::open(dir.path(), settings.log.clone(), 0, true).unwrap());
        let partition =
            Arc::new(Partition::new("t".into(), 0, log, settings, 1, Arc::default()).unwrap());
        partition.apply_metadata(
            &PartitionMeta {
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: vec![],
                removing_replicas: vec![],
            },
            now_ms(),
        );
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (partition, done) = (Arc::clone(&partition), Arc::clone(&done));
            std::thread::spawn(move || {
                let (mut offset, mut leaked) = (0, Vec::new());
                while !done.load(Ordering::Acquire) {
                    let (next, visible) = fetch_committed(&partition, offset);
                    offset = next;
                    leaked.extend(visible);
                }
                leaked
            })
        };
        let abort = TxnMarker {
            kind: MarkerType::Abort,
            coordinator_epoch: 0,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        for producer_id in 0..2_000 {
            if std::time::Instant::now() > deadline {
                break;
            }
            let data = partition.append(txn_batch(producer_id), -1, AppendOrigin::Client, None);
            data.await.unwrap();
            let marker = marker_batch(producer_id, 0, abort);
            partition
                .append(marker, -1, AppendOrigin::TxnMarker, None)
                .await
                .unwrap();
        }
        done.store(true, Ordering::Release);
        let leaked = reader.join().unwrap();
        assert!(
            leaked.is_empty(),
            "aborted records read as committed at offsets {leaked:?}"
        );
        assert_eq!(fetch_committed(&partition, 0).1, Vec::<i64>::new());
        assert!(
            partition.log.log_end_offset() >= 200,
            "too few transactions ran"
        );
    }
}
