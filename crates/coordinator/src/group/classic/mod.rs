//! The classic consumer group protocol as a state machine that does no I/O: JoinGroup,
//! SyncGroup, Heartbeat and LeaveGroup go in with the current time; answers that must wait
//! (a join until the rebalance completes, a follower's sync until the leader's assignment)
//! come out later as [`Delivery`] values, from whichever call completes them or from
//! [`Group::tick`].
//!
//! States follow Kafka's: Empty → PreparingRebalance → CompletingRebalance → Stable, and back
//! to PreparingRebalance when a member joins, leaves or times out.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

/// Where the group is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// Kafka's name for the state (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
        }
    }
}

/// Coordinator settings, named after Kafka's broker configs.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: u64,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: u64,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: u64,
    /// `group.max.size`.
    pub max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: usize::MAX,
        }
    }
}

/// A JoinGroup as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a member without an id is given one and asked to join again.
    pub require_known_member_id: bool,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// `None` on success.
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// For the leader: every member's id, instance id and metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResponse {
    /// An answer carrying only an error.
    pub fn error_for(error: ResponseError, member_id: &str) -> Self {
        Self::error(error, member_id)
    }

    fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup answer: error and the member's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// `None` on success.
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    /// An answer carrying only an error.
    pub fn error_for(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// An answer that was waiting, now ready for the member it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Join(String, JoinResponse),
    Sync(String, SyncResponse),
}

/// What a call produced: its own answer (if ready) and answers for waiting members.
#[derive(Debug, Default)]
pub struct Outcome<T> {
    /// `None`: the caller's answer comes later as a [`Delivery`] for its member id.
    pub reply: Option<T>,
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_heard_ms: u64,
    /// Order of first joining: the longest-standing member leads.
    joined_order: u64,
    awaiting_join: bool,
    awaiting_sync: bool,
}

impl Member {
    /// The session timeout of the member's JoinGroup.
    pub fn session_timeout_ms(&self) -> u64 {
        self.session_timeout_ms
    }

    /// The rebalance timeout of the member's JoinGroup.
    pub fn rebalance_timeout_ms(&self) -> u64 {
        self.rebalance_timeout_ms
    }

    /// The member's (name, metadata) protocols in its order of preference.
    pub fn protocols(&self) -> &[(String, Bytes)] {
        &self.protocols
    }

    /// The member's metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A member of a consumer group moving into a classic group (an online downgrade).
#[derive(Debug, Clone)]
pub struct ConvertedMember {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocols: Vec<(String, Bytes)>,
    /// Its current assignment as a ConsumerProtocolAssignment.
    pub assignment: Bytes,
}

/// One consumer group.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    config: GroupConfig,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not yet joined, with when they expire.
    pending_members: BTreeMap<String, u64>,
    /// Static members (KIP-345): `group.instance.id` to the member id that holds it.
    instances: BTreeMap<String, String>,
    rebalance_deadline_ms: u64,
    /// The first rebalance of an empty group waits `initial_rebalance_delay_ms` for more members.
    initial_delay: bool,
    joins: u64,
    /// Whether the last GroupMetadataValue of the group (written once it is Stable, or
    /// loaded) names members: once it is Empty, an empty one must follow, or a coordinator
    /// taking over its partition would bring the members back.
    pub logged_members: bool,
}

impl Group {
    pub fn new(id: String, config: GroupConfig) -> Self {
        Self {
            id,
            config,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            instances: BTreeMap::new(),
            rebalance_deadline_ms: 0,
            initial_delay: false,
            joins: 0,
            logged_members: false,
        }
    }

