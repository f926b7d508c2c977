//! The in-memory state of the groups this node coordinates: classic groups, consumer
//! groups and committed offsets, with the waiting JoinGroup/SyncGroup answers. Persistence
//! is the caller's ([`super::GroupHandle`]); this only changes state and hands out records.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::classic::{
    self, Delivery, Group, GroupConfig, GroupState, JoinRequest, JoinResponse, SyncResponse,
};
use super::consumer::classic_member::CONSUMER_PROTOCOL_TYPE;
use super::consumer::{
    self, ConsumerGroup, ConsumerGroupConfig, Heartbeat, HeartbeatError, HeartbeatReply,
};
use super::records::{self, CommittedOffset, OffsetsRecord};
use super::ListedGroup;
use crate::error::CoordinatorError;
use crate::log::Record;
use crate::ownership::CoordinatorState;
use kafka_protocol::error::ResponseError;

enum Waiter {
    Join(oneshot::Sender<JoinResponse>),
    Sync(oneshot::Sender<SyncResponse>),
}

/// An offset committed in a transaction: (group, (topic, partition), offset).
type PendingOffset = (String, (String, i32), CommittedOffset);

#[derive(Default)]
struct Inner {
    groups: HashMap<String, Group>,
    consumer_groups: HashMap<String, ConsumerGroup>,
    waiters: HashMap<(String, String), Waiter>,
    offsets: HashMap<String, BTreeMap<(String, i32), CommittedOffset>>,
    /// Offsets committed in a transaction (TxnOffsetCommit), by producer id: the group's
    /// once that producer's COMMIT marker is written, dropped on ABORT.
    pending_txn_offsets: HashMap<i64, Vec<PendingOffset>>,
}

impl Inner {
    fn deliver(&mut self, group: &str, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            let (member, ok) = match delivery {
                Delivery::Join(member, response) => {
                    let key = (group.to_owned(), member.clone());
                    let ok = match self.waiters.remove(&key) {
                        Some(Waiter::Join(tx)) => tx.send(response).is_ok(),
                        _ => false,
                    };
                    (member, ok)
                }
                Delivery::Sync(member, response) => {
                    let key = (group.to_owned(), member.clone());
                    let ok = match self.waiters.remove(&key) {
                        Some(Waiter::Sync(tx)) => tx.send(response).is_ok(),
                        _ => false,
                    };
                    (member, ok)
                }
            };
            if !ok {
                tracing::debug!(group, member, "no waiting request for a group answer");
            }
        }
    }
}

/// Milliseconds since the epoch, for the timestamps of records.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A consumer group's records since the last write, encoded.
fn consumer_records(group: &mut ConsumerGroup) -> Vec<Record> {
    let id = group.id.clone();
    group
        .take_records()
        .iter()
        .filter_map(|r| consumer::records::encode(&id, r))
        .collect()
}

