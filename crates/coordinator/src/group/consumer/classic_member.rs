//! Members of the classic protocol inside a consumer group (KIP-848's online migration, as
//! Apache Kafka 4's `GroupMetadataManager` serves them): their JoinGroup, SyncGroup,
//! Heartbeat and LeaveGroup go to the consumer group. Their assignment comes from the
//! server-side assignor and reaches them in SyncGroup as a ConsumerProtocolAssignment; a
//! revocation or a newer assignment is announced by REBALANCE_IN_PROGRESS on their heartbeat,
//! after which they rejoin and reconcile one step, as a consumer-protocol member does with
//! each heartbeat.
//!
//! Also here: the conversion of a classic group with members into a consumer group (an
//! upgrade, when a consumer-protocol member joins it) and of a consumer group left with
//! classic members only back into a classic group (a downgrade), and the embedded consumer
//! protocol's subscription and assignment formats they rely on.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::super::classic::{
    ConvertedMember, Group, GroupConfig, JoinRequest, JoinResponse, SyncResponse,
};
use super::{
    new_member_id, Assignment, ClassicMember, ConsumerGroup, ConsumerGroupConfig, Member,
    MemberState, Topics,
};

/// The protocol type of groups of consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// A ConsumerProtocolSubscription (versions 0 to 3; a newer one is read as version 3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// Version 1+: the partitions the member owns, by topic name.
    pub owned: Vec<(String, Vec<i32>)>,
    /// Version 3+.
    pub rack_id: Option<String>,
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec()).ok().map(Some)
    }
    fn string(&mut self) -> Option<String> {
        self.nullable_string()?
    }
    fn count(&mut self) -> Option<usize> {
        Some(usize::try_from(self.i32()?).unwrap_or(0))
    }
    fn skip_bytes(&mut self) -> Option<()> {
        let len = self.i32()?;
        if len > 0 {
            self.take(len as usize)?;
        }
        Some(())
    }
    fn topic_partitions(&mut self) -> Option<Vec<(String, Vec<i32>)>> {
        (0..self.count()?)
            .map(|_| {
                let topic = self.string()?;
                let partitions = (0..self.count()?)
                    .map(|_| self.i32())
                    .collect::<Option<_>>()?;
                Some((topic, partitions))
            })
            .collect()
    }
}

/// Decodes a ConsumerProtocolSubscription; `None` if it is malformed.
pub fn decode_subscription(metadata: &[u8]) -> Option<Subscription> {
    let mut c = Cursor(metadata);
    let version = c.i16()?;
    if version < 0 {
        return None;
    }
    let topics = (0..c.count()?)
        .map(|_| c.string())
        .collect::<Option<Vec<_>>>()?;
    c.skip_bytes()?;
    let mut subscription = Subscription {
        version,
        topics,
        ..Subscription::default()
    };
    if version >= 1 {
        subscription.owned = c.topic_partitions()?;
    }
    if version >= 2 {
        c.i32()?;
    }
    if version >= 3 {
        subscription.rack_id = c.nullable_string()?;
    }
    Some(subscription)
}

/// Decodes a ConsumerProtocolAssignment's partitions by topic name; empty bytes are no
/// partitions (a member that joined but was never given an assignment). `None` if malformed.
pub fn decode_assignment(assignment: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if assignment.is_empty() {
        return Some(Vec::new());
    }
    let mut c = Cursor(assignment);
    if c.i16()? < 0 {
        return None;
    }
    c.topic_partitions()
}

/// A ConsumerProtocolAssignment of `version` (capped at 3; every version has the same
/// fields) without user data.
pub fn encode_assignment(version: i16, partitions: &[(String, Vec<i32>)]) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(version.clamp(0, 3));
    b.put_i32(partitions.len() as i32);
    for (topic, ps) in partitions {
        b.put_i16(topic.len() as i16);
        b.put_slice(topic.as_bytes());
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(*p);
        }
    }
    b.put_i32(-1);
    b.freeze()
}

