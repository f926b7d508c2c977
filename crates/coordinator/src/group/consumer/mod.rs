//! The consumer group protocol of KIP-848 as a state machine that does no I/O: each
//! ConsumerGroupHeartbeat goes in with the current time and a view of the topics, and its
//! answer comes straight out; [`ConsumerGroup::tick`] expires sessions and revocations.
//!
//! Epochs, as in Apache Kafka's `GroupMetadataManager`: the group epoch grows whenever
//! membership, a subscription or a subscribed topic's partition count changes; the target
//! assignment is recomputed for the new group epoch (its assignment epoch); each member then
//! moves to it one heartbeat at a time through [`member::reconcile`], which never gives a
//! partition to a member while another one still holds it.

pub mod assignor;
pub mod classic_member;
pub mod member;
mod persist;
pub mod records;
mod request;

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

pub use assignor::TopicInfo;
use assignor::{AssignorMember, ASSIGNORS};
pub use member::{ClassicMember, Member, MemberState};
use request::compile;
pub use request::{new_member_id, validate, Heartbeat, HeartbeatError, HeartbeatReply};

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The topics subscriptions resolve against: the metadata image, as the caller sees it.
pub trait Topics: Sync {
    /// A topic by name, if it exists (and is not internal).
    fn get(&self, name: &str) -> Option<TopicInfo>;
    /// The names of every topic a regular expression may match (internal ones excluded).
    fn names(&self) -> Vec<String>;
}

/// The member epoch of a member leaving the group.
pub const LEAVE_EPOCH: i32 = -1;
/// The member epoch of a static member leaving for a while (it keeps its partitions).
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Coordinator settings of the consumer protocol, named after Kafka's broker configs.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `group.consumer.max.size`.
    pub max_size: usize,
    /// `group.consumer.migration.policy`: which conversions between the protocols a group
    /// may go through while it has members.
    pub migration: MigrationPolicy,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: usize::MAX,
            migration: MigrationPolicy::default(),
        }
    }
}

/// `group.consumer.migration.policy` (KIP-848 online migration): whether a non-empty classic
/// group becomes a consumer group when a consumer-protocol member joins it (upgrade), and
/// whether a consumer group whose last consumer-protocol member left becomes a classic
/// group again (downgrade). Kafka 4's default is `bidirectional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    #[default]
    Bidirectional,
}

impl MigrationPolicy {
    /// Whether a classic group with members may become a consumer group.
    pub fn upgrade(self) -> bool {
        matches!(self, Self::Upgrade | Self::Bidirectional)
    }

    /// Whether a consumer group left with classic members only may become a classic group.
    pub fn downgrade(self) -> bool {
        matches!(self, Self::Downgrade | Self::Bidirectional)
    }
}

impl std::str::FromStr for MigrationPolicy {
    type Err = String;

    /// Kafka's names, in any case.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "disabled" => Ok(Self::Disabled),
            "upgrade" => Ok(Self::Upgrade),
            "downgrade" => Ok(Self::Downgrade),
            "bidirectional" => Ok(Self::Bidirectional),
            _ => Err("expected one of disabled, upgrade, downgrade, bidirectional".to_owned()),
        }
    }
}

/// The group's life cycle state, as ConsumerGroupDescribe and ListGroups name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    /// Kafka's name for the state.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
        }
    }
}

/// One consumer-protocol group.
#[derive(Debug)]
pub struct ConsumerGroup {
    pub id: String,
    config: ConsumerGroupConfig,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    /// Static members: instance id to member id.
    instances: BTreeMap<String, String>,
    /// Target assignment by member id, at `assignment_epoch`.
    pub target: BTreeMap<String, Assignment>,
    /// Which member holds each partition (assigned or pending revocation).
    owners: BTreeMap<(Uuid, i32), String>,
    /// The subscribed topics that exist, as last seen.
    pub topics: BTreeMap<String, TopicInfo>,
    /// Members' regular expressions and the topics each matched when last resolved.
    resolved: BTreeMap<String, BTreeSet<String>>,
    /// What `__consumer_offsets` holds for the group.
    persisted: persist::Persisted,
}

impl ConsumerGroup {
    /// An empty group at epoch 0.
    pub fn new(id: String, config: ConsumerGroupConfig) -> Self {
        Self {
            id,
            config,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            instances: BTreeMap::new(),
            target: BTreeMap::new(),
            owners: BTreeMap::new(),
            topics: BTreeMap::new(),
            resolved: BTreeMap::new(),
            persisted: persist::Persisted::default(),
        }
    }

