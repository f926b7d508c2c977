//! SyncGroup (key 14): the leader hands out assignments; every member receives its own.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{owned, str_bytes, Ctx};
use crate::group::records;

pub(super) async fn handle(ctx: &Ctx<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    let group_id = owned(&request.group_id.0);
    if let Some(code) = ctx.broker.coordinator_error(&group_id) {
        return SyncGroupResponse::default().with_error_code(code);
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (owned(&a.member_id), a.assignment.clone()))
        .collect();
    let response = ctx
        .broker
        .groups
        .sync(
            &group_id,
            &owned(&request.member_id),
            request.group_instance_id.as_ref().map(|i| i.as_str()),
            request.generation_id,
            assignments,
        )
        .await;
    if response.error_code == 0 {
        persist_membership(ctx, &group_id).await;
    }
    let mut out = SyncGroupResponse::default()
        .with_error_code(response.error_code)
        .with_assignment(response.assignment);
    if ctx.version >= 5 {
        out = out
            .with_protocol_type(response.protocol_type.map(str_bytes))
            .with_protocol_name(response.protocol_name.map(str_bytes));
    }
    out
}

/// Writes the group's membership to `__consumer_offsets` once a generation is stable, as
/// Kafka does, for tools that read member assignments from there.
async fn persist_membership(ctx: &Ctx<'_>, group_id: &str) {
    let now = crate::broker::now_ms();
    let Some(stored) = ctx.broker.groups.with_group(group_id, |g| {
        (g.state == crate::group::state::GroupState::Stable).then(|| g.stored(now))
    }) else {
        return;
    };
    let Some(stored) = stored else { return };
    let entry = (
        records::group_key(group_id),
        Some(records::group_value(&stored)),
    );
    let written = match ctx.broker.offsets_partition(group_id) {
        Ok(p) => p
            .append(records::batch(&[entry], now), -1)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = written {
        tracing::warn!(group = group_id, %error, "writing group metadata failed");
    }
}
