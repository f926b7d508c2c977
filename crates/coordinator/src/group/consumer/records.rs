//! Kafka's `__consumer_offsets` records of consumer-protocol groups (KIP-848), so that a
//! restarted broker finds its groups, members and assignments again and tools that read the
//! topic understand them.
//!
//! Keys (not flexible; the leading int16 names the record type): 3 ConsumerGroupMetadataKey
//! (group), 5 ConsumerGroupMemberMetadataKey (group, member), 6
//! ConsumerGroupTargetAssignmentMetadataKey (group), 7 ConsumerGroupTargetAssignmentMemberKey
//! (group, member), 8 ConsumerGroupCurrentMemberAssignmentKey (group, member). Values are
//! version 0 of the flexible schemas (compact strings and arrays, tagged fields), a null
//! value a tombstone. Type 4 (ConsumerGroupPartitionMetadata) is read and ignored: the
//! subscribed topics are re-read from the metadata. A member of the classic protocol carries
//! its session timeout and JoinGroup protocols in ConsumerGroupMemberMetadataValue's tagged
//! field 0 (ClassicMemberMetadata), as Kafka writes it for groups that went through an online
//! upgrade.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::{Assignment, ClassicMember, MemberState};

/// A member's metadata as ConsumerGroupMemberMetadataValue stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Tagged field 0: the member uses the classic protocol.
    pub classic: Option<ClassicMember>,
}

/// A member's current assignment as ConsumerGroupCurrentMemberAssignmentValue stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// One consumer-group record of one group; `None` payloads are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecord {
    GroupEpoch(Option<i32>),
    Member(String, Option<MemberMetadata>),
    TargetEpoch(Option<i32>),
    Target(String, Option<Assignment>),
    Current(String, Option<CurrentAssignment>),
    /// A record type Strata reads but does not keep (partition metadata).
    Ignored,
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_compact_str(buf: &mut BytesMut, s: &str) {
    put_uvarint(buf, s.len() as u64 + 1);
    buf.put_slice(s.as_bytes());
}

fn put_compact_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_compact_str(buf, s),
        None => put_uvarint(buf, 0),
    }
}

fn put_compact_bytes(buf: &mut BytesMut, b: &[u8]) {
    put_uvarint(buf, b.len() as u64 + 1);
    buf.put_slice(b);
}

/// ClassicMemberMetadata: SessionTimeoutMs, SupportedProtocols (name, metadata), tagged fields.
fn classic_metadata(c: &ClassicMember) -> BytesMut {
    let mut b = BytesMut::with_capacity(64);
    b.put_i32(i32::try_from(c.session_timeout_ms).unwrap_or(i32::MAX));
    put_uvarint(&mut b, c.protocols.len() as u64 + 1);
    for (name, metadata) in &c.protocols {
        put_compact_str(&mut b, name);
        put_compact_bytes(&mut b, metadata);
        put_uvarint(&mut b, 0);
    }
    put_uvarint(&mut b, 0);
    b
}

fn put_topic_partitions(buf: &mut BytesMut, a: &Assignment) {
    put_uvarint(buf, a.len() as u64 + 1);
    for (topic, partitions) in a {
        buf.put_slice(topic.as_bytes());
        put_uvarint(buf, partitions.len() as u64 + 1);
        for p in partitions {
            buf.put_i32(*p);
        }
        put_uvarint(buf, 0); // tagged fields of the entry
    }
}

fn key(kind: i16, group: &str, member: Option<&str>) -> Bytes {
    let mut buf = BytesMut::with_capacity(8 + group.len());
    buf.put_i16(kind);
    put_str(&mut buf, group);
    if let Some(member) = member {
        put_str(&mut buf, member);
    }
    buf.freeze()
}

/// A value: version 0, the body, then an empty tagged-field section.
fn value(body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(0);
    body(&mut buf);
    put_uvarint(&mut buf, 0);
    buf.freeze()
}

