//! InitProducerId (key 22): a fresh producer id for an idempotent producer, or for a
//! transactional one its id and epoch from the transaction coordinator (fencing older
//! producers of the same transactional id).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::Ctx;

pub(super) async fn handle(
    ctx: &Ctx<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // Kafka: WRITE on the transactional id; without one IDEMPOTENT_WRITE on the cluster or
    // WRITE on some topic.
    let authz = ctx.authz();
    let denied = match &request.transactional_id {
        Some(id) => !authz.allows(
            controller::acl::AclOperation::Write,
            controller::acl::ResourceType::TransactionalId,
            id,
        ),
        None => {
            !authz.allows_cluster(controller::acl::AclOperation::IdempotentWrite)
                && !authz.allows_any(
                    controller::acl::AclOperation::Write,
                    controller::acl::ResourceType::Topic,
                )
        }
    };
    if denied {
        let error = match request.transactional_id {
            Some(_) => ResponseError::TransactionalIdAuthorizationFailed,
            None => ResponseError::ClusterAuthorizationFailed,
        };
        return response.with_error_code(error.code());
    }
    if let Some(id) = &request.transactional_id {
        // v3+: a producer re-initialising after an error names its id and epoch (KIP-360).
        let expected =
            (request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
        let broker = ctx.broker;
        let allocate = || async move {
            broker.next_producer_id().await.map_err(|error| {
                tracing::error!(%error, "allocating producer ids failed");
                ResponseError::CoordinatorNotAvailable
            })
        };
        return match ctx
            .broker
            .txns
            .init_producer_id(
                id.as_str(),
                request.transaction_timeout_ms,
                expected,
                allocate,
                crate::broker::now_ms(),
            )
            .await
        {
            Ok((producer_id, epoch)) => response
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch),
            Err(error) => response.with_error_code(error.code()),
        };
    }
    match ctx.broker.next_producer_id().await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => {
            tracing::error!(%error, "allocating producer ids failed");
            response.with_error_code(ResponseError::UnknownServerError.code())
        }
    }
}
