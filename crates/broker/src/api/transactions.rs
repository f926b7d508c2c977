//! The transaction APIs (KIP-98): AddPartitionsToTxn (key 24), AddOffsetsToTxn (25),
//! EndTxn (26), WriteTxnMarkers (27), TxnOffsetCommit (28), DescribeTransactions (65),
//! ListTransactions (66).
//! InitProducerId with a transactional id is in `init_producer_id.rs`. Each is a thin
//! translation onto the transaction coordinator (`coordinator::txn::TxnCoordinator`) or,
//! for markers, onto the partitions led here.

use std::collections::{BTreeSet, HashMap};

use coordinator::txn::{TxnPartitions, TxnState, TRANSACTION_STATE_TOPIC};
use coordinator::OFFSETS_TOPIC;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{self, TopicData};
use kafka_protocol::messages::list_transactions_response;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TopicName, TransactionalId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};

use controller::acl::{AclOperation, ResourceType};

use super::{owned, str_bytes, Ctx};
use crate::broker::{now_ms, MarkerSpec};

/// AddPartitionsToTxn. v0–3 (the client's form): one transaction's partitions. v4+ (the
/// brokers' form): several transactions, each added (a partition leader adding the
/// partition a transaction-version-2 producer writes to, KIP-890 part 2) or, with
/// `verify_only`, checked to be in the ongoing transaction (part 1) without changing it.
pub(super) async fn add_partitions(
    ctx: &Ctx<'_>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.version < 4 {
        let results = add_one(
            ctx,
            request.v3_and_below_transactional_id.as_str(),
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
            0,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    // v4+ is the brokers' form: Kafka asks CLUSTER_ACTION of it.
    if let Err(denied) = super::check_cluster(ctx, AclOperation::ClusterAction) {
        return AddPartitionsToTxnResponse::default().with_error_code(denied.code());
    }
    let mut by_transaction = Vec::with_capacity(request.transactions.len());
    for txn in &request.transactions {
        let results = add_one(
            ctx,
            txn.transactional_id.as_str(),
            txn.producer_id.0,
            txn.producer_epoch,
            &txn.topics,
            txn.verify_only,
            coordinator::txn::EPOCH_BUMP_TRANSACTION_VERSION,
        )
        .await;
        by_transaction.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(by_transaction)
}

/// One transaction's partitions added (every partition joins, or none does: one that does
/// not exist fails with UNKNOWN_TOPIC_OR_PARTITION and the others with
/// OPERATION_NOT_ATTEMPTED, as in Kafka), or only verified. `client_transaction_version` is
/// recorded with the transaction.
async fn add_one(
    ctx: &Ctx<'_>,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    client_transaction_version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    if verify_only {
        let wanted: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|t| {
                let name = owned(&t.name.0);
                t.partitions.iter().map(move |p| (name.clone(), *p))
            })
            .collect();
        let verdicts = ctx
            .broker
            .txns
            .verify(transactional_id, producer_id, epoch, &wanted);
        let verdict: HashMap<(String, i32), i16> = wanted
            .into_iter()
            .zip(verdicts)
            .map(|(key, v)| (key, v.err().map_or(0, |e| e.code())))
            .collect();
        return results_of(topics, |name, p| verdict[&(name.to_owned(), p)]);
    }
    // Kafka: WRITE on the transactional id, then WRITE on each topic (the partitions of a
    // refused topic fail, the others are not attempted).
    let authz = ctx.authz();
    if let Err(denied) = authz.check(
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        return results_of(topics, |_, _| denied.code());
    }
    let refused: BTreeSet<String> = topics
        .iter()
        .map(|t| owned(&t.name.0))
        .filter(|name| !authz.allows(AclOperation::Write, ResourceType::Topic, name))
        .collect();
    if !refused.is_empty() {
        return results_of(topics, |name, _| {
            if refused.contains(name) {
                ResponseError::TopicAuthorizationFailed.code()
            } else {
                ResponseError::OperationNotAttempted.code()
            }
        });
    }
    let image = ctx.broker.image();
    let mut partitions = TxnPartitions::new();
    let mut unknown = BTreeSet::new();
    for topic in topics {
        let name = owned(&topic.name.0);
        for p in &topic.partitions {
            let exists = image
                .topic(&name)
                .is_some_and(|t| t.partition(*p).is_some())
                && name != TRANSACTION_STATE_TOPIC;
            if exists {
                partitions.entry(name.clone()).or_default().insert(*p);
            } else {
                unknown.insert((name.clone(), *p));
            }
        }
    }
    let outcome = if unknown.is_empty() {
        ctx.broker
            .txns
            .add_partitions(
                transactional_id,
                producer_id,
                epoch,
                &partitions,
                client_transaction_version,
                now_ms(),
            )
            .await
    } else {
        Err(ResponseError::OperationNotAttempted)
    };
    results_of(topics, |name, p| {
        if unknown.contains(&(name.to_owned(), p)) {
            ResponseError::UnknownTopicOrPartition.code()
        } else {
            outcome.err().map_or(0, |e| e.code())
        }
    })
}

