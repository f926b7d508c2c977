//! AddRaftVoter (80), RemoveRaftVoter (81) and UpdateRaftVoter (82): KIP-853's changes of
//! the metadata quorum's voter set, carried out by the quorum's leader on its Raft
//! membership (`Controller::add_voter` and the others forward there). Each needs ALTER on
//! the cluster, as in Kafka.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::update_raft_voter_response::CurrentLeader;
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, BrokerId, RemoveRaftVoterRequest,
    RemoveRaftVoterResponse, UpdateRaftVoterRequest, UpdateRaftVoterResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::create_topics::Rejected;
use super::{owned, str_bytes, Ctx};

/// The listener name Strata's controllers use; a request naming listeners picks this one
/// when present, else the first.
const CONTROLLER_LISTENER: &str = "CONTROLLER";

/// How long AddRaftVoter waits for the new voter to catch up when the request gives no
/// timeout (Kafka's admin client sends its own request timeout).
const DEFAULT_ADD_TIMEOUT: Duration = Duration::from_secs(30);

/// Checks authorization and the cluster id shared by the three requests.
fn check(ctx: &Ctx<'_>, cluster_id: Option<&StrBytes>) -> Result<(), Rejected> {
    super::check_cluster(ctx, controller::acl::AclOperation::Alter)
        .map_err(|e| Rejected::new(e, "Cluster authorization failed."))?;
    match cluster_id {
        Some(id) if !id.is_empty() && owned(id) != ctx.broker.cluster_id => Err(Rejected::new(
            ResponseError::InconsistentClusterId,
            format!("The cluster id {} is not this cluster's", owned(id)),
        )),
        _ => Ok(()),
    }
}

/// `host:port` of the controller listener among `listeners` (name, host, port).
fn endpoint<'a>(listeners: impl Iterator<Item = (&'a StrBytes, &'a StrBytes, u16)>) -> String {
    let listeners: Vec<_> = listeners.collect();
    listeners
        .iter()
        .find(|(name, _, _)| name.as_str() == CONTROLLER_LISTENER)
        .or(listeners.first())
        .map(|(_, host, port)| format!("{}:{port}", host.as_str()))
        .unwrap_or_default()
}

fn outcome(result: Result<(), Rejected>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(rejected) => (rejected.error.code(), Some(str_bytes(rejected.message))),
    }
}

pub(super) async fn add(ctx: &Ctx<'_>, request: AddRaftVoterRequest) -> AddRaftVoterResponse {
    let result = async {
        check(ctx, request.cluster_id.as_ref())?;
        let address = endpoint(request.listeners.iter().map(|l| (&l.name, &l.host, l.port)));
        let timeout = match request.timeout_ms {
            ms if ms > 0 => Duration::from_millis(ms as u64),
            _ => DEFAULT_ADD_TIMEOUT,
        };
        ctx.broker
            .controller()
            .add_voter(
                request.voter_id,
                request.voter_directory_id,
                address,
                timeout,
            )
            .await
            .map_err(Rejected::from)
    }
    .await;
    let (code, message) = outcome(result);
    AddRaftVoterResponse::default()
        .with_error_code(code)
        .with_error_message(message)
}

pub(super) async fn remove(
    ctx: &Ctx<'_>,
    request: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    let result = async {
        check(ctx, request.cluster_id.as_ref())?;
        ctx.broker
            .controller()
            .remove_voter(request.voter_id, request.voter_directory_id)
            .await
            .map_err(Rejected::from)
    }
    .await;
    let (code, message) = outcome(result);
    RemoveRaftVoterResponse::default()
        .with_error_code(code)
        .with_error_message(message)
}

pub(super) async fn update(
    ctx: &Ctx<'_>,
    request: UpdateRaftVoterRequest,
) -> UpdateRaftVoterResponse {
    let result = async {
        check(ctx, request.cluster_id.as_ref())?;
        let address = endpoint(request.listeners.iter().map(|l| (&l.name, &l.host, l.port)));
        ctx.broker
            .controller()
            .update_voter(request.voter_id, request.voter_directory_id, address)
            .await
            .map_err(Rejected::from)
    }
    .await;
    let controller = ctx.broker.controller();
    let leader = controller.leader_id();
    let mut current = CurrentLeader::default().with_leader_id(BrokerId(leader.unwrap_or(-1)));
    if let Ok(quorum) = controller.quorum().await {
        current = current.with_leader_epoch(i32::try_from(quorum.term).unwrap_or(i32::MAX));
        let address = leader.and_then(|id| {
            quorum
                .voters
                .iter()
                .find(|v| v.node_id == id)
                .map(|v| v.address.clone())
        });
        if let Some((host, port)) = address.as_deref().and_then(|a| a.rsplit_once(':')) {
            current = current
                .with_host(str_bytes(host.to_owned()))
                .with_port(port.parse().unwrap_or(-1));
        }
    }
    let (code, _) = outcome(result);
    UpdateRaftVoterResponse::default()
        .with_error_code(code)
        .with_current_leader(current)
}
