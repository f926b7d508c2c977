//! Produce v0-v2 (message formats v0/v1). Strata advertises them, as Apache Kafka 4 does
//! (KAFKA-18659: librdkafka only compresses when Produce v0 is advertised), and answers every
//! partition with UNSUPPORTED_VERSION. kafka-protocol decodes Produce from v3 only; the v0-v2
//! request is v3 without the leading transactional id, and the response is written here.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ProduceRequest, RequestHeader};
use kafka_protocol::protocol::Decodable;

use super::Reply;

/// Answers a Produce request of version 0, 1 or 2 (`frame` without its length prefix).
pub(super) fn handle(mut frame: Bytes, version: i16) -> Reply {
    let Ok(header) = RequestHeader::decode(&mut frame, 1) else {
        return Reply::Close;
    };
    let mut body = BytesMut::with_capacity(frame.len() + 2);
    body.put_i16(-1);
    body.put_slice(&frame);
    let Ok(request) = ProduceRequest::decode(&mut body.freeze(), 3) else {
        return Reply::Close;
    };
    tracing::debug!(version, "refusing Produce below v3");
    if request.acks == 0 {
        return Reply::Nothing;
    }
    let mut out = BytesMut::with_capacity(64);
    out.put_i32(0);
    out.put_i32(header.correlation_id);
    out.put_i32(request.topic_data.len() as i32);
    for topic in &request.topic_data {
        out.put_i16(topic.name.0.len() as i16);
        out.put_slice(topic.name.0.as_bytes());
        out.put_i32(topic.partition_data.len() as i32);
        for partition in &topic.partition_data {
            out.put_i32(partition.index);
            out.put_i16(ResponseError::UnsupportedVersion.code());
            out.put_i64(-1);
            if version >= 2 {
                out.put_i64(-1);
            }
        }
    }
    if version >= 1 {
        out.put_i32(0);
    }
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Reply::Frame(out.freeze())
}
