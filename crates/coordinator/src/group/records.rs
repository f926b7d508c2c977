//! Kafka's record formats in `__consumer_offsets`, so that tools which read the topic (Burrow,
//! kafka-console-consumer's formatters) understand what Strata writes there.
//!
//! Keys: OffsetCommitKey (version 1: group, topic, partition) and GroupMetadataKey (version 2:
//! group). Values: OffsetCommitValue version 3 (offset, leader epoch, metadata, commit
//! timestamp) and GroupMetadataValue version 3. A null value is a tombstone.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A group's committed offsets by (topic, partition), and the partitions whose offsets a
/// transaction has pending, as of one moment.
pub type OffsetsSnapshot = (
    BTreeMap<(String, i32), CommittedOffset>,
    BTreeSet<(String, i32)>,
);

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// A member as GroupMetadataValue stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's membership as GroupMetadataValue stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

/// One decoded `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetsRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    Group {
        group: String,
        value: Option<StoredGroup>,
    },
    /// A consumer-protocol (KIP-848) group's record: key types 3 to 8.
    Consumer {
        group: String,
        record: super::consumer::records::ConsumerRecord,
    },
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

/// OffsetCommitKey v1.
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(10 + group.len() + topic.len());
    buf.put_i16(1);
    put_str(&mut buf, group);
    put_str(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// OffsetCommitValue v3.
pub fn offset_value(value: &CommittedOffset) -> Bytes {
    let mut buf = BytesMut::with_capacity(24 + value.metadata.len());
    buf.put_i16(3);
    buf.put_i64(value.offset);
    buf.put_i32(value.leader_epoch);
    put_str(&mut buf, &value.metadata);
    buf.put_i64(value.commit_timestamp);
    buf.freeze()
}

/// GroupMetadataKey v2.
pub fn group_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_i16(2);
    put_str(&mut buf, group);
    buf.freeze()
}

/// GroupMetadataValue: version 3 when a member is static (it adds `group_instance_id`),
/// else version 2, which older readers of the topic (Burrow 1.2) still decode.
pub fn group_value(group: &StoredGroup) -> Bytes {
    let version: i16 = if group.members.iter().any(|m| m.group_instance_id.is_some()) {
        3
    } else {
        2
    };
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(version);
    put_str(&mut buf, &group.protocol_type);
    buf.put_i32(group.generation);
    put_nullable_str(&mut buf, group.protocol.as_deref());
    put_nullable_str(&mut buf, group.leader.as_deref());
    buf.put_i64(group.current_state_timestamp);
    buf.put_i32(group.members.len() as i32);
    for m in &group.members {
        put_str(&mut buf, &m.member_id);
        if version >= 3 {
            put_nullable_str(&mut buf, m.group_instance_id.as_deref());
        }
        put_str(&mut buf, &m.client_id);
        put_str(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout);
        buf.put_i32(m.session_timeout);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

struct Reader(Bytes);

impl Reader {
    fn i16(&mut self) -> Option<i16> {
        (self.0.remaining() >= 2).then(|| self.0.get_i16())
    }
    fn i32(&mut self) -> Option<i32> {
        (self.0.remaining() >= 4).then(|| self.0.get_i32())
    }
    fn i64(&mut self) -> Option<i64> {
        (self.0.remaining() >= 8).then(|| self.0.get_i64())
    }
    fn nullable_str(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        let len = len as usize;
        if self.0.remaining() < len {
            return None;
        }
        let s = String::from_utf8(self.0.split_to(len).to_vec()).ok()?;
        Some(Some(s))
    }
    fn str(&mut self) -> Option<String> {
        self.nullable_str()?
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let len = usize::try_from(self.i32()?).ok()?;
        (self.0.remaining() >= len).then(|| self.0.split_to(len))
    }
}

/// Decodes one record; `None` for keys of kinds Strata does not keep (transactions' and
/// share groups' records share no topic with these, but a newer Kafka's might).
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Option<OffsetsRecord> {
    let mut k = Reader(key.clone());
    match k.i16()? {
        0 | 1 => {
            let group = k.str()?;
            let topic = k.str()?;
            let partition = k.i32()?;
            let value = match value {
                None => None,
                Some(v) => {
                    let mut r = Reader(v.clone());
                    let version = r.i16()?;
                    let offset = r.i64()?;
                    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
                    let metadata = r.str()?;
                    let commit_timestamp = r.i64()?;
                    Some(CommittedOffset {
                        offset,
                        leader_epoch,
                        metadata,
                        commit_timestamp,
                    })
                }
            };
            Some(OffsetsRecord::Offset {
                group,
                topic,
                partition,
                value,
            })
        }
        2 => {
            let group = k.str()?;
            let value = match value {
                None => None,
                Some(v) => Some(decode_group_value(v)?),
            };
            Some(OffsetsRecord::Group { group, value })
        }
        3..=8 => super::consumer::records::decode(key, value)
            .map(|(group, record)| OffsetsRecord::Consumer { group, record }),
        _ => None,
    }
}

fn decode_group_value(value: &Bytes) -> Option<StoredGroup> {
    let mut r = Reader(value.clone());
    let version = r.i16()?;
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = r.str()?;
        let group_instance_id = if version >= 3 {
            r.nullable_str()?
        } else {
            None
        };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout,
            session_timeout,
            subscription,
            assignment,
        });
    }
    Some(StoredGroup {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

/// The topics of a consumer-protocol subscription (ConsumerProtocolSubscription: version,
/// then an array of topic names); empty if it does not decode.
pub fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    let mut r = Reader(metadata.clone());
    let decode = |r: &mut Reader| -> Option<Vec<String>> {
        r.i16()?;
        let count = r.i32()?;
        (0..count.max(0)).map(|_| r.str()).collect()
    };
    decode(&mut r).unwrap_or_default()
}

/// The `__consumer_offsets` partition of a group: Java's `String.hashCode`, made
/// non-negative, modulo the partition count (Kafka's `Utils.abs(hash) % n`).
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_records_round_trip() {
        let value = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1_700_000_000_000,
        };
        let key = offset_key("g", "t", 7);
        assert_eq!(
            decode(&key, Some(&offset_value(&value))),
            Some(OffsetsRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: Some(value)
            })
        );
        assert_eq!(
            decode(&key, None),
            Some(OffsetsRecord::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
                value: None
            })
        );
    }

    #[test]
    fn group_records_round_trip() {
        let group = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 9,
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300_000,
                session_timeout: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(
            group_value(&group)[..2],
            [0, 2],
            "version 2 without static members"
        );
        assert_eq!(
            decode(&group_key("g"), Some(&group_value(&group))),
            Some(OffsetsRecord::Group {
                group: "g".into(),
                value: Some(group.clone())
            })
        );
        let mut with_static = group;
        with_static.members[0].group_instance_id = Some("instance-1".into());
        assert_eq!(
            group_value(&with_static)[..2],
            [0, 3],
            "version 3 carries instance ids"
        );
        assert_eq!(
            decode(&group_key("g"), Some(&group_value(&with_static))),
            Some(OffsetsRecord::Group {
                group: "g".into(),
                value: Some(with_static)
            })
        );
    }

    #[test]
    fn partition_matches_kafka() {
        // "my-group".hashCode() is -1906497762 in Java, so Utils.abs(..) % 50 == 12.
        assert_eq!(partition_for("my-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
    }
}