    /// The classic group a consumer group of classic members becomes (Kafka's
    /// `ClassicGroup.fromConsumerGroup`): Stable at `generation` with the members' current
    /// assignments, the first member leading. [`Group::rebalance`] then asks them to rejoin.
    pub fn from_consumer(
        id: String,
        config: GroupConfig,
        now: u64,
        generation: i32,
        members: Vec<ConvertedMember>,
    ) -> Self {
        let mut group = Self::new(id, config);
        group.state = GroupState::Stable;
        group.generation = generation;
        group.protocol_type = Some("consumer".to_owned());
        for m in members {
            group.joins += 1;
            if let Some(instance) = &m.group_instance_id {
                group.instances.insert(instance.clone(), m.id.clone());
            }
            if group.leader.is_none() {
                group.leader = Some(m.id.clone());
            }
            group.members.insert(
                m.id.clone(),
                Member {
                    id: m.id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms.max(m.session_timeout_ms),
                    protocols: m.protocols,
                    assignment: m.assignment,
                    last_heard_ms: now,
                    joined_order: group.joins,
                    awaiting_join: false,
                    awaiting_sync: false,
                },
            );
        }
        group.protocol = group.select_protocol();
        group
    }

    /// The group a GroupMetadataValue describes, as a coordinator taking over its partition
    /// loads it (Kafka's `GroupMetadata.loadGroup`): Empty without members, else Stable at
    /// the stored generation with the stored assignments. Every member's session starts
    /// afresh at `now`, so members go on heartbeating and committing as if nothing moved.
    pub fn from_stored(
        id: String,
        config: GroupConfig,
        now: u64,
        stored: super::records::StoredGroup,
    ) -> Self {
        let mut group = Self::new(id, config);
        group.generation = stored.generation;
        group.protocol_type = Some(stored.protocol_type).filter(|t| !t.is_empty());
        if stored.members.is_empty() {
            return group;
        }
        group.state = GroupState::Stable;
        group.protocol = stored.protocol.filter(|p| !p.is_empty());
        group.leader = stored.leader.filter(|l| !l.is_empty());
        group.logged_members = true;
        let protocol = group.protocol.clone().unwrap_or_default();
        for m in stored.members {
            group.joins += 1;
            if let Some(instance) = &m.group_instance_id {
                group
                    .instances
                    .insert(instance.clone(), m.member_id.clone());
            }
            let session_timeout_ms = u64::try_from(m.session_timeout).unwrap_or(0);
            let rebalance_timeout_ms = u64::try_from(m.rebalance_timeout).unwrap_or(0);
            group.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms,
                    rebalance_timeout_ms: rebalance_timeout_ms.max(session_timeout_ms),
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    last_heard_ms: now,
                    joined_order: group.joins,
                    awaiting_join: false,
                    awaiting_sync: false,
                },
            );
        }
        if group
            .leader
            .as_ref()
            .is_none_or(|l| !group.members.contains_key(l))
        {
            group.leader = group.members.keys().next().cloned();
        }
        group
    }

    /// Answers REBALANCE_IN_PROGRESS to every waiting JoinGroup and SyncGroup: the group is
    /// becoming a consumer group, and its members rejoin that.
    pub fn abandon_waiters(&mut self) -> Vec<Delivery> {
        let mut out = Vec::new();
        for m in self.members.values_mut() {
            if std::mem::take(&mut m.awaiting_join) {
                out.push(Delivery::Join(
                    m.id.clone(),
                    JoinResponse::error(ResponseError::RebalanceInProgress, &m.id),
                ));
            }
            if std::mem::take(&mut m.awaiting_sync) {
                out.push(Delivery::Sync(
                    m.id.clone(),
                    SyncResponse::error_for(ResponseError::RebalanceInProgress),
                ));
            }
        }
        out
    }

    /// Starts a rebalance of a Stable group (its members learn of it from their heartbeats).
    pub fn rebalance(&mut self, now: u64) -> Vec<Delivery> {
        if self.state == GroupState::PreparingRebalance {
            return Vec::new();
        }
        self.prepare_rebalance(now)
    }

    /// Whether `instance` is held by a member other than `member_id` (a fenced static member).
    pub fn fenced(&self, member_id: &str, instance: Option<&str>) -> bool {
        instance
            .and_then(|i| self.instances.get(i))
            .is_some_and(|holder| holder != member_id)
    }

    /// The member id holding a static instance id.
    pub fn member_for_instance(&self, instance: &str) -> Option<String> {
        self.instances.get(instance).cloned()
    }

    fn forget_departed_instances(&mut self) {
        let (members, pending) = (&self.members, &self.pending_members);
        self.instances
            .retain(|_, id| members.contains_key(id) || pending.contains_key(id));
    }

    fn max_rebalance_timeout(&self) -> u64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    /// Moves to PreparingRebalance; pending syncs are answered REBALANCE_IN_PROGRESS.
    fn prepare_rebalance(&mut self, now: u64) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        for m in self.members.values_mut() {
            if m.awaiting_sync {
                m.awaiting_sync = false;
                deliveries.push(Delivery::Sync(
                    m.id.clone(),
                    SyncResponse::error_for(ResponseError::RebalanceInProgress),
                ));
            }
        }
        self.initial_delay = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline_ms = if self.initial_delay {
            now + self
                .config
                .initial_rebalance_delay_ms
                .min(self.max_rebalance_timeout())
        } else {
            now + self.max_rebalance_timeout()
        };
        deliveries
    }

    fn sync_error(&self, error: ResponseError) -> SyncResponse {
        SyncResponse::error_for(error)
    }

    /// SyncGroup: the leader's assignments complete the rebalance.
    pub fn sync(
        &mut self,
        now: u64,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Outcome<SyncResponse> {
        let reply = |r| Outcome {
            reply: Some(r),
            deliveries: vec![],
        };
        let Some(member) = self.members.get_mut(member_id) else {
            return reply(self.sync_error(ResponseError::UnknownMemberId));
        };
        member.last_heard_ms = now;
        if generation != self.generation {
            return reply(self.sync_error(ResponseError::IllegalGeneration));
        }
        match self.state {
            GroupState::Empty => reply(self.sync_error(ResponseError::UnknownMemberId)),
            GroupState::PreparingRebalance => {
                reply(self.sync_error(ResponseError::RebalanceInProgress))
            }
            GroupState::Stable => reply(self.sync_ok(member_id)),
            GroupState::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.awaiting_sync = true;
                }
                if self.leader.as_deref() != Some(member_id) {
                    return Outcome {
                        reply: None,
                        deliveries: vec![],
                    };
                }
                for m in self.members.values_mut() {
                    m.assignment = Bytes::new();
                }
                for (id, assignment) in assignments {
                    if let Some(m) = self.members.get_mut(&id) {
                        m.assignment = assignment;
                    }
                }
                self.state = GroupState::Stable;
                self.logged_members = true;
                let waiting: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.awaiting_sync)
                    .map(|m| m.id.clone())
                    .collect();
                let mut deliveries = Vec::new();
                for id in waiting {
                    if let Some(m) = self.members.get_mut(&id) {
                        m.awaiting_sync = false;
                    }
                    deliveries.push(Delivery::Sync(id.clone(), self.sync_ok(&id)));
                }
                let reply = take_sync(&mut deliveries, member_id);
                Outcome { reply, deliveries }
            }
        }
    }

    fn sync_ok(&self, member_id: &str) -> SyncResponse {
        SyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// Heartbeat: keeps the member alive and tells it when to rejoin.
    pub fn heartbeat(
        &mut self,
        now: u64,
        member_id: &str,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let Some(member) = self.members.get_mut(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        member.last_heard_ms = now;
        match self.state {
            GroupState::Empty => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ if generation != self.generation => Err(ResponseError::IllegalGeneration),
            _ => Ok(()),
        }
    }

    /// Whether `member_id` (static: `instance`) of `generation` may commit offsets now (`Ok`)
    /// or why not, by Kafka's rules for OffsetCommit: a commit without generation and member
    /// (a standalone consumer, an admin's offset reset) only to an empty group, UNKNOWN_MEMBER_ID
    /// otherwise; a member's commit needs its membership (FENCED_INSTANCE_ID for a static member
    /// named by another member id) and the current generation, and is accepted in Stable and in
    /// PreparingRebalance (the heartbeat tells of the rebalance, so a member can commit what it
    /// processed before it gives its partitions up); only CompletingRebalance answers
    /// REBALANCE_IN_PROGRESS. An accepted member commit counts as a heartbeat.
    pub fn check_commit(
        &mut self,
        now: u64,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation < 0 && member_id.is_empty() && instance.is_none() {
            return Err(ResponseError::UnknownMemberId);
        }
        match instance.map(|i| self.instances.get(i)) {
            Some(Some(holder)) if holder != member_id => {
                return Err(ResponseError::FencedInstanceId)
            }
            Some(None) => return Err(ResponseError::UnknownMemberId),
            _ => {}
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_heard_ms = now;
        }
        Ok(())
    }

    /// LeaveGroup for one member; the others rebalance.
    pub fn leave(&mut self, now: u64, member_id: &str) -> Outcome<Result<(), ResponseError>> {
        if self.members.remove(member_id).is_none()
            && self.pending_members.remove(member_id).is_none()
        {
            return Outcome {
                reply: Some(Err(ResponseError::UnknownMemberId)),
                deliveries: vec![],
            };
        }
        let deliveries = self.members_changed(now);
        Outcome {
            reply: Some(Ok(())),
            deliveries,
        }
    }

    fn members_changed(&mut self, now: u64) -> Vec<Delivery> {
        self.forget_departed_instances();
        if self
            .leader
            .as_ref()
            .is_some_and(|l| !self.members.contains_key(l))
        {
            self.leader = None;
        }
        let mut deliveries = Vec::new();
        match self.state {
            GroupState::PreparingRebalance => {}
            _ if self.members.is_empty() => {
                self.state = GroupState::Empty;
                self.generation += 1;
                self.protocol = None;
                return deliveries;
            }
            _ => deliveries.extend(self.prepare_rebalance(now)),
        }
        deliveries.extend(self.try_complete_join(now));
        deliveries
    }

    /// Expires members whose session lapsed and completes joins whose time has come.
    pub fn tick(&mut self, now: u64) -> Vec<Delivery> {
        self.pending_members.retain(|_, deadline| *deadline > now);
        self.forget_departed_instances();
        let preparing = self.state == GroupState::PreparingRebalance;
        let expired: Vec<String> = self
            .members
            .values()
            // A member waiting in a join is bounded by the rebalance deadline instead.
            .filter(|m| {
                !(preparing && m.awaiting_join) && m.last_heard_ms + m.session_timeout_ms <= now
            })
            .map(|m| m.id.clone())
            .collect();
        let mut deliveries = Vec::new();
        if !expired.is_empty() {
            for id in &expired {
                tracing::info!(group = %self.id, member = %id, "member session expired");
                self.members.remove(id);
            }
            deliveries.extend(self.members_changed(now));
        }
        deliveries.extend(self.try_complete_join(now));
        deliveries
    }

    /// The group as GroupMetadataValue stores it.
    pub fn stored(&self, now_ms: i64) -> super::records::StoredGroup {
        let protocol = self.protocol.clone().unwrap_or_default();
        super::records::StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: now_ms,
            members: self
                .members
                .values()
                .map(|m| super::records::StoredMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms as i32,
                    session_timeout: m.session_timeout_ms as i32,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }
}

fn take_join(deliveries: &mut Vec<Delivery>, member_id: &str) -> Option<JoinResponse> {
    let at = deliveries
        .iter()
        .position(|d| matches!(d, Delivery::Join(id, _) if id == member_id))?;
    match deliveries.remove(at) {
        Delivery::Join(_, r) => Some(r),
        Delivery::Sync(..) => None,
    }
}

fn take_sync(deliveries: &mut Vec<Delivery>, member_id: &str) -> Option<SyncResponse> {
    let at = deliveries
        .iter()
        .position(|d| matches!(d, Delivery::Sync(id, _) if id == member_id))?;
    match deliveries.remove(at) {
        Delivery::Sync(_, r) => Some(r),
        Delivery::Join(..) => None,
    }
}

mod join;
#[cfg(test)]
mod tests;
