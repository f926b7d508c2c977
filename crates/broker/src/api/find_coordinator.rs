//! FindCoordinator (key 10): the node that coordinates a group or a transactional id, one
//! key or many (v4+).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use controller::acl::{AclOperation, ResourceType};

use super::{owned, str_bytes, Ctx};

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// (node id, host, port) of the coordinator of `key`, or why it cannot be named.
async fn locate(
    ctx: &Ctx<'_>,
    key: &str,
    key_type: i8,
) -> Result<(i32, String, i32), ResponseError> {
    let resource_type = match key_type {
        GROUP => Some(ResourceType::Group),
        TRANSACTION => Some(ResourceType::TransactionalId),
        _ => None,
    };
    if let Some(resource_type) = resource_type {
        ctx.authz()
            .check(AclOperation::Describe, resource_type, key)?;
    }
    let coordinator = match key_type {
        GROUP => {
            if key.is_empty() {
                return Err(ResponseError::InvalidGroupId);
            }
            if let Err(error) = ctx.broker.ensure_offsets_topic().await {
                tracing::warn!(%error, "creating __consumer_offsets failed");
            }
            ctx.broker.coordinator_for(key)
        }
        TRANSACTION => {
            if key.is_empty() {
                return Err(ResponseError::InvalidRequest);
            }
            if let Err(error) = ctx.broker.ensure_transaction_topic().await {
                tracing::warn!(%error, "creating __transaction_state failed");
            }
            ctx.broker.transaction_coordinator_for(key)
        }
        _ => return Err(ResponseError::InvalidRequest),
    };
    coordinator
        .and_then(|b| {
            let (host, port) = b.endpoint(ctx.listener)?;
            Some((b.node_id, host.to_owned(), i32::from(port)))
        })
        .ok_or(ResponseError::CoordinatorNotAvailable)
}

/// The response fields for a [`locate`] outcome: (error code, node id, host, port).
fn fields(located: Result<(i32, String, i32), ResponseError>) -> (i16, i32, String, i32) {
    match located {
        Ok((node, host, port)) => (0, node, host, port),
        Err(error) => (error.code(), -1, String::new(), -1),
    }
}

pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if ctx.version >= 4 {
        let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
        for key in &request.coordinator_keys {
            let (code, node, host, port) =
                fields(locate(ctx, key.as_str(), request.key_type).await);
            coordinators.push(
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(str_bytes(host))
                    .with_port(port)
                    .with_error_code(code),
            );
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (code, node, host, port) =
        fields(locate(ctx, &owned(&request.key), request.key_type).await);
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(if code == 0 || ctx.version == 0 {
            None
        } else {
            Some(StrBytes::from_static_str("coordinator not available"))
        })
        .with_node_id(BrokerId(node))
        .with_host(str_bytes(host))
        .with_port(port)
}
