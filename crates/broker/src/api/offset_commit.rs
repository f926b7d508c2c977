//! OffsetCommit (key 8): offsets are written to `__consumer_offsets` and acknowledged once
//! replicated there (the partition's high watermark covers them), so they survive the loss
//! of the coordinator's node. Members of consumer-protocol groups commit with v9+, their
//! member epoch in place of the generation.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::{owned, Ctx};

use crate::broker::{now_ms, NotCoordinator};
use crate::group::records::{self, CommittedOffset};
use crate::partition::{Partition, Produced};

/// `offset.metadata.max.bytes`.
const MAX_METADATA: usize = 4096;
/// `offsets.commit.timeout.ms`: how long a commit waits for replication.
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(5000);

pub(super) async fn handle(ctx: &Ctx<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = owned(&request.group_id.0);
    let broker = ctx.broker;
    let now = now_ms();
    let mut group_error = if group_id.is_empty() {
        ResponseError::InvalidGroupId.code()
    } else if let Some(code) = broker.coordinator_error(&group_id) {
        code
    } else {
        broker.groups.check_commit(
            &group_id,
            &owned(&request.member_id),
            request.group_instance_id.as_ref().map(|i| i.as_str()),
            request.generation_id_or_member_epoch,
            ctx.version,
        )
    };
    let image = broker.image();
    // Per partition: the error, or the offset to write.
    let mut decided: Vec<Vec<(i32, Result<CommittedOffset, i16>)>> = Vec::new();
    let mut entries: Vec<(Bytes, Option<Bytes>)> = Vec::new();
    let mut accepted = Vec::new();
    for topic in &request.topics {
        let name = owned(&topic.name.0);
        let known = image.topic(&name);
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            let outcome = if group_error != 0 {
                Err(group_error)
            } else if known.and_then(|t| t.partition(p.partition_index)).is_none() {
                Err(ResponseError::UnknownTopicOrPartition.code())
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > MAX_METADATA)
            {
                Err(ResponseError::OffsetMetadataTooLarge.code())
            } else {
                let value = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(owned).unwrap_or_default(),
                    commit_timestamp: now,
                };
                entries.push((
                    records::offset_key(&group_id, &name, p.partition_index),
                    Some(records::offset_value(&value)),
                ));
                accepted.push(((name.clone(), p.partition_index), value.clone()));
                Ok(value)
            };
            partitions.push((p.partition_index, outcome));
        }
        decided.push(partitions);
    }
    if !entries.is_empty() {
        match commit_offsets(ctx, &group_id, &entries, now).await {
            Ok(()) => broker.groups.apply_offsets(&group_id, accepted),
            Err(code) => group_error = code,
        }
    }
    let topics = request
        .topics
        .iter()
        .zip(decided)
        .map(|(topic, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, outcome)| {
                    let code = match outcome {
                        Ok(_) => group_error,
                        Err(code) => code,
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Appends offset records to the group's `__consumer_offsets` partition and waits until they
/// are replicated; Kafka's coordinator error codes when that fails.
async fn commit_offsets(
    ctx: &Ctx<'_>,
    group_id: &str,
    entries: &[(Bytes, Option<Bytes>)],
    now: i64,
) -> Result<(), i16> {
    let (partition, produced) = append_offsets_records(ctx, group_id, entries, now).await?;
    let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
    partition
        .wait_committed(&produced, deadline)
        .await
        .map_err(|e| coordinator_code(e.code()))
}

/// Appends records to the group's `__consumer_offsets` partition without waiting for
/// replication; Kafka's coordinator error code if that fails.
pub(super) async fn write_offsets_records(
    ctx: &Ctx<'_>,
    group_id: &str,
    entries: &[(Bytes, Option<Bytes>)],
    now: i64,
) -> Result<(), i16> {
    append_offsets_records(ctx, group_id, entries, now)
        .await
        .map(|_| ())
}

async fn append_offsets_records(
    ctx: &Ctx<'_>,
    group_id: &str,
    entries: &[(Bytes, Option<Bytes>)],
    now: i64,
) -> Result<(Arc<Partition>, Produced), i16> {
    let partition = ctx
        .broker
        .offsets_partition(group_id)
        .map_err(|e| match e {
            NotCoordinator::Elsewhere => ResponseError::NotCoordinator.code(),
            NotCoordinator::Unavailable => ResponseError::CoordinatorNotAvailable.code(),
        })?;
    let produced = partition
        .append(records::batch(entries, now), -1)
        .await
        .map_err(|e| {
            tracing::warn!(group = group_id, error = %e, "writing to __consumer_offsets failed");
            coordinator_code(e.kafka_error().code())
        })?;
    Ok((partition, produced))
}

/// Kafka's mapping of a failed write to `__consumer_offsets` onto what a group client
/// understands (`GroupMetadataManager`).
fn coordinator_code(code: i16) -> i16 {
    use ResponseError as E;
    match ResponseError::try_from_code(code) {
        Some(E::NotLeaderOrFollower | E::KafkaStorageError) => E::NotCoordinator.code(),
        Some(
            E::UnknownTopicOrPartition
            | E::NotEnoughReplicas
            | E::NotEnoughReplicasAfterAppend
            | E::RequestTimedOut,
        ) => E::CoordinatorNotAvailable.code(),
        Some(E::MessageTooLarge | E::RecordListTooLarge) => E::InvalidCommitOffsetSize.code(),
        _ => code,
    }
}
