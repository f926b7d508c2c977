//! ConsumerGroupHeartbeat (key 68): joins, heartbeats and leaves of KIP-848 consumer groups.
//! Every answer is immediate; the assignment comes back in the heartbeats that follow. What
//! changed in the group is appended to `__consumer_offsets` (Kafka's record types 3 to 8)
//! before the answer.

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::{owned, str_bytes, Ctx};
use crate::broker::now_ms;
use crate::group::consumer::{Heartbeat, TopicInfo, Topics};
use crate::group::records;

/// The metadata image as the group sees it: internal topics are never subscribed to.
struct Image(std::sync::Arc<controller::MetadataImage>);

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
    if let Some(code) = ctx.broker.coordinator_error(&group_id) {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_member_epoch(-1);
    }
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
    let now = now_ms();
    // Resolved first: creating `__consumer_offsets` must not happen under the group lock.
    let partition = ctx.broker.offsets_partition(&group_id);
    // Records are queued under the group lock, in the order the group made them, and
    // awaited after it: the answer waits for them to be written.
    let queued = parking_lot::Mutex::new(Vec::new());
    let write = |records: &[(Bytes, Option<Bytes>)]| match &partition {
        Ok(p) => {
            queued
                .lock()
                .push(p.append(records::batch(records, now), -1));
            Ok(())
        }
        Err(_) => Err(ResponseError::CoordinatorNotAvailable.code()),
    };
    let mut outcome =
        ctx.broker
            .groups
            .consumer_heartbeat(&group_id, ctx.version, heartbeat, &topics, &write);
    for written in futures::future::join_all(queued.into_inner()).await {
        if let Err(error) = written {
            tracing::warn!(group = %group_id, %error, "writing consumer group records failed");
            outcome = Err((error.kafka_error().code(), error.to_string()));
        }
    }
    match outcome {
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
        Err((code, message)) => {
            tracing::debug!(group = %group_id, member = %member_id, code, %message, "consumer group heartbeat refused");
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(code)
                .with_error_message(Some(str_bytes(message)))
                .with_member_id((!member_id.is_empty()).then(|| str_bytes(member_id)))
                .with_member_epoch(-1)
        }
    }
}
