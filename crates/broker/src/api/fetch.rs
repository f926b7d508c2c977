//! Fetch (key 1): whole batches below the high watermark, zero-copy from the segment mapping,
//! parking until `min_bytes` are there or `max_wait_ms` passes. A fetch with a `replica_id`
//! comes from a follower: it reads up to the log end, parks on appends rather than on the
//! high watermark, and its fetch offset tells the leader how far the follower got.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use controller::acl::{AclOperation, ResourceType};

use super::{owned, str_bytes, Ctx};
use crate::metrics::TopicStats;
use crate::partition::{storage_error, Partition};

/// One partition of the request, resolved once.
struct Wanted {
    partition_index: i32,
    fetch_offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
    partition: Result<Arc<Partition>, ResponseError>,
}

struct WantedTopic {
    name: String,
    topic_id: Uuid,
    partitions: Vec<Wanted>,
}

/// Who is fetching: a consumer, or the follower replica with this node id.
#[derive(Clone, Copy)]
enum Reader {
    Consumer,
    Follower(i32),
}

pub(super) async fn handle(ctx: &Ctx<'_>, request: FetchRequest) -> FetchResponse {
    let replica_id = if ctx.version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let reader = if replica_id >= 0 {
        Reader::Follower(replica_id)
    } else {
        Reader::Consumer
    };
    let topics = resolve(ctx, &request, reader);
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        request.max_bytes as usize
    };
    let read_committed = request.isolation_level == 1;
    loop {
        // Subscribe before reading, so an append between the read and the wait is not missed.
        let mut watchers: Vec<watch::Receiver<i64>> = topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|w| w.partition.as_ref().ok())
            .map(|p| match reader {
                Reader::Consumer => p.watch_high_watermark(),
                Reader::Follower(_) => p.watch_log_end(),
            })
            .collect();
        let (response, bytes, errors) = read_all(ctx, &topics, max_bytes, read_committed, reader);
        if bytes >= min_bytes || errors || watchers.is_empty() || Instant::now() >= deadline {
            count_bytes_out(&topics, &response, reader);
            return response;
        }
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let (response, _, _) = read_all(ctx, &topics, max_bytes, read_committed, reader);
            count_bytes_out(&topics, &response, reader);
            return response;
        }
    }
}

/// Adds the record bytes of the response being sent to each topic's `BytesOutPerSec` (or
/// `ReplicationBytesOutPerSec` for a follower).
fn count_bytes_out(topics: &[WantedTopic], response: &FetchResponse, reader: Reader) {
    for (topic, answered) in topics.iter().zip(&response.responses) {
        for (wanted, data) in topic.partitions.iter().zip(&answered.partitions) {
            let (Ok(partition), Some(records)) = (&wanted.partition, &data.records) else {
                continue;
            };
            let counter = match reader {
                Reader::Consumer => &partition.stats.bytes_out,
                Reader::Follower(_) => &partition.stats.replication_bytes_out,
            };
            TopicStats::add(counter, records.len() as u64);
        }
    }
}

/// Resolves the request's partitions. Kafka's checks: a follower needs CLUSTER_ACTION on the
/// cluster, a consumer READ on each topic; a refused topic's partitions answer
/// TOPIC_AUTHORIZATION_FAILED (an unknown topic id stays UNKNOWN_TOPIC_ID).
fn resolve(ctx: &Ctx<'_>, request: &FetchRequest, reader: Reader) -> Vec<WantedTopic> {
    let broker = ctx.broker;
    let authz = ctx.authz();
    let follower_allowed =
        matches!(reader, Reader::Follower(_)) && authz.allows_cluster(AclOperation::ClusterAction);
    let allowed = |name: &str| match reader {
        Reader::Follower(_) => follower_allowed,
        Reader::Consumer => authz.allows(AclOperation::Read, ResourceType::Topic, name),
    };
    let by_id = ctx.version >= 13;
    let image = by_id.then(|| broker.image());
    request
        .topics
        .iter()
        .map(|topic| {
            let name = match &image {
                Some(image) => image.topic_by_id(topic.topic_id).map(|t| t.name.clone()),
                None => Some(owned(&topic.topic.0)),
            };
            let missing = match name.as_deref() {
                None => ResponseError::UnknownTopicId,
                Some(name) if !allowed(name) => ResponseError::TopicAuthorizationFailed,
                Some(_) if by_id => ResponseError::UnknownTopicId,
                Some(_) => ResponseError::UnknownTopicOrPartition,
            };
            let local = name
                .as_deref()
                .filter(|_| missing != ResponseError::TopicAuthorizationFailed)
                .and_then(|n| broker.topic(n));
            let partitions = topic
                .partitions
                .iter()
                .map(|p| Wanted {
                    partition_index: p.partition,
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as usize,
                    current_leader_epoch: p.current_leader_epoch,
                    partition: match &local {
                        Some(t) => t.led(p.partition).cloned(),
                        None => Err(missing),
                    },
                })
                .collect();
            WantedTopic {
                name: name.unwrap_or_default(),
                topic_id: topic.topic_id,
                partitions,
            }
        })
        .collect()
}

