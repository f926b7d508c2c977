//! The broker's side of transactions: writing a transaction's markers into the partitions
//! it touched, locally for those led here and through WriteTxnMarkers to the other
//! leaders ([`BrokerMarkers`], the transaction coordinator's [`TxnMarkers`]); and verifying
//! with the coordinator that a transactional write belongs to an ongoing transaction
//! (KIP-890).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use coordinator::txn::{TxnMarkers, TxnPartitions};
use coordinator::{LogError, OFFSETS_TOPIC};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};

use super::Broker;
use crate::api::str_bytes;

/// How long one round of marker writes may take before the round is retried.
const MARKER_ROUND: Duration = Duration::from_secs(30);
/// Pause before retrying partitions whose leader moved or was unreachable.
const MARKER_RETRY: Duration = Duration::from_millis(100);
/// How long a verification asked of another broker may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between adds to a transaction refused with CONCURRENT_TRANSACTIONS (Kafka's
/// `add.partitions.to.txn.retry.backoff.ms` default).
const ADD_RETRY_BACKOFF: Duration = Duration::from_millis(20);
/// How long such adds are retried before the refusal is answered (Kafka's
/// `add.partitions.to.txn.retry.backoff.max.ms` default).
const ADD_RETRY_MAX: Duration = Duration::from_millis(100);

/// One transaction's marker, as WriteTxnMarkers carries it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MarkerSpec {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) commit: bool,
    pub(crate) coordinator_epoch: i32,
}

/// Kafka's error of a response's `code` (UNKNOWN_SERVER_ERROR for a code it does not know).
fn error_of(code: i16) -> ResponseError {
    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)
}

/// `partitions` grouped by topic, as WriteTxnMarkers and AddPartitionsToTxn carry them.
fn by_topic(partitions: &[(String, i32)]) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, index) in partitions {
        topics.entry(topic).or_default().push(*index);
    }
    topics
}

/// Whether a marker write failing with `error` is worth retrying (the leader moved or has
/// not caught up with the metadata, the replicas are catching up) rather than final.
fn retriable(error: ResponseError) -> bool {
    matches!(
        error,
        ResponseError::NotLeaderOrFollower
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::NotEnoughReplicas
            | ResponseError::NotEnoughReplicasAfterAppend
            | ResponseError::RequestTimedOut
            | ResponseError::KafkaStorageError
            | ResponseError::LeaderNotAvailable
            | ResponseError::CoordinatorLoadInProgress
    )
}

impl Broker {
    /// Writes `marker` into each of `partitions` led here, all at once; the outcome per
    /// partition (`None`: written and replicated).
    pub(crate) async fn write_markers_here(
        self: &Arc<Self>,
        marker: MarkerSpec,
        partitions: &[(String, i32)],
    ) -> Vec<Option<ResponseError>> {
        let writes = partitions.iter().map(|(topic, index)| {
            // A `__consumer_offsets` partition takes the marker once its group coordinator
            // has loaded it: a replay still running would miss it and keep the offsets
            // pending. The transaction coordinator retries, as Kafka's does on the
            // NOT_LEADER_OR_FOLLOWER its brokers answer then.
            let partition = match self.partition(topic, *index) {
                Ok(_)
                    if topic == coordinator::OFFSETS_TOPIC
                        && self.groups.serves(*index).is_err() =>
                {
                    Err(ResponseError::NotLeaderOrFollower)
                }
                other => other,
            };
            async move {
                let partition = partition.map_err(Some)?;
                partition
                    .write_marker(
                        marker.producer_id,
                        marker.epoch,
                        marker.commit,
                        marker.coordinator_epoch,
                    )
                    .await
                    .map_err(Some)
            }
        });
        let outcome: Vec<Option<ResponseError>> = futures::future::join_all(writes)
            .await
            .into_iter()
            .map(|r| r.err().flatten())
            .collect();
        // A marker in a `__consumer_offsets` partition ends the producer's transactional
        // offset commits there.
        let offsets_marked = partitions
            .iter()
            .zip(&outcome)
            .any(|((topic, _), error)| topic == coordinator::OFFSETS_TOPIC && error.is_none());
        if offsets_marked {
            self.groups
                .complete_transaction(marker.producer_id, marker.commit);
        }
        outcome
    }

