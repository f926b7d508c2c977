//! LeaveGroup (key 13): members leave; the rest rebalance.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{owned, Ctx};

pub(super) fn handle(ctx: &Ctx<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = owned(&request.group_id.0);
    if let Err(denied) = ctx.authz().check(
        controller::acl::AclOperation::Read,
        controller::acl::ResourceType::Group,
        &group_id,
    ) {
        return LeaveGroupResponse::default().with_error_code(denied.code());
    }
    let group = match ctx.broker.groups.group(&group_id) {
        Ok(group) => group,
        Err(e) => return LeaveGroupResponse::default().with_error_code(e.code()),
    };
    let code = |left: Result<(), ResponseError>| left.err().map_or(0, |e| e.code());
    if ctx.version < 3 {
        let left = group.leave(&owned(&request.member_id), None);
        return LeaveGroupResponse::default().with_error_code(code(left));
    }
    let members = request
        .members
        .iter()
        .map(|m| {
            let instance = m.group_instance_id.as_ref().map(|i| i.as_str());
            let left = group.leave(&owned(&m.member_id), instance);
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone())
                .with_error_code(code(left))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
