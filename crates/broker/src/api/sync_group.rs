//! SyncGroup (key 14): the leader hands out assignments; every member receives its own.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{owned, str_bytes, Ctx};

pub(super) async fn handle(ctx: &Ctx<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    // KIP-559: from v5 the protocol type and name are mandatory; Kafka refuses a request
    // without them before looking at the group.
    if ctx.version >= 5 && (request.protocol_type.is_none() || request.protocol_name.is_none()) {
        return SyncGroupResponse::default()
            .with_error_code(ResponseError::InconsistentGroupProtocol.code());
    }
    let group_id = owned(&request.group_id.0);
    if let Err(denied) = ctx.authz().check(
        controller::acl::AclOperation::Read,
        controller::acl::ResourceType::Group,
        &group_id,
    ) {
        return SyncGroupResponse::default().with_error_code(denied.code());
    }
    let group = match ctx.broker.groups.group(&group_id) {
        Ok(group) => group,
        Err(e) => return SyncGroupResponse::default().with_error_code(e.code()),
    };
    let assignments = request
        .assignments
        .iter()
        .map(|a| (owned(&a.member_id), a.assignment.clone()))
        .collect();
    // A stable generation's membership is written to `__consumer_offsets` too.
    let response = group
        .sync(
            &owned(&request.member_id),
            request.group_instance_id.as_ref().map(|i| i.as_str()),
            request.generation_id,
            assignments,
            crate::broker::now_ms(),
        )
        .await;
    let mut out = SyncGroupResponse::default()
        .with_error_code(response.error.map_or(0, |e| e.code()))
        .with_assignment(response.assignment);
    if ctx.version >= 5 {
        out = out
            .with_protocol_type(response.protocol_type.map(str_bytes))
            .with_protocol_name(response.protocol_name.map(str_bytes));
    }
    out
}
