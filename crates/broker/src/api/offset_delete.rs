//! OffsetDelete (key 47): removes a group's committed offsets for partitions of topics its
//! members are not subscribed to.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::{owned, Ctx};
use crate::broker::now_ms;
use crate::group::records;

pub(super) async fn handle(ctx: &Ctx<'_>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = owned(&request.group_id.0);
    if let Some(code) = ctx.broker.coordinator_error(&group) {
        return OffsetDeleteResponse::default().with_error_code(code);
    }
    let Some(subscribed) = ctx.broker.groups.subscribed_topics(&group) else {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupIdNotFound.code());
    };
    let mut deleted = Vec::new();
    let mut entries: Vec<(Bytes, Option<Bytes>)> = Vec::new();
    let mut topics: Vec<(OffsetDeleteResponseTopic, Vec<(i32, i16)>)> = Vec::new();
    for topic in &request.topics {
        let name = owned(&topic.name.0);
        let in_use = subscribed.contains(&name);
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            if in_use {
                partitions.push((
                    p.partition_index,
                    ResponseError::GroupSubscribedToTopic.code(),
                ));
            } else {
                entries.push((records::offset_key(&group, &name, p.partition_index), None));
                deleted.push((name.clone(), p.partition_index));
                partitions.push((p.partition_index, 0));
            }
        }
        topics.push((
            OffsetDeleteResponseTopic::default().with_name(topic.name.clone()),
            partitions,
        ));
    }
    let mut top_error = 0;
    if !entries.is_empty() {
        match super::offset_commit::write_offsets_records(ctx, &group, &entries, now_ms()).await {
            Ok(()) => ctx.broker.groups.remove_offsets(&group, &deleted),
            Err(code) => top_error = code,
        }
    }
    let topics = topics
        .into_iter()
        .map(|(topic, partitions)| {
            topic.with_partitions(
                partitions
                    .into_iter()
                    .map(|(index, code)| {
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(code)
                    })
                    .collect(),
            )
        })
        .collect();
    OffsetDeleteResponse::default()
        .with_error_code(top_error)
        .with_topics(topics)
}
