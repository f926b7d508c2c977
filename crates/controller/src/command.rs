//! The commands that change cluster metadata, and what applying one yields.
//!
//! Commands are the unit of the metadata log: they are serialized as JSON, so renaming a
//! variant or a field is a change of the on-disk format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::image::ListenerEndpoint;

/// One change to the cluster metadata. Commands carry every input they need (ids, times,
/// placements), so applying the same sequence to the same image always gives the same
/// result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Register a broker, or replace the endpoint and rack of an already registered one.
    RegisterBroker {
        /// The broker's `node.id` (≥ 0).
        node_id: i32,
        /// Advertised host (non-empty).
        host: String,
        /// Advertised port (non-zero).
        port: u16,
        /// `broker.rack`, if set (non-empty when present).
        rack: Option<String>,
        /// Every advertised listener, by name (names unique); `host`/`port` is the
        /// inter-broker one. Empty in registrations made before named listeners.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listeners: Vec<ListenerEndpoint>,
    },
    /// Create a topic with explicit replica placement (see [`crate::assign_replicas`]).
    CreateTopic {
        /// Topic name (Kafka's naming rules).
        name: String,
        /// The topic's id, chosen by the caller; never nil, never reused.
        topic_id: Uuid,
        /// Replicas per partition: `assignments[p]` is partition `p`'s replica list, the
        /// first entry being the preferred leader.
        assignments: Vec<Vec<i32>>,
        /// Explicitly set topic configs (validated with [`crate::topic_config`]).
        configs: BTreeMap<String, String>,
    },
    /// Delete a topic and all of its partitions.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Add partitions to a topic, numbered after the existing ones.
    CreatePartitions {
        /// Topic name.
        topic: String,
        /// Replica lists of the new partitions, in partition order.
        new_assignments: Vec<Vec<i32>>,
    },
    /// Set (Some) or delete (None, back to default) config keys of a topic or broker.
    AlterConfigs {
        /// Whose configs change.
        resource: ConfigResource,
        /// Key → new value, or `None` to remove the override.
        changes: BTreeMap<String, Option<String>>,
    },
    /// Fence a broker whose lease lapsed (or that is shutting down): it leaves the ISR of
    /// every partition where another in-sync replica remains, and each partition it led
    /// gets the first unfenced ISR member as leader (none, `-1`, when there is no such
    /// member). Leader and partition epochs move on. Fencing a fenced broker is a no-op.
    FenceBroker {
        /// The broker's node id (must be registered).
        node_id: i32,
    },
    /// Unfence a broker that heartbeats again: every leaderless partition whose ISR holds
    /// it gets it as leader. Unfencing an unfenced broker is a no-op.
    UnfenceBroker {
        /// The broker's node id (must be registered).
        node_id: i32,
    },
    /// A partition leader changes the ISR (shrinks it when a follower lags, grows it when
    /// one caught up). Refused unless the sender is the current leader at `leader_epoch`
    /// and the partition is still at `partition_epoch`, so the ISR in metadata never
    /// holds a replica its leader has not seen in sync.
    AlterPartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The leader asking.
        leader: i32,
        /// The leader epoch it leads in.
        leader_epoch: i32,
        /// The partition epoch its view is from.
        partition_epoch: i32,
        /// The new ISR: replicas of the partition, holding the leader; replicas added must
        /// be live brokers.
        isr: Vec<i32>,
    },
    /// Elect leaders (Kafka's ElectLeaders). Preferred: the first replica takes over where
    /// it is live, in the ISR and not leading already. Unclean: a leaderless partition gets
    /// its first live replica as leader and sole ISR member, whatever it may have missed.
    ElectLeaders {
        /// `(topic, partition)` pairs; an empty list means every partition.
        partitions: Vec<(String, i32)>,
        /// Which election.
        election: Election,
    },
    /// Start (`Some(target)`) or cancel (`None`) moving partitions to new replica lists
    /// (Kafka's AlterPartitionReassignments). A move adds the new replicas first and drops
    /// the old ones once every new one is in the ISR; the leader moves if it was dropped.
    AlterReassignments {
        /// `(topic, partition, target replicas or None to cancel)`.
        reassignments: Vec<(String, i32, Option<Vec<i32>>)>,
    },
    /// Set finalized feature levels (Kafka's UpdateFeatures): all of them or, when one is
    /// refused, none (see [`crate::features::apply_updates`]).
    UpdateFeatures {
        /// The changes, in request order.
        updates: Vec<crate::features::FeatureUpdate>,
    },
    /// Set (`Some`) or delete (`None`) a user's SCRAM credential for one mechanism
    /// (Kafka's AlterUserScramCredentials, KIP-554). Only the salted keys are stored, never
    /// a password. Deleting a credential that does not exist is refused.
    AlterScramCredential {
        /// The user name (non-empty).
        user: String,
        /// The SCRAM mechanism.
        mechanism: ScramMechanism,
        /// The new credential, or `None` to delete it.
        credential: Option<ScramCredential>,
    },
    /// Set (`Some`) or remove (`None`) client quota values of one entity (Kafka's
    /// AlterClientQuotas). Keys and values are checked with
    /// [`crate::quotas::check_alteration`]; removing an unset key is a no-op.
    AlterClientQuotas {
        /// The user and/or client-id entity.
        entity: crate::quotas::QuotaEntity,
        /// Quota key (`producer_byte_rate`, ...) → new value, or `None` to remove it.
        changes: BTreeMap<String, Option<f64>>,
    },
    /// Store ACLs (Kafka's CreateAcls): all of them or, when one is invalid, none. A
    /// binding stored already stays as it is.
    CreateAcls {
        /// The bindings (each valid per [`crate::acl::AclBinding::invalid_reason`]).
        acls: Vec<crate::acl::AclBinding>,
    },
    /// Remove ACLs (Kafka's DeleteAcls, once its filters were resolved to bindings). A
    /// binding not stored is skipped.
    DeleteAcls {
        /// The bindings.
        acls: Vec<crate::acl::AclBinding>,
    },
    /// Reserve a block of producer ids for a broker.
    AllocateProducerIds {
        /// The broker asking (must be registered).
        broker_id: i32,
        /// Block size (≥ 1).
        count: i64,
    },
}