    /// One WriteTxnMarkers to broker `node` for `partitions`; the outcome per partition.
    async fn write_markers_remote(
        &self,
        node: i32,
        marker: MarkerSpec,
        partitions: &[(String, i32)],
    ) -> Vec<Option<ResponseError>> {
        let unreachable = || vec![Some(ResponseError::NotLeaderOrFollower); partitions.len()];
        let Some(broker) = self.image().broker(node).cloned() else {
            return unreachable();
        };
        let addr = format!("{}:{}", broker.host, broker.port);
        let Ok(mut connection) = self.inter_broker.connect(&addr).await else {
            return unreachable();
        };
        let topics = by_topic(partitions);
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(marker.producer_id))
                .with_producer_epoch(marker.epoch)
                .with_transaction_result(marker.commit)
                .with_coordinator_epoch(marker.coordinator_epoch)
                .with_topics(
                    topics
                        .iter()
                        .map(|(topic, indexes)| {
                            WritableTxnMarkerTopic::default()
                                .with_name(TopicName(str_bytes(*topic)))
                                .with_partition_indexes(indexes.clone())
                        })
                        .collect(),
                )]);
        let Ok(response) = connection.send_within(request, 1, MARKER_ROUND).await else {
            return unreachable();
        };
        let mut outcome: BTreeMap<(String, i32), i16> = BTreeMap::new();
        for result in &response.markers {
            for topic in &result.topics {
                for p in &topic.partitions {
                    outcome.insert((topic.name.0.to_string(), p.partition_index), p.error_code);
                }
            }
        }
        partitions
            .iter()
            .map(|key| match outcome.get(key) {
                Some(0) => None,
                Some(code) => Some(error_of(*code)),
                None => Some(ResponseError::NotLeaderOrFollower),
            })
            .collect()
    }

    /// Writes `marker` into every partition of `partitions` wherever its leader is,
    /// retrying partitions whose leader moved until `deadline`. A partition the metadata
    /// no longer has (its topic deleted) counts as done, as in Kafka; a leader answering
    /// UNKNOWN_TOPIC_OR_PARTITION has not caught up with the metadata and is retried. A
    /// leader that has seen a newer coordinator epoch for the producer
    /// (TRANSACTION_COORDINATOR_FENCED) ends the write at once: a newer coordinator owns
    /// the transaction.
    async fn write_markers_everywhere(
        self: &Arc<Self>,
        marker: MarkerSpec,
        partitions: &TxnPartitions,
        deadline: tokio::time::Instant,
    ) -> Result<(), LogError> {
        let mut pending: Vec<(String, i32)> = partitions
            .iter()
            .flat_map(|(topic, ids)| ids.iter().map(move |id| (topic.clone(), *id)))
            .collect();
        loop {
            let image = self.image();
            let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            for (topic, index) in std::mem::take(&mut pending) {
                let Some(meta) = image.topic(&topic).and_then(|t| t.partition(index)) else {
                    continue; // deleted: nothing to mark
                };
                by_leader
                    .entry(meta.leader)
                    .or_default()
                    .push((topic, index));
            }
            let mut failed = None;
            for (leader, parts) in by_leader {
                let outcome = if leader < 0 {
                    vec![Some(ResponseError::LeaderNotAvailable); parts.len()]
                } else if leader == self.config.node_id {
                    self.write_markers_here(marker, &parts).await
                } else {
                    self.write_markers_remote(leader, marker, &parts).await
                };
                for (part, error) in parts.into_iter().zip(outcome) {
                    match error {
                        None => {}
                        Some(error) if retriable(error) => {
                            failed = Some(error);
                            pending.push(part);
                        }
                        // A newer epoch fenced this marker: the transaction is decided
                        // already in that partition.
                        Some(ResponseError::InvalidProducerEpoch) => {}
                        Some(ResponseError::TransactionCoordinatorFenced) => {
                            tracing::warn!(topic = %part.0, partition = part.1, producer_id = marker.producer_id, coordinator_epoch = marker.coordinator_epoch, "a newer transaction coordinator wrote this producer's markers; giving up");
                            return Err(LogError::new(
                                ResponseError::TransactionCoordinatorFenced,
                                "a newer coordinator epoch fenced the markers",
                            ));
                        }
                        Some(error) => {
                            tracing::warn!(topic = %part.0, partition = part.1, ?error, "writing a transaction marker failed");
                            failed = Some(error);
                            pending.push(part);
                        }
                    }
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() + MARKER_RETRY >= deadline {
                let error = failed.unwrap_or(ResponseError::RequestTimedOut);
                return Err(LogError::new(
                    error,
                    format!("{} partitions without the marker", pending.len()),
                ));
            }
            tokio::time::sleep(MARKER_RETRY).await;
        }
    }
}

/// The transaction coordinator's marker writer over this broker (held weakly: the broker
/// owns the coordinator).
#[derive(Debug)]
pub(crate) struct BrokerMarkers(pub(crate) Weak<Broker>);

impl TxnMarkers for BrokerMarkers {
    fn write(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        partitions: TxnPartitions,
    ) -> Pin<Box<dyn Future<Output = Result<(), LogError>> + Send>> {
        let broker = self.0.upgrade();
        Box::pin(async move {
            let broker = broker.ok_or_else(|| {
                LogError::new(
                    ResponseError::CoordinatorNotAvailable,
                    "the broker is stopping",
                )
            })?;
            let marker = MarkerSpec {
                producer_id,
                epoch,
                commit,
                coordinator_epoch,
            };
            let deadline = tokio::time::Instant::now() + MARKER_ROUND;
            broker
                .write_markers_everywhere(marker, &partitions, deadline)
                .await
        })
    }
}

impl Broker {
    /// The `__consumer_offsets` partition holding `group`'s offsets, the one a transaction
    /// adds to commit offsets for the group; `None` while that topic is not in the metadata.
    pub(crate) fn offsets_partition_of(&self, group: &str) -> Option<i32> {
        let count = self.image().topic(OFFSETS_TOPIC)?.partitions.len() as i32;
        Some(coordinator::group::records::partition_for(group, count))
    }

    /// KIP-890 verification of a transactional write: asks the transaction coordinator of
    /// `transactional_id` (this node, or its broker through AddPartitionsToTxn v5) whether
    /// each partition is in the producer's ongoing transaction (`add` false: part 1,
    /// verify-only) or to add them to it (`add`: part 2, transaction version 2, where the
    /// client sends no AddPartitionsToTxn). The outcome per partition, in Produce's terms
    /// (Kafka's `ReplicaManager` and `AddPartitionsToTxnManager`): coordinator trouble (and
    /// a transaction still being ended) is the retriable NOT_ENOUGH_REPLICAS, a stale epoch
    /// INVALID_PRODUCER_EPOCH, a partition not in the transaction TRANSACTION_ABORTABLE for
    /// a client that knows it (`abortable_known`: Produce v11+, TxnOffsetCommit v4+; KIP-890)
    /// and INVALID_TXN_STATE for an older one, anything else INVALID_TXN_STATE (a late write
    /// cannot join a finished transaction). An add refused with CONCURRENT_TRANSACTIONS is
    /// retried every 20 ms for up to 100 ms first.
    pub(crate) async fn verify_transactional_write(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        add: bool,
        abortable_known: bool,
    ) -> Vec<Option<ResponseError>> {
        // Kafka's partition leader retries an add refused with CONCURRENT_TRANSACTIONS (the
        // coordinator still writing the previous transaction's markers) for a short while
        // before answering: a transaction-version-2 client starts its next transaction as
        // soon as EndTxn answers, and its own retry of the whole Produce backs off far longer.
        let started = tokio::time::Instant::now();
        let answers = loop {
            let answers = self
                .ask_transaction_coordinator(transactional_id, producer_id, epoch, partitions, add)
                .await;
            let concurrent = answers
                .iter()
                .any(|a| matches!(a, Err(ResponseError::ConcurrentTransactions)));
            if !add || !concurrent || started.elapsed() + ADD_RETRY_BACKOFF > ADD_RETRY_MAX {
                break answers;
            }
            tokio::time::sleep(ADD_RETRY_BACKOFF).await;
        };
        answers
            .into_iter()
            .map(|answer| {
                answer.err().map(|error| match error {
                    ResponseError::NotCoordinator
                    | ResponseError::CoordinatorNotAvailable
                    | ResponseError::CoordinatorLoadInProgress
                    | ResponseError::ConcurrentTransactions
                    | ResponseError::RequestTimedOut => ResponseError::NotEnoughReplicas,
                    ResponseError::ProducerFenced | ResponseError::InvalidProducerEpoch => {
                        ResponseError::InvalidProducerEpoch
                    }
                    ResponseError::TransactionAbortable if abortable_known => {
                        ResponseError::TransactionAbortable
                    }
                    _ => ResponseError::InvalidTxnState,
                })
            })
            .collect()
    }

    /// One round of [`Self::verify_transactional_write`]: the transaction coordinator's
    /// answer per partition, in its own terms.
    async fn ask_transaction_coordinator(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        add: bool,
    ) -> Vec<Result<(), ResponseError>> {
        match self.transaction_coordinator_for(transactional_id) {
            None => vec![Err(ResponseError::CoordinatorNotAvailable); partitions.len()],
            Some(b) if b.node_id == self.config.node_id && add => {
                let mut wanted = TxnPartitions::new();
                for (topic, index) in partitions {
                    wanted.entry(topic.clone()).or_default().insert(*index);
                }
                let added = self
                    .txns
                    .add_partitions(
                        transactional_id,
                        producer_id,
                        epoch,
                        &wanted,
                        coordinator::txn::EPOCH_BUMP_TRANSACTION_VERSION,
                        super::now_ms(),
                    )
                    .await;
                vec![added; partitions.len()]
            }
            Some(b) if b.node_id == self.config.node_id => {
                self.txns
                    .verify(transactional_id, producer_id, epoch, partitions)
            }
            Some(b) => {
                self.verify_remote(&b, transactional_id, producer_id, epoch, partitions, add)
                    .await
            }
        }
    }

    async fn verify_remote(
        &self,
        coordinator: &controller::BrokerMeta,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        add: bool,
    ) -> Vec<Result<(), ResponseError>> {
        use kafka_protocol::messages::add_partitions_to_txn_request::{
            AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
        };
        use kafka_protocol::messages::AddPartitionsToTxnRequest;
        let unavailable = || vec![Err(ResponseError::CoordinatorNotAvailable); partitions.len()];
        let addr = format!("{}:{}", coordinator.host, coordinator.port);
        let Ok(mut connection) = self.inter_broker.connect(&addr).await else {
            return unavailable();
        };
        let topics = by_topic(partitions);
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(kafka_protocol::messages::TransactionalId(str_bytes(
                    transactional_id,
                )))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch)
                .with_verify_only(!add)
                .with_topics(
                    topics
                        .iter()
                        .map(|(topic, indexes)| {
                            AddPartitionsToTxnTopic::default()
                                .with_name(TopicName(str_bytes(*topic)))
                                .with_partitions(indexes.clone())
                        })
                        .collect(),
                ),
        ]);
        let response = match connection
            .send_within(request, if add { 5 } else { 4 }, VERIFY_TIMEOUT)
            .await
        {
            Ok(response) if response.error_code == 0 => response,
            Ok(response) => {
                let error = error_of(response.error_code);
                return vec![Err(error); partitions.len()];
            }
            Err(_) => return unavailable(),
        };
        let mut codes: BTreeMap<(String, i32), i16> = BTreeMap::new();
        for result in &response.results_by_transaction {
            for topic in &result.topic_results {
                for p in &topic.results_by_partition {
                    codes.insert(
                        (topic.name.0.to_string(), p.partition_index),
                        p.partition_error_code,
                    );
                }
            }
        }
        partitions
            .iter()
            .map(|key| match codes.get(key) {
                Some(0) => Ok(()),
                Some(code) => Err(error_of(*code)),
                None => Err(ResponseError::InvalidTxnState),
            })
            .collect()
    }
}
