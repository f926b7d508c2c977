//! Heartbeat (key 12): keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::{owned, Ctx};

pub(super) fn handle(ctx: &Ctx<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = owned(&request.group_id.0);
    let beat = ctx
        .authz()
        .check(
            controller::acl::AclOperation::Read,
            controller::acl::ResourceType::Group,
            &group_id,
        )
        .and_then(|()| ctx.broker.groups.group(&group_id).map_err(|e| e.error()))
        .and_then(|group| {
            group.heartbeat(
                &owned(&request.member_id),
                request.group_instance_id.as_ref().map(|i| i.as_str()),
                request.generation_id,
            )
        });
    HeartbeatResponse::default().with_error_code(beat.err().map_or(0, |e| e.code()))
}