impl Command {
    /// A short, stable name of the command's kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::RegisterBroker { .. } => "register_broker",
            Command::CreateTopic { .. } => "create_topic",
            Command::DeleteTopic { .. } => "delete_topic",
            Command::CreatePartitions { .. } => "create_partitions",
            Command::AlterConfigs { .. } => "alter_configs",
            Command::FenceBroker { .. } => "fence_broker",
            Command::UnfenceBroker { .. } => "unfence_broker",
            Command::AlterPartition { .. } => "alter_partition",
            Command::ElectLeaders { .. } => "elect_leaders",
            Command::AlterReassignments { .. } => "alter_reassignments",
            Command::AllocateProducerIds { .. } => "allocate_producer_ids",
            Command::UpdateFeatures { .. } => "update_features",
            Command::AlterScramCredential { .. } => "alter_scram_credential",
            Command::AlterClientQuotas { .. } => "alter_client_quotas",
            Command::CreateAcls { .. } => "create_acls",
            Command::DeleteAcls { .. } => "delete_acls",
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::RegisterBroker { node_id, .. }
            | Command::FenceBroker { node_id }
            | Command::UnfenceBroker { node_id } => write!(f, "{} {node_id}", self.kind()),
            Command::CreateTopic { name, .. } | Command::DeleteTopic { name } => {
                write!(f, "{} {name}", self.kind())
            }
            Command::CreatePartitions { topic, .. } => write!(f, "{} {topic}", self.kind()),
            Command::AlterConfigs { resource, .. } => write!(f, "{} {resource:?}", self.kind()),
            Command::AllocateProducerIds { broker_id, count } => {
                write!(f, "{} {count} for {broker_id}", self.kind())
            }
            Command::AlterPartition {
                topic,
                partition,
                isr,
                ..
            } => write!(f, "{} {topic}-{partition} isr {isr:?}", self.kind()),
            Command::ElectLeaders {
                partitions,
                election,
            } => write!(
                f,
                "{} {election:?} ({} partitions)",
                self.kind(),
                partitions.len()
            ),
            Command::AlterReassignments { reassignments } => {
                write!(f, "{} ({} partitions)", self.kind(), reassignments.len())
            }
            Command::UpdateFeatures { updates } => {
                write!(f, "{} ({} features)", self.kind(), updates.len())
            }
            Command::AlterScramCredential {
                user, mechanism, ..
            } => write!(f, "{} {user} {mechanism:?}", self.kind()),
            Command::AlterClientQuotas { entity, .. } => write!(f, "{} {entity}", self.kind()),
            Command::CreateAcls { acls } | Command::DeleteAcls { acls } => {
                write!(f, "{} ({} bindings)", self.kind(), acls.len())
            }
        }
    }
}

/// A SCRAM mechanism (Kafka's ScramMechanism: 1 is SHA-256, 2 is SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// The mechanism of Kafka's wire code (1, 2).
    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's wire code.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }
}

/// A stored SCRAM credential (RFC 5802): what the server needs to check a client's proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations (Kafka: 4096 to 16384).
    pub iterations: i32,
}

/// The kind of a leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Election {
    /// Back to the preferred (first) replica, from the ISR only.
    Preferred,
    /// Any live replica for a leaderless partition: records may be lost.
    Unclean,
}

/// The owner of a set of config overrides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// A broker, by node id (Kafka's BROKER resource named by the id).
    Broker(i32),
    /// The cluster-wide default of every broker (Kafka's BROKER resource with the empty
    /// name): a broker's own overrides win over it.
    BrokerDefault,
}

/// What an accepted command produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// The command took effect; it has no other result.
    Done,
    /// The producer ids `first .. first + count` now belong to the requesting broker.
    ProducerIds {
        /// First id of the block.
        first: i64,
        /// Number of ids in the block.
        count: i64,
    },
}