    /// The group's state.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch != self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the group uses: the one most members ask for, else the default.
    pub fn assignor(&self) -> &'static str {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        let mut best = (ASSIGNORS[0], 0);
        for a in ASSIGNORS {
            let v = votes.get(a).copied().unwrap_or(0);
            if v > best.1 {
                best = (a, v);
            }
        }
        best.0
    }

    /// Name of a subscribed topic by id.
    pub fn topic_name(&self, id: Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.as_str())
    }

    /// One ConsumerGroupHeartbeat (already [`validate`]d). `topics` is the current metadata.
    pub fn heartbeat(
        &mut self,
        now: u64,
        request: Heartbeat,
        topics: &dyn Topics,
    ) -> Result<HeartbeatReply, HeartbeatError> {
        if request.member_epoch == LEAVE_EPOCH || request.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(now, &request);
        }
        let mut member_id = request.member_id.clone();
        let mut bump = self.group_epoch == 0;
        if request.member_epoch == 0 {
            if member_id.is_empty() {
                member_id = new_member_id();
            }
            bump |= self.join(now, &member_id, &request)?;
        } else {
            let member = self
                .members
                .get(&member_id)
                .ok_or_else(|| HeartbeatError::UnknownMemberId(member_id.clone()))?;
            if let (Some(instance), Some(held)) = (&request.instance_id, &member.instance_id) {
                if instance != held {
                    return Err(HeartbeatError::FencedInstanceId {
                        instance: instance.clone(),
                        member: member_id,
                    });
                }
            }
            check_epoch(member, request.member_epoch, request.owned.as_deref())?;
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return Err(HeartbeatError::UnknownMemberId(member_id));
        };
        let before = member.assigned.clone();
        if let Some(instance) = &request.instance_id {
            member.instance_id = Some(instance.clone());
        }
        if request.rack_id.is_some() {
            member.rack_id = request.rack_id.clone();
        }
        if request.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms as u64;
        }
        if let Some(a) = &request.server_assignor {
            if member.server_assignor.as_ref() != Some(a) {
                member.server_assignor = Some(a.clone());
                bump = true;
            }
        }
        if let Some(re) = &request.subscribed_topic_regex {
            let re = Some(re.clone()).filter(|r| !r.is_empty());
            if re != member.subscribed_topic_regex {
                member.subscribed_topic_regex = re;
                bump = true;
            }
        }
        if let Some(names) = &request.subscribed_topic_names {
            let mut names = names.clone();
            names.sort_unstable();
            names.dedup();
            if names != member.subscribed_topic_names {
                member.subscribed_topic_names = names;
                bump = true;
            }
        }
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.session_deadline_ms = now + self.config.session_timeout_ms;

        bump |= self.refresh_topics(topics);
        if bump {
            self.bump_epoch();
        }
        self.reconcile(now, &member_id, request.owned.as_deref());
        let member = &self.members[&member_id];
        let full = request.member_epoch == 0
            || (request.rebalance_timeout_ms != -1
                && request.subscribed_topic_names.is_some()
                && request.owned.is_some());
        Ok(HeartbeatReply {
            member_id: member_id.clone(),
            member_epoch: member.epoch,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms as i32,
            assignment: (full || member.assigned != before).then(|| member.assigned.clone()),
        })
    }

    /// A member joining (epoch 0). Returns whether the group epoch must grow.
    fn join(
        &mut self,
        now: u64,
        member_id: &str,
        request: &Heartbeat,
    ) -> Result<bool, HeartbeatError> {
        if let Some(instance) = &request.instance_id {
            if let Some(holder) = self.instances.get(instance).cloned() {
                if holder != member_id {
                    let previous = &self.members[&holder];
                    if previous.epoch != STATIC_LEAVE_EPOCH {
                        return Err(HeartbeatError::UnreleasedInstanceId(instance.clone()));
                    }
                    // A static member back under a new member id takes over its assignment.
                    let Some(mut m) = self.members.remove(&holder) else {
                        return Ok(false);
                    };
                    m.id = member_id.to_owned();
                    m.epoch = 0;
                    m.previous_epoch = 0;
                    for tp in m.owned().collect::<Vec<_>>() {
                        self.owners.insert(tp, member_id.to_owned());
                    }
                    if let Some(t) = self.target.remove(&holder) {
                        self.target.insert(member_id.to_owned(), t);
                    }
                    self.members.insert(member_id.to_owned(), m);
                    self.instances
                        .insert(instance.clone(), member_id.to_owned());
                    return Ok(false);
                }
            }
        }
        match self.members.get_mut(member_id) {
            Some(m) => {
                // A known member rejoining has given its partitions up (it says it owns none).
                let held: Vec<(Uuid, i32)> = m.owned().collect();
                m.assigned.clear();
                m.pending_revocation.clear();
                m.state = MemberState::Stable;
                m.revocation_deadline_ms = None;
                m.previous_epoch = m.epoch;
                m.epoch = 0;
                for tp in held {
                    self.owners.remove(&tp);
                }
                Ok(false)
            }
            None => {
                if self.members.len() >= self.config.max_size {
                    return Err(HeartbeatError::GroupMaxSizeReached(self.config.max_size));
                }
                let mut m = Member::new(member_id.to_owned());
                m.session_deadline_ms = now + self.config.session_timeout_ms;
                if let Some(instance) = &request.instance_id {
                    self.instances
                        .insert(instance.clone(), member_id.to_owned());
                }
                self.members.insert(member_id.to_owned(), m);
                tracing::info!(group = %self.id, member = member_id, "member joined");
                Ok(true)
            }
        }
    }

    /// Epoch -1 (leave) or -2 (a static member leaving for a while).
    fn leave(&mut self, now: u64, request: &Heartbeat) -> Result<HeartbeatReply, HeartbeatError> {
        let member_id = match &request.instance_id {
            Some(instance) => {
                let holder =
                    self.instances.get(instance).cloned().ok_or_else(|| {
                        HeartbeatError::UnknownMemberId(request.member_id.clone())
                    })?;
                if holder != request.member_id {
                    return Err(HeartbeatError::FencedInstanceId {
                        instance: instance.clone(),
                        member: request.member_id.clone(),
                    });
                }
                holder
            }
            None => request.member_id.clone(),
        };
        if !self.members.contains_key(&member_id) {
            return Err(HeartbeatError::UnknownMemberId(member_id));
        }
        if request.member_epoch == STATIC_LEAVE_EPOCH {
            if let Some(m) = self.members.get_mut(&member_id) {
                // Its partitions stay with it until it returns or its session lapses.
                m.previous_epoch = m.epoch;
                m.epoch = STATIC_LEAVE_EPOCH;
                m.session_deadline_ms = now + self.config.session_timeout_ms;
            }
        } else {
            self.remove_member(&member_id, "left the group");
        }
        Ok(HeartbeatReply {
            member_id,
            member_epoch: request.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// Removes a member, frees its partitions and starts a new group epoch.
    fn remove_member(&mut self, member_id: &str, why: &str) {
        let Some(m) = self.members.remove(member_id) else {
            return;
        };
        tracing::info!(group = %self.id, member = member_id, why, "member removed");
        for tp in m.owned() {
            if self.owners.get(&tp).is_some_and(|o| o == member_id) {
                self.owners.remove(&tp);
            }
        }
        if let Some(instance) = &m.instance_id {
            if self.instances.get(instance).is_some_and(|h| h == member_id) {
                self.instances.remove(instance);
            }
        }
        self.target.remove(member_id);
        self.bump_epoch();
    }

    /// Re-reads the subscribed topics (and what the members' regular expressions match);
    /// whether anything changed.
    fn refresh_topics(&mut self, lookup: &dyn Topics) -> bool {
        let regexes: BTreeSet<&String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.as_ref())
            .collect();
        let mut resolved = BTreeMap::new();
        if !regexes.is_empty() {
            let all = lookup.names();
            for re in regexes {
                // Validated when it came in; one that does not compile matches nothing.
                let matched: BTreeSet<String> = match compile(re) {
                    Ok(r) => all.iter().filter(|n| r.is_match(n)).cloned().collect(),
                    Err(_) => BTreeSet::new(),
                };
                resolved.insert(re.clone(), matched);
            }
        }
        let names: BTreeSet<&str> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.iter().map(String::as_str))
            .chain(resolved.values().flatten().map(String::as_str))
            .collect();
        let topics: BTreeMap<String, TopicInfo> = names
            .into_iter()
            .filter_map(|n| lookup.get(n).map(|t| (n.to_owned(), t)))
            .collect();
        self.resolved = resolved;
        if topics == self.topics {
            return false;
        }
        self.topics = topics;
        true
    }

    /// The topics a member subscribes to: by name and through its regular expression.
    pub fn member_topics<'a>(&'a self, m: &'a Member) -> BTreeSet<&'a str> {
        let matched = m
            .subscribed_topic_regex
            .as_ref()
            .and_then(|re| self.resolved.get(re))
            .into_iter()
            .flatten();
        m.subscribed_topic_names
            .iter()
            .chain(matched)
            .map(String::as_str)
            .collect()
    }

    /// A new group epoch and its target assignment.
    fn bump_epoch(&mut self) {
        self.group_epoch += 1;
        let assignor = self.assignor();
        let members: Vec<AssignorMember<'_>> = self
            .members
            .values()
            .map(|m| AssignorMember {
                id: &m.id,
                topics: self
                    .member_topics(m)
                    .into_iter()
                    .filter(|n| self.topics.contains_key(*n))
                    .collect(),
                previous: self.target.get(&m.id),
            })
            .collect();
        self.target = assignor::assign(assignor, &members, &self.topics);
        self.assignment_epoch = self.group_epoch;
        tracing::debug!(group = %self.id, epoch = self.group_epoch, assignor, "new target assignment");
    }

    /// Moves one member towards its target and keeps the partition owners in step.
    fn reconcile(&mut self, now: u64, member_id: &str, owned: Option<&[(Uuid, Vec<i32>)]>) {
        let empty = Assignment::new();
        let target = self.target.get(member_id).unwrap_or(&empty);
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        let before: Vec<(Uuid, i32)> = member.owned().collect();
        let owners = &self.owners;
        member::reconcile(member, self.assignment_epoch, target, owned, |t, p| {
            owners.contains_key(&(t, p))
        });
        member.revocation_deadline_ms = match member.state {
            // A classic member is bounded by its rejoin deadline instead (Kafka's join timeout).
            MemberState::UnrevokedPartitions if member.classic.is_none() => member
                .revocation_deadline_ms
                .or(Some(now + member.rebalance_timeout_ms)),
            _ => None,
        };
        let after: Vec<(Uuid, i32)> = member.owned().collect();
        for tp in before {
            if self.owners.get(&tp).is_some_and(|o| o == member_id) {
                self.owners.remove(&tp);
            }
        }
        for tp in after {
            self.owners.insert(tp, member_id.to_owned());
        }
    }

    /// Removes members whose session lapsed, who did not revoke partitions within their
    /// rebalance timeout, or (classic members) did not rejoin or sync within it. Whether any
    /// member was removed.
    pub fn tick(&mut self, now: u64) -> bool {
        let expired: Vec<(String, &'static str)> = self
            .members
            .values()
            .filter_map(|m| {
                if m.session_deadline_ms <= now {
                    Some((m.id.clone(), "session expired"))
                } else if m.revocation_deadline_ms.is_some_and(|d| d <= now) {
                    Some((
                        m.id.clone(),
                        "partitions not revoked within the rebalance timeout",
                    ))
                } else if m.classic_deadline_ms.is_some_and(|d| d <= now) {
                    Some((
                        m.id.clone(),
                        "classic member did not rejoin or sync within the rebalance timeout",
                    ))
                } else {
                    None
                }
            })
            .collect();
        let removed = !expired.is_empty();
        for (id, why) in expired {
            self.remove_member(&id, why);
        }
        removed
    }

    /// Whether the group may become a classic group (Kafka's online downgrade): it has
    /// members and every one of them uses the classic protocol.
    pub fn only_classic_members(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|m| m.classic.is_some())
    }

    /// Whether `member_id` at `epoch` may commit offsets with OffsetCommit `version`.
    pub fn check_commit(
        &self,
        member_id: &str,
        epoch: i32,
        version: i16,
    ) -> Result<(), HeartbeatError> {
        if epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or_else(|| HeartbeatError::UnknownMemberId(member_id.to_owned()))?;
        if version < 9 {
            return Err(HeartbeatError::UnsupportedVersion);
        }
        if epoch != member.epoch {
            return Err(HeartbeatError::StaleMemberEpoch {
                received: epoch,
                known: member.epoch,
            });
        }
        Ok(())
    }

    /// Whether an OffsetFetch naming `member_id` at `epoch` may read (anyone may read
    /// without naming a member).
    pub fn check_fetch(&self, member_id: Option<&str>, epoch: i32) -> Result<(), HeartbeatError> {
        let Some(member_id) = member_id else {
            return Ok(());
        };
        if epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or_else(|| HeartbeatError::UnknownMemberId(member_id.to_owned()))?;
        if epoch != member.epoch {
            return Err(HeartbeatError::StaleMemberEpoch {
                received: epoch,
                known: member.epoch,
            });
        }
        Ok(())
    }
}

/// Kafka's epoch check for a known member: a newer epoch than the coordinator's is fenced;
/// an older one only if it is not the previous epoch with owned partitions inside the current
/// assignment (the answer that bumped the epoch may have been lost).
fn check_epoch(
    member: &Member,
    received: i32,
    owned: Option<&[(Uuid, Vec<i32>)]>,
) -> Result<(), HeartbeatError> {
    let fenced = Err(HeartbeatError::FencedMemberEpoch {
        received,
        known: member.epoch,
    });
    if received > member.epoch {
        return fenced;
    }
    if received < member.epoch {
        let subset = owned.is_some_and(|owned| {
            owned.iter().all(|(t, ps)| {
                member
                    .assigned
                    .get(t)
                    .is_some_and(|a| ps.iter().all(|p| a.contains(p)))
            })
        });
        if received != member.previous_epoch || !subset {
            return fenced;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
