//! ListOffsets (key 2): earliest, latest, max-timestamp and by-timestamp offset lookups.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use controller::acl::{AclOperation::Describe, ResourceType};

use super::{owned, Ctx};
use crate::partition::storage_error;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const EARLIEST_PENDING_UPLOAD: i64 = -5;

pub(super) fn handle(ctx: &Ctx<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    // isolation_level 1 (READ_COMMITTED): offsets stop at the last stable offset (v2+).
    let read_committed = request.isolation_level == 1;
    let authz = ctx.authz();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = owned(&topic.name.0);
            let denied = authz.check(Describe, ResourceType::Topic, &name).err();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if let Some(denied) = denied {
                        return response.with_error_code(denied.code());
                    }
                    let partition = match ctx.broker.partition(&name, p.partition_index) {
                        Ok(partition) => partition,
                        Err(error) => return response.with_error_code(error.code()),
                    };
                    let epoch = match partition.check_leader_epoch(p.current_leader_epoch) {
                        Ok(epoch) => epoch,
                        Err(error) => return response.with_error_code(error.code()),
                    };
                    let log = &partition.log;
                    let needs_high_watermark = !matches!(
                        p.timestamp,
                        EARLIEST | EARLIEST_LOCAL | EARLIEST_PENDING_UPLOAD
                    );
                    if needs_high_watermark && !partition.high_watermark_settled() {
                        return response.with_error_code(ResponseError::OffsetNotAvailable.code());
                    }
                    // What a consumer of the request's isolation level may read up to.
                    let last_fetchable = if read_committed {
                        partition.last_stable_offset()
                    } else {
                        log.high_watermark()
                    };
                    let found = match p.timestamp {
                        LATEST => Ok(Some((-1, last_fetchable))),
                        EARLIEST | EARLIEST_LOCAL | EARLIEST_PENDING_UPLOAD => {
                            Ok(Some((-1, log.log_start_offset())))
                        }
                        MAX_TIMESTAMP => Ok(log.max_timestamp().map(|t| (t.timestamp, t.offset))),
                        timestamp => log.offset_for_timestamp(timestamp).map(|found| {
                            found
                                .filter(|t| t.offset < last_fetchable)
                                .map(|t| (t.timestamp, t.offset))
                        }),
                    };
                    match found {
                        Ok(Some((timestamp, offset))) => {
                            // leader_epoch exists from v4; older versions refuse a non-default.
                            let epoch = if ctx.version >= 4 { epoch } else { -1 };
                            response
                                .with_timestamp(timestamp)
                                .with_offset(offset)
                                .with_leader_epoch(epoch)
                        }
                        Ok(None) => response,
                        Err(error) => response.with_error_code(storage_error(&error).code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
