//! DeleteGroups (key 42): empty groups are removed, their offsets with them (tombstones in
//! `__consumer_offsets`).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use controller::acl::{AclOperation::Delete, ResourceType};

use super::{owned, Ctx};
use crate::broker::now_ms;

pub(super) async fn handle(ctx: &Ctx<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    let authz = ctx.authz();
    for id in &request.groups_names {
        let group_id = owned(&id.0);
        let deleted = match authz
            .check(Delete, ResourceType::Group, &group_id)
            .and_then(|()| ctx.broker.groups.group(&group_id).map_err(|e| e.error()))
        {
            Ok(group) => group.delete(now_ms()).await,
            Err(error) => Err(error),
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