/// The key and value of one record of `group`.
pub fn encode(group: &str, record: &ConsumerRecord) -> Option<(Bytes, Option<Bytes>)> {
    Some(match record {
        ConsumerRecord::GroupEpoch(epoch) => {
            (key(3, group, None), epoch.map(|e| value(|b| b.put_i32(e))))
        }
        ConsumerRecord::Member(member, m) => (
            key(5, group, Some(member)),
            m.as_ref().map(|m| {
                let mut b = BytesMut::with_capacity(64);
                b.put_i16(0);
                {
                    let b = &mut b;
                    put_compact_nullable_str(b, m.instance_id.as_deref());
                    put_compact_nullable_str(b, m.rack_id.as_deref());
                    put_compact_str(b, &m.client_id);
                    put_compact_str(b, &m.client_host);
                    put_uvarint(b, m.subscribed_topic_names.len() as u64 + 1);
                    for t in &m.subscribed_topic_names {
                        put_compact_str(b, t);
                    }
                    put_compact_nullable_str(b, m.subscribed_topic_regex.as_deref());
                    b.put_i32(m.rebalance_timeout_ms);
                    put_compact_nullable_str(b, m.server_assignor.as_deref());
                }
                match &m.classic {
                    Some(c) => {
                        let field = classic_metadata(c);
                        put_uvarint(&mut b, 1);
                        put_uvarint(&mut b, 0);
                        put_uvarint(&mut b, field.len() as u64);
                        b.put_slice(&field);
                    }
                    None => put_uvarint(&mut b, 0),
                }
                b.freeze()
            }),
        ),
        ConsumerRecord::TargetEpoch(epoch) => {
            (key(6, group, None), epoch.map(|e| value(|b| b.put_i32(e))))
        }
        ConsumerRecord::Target(member, a) => (
            key(7, group, Some(member)),
            a.as_ref().map(|a| value(|b| put_topic_partitions(b, a))),
        ),
        ConsumerRecord::Current(member, c) => (
            key(8, group, Some(member)),
            c.as_ref().map(|c| {
                value(|b| {
                    b.put_i32(c.member_epoch);
                    b.put_i32(c.previous_member_epoch);
                    b.put_i8(match c.state {
                        MemberState::Stable => 0,
                        MemberState::UnrevokedPartitions => 1,
                        MemberState::UnreleasedPartitions => 2,
                    });
                    put_topic_partitions(b, &c.assigned);
                    put_topic_partitions(b, &c.pending_revocation);
                })
            }),
        ),
        ConsumerRecord::Ignored => return None,
    })
}

struct Reader(Bytes);

impl Reader {
    fn i8(&mut self) -> Option<i8> {
        (self.0.remaining() >= 1).then(|| self.0.get_i8())
    }
    fn i16(&mut self) -> Option<i16> {
        (self.0.remaining() >= 2).then(|| self.0.get_i16())
    }
    fn i32(&mut self) -> Option<i32> {
        (self.0.remaining() >= 4).then(|| self.0.get_i32())
    }
    fn uuid(&mut self) -> Option<Uuid> {
        (self.0.remaining() >= 16).then(|| Uuid::from_u128(self.0.get_u128()))
    }
    fn str(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.bytes(len)
    }
    fn bytes(&mut self, len: usize) -> Option<String> {
        (self.0.remaining() >= len)
            .then(|| String::from_utf8(self.0.split_to(len).to_vec()).ok())
            .flatten()
    }
    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.i8()? as u8;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// A compact length: `None` on error, `Some(None)` for null.
    fn compact_len(&mut self) -> Option<Option<usize>> {
        let n = self.uvarint()?;
        Some(n.checked_sub(1).and_then(|n| usize::try_from(n).ok()))
    }
    fn compact_nullable_str(&mut self) -> Option<Option<String>> {
        match self.compact_len()? {
            None => Some(None),
            Some(len) => self.bytes(len).map(Some),
        }
    }
    fn compact_str(&mut self) -> Option<String> {
        self.compact_nullable_str()?
    }
    fn compact_bytes(&mut self) -> Option<Bytes> {
        let len = self.compact_len()??;
        (self.0.remaining() >= len).then(|| self.0.split_to(len))
    }
    /// The tagged fields of a ConsumerGroupMemberMetadataValue: ClassicMemberMetadata (tag 0)
    /// if present; other tags are skipped.
    fn member_tagged(&mut self) -> Option<Option<ClassicMember>> {
        let mut classic = None;
        for _ in 0..self.uvarint()? {
            let tag = self.uvarint()?;
            let len = usize::try_from(self.uvarint()?).ok()?;
            if self.0.remaining() < len {
                return None;
            }
            let mut field = Reader(self.0.split_to(len));
            if tag == 0 {
                let session_timeout_ms = u64::try_from(field.i32()?).unwrap_or(0);
                let mut protocols = Vec::new();
                for _ in 0..field.compact_len()?.unwrap_or(0) {
                    let name = field.compact_str()?;
                    let metadata = field.compact_bytes()?;
                    field.skip_tagged()?;
                    protocols.push((name, metadata));
                }
                classic = Some(ClassicMember {
                    session_timeout_ms,
                    protocols,
                });
            }
        }
        Some(classic)
    }
    fn skip_tagged(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let len = usize::try_from(self.uvarint()?).ok()?;
            if self.0.remaining() < len {
                return None;
            }
            self.0.advance(len);
        }
        Some(())
    }
    fn topic_partitions(&mut self) -> Option<Assignment> {
        let mut out = Assignment::new();
        for _ in 0..self.compact_len()?.unwrap_or(0) {
            let topic = self.uuid()?;
            let partitions = out.entry(topic).or_default();
            for _ in 0..self.compact_len()?.unwrap_or(0) {
                partitions.insert(self.i32()?);
            }
            self.skip_tagged()?;
        }
        Some(out)
    }
}

