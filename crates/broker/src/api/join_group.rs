//! JoinGroup (key 11): join a group and wait for the rebalance to complete.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{owned, str_bytes, Ctx};
use crate::broker::now_ms;
use coordinator::group::classic::JoinRequest;
use kafka_protocol::error::ResponseError;

pub(super) async fn handle(ctx: &Ctx<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let group_id = owned(&request.group_id.0);
    if let Err(denied) = ctx.authz().check(
        controller::acl::AclOperation::Read,
        controller::acl::ResourceType::Group,
        &group_id,
    ) {
        return JoinGroupResponse::default()
            .with_error_code(denied.code())
            .with_generation_id(-1);
    }
    if group_id.is_empty() {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::InvalidGroupId.code())
            .with_generation_id(-1);
    }
    let group = match ctx.broker.groups.group(&group_id) {
        Ok(group) => group,
        Err(e) => {
            return JoinGroupResponse::default()
                .with_error_code(e.code())
                .with_generation_id(-1)
        }
    };
    let session = request.session_timeout_ms.max(0) as u64;
    let rebalance = if ctx.version >= 1 {
        request.rebalance_timeout_ms.max(0) as u64
    } else {
        session
    };
    let join = JoinRequest {
        member_id: owned(&request.member_id),
        group_instance_id: request.group_instance_id.as_ref().map(owned),
        client_id: ctx.client_id.clone(),
        client_host: ctx.peer.to_owned(),
        session_timeout_ms: session,
        rebalance_timeout_ms: rebalance,
        protocol_type: owned(&request.protocol_type),
        protocols: request
            .protocols
            .iter()
            .map(|p| (owned(&p.name), p.metadata.clone()))
            .collect(),
        require_known_member_id: ctx.version >= 4,
    };
    // An empty consumer-protocol group of this id gives way (its records go first); one with
    // members serves the classic member itself (KIP-848's mixed groups).
    let topics = super::consumer_group_heartbeat::Image(ctx.broker.image());
    let response = match group.join(join, &topics, now_ms()).await {
        Ok(response) => response,
        Err(e) => {
            return JoinGroupResponse::default()
                .with_error_code(e.code())
                .with_generation_id(-1)
        }
    };
    let members = response
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(id))
                .with_group_instance_id(if ctx.version >= 5 {
                    instance.map(str_bytes)
                } else {
                    None
                })
                .with_metadata(metadata)
        })
        .collect();
    let mut out = JoinGroupResponse::default()
        .with_error_code(response.error.map_or(0, |e| e.code()))
        .with_generation_id(response.generation_id)
        .with_protocol_name(response.protocol_name.map(str_bytes))
        .with_leader(str_bytes(response.leader))
        .with_member_id(str_bytes(response.member_id))
        .with_members(members);
    if ctx.version >= 7 {
        out = out.with_protocol_type(response.protocol_type.map(str_bytes));
    }
    if ctx.version < 7 && out.protocol_name.is_none() {
        out.protocol_name = Some(str_bytes(""));
    }
    out
}
