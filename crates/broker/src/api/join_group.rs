//! JoinGroup (key 11): join a group and wait for the rebalance to complete.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{owned, str_bytes, Ctx};
use crate::broker::now_ms;
use crate::group::state::{codes, JoinRequest};

pub(super) async fn handle(ctx: &Ctx<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let group_id = owned(&request.group_id.0);
    if group_id.is_empty() {
        return JoinGroupResponse::default()
            .with_error_code(codes::INVALID_GROUP_ID)
            .with_generation_id(-1);
    }
    if let Some(code) = ctx.broker.coordinator_error(&group_id) {
        return JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1);
    }
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
    // An empty consumer-protocol group of this id gives way; its records go first.
    let tombstones = ctx.broker.groups.consumer_tombstones(&group_id);
    if !tombstones.is_empty() {
        let written =
            super::offset_commit::write_offsets_records(ctx, &group_id, &tombstones, now_ms())
                .await;
        if let Err(code) = written {
            return JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1);
        }
    }
    let response = ctx.broker.groups.join(&group_id, join).await;
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
        .with_error_code(response.error_code)
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
