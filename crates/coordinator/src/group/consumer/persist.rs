//! Keeping `__consumer_offsets` in step with a consumer group: the records of what changed
//! since the last write, tombstones for a deleted group, and replay at start-up.

use std::collections::{BTreeMap, BTreeSet};

use super::records::{ConsumerRecord, CurrentAssignment, MemberMetadata};
use super::{Assignment, ConsumerGroup, Member, MemberState};

/// The group as last written to (or read from) `__consumer_offsets`.
#[derive(Debug, Default)]
pub(super) struct Persisted {
    group_epoch: Option<i32>,
    assignment_epoch: Option<i32>,
    members: BTreeMap<String, MemberMetadata>,
    targets: BTreeMap<String, Assignment>,
    current: BTreeMap<String, CurrentAssignment>,
}

impl Member {
    /// The member as ConsumerGroupMemberMetadataValue stores it.
    pub(super) fn metadata(&self) -> MemberMetadata {
        MemberMetadata {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: i32::try_from(self.rebalance_timeout_ms).unwrap_or(i32::MAX),
            server_assignor: self.server_assignor.clone(),
            classic: self.classic.clone(),
        }
    }

    /// The member as ConsumerGroupCurrentMemberAssignmentValue stores it.
    pub(super) fn current(&self) -> CurrentAssignment {
        CurrentAssignment {
            member_epoch: self.epoch,
            previous_member_epoch: self.previous_epoch,
            state: self.state,
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }
}

impl ConsumerGroup {
    /// The records that bring `__consumer_offsets` in line with the group since the last
    /// call, in Kafka's order: departed members' tombstones, member metadata, the group epoch,
    /// target assignments and their epoch, current assignments.
    pub fn take_records(&mut self) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        let p = &mut self.persisted;
        let gone: Vec<String> = p
            .members
            .keys()
            .chain(p.current.keys())
            .filter(|id| !self.members.contains_key(*id))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for id in gone {
            if p.current.remove(&id).is_some() {
                out.push(ConsumerRecord::Current(id.clone(), None));
            }
            if p.targets.remove(&id).is_some() {
                out.push(ConsumerRecord::Target(id.clone(), None));
            }
            if p.members.remove(&id).is_some() {
                out.push(ConsumerRecord::Member(id, None));
            }
        }
        for (id, m) in &self.members {
            let metadata = m.metadata();
            if p.members.get(id) != Some(&metadata) {
                p.members.insert(id.clone(), metadata.clone());
                out.push(ConsumerRecord::Member(id.clone(), Some(metadata)));
            }
        }
        if p.group_epoch != Some(self.group_epoch) {
            p.group_epoch = Some(self.group_epoch);
            out.push(ConsumerRecord::GroupEpoch(Some(self.group_epoch)));
        }
        for (id, target) in &self.target {
            if p.targets.get(id) != Some(target) {
                p.targets.insert(id.clone(), target.clone());
                out.push(ConsumerRecord::Target(id.clone(), Some(target.clone())));
            }
        }
        let stale: Vec<String> = p
            .targets
            .keys()
            .filter(|id| !self.target.contains_key(*id))
            .cloned()
            .collect();
        for id in stale {
            p.targets.remove(&id);
            out.push(ConsumerRecord::Target(id, None));
        }
        if p.assignment_epoch != Some(self.assignment_epoch) {
            p.assignment_epoch = Some(self.assignment_epoch);
            out.push(ConsumerRecord::TargetEpoch(Some(self.assignment_epoch)));
        }
        for (id, m) in &self.members {
            let current = m.current();
            if p.current.get(id) != Some(&current) {
                p.current.insert(id.clone(), current.clone());
                out.push(ConsumerRecord::Current(id.clone(), Some(current)));
            }
        }
        out
    }

