//! DescribeLogDirs (key 35): this node's log directory (`log.dirs`, its first entry, the one
//! Strata uses) with the size of each partition replica in it, its offset lag (how far the
//! log end is below the high watermark, 0 on a leader) and, from v4, the file system's total
//! and usable bytes. Asked-for topics and partitions filter the answer; null asks for all.
//! Strata never moves a replica between directories, so no replica is a future one.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::{owned, str_bytes, Ctx};

pub(super) fn handle(ctx: &Ctx<'_>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if let Err(denied) = super::check_cluster(ctx, controller::acl::AclOperation::Describe) {
        return DescribeLogDirsResponse::default().with_error_code(denied.code());
    }
    let wanted: Option<HashSet<(String, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                let name = owned(&t.topic.0);
                t.partitions.iter().map(move |&p| (name.clone(), p))
            })
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for partition in ctx.broker.all_partitions() {
        if let Some(wanted) = &wanted {
            if !wanted.contains(&(partition.topic.clone(), partition.index)) {
                continue;
            }
        }
        let log = &partition.log;
        let lag = (log.high_watermark() - log.log_end_offset()).max(0);
        by_topic.entry(partition.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(partition.index)
                .with_partition_size(i64::try_from(log.size_in_bytes()).unwrap_or(i64::MAX))
                .with_offset_lag(lag)
                .with_is_future_key(false),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(str_bytes(name)))
                .with_partitions(partitions)
        })
        .collect();
    let log_dir = ctx.broker.log_dir();
    let path = std::fs::canonicalize(log_dir.path()).unwrap_or_else(|_| log_dir.path().to_owned());
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(path.display().to_string()))
        .with_topics(topics);
    match log_dir.space() {
        Ok((total, usable)) => {
            result = result
                .with_total_bytes(i64::try_from(total).unwrap_or(i64::MAX))
                .with_usable_bytes(i64::try_from(usable).unwrap_or(i64::MAX));
        }
        Err(error) => {
            // Kafka answers an unreadable directory with KAFKA_STORAGE_ERROR and no topics.
            tracing::warn!(dir = %path.display(), %error, "statvfs of the log directory failed");
            result = DescribeLogDirsResult::default()
                .with_log_dir(str_bytes(path.display().to_string()))
                .with_error_code(ResponseError::KafkaStorageError.code())
                .with_total_bytes(-1)
                .with_usable_bytes(-1);
        }
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}
