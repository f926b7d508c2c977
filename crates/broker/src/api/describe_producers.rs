//! DescribeProducers (key 61): the idempotent producers with state in each asked-for
//! partition, from the partition leader's producer state. A partition led elsewhere is
//! NOT_LEADER_OR_FOLLOWER, an unknown one UNKNOWN_TOPIC_OR_PARTITION, as in Kafka. The
//! transaction start offset is the first offset of the producer's open transaction in the
//! partition (-1 when none is open): what `kafka-transactions.sh abort --start-offset`
//! looks for.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::{owned, Ctx};

pub(super) fn handle(
    ctx: &Ctx<'_>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let authz = ctx.authz();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let name = owned(&topic.name.0);
            let denied = authz
                .check(
                    controller::acl::AclOperation::Read,
                    controller::acl::ResourceType::Topic,
                    &name,
                )
                .err();
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    match denied.map_or_else(|| ctx.broker.partition(&name, index), Err) {
                        Ok(partition) => response.with_active_producers(
                            partition
                                .active_producers()
                                .into_iter()
                                .map(|p| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(i32::from(p.epoch))
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_timestamp)
                                        .with_coordinator_epoch(p.coordinator_epoch)
                                        .with_current_txn_start_offset(p.current_txn_start_offset)
                                })
                                .collect(),
                        ),
                        Err(error) => response.with_error_code(error.code()),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
