//! DeleteRecords (key 21): move a partition's log start offset forward.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use controller::acl::{AclOperation, ResourceType};

use super::{owned, Ctx};
use crate::partition::storage_error;

/// `offset` -1 means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub(super) fn handle(ctx: &Ctx<'_>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let authz = ctx.authz();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = owned(&topic.name.0);
            let denied = authz
                .check(AclOperation::Delete, ResourceType::Topic, &name)
                .err();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if let Some(denied) = denied {
                        return result.with_error_code(denied.code());
                    }
                    // Kafka's ReplicaManager: never on internal topics.
                    if controller::is_internal_topic(&name) {
                        return result.with_error_code(ResponseError::InvalidTopicException.code());
                    }
                    let partition = match ctx.broker.partition(&name, p.partition_index) {
                        Ok(partition) => partition,
                        Err(error) => return result.with_error_code(error.code()),
                    };
                    let log = &partition.log;
                    let hw = log.high_watermark();
                    let offset = if p.offset == HIGH_WATERMARK {
                        hw
                    } else {
                        p.offset
                    };
                    if offset < 0 || offset > hw {
                        return result
                            .with_low_watermark(log.log_start_offset())
                            .with_error_code(ResponseError::OffsetOutOfRange.code());
                    }
                    match log.delete_records(offset) {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(error) => result.with_error_code(storage_error(&error).code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
