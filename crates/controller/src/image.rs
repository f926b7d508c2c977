//! The metadata image: the whole cluster metadata as a value, changed only by
//! [`MetadataImage::apply`].
//!
//! The image does no I/O and reads no clock, so every replica of the command log that
//! applies the same commands in the same order holds an equal image.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::acl::AclSet;
use crate::command::{Applied, Command, ScramCredential, ScramMechanism};
use crate::error::Rejection;
use crate::quotas::QuotaEntity;

mod apply;
mod invariants;
mod quotas;
#[cfg(test)]
mod tests;

/// A registered broker and the endpoint it advertises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerMeta {
    /// The broker's `node.id`.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// Whether the broker is fenced (its lease lapsed); a fenced broker leads nothing new
    /// and is left out of Metadata responses.
    #[serde(default)]
    pub fenced: bool,
    /// Every advertised listener; empty for a registration without names, whose one
    /// endpoint (`host`, `port`) serves every listener name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerEndpoint>,
}

impl BrokerMeta {
    /// The endpoint clients of listener `name` are given (Kafka answers each client with
    /// the endpoints of the listener it came in on), or `None` when the broker does not
    /// advertise that listener.
    pub fn endpoint(&self, name: &str) -> Option<(&str, u16)> {
        if self.listeners.is_empty() {
            return Some((&self.host, self.port));
        }
        self.listeners
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map(|l| (l.host.as_str(), l.port))
    }
}

/// One advertised listener of a broker (Kafka's `advertised.listeners` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerEndpoint {
    /// Listener name, upper case (`PLAINTEXT`, `SASL_SSL`, `EXTERNAL`).
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Partition index, `0..partition count`.
    pub partition: i32,
    /// Replica broker ids, preferred leader first; never empty, no duplicates.
    pub replicas: Vec<i32>,
    /// In-sync replicas, a subset of `replicas`.
    pub isr: Vec<i32>,
    /// Current leader's broker id (a member of `isr`), or -1 when no replica can lead.
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change of the partition's replicas, ISR or leader.
    pub partition_epoch: i32,
    /// During a reassignment: replicas being added (they are in `replicas` already).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    /// During a reassignment: replicas to drop once every added one is in sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Topic name.
    pub name: String,
    /// Kafka's topic id; never nil, unique among live topics.
    pub topic_id: Uuid,
    /// Partitions, indexed by partition number.
    pub partitions: Vec<PartitionMeta>,
    /// Only the explicitly set config keys; defaults come from
    /// [`crate::topic_config::topic_config_defs`].
    pub configs: BTreeMap<String, String>,
    /// Whether this is one of Kafka's internal topics (`__consumer_offsets`,
    /// `__transaction_state`).
    pub internal: bool,
}

impl TopicMeta {
    /// Partition `partition`, if it exists.
    pub fn partition(&self, partition: i32) -> Option<&PartitionMeta> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))
    }

    /// Replicas per partition (the same for every partition of a topic).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// The cluster metadata at one point of the command log.
///
/// Cloning is cheap relative to the data: topics are shared behind `Arc`s and copied only
/// when a command changes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataImage {
    brokers: BTreeMap<i32, BrokerMeta>,
    /// Structurally shared, so copying the image for the next command is O(1) however
    /// many topics it holds.
    topics: imbl::OrdMap<String, Arc<TopicMeta>>,
    topic_ids: imbl::OrdMap<Uuid, String>,
    broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Dynamic broker configs set for every broker (Kafka's cluster default).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    broker_default_configs: BTreeMap<String, String>,
    /// SCRAM credentials by user and mechanism.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Client quotas by entity (values by Kafka key name); an entity with no value left
    /// is absent.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "crate::quotas::as_pairs"
    )]
    client_quotas: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
    /// ACLs (absent from images made before them).
    #[serde(default, skip_serializing_if = "AclSet::is_empty")]
    acls: AclSet,
    next_producer_id: i64,
    applied_index: u64,
    /// Finalized feature levels once UpdateFeatures changed them; `None`: the levels of a
    /// new cluster ([`crate::features::initial_levels`]). Absent from older snapshots.
    #[serde(default)]
    features: Option<BTreeMap<String, i16>>,
}

impl MetadataImage {
    /// An empty image: no brokers, no topics, applied index 0.
    pub fn new() -> MetadataImage {
        MetadataImage::default()
    }