/// The groups of one node, in memory.
pub(crate) struct Groups {
    config: GroupConfig,
    consumer_config: ConsumerGroupConfig,
    started: Instant,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Groups {
    /// No groups yet, with settings for both protocols.
    pub(crate) fn new(config: GroupConfig, consumer_config: ConsumerGroupConfig) -> Self {
        Self {
            config,
            consumer_config,
            started: Instant::now(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// JoinGroup of a classic member to a consumer group with members (KIP-848's mixed
    /// groups), answered at once; `None` when there is no such group (the classic path then
    /// serves it). `write` appends the group's changed records under the lock.
    pub(crate) fn join_consumer_group(
        &self,
        group_id: &str,
        request: &JoinRequest,
        topics: &dyn consumer::Topics,
        write: &RecordWriter<'_>,
    ) -> Option<JoinResponse> {
        let mut inner = self.inner.lock();
        let now = self.now();
        let group = inner
            .consumer_groups
            .get_mut(group_id)
            .filter(|g| !g.members.is_empty())?;
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Some(JoinResponse::error_for(
                ResponseError::InvalidSessionTimeout,
                &request.member_id,
            ));
        }
        let response = group.classic_join(now, request, topics);
        let records = consumer_records(group);
        if !records.is_empty() {
            if let Err(e) = write(&records) {
                return Some(JoinResponse::error_for(e.error(), &request.member_id));
            }
        }
        Some(response)
    }

    /// JoinGroup; waits until the rebalance completes (bounded by the rebalance timeout).
    pub(crate) async fn join(&self, group_id: &str, request: JoinRequest) -> JoinResponse {
        let limit = Duration::from_millis(
            request.rebalance_timeout_ms.max(request.session_timeout_ms) + 5_000,
        );
        let member_hint = request.member_id.clone();
        let rx = {
            let mut inner = self.inner.lock();
            let now = self.now();
            let config = self.config;
            match inner.consumer_groups.get(group_id) {
                Some(g) if !g.members.is_empty() => {
                    return JoinResponse::error_for(
                        ResponseError::InconsistentGroupProtocol,
                        &member_hint,
                    );
                }
                Some(_) => {
                    inner.consumer_groups.remove(group_id);
                }
                None => {}
            }
            let group = inner
                .groups
                .entry(group_id.to_owned())
                .or_insert_with(|| Group::new(group_id.to_owned(), config));
            let (member_id, outcome) = group.join(now, request);
            inner.deliver(group_id, outcome.deliveries);
            if let Some(reply) = outcome.reply {
                return reply;
            }
            let (tx, rx) = oneshot::channel();
            inner
                .waiters
                .insert((group_id.to_owned(), member_id), Waiter::Join(tx));
            rx
        };
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(response)) => response,
            _ => JoinResponse::error_for(ResponseError::RebalanceInProgress, &member_hint),
        }
    }

    /// SyncGroup; a follower waits for the leader's assignment.
    pub(crate) async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResponse {
        let rx = {
            let mut inner = self.inner.lock();
            let now = self.now();
            if let Some(group) = inner.consumer_groups.get_mut(group_id) {
                return group.classic_sync(now, member_id, instance, generation);
            }
            let Some(group) = inner.groups.get_mut(group_id) else {
                return SyncResponse::error_for(ResponseError::UnknownMemberId);
            };
            if group.fenced(member_id, instance) {
                return SyncResponse::error_for(ResponseError::FencedInstanceId);
            }
            let outcome = group.sync(now, member_id, generation, assignments);
            inner.deliver(group_id, outcome.deliveries);
            if let Some(reply) = outcome.reply {
                return reply;
            }
            let (tx, rx) = oneshot::channel();
            inner.waiters.insert(
                (group_id.to_owned(), member_id.to_owned()),
                Waiter::Sync(tx),
            );
            rx
        };
        match tokio::time::timeout(Duration::from_secs(300), rx).await {
            Ok(Ok(response)) => response,
            _ => SyncResponse::error_for(ResponseError::RebalanceInProgress),
        }
    }

    /// Heartbeat.
    pub(crate) fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let mut inner = self.inner.lock();
        let now = self.now();
        if let Some(group) = inner.consumer_groups.get_mut(group_id) {
            return group.classic_heartbeat(now, member_id, instance, generation);
        }
        match inner.groups.get_mut(group_id) {
            Some(group) if group.fenced(member_id, instance) => {
                Err(ResponseError::FencedInstanceId)
            }
            Some(group) => group.heartbeat(now, member_id, generation),
            None => Err(ResponseError::UnknownMemberId),
        }
    }

    /// LeaveGroup for one member, named by member id or (static members) instance id. A
    /// classic member of a consumer group leaves that group; `write` appends its records
    /// (and a downgrade's) under the lock.
    pub(crate) fn leave(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        write: &RecordWriter<'_>,
    ) -> Result<(), ResponseError> {
        let mut inner = self.inner.lock();
        let now = self.now();
        if let Some(group) = inner.consumer_groups.get_mut(group_id) {
            group.classic_leave(member_id, instance)?;
            let records = match self.maybe_downgrade(&mut inner, group_id, now) {
                Some(records) => records,
                None => inner
                    .consumer_groups
                    .get_mut(group_id)
                    .map(consumer_records)
                    .unwrap_or_default(),
            };
            if !records.is_empty() {
                write(&records).map_err(|e| e.error())?;
            }
            return Ok(());
        }
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        let member_id = match instance.and_then(|i| group.member_for_instance(i)) {
            Some(holder) if member_id.is_empty() || holder == member_id => holder,
            Some(_) => return Err(ResponseError::FencedInstanceId),
            None => member_id.to_owned(),
        };
        let outcome = group.leave(now, &member_id);
        inner.deliver(group_id, outcome.deliveries);
        outcome.reply.unwrap_or(Ok(()))
    }

