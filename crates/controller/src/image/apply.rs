//! One handler per command. Each validates everything first and mutates only after every
//! check passed, so a rejection leaves the image untouched.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use uuid::Uuid;

use super::{BrokerMeta, ListenerEndpoint, MetadataImage, PartitionMeta, TopicMeta};
use crate::acl::AclBinding;
use crate::command::{Applied, ConfigResource, Election, ScramCredential, ScramMechanism};
use crate::error::Rejection;
use crate::topic_config::{topic_config_def, validate_topic_configs};
use crate::validate::{is_internal_topic, validate_assignments, validate_topic_name};

/// Finishes a reassignment once every target replica is in the ISR (Kafka's rule): the
/// removed replicas go (from the ISR too), and a removed leader hands over to the first live
/// in-sync replica of the new set.
fn complete_reassignment_if_in_sync(p: &mut PartitionMeta, live: &BTreeSet<i32>) {
    if p.adding_replicas.is_empty() && p.removing_replicas.is_empty() {
        return;
    }
    let in_sync = p
        .replicas
        .iter()
        .filter(|r| !p.removing_replicas.contains(r))
        .all(|r| p.isr.contains(r));
    if !in_sync {
        return;
    }
    let removing = std::mem::take(&mut p.removing_replicas);
    p.adding_replicas.clear();
    p.replicas.retain(|r| !removing.contains(r));
    p.isr.retain(|r| !removing.contains(r));
    if removing.contains(&p.leader) || p.leader == -1 {
        p.leader = p
            .isr
            .iter()
            .copied()
            .find(|r| live.contains(r))
            .unwrap_or(-1);
        p.leader_epoch += 1;
    }
}

/// Makes `replica` (possibly outside the ISR) the leader and whole ISR of `p`; whatever
/// the old ISR held beyond it may be lost. The caller moves the leader epoch on.
fn lead_uncleanly(topic: &TopicMeta, p: &mut PartitionMeta, replica: i32) {
    tracing::warn!(topic = %topic.name, partition = p.partition, leader = replica, "unclean leader election: records may be lost");
    p.leader = replica;
    p.isr = vec![replica];
}

/// Whether the topic allows a replica outside the ISR to lead when no ISR member is live.
fn unclean_election_allowed(topic: &TopicMeta) -> bool {
    topic
        .configs
        .get("unclean.leader.election.enable")
        .is_some_and(|v| v == "true")
}

/// Whether two topic names are equal once '.' and '_' are treated alike.
fn names_collide(a: &str, b: &str) -> bool {
    let norm = |c: u8| if c == b'.' { b'_' } else { c };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

fn config_error(key: &str, value: Option<&str>, reason: &str) -> Rejection {
    Rejection::InvalidConfig {
        key: key.to_owned(),
        value: value.unwrap_or("").to_owned(),
        reason: reason.to_owned(),
    }
}

/// Refuses a broker config change naming the empty key. Which keys a broker may change
/// dynamically, and their values, the broker checks before submitting: the controller
/// does not know the broker's properties.
fn check_broker_config_names(changes: &BTreeMap<String, Option<String>>) -> Result<(), Rejection> {
    match changes.iter().find(|(k, _)| k.trim().is_empty()) {
        Some((key, value)) => Err(config_error(
            key,
            value.as_deref(),
            "Config name must not be empty",
        )),
        None => Ok(()),
    }
}

/// `current` with `changes` applied: `Some` sets a key, `None` removes it.
fn merged(
    current: &BTreeMap<String, String>,
    changes: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, String> {
    let mut next = current.clone();
    for (key, value) in changes {
        match value {
            Some(v) => next.insert(key.clone(), v.clone()),
            None => next.remove(key),
        };
    }
    next
}

/// New partitions `first..` with the given replicas: leader is the first replica that is
/// not fenced (-1 when all are), the ISR is all replicas, epochs start at 0.
fn new_partitions<'a>(
    image: &'a MetadataImage,
    first: usize,
    assignments: &'a [Vec<i32>],
) -> impl Iterator<Item = PartitionMeta> + 'a {
    assignments
        .iter()
        .enumerate()
        .map(move |(i, replicas)| PartitionMeta {
            partition: (first + i) as i32,
            replicas: replicas.clone(),
            isr: replicas.clone(),
            leader: replicas
                .iter()
                .copied()
                .find(|r| image.brokers.get(r).is_some_and(|b| !b.fenced))
                .unwrap_or(-1),
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        })
}

