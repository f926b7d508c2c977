//! OffsetFetch (key 9): a group's committed offsets, for one group or many (v8+). From v9 a
//! member of a consumer-protocol group names itself and its epoch, which are checked. With
//! `require_stable` (v7+) offsets a transaction has pending answer UNSTABLE_OFFSET_COMMIT.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{owned, str_bytes, Ctx};
use coordinator::group::records::CommittedOffset;
use coordinator::GroupHandle;

/// One partition of an answer: -1 offset and epoch where nothing is committed, and where
/// `error` is UNSTABLE_OFFSET_COMMIT.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    error: i16,
}

/// Rows by topic.
type Answer = BTreeMap<String, Vec<Row>>;

/// The committed offsets of the `wanted` partitions (all committed ones if `None`). With
/// `require_stable` (v7+, sent by read_committed consumers), a partition whose offset a
/// transaction has pending (`pending`) answers UNSTABLE_OFFSET_COMMIT instead, as in Kafka, so
/// that the client asks again once the transaction completed rather than reading the offset
/// from before it.
fn lookup(
    committed: &BTreeMap<(String, i32), CommittedOffset>,
    pending: impl Fn(&(String, i32)) -> bool,
    require_stable: bool,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Answer {
    let row = |key: &(String, i32)| {
        if require_stable && pending(key) {
            return Row {
                partition: key.1,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
                error: ResponseError::UnstableOffsetCommit.code(),
            };
        }
        match committed.get(key) {
            Some(c) => Row {
                partition: key.1,
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone(),
                error: 0,
            },
            None => Row {
                partition: key.1,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
                error: 0,
            },
        }
    };
    let mut out = Answer::new();
    match wanted {
        None => {
            for key in committed.keys() {
                out.entry(key.0.clone()).or_default().push(row(key));
            }
        }
        Some(topics) => {
            for (topic, partitions) in topics {
                let entry = out.entry(topic.clone()).or_default();
                for p in partitions {
                    entry.push(row(&(topic.clone(), p)));
                }
            }
        }
    }
    out
}

/// [`lookup`] of `group`'s offsets.
fn lookup_group(
    group: &GroupHandle<'_>,
    require_stable: bool,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Answer {
    let (committed, pending) = group.committed_and_pending();
    lookup(
        &committed,
        |key| pending.contains(key),
        require_stable,
        wanted,
    )
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
                let topics = lookup_group(&handle, request.require_stable, wanted)
                    .into_iter()
                    .map(|(topic, partitions)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(str_bytes(topic)))
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|row| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(row.partition)
                                            .with_committed_offset(row.offset)
                                            .with_committed_leader_epoch(row.leader_epoch)
                                            .with_metadata(Some(str_bytes(row.metadata)))
                                            .with_error_code(row.error)
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
    // require_stable is a v7 field (false when decoded from older versions).
    let topics = lookup_group(&handle, request.require_stable, wanted)
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(str_bytes(topic)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|row| {
                            let partition = OffsetFetchResponsePartition::default()
                                .with_partition_index(row.partition)
                                .with_committed_offset(row.offset)
                                .with_metadata(Some(str_bytes(row.metadata)))
                                .with_error_code(row.error);
                            if ctx.version >= 5 {
                                partition.with_committed_leader_epoch(row.leader_epoch)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 0,
        }
    }

    fn offsets() -> BTreeMap<(String, i32), CommittedOffset> {
        [
            (("t".to_owned(), 0), committed(10)),
            (("t".to_owned(), 1), committed(20)),
        ]
        .into_iter()
        .collect()
    }

    fn pending_p0(key: &(String, i32)) -> bool {
        key == &("t".to_owned(), 0)
    }

    #[test]
    fn a_pending_transactional_offset_is_unstable_only_when_stable_offsets_are_required() {
        let wanted = || Some(vec![("t".to_owned(), vec![0, 1, 2])]);
        let stable = lookup(&offsets(), pending_p0, true, wanted());
        let rows = &stable["t"];
        assert_eq!(rows[0].error, ResponseError::UnstableOffsetCommit.code());
        assert_eq!((rows[0].offset, rows[0].leader_epoch), (-1, -1));
        assert_eq!((rows[1].offset, rows[1].error), (20, 0));
        assert_eq!((rows[2].offset, rows[2].error), (-1, 0));

        let loose = lookup(&offsets(), pending_p0, false, wanted());
        assert_eq!((loose["t"][0].offset, loose["t"][0].error), (10, 0));
        assert_eq!(loose["t"][0].metadata, "m");
    }

    #[test]
    fn all_offsets_with_require_stable_mark_the_pending_ones() {
        let all = lookup(&offsets(), pending_p0, true, None);
        let errors: Vec<(i32, i16)> = all["t"].iter().map(|r| (r.partition, r.error)).collect();
        assert_eq!(
            errors,
            vec![(0, ResponseError::UnstableOffsetCommit.code()), (1, 0)]
        );
    }
}
