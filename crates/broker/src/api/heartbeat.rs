//! Heartbeat (key 12): keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::{owned, Ctx};

pub(super) fn handle(ctx: &Ctx<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    if let Some(code) = ctx.broker.coordinator_error(request.group_id.0.as_str()) {
        return HeartbeatResponse::default().with_error_code(code);
    }
    let code = ctx.broker.groups.heartbeat(
        &owned(&request.group_id.0),
        &owned(&request.member_id),
        request.group_instance_id.as_ref().map(|i| i.as_str()),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code)
}
