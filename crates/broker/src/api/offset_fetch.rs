//! OffsetFetch (key 9): a group's committed offsets, for one group or many (v8+). From v9 a
//! member of a consumer-protocol group names itself and its epoch, which are checked.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use controller::acl::{AclOperation::Describe, ResourceType};
use kafka_protocol::error::ResponseError;

use super::{owned, str_bytes, Ctx};
use coordinator::group::records::CommittedOffset;
use coordinator::GroupHandle;

/// (offset, leader epoch, metadata, error code) per partition, by topic; -1 where nothing
/// is committed.
type Answer = BTreeMap<String, Vec<(i32, i64, i32, String, i16)>>;

/// The committed offsets of `wanted` (every topic when `None`). As Kafka, topics the
/// request may not DESCRIBE are left out of "every topic" and answer
/// TOPIC_AUTHORIZATION_FAILED when named.
fn lookup(
    group: &GroupHandle<'_>,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    authz: &super::Authz<'_>,
) -> Answer {
    let may_describe = |topic: &str| authz.allows(Describe, ResourceType::Topic, topic);
    let committed = group.committed();
    let show = |c: Option<&CommittedOffset>| match c {
        Some(c) => (c.offset, c.leader_epoch, c.metadata.clone()),
        None => (-1, -1, String::new()),
    };
    let mut out = Answer::new();
    match wanted {
        None => {
            for ((topic, partition), c) in &committed {
                if !may_describe(topic) {
                    continue;
                }
                let (offset, epoch, metadata) = show(Some(c));
                out.entry(topic.clone())
                    .or_default()
                    .push((*partition, offset, epoch, metadata, 0));
            }
        }
        Some(topics) => {
            for (topic, partitions) in topics {
                let denied = !may_describe(&topic);
                let entry = out.entry(topic.clone()).or_default();
                for p in partitions {
                    if denied {
                        let code = ResponseError::TopicAuthorizationFailed.code();
                        entry.push((p, -1, -1, String::new(), code));
                        continue;
                    }
                    let (offset, epoch, metadata) = show(committed.get(&(topic.clone(), p)));
                    entry.push((p, offset, epoch, metadata, 0));
                }
            }
        }
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
                let topics = lookup(&handle, wanted, &authz)
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
    let topics = lookup(&handle, wanted, &authz)
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
