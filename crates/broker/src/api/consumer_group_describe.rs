//! ConsumerGroupDescribe (key 69): a consumer group's epochs, assignor and members with their
//! current and target assignments.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};

use super::{owned, str_bytes, Ctx, OPERATIONS_NOT_ASKED};
use coordinator::group::consumer::{self, ConsumerGroup};

fn assignment(group: &ConsumerGroup, a: &consumer::Assignment) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(str_bytes(
                        group.topic_name(*id).unwrap_or_default(),
                    )))
                    .with_partitions(partitions.iter().copied().collect())
            })
            .collect(),
    )
}

fn describe(group: &ConsumerGroup, version: i16) -> DescribedGroup {
    let empty = consumer::Assignment::new();
    let members = group
        .members
        .values()
        .map(|m| {
            let member = Member::default()
                .with_member_id(str_bytes(m.id.clone()))
                .with_instance_id(m.instance_id.clone().map(str_bytes))
                .with_rack_id(m.rack_id.clone().map(str_bytes))
                .with_member_epoch(m.epoch)
                .with_client_id(str_bytes(m.client_id.clone()))
                .with_client_host(str_bytes(m.client_host.clone()))
                .with_subscribed_topic_names(
                    m.subscribed_topic_names
                        .iter()
                        .map(|n| TopicName(str_bytes(n.clone())))
                        .collect(),
                )
                .with_subscribed_topic_regex(m.subscribed_topic_regex.clone().map(str_bytes))
                .with_assignment(assignment(group, &m.assigned))
                .with_target_assignment(assignment(
                    group,
                    group.target.get(&m.id).unwrap_or(&empty),
                ));
            if version >= 1 {
                // 1: a member of the consumer protocol, 0 one of the classic protocol.
                member.with_member_type(if m.classic.is_some() { 0 } else { 1 })
            } else {
                member
            }
        })
        .collect();
    DescribedGroup::default()
        .with_group_state(str_bytes(group.state().name()))
        .with_group_epoch(group.group_epoch)
        .with_assignment_epoch(group.assignment_epoch)
        .with_assignor_name(str_bytes(group.assignor()))
        .with_members(members)
}

pub(super) fn handle(
    ctx: &Ctx<'_>,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let authz = ctx.authz();
    let groups = request
        .group_ids
        .iter()
        .map(|id| {
            let name = owned(&id.0);
            let handle = match authz
                .check(
                    controller::acl::AclOperation::Describe,
                    controller::acl::ResourceType::Group,
                    &name,
                )
                .and_then(|()| ctx.broker.groups.group(&name).map_err(|e| e.error()))
            {
                Ok(handle) => handle,
                Err(e) => {
                    return DescribedGroup::default()
                        .with_group_id(id.clone())
                        .with_error_code(e.code())
                        .with_authorized_operations(OPERATIONS_NOT_ASKED)
                }
            };
            let described = handle
                .with_consumer(|g| {
                    describe(g, ctx.version).with_authorized_operations(authz.operations_if(
                        request.include_authorized_operations,
                        controller::acl::ResourceType::Group,
                        &name,
                    ))
                })
                .unwrap_or_else(|| {
                    let message = if handle.with_classic(|_| ()).is_some() {
                        format!("Group {name} is not a consumer group.")
                    } else {
                        format!("Group {name} not found.")
                    };
                    DescribedGroup::default()
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(str_bytes(message)))
                        .with_group_state(str_bytes("Dead"))
                        .with_authorized_operations(OPERATIONS_NOT_ASKED)
                });
            described.with_group_id(id.clone())
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
