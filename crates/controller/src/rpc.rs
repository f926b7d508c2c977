//! The tonic side of `proto/controller.proto`: generated types, channels to voters, and
//! the two services a voter serves (Raft between voters; Controller for brokers).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::command::Command;
use crate::node::{Attempt, Controller};
use crate::raft::state_machine::Change;
use crate::raft::{network::serve, Raft};

/// Types and stubs generated from `proto/controller.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    missing_debug_implementations,
    clippy::all
)]
pub(crate) mod pb {
    tonic::include_proto!("strata.controller.v1");
}

/// A channel to `host:port` that connects on first use and reconnects after failures, over
/// TLS with `tls` when given. HTTP/2 pings every 250 ms find a connection that went silent
/// (a peer cut off the network, or paused) within about a second, so it is replaced instead
/// of timing out every call.
pub(crate) fn lazy_channel(
    address: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| format!("bad controller address {address}: {e}"))?
        .connect_timeout(std::time::Duration::from_millis(500))
        .http2_keep_alive_interval(std::time::Duration::from_millis(250))
        .keep_alive_timeout(std::time::Duration::from_millis(750))
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    Ok(match tls {
        None => endpoint.connect_lazy(),
        Some(config) => {
            endpoint.connect_with_connector_lazy(crate::tls::connector(address, config))
        }
    })
}

