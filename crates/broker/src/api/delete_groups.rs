//! DeleteGroups (key 42): empty groups are removed, their offsets with them (tombstones in
//! `__consumer_offsets`).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{owned, Ctx};
use crate::broker::now_ms;

pub(super) fn handle(ctx: &Ctx<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .iter()
        .map(|id| {
            let group = owned(&id.0);
            let deleted = ctx
                .broker
                .groups
                .group(&group)
                .map_err(|e| e.error())
                .and_then(|g| g.delete(now_ms()));
            let code = deleted.err().map_or(0, |e| e.code());
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(code)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
