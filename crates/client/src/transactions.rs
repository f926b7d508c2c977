//! Transaction administration (KIP-664), as Kafka's admin client does it: listing and
//! describing transactions at their coordinators, describing a partition's producers at its
//! leader, and aborting a hanging transaction with an ABORT marker written by the leader.

use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, DescribeProducersRequest, DescribeTransactionsRequest,
    EndTxnRequest, FindCoordinatorRequest, InitProducerIdRequest, ListTransactionsRequest,
    ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::{ClientError, Cluster, Result};

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A transaction as ListTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// The broker coordinating it.
    pub coordinator: i32,
    /// Its current producer id.
    pub producer_id: i64,
    /// Kafka's state name (Ongoing, PrepareCommit, CompleteAbort, ...).
    pub state: String,
}

/// A transaction as DescribeTransactions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The broker coordinating it.
    pub coordinator: i32,
    /// Kafka's state name.
    pub state: String,
    /// Current producer id.
    pub producer_id: i64,
    /// Current producer epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// When the current transaction started (ms since the epoch), -1 when none is open.
    pub start_time_ms: i64,
    /// The partitions in the transaction, as (topic, partition).
    pub partitions: Vec<(String, i32)>,
}

/// A producer with state in a partition, as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerState {
    /// Producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i32,
    /// The last sequence appended, -1 when unknown.
    pub last_sequence: i32,
    /// The timestamp of its last batch, -1 when unknown.
    pub last_timestamp: i64,
    /// The coordinator epoch of its last marker here, -1 when none.
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction in the partition, -1 when none is open.
    pub current_txn_start_offset: i64,
}

/// Which transactions ListTransactions returns: empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Kafka state names.
    pub states: Vec<String>,
    /// Producer ids.
    pub producer_ids: Vec<i64>,
}

/// How long the transactional producer calls retry what Kafka's producer retries
/// (a coordinator loading or moving, CONCURRENT_TRANSACTIONS while markers are written).
const TXN_RETRY_FOR: Duration = Duration::from_secs(30);

/// Whether a transaction coordinator's `code` is one a producer retries.
fn retriable(code: i16) -> bool {
    [
        ResponseError::CoordinatorLoadInProgress,
        ResponseError::CoordinatorNotAvailable,
        ResponseError::NotCoordinator,
        ResponseError::ConcurrentTransactions,
    ]
    .iter()
    .any(|e| e.code() == code)
}

/// Whether `code` says the coordinator asked is not (or no longer) the one to ask.
fn coordinator_moved(code: i16) -> bool {
    code == ResponseError::NotCoordinator.code()
        || code == ResponseError::CoordinatorNotAvailable.code()
}