/// The version a member's JoinGroup subscription (its first protocol) was written in.
fn subscription_version(classic: &ClassicMember) -> i16 {
    classic
        .protocols
        .first()
        .and_then(|(_, m)| Cursor(m).i16())
        .unwrap_or(0)
}

impl ConsumerGroup {
    /// The consumer group a non-empty classic group of consumers becomes when a
    /// consumer-protocol member joins it (Kafka's `ConsumerGroup.fromClassicGroup`): every
    /// member keeps its current assignment (decoded from its SyncGroup assignment) at the
    /// classic generation, which becomes the group and assignment epoch. The error is Kafka's
    /// GROUP_ID_NOT_FOUND message.
    pub fn from_classic(
        classic: &Group,
        config: ConsumerGroupConfig,
        topics: &dyn Topics,
        now: u64,
    ) -> Result<Self, String> {
        let id = classic.id.clone();
        let malformed = || {
            format!(
                "Cannot upgrade classic group {id} to consumer group because the embedded consumer protocol is malformed."
            )
        };
        let mut group = ConsumerGroup::new(id.clone(), config);
        let generation = classic.generation;
        for cm in classic.members.values() {
            let metadata = match &classic.protocol {
                Some(p) => cm.metadata(p),
                None => cm
                    .protocols()
                    .first()
                    .map(|(_, m)| m.clone())
                    .unwrap_or_default(),
            };
            let subscription = decode_subscription(&metadata).ok_or_else(malformed)?;
            let assigned = decode_assignment(&cm.assignment).ok_or_else(malformed)?;
            let mut m = Member::new(cm.id.clone());
            m.instance_id = cm.group_instance_id.clone();
            m.rack_id = subscription.rack_id.clone();
            m.client_id = cm.client_id.clone();
            m.client_host = cm.client_host.clone();
            m.rebalance_timeout_ms = cm.rebalance_timeout_ms();
            m.subscribed_topic_names = sorted(subscription.topics);
            m.classic = Some(ClassicMember {
                session_timeout_ms: cm.session_timeout_ms(),
                protocols: cm.protocols().to_vec(),
            });
            m.epoch = generation;
            m.previous_epoch = generation;
            m.state = MemberState::Stable;
            m.assigned = by_id(&assigned, topics);
            m.session_deadline_ms = now + cm.session_timeout_ms();
            for tp in m.owned() {
                group.owners.insert(tp, m.id.clone());
            }
            if let Some(instance) = &m.instance_id {
                group.instances.insert(instance.clone(), m.id.clone());
            }
            group.target.insert(m.id.clone(), m.assigned.clone());
            group.members.insert(m.id.clone(), m);
        }
        group.group_epoch = generation;
        group.assignment_epoch = generation;
        group.refresh_topics(topics);
        tracing::info!(group = %id, generation, members = group.members.len(), "classic group converted to a consumer group");
        Ok(group)
    }

    /// The classic group this consumer group becomes once only classic members are left
    /// (Kafka's `ClassicGroup.fromConsumerGroup`): Stable at the group epoch with each
    /// member's current assignment; [`Group::rebalance`] then makes them rejoin.
    pub fn to_classic(&self, config: GroupConfig, now: u64) -> Group {
        let members = self
            .members
            .values()
            .filter_map(|m| {
                let classic = m.classic.as_ref()?;
                let partitions: Vec<(String, Vec<i32>)> = m
                    .assigned
                    .iter()
                    .filter_map(|(t, ps)| {
                        Some((
                            self.topic_name(*t)?.to_owned(),
                            ps.iter().copied().collect(),
                        ))
                    })
                    .collect();
                Some(ConvertedMember {
                    id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: classic.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: classic.protocols.clone(),
                    assignment: encode_assignment(subscription_version(classic), &partitions),
                })
            })
            .collect();
        tracing::info!(group = %self.id, epoch = self.group_epoch, "consumer group converted to a classic group");
        Group::from_consumer(self.id.clone(), config, now, self.group_epoch, members)
    }