/// The per-partition results of `topics`, each partition's code from `code`.
fn results_of(
    topics: &[AddPartitionsToTxnTopic],
    code: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|topic| {
            let name = owned(&topic.name.0);
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(
                    topic
                        .partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(code(&name, *p))
                        })
                        .collect(),
                )
        })
        .collect()
}

/// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction.
pub(super) async fn add_offsets(
    ctx: &Ctx<'_>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let error = async {
        let group = request.group_id.as_str();
        let authz = ctx.authz();
        let id = request.transactional_id.as_str();
        authz.check(AclOperation::Write, ResourceType::TransactionalId, id)?;
        authz.check(AclOperation::Read, ResourceType::Group, group)?;
        if group.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        ctx.broker
            .ensure_offsets_topic()
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
        let partition = ctx
            .broker
            .offsets_partition_of(group)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let partitions: TxnPartitions =
            [(OFFSETS_TOPIC.to_owned(), BTreeSet::from([partition]))].into();
        ctx.broker
            .txns
            .add_partitions(
                request.transactional_id.as_str(),
                request.producer_id.0,
                request.producer_epoch,
                &partitions,
                0,
                now_ms(),
            )
            .await
    }
    .await
    .err();
    AddOffsetsToTxnResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}

/// EndTxn: commit or abort; answered once the decision is logged. v5 is transaction version
/// 2 (KIP-890 part 2): the epoch is bumped by every end and the response carries the
/// producer id and epoch to go on with.
pub(super) async fn end(ctx: &Ctx<'_>, request: EndTxnRequest) -> EndTxnResponse {
    let id = request.transactional_id.as_str();
    let client_transaction_version = if ctx.version >= 5 {
        coordinator::txn::EPOCH_BUMP_TRANSACTION_VERSION
    } else {
        0
    };
    let broker = ctx.broker;
    let allocate = || async move {
        broker.next_producer_id().await.map_err(|error| {
            tracing::error!(%error, "allocating producer ids failed");
            ResponseError::CoordinatorNotAvailable
        })
    };
    let outcome = match ctx
        .authz()
        .check(AclOperation::Write, ResourceType::TransactionalId, id)
    {
        Err(denied) => Err(denied),
        Ok(()) => {
            ctx.broker
                .txns
                .end_txn(
                    id,
                    request.producer_id.0,
                    request.producer_epoch,
                    request.committed,
                    client_transaction_version,
                    allocate,
                    now_ms(),
                )
                .await
        }
    };
    let (producer_id, epoch) = *outcome.as_ref().unwrap_or(&(-1, -1));
    EndTxnResponse::default()
        .with_error_code(outcome.err().map_or(0, |e| e.code()))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}

