//! ConsumerGroupHeartbeat (key 68): joins, heartbeats and leaves of KIP-848 consumer groups.
//! Every answer is immediate; the assignment comes back in the heartbeats that follow. What
//! changed in the group is appended to `__consumer_offsets` (Kafka's record types 3 to 8)
//! before the answer.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::{owned, str_bytes, Ctx};
use crate::broker::now_ms;
use coordinator::group::consumer::{Heartbeat, TopicInfo, Topics};

/// The metadata image as the group sees it: internal topics are never subscribed to.
pub(super) struct Image(pub(super) std::sync::Arc<controller::MetadataImage>);

impl Topics for Image {
    fn get(&self, name: &str) -> Option<TopicInfo> {
        self.0
            .topic(name)
            .filter(|t| !t.internal)
            .map(|t| TopicInfo {
                id: t.topic_id,
                partitions: t.partitions.len() as i32,
            })
    }

    fn names(&self) -> Vec<String> {
        self.0
            .topics()
            .filter(|t| !t.internal)
            .map(|t| t.name.clone())
            .collect()
    }
}

pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group_id = owned(&request.group_id.0);
    let authz = ctx.authz();
    // As Kafka: READ on the group, then DESCRIBE on every topic subscribed to by name.
    let topics_described = || {
        let mut names = request.subscribed_topic_names.iter().flatten();
        let described = names.all(|name| {
            authz.allows(
                controller::acl::AclOperation::Describe,
                controller::acl::ResourceType::Topic,
                &name.0,
            )
        });
        if described {
            Ok(())
        } else {
            Err(kafka_protocol::error::ResponseError::TopicAuthorizationFailed)
        }
    };
    let group = match authz
        .check(
            controller::acl::AclOperation::Read,
            controller::acl::ResourceType::Group,
            &group_id,
        )
        .and_then(|()| topics_described())
        .and_then(|()| ctx.broker.groups.group(&group_id).map_err(|e| e.error()))
    {
        Ok(group) => group,
        Err(e) => {
            return ConsumerGroupHeartbeatResponse::default()
                .with_error_code(e.code())
                .with_member_epoch(-1)
        }
    };
    let heartbeat = Heartbeat {
        member_id: owned(&request.member_id),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(owned),
        rack_id: request.rack_id.as_ref().map(owned),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| owned(&n.0)).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.as_ref().map(owned),
        server_assignor: request.server_assignor.as_ref().map(owned),
        owned: request.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .map(|tp| (tp.topic_id, tp.partitions.clone()))
                .collect()
        }),
        client_id: ctx.client_id.clone(),
        client_host: ctx.peer.to_owned(),
    };
    let topics = Image(ctx.broker.image());
    let member_id = heartbeat.member_id.clone();
    match group
        .consumer_heartbeat(ctx.version, heartbeat, &topics, now_ms())
        .await
    {
        Ok(reply) => {
            let assignment = reply.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic_id, partitions)| {
                            TopicPartitions::default()
                                .with_topic_id(topic_id)
                                .with_partitions(partitions.into_iter().collect())
                        })
                        .collect(),
                )
            });
            ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(str_bytes(reply.member_id)))
                .with_member_epoch(reply.member_epoch)
                .with_heartbeat_interval_ms(reply.heartbeat_interval_ms)
                .with_assignment(assignment)
        }
        Err((error, message)) => {
            tracing::debug!(group = %group_id, member = %member_id, ?error, %message, "consumer group heartbeat refused");
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(message)))
                .with_member_id((!member_id.is_empty()).then(|| str_bytes(member_id)))
                .with_member_epoch(-1)
        }
    }
}
