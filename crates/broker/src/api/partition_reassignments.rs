//! AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46): move
//! partitions to new replica lists, cancel a move, and list the moves in progress. A move
//! adds the new replicas, waits until every target replica is in the ISR, then drops the
//! old ones (the controller completes it when the leader reports the ISR).

use controller::Command;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::create_topics::Rejected;
use super::{owned, str_bytes, Ctx};

pub(super) async fn alter(
    ctx: &Ctx<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if let Err(denied) = super::check_cluster(ctx, controller::acl::AclOperation::Alter) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(denied.code())
            .with_error_message(Some(str_bytes("Authorization failed.")));
    }
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = owned(&topic.name.0);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let target = p
                .replicas
                .as_ref()
                .map(|r| r.iter().map(|b| b.0).collect::<Vec<i32>>());
            let changes_factor = match (&target, ctx.broker.image().topic(&name)) {
                (Some(t), Some(meta)) => meta.partition(p.partition_index).is_some_and(|m| {
                    let original = m.replicas.len() - m.adding_replicas.len();
                    t.len() != original
                }),
                _ => false,
            };
            let result = if changes_factor && !request.allow_replication_factor_change {
                Err(Rejected::new(
                    ResponseError::InvalidReplicationFactor,
                    "the move changes the replication factor",
                ))
            } else {
                let command = Command::AlterReassignments {
                    reassignments: vec![(name.clone(), p.partition_index, target)],
                };
                ctx.broker
                    .submit(command)
                    .await
                    .map(|_| ())
                    .map_err(Rejected::from)
            };
            let mut response =
                ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
            if let Err(rejected) = result {
                response = response
                    .with_error_code(rejected.error.code())
                    .with_error_message(Some(str_bytes(rejected.message)));
            }
            partitions.push(response);
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses)
}

pub(super) fn list(
    ctx: &Ctx<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if let Err(denied) = super::check_cluster(ctx, controller::acl::AclOperation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(denied.code())
            .with_error_message(Some(str_bytes("Authorization failed.")));
    }
    let image = ctx.broker.image();
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| t.name.0.as_str() == topic && t.partition_indexes.contains(&partition)),
    };
    let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
    let topics = image
        .shared_topics()
        .filter_map(|t| {
            let partitions: Vec<OngoingPartitionReassignment> = t
                .partitions
                .iter()
                .filter(|p| !p.adding_replicas.is_empty() || !p.removing_replicas.is_empty())
                .filter(|p| wanted(&t.name, p.partition))
                .map(|p| {
                    OngoingPartitionReassignment::default()
                        .with_partition_index(p.partition)
                        .with_replicas(ids(&p.replicas))
                        .with_adding_replicas(ids(&p.adding_replicas))
                        .with_removing_replicas(ids(&p.removing_replicas))
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                OngoingTopicReassignment::default()
                    .with_name(kafka_protocol::messages::TopicName(str_bytes(
                        t.name.clone(),
                    )))
                    .with_partitions(partitions)
            })
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
