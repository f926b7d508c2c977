//! DescribeQuorum (key 55): the metadata quorum, as KRaft describes its
//! `__cluster_metadata` partition: leader, term (leader epoch), high watermark, and each
//! voter's log end offset and last contact, from the Raft membership (KIP-853); controllers
//! that receive the log without a vote and brokers that only follow the metadata are
//! observers. v2 adds each voter's directory id and its controller endpoint (`nodes`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};

use super::{owned, str_bytes, Ctx};

/// KRaft's metadata topic, the only one DescribeQuorum knows.
const METADATA_TOPIC: &str = "__cluster_metadata";

pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    if let Err(denied) = super::check_cluster(ctx, controller::acl::AclOperation::Describe) {
        return DescribeQuorumResponse::default().with_error_code(denied.code());
    }
    let asked_right = request.topics.iter().all(|t| {
        owned(&t.topic_name.0) == METADATA_TOPIC
            && t.partitions.iter().all(|p| p.partition_index == 0)
    });
    if !asked_right {
        return DescribeQuorumResponse::default()
            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
    }
    let quorum = match ctx.broker.controller().quorum().await {
        Ok(quorum) => quorum,
        Err(error) => {
            tracing::warn!(%error, "describing the metadata quorum failed");
            let mut response = DescribeQuorumResponse::default()
                .with_error_code(ResponseError::CoordinatorNotAvailable.code());
            if ctx.version >= 2 {
                response = response.with_error_message(Some(str_bytes(error.to_string())));
            }
            return response;
        }
    };
    let now = crate::broker::now_ms();
    let v1 = ctx.version >= 1;
    let replica = |id: i32,
                   directory: Option<controller::Uuid>,
                   log_end: Option<u64>,
                   contact_ms_ago: Option<u64>| {
        let mut state = ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(log_end.map_or(-1, |o| o as i64));
        if ctx.version >= 2 {
            state = state.with_replica_directory_id(directory.unwrap_or_default());
        }
        if v1 {
            let seen = contact_ms_ago.map_or(-1, |ago| now - ago as i64);
            state = state
                .with_last_fetch_timestamp(seen)
                .with_last_caught_up_timestamp(seen);
        }
        state
    };
    let voters: Vec<ReplicaState> = quorum
        .voters
        .iter()
        .map(|v| {
            replica(
                v.node_id,
                v.directory_id,
                v.log_end_offset,
                v.last_contact_ms_ago,
            )
        })
        .collect();
    let image = ctx.broker.image();
    let mut observers: Vec<ReplicaState> = quorum
        .observers
        .iter()
        .map(|o| {
            replica(
                o.node_id,
                o.directory_id,
                o.log_end_offset,
                o.last_contact_ms_ago,
            )
        })
        .collect();
    observers.extend(
        image
            .live_brokers()
            .filter(|b| {
                !quorum.voters.iter().any(|v| v.node_id == b.node_id)
                    && !quorum.observers.iter().any(|o| o.node_id == b.node_id)
            })
            .map(|b| replica(b.node_id, None, None, None)),
    );
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(quorum.leader_id.unwrap_or(-1)))
        .with_leader_epoch(i32::try_from(quorum.term).unwrap_or(i32::MAX))
        .with_high_watermark(quorum.high_watermark as i64)
        .with_current_voters(voters)
        .with_observers(observers);
    let mut response = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(str_bytes(METADATA_TOPIC.to_owned())))
        .with_partitions(vec![partition])]);
    if ctx.version >= 2 {
        let nodes = quorum
            .voters
            .iter()
            .chain(&quorum.observers)
            .filter_map(|v| {
                let (host, port) = v.address.rsplit_once(':')?;
                Some(
                    Node::default()
                        .with_node_id(BrokerId(v.node_id))
                        .with_listeners(vec![Listener::default()
                            .with_name(str_bytes("CONTROLLER".to_owned()))
                            .with_host(str_bytes(host.to_owned()))
                            .with_port(port.parse().ok()?)]),
                )
            })
            .collect();
        response = response.with_nodes(nodes);
    }
    response
}
