//! DescribeGroups (key 15): state, protocol and members with their assignments, of classic
//! groups; a consumer-protocol group is Dead to versions before 6 and GROUP_ID_NOT_FOUND from 6
//! on, as in Kafka (ConsumerGroupDescribe describes it).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{owned, str_bytes, Ctx};
use crate::group::state::GroupState;

pub(super) fn handle(ctx: &Ctx<'_>, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .iter()
        .map(|id| {
            let described = ctx.broker.groups.with_group(&owned(&id.0), |g| {
                let protocol = g.protocol.clone().unwrap_or_default();
                let members = g
                    .members
                    .values()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(str_bytes(m.id.clone()))
                            .with_group_instance_id(if ctx.version >= 4 {
                                m.group_instance_id.clone().map(str_bytes)
                            } else {
                                None
                            })
                            .with_client_id(str_bytes(m.client_id.clone()))
                            .with_client_host(str_bytes(m.client_host.clone()))
                            .with_member_metadata(m.metadata(&protocol))
                            .with_member_assignment(m.assignment.clone())
                    })
                    .collect();
                DescribedGroup::default()
                    .with_group_state(str_bytes(g.state.name()))
                    .with_protocol_type(str_bytes(g.protocol_type.clone().unwrap_or_default()))
                    .with_protocol_data(str_bytes(protocol))
                    .with_members(members)
            });
            let consumer_group = ctx
                .broker
                .groups
                .with_consumer_group(&owned(&id.0), |_| ())
                .is_some();
            let described = described.unwrap_or_else(|| {
                if consumer_group || ctx.version >= 6 {
                    // Kafka: v6 tells that the group is not a classic one (or does not exist);
                    // older versions show it as Dead.
                    if ctx.version < 6 {
                        return DescribedGroup::default().with_group_state(str_bytes("Dead"));
                    }
                    let known =
                        consumer_group || !ctx.broker.groups.committed(&owned(&id.0)).is_empty();
                    if known && !consumer_group {
                        return DescribedGroup::default()
                            .with_group_state(str_bytes(GroupState::Empty.name()))
                            .with_protocol_type(str_bytes("consumer"));
                    }
                    let message = if consumer_group {
                        format!("Group {} is not a classic group.", id.0.as_str())
                    } else {
                        format!("Group {} not found.", id.0.as_str())
                    };
                    return DescribedGroup::default()
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(str_bytes(message)))
                        .with_group_state(str_bytes("Dead"));
                }
                // Kafka describes an unknown group as Dead with no members.
                DescribedGroup::default().with_group_state(str_bytes(
                    if ctx.broker.groups.committed(&owned(&id.0)).is_empty() {
                        "Dead"
                    } else {
                        GroupState::Empty.name()
                    },
                ))
            });
            described.with_group_id(id.clone())
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