fn too_many_partitions(topic: &str, count: usize) -> Rejection {
    Rejection::InvalidPartitions {
        topic: topic.to_owned(),
        reason: format!(
            "Number of partitions {count} exceeds the maximum of {}.",
            i32::MAX
        ),
    }
}

impl MetadataImage {
    pub(super) fn create_acls(&mut self, acls: &[AclBinding]) -> Result<Applied, Rejection> {
        if let Some((binding, reason)) = acls
            .iter()
            .find_map(|b| b.invalid_reason().map(|reason| (b, reason)))
        {
            return Err(Rejection::InvalidAcl {
                binding: Box::new(binding.clone()),
                reason,
            });
        }
        for binding in acls {
            self.acls.insert(binding.clone());
        }
        Ok(Applied::Done)
    }

    pub(super) fn delete_acls(&mut self, acls: &[AclBinding]) -> Applied {
        for binding in acls {
            self.acls.remove(binding);
        }
        Applied::Done
    }

    pub(super) fn alter_scram_credential(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
        credential: Option<&ScramCredential>,
    ) -> Result<Applied, Rejection> {
        let invalid = |reason: &str| Rejection::InvalidScramCredential {
            user: user.to_owned(),
            reason: reason.to_owned(),
        };
        if user.is_empty() {
            return Err(invalid("the user name must not be empty"));
        }
        match credential {
            Some(credential) => {
                if !(4096..=16384).contains(&credential.iterations) {
                    return Err(invalid("iterations must be between 4096 and 16384"));
                }
                if credential.salt.is_empty()
                    || credential.stored_key.is_empty()
                    || credential.server_key.is_empty()
                {
                    return Err(invalid("salt and keys must not be empty"));
                }
                self.scram
                    .entry(user.to_owned())
                    .or_default()
                    .insert(mechanism, credential.clone());
            }
            None => {
                let Some(credentials) = self.scram.get_mut(user) else {
                    return Err(Rejection::ScramCredentialNotFound {
                        user: user.to_owned(),
                    });
                };
                if credentials.remove(&mechanism).is_none() {
                    return Err(Rejection::ScramCredentialNotFound {
                        user: user.to_owned(),
                    });
                }
                if credentials.is_empty() {
                    self.scram.remove(user);
                }
            }
        }
        Ok(Applied::Done)
    }

    pub(super) fn register_broker(
        &mut self,
        node_id: i32,
        host: &str,
        port: u16,
        rack: Option<&str>,
        listeners: &[ListenerEndpoint],
    ) -> Result<Applied, Rejection> {
        let invalid = |reason: &str| Rejection::InvalidBrokerRegistration {
            node_id,
            reason: reason.to_owned(),
        };
        if node_id < 0 {
            return Err(invalid("node id must not be negative"));
        }
        if host.trim().is_empty() {
            return Err(invalid("host must not be empty"));
        }
        if port == 0 {
            return Err(invalid("port must not be 0"));
        }
        if rack.is_some_and(|r| r.trim().is_empty()) {
            return Err(invalid("rack, when set, must not be empty"));
        }
        for (i, listener) in listeners.iter().enumerate() {
            if listener.name.trim().is_empty()
                || listener.host.trim().is_empty()
                || listener.port == 0
            {
                return Err(invalid("a listener needs a name, a host and a port"));
            }
            if listeners[..i]
                .iter()
                .any(|l| l.name.eq_ignore_ascii_case(&listener.name))
            {
                return Err(invalid("listener names must be unique"));
            }
        }
        let broker = BrokerMeta {
            node_id,
            host: host.to_owned(),
            port,
            rack: rack.map(str::to_owned),
            fenced: false,
            listeners: listeners.to_vec(),
        };
        self.brokers.insert(node_id, broker);
        self.elect_leaderless(node_id);
        Ok(Applied::Done)
    }

    pub(super) fn fence_broker(&mut self, node_id: i32) -> Result<Applied, Rejection> {
        let broker = self
            .brokers
            .get_mut(&node_id)
            .ok_or(Rejection::UnknownBroker(node_id))?;
        if broker.fenced {
            return Ok(Applied::Done);
        }
        broker.fenced = true;
        let live: BTreeSet<i32> = self.live_brokers().map(|b| b.node_id).collect();
        self.change_partitions(|topic, p| {
            if !p.replicas.contains(&node_id) {
                return false;
            }
            let in_isr = p.isr.contains(&node_id);
            if in_isr && p.isr.len() > 1 {
                p.isr.retain(|&r| r != node_id);
            }
            if p.leader != node_id {
                return in_isr;
            }
            p.leader = p
                .isr
                .iter()
                .copied()
                .find(|r| live.contains(r))
                .unwrap_or(-1);
            if p.leader == -1 && unclean_election_allowed(topic) {
                if let Some(&r) = p.replicas.iter().find(|r| live.contains(r)) {
                    lead_uncleanly(topic, p, r);
                }
            }
            p.leader_epoch += 1;
            true
        });
        Ok(Applied::Done)
    }