    /// Validates `command` against this image and, if it is valid, applies it and advances
    /// the applied index by one. A rejected command changes nothing, not even the index.
    pub fn apply(&mut self, command: &Command) -> Result<Applied, Rejection> {
        let applied = match command {
            Command::RegisterBroker {
                node_id,
                host,
                port,
                rack,
                listeners,
            } => self.register_broker(*node_id, host, *port, rack.as_deref(), listeners)?,
            Command::CreateTopic {
                name,
                topic_id,
                assignments,
                configs,
            } => self.create_topic(name, *topic_id, assignments, configs)?,
            Command::DeleteTopic { name } => self.delete_topic(name)?,
            Command::CreatePartitions {
                topic,
                new_assignments,
            } => self.create_partitions(topic, new_assignments)?,
            Command::AlterConfigs { resource, changes } => self.alter_configs(resource, changes)?,
            Command::FenceBroker { node_id } => self.fence_broker(*node_id)?,
            Command::UnfenceBroker { node_id } => self.unfence_broker(*node_id)?,
            Command::AllocateProducerIds { broker_id, count } => {
                self.allocate_producer_ids(*broker_id, *count)?
            }
            Command::AlterScramCredential {
                user,
                mechanism,
                credential,
            } => self.alter_scram_credential(user, *mechanism, credential.as_ref())?,
            Command::AlterClientQuotas { entity, changes } => {
                self.alter_client_quotas(entity, changes)?
            }
            Command::CreateAcls { acls } => self.create_acls(acls)?,
            Command::DeleteAcls { acls } => self.delete_acls(acls),
            Command::AlterPartition {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => self.alter_partition(
                topic,
                *partition,
                (*leader, *leader_epoch, *partition_epoch),
                isr,
            )?,
            Command::ElectLeaders {
                partitions,
                election,
            } => self.elect_leaders(partitions, *election)?,
            Command::AlterReassignments { reassignments } => {
                self.alter_reassignments(reassignments)?
            }
            Command::UpdateFeatures { updates } => {
                let next = crate::features::apply_updates(&self.finalized_features(), updates)?;
                self.features = Some(next);
                Applied::Done
            }
        };
        self.applied_index += 1;
        Ok(applied)
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name).map(Arc::as_ref)
    }

    /// The topic whose id is `id`.
    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicMeta> {
        self.topic_ids.get(&id).and_then(|name| self.topic(name))
    }

    /// All topics, by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicMeta> {
        self.topics.values().map(Arc::as_ref)
    }

    /// All topics, by name, as shared values: a topic unchanged between two images is the
    /// same `Arc` in both (`Arc::ptr_eq` tells what changed).
    pub fn shared_topics(&self) -> impl Iterator<Item = &Arc<TopicMeta>> {
        self.topics.values()
    }

    /// Number of topics.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// All registered brokers, by node id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerMeta> {
        self.brokers.values()
    }

    /// Registered brokers that are not fenced, by node id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerMeta> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// The registered broker `id`.
    pub fn broker(&self, id: i32) -> Option<&BrokerMeta> {
        self.brokers.get(&id)
    }

    /// The config overrides set for broker `id` (empty when none).
    pub fn broker_configs(&self, id: i32) -> BTreeMap<String, String> {
        self.broker_configs.get(&id).cloned().unwrap_or_default()
    }

    /// The config overrides set for broker `id`, if any (no copy, unlike
    /// [`Self::broker_configs`]).
    pub fn broker_config_overrides(&self, id: i32) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(&id)
    }

    /// The dynamic broker configs set as the cluster-wide default (Kafka's BROKER resource
    /// with the empty name).
    pub fn broker_default_configs(&self) -> &BTreeMap<String, String> {
        &self.broker_default_configs
    }

    /// `user`'s SCRAM credential for `mechanism`.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredential> {
        self.scram.get(user)?.get(&mechanism)
    }

    /// Every user with a SCRAM credential, and their credentials by mechanism.
    pub fn scram_users(
        &self,
    ) -> impl Iterator<Item = (&String, &BTreeMap<ScramMechanism, ScramCredential>)> {
        self.scram.iter()
    }

    /// The quota values set for exactly `entity` (Kafka key name → value).
    pub fn client_quota(&self, entity: &QuotaEntity) -> Option<&BTreeMap<String, f64>> {
        self.client_quotas.get(entity)
    }

    /// Every entity with a client quota set, and its values.
    pub fn client_quotas(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<String, f64>)> {
        self.client_quotas.iter()
    }

    /// Whether any client quota is set (the request path skips quota accounting when not).
    pub fn has_client_quotas(&self) -> bool {
        !self.client_quotas.is_empty()
    }

    /// The stored ACLs.
    pub fn acls(&self) -> &AclSet {
        &self.acls
    }

    /// The first producer id the next [`Command::AllocateProducerIds`] will hand out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Finalized feature levels by name (features at level 0 are absent). `kraft.version` is
    /// always [`crate::features::KRAFT_VERSION_LEVEL`], also in images whose levels were
    /// changed before it was finalized.
    pub fn finalized_features(&self) -> BTreeMap<String, i16> {
        let mut levels = self
            .features
            .clone()
            .unwrap_or_else(crate::features::initial_levels);
        levels.insert(
            crate::features::KRAFT_VERSION.to_owned(),
            crate::features::KRAFT_VERSION_LEVEL,
        );
        levels
    }

    /// Number of commands applied since the empty image (the index of the last one).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }
}
