//! Produce (key 0): queue each partition's record batch on the partition's append path
//! (validation, idempotence checks, group commit), wait until it is written, and answer with
//! the offsets given (nothing at all for acks=0). acks=all answers once the high watermark
//! covers the records, or with the error that stopped it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{owned, str_bytes, Ctx};
use crate::partition::{Partition, ProduceError, Produced};

/// What a produce request leads to.
pub(super) enum Outcome {
    /// acks=0: no response at all.
    NoResponse,
    /// The response, every append written (acks=1, or nothing was appended).
    Done(ProduceResponse),
    /// acks=all appends written and waiting for the high watermark; resolves to the
    /// response. The connection goes on with its next requests meanwhile, so producers that
    /// pipeline requests keep the replicas busy.
    AwaitingCommit(futures::future::BoxFuture<'static, ProduceResponse>),
}

/// One partition's append, queued.
type Queued = (
    Arc<Partition>,
    futures::future::BoxFuture<'static, Result<Produced, ProduceError>>,
);

/// Queues every partition's batch at once, in request order, and waits until they are
/// written: the connection reads its next request only then, which bounds what one client
/// has in memory and keeps a request's bytes warm in cache until they are copied. Producers
/// on different connections are grouped into shared writes. acks=all completes later.
pub(super) async fn handle(ctx: &Ctx<'_>, request: ProduceRequest) -> Outcome {
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
        let local = broker.topic(&name);
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let partition = match &local {
                Some(t) => t.led(data.index),
                None => Err(ResponseError::UnknownTopicOrPartition),
            };
            let refused = match (valid_acks, partition, data.records) {
                (false, _, _) => (ResponseError::InvalidRequiredAcks, None),
                (true, Err(error), _) => (error, None),
                (true, Ok(_), None) => (ResponseError::InvalidRecord, None),
                (true, Ok(_), Some(records)) if !zstd_allowed && is_zstd(&records) => (
                    ResponseError::UnsupportedCompressionType,
                    Some("zstd needs Produce v7 or later"),
                ),
                (true, Ok(partition), Some(records)) => {
                    let at = (responses.len(), partitions.len());
                    let append = partition.append(records, acks);
                    queued.push((at, (Arc::clone(partition), Box::pin(append))));
                    partitions.push(response);
                    continue;
                }
            };
            partitions.push(
                response
                    .with_error_code(refused.0.code())
                    .with_error_message(refused.1.map(str_bytes)),
            );
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    let appended = futures::future::join_all(
        queued
            .into_iter()
            .map(|(at, (partition, append))| async move { (at, partition, append.await) }),
    )
    .await;
    if acks == 0 {
        return Outcome::NoResponse;
    }
    let mut response = ProduceResponse::default().with_responses(responses);
    // (topic index, partition index) of acks=all appends, and what they wait for.
    let mut uncommitted = Vec::new();
    for ((t, p), partition, outcome) in appended {
        let data = &mut response.responses[t].partition_responses[p];
        match outcome {
            Ok(produced) => {
                data.base_offset = produced.base_offset;
                data.log_append_time_ms = produced.log_append_time;
                data.log_start_offset = partition.log.log_start_offset();
                if acks == -1 {
                    uncommitted.push(((t, p), partition, produced));
                }
            }
            Err(error) => {
                data.error_code = error.kafka_error().code();
                data.error_message = Some(str_bytes(error.to_string()));
            }
        }
    }
    if uncommitted.is_empty() {
        return Outcome::Done(response);
    }
    Outcome::AwaitingCommit(Box::pin(wait_committed(response, uncommitted, deadline)))
}

/// Waits for every acks=all append of a request to be replicated, then fills in the errors
/// of those that were not.
async fn wait_committed(
    mut response: ProduceResponse,
    uncommitted: Vec<((usize, usize), Arc<Partition>, Produced)>,
    deadline: tokio::time::Instant,
) -> ProduceResponse {
    let waits = uncommitted
        .iter()
        .map(|(_, partition, produced)| partition.wait_committed(produced, deadline));
    let outcomes = futures::future::join_all(waits).await;
    for (((t, p), _, _), outcome) in uncommitted.iter().zip(outcomes) {
        if let Err(error) = outcome {
            let data = &mut response.responses[*t].partition_responses[*p];
            data.error_code = error.code();
            data.base_offset = -1;
        }
    }
    response
}

fn is_zstd(records: &bytes::Bytes) -> bool {
    segment_store::BatchHeader::parse(records).is_some_and(|h| h.compression() == 4)
}