    /// Tombstones for everything `__consumer_offsets` holds for the group (DeleteGroups).
    pub fn tombstones(&self) -> Vec<ConsumerRecord> {
        let p = &self.persisted;
        let mut out = Vec::new();
        for id in p.current.keys() {
            out.push(ConsumerRecord::Current(id.clone(), None));
        }
        for id in p.targets.keys() {
            out.push(ConsumerRecord::Target(id.clone(), None));
        }
        for id in p.members.keys() {
            out.push(ConsumerRecord::Member(id.clone(), None));
        }
        out.push(ConsumerRecord::TargetEpoch(None));
        out.push(ConsumerRecord::GroupEpoch(None));
        out
    }

    /// Applies one record read from `__consumer_offsets` at start-up. Members come back with
    /// a fresh session (`now` + the session timeout), as in Kafka.
    pub fn replay(&mut self, now: u64, record: ConsumerRecord) {
        let session = now + self.config.session_timeout_ms;
        match record {
            ConsumerRecord::GroupEpoch(epoch) => {
                self.group_epoch = epoch.unwrap_or(0);
                self.persisted.group_epoch = epoch;
            }
            ConsumerRecord::TargetEpoch(epoch) => {
                self.assignment_epoch = epoch.unwrap_or(0);
                self.persisted.assignment_epoch = epoch;
            }
            ConsumerRecord::Member(id, Some(meta)) => {
                let m = self
                    .members
                    .entry(id.clone())
                    .or_insert_with(|| Member::new(id.clone()));
                m.instance_id = meta.instance_id.clone();
                m.rack_id = meta.rack_id.clone();
                m.client_id = meta.client_id.clone();
                m.client_host = meta.client_host.clone();
                m.subscribed_topic_names = meta.subscribed_topic_names.clone();
                m.subscribed_topic_regex = meta.subscribed_topic_regex.clone();
                m.rebalance_timeout_ms =
                    u64::try_from(meta.rebalance_timeout_ms).unwrap_or(300_000);
                m.server_assignor = meta.server_assignor.clone();
                m.classic = meta.classic.clone();
                m.session_deadline_ms = match &meta.classic {
                    Some(c) => now + c.session_timeout_ms,
                    None => session,
                };
                if let Some(instance) = &meta.instance_id {
                    self.instances.insert(instance.clone(), id.clone());
                }
                self.persisted.members.insert(id, meta);
            }
            ConsumerRecord::Member(id, None) => {
                if let Some(m) = self.members.remove(&id) {
                    for tp in m.owned() {
                        self.owners.remove(&tp);
                    }
                    if let Some(instance) = &m.instance_id {
                        self.instances.remove(instance);
                    }
                }
                self.persisted.members.remove(&id);
            }
            ConsumerRecord::Target(id, Some(a)) => {
                self.target.insert(id.clone(), a.clone());
                self.persisted.targets.insert(id, a);
            }
            ConsumerRecord::Target(id, None) => {
                self.target.remove(&id);
                self.persisted.targets.remove(&id);
            }
            ConsumerRecord::Current(id, Some(c)) => {
                let m = self.members.entry(id.clone()).or_insert_with(|| {
                    let mut m = Member::new(id.clone());
                    m.session_deadline_ms = session;
                    m
                });
                for tp in m.owned().collect::<Vec<_>>() {
                    self.owners.remove(&tp);
                }
                m.epoch = c.member_epoch;
                m.previous_epoch = c.previous_member_epoch;
                m.state = c.state;
                m.assigned = c.assigned.clone();
                m.pending_revocation = c.pending_revocation.clone();
                m.revocation_deadline_ms = (c.state == MemberState::UnrevokedPartitions)
                    .then_some(now + m.rebalance_timeout_ms);
                for tp in m.owned() {
                    self.owners.insert(tp, id.clone());
                }
                self.persisted.current.insert(id, c);
            }
            ConsumerRecord::Current(id, None) => {
                if let Some(m) = self.members.get_mut(&id) {
                    for tp in m.owned() {
                        self.owners.remove(&tp);
                    }
                    m.assigned.clear();
                    m.pending_revocation.clear();
                }
                self.persisted.current.remove(&id);
            }
            ConsumerRecord::Ignored => {}
        }
    }
}