/// Reads every partition once; returns the response, its record bytes and whether any
/// partition answered with an error.
fn read_all(
    ctx: &Ctx<'_>,
    topics: &[WantedTopic],
    max_bytes: usize,
    read_committed: bool,
    reader: Reader,
) -> (FetchResponse, usize, bool) {
    let mut total = 0usize;
    let mut errors = false;
    let mut responses = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(wanted.partition_index)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_aborted_transactions(read_committed.then(Vec::new));
            match read_one(
                wanted,
                max_bytes.saturating_sub(total),
                total == 0,
                ctx.version >= 10,
                reader,
                read_committed,
            ) {
                Ok(read) => {
                    total += read.records.len();
                    data = data
                        .with_high_watermark(read.high_watermark)
                        .with_last_stable_offset(read.last_stable_offset)
                        .with_log_start_offset(read.log_start_offset)
                        .with_records(Some(read.records));
                    if let Some(aborted) = read.aborted {
                        data = data.with_aborted_transactions(Some(aborted));
                    }
                }
                Err(error) => {
                    errors = true;
                    data = data
                        .with_error_code(error.code())
                        .with_records(Some(Bytes::new()));
                }
            }
            partitions.push(data);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(str_bytes(topic.name.clone())))
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    let _ = ctx;
    (
        FetchResponse::default().with_responses(responses),
        total,
        errors,
    )
}

/// What one partition's read gives the response.
struct PartitionRead {
    records: Bytes,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// For read_committed consumers: the aborted transactions the records may hold.
    aborted: Option<Vec<AbortedTransaction>>,
}

fn read_one(
    wanted: &Wanted,
    remaining: usize,
    first: bool,
    zstd_allowed: bool,
    reader: Reader,
    read_committed: bool,
) -> Result<PartitionRead, ResponseError> {
    let partition = wanted.partition.as_ref().map_err(|error| *error)?;
    partition.check_leader_epoch(wanted.current_leader_epoch)?;
    let limit = wanted.max_bytes.min(remaining);
    let read = match reader {
        Reader::Consumer => partition
            .read(wanted.fetch_offset, limit, first, read_committed)
            .map_err(|e| storage_error(&e))?,
        Reader::Follower(replica) => {
            let now = crate::broker::now_ms();
            let read = partition.read_for_follower(replica, wanted.fetch_offset, limit, now)?;
            return Ok(PartitionRead {
                last_stable_offset: partition.last_stable_offset(),
                records: read.records,
                high_watermark: read.high_watermark,
                log_start_offset: read.log_start_offset,
                aborted: None,
            });
        }
    };
    if !zstd_allowed && holds_zstd(&read.records) {
        // KIP-110: a consumer older than Fetch v10 cannot decompress zstd.
        return Err(ResponseError::UnsupportedCompressionType);
    }
    let last_stable_offset = partition.last_stable_offset();
    let aborted = if read_committed {
        let upper = last_stable_offset.max(wanted.fetch_offset);
        let found = partition
            .log
            .aborted_txns(wanted.fetch_offset, upper)
            .map_err(|e| storage_error(&e))?;
        Some(
            found
                .into_iter()
                .map(|a| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(a.producer_id))
                        .with_first_offset(a.first_offset)
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(PartitionRead {
        records: read.records,
        high_watermark: read.high_watermark,
        last_stable_offset,
        log_start_offset: read.log_start_offset,
        aborted,
    })
}

fn holds_zstd(records: &[u8]) -> bool {
    let mut rest = records;
    while let Some(header) = segment_store::BatchHeader::parse(rest) {
        if header.compression() == 4 {
            return true;
        }
        rest = rest.get(header.total_size()..).unwrap_or_default();
    }
    false
}