    /// JoinGroup of a classic member (Kafka's `classicGroupJoinToConsumerGroup`): answered at
    /// once with the member epoch as the generation and no leader (the coordinator assigns).
    /// The member's owned partitions (subscription version 1+) count as its heartbeat's.
    /// The caller has checked the session timeout.
    pub fn classic_join(
        &mut self,
        now: u64,
        request: &JoinRequest,
        topics: &dyn Topics,
    ) -> JoinResponse {
        let refuse = |e| JoinResponse::error_for(e, &request.member_id);
        if request.protocol_type != CONSUMER_PROTOCOL_TYPE || request.protocols.is_empty() {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        let shared = request.protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .filter(|m| m.id != request.member_id)
                .filter_map(|m| m.classic.as_ref())
                .all(|c| c.protocols.iter().any(|(n, _)| n == name))
        });
        if !shared {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        let Some(subscription) = decode_subscription(&request.protocols[0].1) else {
            return refuse(ResponseError::InconsistentGroupProtocol);
        };
        let unknown = request.member_id.is_empty();
        let member_id = if unknown {
            new_member_id()
        } else {
            request.member_id.clone()
        };
        if !self.members.contains_key(&member_id) && self.members.len() >= self.config.max_size {
            return refuse(ResponseError::GroupMaxSizeReached);
        }
        if unknown && request.require_known_member_id && request.group_instance_id.is_none() {
            return JoinResponse::error_for(ResponseError::MemberIdRequired, &member_id);
        }
        if let Some(instance) = &request.group_instance_id {
            if let Some(holder) = self.instances.get(instance).cloned() {
                if holder != member_id {
                    if !unknown {
                        return refuse(ResponseError::FencedInstanceId);
                    }
                    // A restarted static member takes its earlier self's place and partitions.
                    self.rename_member(&holder, &member_id);
                }
            }
        }
        let mut bump = false;
        if let Some(m) = self.members.get(&member_id) {
            if m.classic.is_none() {
                // A consumer-protocol member's id in a JoinGroup: not a classic member here.
                return refuse(ResponseError::UnknownMemberId);
            }
        } else {
            let m = Member::new(member_id.clone());
            if let Some(instance) = &request.group_instance_id {
                self.instances.insert(instance.clone(), member_id.clone());
            }
            self.members.insert(member_id.clone(), m);
            tracing::info!(group = %self.id, member = %member_id, "classic member joined a consumer group");
            bump = true;
        }
        let Some(m) = self.members.get_mut(&member_id) else {
            return refuse(ResponseError::UnknownMemberId);
        };
        m.instance_id = request.group_instance_id.clone();
        if subscription.rack_id.is_some() {
            m.rack_id = subscription.rack_id.clone();
        }
        m.rebalance_timeout_ms = request.rebalance_timeout_ms;
        if m.server_assignor.take().is_some() {
            bump = true;
        }
        if m.subscribed_topic_regex.take().is_some() {
            bump = true;
        }
        let names = sorted(subscription.topics.clone());
        if names != m.subscribed_topic_names {
            m.subscribed_topic_names = names;
            bump = true;
        }
        m.client_id = request.client_id.clone();
        m.client_host = request.client_host.clone();
        m.classic = Some(ClassicMember {
            session_timeout_ms: request.session_timeout_ms,
            protocols: request.protocols.clone(),
        });
        m.session_deadline_ms = now + request.session_timeout_ms;
        // Kafka's sync timeout: the member must send SyncGroup within its rebalance timeout.
        m.classic_deadline_ms = Some(now + request.rebalance_timeout_ms);
        bump |= self.refresh_topics(topics);
        if bump {
            self.bump_epoch();
        }
        let owned: Vec<(Uuid, Vec<i32>)> = subscription
            .owned
            .iter()
            .filter_map(|(name, ps)| Some((topics.get(name)?.id, ps.clone())))
            .collect();
        self.reconcile(now, &member_id, Some(&owned));
        let epoch = self.members.get(&member_id).map_or(-1, |m| m.epoch);
        JoinResponse {
            error: None,
            generation_id: epoch,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol_name: Some(request.protocols[0].0.clone()),
            leader: String::new(),
            member_id,
            members: Vec::new(),
        }
    }