    pub(super) fn unfence_broker(&mut self, node_id: i32) -> Result<Applied, Rejection> {
        let broker = self
            .brokers
            .get_mut(&node_id)
            .ok_or(Rejection::UnknownBroker(node_id))?;
        if !broker.fenced {
            return Ok(Applied::Done);
        }
        broker.fenced = false;
        self.elect_leaderless(node_id);
        Ok(Applied::Done)
    }

    /// Makes the live broker `node_id` leader of every leaderless partition whose ISR
    /// holds it (or, with `unclean.leader.election.enable`, of every leaderless partition
    /// it is a replica of).
    fn elect_leaderless(&mut self, node_id: i32) {
        self.change_partitions(|topic, p| {
            if p.leader != -1 || !p.replicas.contains(&node_id) {
                return false;
            }
            if !p.isr.contains(&node_id) {
                if !unclean_election_allowed(topic) {
                    return false;
                }
                lead_uncleanly(topic, p, node_id);
            }
            p.leader = node_id;
            p.leader_epoch += 1;
            true
        });
    }

    /// Applies `change` to every partition; one that returns true was changed, and its
    /// partition epoch moves on. Topics are copied only when one of theirs changed.
    fn change_partitions(
        &mut self,
        mut change: impl FnMut(&TopicMeta, &mut PartitionMeta) -> bool,
    ) {
        let mut changed = Vec::new();
        for topic in self.topics.values() {
            let mut copy: Option<TopicMeta> = None;
            for (i, p) in topic.partitions.iter().enumerate() {
                let mut next = p.clone();
                if change(topic, &mut next) {
                    next.partition_epoch += 1;
                    copy.get_or_insert_with(|| TopicMeta::clone(topic))
                        .partitions[i] = next;
                }
            }
            changed.extend(copy);
        }
        for topic in changed {
            self.topics.insert(topic.name.clone(), Arc::new(topic));
        }
    }

    pub(super) fn alter_partition(
        &mut self,
        name: &str,
        partition: i32,
        (leader, leader_epoch, partition_epoch): (i32, i32, i32),
        isr: &[i32],
    ) -> Result<Applied, Rejection> {
        let topic = self
            .topics
            .get(name)
            .ok_or_else(|| Rejection::UnknownTopic(name.to_owned()))?;
        let current = topic
            .partition(partition)
            .ok_or_else(|| Rejection::UnknownTopic(format!("{name}-{partition}")))?;
        if current.leader != leader || current.leader_epoch != leader_epoch {
            return Err(Rejection::NotPartitionLeader {
                topic: name.to_owned(),
                partition,
                leader,
                leader_epoch,
            });
        }
        if current.partition_epoch != partition_epoch {
            return Err(Rejection::StalePartitionEpoch {
                topic: name.to_owned(),
                partition,
                partition_epoch,
            });
        }
        let ineligible = |reason: &str| Rejection::IneligibleReplica {
            topic: name.to_owned(),
            partition,
            isr: isr.to_vec(),
            reason: reason.to_owned(),
        };
        if !isr.contains(&leader) {
            return Err(ineligible("the leader must be in the ISR"));
        }
        let distinct: BTreeSet<i32> = isr.iter().copied().collect();
        if distinct.len() != isr.len() || !isr.iter().all(|r| current.replicas.contains(r)) {
            return Err(ineligible(
                "members must be distinct replicas of the partition",
            ));
        }
        let added_fenced = isr
            .iter()
            .filter(|r| !current.isr.contains(r))
            .any(|r| self.brokers.get(r).is_none_or(|b| b.fenced));
        if added_fenced {
            return Err(ineligible("a fenced broker cannot join the ISR"));
        }
        let live: BTreeSet<i32> = self.live_brokers().map(|b| b.node_id).collect();
        let mut next = current.clone();
        next.isr = isr.to_vec();
        complete_reassignment_if_in_sync(&mut next, &live);
        next.partition_epoch += 1;
        let mut copy = TopicMeta::clone(topic);
        copy.partitions[partition as usize] = next;
        self.topics.insert(name.to_owned(), Arc::new(copy));
        Ok(Applied::Done)
    }

