//! OffsetForLeaderEpoch (key 23): the end offset of a leader epoch, for clients and replicas
//! that must check a log for divergence.
//!
//! A single node keeps one leader epoch per partition for the life of the topic, so the
//! current epoch ends at the log end offset and a later one is unknown.

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
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = owned(&topic.topic.0);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let Some(partition) = ctx.broker.partition(&name, p.partition) else {
                        return response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let current = match partition.check_leader_epoch(p.current_leader_epoch) {
                        Ok(epoch) => epoch,
                        Err(code) => return response.with_error_code(code),
                    };
                    if p.leader_epoch > current {
                        return response;
                    }
                    response
                        .with_leader_epoch(current.min(p.leader_epoch.max(0)))
                        .with_end_offset(partition.log.log_end_offset())
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
