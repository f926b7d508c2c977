//! Request dispatch: one module per Kafka API, named after it.
//!
//! [`handle_frame`] peeks the api key and version, answers an ApiVersions of a version we do
//! not know with a v0 body (KIP-511), closes the connection on anything it cannot decode, and
//! hands the decoded request to its handler. Handlers answer with Kafka error codes, never a
//! Rust error, for anything the client got wrong.

mod alter_configs;
mod api_versions;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_quorum;
mod elect_leaders;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_offsets_v0;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod partition_reassignments;
mod produce;
mod produce_legacy;
mod splice;
mod sync_group;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use tracing::Instrument as _;

use crate::server::Peer;
use crate::Broker;

/// What the connection does after a request.
pub(crate) enum Reply {
    /// Write this frame (length prefix included).
    Frame(Bytes),
    /// Write these pieces of one frame, in order.
    Pieces(Vec<Bytes>),
    /// Nothing to write (Produce with acks=0).
    Nothing,
    /// The reply once this resolves (acks=all waiting for replication). Later requests of
    /// the connection are handled meanwhile; replies still leave in request order.
    Deferred(futures::future::BoxFuture<'static, Reply>),
    /// Close the connection: the request could not be understood.
    Close,
}

/// The APIs this broker serves and the versions it advertises. Produce advertises v0-v2 as
/// Apache Kafka does (KAFKA-18659) and answers them with UNSUPPORTED_VERSION.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 0, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// Versions of `key` this broker decodes, if it serves the API at all.
fn decodable_versions(key: ApiKey) -> Option<(i16, i16)> {
    let (_, min, max) = SUPPORTED.iter().find(|(k, _, _)| *k == key)?;
    // Produce v0-2 and ListOffsets v0 are answered by hand (produce_legacy, list_offsets_v0).
    let min = match key {
        ApiKey::Produce => 3,
        ApiKey::ListOffsets => 1,
        _ => *min,
    };
    Some((min, *max))
}

/// Answers one request frame.
pub(crate) async fn handle_frame(
    broker: &Arc<Broker>,
    mut frame: Bytes,
    peer: &Peer,
    read_ahead: crate::partition::Hold,
) -> Reply {
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(key) else {
        tracing::debug!(key, "unknown api key; closing the connection");
        return Reply::Close;
    };
    let Some((min, max)) = decodable_versions(api_key) else {
        tracing::debug!(?api_key, "api not served; closing the connection");
        return Reply::Close;
    };
    if api_key == ApiKey::Produce && (0..3).contains(&version) {
        return produce_legacy::handle(frame, version);
    }
    if api_key == ApiKey::ListOffsets && version == 0 {
        return list_offsets_v0::handle(broker, frame);
    }
    if !(min..=max).contains(&version) {
        if api_key == ApiKey::ApiVersions {
            return encode_response(
                api_key,
                0,
                correlation_id,
                api_versions::unsupported_version().into(),
            );
        }
        tracing::debug!(
            ?api_key,
            version,
            "unsupported version; closing the connection"
        );
        return Reply::Close;
    }
    let header = match RequestHeader::decode(&mut frame, api_key.request_header_version(version)) {
        Ok(header) => header,
        Err(error) => {
            tracing::debug!(?api_key, version, %error, "undecodable request header");
            return Reply::Close;
        }
    };
    let request = match RequestKind::decode(api_key, &mut frame, version) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(?api_key, version, %error, "undecodable request body");
            return Reply::Close;
        }
    };
    let client_id = header
        .client_id
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    let ctx = Ctx {
        broker,
        version,
        client_id,
        peer: &peer.host,
        read_ahead,
    };
    let span = tracing::info_span!(
        "request",
        api = ?api_key,
        version,
        correlation_id = header.correlation_id,
        client_id = %ctx.client_id,
        connection = %peer.addr,
    );
    let dispatch = async {
        let response: ResponseKind = match request {
            RequestKind::ApiVersions(r) => api_versions::handle(&ctx, r).into(),
            RequestKind::Metadata(r) => metadata::handle(&ctx, r).await.into(),
            RequestKind::Produce(r) => match produce::handle(&ctx, r) {
                produce::Outcome::NoResponse => return Reply::Nothing,
                produce::Outcome::Later(response) => {
                    let correlation_id = header.correlation_id;
                    return Reply::Deferred(Box::pin(async move {
                        encode_response(api_key, version, correlation_id, response.await.into())
                    }));
                }
            },
            RequestKind::Fetch(r) => {
                let mut response = fetch::handle(&ctx, r).await;
                let splicer = splice::Splicer::detach_fetch_records(&mut response);
                return match encode_response(
                    api_key,
                    version,
                    header.correlation_id,
                    response.into(),
                ) {
                    Reply::Frame(frame) => Reply::Pieces(splicer.splice(frame, version >= 12)),
                    other => other,
                };
            }
            RequestKind::ListOffsets(r) => list_offsets::handle(&ctx, r).into(),
            RequestKind::OffsetForLeaderEpoch(r) => offset_for_leader_epoch::handle(&ctx, r).into(),
            RequestKind::CreateTopics(r) => create_topics::handle(&ctx, r).await.into(),
            RequestKind::DeleteTopics(r) => delete_topics::handle(&ctx, r).await.into(),
            RequestKind::CreatePartitions(r) => create_partitions::handle(&ctx, r).await.into(),
            RequestKind::DeleteRecords(r) => delete_records::handle(&ctx, r).into(),
            RequestKind::InitProducerId(r) => init_producer_id::handle(&ctx, r).await.into(),
            RequestKind::DescribeConfigs(r) => describe_configs::handle(&ctx, r).into(),
            RequestKind::AlterConfigs(r) => alter_configs::handle_legacy(&ctx, r).await.into(),
            RequestKind::IncrementalAlterConfigs(r) => {
                alter_configs::handle_incremental(&ctx, r).await.into()
            }
            RequestKind::DescribeCluster(r) => describe_cluster::handle(&ctx, r).into(),
            RequestKind::DescribeQuorum(r) => describe_quorum::handle(&ctx, r).await.into(),
            RequestKind::ElectLeaders(r) => elect_leaders::handle(&ctx, r).await.into(),
            RequestKind::AlterPartitionReassignments(r) => {
                partition_reassignments::alter(&ctx, r).await.into()
            }
            RequestKind::ListPartitionReassignments(r) => {
                partition_reassignments::list(&ctx, r).into()
            }
            RequestKind::FindCoordinator(r) => find_coordinator::handle(&ctx, r).await.into(),
            RequestKind::JoinGroup(r) => join_group::handle(&ctx, r).await.into(),
            RequestKind::SyncGroup(r) => sync_group::handle(&ctx, r).await.into(),
            RequestKind::Heartbeat(r) => heartbeat::handle(&ctx, r).into(),
            RequestKind::LeaveGroup(r) => leave_group::handle(&ctx, r).into(),
            RequestKind::OffsetCommit(r) => offset_commit::handle(&ctx, r).await.into(),
            RequestKind::OffsetFetch(r) => offset_fetch::handle(&ctx, r).into(),
            RequestKind::ListGroups(r) => list_groups::handle(&ctx, r).into(),
            RequestKind::DescribeGroups(r) => describe_groups::handle(&ctx, r).into(),
            RequestKind::DeleteGroups(r) => delete_groups::handle(&ctx, r).await.into(),
            RequestKind::OffsetDelete(r) => offset_delete::handle(&ctx, r).await.into(),
            RequestKind::ConsumerGroupHeartbeat(r) => {
                consumer_group_heartbeat::handle(&ctx, r).await.into()
            }
            RequestKind::ConsumerGroupDescribe(r) => {
                consumer_group_describe::handle(&ctx, r).into()
            }
            _ => return Reply::Close,
        };
        encode_response(api_key, version, header.correlation_id, response)
    };
    match dispatch.instrument(span.clone()).await {
        Reply::Deferred(later) => Reply::Deferred(Box::pin(later.instrument(span))),
        reply => reply,
    }
}

/// What every handler gets besides its request.
pub(crate) struct Ctx<'a> {
    pub(crate) broker: &'a Arc<Broker>,
    /// The request's api version.
    pub(crate) version: i16,
    /// The client id from the request header.
    pub(crate) client_id: String,
    /// The client's address, as Kafka shows it (`/127.0.0.1`).
    pub(crate) peer: &'a str,
    /// The request's share of its connection's read-ahead budget: whatever keeps request
    /// bytes past the handler (a queued append) keeps this too.
    pub(crate) read_ahead: crate::partition::Hold,
}

fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: ResponseKind,
) -> Reply {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(&mut buf, api_key.response_header_version(version))
        .and_then(|()| body.encode(&mut buf, version));
    if let Err(error) = encoded {
        tracing::error!(?api_key, version, %error, "response could not be encoded");
        return Reply::Close;
    }
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Reply::Frame(buf.freeze())
}

/// Copies a string out of a request frame so that keeping it does not keep the frame alive.
pub(crate) fn owned(s: &kafka_protocol::protocol::StrBytes) -> String {
    s.as_str().to_owned()
}

/// A response string that owns its bytes.
pub(crate) fn str_bytes(s: impl Into<String>) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.into())
}
