//! FindCoordinator (key 10): the node that coordinates a group, one key or many (v4+).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{owned, str_bytes, Ctx};

const GROUP: i8 = 0;

/// (error code, node id, host, port) of the coordinator of `key`.
async fn locate(ctx: &Ctx<'_>, key: &str, key_type: i8) -> (i16, i32, String, i32) {
    if key_type != GROUP {
        // Transactions are not coordinated yet.
        return (
            ResponseError::CoordinatorNotAvailable.code(),
            -1,
            String::new(),
            -1,
        );
    }
    if key.is_empty() {
        return (ResponseError::InvalidGroupId.code(), -1, String::new(), -1);
    }
    if let Err(error) = ctx.broker.ensure_offsets_topic().await {
        tracing::warn!(%error, "creating __consumer_offsets failed");
    }
    match ctx.broker.coordinator_for(key) {
        Some(b) => (0, b.node_id, b.host, i32::from(b.port)),
        None => (
            ResponseError::CoordinatorNotAvailable.code(),
            -1,
            String::new(),
            -1,
        ),
    }
}

pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    if ctx.version >= 4 {
        let mut coordinators = Vec::with_capacity(request.coordinator_keys.len());
        for key in &request.coordinator_keys {
            let (code, node, host, port) = locate(ctx, key.as_str(), request.key_type).await;
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
    let (code, node, host, port) = locate(ctx, &owned(&request.key), request.key_type).await;
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
