//! OffsetDelete (key 47): removes a group's committed offsets for partitions of topics its
//! members are not subscribed to.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::{owned, Ctx};
use crate::broker::now_ms;

pub(super) async fn handle(ctx: &Ctx<'_>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = owned(&request.group_id.0);
    let authz = ctx.authz();
    let handle = match authz
        .check(
            controller::acl::AclOperation::Delete,
            controller::acl::ResourceType::Group,
            &group,
        )
        .and_then(|()| ctx.broker.groups.group(&group).map_err(|e| e.error()))
    {
        Ok(handle) => handle,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(e.code()),
    };
    let Some(subscribed) = handle.subscribed_topics() else {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupIdNotFound.code());
    };
    let mut deleted = Vec::new();
    let mut topics: Vec<(OffsetDeleteResponseTopic, Vec<(i32, i16)>)> = Vec::new();
    for topic in &request.topics {
        let name = owned(&topic.name.0);
        let in_use = subscribed.contains(&name);
        let denied = authz
            .check(
                controller::acl::AclOperation::Read,
                controller::acl::ResourceType::Topic,
                &name,
            )
            .err();
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            if let Some(denied) = denied {
                partitions.push((p.partition_index, denied.code()));
            } else if in_use {
                partitions.push((
                    p.partition_index,
                    ResponseError::GroupSubscribedToTopic.code(),
                ));
            } else {
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
    if !deleted.is_empty() {
        if let Err(e) = handle.delete_offsets(&deleted, now_ms()).await {
            top_error = e.code();
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
