//! InitProducerId (key 22): a fresh producer id for an idempotent producer.
//!
//! Transactions are not coordinated yet: a transactional id is refused with
//! the retriable COORDINATOR_NOT_AVAILABLE.

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
    if request.transactional_id.is_some() {
        return response.with_error_code(ResponseError::CoordinatorNotAvailable.code());
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