/// WriteTxnMarkers (from a transaction coordinator): each marker into the partitions led
/// here, acknowledged once replicated.
pub(super) async fn write_markers(
    ctx: &Ctx<'_>,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let mut results = Vec::with_capacity(request.markers.len());
    let denied = super::check_cluster(ctx, AclOperation::ClusterAction).err();
    for marker in &request.markers {
        let spec = MarkerSpec {
            producer_id: marker.producer_id.0,
            epoch: marker.producer_epoch,
            commit: marker.transaction_result,
            coordinator_epoch: marker.coordinator_epoch,
        };
        let partitions: Vec<(String, i32)> = marker
            .topics
            .iter()
            .flat_map(|t| {
                let name = owned(&t.name.0);
                t.partition_indexes.iter().map(move |p| (name.clone(), *p))
            })
            .collect();
        let outcome = match denied {
            Some(denied) => vec![Some(denied); partitions.len()],
            None => ctx.broker.write_markers_here(spec, &partitions).await,
        };
        let mut topics: Vec<WritableTxnMarkerTopicResult> = Vec::new();
        for ((name, index), error) in partitions.into_iter().zip(outcome) {
            let result = WritableTxnMarkerPartitionResult::default()
                .with_partition_index(index)
                .with_error_code(error.map_or(0, |e| e.code()));
            match topics.iter_mut().find(|t| t.name.0.as_str() == name) {
                Some(topic) => topic.partitions.push(result),
                None => topics.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(vec![result]),
                ),
            }
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}

/// DescribeTransactions: each id's state at this coordinator.
pub(super) fn describe(
    ctx: &Ctx<'_>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let authz = ctx.authz();
    let states = request
        .transactional_ids
        .iter()
        .map(|id| {
            let allowed = authz.check(AclOperation::Describe, ResourceType::TransactionalId, id);
            let state = describe_transactions_response::TransactionState::default()
                .with_transactional_id(id.clone())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            match allowed.and_then(|()| ctx.broker.txns.describe(id.as_str())) {
                Ok(listed) => state
                    .with_transaction_state(str_bytes(listed.state.name()))
                    .with_transaction_timeout_ms(listed.stored.timeout_ms)
                    .with_transaction_start_time_ms(listed.stored.start_ms)
                    .with_producer_id(ProducerId(listed.stored.producer_id))
                    .with_producer_epoch(listed.stored.producer_epoch)
                    .with_topics(
                        listed
                            .stored
                            .partitions
                            .iter()
                            // As Kafka: topics the requester may not DESCRIBE are left out.
                            .filter(|(topic, _)| {
                                authz.allows(AclOperation::Describe, ResourceType::Topic, topic)
                            })
                            .map(|(topic, ids)| {
                                TopicData::default()
                                    .with_topic(TopicName(str_bytes(topic.clone())))
                                    .with_partitions(ids.iter().copied().collect())
                            })
                            .collect(),
                    ),
                Err(error) => state.with_error_code(error.code()),
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// ListTransactions: the transactions this node coordinates, filtered by state, producer
/// id and (v1) how long they have run. Unknown state names are echoed back.
pub(super) fn list(ctx: &Ctx<'_>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let mut unknown = Vec::new();
    let mut states = Vec::new();
    for name in &request.state_filters {
        match TxnState::from_name(name.as_str()) {
            Some(state) => states.push(state),
            None => unknown.push(name.clone()),
        }
    }
    if states.is_empty() && !unknown.is_empty() {
        // Only unknown states asked for: nothing matches.
        return ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    }
    let producer_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let now = now_ms();
    let authz = ctx.authz();
    match ctx.broker.txns.list(&states, &producer_ids) {
        Ok(listed) => ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown)
            .with_transaction_states(
                listed
                    .into_iter()
                    .filter(|t| {
                        authz.allows(
                            AclOperation::Describe,
                            ResourceType::TransactionalId,
                            &t.transactional_id,
                        )
                    })
                    .filter(|t| {
                        request.duration_filter < 0
                            || (t.stored.start_ms >= 0
                                && now - t.stored.start_ms >= request.duration_filter)
                    })
                    .map(|t| {
                        list_transactions_response::TransactionState::default()
                            .with_transactional_id(TransactionalId(str_bytes(t.transactional_id)))
                            .with_producer_id(ProducerId(t.stored.producer_id))
                            .with_transaction_state(str_bytes(t.state.name()))
                    })
                    .collect(),
            ),
        Err(error) => ListTransactionsResponse::default().with_error_code(error.code()),
    }
}

/// TxnOffsetCommit: the consumer's offsets written as part of the producer's transaction
/// (their group's once it commits). Members are checked as OffsetCommit checks them when the
/// request names one (v3+). From v5 (transaction version 2) the client sends no
/// AddOffsetsToTxn: the group's `__consumer_offsets` partition is added to the transaction
/// here first, through its coordinator, as Produce v12 adds a partition; before v5 the
/// producer's transaction is not verified with its coordinator.
pub(super) async fn offset_commit(
    ctx: &Ctx<'_>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    use coordinator::group::records::CommittedOffset;
    let group_id = request.group_id.as_str();
    let now = now_ms();
    let image = ctx.broker.image();
    let authz = ctx.authz();
    let topic_allowed = |topic: &str| authz.allows(AclOperation::Read, ResourceType::Topic, topic);
    let outcome = async {
        let id = request.transactional_id.as_str();
        authz.check(AclOperation::Write, ResourceType::TransactionalId, id)?;
        authz.check(AclOperation::Read, ResourceType::Group, group_id)?;
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let group = ctx.broker.groups.group(group_id).map_err(|e| e.error())?;
        let member = request.member_id.as_str();
        if request.generation_id >= 0 || !member.is_empty() {
            group.check_commit(
                member,
                request.group_instance_id.as_ref().map(|i| i.as_str()),
                request.generation_id,
                9,
            )?;
        }
        if ctx.version >= 5 {
            add_offsets_partition(ctx, &request).await?;
        }
        let offsets: Vec<((String, i32), CommittedOffset)> = request
            .topics
            .iter()
            .flat_map(|t| {
                let name = owned(&t.name.0);
                t.partitions.iter().map(move |p| {
                    (
                        (name.clone(), p.partition_index),
                        CommittedOffset {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.as_ref().map(owned).unwrap_or_default(),
                            commit_timestamp: now,
                        },
                    )
                })
            })
            .filter(|((topic, index), _)| {
                topic_allowed(topic)
                    && image
                        .topic(topic)
                        .and_then(|t| t.partition(*index))
                        .is_some()
            })
            .collect();
        group
            .commit_in_transaction(
                (request.producer_id.0, request.producer_epoch),
                offsets,
                now,
            )
            .await
            .map_err(|e| e.error())
    }
    .await;
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let name = owned(&t.name.0);
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let exists = image
                                .topic(&name)
                                .and_then(|m| m.partition(p.partition_index))
                                .is_some();
                            let code = match (&outcome, exists) {
                                (Err(e), _)
                                    if e.code()
                                        == ResponseError::TransactionalIdAuthorizationFailed
                                            .code() =>
                                {
                                    e.code()
                                }
                                _ if !topic_allowed(&name) => {
                                    ResponseError::TopicAuthorizationFailed.code()
                                }
                                (_, false) => ResponseError::UnknownTopicOrPartition.code(),
                                (Ok(()), true) => 0,
                                (Err(e), true) => e.code(),
                            };
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// TxnOffsetCommit v5: the group's offsets partition joins the producer's transaction, in
/// TxnOffsetCommit's errors (coordinator trouble and a transaction still ending are the
/// retriable COORDINATOR_NOT_AVAILABLE).
async fn add_offsets_partition(
    ctx: &Ctx<'_>,
    request: &TxnOffsetCommitRequest,
) -> Result<(), ResponseError> {
    let partition = ctx
        .broker
        .offsets_partition_of(request.group_id.as_str())
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let refused = ctx
        .broker
        .verify_transactional_write(
            request.transactional_id.as_str(),
            request.producer_id.0,
            request.producer_epoch,
            &[(OFFSETS_TOPIC.to_owned(), partition)],
            true,
            true,
        )
        .await;
    match refused.into_iter().next().flatten() {
        None => Ok(()),
        Some(ResponseError::NotEnoughReplicas) => Err(ResponseError::CoordinatorNotAvailable),
        Some(error) => Err(error),
    }
}