    /// The classic member a request names: by instance id for static members (fenced when
    /// another member id holds it), else by member id; only classic members qualify.
    fn classic_member_id(
        &self,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<String, ResponseError> {
        let id = match instance {
            Some(instance) => {
                let holder = self
                    .instances
                    .get(instance)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if holder != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                holder.clone()
            }
            None => member_id.to_owned(),
        };
        match self.members.get(&id) {
            Some(m) if m.classic.is_some() => Ok(id),
            _ => Err(ResponseError::UnknownMemberId),
        }
    }

    /// SyncGroup of a classic member (Kafka's `classicGroupSyncToConsumerGroup`): its
    /// current assignment, unless a newer group epoch waits for it to rejoin first.
    pub fn classic_sync(
        &mut self,
        now: u64,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> SyncResponse {
        let id = match self.classic_member_id(member_id, instance) {
            Ok(id) => id,
            Err(e) => return SyncResponse::error_for(e),
        };
        let Some(m) = self.members.get(&id) else {
            return SyncResponse::error_for(ResponseError::UnknownMemberId);
        };
        let Some(classic) = m.classic.clone() else {
            return SyncResponse::error_for(ResponseError::UnknownMemberId);
        };
        if generation != m.epoch {
            return SyncResponse::error_for(ResponseError::IllegalGeneration);
        }
        let rejoin = self.group_epoch > m.epoch && m.state != MemberState::UnrevokedPartitions;
        let partitions: Vec<(String, Vec<i32>)> = m
            .assigned
            .iter()
            .filter_map(|(t, ps)| {
                Some((
                    self.topic_name(*t)?.to_owned(),
                    ps.iter().copied().collect(),
                ))
            })
            .collect();
        let Some(m) = self.members.get_mut(&id) else {
            return SyncResponse::error_for(ResponseError::UnknownMemberId);
        };
        if rejoin {
            m.classic_deadline_ms = Some(now + m.rebalance_timeout_ms);
            return SyncResponse::error_for(ResponseError::RebalanceInProgress);
        }
        m.classic_deadline_ms = None;
        m.session_deadline_ms = now + classic.session_timeout_ms;
        SyncResponse {
            error: None,
            protocol_type: Some(CONSUMER_PROTOCOL_TYPE.to_owned()),
            protocol_name: classic.protocols.first().map(|(n, _)| n.clone()),
            assignment: encode_assignment(subscription_version(&classic), &partitions),
        }
    }

    /// Heartbeat of a classic member (Kafka's `classicGroupHeartbeatToConsumerGroup`):
    /// REBALANCE_IN_PROGRESS when the group epoch moved past the member's, when it must revoke
    /// partitions, or when partitions it waits for were released; it must then rejoin within
    /// its rebalance timeout.
    pub fn classic_heartbeat(
        &mut self,
        now: u64,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let id = self.classic_member_id(member_id, instance)?;
        let waiting = self.waiting_on_unreleased(&id);
        let group_epoch = self.group_epoch;
        let m = self
            .members
            .get_mut(&id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if generation != m.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        if let Some(c) = &m.classic {
            m.session_deadline_ms = now + c.session_timeout_ms;
        }
        let rejoin = m.epoch < group_epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions && !waiting);
        if rejoin {
            m.classic_deadline_ms
                .get_or_insert(now + m.rebalance_timeout_ms);
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// LeaveGroup of a classic member, named by member id or (static) instance id.
    pub fn classic_leave(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<(), ResponseError> {
        let id = match instance {
            Some(instance) => {
                let holder = self
                    .instances
                    .get(instance)
                    .cloned()
                    .ok_or(ResponseError::UnknownMemberId)?;
                if !member_id.is_empty() && holder != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
                holder
            }
            None => member_id.to_owned(),
        };
        if self.members.get(&id).is_none_or(|m| m.classic.is_none()) {
            return Err(ResponseError::UnknownMemberId);
        }
        self.remove_member(&id, "classic member left the group");
        Ok(())
    }

    /// Whether a classic member is a member here (for a commit's generation check: its
    /// member epoch, ILLEGAL_GENERATION when it differs, as Kafka answers classic members).
    pub(crate) fn check_classic_commit(
        &mut self,
        now: u64,
        member_id: &str,
        generation: i32,
    ) -> Option<Result<(), ResponseError>> {
        let m = self.members.get_mut(member_id)?;
        let classic = m.classic.as_ref()?;
        if generation != m.epoch {
            return Some(Err(ResponseError::IllegalGeneration));
        }
        m.session_deadline_ms = now + classic.session_timeout_ms;
        Some(Ok(()))
    }

    /// Whether a partition of the member's target that it does not have yet is still held
    /// by another member.
    fn waiting_on_unreleased(&self, member_id: &str) -> bool {
        let (Some(m), Some(target)) = (self.members.get(member_id), self.target.get(member_id))
        else {
            return false;
        };
        target.iter().any(|(t, ps)| {
            ps.iter().any(|p| {
                !m.assigned.get(t).is_some_and(|a| a.contains(p))
                    && self
                        .owners
                        .get(&(*t, *p))
                        .is_some_and(|owner| owner != member_id)
            })
        })
    }

    /// Moves a member (and its partitions and target) to a new member id.
    fn rename_member(&mut self, from: &str, to: &str) {
        let Some(mut m) = self.members.remove(from) else {
            return;
        };
        m.id = to.to_owned();
        for tp in m.owned().collect::<Vec<_>>() {
            self.owners.insert(tp, to.to_owned());
        }
        if let Some(t) = self.target.remove(from) {
            self.target.insert(to.to_owned(), t);
        }
        if let Some(instance) = &m.instance_id {
            self.instances.insert(instance.clone(), to.to_owned());
        }
        self.members.insert(to.to_owned(), m);
    }
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort_unstable();
    names.dedup();
    names
}

/// Partitions by topic name to partitions by topic id; topics that do not exist are left out.
fn by_id(partitions: &[(String, Vec<i32>)], topics: &dyn Topics) -> Assignment {
    let mut out = Assignment::new();
    for (name, ps) in partitions {
        if let Some(info) = topics.get(name) {
            out.entry(info.id).or_default().extend(ps.iter().copied());
        }
    }
    out.retain(|_, ps| !ps.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_and_assignments_decode_as_the_java_client_writes_them() {
        // Version 1: topics [t], no user data, owned [(t, [0, 2])].
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(-1);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(2);
        b.put_i32(0);
        b.put_i32(2);
        let s = decode_subscription(&b).unwrap();
        assert_eq!(s.topics, vec!["t".to_owned()]);
        assert_eq!(s.owned, vec![("t".to_owned(), vec![0, 2])]);
        assert!(decode_subscription(&b[..b.len() - 1]).is_none());
        let a = encode_assignment(1, &[("t".to_owned(), vec![1, 3])]);
        assert_eq!(
            decode_assignment(&a),
            Some(vec![("t".to_owned(), vec![1, 3])])
        );
        assert_eq!(decode_assignment(&[]), Some(Vec::new()));
        assert_eq!(decode_assignment(&[0, 0, 0]), None);
    }
}
