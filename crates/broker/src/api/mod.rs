//! Request dispatch: one module per Kafka API, named after it.
//!
//! [`handle_frame`] peeks the api key and version, answers an ApiVersions of a version we do
//! not know with a v0 body (KIP-511), closes the connection on anything it cannot decode, and
//! hands the decoded request to its handler. Handlers answer with Kafka error codes, never a
//! Rust error, for anything the client got wrong.

mod acls;
mod alter_configs;
mod api_versions;
mod client_quotas;
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
mod describe_log_dirs;
mod describe_producers;
mod describe_quorum;
mod describe_topic_partitions;
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
mod quota_path;
mod raft_voters;
mod scram_credentials;
mod splice;
mod sync_group;
mod transactions;
mod update_features;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use tracing::Instrument as _;

use crate::server::Peer;
use crate::Broker;
use quota_path::MutationQuota;

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
    (ApiKey::Produce, 0, 12),
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
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::UpdateFeatures, 0, 2),
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
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 0, 1),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::AddRaftVoter, 0, 0),
    (ApiKey::RemoveRaftVoter, 0, 0),
    (ApiKey::UpdateRaftVoter, 0, 0),
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

/// What a request frame decodes to, before any broker state is touched.
// A request is decoded once and moved straight into its handler; boxing it would cost an
// allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A request of a served API and version, decoded by kafka-protocol.
    Request {
        api_key: ApiKey,
        version: i16,
        header: RequestHeader,
        body: RequestKind,
    },
    /// Produce v0-v2, answered from the frame by `produce_legacy`.
    LegacyProduce { version: i16, frame: Bytes },
    /// ListOffsets v0, answered from the frame by `list_offsets_v0`.
    ListOffsetsV0 { frame: Bytes },
    /// ApiVersions of a version this broker does not know: answered with a v0 body (KIP-511).
    UnknownApiVersions { correlation_id: i32 },
    /// Anything else; the connection is closed.
    Undecodable,
}

/// Decodes one request frame (without its length prefix). Pure and total: any bytes give a
/// [`Decoded`], never a panic (`crate::fuzz` checks this).
pub(crate) fn decode_request(mut frame: Bytes) -> Decoded {
    if frame.len() < 8 {
        return Decoded::Undecodable;
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api_key) = ApiKey::try_from(key) else {
        tracing::debug!(key, "unknown api key; closing the connection");
        return Decoded::Undecodable;
    };
    let Some((min, max)) = decodable_versions(api_key) else {
        tracing::debug!(?api_key, "api not served; closing the connection");
        return Decoded::Undecodable;
    };
    if api_key == ApiKey::Produce && (0..3).contains(&version) {
        return Decoded::LegacyProduce { version, frame };
    }
    if api_key == ApiKey::ListOffsets && version == 0 {
        return Decoded::ListOffsetsV0 { frame };
    }
    if !(min..=max).contains(&version) {
        if api_key == ApiKey::ApiVersions {
            return Decoded::UnknownApiVersions { correlation_id };
        }
        tracing::debug!(
            ?api_key,
            version,
            "unsupported version; closing the connection"
        );
        return Decoded::Undecodable;
    }
    let header = match RequestHeader::decode(&mut frame, api_key.request_header_version(version)) {
        Ok(header) => header,
        Err(error) => {
            tracing::debug!(?api_key, version, %error, "undecodable request header");
            return Decoded::Undecodable;
        }
    };
    match RequestKind::decode(api_key, &mut frame, version) {
        Ok(body) => Decoded::Request {
            api_key,
            version,
            header,
            body,
        },
        Err(error) => {
            tracing::debug!(?api_key, version, %error, "undecodable request body");
            Decoded::Undecodable
        }
    }
}

