//! Produce (key 0): append each partition's record batch, with idempotence checks, and answer
//! with the offsets given (nothing at all for acks=0). acks=all answers once the high
//! watermark covers the records, or with the error that stopped it.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{owned, str_bytes, Ctx};
use crate::broker::now_ms;
use crate::partition::{Partition, Produced};

/// What a produce request leads to.
pub(super) enum Outcome {
    /// acks=0: no response at all.
    NoResponse,
    /// The response, ready now.
    Done(ProduceResponse),
    /// acks=all appends waiting for the high watermark; resolves to the response. The
    /// connection goes on appending its next requests meanwhile, so producers that pipeline
    /// requests keep the replicas busy.
    AwaitingCommit(futures::future::BoxFuture<'static, ProduceResponse>),
}

/// Appends every partition's batch now, in request order; acks=all completes later.
pub(super) fn handle(ctx: &Ctx<'_>, request: ProduceRequest) -> Outcome {
    let broker = ctx.broker;
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    let now = now_ms();
    // KIP-110: zstd batches arrive only from clients that know Produce v7.
    let zstd_allowed = ctx.version >= 7;
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    // (topic index, partition index) of acks=all appends, and what they wait for.
    let mut uncommitted = Vec::new();
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
                None => Err(ResponseError::UnknownTopicOrPartition.code()),
            };
            let outcome = match (valid_acks, partition.ok(), data.records) {
                (false, _, _) => Err((ResponseError::InvalidRequiredAcks.code(), None)),
                (true, None, _) => Err((partition.err().unwrap_or_default(), None)),
                (true, Some(_), None) => Err((ResponseError::InvalidRecord.code(), None)),
                (true, Some(_), Some(records)) if !zstd_allowed && is_zstd(&records) => Err((
                    ResponseError::UnsupportedCompressionType.code(),
                    Some("zstd needs Produce v7 or later".to_owned()),
                )),
                (true, Some(partition), Some(records)) => partition
                    .append(&records, acks, now)
                    .inspect(|produced| {
                        if acks == -1 {
                            let at = (responses.len(), partitions.len());
                            uncommitted.push((at, Arc::clone(partition), *produced));
                        }
                    })
                    .map(|produced| (produced, partition.log.log_start_offset()))
                    .map_err(|error| {
                        tracing::debug!(topic = %name, partition = data.index, %error, "produce refused");
                        (error.code(), Some(error.to_string()))
                    }),
            };
            partitions.push(match outcome {
                Ok((produced, log_start)) => response
                    .with_base_offset(produced.base_offset)
                    .with_log_append_time_ms(produced.log_append_time)
                    .with_log_start_offset(log_start),
                Err((code, message)) => response
                    .with_error_code(code)
                    .with_error_message(message.map(str_bytes)),
            });
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
    if uncommitted.is_empty() {
        return Outcome::Done(response);
    }
    Outcome::AwaitingCommit(Box::pin(wait_committed(response, uncommitted, deadline)))
}

/// Waits for every acks=all append of a request, then fills in the errors of those that
/// did not commit.
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
        if let Err(code) = outcome {
            let partition = &mut response.responses[*t].partition_responses[*p];
            partition.error_code = code;
            partition.base_offset = -1;
        }
    }
    response
}

fn is_zstd(records: &bytes::Bytes) -> bool {
    segment_store::BatchHeader::parse(records).is_some_and(|h| h.compression() == 4)
}
