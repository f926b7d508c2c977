//! OffsetFetch (key 9): a group's committed offsets, for one group or many (v8+). From v9 a
//! member of a consumer-protocol group names itself and its epoch, which are checked. With
//! `require_stable` (v7+, read_committed consumers) a partition whose offset a transaction
//! has written but not yet ended answers UNSTABLE_OFFSET_COMMIT, so the client asks again
//! instead of resuming from an offset that transaction is about to replace.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{owned, str_bytes, Ctx};
use coordinator::group::records::CommittedOffset;
use coordinator::GroupHandle;
use kafka_protocol::error::ResponseError;

/// One partition's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fetched {
    partition: i32,
    /// -1 where nothing is committed (or the offset is unstable).
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    error_code: i16,
}

/// The answer per partition, by topic.
type Answer = BTreeMap<String, Vec<Fetched>>;

fn lookup(
    group: &GroupHandle<'_>,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Answer {
    let committed = group.committed();
    let show = |topic: &str, partition: i32, c: Option<&CommittedOffset>| {
        if require_stable && group.has_pending_txn_offset(&(topic.to_owned(), partition)) {
            return Fetched {
                partition,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
                error_code: ResponseError::UnstableOffsetCommit.code(),
            };
        }
        match c {
            Some(c) => Fetched {
                partition,
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone(),
                error_code: 0,
            },
            None => Fetched {
                partition,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
                error_code: 0,
            },
        }
    };
    let mut out = Answer::new();
    match wanted {
        None => {
            for ((topic, partition), c) in &committed {
                out.entry(topic.clone())
                    .or_default()
                    .push(show(topic, *partition, Some(c)));
            }
        }
        Some(topics) => {
            for (topic, partitions) in topics {
                let fetched = partitions
                    .into_iter()
                    .map(|p| show(&topic, p, committed.get(&(topic.clone(), p))))
                    .collect::<Vec<_>>();
                out.entry(topic).or_default().extend(fetched);
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
                let allowed = ctx
                    .broker
                    .groups
                    .group(&group_id)
                    .map_err(|e| e.error())
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
                let topics = lookup(&handle, wanted, request.require_stable)
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|f| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(f.partition)
                                            .with_committed_offset(f.offset)
                                            .with_committed_leader_epoch(f.leader_epoch)
                                            .with_metadata(Some(str_bytes(f.metadata)))
                                            .with_error_code(f.error_code)
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
    let handle = match ctx.broker.groups.group(&group_id) {
        Ok(handle) => handle,
        Err(e) => return OffsetFetchResponse::default().with_error_code(e.code()),
    };
    let wanted = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (owned(&t.name.0), t.partition_indexes.clone()))
            .collect()
    });
    // `require_stable` is read as false below v7.
    let topics = lookup(&handle, wanted, request.require_stable)
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|f| {
                            let partition = OffsetFetchResponsePartition::default()
                                .with_partition_index(f.partition)
                                .with_committed_offset(f.offset)
                                .with_metadata(Some(str_bytes(f.metadata)))
                                .with_error_code(f.error_code);
                            if ctx.version >= 5 {
                                partition.with_committed_leader_epoch(f.leader_epoch)
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
