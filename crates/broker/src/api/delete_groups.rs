//! DeleteGroups (key 42): empty groups are removed, their offsets with them (tombstones in
//! `__consumer_offsets`).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{owned, Ctx};
use crate::broker::now_ms;

pub(super) async fn handle(ctx: &Ctx<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in &request.groups_names {
        let deleted = match ctx.broker.groups.group(&owned(&id.0)) {
            Ok(group) => group.delete(now_ms()).await,
            Err(error) => Err(error.error()),
        };
        let code = deleted.err().map_or(0, |e| e.code());
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
