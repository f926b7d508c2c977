//! OffsetFetch (key 9): a group's committed offsets, for one group or many (v8+). From v9 a
//! member of a consumer-protocol group names itself and its epoch, which are checked.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{owned, str_bytes, Ctx};
use crate::group::records::CommittedOffset;

/// (offset, leader epoch, metadata) per partition, by topic; -1 where nothing is committed.
type Answer = BTreeMap<String, Vec<(i32, i64, i32, String)>>;

fn lookup(ctx: &Ctx<'_>, group: &str, wanted: Option<Vec<(String, Vec<i32>)>>) -> Answer {
    let committed = ctx.broker.groups.committed(group);
    let show = |c: Option<&CommittedOffset>| match c {
        Some(c) => (c.offset, c.leader_epoch, c.metadata.clone()),
        None => (-1, -1, String::new()),
    };
    let mut out = Answer::new();
    match wanted {
        None => {
            for ((topic, partition), c) in &committed {
                let (offset, epoch, metadata) = show(Some(c));
                out.entry(topic.clone())
                    .or_default()
                    .push((*partition, offset, epoch, metadata));
            }
        }
        Some(topics) => {
            for (topic, partitions) in topics {
                let entry = out.entry(topic.clone()).or_default();
                for p in partitions {
                    let (offset, epoch, metadata) = show(committed.get(&(topic.clone(), p)));
                    entry.push((p, offset, epoch, metadata));
                }
            }
        }
    }
    out
}

pub(super) fn handle(ctx: &Ctx<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
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
                let denied = ctx.broker.coordinator_error(&group_id).unwrap_or_else(|| {
                    ctx.broker.groups.check_fetch(
                        &group_id,
                        g.member_id.as_ref().map(|m| m.as_str()),
                        g.member_epoch,
                    )
                });
                if denied != 0 {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(GroupId(g.group_id.0.clone()))
                        .with_error_code(denied);
                }
                let topics = lookup(ctx, &group_id, wanted)
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(p, offset, epoch, metadata)| {
                                        OffsetFetchResponsePartitions::default()
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
    if let Some(code) = ctx.broker.coordinator_error(request.group_id.0.as_str()) {
        return OffsetFetchResponse::default().with_error_code(code);
    }
    let wanted = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (owned(&t.name.0), t.partition_indexes.clone()))
            .collect()
    });
    let topics = lookup(ctx, &owned(&request.group_id.0), wanted)
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, offset, epoch, metadata)| {
                            let partition = OffsetFetchResponsePartition::default()
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
