//! DescribeGroups (key 15): state, protocol and members with their assignments, of classic
//! groups; a consumer-protocol group is Dead to versions before 6 and GROUP_ID_NOT_FOUND from 6
//! on, as in Kafka (ConsumerGroupDescribe describes it).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use controller::acl::{AclOperation::Describe, ResourceType};

use super::{owned, str_bytes, Ctx, OPERATIONS_NOT_ASKED};
use coordinator::group::classic::GroupState;
use coordinator::GroupHandle;

/// A group id with no classic group in memory: one with only committed offsets is an Empty
/// classic group; a consumer-protocol group is Dead before v6 and GROUP_ID_NOT_FOUND ("not a
/// classic group") from v6; an unknown id is Dead before v6 and GROUP_ID_NOT_FOUND from v6.
fn not_classic(ctx: &Ctx<'_>, handle: &GroupHandle<'_>) -> DescribedGroup {
    let group = handle.id();
    let consumer_group = handle.with_consumer(|_| ()).is_some();
    if !consumer_group && !handle.committed().is_empty() {
        return DescribedGroup::default().with_group_state(str_bytes(GroupState::Empty.name()));
    }
    let dead = DescribedGroup::default().with_group_state(str_bytes("Dead"));
    if ctx.version < 6 {
        return dead;
    }
    let message = if consumer_group {
        format!("Group {group} is not a classic group.")
    } else {
        format!("Group {group} not found.")
    };
    dead.with_error_code(ResponseError::GroupIdNotFound.code())
        .with_error_message(Some(str_bytes(message)))
}

pub(super) fn handle(ctx: &Ctx<'_>, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let authz = ctx.authz();
    let groups = request
        .groups
        .iter()
        .map(|id| {
            let group_id = owned(&id.0);
            let handle = match authz
                .check(Describe, ResourceType::Group, &group_id)
                .and_then(|()| ctx.broker.groups.group(&group_id).map_err(|e| e.error()))
            {
                Ok(handle) => handle,
                Err(e) => {
                    return DescribedGroup::default()
                        .with_group_id(id.clone())
                        .with_error_code(e.code())
                }
            };
            let described = handle.with_classic(|g| {
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
            let described = described.unwrap_or_else(|| not_classic(ctx, &handle));
            let operations = if described.error_code == 0 {
                authz.operations_if(
                    request.include_authorized_operations,
                    ResourceType::Group,
                    &group_id,
                )
            } else {
                OPERATIONS_NOT_ASKED
            };
            described
                .with_group_id(id.clone())
                .with_authorized_operations(operations)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
