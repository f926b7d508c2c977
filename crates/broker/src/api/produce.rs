//! Produce (key 0): queue each partition's record batch on the partition's append path
//! (validation, idempotence checks, group commit) and answer with the offsets given once it
//! is written (nothing at all for acks=0). acks=all answers once the high watermark
//! covers the records, or with the error that stopped it.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use controller::acl::{AclOperation::Write, ResourceType};

use super::{owned, str_bytes, Ctx};
use crate::partition::{AppendOrigin, Partition, ProduceError, Produced};

/// What a produce request leads to.
pub(super) enum Outcome {
    /// acks=0: no response at all (the appends still happen, in order).
    NoResponse,
    /// The response once every partition's append is written (and, for acks=all,
    /// replicated). The connection goes on with its next requests meanwhile: a producer's
    /// pipelined requests share writes, and keep the replicas busy.
    Later(futures::future::BoxFuture<'static, ProduceResponse>),
}

/// One partition's append, queued.
type Queued = (
    Arc<Partition>,
    futures::future::BoxFuture<'static, Result<Produced, ProduceError>>,
);

/// Queues every partition's batch now, in request order; the response follows. Each queued
/// append keeps the request's read-ahead share until it is written, so a connection has at
/// most its read-ahead budget of bytes waiting to be written.
pub(super) async fn handle(ctx: &Ctx<'_>, request: ProduceRequest) -> Outcome {
    let authz = ctx.authz();
    // Kafka checks the transactional id first: refused, every partition is refused.
    let txn_denied = request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !authz.allows(Write, ResourceType::TransactionalId, id));
    let unverified = if txn_denied {
        HashMap::new()
    } else {
        verify_transactional_writes(ctx, &request, ctx.version >= 12, ctx.version >= 11).await
    };
    let broker = ctx.broker;
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    // KIP-110: zstd batches arrive only from clients that know Produce v7.
    let zstd_allowed = ctx.version >= 7;
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    // (topic index, partition index) of each queued append.
    let mut queued: Vec<((usize, usize), Queued)> = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = owned(&topic.name.0);
        // Kafka's ReplicaManager: no client appends to internal topics (their records are
        // replayed as coordinator state).
        let internal = controller::is_internal_topic(&name).then(|| internal_topic_message(&name));
        let local = broker.topic(&name);
        let denied = if txn_denied {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else {
            authz.check(Write, ResourceType::Topic, &name).err()
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let partition = match (&local, denied) {
                (_, Some(denied)) => Err(denied),
                (Some(t), None) => t.led(data.index),
                (None, None) => Err(ResponseError::UnknownTopicOrPartition),
            };
            let shape = match (valid_acks, &partition, data.records.as_deref()) {
                (true, Ok(_), Some(records)) => first_batch_error(ctx.version, records),
                _ => None,
            };
            if let Some((error, message)) = shape {
                partitions.push(
                    response
                        .with_error_code(error.code())
                        .with_error_message(Some(str_bytes(message))),
                );
                continue;
            }
            let refused = match (valid_acks, partition, data.records) {
                (false, _, _) => (ResponseError::InvalidRequiredAcks, None),
                (true, Err(error), _) => (error, None),
                (true, Ok(_), _) if internal.is_some() => {
                    (ResponseError::InvalidTopicException, internal.as_deref())
                }
                (true, Ok(_), None) => (ResponseError::InvalidRecord, None),
                (true, Ok(_), Some(records)) if !zstd_allowed && is_zstd(&records) => (
                    ResponseError::UnsupportedCompressionType,
                    Some("zstd needs Produce v7 or later"),
                ),
                (true, Ok(_), _) if unverified.contains_key(&(name.clone(), data.index)) => {
                    (unverified[&(name.clone(), data.index)], None)
                }
                (true, Ok(partition), Some(records)) => {
                    let at = (responses.len(), partitions.len());
                    let hold = Some(Arc::clone(&ctx.read_ahead));
                    let append = partition.append(records, acks, AppendOrigin::Client, hold);
                    queued.push((at, (Arc::clone(partition), Box::pin(append))));
                    partitions.push(response);
                    continue;
                }
            };
            partitions.push(
                response
                    .with_error_code(refused.0.code())
                    .with_error_message(refused.1.map(|m| str_bytes(m.to_owned()))),
            );
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        return Outcome::NoResponse;
    }
    let response = ProduceResponse::default().with_responses(responses);
    Outcome::Later(Box::pin(complete(response, queued, acks, deadline)))
}

/// KIP-890: the transactional batches of partitions where their producer has no
/// transaction open yet (at the batch's epoch) are checked with the transaction coordinator
/// first, or, from Produce v12 (transaction version 2, `add`), added to the transaction by
/// it; the refused ones, with their error. A transactional batch without a transactional id
/// in the request cannot be checked and is INVALID_TXN_STATE.
async fn verify_transactional_writes(
    ctx: &Ctx<'_>,
    request: &ProduceRequest,
    add: bool,
    abortable_known: bool,
) -> HashMap<(String, i32), ResponseError> {
    let mut by_producer: HashMap<(i64, i16), Vec<(String, i32)>> = HashMap::new();
    for topic in &request.topic_data {
        // Only transactional batches are looked at further: a plain produce pays one header
        // parse per partition here, no name copy and no topic lookup.
        let transactional: Vec<(i32, segment_store::BatchHeader)> = topic
            .partition_data
            .iter()
            .filter_map(|data| {
                let header = segment_store::BatchHeader::parse(data.records.as_deref()?)?;
                (header.is_transactional() && !header.is_control()).then_some((data.index, header))
            })
            .collect();
        if transactional.is_empty() {
            continue;
        }
        let name = owned(&topic.name.0);
        let Some(local) = ctx.broker.topic(&name) else {
            continue;
        };
        for (index, header) in transactional {
            let open = local.led(index).is_ok_and(|p| {
                !p.needs_txn_verification(
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                )
            });
            if !open {
                by_producer
                    .entry((header.producer_id, header.producer_epoch))
                    .or_default()
                    .push((name.clone(), index));
            }
        }
    }
    let mut refused = HashMap::new();
    for ((producer_id, epoch), partitions) in by_producer {
        let outcome = match &request.transactional_id {
            Some(id) => {
                ctx.broker
                    .verify_transactional_write(
                        id.as_str(),
                        producer_id,
                        epoch,
                        &partitions,
                        add,
                        abortable_known,
                    )
                    .await
            }
            None => vec![Some(ResponseError::InvalidTxnState); partitions.len()],
        };
        for (partition, error) in partitions.into_iter().zip(outcome) {
            if let Some(error) = error {
                // Only a retriable refusal is sent again with the same sequence.
                if !matches!(error, ResponseError::NotEnoughReplicas) {
                    if let Some(p) = ctx
                        .broker
                        .topic(&partition.0)
                        .and_then(|t| t.led(partition.1).ok().cloned())
                    {
                        p.abandon_txn_verification(producer_id, epoch);
                    }
                }
                refused.insert(partition, error);
            }
        }
    }
    refused
}

/// Waits for each queued append (and for acks=all its replication), then fills in its
/// offsets or its error.
async fn complete(
    mut response: ProduceResponse,
    queued: Vec<((usize, usize), Queued)>,
    acks: i16,
    deadline: tokio::time::Instant,
) -> ProduceResponse {
    let outcomes = queued
        .into_iter()
        .map(|(at, (partition, append))| async move {
            let outcome = async {
                let produced = append.await.map_err(|error| {
                    let message = error.to_string();
                    let record_errors = error
                        .record_errors()
                        .iter()
                        .map(|e| {
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(e.batch_index)
                                .with_batch_index_error_message(Some(str_bytes(e.message.clone())))
                        })
                        .collect();
                    let code = error.kafka_error();
                    let log_start =
                        failed_append_log_start(code, || partition.log.log_start_offset());
                    (code, Some(message), record_errors, log_start)
                })?;
                if acks == -1 {
                    let committed = partition.wait_committed(&produced, deadline).await;
                    committed.map_err(|error| (error, None, Vec::new(), -1))?;
                }
                Ok((produced, partition.log.log_start_offset()))
            };
            (at, outcome.await)
        });
    for ((t, p), outcome) in futures::future::join_all(outcomes).await {
        let data = &mut response.responses[t].partition_responses[p];
        match outcome {
            Ok((produced, log_start)) => {
                data.base_offset = produced.base_offset;
                data.log_append_time_ms = produced.log_append_time;
                data.log_start_offset = log_start;
            }
            Err((error, message, record_errors, log_start)) => {
                data.error_code = error.code();
                data.error_message = message.map(str_bytes);
                data.record_errors = record_errors;
                data.log_start_offset = log_start;
            }
        }
    }
    response
}

/// The log start offset a refused append reports. Kafka's `ReplicaManager.appendToLocalLog`
/// answers the size and corruption errors (and unknown or moved partitions) with -1, and every
/// other refusal of the log, such as a record the validator rejects, with the partition's log
/// start offset.
fn failed_append_log_start(error: ResponseError, log_start: impl FnOnce() -> i64) -> i64 {
    match error {
        ResponseError::MessageTooLarge
        | ResponseError::RecordListTooLarge
        | ResponseError::CorruptMessage
        | ResponseError::UnknownTopicOrPartition
        | ResponseError::NotLeaderOrFollower
        | ResponseError::KafkaStorageError => -1,
        _ => log_start(),
    }
}

/// Kafka's message for a client append to an internal topic.
fn internal_topic_message(topic: &str) -> String {
    format!("Cannot append to internal topic {topic}")
}

/// Kafka's `ProduceRequest.validateRecords` for v3+, run before anything else looks at the
/// records: a records set without one complete first batch is INVALID_RECORD, one whose
/// first entry is an old-format (magic 0 or 1) message set too, and a length below the
/// smallest message overhead is CORRUPT_MESSAGE; `None` when the first batch may go on to
/// the append path's checks. Messages are Kafka's.
fn first_batch_error(version: i16, records: &[u8]) -> Option<(ResponseError, String)> {
    /// Offset and length fields before each batch (Kafka's `LOG_OVERHEAD`).
    const LOG_OVERHEAD: usize = 12;
    /// Bytes up to and including the magic byte.
    const UP_TO_MAGIC: usize = 17;
    /// The smallest message after its length field (`LegacyRecord.RECORD_OVERHEAD_V0`).
    const MIN_OVERHEAD: i32 = 14;
    let size = records
        .get(8..LOG_OVERHEAD)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    if let Some(size) = size.filter(|&size| size < MIN_OVERHEAD) {
        let message =
            format!("Record size {size} is less than the minimum record overhead ({MIN_OVERHEAD})");
        return Some((ResponseError::CorruptMessage, message));
    }
    let complete = records.len() >= UP_TO_MAGIC
        && size.is_some_and(|size| LOG_OVERHEAD + size as usize <= records.len());
    if !complete {
        let message = format!(
            "Produce requests with version {version} must have at least one record batch per partition"
        );
        return Some((ResponseError::InvalidRecord, message));
    }
    if records[UP_TO_MAGIC - 1] != 2 {
        let message = format!(
            "Produce requests with version {version} are only allowed to contain record batches with magic version 2"
        );
        return Some((ResponseError::InvalidRecord, message));
    }
    None
}

fn is_zstd(records: &bytes::Bytes) -> bool {
    segment_store::BatchHeader::parse(records).is_some_and(|h| h.compression() == 4)
}