/// Decodes a record whose key type is 3 to 8; `None` for other types or malformed bytes.
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Option<(String, ConsumerRecord)> {
    let mut k = Reader(key.clone());
    let kind = k.i16()?;
    if !(3..=8).contains(&kind) {
        return None;
    }
    let group = k.str()?;
    let member = if matches!(kind, 5 | 7 | 8) {
        Some(k.str()?)
    } else {
        None
    };
    let mut v = value.map(|v| Reader(v.clone()));
    if let Some(v) = &mut v {
        v.i16()?; // version
    }
    let record = match (kind, member, v) {
        (3, _, v) => ConsumerRecord::GroupEpoch(match v {
            Some(mut v) => Some(v.i32()?),
            None => None,
        }),
        (6, _, v) => ConsumerRecord::TargetEpoch(match v {
            Some(mut v) => Some(v.i32()?),
            None => None,
        }),
        (5, Some(member), v) => ConsumerRecord::Member(
            member,
            match v {
                None => None,
                Some(mut v) => Some(MemberMetadata {
                    instance_id: v.compact_nullable_str()?,
                    rack_id: v.compact_nullable_str()?,
                    client_id: v.compact_str()?,
                    client_host: v.compact_str()?,
                    subscribed_topic_names: (0..v.compact_len()?.unwrap_or(0))
                        .map(|_| v.compact_str())
                        .collect::<Option<Vec<_>>>()?,
                    subscribed_topic_regex: v.compact_nullable_str()?,
                    rebalance_timeout_ms: v.i32()?,
                    server_assignor: v.compact_nullable_str()?,
                    // Written by Strata before classic members: no tagged section is no field.
                    classic: if v.0.has_remaining() {
                        v.member_tagged()?
                    } else {
                        None
                    },
                }),
            },
        ),
        (7, Some(member), v) => ConsumerRecord::Target(
            member,
            match v {
                None => None,
                Some(mut v) => Some(v.topic_partitions()?),
            },
        ),
        (8, Some(member), v) => ConsumerRecord::Current(
            member,
            match v {
                None => None,
                Some(mut v) => Some(CurrentAssignment {
                    member_epoch: v.i32()?,
                    previous_member_epoch: v.i32()?,
                    state: match v.i8()? {
                        1 => MemberState::UnrevokedPartitions,
                        2 => MemberState::UnreleasedPartitions,
                        _ => MemberState::Stable,
                    },
                    assigned: v.topic_partitions()?,
                    pending_revocation: v.topic_partitions()?,
                }),
            },
        ),
        _ => ConsumerRecord::Ignored,
    };
    Some((group, record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: ConsumerRecord) {
        let (k, v) = encode("g", &record).unwrap();
        assert_eq!(decode(&k, v.as_ref()), Some(("g".to_owned(), record)));
    }

    #[test]
    fn consumer_group_records_round_trip() {
        let a = Assignment::from([
            (Uuid::from_u128(1), [0, 2].into()),
            (Uuid::from_u128(2), [5].into()),
        ]);
        round_trip(ConsumerRecord::GroupEpoch(Some(7)));
        round_trip(ConsumerRecord::GroupEpoch(None));
        round_trip(ConsumerRecord::TargetEpoch(Some(7)));
        round_trip(ConsumerRecord::Target("m".into(), Some(a.clone())));
        round_trip(ConsumerRecord::Target("m".into(), None));
        round_trip(ConsumerRecord::Member(
            "m".into(),
            Some(MemberMetadata {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
                subscribed_topic_regex: None,
                rebalance_timeout_ms: 300_000,
                server_assignor: Some("range".into()),
                classic: None,
            }),
        ));
        round_trip(ConsumerRecord::Member(
            "c".into(),
            Some(MemberMetadata {
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["a".into()],
                rebalance_timeout_ms: 60_000,
                classic: Some(ClassicMember {
                    session_timeout_ms: 45_000,
                    protocols: vec![
                        ("range".into(), Bytes::from_static(&[0, 3, 0, 0])),
                        ("roundrobin".into(), Bytes::new()),
                    ],
                }),
                ..MemberMetadata::default()
            }),
        ));
        round_trip(ConsumerRecord::Current(
            "m".into(),
            Some(CurrentAssignment {
                member_epoch: 4,
                previous_member_epoch: 3,
                state: MemberState::UnrevokedPartitions,
                assigned: a.clone(),
                pending_revocation: Assignment::from([(Uuid::from_u128(3), [1].into())]),
            }),
        ));
    }

    #[test]
    fn the_epoch_value_matches_kafka_s_bytes() {
        // Version 0, epoch 5, no tagged fields.
        let (k, v) = encode("g", &ConsumerRecord::GroupEpoch(Some(5))).unwrap();
        assert_eq!(&k[..], &[0, 3, 0, 1, b'g']);
        assert_eq!(&v.unwrap()[..], &[0, 0, 0, 0, 0, 5, 0]);
    }

    #[test]
    fn truncated_values_do_not_decode() {
        let (k, v) = encode(
            "g",
            &ConsumerRecord::Target("m".into(), Some(Assignment::new())),
        )
        .unwrap();
        let v = v.unwrap();
        assert!(decode(&k, Some(&v.slice(..v.len() - 2))).is_none());
    }
}
