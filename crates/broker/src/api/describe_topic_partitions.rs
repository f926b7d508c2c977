//! DescribeTopicPartitions (key 75, KIP-966): topics and their partitions from the metadata
//! image, paginated as Kafka's `DescribeTopicPartitionsRequestHandler` does. Topics are
//! answered in name order from the cursor's topic and partition on; at most
//! `response_partition_limit` partitions (capped at Kafka's
//! `max.request.partition.size.limit` default, 2000, and at least 1) are returned, and
//! `next_cursor` names where the next page starts. An empty topic list asks for every
//! topic and leaves out the names that do not exist.

use std::collections::BTreeSet;

use controller::{MetadataImage, TopicMeta};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};

use super::{owned, str_bytes, Ctx};

/// Kafka's `max.request.partition.size.limit` default: the most partitions one response
/// holds, whatever the request asks.
const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

pub(super) fn handle(
    ctx: &Ctx<'_>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = ctx.broker.image();
    let authz = ctx.authz();
    let may_describe = |name: &str| {
        authz.allows(
            controller::acl::AclOperation::Describe,
            controller::acl::ResourceType::Topic,
            name,
        )
    };
    let operations = |name: &str| authz.operations(controller::acl::ResourceType::Topic, name);
    describe(&image, &request, &may_describe, &operations)
}

/// The answer from `image`; as Kafka, topics `may_describe` refuses are left out of "every
/// topic" and answer TOPIC_AUTHORIZATION_FAILED when named. A topic described has
/// `operations(name)` as its authorized operations (always computed, as in Kafka).
fn describe(
    image: &MetadataImage,
    request: &DescribeTopicPartitionsRequest,
    may_describe: &dyn Fn(&str) -> bool,
    operations: &dyn Fn(&str) -> i32,
) -> DescribeTopicPartitionsResponse {
    let all_topics = request.topics.is_empty();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (owned(&c.topic_name.0), c.partition_index));
    let from = cursor.as_ref().map_or("", |(topic, _)| topic.as_str());
    let names: BTreeSet<String> = if all_topics {
        image
            .topics()
            .map(|t| t.name.clone())
            .filter(|n| n.as_str() >= from && may_describe(n))
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| owned(&t.name.0))
            .filter(|n| n.as_str() >= from)
            .collect()
    };
    let invalid = |message: String| {
        tracing::debug!(%message, "invalid DescribeTopicPartitions request");
        // Kafka's error response: every asked-for topic with INVALID_REQUEST.
        DescribeTopicPartitionsResponse::default().with_topics(
            request
                .topics
                .iter()
                .map(|t| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(t.name.clone()))
                        .with_error_code(ResponseError::InvalidRequest.code())
                })
                .collect(),
        )
    };
    if let Some((topic, partition)) = &cursor {
        if !all_topics && !names.contains(topic) {
            return invalid(format!(
                "the topic list should contain the cursor topic {topic}"
            ));
        }
        if *partition < 0 {
            return invalid(format!("the cursor partition must be valid: {partition}"));
        }
    }
    let mut remaining = request
        .response_partition_limit
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partition_index(0),
            );
            break;
        }
        if !may_describe(&name) {
            response.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_name(Some(TopicName(str_bytes(name.clone())))),
            );
            continue;
        }
        let Some(topic) = image.topic(&name) else {
            if !all_topics {
                let error = match controller::validate_topic_name(&name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                response.topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(error.code())
                        .with_name(Some(TopicName(str_bytes(name.clone()))))
                        .with_is_internal(controller::is_internal_topic(&name)),
                );
            }
            continue;
        };
        let start = match &cursor {
            Some((topic, partition)) if *topic == name => *partition,
            _ => 0,
        };
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let upper = count.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..upper)
            .filter_map(|p| topic.partition(p))
            .map(|p| describe_partition(image, p))
            .collect();
        remaining -= i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        response.topics.push(
            describe_topic(topic, partitions)
                .with_topic_authorized_operations(operations(&topic.name)),
        );
        if upper < count {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partition_index(upper),
            );
            break;
        }
    }
    response
}

fn describe_topic(
    topic: &TopicMeta,
    partitions: Vec<DescribeTopicPartitionsResponsePartition>,
) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name.clone()))))
        .with_topic_id(topic.topic_id)
        .with_is_internal(topic.internal)
        .with_partitions(partitions)
}

fn describe_partition(
    image: &MetadataImage,
    p: &controller::PartitionMeta,
) -> DescribeTopicPartitionsResponsePartition {
    let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let offline: Vec<BrokerId> = p
        .replicas
        .iter()
        .filter(|&&r| image.broker(r).is_none())
        .copied()
        .map(BrokerId)
        .collect();
    let leader_live = image.broker(p.leader).is_some_and(|b| !b.fenced);
    let partition = DescribeTopicPartitionsResponsePartition::default()
        .with_partition_index(p.partition)
        .with_leader_epoch(p.leader_epoch)
        .with_replica_nodes(ids(&p.replicas))
        .with_isr_nodes(ids(&p.isr))
        .with_eligible_leader_replicas(Some(Vec::new()))
        .with_last_known_elr(Some(Vec::new()))
        .with_offline_replicas(offline);
    if leader_live {
        partition.with_leader_id(BrokerId(p.leader))
    } else {
        partition
            .with_error_code(ResponseError::LeaderNotAvailable.code())
            .with_leader_id(BrokerId(-1))
    }
}
