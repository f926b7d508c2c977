//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, for clients and replicas
//! that must check a log for divergence.
//!
//! Answered from the log's leader epoch cache, as Kafka does: the largest epoch at or below
//! the one asked for and the offset where it ends (the next epoch's start, or the log end).
//! Followers (`replica_id` ≥ 0) ask this before fetching in a new leader epoch.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{owned, Ctx};

pub(super) fn handle(
    ctx: &Ctx<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // Kafka: a follower needs CLUSTER_ACTION on the cluster, a client DESCRIBE on the topic.
    let authz = ctx.authz();
    let follower_allowed = request.replica_id.0 >= 0
        && authz.allows_cluster(controller::acl::AclOperation::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = owned(&topic.topic.0);
            let allowed = if request.replica_id.0 >= 0 {
                follower_allowed
            } else {
                authz.allows(
                    controller::acl::AclOperation::Describe,
                    controller::acl::ResourceType::Topic,
                    &name,
                )
            };
            let local = ctx.broker.topic(&name).filter(|_| allowed);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let led = match &local {
                        Some(t) => t.led(p.partition),
                        None if !allowed => Err(ResponseError::TopicAuthorizationFailed),
                        None => Err(ResponseError::UnknownTopicOrPartition),
                    };
                    let partition = match led {
                        Ok(partition) => partition,
                        Err(error) => return response.with_error_code(error.code()),
                    };
                    if let Err(error) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return response.with_error_code(error.code());
                    }
                    let (epoch, end_offset) = partition.log.end_offset_for_epoch(p.leader_epoch);
                    response
                        .with_leader_epoch(epoch)
                        .with_end_offset(end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