/// The Raft service: openraft messages from other voters.
pub(crate) struct RaftService {
    pub(crate) raft: Raft,
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        serve::append_entries(&self.raft, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn vote(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        serve::vote(&self.raft, request.get_ref())
            .await
            .map(Response::new)
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        serve::install_snapshot(&self.raft, request.get_ref())
            .await
            .map(Response::new)
    }
}

/// The Controller service: brokers register, heartbeat, follow metadata and submit
/// commands here.
pub(crate) struct ControllerService {
    pub(crate) controller: Controller,
}

fn json_error(e: serde_json::Error) -> Status {
    Status::invalid_argument(format!("undecodable JSON: {e}"))
}

/// The reply to one submission attempt made on this voter.
fn submit_reply(
    attempt: Result<(crate::Applied, u64), Attempt>,
) -> Result<pb::SubmitReply, Status> {
    use pb::submit_reply::Outcome;
    let outcome = match attempt {
        Ok(accepted) => Outcome::AppliedJson(serde_json::to_vec(&accepted).map_err(json_error)?),
        Err(Attempt::Rejected(rejection)) => {
            Outcome::RejectionJson(serde_json::to_vec(&rejection).map_err(json_error)?)
        }
        Err(Attempt::NotLeader(hint)) => Outcome::NotLeader(hint),
        Err(Attempt::Unavailable(reason)) => return Err(Status::unavailable(reason)),
    };
    Ok(pb::SubmitReply {
        outcome: Some(outcome),
    })
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<pb::MetadataUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl pb::controller_server::Controller for ControllerService {
    async fn register_broker(
        &self,
        request: Request<pb::RegisterBrokerRequest>,
    ) -> Result<Response<pb::SubmitReply>, Status> {
        let r = request.into_inner();
        let port = u16::try_from(r.port).map_err(|_| Status::invalid_argument("port"))?;
        let command = Command::RegisterBroker {
            node_id: r.node_id,
            host: r.host,
            port,
            rack: r.rack,
            listeners: Vec::new(),
        };
        let attempt = self.controller.submit_here(command).await;
        if attempt.is_ok() {
            self.controller.renew_lease(r.node_id);
        }
        submit_reply(attempt).map(Response::new)
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        use pb::heartbeat_reply::Outcome;
        let node_id = request.get_ref().node_id;
        let outcome = match self.controller.heartbeat_here(node_id) {
            Ok(fenced) => Outcome::Fenced(fenced),
            Err(hint) => Outcome::NotLeader(hint),
        };
        Ok(Response::new(pb::HeartbeatReply {
            outcome: Some(outcome),
        }))
    }

    type WatchStream = UpdateStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let from = request.get_ref().from_index;
        let published = self.controller.published();
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let (mut changes, backlog) = published.changes_since(from);
            let mut sent = from;
            let send_image = |sent: &mut u64| {
                let image = published.image();
                *sent = image.applied_index();
                serde_json::to_vec(&*image).map(|json| pb::MetadataUpdate {
                    index: image.applied_index(),
                    update: Some(pb::metadata_update::Update::ImageJson(json)),
                })
            };
            let command_update = |index: u64, command: &Command| {
                serde_json::to_vec(command).map(|json| pb::MetadataUpdate {
                    index,
                    update: Some(pb::metadata_update::Update::CommandJson(json)),
                })
            };
            let first: Vec<Result<pb::MetadataUpdate, serde_json::Error>> = match backlog {
                Some(commands) => commands
                    .iter()
                    .map(|(index, command)| {
                        sent = *index;
                        command_update(*index, command)
                    })
                    .collect(),
                None => vec![send_image(&mut sent)],
            };
            for update in first {
                if tx.send(update.map_err(json_error)).await.is_err() {
                    return;
                }
            }
            loop {
                let update = match changes.recv().await {
                    Ok(Change::Command(index, _)) if index <= sent => continue,
                    Ok(Change::Command(index, command)) if index == sent + 1 => {
                        sent = index;
                        command_update(index, &command)
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => send_image(&mut sent),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(update.map_err(json_error)).await.is_err() {
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream) as UpdateStream))
    }

    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitReply>, Status> {
        let command: Command =
            serde_json::from_slice(&request.get_ref().command_json).map_err(json_error)?;
        submit_reply(self.controller.submit_here(command).await).map(Response::new)
    }

    async fn describe_quorum(
        &self,
        _request: Request<pb::DescribeQuorumRequest>,
    ) -> Result<Response<pb::QuorumState>, Status> {
        let quorum = self
            .controller
            .local_quorum()
            .ok_or_else(|| Status::failed_precondition("this node is not a metadata voter"))?;
        Ok(Response::new(quorum_to_pb(&quorum)))
    }

    async fn change_voters(
        &self,
        request: Request<pb::VoterChangeRequest>,
    ) -> Result<Response<pb::VoterChangeReply>, Status> {
        use pb::voter_change_reply::Outcome;
        let change = crate::node::VoterChange::from_pb(request.into_inner())
            .map_err(Status::invalid_argument)?;
        let outcome = match self.controller.change_voters_here(change).await {
            Ok(()) => Outcome::Done(true),
            Err(Attempt::Rejected(rejection)) => {
                Outcome::RejectionJson(serde_json::to_vec(&rejection).map_err(json_error)?)
            }
            Err(Attempt::NotLeader(hint)) => Outcome::NotLeader(hint),
            Err(Attempt::Unavailable(reason)) => return Err(Status::unavailable(reason)),
        };
        Ok(Response::new(pb::VoterChangeReply {
            outcome: Some(outcome),
        }))
    }
}

fn voter_to_pb(v: &crate::VoterInfo) -> pb::VoterState {
    pb::VoterState {
        node_id: v.node_id,
        address: v.address.clone(),
        log_end_offset: v.log_end_offset,
        last_contact_ms_ago: v.last_contact_ms_ago,
        directory_id: v.directory_id.map(|d| d.to_string()),
    }
}

fn voter_from_pb(v: pb::VoterState) -> crate::VoterInfo {
    crate::VoterInfo {
        node_id: v.node_id,
        address: v.address,
        log_end_offset: v.log_end_offset,
        last_contact_ms_ago: v.last_contact_ms_ago,
        directory_id: v.directory_id.and_then(|d| d.parse().ok()),
    }
}

pub(crate) fn quorum_to_pb(q: &crate::QuorumInfo) -> pb::QuorumState {
    pb::QuorumState {
        leader_id: q.leader_id,
        term: q.term,
        high_watermark: q.high_watermark,
        voters: q.voters.iter().map(voter_to_pb).collect(),
        observers: q.observers.iter().map(voter_to_pb).collect(),
    }
}

pub(crate) fn quorum_from_pb(q: pb::QuorumState) -> crate::QuorumInfo {
    crate::QuorumInfo {
        leader_id: q.leader_id,
        term: q.term,
        high_watermark: q.high_watermark,
        voters: q.voters.into_iter().map(voter_from_pb).collect(),
        observers: q.observers.into_iter().map(voter_from_pb).collect(),
    }
}