    pub(super) fn elect_leaders(
        &mut self,
        partitions: &[(String, i32)],
        election: Election,
    ) -> Result<Applied, Rejection> {
        for (topic, _) in partitions {
            if !self.topics.contains_key(topic) {
                return Err(Rejection::UnknownTopic(topic.clone()));
            }
        }
        let wanted: BTreeSet<(&str, i32)> =
            partitions.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        let live: BTreeSet<i32> = self.live_brokers().map(|b| b.node_id).collect();
        self.change_partitions(|topic, p| {
            if !wanted.is_empty() && !wanted.contains(&(topic.name.as_str(), p.partition)) {
                return false;
            }
            match election {
                Election::Preferred => {
                    let preferred = p.replicas[0];
                    if p.leader == preferred
                        || !p.isr.contains(&preferred)
                        || !live.contains(&preferred)
                    {
                        return false;
                    }
                    p.leader = preferred;
                }
                Election::Unclean => {
                    if p.leader != -1 {
                        return false;
                    }
                    let Some(&r) = p.replicas.iter().find(|r| live.contains(r)) else {
                        return false;
                    };
                    lead_uncleanly(topic, p, r);
                }
            }
            p.leader_epoch += 1;
            true
        });
        Ok(Applied::Done)
    }

    pub(super) fn alter_reassignments(
        &mut self,
        reassignments: &[(String, i32, Option<Vec<i32>>)],
    ) -> Result<Applied, Rejection> {
        // Validate everything first.
        for (name, partition, target) in reassignments {
            let topic = self
                .topics
                .get(name)
                .ok_or_else(|| Rejection::UnknownTopic(name.clone()))?;
            let current = topic
                .partition(*partition)
                .ok_or_else(|| Rejection::UnknownTopic(format!("{name}-{partition}")))?;
            let invalid = |reason: &str| Rejection::InvalidReplicaAssignment {
                topic: name.clone(),
                reason: format!("partition {partition}: {reason}"),
            };
            match target {
                None if current.adding_replicas.is_empty()
                    && current.removing_replicas.is_empty() =>
                {
                    return Err(Rejection::NoReassignmentInProgress {
                        topic: name.clone(),
                        partition: *partition,
                    })
                }
                None => {}
                Some(target) => {
                    let distinct: BTreeSet<i32> = target.iter().copied().collect();
                    if target.is_empty() || distinct.len() != target.len() {
                        return Err(invalid("the replicas must be distinct and not empty"));
                    }
                    if let Some(unknown) = target.iter().find(|r| !self.brokers.contains_key(r)) {
                        return Err(invalid(&format!("broker {unknown} is not registered")));
                    }
                }
            }
        }
        let live: BTreeSet<i32> = self.live_brokers().map(|b| b.node_id).collect();
        for (name, partition, target) in reassignments {
            let topic = &self.topics[name];
            let mut next = topic.partitions[*partition as usize].clone();
            let original: Vec<i32> = next
                .replicas
                .iter()
                .copied()
                .filter(|r| !next.adding_replicas.contains(r))
                .collect();
            let target = target.clone().unwrap_or_else(|| original.clone());
            let mut replicas = target.clone();
            replicas.extend(original.iter().filter(|r| !target.contains(r)));
            next.adding_replicas = target
                .iter()
                .copied()
                .filter(|r| !original.contains(r))
                .collect();
            next.removing_replicas = original
                .iter()
                .copied()
                .filter(|r| !target.contains(r))
                .collect();
            next.replicas = replicas;
            next.isr.retain(|r| next.replicas.contains(r));
            complete_reassignment_if_in_sync(&mut next, &live);
            next.partition_epoch += 1;
            let mut copy = TopicMeta::clone(topic);
            copy.partitions[*partition as usize] = next;
            self.topics.insert(name.clone(), Arc::new(copy));
        }
        Ok(Applied::Done)
    }

