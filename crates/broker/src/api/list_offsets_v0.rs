//! ListOffsets v0, which kafka-protocol does not decode but old clients still send (Burrow's
//! sarama, for one): a request for at most `max_num_offsets` offsets before a timestamp, -1
//! latest or -2 earliest. Answered with the same offsets ListOffsets v1+ gives, as a
//! one-element `old_style_offsets` list.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::Decodable;

use super::Reply;
use crate::Broker;

struct Cursor(Bytes);

impl Cursor {
    fn i16(&mut self) -> Option<i16> {
        (self.0.remaining() >= 2).then(|| self.0.get_i16())
    }
    fn i32(&mut self) -> Option<i32> {
        (self.0.remaining() >= 4).then(|| self.0.get_i32())
    }
    fn i64(&mut self) -> Option<i64> {
        (self.0.remaining() >= 8).then(|| self.0.get_i64())
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        (self.0.remaining() >= len)
            .then(|| String::from_utf8_lossy(&self.0.split_to(len)).into_owned())
    }
    fn count(&mut self) -> Option<usize> {
        // Arrays are bounded by what is left to read, so a forged count allocates nothing.
        usize::try_from(self.i32()?)
            .ok()
            .filter(|n| *n <= self.0.remaining())
    }
}

/// One topic of a v0 request: its name and (partition, timestamp) pairs.
pub(super) type TopicQuery = (String, Vec<(i32, i64)>);

/// The topics of a v0 request body.
fn parse(body: Bytes) -> Option<Vec<TopicQuery>> {
    let mut c = Cursor(body);
    c.i32()?; // replica id
    let topics = c.count()?;
    let mut out = Vec::with_capacity(topics);
    for _ in 0..topics {
        let name = c.string()?;
        let partitions = c.count()?;
        let mut ps = Vec::with_capacity(partitions);
        for _ in 0..partitions {
            let partition = c.i32()?;
            let timestamp = c.i64()?;
            c.i32()?; // max_num_offsets: one is all any client still uses
            ps.push((partition, timestamp));
        }
        out.push((name, ps));
    }
    Some(out)
}

/// The header and topics of a ListOffsets v0 request (`frame` without its length prefix);
/// `None` if it does not decode.
pub(super) fn decode(mut frame: Bytes) -> Option<(RequestHeader, Vec<TopicQuery>)> {
    let header = RequestHeader::decode(&mut frame, 1).ok()?;
    Some((header, parse(frame)?))
}

/// Answers ListOffsets v0 (`frame` without its length prefix).
pub(super) fn handle(broker: &Broker, frame: Bytes, authz: &super::Authz<'_>) -> Reply {
    let Some((header, topics)) = decode(frame) else {
        return Reply::Close;
    };
    let mut out = BytesMut::with_capacity(64);
    out.put_i32(0);
    out.put_i32(header.correlation_id);
    out.put_i32(topics.len() as i32);
    for (name, partitions) in &topics {
        out.put_i16(name.len() as i16);
        out.put_slice(name.as_bytes());
        out.put_i32(partitions.len() as i32);
        for (index, timestamp) in partitions {
            out.put_i32(*index);
            let describe = controller::acl::AclOperation::Describe;
            let offset = authz
                .check(describe, controller::acl::ResourceType::Topic, name)
                .and_then(|()| broker.partition(name, *index))
                .map(|p| match *timestamp {
                    -1 => Ok(Some(p.log.high_watermark())),
                    -2 => Ok(Some(p.log.log_start_offset())),
                    ts => p
                        .log
                        .offset_for_timestamp(ts)
                        .map(|found| found.map(|t| t.offset)),
                });
            match offset {
                Err(error) => {
                    out.put_i16(error.code());
                    out.put_i32(0);
                }
                Ok(Err(error)) => {
                    out.put_i16(crate::partition::storage_error(&error).code());
                    out.put_i32(0);
                }
                Ok(Ok(found)) => {
                    out.put_i16(0);
                    out.put_i32(found.is_some() as i32);
                    if let Some(offset) = found {
                        out.put_i64(offset);
                    }
                }
            }
        }
    }
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Reply::Frame(out.freeze())
}