/// Everything [`handle_frame`] does with `frame` before it needs a broker: the decode, and
/// the hand-written answers and decoders of ApiVersions of an unknown version, Produce v0-v2
/// and ListOffsets v0. Returns the decoded request of any other served API. For
/// [`crate::fuzz`].
pub(crate) fn decode_without_broker(frame: Bytes) -> Option<RequestKind> {
    match decode_request(frame) {
        Decoded::Request { body, .. } => Some(body),
        Decoded::LegacyProduce { version, frame } => {
            let _reply = produce_legacy::handle(frame, version);
            None
        }
        Decoded::ListOffsetsV0 { frame } => {
            let _topics = list_offsets_v0::decode(frame);
            None
        }
        Decoded::UnknownApiVersions { correlation_id } => {
            let _reply = encode_response(
                ApiKey::ApiVersions,
                0,
                correlation_id,
                api_versions::unsupported_version().into(),
            );
            None
        }
        Decoded::Undecodable => None,
    }
}

/// Answers one request frame.
pub(crate) async fn handle_frame(
    broker: &Arc<Broker>,
    frame: Bytes,
    peer: &Peer,
    read_ahead: crate::partition::Hold,
) -> Reply {
    let frame_len = frame.len();
    let (api_key, version, header, request) = match decode_request(frame) {
        Decoded::Request {
            api_key,
            version,
            header,
            body,
        } => (api_key, version, header, body),
        Decoded::LegacyProduce { version, frame } => return produce_legacy::handle(frame, version),
        Decoded::ListOffsetsV0 { frame } => {
            let authz = Authz::new(broker, &peer.principal, &peer.host);
            return list_offsets_v0::handle(broker, frame, &authz);
        }
        Decoded::UnknownApiVersions { correlation_id } => {
            return encode_response(
                ApiKey::ApiVersions,
                0,
                correlation_id,
                api_versions::unsupported_version().into(),
            );
        }
        Decoded::Undecodable => return Reply::Close,
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
        principal: &peer.principal,
        listener: &peer.listener.config.name,
        read_ahead,
    };
    let span = tracing::info_span!(
        "request",
        api = ?api_key,
        version,
        correlation_id = header.correlation_id,
        client_id = %ctx.client_id,
        connection = %peer.addr,
        principal = %peer.principal,
    );
    // Requests between brokers are not held to client quotas.
    let exempt = match &request {
        RequestKind::Fetch(r) => quota_path::fetch_replica_id(r, version) >= 0,
        RequestKind::WriteTxnMarkers(_) => true,
        _ => false,
    };
    let dispatch = async {
        let response: ResponseKind = match request {
            RequestKind::ApiVersions(r) => api_versions::handle(&ctx, r).into(),
            RequestKind::Metadata(r) => metadata::handle(&ctx, r).await.into(),
            RequestKind::Produce(r) => {
                // Kafka's produce quota counts the whole request's bytes, acks=0 included.
                let throttle = quota_path::produce(broker, peer, &ctx.client_id, frame_len);
                match produce::handle(&ctx, r).await {
                    produce::Outcome::NoResponse => return Reply::Nothing,
                    produce::Outcome::Later(response) => {
                        let correlation_id = header.correlation_id;
                        return Reply::Deferred(Box::pin(async move {
                            let mut response = response.await;
                            response.throttle_time_ms = throttle;
                            encode_response(api_key, version, correlation_id, response.into())
                        }));
                    }
                }
            }
            RequestKind::Fetch(mut r) => {
                let quota = quota_path::fetch_quota(broker, peer, &ctx.client_id, &mut r, version);
                let mut response = fetch::handle(&ctx, r).await;
                if let Some(quota) = quota {
                    response = quota_path::throttle_fetch(broker, peer, &quota, response, version);
                }
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
            RequestKind::CreateTopics(r) => {
                let mut quota = MutationQuota::new(broker, peer, &ctx.client_id, version >= 6);
                let response = create_topics::handle(&ctx, r, &mut quota).await;
                response.with_throttle_time_ms(quota.finish(peer)).into()
            }
            RequestKind::DeleteTopics(r) => {
                let mut quota = MutationQuota::new(broker, peer, &ctx.client_id, version >= 5);
                let response = delete_topics::handle(&ctx, r, &mut quota).await;
                response.with_throttle_time_ms(quota.finish(peer)).into()
            }
            RequestKind::CreatePartitions(r) => {
                let mut quota = MutationQuota::new(broker, peer, &ctx.client_id, version >= 3);
                let response = create_partitions::handle(&ctx, r, &mut quota).await;
                response.with_throttle_time_ms(quota.finish(peer)).into()
            }
            RequestKind::DeleteRecords(r) => delete_records::handle(&ctx, r).into(),
            RequestKind::InitProducerId(r) => init_producer_id::handle(&ctx, r).await.into(),
            RequestKind::DescribeConfigs(r) => describe_configs::handle(&ctx, r).into(),
            RequestKind::AlterConfigs(r) => alter_configs::handle_legacy(&ctx, r).await.into(),
            RequestKind::IncrementalAlterConfigs(r) => {
                alter_configs::handle_incremental(&ctx, r).await.into()
            }
            RequestKind::DescribeCluster(r) => describe_cluster::handle(&ctx, r).into(),
            RequestKind::DescribeQuorum(r) => describe_quorum::handle(&ctx, r).await.into(),
            RequestKind::AddRaftVoter(r) => raft_voters::add(&ctx, r).await.into(),
            RequestKind::RemoveRaftVoter(r) => raft_voters::remove(&ctx, r).await.into(),
            RequestKind::UpdateRaftVoter(r) => raft_voters::update(&ctx, r).await.into(),
            RequestKind::DescribeLogDirs(r) => describe_log_dirs::handle(&ctx, r).into(),
            RequestKind::DescribeProducers(r) => describe_producers::handle(&ctx, r).into(),
            RequestKind::DescribeTopicPartitions(r) => {
                describe_topic_partitions::handle(&ctx, r).into()
            }
            RequestKind::UpdateFeatures(r) => update_features::handle(&ctx, r).await.into(),
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
            RequestKind::AddPartitionsToTxn(r) => {
                transactions::add_partitions(&ctx, r).await.into()
            }
            RequestKind::AddOffsetsToTxn(r) => transactions::add_offsets(&ctx, r).await.into(),
            RequestKind::EndTxn(r) => transactions::end(&ctx, r).await.into(),
            RequestKind::WriteTxnMarkers(r) => transactions::write_markers(&ctx, r).await.into(),
            RequestKind::TxnOffsetCommit(r) => transactions::offset_commit(&ctx, r).await.into(),
            RequestKind::DescribeTransactions(r) => transactions::describe(&ctx, r).into(),
            RequestKind::ListTransactions(r) => transactions::list(&ctx, r).into(),
            // On a listener without SASL, or after authentication (`server/sasl.rs` answers
            // them before): Kafka's ILLEGAL_SASL_STATE.
            RequestKind::SaslHandshake(_) => {
                kafka_protocol::messages::SaslHandshakeResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .into()
            }
            RequestKind::SaslAuthenticate(_) => {
                kafka_protocol::messages::SaslAuthenticateResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "SaslAuthenticate request received after successful authentication",
                    )))
                    .into()
            }
            RequestKind::DescribeUserScramCredentials(r) => {
                scram_credentials::describe(&ctx, r).into()
            }
            RequestKind::AlterUserScramCredentials(r) => {
                scram_credentials::alter(&ctx, r).await.into()
            }
            RequestKind::DescribeClientQuotas(r) => client_quotas::describe(&ctx, r).into(),
            RequestKind::AlterClientQuotas(r) => client_quotas::alter(&ctx, r).await.into(),
            RequestKind::DescribeAcls(r) => acls::describe(&ctx, r).into(),
            RequestKind::CreateAcls(r) => acls::create(&ctx, r).await.into(),
            RequestKind::DeleteAcls(r) => acls::delete(&ctx, r).await.into(),
            _ => return Reply::Close,
        };
        encode_response(api_key, version, header.correlation_id, response)
    };
    // The request quota counts the time the handler spends on the worker (its polls), up
    // to its reply or deferral; with no quota set anywhere, nothing is timed.
    let dispatch = std::pin::pin!(dispatch.instrument(span.clone()));
    let reply = if exempt || !broker.image().has_client_quotas() {
        dispatch.await
    } else {
        let (reply, busy) = quota_path::PollTime::new(dispatch).await;
        quota_path::request_time(broker, peer, &ctx.client_id, busy);
        reply
    };
    match reply {
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
    /// The connection's principal (`User:ANONYMOUS`, `User:alice`).
    pub(crate) principal: &'a str,
    /// The name of the listener the request came in on: Metadata, FindCoordinator and
    /// DescribeCluster answer with that listener's endpoints.
    pub(crate) listener: &'a str,
    /// The request's share of its connection's read-ahead budget: whatever keeps request
    /// bytes past the handler (a queued append) keeps this too.
    pub(crate) read_ahead: crate::partition::Hold,
}