    /// Whether a commit by this member and generation (member epoch, for consumer groups) is
    /// allowed (`Ok`) or its error. `version` is the OffsetCommit version.
    pub(crate) fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        version: i16,
    ) -> Result<(), ResponseError> {
        let mut inner = self.inner.lock();
        let now = self.now();
        if let Some(group) = inner.consumer_groups.get_mut(group_id) {
            if let Some(checked) = group.check_classic_commit(now, member_id, generation) {
                return checked;
            }
            return group
                .check_commit(member_id, generation, version)
                .map_err(|e| e.error());
        }
        let inner = &mut *inner;
        match inner.groups.get_mut(group_id) {
            Some(group) => group.check_commit(now, member_id, instance, generation),
            None if generation < 0 => Ok(()),
            // A group known only by its offsets is Kafka's empty simple group: no members.
            None if inner.offsets.contains_key(group_id) => Err(ResponseError::UnknownMemberId),
            // No group at all: GROUP_ID_NOT_FOUND from v9, ILLEGAL_GENERATION before (Kafka).
            None if version >= 9 => Err(ResponseError::GroupIdNotFound),
            None => Err(ResponseError::IllegalGeneration),
        }
    }

    /// Records offsets that are now durable in `__consumer_offsets`.
    pub(crate) fn apply_offsets(
        &self,
        group_id: &str,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) {
        let mut inner = self.inner.lock();
        inner
            .offsets
            .entry(group_id.to_owned())
            .or_default()
            .extend(offsets);
    }

    /// Offsets of `producer_id`'s transaction, written: pending until its marker.
    pub(crate) fn stage_txn_offsets(
        &self,
        producer_id: i64,
        group_id: &str,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) {
        let mut inner = self.inner.lock();
        let pending = inner.pending_txn_offsets.entry(producer_id).or_default();
        pending.extend(
            offsets
                .into_iter()
                .map(|(partition, offset)| (group_id.to_owned(), partition, offset)),
        );
    }

    /// `producer_id`'s transaction ended: its pending offsets become their groups' on
    /// commit, in the order they were committed, and are dropped on abort.
    pub(crate) fn complete_txn_offsets(&self, producer_id: i64, commit: bool) {
        let mut inner = self.inner.lock();
        let Some(pending) = inner.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        if commit {
            for (group, partition, offset) in pending {
                inner
                    .offsets
                    .entry(group)
                    .or_default()
                    .insert(partition, offset);
            }
        }
    }

    /// `group_id`'s committed offsets, and the partitions whose offsets a transaction has
    /// pending (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT for those),
    /// read under one lock: read one after the other, a transaction completing in between
    /// shows neither its offset nor that one is pending.
    pub(crate) fn committed_and_pending(&self, group_id: &str) -> records::OffsetsSnapshot {
        let inner = self.inner.lock();
        let committed = inner.offsets.get(group_id).cloned().unwrap_or_default();
        let pending = inner
            .pending_txn_offsets
            .values()
            .flatten()
            .filter(|(g, _, _)| g == group_id)
            .map(|(_, p, _)| p.clone())
            .collect();
        (committed, pending)
    }

    /// Offsets past `offsets.retention.minutes`: those of groups without members whose
    /// commit is older than `retention_ms` (Kafka 2.1+ keeps a live group's offsets).
    pub(crate) fn expired_offsets(
        &self,
        now_ms: i64,
        retention_ms: i64,
    ) -> Vec<(String, Vec<(String, i32)>)> {
        let inner = self.inner.lock();
        let mut out = Vec::new();
        for (group, offsets) in &inner.offsets {
            if inner
                .groups
                .get(group)
                .is_some_and(|g| !g.members.is_empty())
                || inner
                    .consumer_groups
                    .get(group)
                    .is_some_and(|g| !g.members.is_empty())
            {
                continue;
            }
            let expired: Vec<(String, i32)> = offsets
                .iter()
                .filter(|(_, c)| c.commit_timestamp.saturating_add(retention_ms) <= now_ms)
                .map(|(k, _)| k.clone())
                .collect();
            if !expired.is_empty() {
                out.push((group.clone(), expired));
            }
        }
        out
    }

    /// A group's committed offsets (all of them, or of the given partitions).
    pub(crate) fn committed(&self, group_id: &str) -> BTreeMap<(String, i32), CommittedOffset> {
        self.inner
            .lock()
            .offsets
            .get(group_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Replays one `__consumer_offsets` record read at start-up.
    fn replay_record(&self, record: OffsetsRecord) {
        let mut inner = self.inner.lock();
        match record {
            OffsetsRecord::Offset {
                group,
                topic,
                partition,
                value: Some(v),
            } => {
                inner
                    .offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), v);
            }
            OffsetsRecord::Offset {
                group,
                topic,
                partition,
                value: None,
            } => {
                if let Some(offsets) = inner.offsets.get_mut(&group) {
                    offsets.remove(&(topic, partition));
                }
            }
            // A classic group's membership: loaded as Kafka loads it, so its members keep
            // their generation when the coordinator moves. A tombstone (also written when
            // the group becomes a consumer group) removes the group; offsets go only with
            // their own tombstones.
            OffsetsRecord::Group {
                group,
                value: Some(stored),
            } => {
                let now = self.now();
                let loaded = Group::from_stored(group.clone(), self.config, now, stored);
                inner.groups.insert(group, loaded);
            }
            OffsetsRecord::Group { group, value: None } => {
                inner.groups.remove(&group);
            }
            OffsetsRecord::Consumer {
                group,
                record: consumer::records::ConsumerRecord::GroupEpoch(None),
            } => {
                inner.consumer_groups.remove(&group);
            }
            OffsetsRecord::Consumer { group, record } => {
                let now = self.now();
                let config = self.consumer_config;
                inner
                    .consumer_groups
                    .entry(group.clone())
                    .or_insert_with(|| ConsumerGroup::new(group, config))
                    .replay(now, record);
            }
        }
    }

    /// Checks that a group can be deleted: it exists and has no members. Returns the
    /// partitions it has offsets for (to write tombstones), or an error code.
    pub(crate) fn deletable(&self, group_id: &str) -> Result<Vec<(String, i32)>, ResponseError> {
        let inner = self.inner.lock();
        let group = inner.groups.get(group_id);
        let consumer = inner.consumer_groups.get(group_id);
        let offsets = inner.offsets.get(group_id);
        if group.is_none() && consumer.is_none() && offsets.is_none() {
            return Err(ResponseError::GroupIdNotFound);
        }
        if group.is_some_and(|g| !g.members.is_empty())
            || consumer.is_some_and(|g| !g.members.is_empty())
        {
            return Err(ResponseError::NonEmptyGroup);
        }
        Ok(offsets
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Forgets a group whose tombstones are written.
    pub(crate) fn remove_group(&self, group_id: &str) {
        let mut inner = self.inner.lock();
        if inner
            .groups
            .get(group_id)
            .is_some_and(|g| g.members.is_empty())
        {
            inner.groups.remove(group_id);
        }
        if inner
            .consumer_groups
            .get(group_id)
            .is_some_and(|g| g.members.is_empty())
        {
            inner.consumer_groups.remove(group_id);
        }
        inner.offsets.remove(group_id);
    }

    /// Forgets every group for which `moved` holds (its `__consumer_offsets` partition is
    /// led elsewhere now): another coordinator owns it, and coming back replays it afresh.
    fn unload_groups(&self, moved: &dyn Fn(&str) -> bool) {
        let mut inner = self.inner.lock();
        inner.groups.retain(|id, _| !moved(id));
        inner.consumer_groups.retain(|id, _| !moved(id));
        inner.offsets.retain(|id, _| !moved(id));
        for pending in inner.pending_txn_offsets.values_mut() {
            pending.retain(|(group, _, _)| !moved(group));
        }
        inner.pending_txn_offsets.retain(|_, p| !p.is_empty());
    }

    /// Forgets offsets whose tombstones are written.
    pub(crate) fn remove_offsets(&self, group_id: &str, partitions: &[(String, i32)]) {
        let mut inner = self.inner.lock();
        if let Some(offsets) = inner.offsets.get_mut(group_id) {
            for p in partitions {
                offsets.remove(p);
            }
            if offsets.is_empty() {
                inner.offsets.remove(group_id);
            }
        }
    }

    /// Topics the group's members subscribe to (from their consumer-protocol metadata), or
    /// `None` if the group is unknown.
    pub(crate) fn subscribed_topics(&self, group_id: &str) -> Option<Vec<String>> {
        let inner = self.inner.lock();
        if let Some(group) = inner.consumer_groups.get(group_id) {
            let mut topics: Vec<String> = group
                .members
                .values()
                .flat_map(|m| group.member_topics(m))
                .map(str::to_owned)
                .collect();
            topics.sort();
            topics.dedup();
            return Some(topics);
        }
        if !inner.groups.contains_key(group_id) && !inner.offsets.contains_key(group_id) {
            return None;
        }
        let Some(group) = inner.groups.get(group_id) else {
            return Some(Vec::new());
        };
        let protocol = group.protocol.clone().unwrap_or_default();
        let mut topics = Vec::new();
        if group.protocol_type.as_deref() == Some("consumer") {
            for m in group.members.values() {
                topics.extend(records::subscription_topics(&m.metadata(&protocol)));
            }
        }
        Some(topics)
    }

    /// Groups as ListGroups shows them.
    pub(crate) fn list(&self) -> Vec<ListedGroup> {
        let inner = self.inner.lock();
        let mut out: Vec<_> = inner
            .groups
            .values()
            .map(|g| ListedGroup {
                id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
                group_type: "classic",
            })
            .collect();
        out.extend(inner.consumer_groups.values().map(|g| ListedGroup {
            id: g.id.clone(),
            protocol_type: "consumer".to_owned(),
            state: g.state().name(),
            group_type: "consumer",
        }));
        for group in inner.offsets.keys() {
            if !inner.groups.contains_key(group) && !inner.consumer_groups.contains_key(group) {
                // A group that only has committed offsets (a "simple" group, as Kafka's
                // OffsetCommit makes one) has no protocol type.
                out.push(ListedGroup {
                    id: group.clone(),
                    protocol_type: String::new(),
                    state: classic::GroupState::Empty.name(),
                    group_type: "classic",
                });
            }
        }
        out.sort();
        out
    }

    /// Runs `f` on a group if it exists.
    pub(crate) fn with_group<T>(&self, group_id: &str, f: impl FnOnce(&Group) -> T) -> Option<T> {
        self.inner.lock().groups.get(group_id).map(f)
    }

    /// Runs `f` on a consumer-protocol group if it exists.
    pub(crate) fn with_consumer_group<T>(
        &self,
        group_id: &str,
        f: impl FnOnce(&ConsumerGroup) -> T,
    ) -> Option<T> {
        self.inner.lock().consumer_groups.get(group_id).map(f)
    }

    /// ConsumerGroupHeartbeat of `version`: joins, heartbeats and leaves of consumer-protocol
    /// groups. `topics` is the current metadata; `write` appends the
    /// group's changed records to its `__consumer_offsets` partition, under the coordinator's
    /// lock so that records of one group are appended in the order they were made. Errors
    /// are Kafka errors with a message.
    pub(crate) fn consumer_heartbeat(
        &self,
        group_id: &str,
        version: i16,
        request: Heartbeat,
        topics: &dyn consumer::Topics,
        write: &RecordWriter<'_>,
    ) -> Result<HeartbeatReply, (ResponseError, String)> {
        let failed = |e: HeartbeatError| (e.error(), e.to_string());
        if group_id.trim().is_empty() {
            return Err((
                ResponseError::InvalidRequest,
                "GroupId can't be empty.".to_owned(),
            ));
        }
        consumer::validate(&request, version).map_err(failed)?;
        let mut inner = self.inner.lock();
        let now = self.now();
        let joining = request.member_epoch == 0;
        let mut upgraded: Vec<Record> = Vec::new();
        if let Some(classic) = inner.groups.get(group_id) {
            if !classic.members.is_empty() {
                if !joining {
                    return Err((
                        ResponseError::GroupIdNotFound,
                        format!("Group {group_id} is not a consumer group."),
                    ));
                }
                let converted = self.upgrade(classic, topics, now)?;
                if let Some(mut classic) = inner.groups.remove(group_id) {
                    let deliveries = classic.abandon_waiters();
                    inner.deliver(group_id, deliveries);
                }
                inner.consumer_groups.insert(group_id.to_owned(), converted);
                upgraded.push((records::group_key(group_id), None));
            } else if joining {
                inner.groups.remove(group_id);
            }
        }
        if !inner.consumer_groups.contains_key(group_id) {
            if !joining {
                // Kafka says GROUP_ID_NOT_FOUND; UNKNOWN_MEMBER_ID makes the client rejoin,
                // which is what a member of a group this node does not know must do.
                return Err((
                    ResponseError::UnknownMemberId,
                    format!("Consumer group {group_id} not found."),
                ));
            }
            inner.consumer_groups.insert(
                group_id.to_owned(),
                ConsumerGroup::new(group_id.to_owned(), self.consumer_config),
            );
        }
        let Some(group) = inner.consumer_groups.get_mut(group_id) else {
            return Err((ResponseError::UnknownServerError, String::new()));
        };
        let leaving = request.member_epoch == consumer::LEAVE_EPOCH;
        let result = group.heartbeat(now, request, topics).map_err(failed);
        if group.members.is_empty() && group.group_epoch == 0 {
            inner.consumer_groups.remove(group_id);
            return result;
        }
        let downgraded = if leaving && result.is_ok() {
            self.maybe_downgrade(&mut inner, group_id, now)
        } else {
            None
        };
        let records = match downgraded {
            Some(records) => records,
            None => match inner.consumer_groups.get_mut(group_id) {
                Some(group) => {
                    upgraded.extend(consumer_records(group));
                    upgraded
                }
                None => upgraded,
            },
        };
        if !records.is_empty() {
            if let Err(e) = write(&records) {
                return Err((e.error(), format!("writing the group's state failed: {e}")));
            }
        }
        result
    }

    /// The consumer group a classic group with members becomes when a consumer-protocol
    /// member joins it, if `group.consumer.migration.policy` and the group allow (Kafka's
    /// `validateOnlineUpgrade`); otherwise GROUP_ID_NOT_FOUND with Kafka's message.
    fn upgrade(
        &self,
        classic: &Group,
        topics: &dyn consumer::Topics,
        now: u64,
    ) -> Result<ConsumerGroup, (ResponseError, String)> {
        let id = &classic.id;
        let refuse = |why: &str| {
            tracing::info!(group = %id, why, "classic group not upgraded");
            Err((
                ResponseError::GroupIdNotFound,
                format!("Cannot upgrade classic group {id} to consumer group because {why}."),
            ))
        };
        if !self.consumer_config.migration.upgrade() {
            return refuse("online upgrade is disabled");
        }
        if classic.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return refuse("the group does not use the consumer embedded protocol");
        }
        if classic.members.len() > self.consumer_config.max_size {
            return refuse("the group size exceeds the consumer group maximum size");
        }
        ConsumerGroup::from_classic(classic, self.consumer_config, topics, now)
            .map_err(|message| (ResponseError::GroupIdNotFound, message))
    }

    /// Turns a consumer group left with classic members only into a classic group that
    /// rebalances (Kafka's online downgrade), if `group.consumer.migration.policy` allows and
    /// the classic group size does: the records to write are the consumer group's
    /// tombstones, then the classic group's GroupMetadata. `None` when it stays as it is.
    fn maybe_downgrade(&self, inner: &mut Inner, group_id: &str, now: u64) -> Option<Vec<Record>> {
        let group = inner.consumer_groups.get(group_id)?;
        if !self.consumer_config.migration.downgrade()
            || !group.only_classic_members()
            || group.members.len() > self.config.max_size
        {
            return None;
        }
        let group = inner.consumer_groups.remove(group_id)?;
        let mut written: Vec<Record> = group
            .tombstones()
            .iter()
            .filter_map(|r| consumer::records::encode(group_id, r))
            .collect();
        let mut classic = group.to_classic(self.config, now);
        written.push((
            records::group_key(group_id),
            Some(records::group_value(&classic.stored(wall_ms()))),
        ));
        let deliveries = classic.rebalance(now);
        inner.groups.insert(group_id.to_owned(), classic);
        inner.deliver(group_id, deliveries);
        Some(written)
    }

    /// The ids of groups a [`Self::tick`] may write records for: consumer-protocol groups,
    /// and classic groups whose logged membership names members.
    pub(crate) fn ticking_group_ids(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let classic = inner
            .groups
            .iter()
            .filter(|(_, g)| g.logged_members)
            .map(|(id, _)| id.clone());
        inner
            .consumer_groups
            .keys()
            .cloned()
            .chain(classic)
            .collect()
    }

    /// Tombstones for the records of a consumer-protocol group without members (for
    /// DeleteGroups, and before a classic member takes the group id over); none for a group
    /// with members or no such group.
    pub(crate) fn consumer_tombstones(&self, group_id: &str) -> Vec<Record> {
        self.inner
            .lock()
            .consumer_groups
            .get(group_id)
            .filter(|g| g.members.is_empty())
            .map(|g| {
                g.tombstones()
                    .iter()
                    .filter_map(|r| consumer::records::encode(group_id, r))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether an OffsetFetch (v9+) naming a member may read a group's offsets: 0 or the
    /// error code. Classic groups do not check.
    pub(crate) fn check_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        epoch: i32,
    ) -> Result<(), ResponseError> {
        let inner = self.inner.lock();
        match inner.consumer_groups.get(group_id) {
            Some(group) => group.check_fetch(member_id, epoch).map_err(|e| e.error()),
            None => Ok(()),
        }
    }

    /// Expires sessions and completes rebalances whose time has come. What changed in a
    /// consumer group (members expired, a downgrade) goes to `write` under the lock.
    pub(crate) fn tick(&self, write: &dyn Fn(&str, &[Record])) {
        let mut inner = self.inner.lock();
        let now = self.now();
        let ids: Vec<String> = inner.groups.keys().cloned().collect();
        for id in ids {
            let Some(group) = inner.groups.get_mut(&id) else {
                continue;
            };
            let deliveries = group.tick(now);
            // A group whose members all left is logged empty, as Kafka stores it.
            if group.state == GroupState::Empty && group.logged_members {
                group.logged_members = false;
                let empty = records::group_value(&group.stored(wall_ms()));
                write(&id, &[(records::group_key(&id), Some(empty))]);
            }
            inner.deliver(&id, deliveries);
        }
        let ids: Vec<String> = inner.consumer_groups.keys().cloned().collect();
        for id in ids {
            if !inner
                .consumer_groups
                .get_mut(&id)
                .is_some_and(|g| g.tick(now))
            {
                continue;
            }
            let records = match self.maybe_downgrade(&mut inner, &id, now) {
                Some(records) => records,
                None => inner
                    .consumer_groups
                    .get_mut(&id)
                    .map(consumer_records)
                    .unwrap_or_default(),
            };
            if !records.is_empty() {
                write(&id, &records);
            }
        }
    }
}

impl CoordinatorState for Groups {
    fn replay(&self, key: &Bytes, value: Option<&Bytes>) {
        if let Some(record) = records::decode(key, value) {
            self.replay_record(record);
        }
    }

    fn replay_transactional(&self, producer_id: i64, key: &Bytes, value: Option<&Bytes>) {
        // Only offsets are committed in transactions (TxnOffsetCommit).
        if let Some(OffsetsRecord::Offset {
            group,
            topic,
            partition,
            value: Some(offset),
        }) = records::decode(key, value)
        {
            self.stage_txn_offsets(producer_id, &group, vec![((topic, partition), offset)]);
        }
    }

    fn replay_marker(&self, producer_id: i64, commit: bool) {
        self.complete_txn_offsets(producer_id, commit);
    }

    fn unload(&self, moved: &dyn Fn(&str) -> bool) {
        self.unload_groups(moved);
    }
}

/// Queues records for a group's `__consumer_offsets` partition, in call order; whoever passes
/// it waits for them (written and replicated) after the group's lock is released.
pub(crate) type RecordWriter<'a> = dyn Fn(&[Record]) -> Result<(), CoordinatorError> + 'a;
