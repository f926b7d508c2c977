//! ListGroups (key 16): the groups this node coordinates, classic and consumer-protocol ones,
//! optionally filtered by state and (v5) by type.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use controller::acl::{AclOperation, ResourceType};

use super::{str_bytes, Ctx};

pub(super) fn handle(ctx: &Ctx<'_>, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.as_str().to_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.as_str().to_lowercase())
        .collect();
    let listed = match ctx.broker.groups.list() {
        Ok(listed) => listed,
        Err(error) => return ListGroupsResponse::default().with_error_code(error.code()),
    };
    // Kafka: DESCRIBE on the cluster lists every group, else those the request may DESCRIBE.
    let authz = ctx.authz();
    let all = authz.allows_cluster(AclOperation::Describe);
    let groups = listed
        .into_iter()
        .filter(|g| all || authz.allows(AclOperation::Describe, ResourceType::Group, &g.id))
        .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if ctx.version >= 4 {
                listed = listed.with_group_state(str_bytes(g.state));
            }
            if ctx.version >= 5 {
                listed = listed.with_group_type(str_bytes(g.group_type));
            }
            listed
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