impl Ctx<'_> {
    /// The checks of this request against the ACLs: everything is allowed without an
    /// authorizer. Handlers take one per request and ask it before touching a resource.
    pub(crate) fn authz(&self) -> Authz<'_> {
        Authz::new(self.broker, self.principal, self.peer)
    }
}

/// `authorized_operations` of a request that did not ask for them (Kafka's `INT32_MIN`).
pub(crate) const OPERATIONS_NOT_ASKED: i32 = i32::MIN;

/// One request's authorization checks (see [`Ctx::authz`]): the authorizer, the ACLs of the
/// image current when the request arrived, and who asks.
pub(crate) struct Authz<'a> {
    checked: Option<(
        &'a crate::authorizer::Authorizer,
        Arc<controller::MetadataImage>,
        crate::authorizer::Requester<'a>,
    )>,
}

impl<'a> Authz<'a> {
    /// The checks of a request of `principal` from `peer` (`/127.0.0.1`).
    fn new(broker: &'a Broker, principal: &'a str, peer: &'a str) -> Authz<'a> {
        Authz {
            checked: broker.authorizer.as_ref().map(|authorizer| {
                (
                    authorizer,
                    broker.image(),
                    crate::authorizer::Requester {
                        principal,
                        host: peer.trim_start_matches('/'),
                    },
                )
            }),
        }
    }

    /// Whether the request may do `operation` on the resource `name` of `resource_type`.
    pub(crate) fn allows(
        &self,
        operation: controller::acl::AclOperation,
        resource_type: controller::acl::ResourceType,
        name: &str,
    ) -> bool {
        self.checked
            .as_ref()
            .is_none_or(|(authorizer, image, who)| {
                authorizer.authorize(image.acls(), *who, operation, resource_type, name)
            })
    }

    /// Whether the request may do `operation` on the cluster.
    /// Kafka's `authorized_operations` of the resource `name` of `resource_type`: the
    /// bitfield of its supported operations this request may do (all of them with no
    /// authorizer).
    pub(crate) fn operations(
        &self,
        resource_type: controller::acl::ResourceType,
        name: &str,
    ) -> i32 {
        crate::authorizer::operations_bitfield(
            crate::authorizer::supported_operations(resource_type)
                .iter()
                .copied()
                .filter(|&op| self.allows(op, resource_type, name)),
        )
    }

    /// [`Self::operations`] when the request asked for them (`asked`), else Kafka's
    /// "not asked" value (`i32::MIN`).
    pub(crate) fn operations_if(
        &self,
        asked: bool,
        resource_type: controller::acl::ResourceType,
        name: &str,
    ) -> i32 {
        if asked {
            self.operations(resource_type, name)
        } else {
            OPERATIONS_NOT_ASKED
        }
    }

    pub(crate) fn allows_cluster(&self, operation: controller::acl::AclOperation) -> bool {
        self.allows(
            operation,
            controller::acl::ResourceType::Cluster,
            controller::acl::CLUSTER_NAME,
        )
    }

    /// Whether the request may do `operation` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`).
    pub(crate) fn allows_any(
        &self,
        operation: controller::acl::AclOperation,
        resource_type: controller::acl::ResourceType,
    ) -> bool {
        self.checked
            .as_ref()
            .is_none_or(|(authorizer, image, who)| {
                authorizer.authorize_any(image.acls(), *who, operation, resource_type)
            })
    }

    /// `error` unless the request may do `operation` on `name` of `resource_type`.
    pub(crate) fn check(
        &self,
        operation: controller::acl::AclOperation,
        resource_type: controller::acl::ResourceType,
        name: &str,
    ) -> Result<(), ResponseError> {
        if self.allows(operation, resource_type, name) {
            Ok(())
        } else {
            Err(denied(resource_type))
        }
    }
}

/// CLUSTER_AUTHORIZATION_FAILED unless the request may do `operation` on the cluster: the
/// check of the cluster-wide APIs, answered with that error as a whole.
pub(crate) fn check_cluster(
    ctx: &Ctx<'_>,
    operation: controller::acl::AclOperation,
) -> Result<(), ResponseError> {
    if ctx.authz().allows_cluster(operation) {
        Ok(())
    } else {
        Err(ResponseError::ClusterAuthorizationFailed)
    }
}

/// Kafka's error for a request refused on a resource of `resource_type`.
pub(crate) fn denied(resource_type: controller::acl::ResourceType) -> ResponseError {
    use controller::acl::ResourceType;
    match resource_type {
        ResourceType::Topic => ResponseError::TopicAuthorizationFailed,
        ResourceType::Group => ResponseError::GroupAuthorizationFailed,
        ResourceType::TransactionalId => ResponseError::TransactionalIdAuthorizationFailed,
        ResourceType::DelegationToken => ResponseError::DelegationTokenAuthorizationFailed,
        ResourceType::Cluster | ResourceType::User => ResponseError::ClusterAuthorizationFailed,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A request frame (no length prefix) with header v1 (`flexible`: v2) and `body`.
    fn frame(key: ApiKey, version: i16, flexible: bool, body: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(key as i16);
        out.put_i16(version);
        out.put_i32(7);
        out.put_i16(1);
        out.put_slice(b"c");
        if flexible {
            out.put_u8(0); // no tagged fields
        }
        out.put_slice(body);
        out.freeze()
    }

    /// kafka-protocol 0.18.0 sized a Vec by the count on the wire: these frames asked for
    /// up to hundreds of GB, and where that allocation failed the process aborted (see
    /// vendor/kafka-protocol/STRATA-PATCH.md).
    #[test]
    fn forged_array_counts_are_refused_without_allocating() {
        let forged = [
            frame(ApiKey::CreateTopics, 4, false, &i32::MAX.to_be_bytes()),
            frame(
                ApiKey::CreateTopics,
                7,
                true,
                &[0xff, 0xff, 0xff, 0xff, 0x0f],
            ),
            frame(ApiKey::Metadata, 0, false, &[0x03, 0x3c, 0x0c, 0x00, 0xb6]),
        ];
        for frame in forged {
            assert!(matches!(decode_request(frame), Decoded::Undecodable));
        }
    }

    #[test]
    fn short_frames_and_unknown_versions_decode_without_panicking() {
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 18, 0])),
            Decoded::Undecodable
        ));
        assert!(matches!(
            decode_request(frame(ApiKey::ApiVersions, 99, false, &[])),
            Decoded::UnknownApiVersions { correlation_id: 7 }
        ));
        assert!(matches!(
            decode_request(frame(ApiKey::Produce, 2, false, &[])),
            Decoded::LegacyProduce { version: 2, .. }
        ));
        assert!(matches!(
            decode_request(frame(ApiKey::Metadata, 1, false, &0i32.to_be_bytes())),
            Decoded::Request {
                api_key: ApiKey::Metadata,
                version: 1,
                ..
            }
        ));
    }
}
