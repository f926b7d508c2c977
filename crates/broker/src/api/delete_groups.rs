//! DeleteGroups (key 42): empty groups are removed, their offsets with them (tombstones in
//! `__consumer_offsets`).

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::{owned, Ctx};
use crate::broker::now_ms;
use crate::group::records;

pub(super) async fn handle(ctx: &Ctx<'_>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in &request.groups_names {
        {
            let group = owned(&id.0);
            let deletable = match ctx.broker.coordinator_error(&group) {
                Some(code) => Err(code),
                None => ctx.broker.groups.deletable(&group),
            };
            let code = match deletable {
                Err(code) => code,
                Ok(partitions) => {
                    let mut entries: Vec<(Bytes, Option<Bytes>)> = partitions
                        .iter()
                        .map(|(t, p)| (records::offset_key(&group, t, *p), None))
                        .collect();
                    entries.push((records::group_key(&group), None));
                    entries.extend(ctx.broker.groups.consumer_tombstones(&group));
                    match super::offset_commit::write_offsets_records(
                        ctx,
                        &group,
                        &entries,
                        now_ms(),
                    )
                    .await
                    {
                        Ok(()) => {
                            ctx.broker.groups.remove_group(&group);
                            0
                        }
                        Err(code) => code,
                    }
                }
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(id.clone())
                    .with_error_code(code),
            );
        }
    }
    DeleteGroupsResponse::default().with_results(results)
}
