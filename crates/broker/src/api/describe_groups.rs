//! DescribeGroups (key 15): state, protocol and members with their assignments.

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
            let described = described.unwrap_or_else(|| {
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