impl Cluster {
    /// A transactional producer's InitProducerId at `transactional_id`'s coordinator:
    /// (producer id, epoch), retried while the coordinator loads or moves.
    pub async fn init_transactions(
        &mut self,
        transactional_id: &str,
        timeout_ms: i32,
    ) -> Result<(i64, i16)> {
        let deadline = Instant::now() + TXN_RETRY_FOR;
        loop {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(text(transactional_id))))
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let response = self
                .send_to_coordinator(transactional_id, request, 4)
                .await?;
            self.check_coordinator(transactional_id, response.error_code);
            if retriable(response.error_code) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            ClientError::check(response.error_code, "InitProducerId", None)?;
            return Ok((response.producer_id.0, response.producer_epoch));
        }
    }

    /// AddPartitionsToTxn: `partitions` join the producer's transaction (the first write of
    /// a transaction needs it), retried while the previous transaction's markers are written.
    pub async fn add_partitions_to_txn(
        &mut self,
        transactional_id: &str,
        producer: (i64, i16),
        partitions: &[(String, i32)],
    ) -> Result<()> {
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for (topic, partition) in partitions {
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(*partition),
                None => topics.push(
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(text(topic)))
                        .with_partitions(vec![*partition]),
                ),
            }
        }
        let deadline = Instant::now() + TXN_RETRY_FOR;
        loop {
            let request = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(text(transactional_id)))
                .with_v3_and_below_producer_id(ProducerId(producer.0))
                .with_v3_and_below_producer_epoch(producer.1)
                .with_v3_and_below_topics(topics.clone());
            let response = self
                .send_to_coordinator(transactional_id, request, 3)
                .await?;
            let code = response
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| &t.results_by_partition)
                .map(|p| p.partition_error_code)
                .find(|c| *c != 0)
                .unwrap_or(response.error_code);
            self.check_coordinator(transactional_id, code);
            if retriable(code) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            return ClientError::check(code, "AddPartitionsToTxn", None);
        }
    }

    /// EndTxn: commits (or aborts) the producer's transaction; answered once decided.
    pub async fn end_txn(
        &mut self,
        transactional_id: &str,
        producer: (i64, i16),
        commit: bool,
    ) -> Result<()> {
        let deadline = Instant::now() + TXN_RETRY_FOR;
        loop {
            let request = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(text(transactional_id)))
                .with_producer_id(ProducerId(producer.0))
                .with_producer_epoch(producer.1)
                .with_committed(commit);
            let response = self
                .send_to_coordinator(transactional_id, request, 3)
                .await?;
            self.check_coordinator(transactional_id, response.error_code);
            if retriable(response.error_code) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            return ClientError::check(response.error_code, "EndTxn", None);
        }
    }

    /// Sends `request` (at `version`) to `transactional_id`'s coordinator: the one found
    /// before, else found now with FindCoordinator. A coordinator that cannot be reached is
    /// forgotten (and its connection dropped), so the next call finds it again.
    async fn send_to_coordinator<Req>(
        &mut self,
        transactional_id: &str,
        request: Req,
        version: i16,
    ) -> Result<Req::Response>
    where
        Req: kafka_protocol::protocol::Request,
    {
        let coordinator = match self.txn_coordinators.get(transactional_id) {
            Some(id) => *id,
            None => {
                let id = self.transaction_coordinator(transactional_id).await?;
                self.txn_coordinators
                    .insert(transactional_id.to_owned(), id);
                id
            }
        };
        let sent = match self.broker(coordinator).await {
            Ok(conn) => conn.send(request, version).await,
            Err(error) => Err(error),
        };
        if let Err(error) = &sent {
            self.txn_coordinators.remove(transactional_id);
            if matches!(error, ClientError::Io { .. } | ClientError::Timeout(_)) {
                // Mid-exchange the connection's state is unknown: the next call reconnects.
                self.forget_connection(coordinator);
            }
        }
        sent
    }

    /// Forgets `transactional_id`'s coordinator when its answer `code` says it moved.
    fn check_coordinator(&mut self, transactional_id: &str, code: i16) {
        if coordinator_moved(code) {
            self.txn_coordinators.remove(transactional_id);
        }
    }

    /// The id of the broker coordinating `transactional_id` (FindCoordinator, key type 1),
    /// asked afresh.
    pub async fn transaction_coordinator(&mut self, transactional_id: &str) -> Result<i32> {
        let request = FindCoordinatorRequest::default()
            .with_key(text(transactional_id))
            .with_key_type(1);
        let response = self.any().send(request, 3).await?;
        ClientError::check(
            response.error_code,
            format!("finding the coordinator of transactional id {transactional_id}"),
            response.error_message.as_deref(),
        )?;
        let id = response.node_id.0;
        if !self.brokers().contains_key(&id) {
            self.metadata(Some(&[]), false).await?;
        }
        Ok(id)
    }

    /// Every transaction matching `filter`, asked of every broker (each lists those it
    /// coordinates), sorted by transactional id.
    pub async fn list_transactions(
        &mut self,
        filter: &ListFilter,
    ) -> Result<Vec<TransactionListing>> {
        self.metadata(Some(&[]), false).await?;
        let mut ids: Vec<i32> = self.brokers().keys().copied().collect();
        ids.sort_unstable();
        let mut out = Vec::new();
        for id in ids {
            let request = ListTransactionsRequest::default()
                .with_state_filters(filter.states.iter().map(|s| text(s)).collect())
                .with_producer_id_filters(
                    filter.producer_ids.iter().map(|p| ProducerId(*p)).collect(),
                )
                .with_duration_filter(-1);
            let response = self.broker(id).await?.send(request, 1).await?;
            ClientError::check(
                response.error_code,
                format!("listing transactions on broker {id}"),
                None,
            )?;
            out.extend(
                response
                    .transaction_states
                    .into_iter()
                    .map(|t| TransactionListing {
                        transactional_id: t.transactional_id.0.as_str().to_owned(),
                        coordinator: id,
                        producer_id: t.producer_id.0,
                        state: t.transaction_state.as_str().to_owned(),
                    }),
            );
        }
        out.sort();
        Ok(out)
    }

    /// The state of `transactional_id` at its coordinator.
    pub async fn describe_transaction(
        &mut self,
        transactional_id: &str,
    ) -> Result<TransactionDescription> {
        let coordinator = self.transaction_coordinator(transactional_id).await?;
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(text(transactional_id))]);
        let response = self.broker(coordinator).await?.send(request, 0).await?;
        let state = response
            .transaction_states
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol("empty DescribeTransactions response".into()))?;
        ClientError::check(
            state.error_code,
            format!("describing transactional id {transactional_id}"),
            None,
        )?;
        let mut partitions: Vec<(String, i32)> = state
            .topics
            .iter()
            .flat_map(|t| {
                let topic = t.topic.0.as_str().to_owned();
                t.partitions.iter().map(move |p| (topic.clone(), *p))
            })
            .collect();
        partitions.sort();
        Ok(TransactionDescription {
            coordinator,
            state: state.transaction_state.as_str().to_owned(),
            producer_id: state.producer_id.0,
            producer_epoch: state.producer_epoch,
            timeout_ms: state.transaction_timeout_ms,
            start_time_ms: state.transaction_start_time_ms,
            partitions,
        })
    }

    /// The producers with state in `topic`-`partition`, asked of its leader, or of broker
    /// `broker` (any replica) when given.
    pub async fn describe_producers(
        &mut self,
        topic: &str,
        partition: i32,
        broker: Option<i32>,
    ) -> Result<Vec<ProducerState>> {
        let node = match broker {
            Some(id) => id,
            None => self.leader_id(topic, partition).await?,
        };
        let request = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default()
                .with_name(TopicName(text(topic)))
                .with_partition_indexes(vec![partition])]);
        let response = self.broker(node).await?.send(request, 0).await?;
        let result = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::Protocol("empty DescribeProducers response".into()))?;
        ClientError::check(
            result.error_code,
            format!("describing producers of {topic}-{partition} on broker {node}"),
            result.error_message.as_deref(),
        )?;
        Ok(result
            .active_producers
            .into_iter()
            .map(|p| ProducerState {
                producer_id: p.producer_id.0,
                producer_epoch: p.producer_epoch,
                last_sequence: p.last_sequence,
                last_timestamp: p.last_timestamp,
                coordinator_epoch: p.coordinator_epoch,
                current_txn_start_offset: p.current_txn_start_offset,
            })
            .collect())
    }

    /// Writes an ABORT marker of `producer_id`/`producer_epoch` into `topic`-`partition`
    /// through its leader (WriteTxnMarkers, as Kafka's `Admin.abortTransaction` does). A
    /// negative `coordinator_epoch` (no marker seen yet) is sent as 0, as Kafka's tool does.
    pub async fn abort_transaction(
        &mut self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<()> {
        let leader = self.leader_id(topic, partition).await?;
        let request =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(producer_epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(coordinator_epoch.max(0))
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partition_indexes(vec![partition])])]);
        let response = self.broker(leader).await?.send(request, 1).await?;
        let code = response
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .map(|p| p.error_code)
            .ok_or_else(|| ClientError::Protocol("empty WriteTxnMarkers response".into()))?;
        ClientError::check(
            code,
            format!("aborting the transaction of producer {producer_id} in {topic}-{partition}"),
            None,
        )
    }
}
