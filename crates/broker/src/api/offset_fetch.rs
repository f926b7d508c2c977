//! OffsetFetch (key 9): a group's committed offsets, for one group or many (v8+). From v9 a
//! member of a consumer-protocol group names itself and its epoch, which are checked. From
//! v7 `require_stable` makes a partition with transactional offsets still pending
//! UNSTABLE_OFFSET_COMMIT (KIP-447), which clients retry.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use controller::acl::{AclOperation::Describe, ResourceType};
use kafka_protocol::error::ResponseError;

use super::{owned, str_bytes, Ctx};
use coordinator::GroupHandle;

/// (partition, offset, leader epoch, metadata, error code) by topic; offset -1 where nothing
/// is committed or the partition is answered with an error.
type Answer = BTreeMap<String, Vec<(i32, i64, i32, String, i16)>>;

/// The group's offsets of `wanted` (every committed one when `None`). With
/// `require_stable`, partitions with transactional offsets pending are
/// UNSTABLE_OFFSET_COMMIT (KIP-447). As Kafka, topics the request may not DESCRIBE are left
/// out of "every topic" and answer TOPIC_AUTHORIZATION_FAILED when named.
fn lookup(
    group: &GroupHandle<'_>,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
    authz: &super::Authz<'_>,
) -> Answer {
    let may_describe = |topic: &str| authz.allows(Describe, ResourceType::Topic, topic);
    let denied = ResponseError::TopicAuthorizationFailed.code();
    let mut out = Answer::new();
    let listing_all = wanted.is_none();
    let wanted = wanted.map(|topics| {
        let mut asked = Vec::new();
        for (topic, partitions) in topics {
            // A topic asked for with no partitions still gets its (empty) entry.
            let entry = out.entry(topic.clone()).or_default();
            if may_describe(&topic) {
                asked.extend(partitions.into_iter().map(|p| (topic.clone(), p)));
            } else {
                entry.extend(
                    partitions
                        .into_iter()
                        .map(|p| (p, -1, -1, String::new(), denied)),
                );
            }
        }
        asked
    });
    for ((topic, partition), answer) in group.fetch_offsets(wanted, require_stable) {
        if listing_all && !may_describe(&topic) {
            continue;
        }
        let row = match answer {
            Ok(Some(c)) => (partition, c.offset, c.leader_epoch, c.metadata, 0),
            Ok(None) => (partition, -1, -1, String::new(), 0),
            Err(error) => (partition, -1, -1, String::new(), error.code()),
        };
        out.entry(topic).or_default().push(row);
    }
    out
}

pub(super) fn handle(ctx: &Ctx<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let authz = ctx.authz();
    if ctx.version >= 8 {
        let groups = request
            .groups
            .iter()
            .map(|g| {
                let wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (owned(&t.name.0), t.partition_indexes.clone()))
                        .collect()
                });
                let group_id = owned(&g.group_id.0);
                let allowed = authz
                    .check(Describe, ResourceType::Group, &group_id)
                    .and_then(|()| ctx.broker.groups.group(&group_id).map_err(|e| e.error()))
                    .and_then(|handle| {
                        handle
                            .check_fetch(g.member_id.as_ref().map(|m| m.as_str()), g.member_epoch)
                            .map(|()| handle)
                    });
                let handle = match allowed {
                    Ok(handle) => handle,
                    Err(denied) => {
                        return OffsetFetchResponseGroup::default()
                            .with_group_id(GroupId(g.group_id.0.clone()))
                            .with_error_code(denied.code())
                    }
                };
                let topics = lookup(&handle, wanted, request.require_stable, &authz)
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(p, offset, epoch, metadata, error)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_error_code(error)
                                            .with_partition_index(p)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(str_bytes(metadata)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(g.group_id.0.clone()))
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let group_id = owned(&request.group_id.0);
    if let Err(denied) = authz.check(Describe, ResourceType::Group, &group_id) {
        return OffsetFetchResponse::default().with_error_code(denied.code());
    }
    let handle = match ctx.broker.groups.group(&group_id) {
        Ok(handle) => handle,
        Err(e) => return OffsetFetchResponse::default().with_error_code(e.code()),
    };
    let wanted = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (owned(&t.name.0), t.partition_indexes.clone()))
            .collect()
    });
    let topics = lookup(&handle, wanted, request.require_stable, &authz)
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, offset, epoch, metadata, error)| {
                            let partition = OffsetFetchResponsePartition::default()
                                .with_error_code(error)
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_metadata(Some(str_bytes(metadata)));
                            if ctx.version >= 5 {
                                partition.with_committed_leader_epoch(epoch)
                            } else {
                                partition
                            }
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
