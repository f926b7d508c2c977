//! OffsetCommit (key 8): offsets are written to `__consumer_offsets` and acknowledged once
//! replicated there (the partition's high watermark covers them), so they survive the loss
//! of the coordinator's node. Members of consumer-protocol groups commit with v9+, their
//! member epoch in place of the generation.

use coordinator::group::records::CommittedOffset;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use controller::acl::{AclOperation::Read, ResourceType};

use super::{owned, Ctx};

use crate::broker::now_ms;

/// `offset.metadata.max.bytes`.
const MAX_METADATA: usize = 4096;

pub(super) async fn handle(ctx: &Ctx<'_>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group_id = owned(&request.group_id.0);
    let broker = ctx.broker;
    let now = now_ms();
    let authz = ctx.authz();
    let group = if let Err(denied) = authz.check(Read, ResourceType::Group, &group_id) {
        Err(denied)
    } else if group_id.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        broker.groups.group(&group_id).map_err(|e| e.error())
    };
    let mut group_error = match &group {
        Err(e) => Some(*e),
        Ok(group) => group
            .check_commit(
                &owned(&request.member_id),
                request.group_instance_id.as_ref().map(|i| i.as_str()),
                request.generation_id_or_member_epoch,
                ctx.version,
            )
            .err(),
    };
    let image = broker.image();
    // Per partition: the error, or accepted.
    let mut decided: Vec<Vec<(i32, Result<(), ResponseError>)>> = Vec::new();
    let mut accepted = Vec::new();
    for topic in &request.topics {
        let name = owned(&topic.name.0);
        let known = image.topic(&name);
        let topic_denied = authz.check(Read, ResourceType::Topic, &name).err();
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            let outcome = if let Some(e) = group_error {
                Err(e)
            } else if let Some(e) = topic_denied {
                Err(e)
            } else if known.and_then(|t| t.partition(p.partition_index)).is_none() {
                Err(ResponseError::UnknownTopicOrPartition)
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > MAX_METADATA)
            {
                Err(ResponseError::OffsetMetadataTooLarge)
            } else {
                let value = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(owned).unwrap_or_default(),
                    commit_timestamp: now,
                };
                accepted.push(((name.clone(), p.partition_index), value));
                Ok(())
            };
            partitions.push((p.partition_index, outcome));
        }
        decided.push(partitions);
    }
    if let (Ok(group), false) = (&group, accepted.is_empty()) {
        if let Err(e) = group.commit(accepted, now).await {
            group_error = Some(e.error());
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
                        Ok(()) => group_error.map_or(0, |e| e.code()),
                        Err(e) => e.code(),
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
