//! Raft traffic to other voters over tonic: openraft's messages, JSON-encoded in the
//! `Raft` service of `proto/controller.proto`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::AnyError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

use super::{Node, TypeConfig, Vote};
use crate::rpc::pb;
use crate::rpc::pb::raft_client::RaftClient;

type Snapshot = openraft::alias::SnapshotOf<TypeConfig, Vec<u8>>;

/// Makes one [`Connection`] per target voter, over TLS with `tls` when given.
#[derive(Debug, Default)]
pub(crate) struct Network {
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, node: &Node) -> Connection {
        Connection {
            target,
            client: crate::rpc::lazy_channel(&node.addr, self.tls.as_ref()).map(RaftClient::new),
        }
    }
}

/// A lazily connected, automatically reconnecting channel to one voter.
#[derive(Debug)]
pub(crate) struct Connection {
    target: u64,
    /// `Err` when the voter's address is not a valid URI.
    client: Result<RaftClient<Channel>, String>,
}

/// The request and response halves of the wire envelope.
#[derive(Serialize, serde::Deserialize)]
struct InstallSnapshot {
    vote: Vote,
    meta: openraft::alias::SnapshotMetaOf<TypeConfig>,
    data: Vec<u8>,
}

impl Connection {
    /// Sends `request` with `call` and decodes the remote `Result<Resp, String>`.
    async fn call<Req, Resp, F, Fut>(
        &mut self,
        request: &Req,
        ttl: Duration,
        call: F,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(RaftClient<Channel>, pb::RaftPayload) -> Fut,
        Fut: Future<Output = Result<tonic::Response<pb::RaftPayload>, tonic::Status>>,
    {
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(reason) => {
                return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(
                    reason,
                ))))
            }
        };
        let json = serde_json::to_vec(request).map_err(|e| network_error(&e))?;
        let reply = tokio::time::timeout(ttl, call(client, pb::RaftPayload { json }))
            .await
            .map_err(|_| {
                RPCError::Unreachable(Unreachable::new(&AnyError::error(format!(
                    "no answer from voter {} within {ttl:?}",
                    self.target
                ))))
            })?
            .map_err(|status| match status.code() {
                tonic::Code::Unavailable | tonic::Code::Unknown => {
                    RPCError::Unreachable(Unreachable::new(&status))
                }
                _ => network_error(&status),
            })?;
        let decoded: Result<Resp, String> =
            serde_json::from_slice(&reply.into_inner().json).map_err(|e| network_error(&e))?;
        decoded.map_err(|remote| network_error(&AnyError::error(remote)))
    }
}

fn network_error(error: &(impl std::error::Error + 'static)) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::new(error))
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, option.hard_ttl(), |mut c, p| async move {
            c.append_entries(p).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, option.hard_ttl(), |mut c, p| async move {
            c.vote(p).await
        })
        .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let request = InstallSnapshot {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        let ttl = option.hard_ttl().max(Duration::from_secs(30));
        self.call(&request, ttl, |mut c, p| async move {
            c.install_snapshot(p).await
        })
        .await
        .map_err(|e| match e {
            RPCError::Unreachable(u) => StreamingError::Unreachable(u),
            RPCError::Timeout(t) => StreamingError::Timeout(t),
            RPCError::Network(n) => StreamingError::Network(n),
            RPCError::RemoteError(r) => {
                StreamingError::Network(NetworkError::new(&AnyError::error(r.to_string())))
            }
        })
    }

    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(100))))
    }
}

/// The server half: decodes a request envelope, runs it on the local Raft, encodes the
/// outcome.
pub(crate) mod serve {
    use super::*;
    use crate::raft::Raft;

    fn decode<T: DeserializeOwned>(payload: &pb::RaftPayload) -> Result<T, tonic::Status> {
        serde_json::from_slice(&payload.json)
            .map_err(|e| tonic::Status::invalid_argument(format!("undecodable Raft message: {e}")))
    }

    fn encode<T: Serialize, E: std::fmt::Display>(
        result: Result<T, E>,
    ) -> Result<pb::RaftPayload, tonic::Status> {
        let result = result.map_err(|e| e.to_string());
        serde_json::to_vec(&result)
            .map(|json| pb::RaftPayload { json })
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }

    pub(crate) async fn append_entries(
        raft: &Raft,
        payload: &pb::RaftPayload,
    ) -> Result<pb::RaftPayload, tonic::Status> {
        encode(raft.append_entries(decode(payload)?).await)
    }

    pub(crate) async fn vote(
        raft: &Raft,
        payload: &pb::RaftPayload,
    ) -> Result<pb::RaftPayload, tonic::Status> {
        encode(raft.vote(decode(payload)?).await)
    }

    pub(crate) async fn install_snapshot(
        raft: &Raft,
        payload: &pb::RaftPayload,
    ) -> Result<pb::RaftPayload, tonic::Status> {
        let request: InstallSnapshot = decode(payload)?;
        let snapshot = Snapshot {
            meta: request.meta,
            snapshot: request.data,
        };
        encode(raft.install_full_snapshot(request.vote, snapshot).await)
    }
}