    pub(super) fn create_topic(
        &mut self,
        name: &str,
        topic_id: Uuid,
        assignments: &[Vec<i32>],
        configs: &BTreeMap<String, String>,
    ) -> Result<Applied, Rejection> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(Rejection::TopicAlreadyExists(name.to_owned()));
        }
        if let Some(existing) = self.topics.keys().find(|t| names_collide(t, name)) {
            return Err(Rejection::InvalidTopicName {
                name: name.to_owned(),
                reason: format!("Topic '{name}' collides with existing topic: {existing}"),
            });
        }
        validate_assignments(self, name, assignments, None)?;
        if i32::try_from(assignments.len()).is_err() {
            return Err(too_many_partitions(name, assignments.len()));
        }
        validate_topic_configs(configs)?;
        if topic_id.is_nil() {
            return Err(Rejection::InvalidTopicId {
                topic_id,
                reason: "the nil id is reserved".into(),
            });
        }
        if let Some(owner) = self.topic_ids.get(&topic_id) {
            return Err(Rejection::InvalidTopicId {
                topic_id,
                reason: format!("already used by topic '{owner}'"),
            });
        }
        let topic = TopicMeta {
            name: name.to_owned(),
            topic_id,
            partitions: new_partitions(self, 0, assignments).collect(),
            configs: configs.clone(),
            internal: is_internal_topic(name),
        };
        self.topic_ids.insert(topic_id, name.to_owned());
        self.topics.insert(name.to_owned(), Arc::new(topic));
        Ok(Applied::Done)
    }

    pub(super) fn delete_topic(&mut self, name: &str) -> Result<Applied, Rejection> {
        let topic = self
            .topics
            .remove(name)
            .ok_or_else(|| Rejection::UnknownTopic(name.to_owned()))?;
        self.topic_ids.remove(&topic.topic_id);
        Ok(Applied::Done)
    }

    pub(super) fn create_partitions(
        &mut self,
        name: &str,
        new_assignments: &[Vec<i32>],
    ) -> Result<Applied, Rejection> {
        let topic = self
            .topics
            .get(name)
            .ok_or_else(|| Rejection::UnknownTopic(name.to_owned()))?;
        let current = topic.partitions.len();
        if new_assignments.is_empty() {
            return Err(Rejection::InvalidPartitions {
                topic: name.to_owned(),
                reason: format!("Topic already has {current} partitions."),
            });
        }
        validate_assignments(
            self,
            name,
            new_assignments,
            Some(topic.replication_factor()),
        )?;
        let total = current + new_assignments.len();
        if i32::try_from(total).is_err() {
            return Err(too_many_partitions(name, total));
        }
        let added: Vec<PartitionMeta> = new_partitions(self, current, new_assignments).collect();
        if let Some(topic) = self.topics.get_mut(name) {
            Arc::make_mut(topic).partitions.extend(added);
        }
        Ok(Applied::Done)
    }

    pub(super) fn alter_configs(
        &mut self,
        resource: &ConfigResource,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<Applied, Rejection> {
        match resource {
            ConfigResource::Topic(name) => {
                let topic = self
                    .topics
                    .get(name)
                    .ok_or_else(|| Rejection::UnknownTopic(name.clone()))?;
                if let Some((key, value)) =
                    changes.iter().find(|(k, _)| topic_config_def(k).is_none())
                {
                    return Err(config_error(
                        key,
                        value.as_deref(),
                        "Unknown topic config name",
                    ));
                }
                let next = merged(&topic.configs, changes);
                validate_topic_configs(&next)?;
                if let Some(topic) = self.topics.get_mut(name) {
                    Arc::make_mut(topic).configs = next;
                }
            }
            ConfigResource::Broker(id) => {
                if !self.brokers.contains_key(id) {
                    return Err(Rejection::UnknownBroker(*id));
                }
                check_broker_config_names(changes)?;
                let next = merged(&self.broker_configs(*id), changes);
                if next.is_empty() {
                    self.broker_configs.remove(id);
                } else {
                    self.broker_configs.insert(*id, next);
                }
            }
            ConfigResource::BrokerDefault => {
                check_broker_config_names(changes)?;
                self.broker_default_configs = merged(&self.broker_default_configs, changes);
            }
        }
        Ok(Applied::Done)
    }

    pub(super) fn allocate_producer_ids(
        &mut self,
        broker_id: i32,
        count: i64,
    ) -> Result<Applied, Rejection> {
        if !self.brokers.contains_key(&broker_id) {
            return Err(Rejection::UnknownBroker(broker_id));
        }
        if count < 1 {
            return Err(Rejection::InvalidProducerIdCount(count));
        }
        let first = self.next_producer_id;
        let next = first
            .checked_add(count)
            .ok_or(Rejection::ProducerIdsExhausted { next: first, count })?;
        self.next_producer_id = next;
        Ok(Applied::ProducerIds { first, count })
    }
}
