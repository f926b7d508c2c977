//! Why a command was refused ([`Rejection`]) and why the local controller failed
//! ([`ControllerError`]).

use std::path::PathBuf;

use kafka_protocol::error::ResponseError;

use uuid::Uuid;

/// A command the metadata image refused. Applying a rejected command changes nothing.
///
/// Every variant maps to exactly one Kafka error code ([`Rejection::kafka_error`]);
/// `Display` is the message to put next to it in a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Rejection {
    /// A topic of exactly this name exists. `TOPIC_ALREADY_EXISTS` (36).
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    /// No topic of this name exists. `UNKNOWN_TOPIC_OR_PARTITION` (3).
    #[error("The topic '{0}' does not exist.")]
    UnknownTopic(String),
    /// The name breaks Kafka's naming rules or collides with an existing topic once '.'
    /// and '_' are treated alike. `INVALID_TOPIC_EXCEPTION` (17).
    #[error("Invalid topic name '{name}': {reason}")]
    InvalidTopicName {
        /// The refused name.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// A partition count that is below one or does not grow the topic.
    /// `INVALID_PARTITIONS` (37).
    #[error("Invalid partitions for topic '{topic}': {reason}")]
    InvalidPartitions {
        /// The topic concerned (empty when placing replicas for no topic in particular).
        topic: String,
        /// What is wrong with the count.
        reason: String,
    },
    /// A replication factor below one or above the number of registered brokers.
    /// `INVALID_REPLICATION_FACTOR` (38).
    #[error("Invalid replication factor {replication_factor}: {reason}")]
    InvalidReplicationFactor {
        /// The requested replication factor.
        replication_factor: i32,
        /// Why it cannot be met.
        reason: String,
    },
    /// An explicit replica assignment that is empty, repeats a broker, names an unregistered
    /// broker, or mixes replica counts. `INVALID_REPLICA_ASSIGNMENT` (39).
    #[error("Invalid replica assignment for topic '{topic}': {reason}")]
    InvalidReplicaAssignment {
        /// The topic concerned.
        topic: String,
        /// What is wrong with the assignment.
        reason: String,
    },
    /// An unknown config key or a value outside its allowed range or set.
    /// `INVALID_CONFIG` (40).
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidConfig {
        /// The config key.
        key: String,
        /// The refused value (empty when deleting the key).
        value: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The broker id is not registered. `BROKER_ID_NOT_REGISTERED` (102).
    #[error("No broker with id {0} is registered.")]
    UnknownBroker(i32),
    /// A SCRAM credential Kafka would not accept. `UNACCEPTABLE_CREDENTIAL` (93).
    #[error("{reason}")]
    InvalidScramCredential {
        /// The user.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// Deleting a SCRAM credential that does not exist. `RESOURCE_NOT_FOUND` (91).
    #[error("Attempt to delete a user credential that does not exist")]
    ScramCredentialNotFound {
        /// The user.
        user: String,
    },
    /// A client quota alteration Kafka's controller refuses: a bad entity, an unknown key,
    /// a value of the wrong type. `INVALID_REQUEST` (42).
    #[error("{reason}")]
    InvalidClientQuota {
        /// What is wrong.
        reason: String,
    },
    /// An ACL Kafka would not store (empty resource name, CLUSTER not named
    /// `kafka-cluster`, a principal without a type). `INVALID_REQUEST` (42).
    #[error("{reason}")]
    InvalidAcl {
        /// The refused binding.
        binding: Box<crate::acl::AclBinding>,
        /// What is wrong with it.
        reason: String,
    },
    /// A broker registration with an invalid id, host, port or rack. `INVALID_REQUEST` (42).
    #[error("Invalid registration of broker {node_id}: {reason}")]
    InvalidBrokerRegistration {
        /// The node id in the registration.
        node_id: i32,
        /// What is wrong with it.
        reason: String,
    },
    /// A topic id that is nil or already used by another topic. Topic ids are chosen by
    /// the broker, never by the client, so this is `UNKNOWN_SERVER_ERROR` (-1).
    #[error("Invalid topic id {topic_id}: {reason}")]
    InvalidTopicId {
        /// The refused id.
        topic_id: Uuid,
        /// Why it cannot be used.
        reason: String,
    },
    /// An ISR change from a broker that is not the partition's leader at that leader
    /// epoch. `FENCED_LEADER_EPOCH` (74).
    #[error("Broker {leader} does not lead {topic}-{partition} in epoch {leader_epoch}.")]
    NotPartitionLeader {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The broker that asked.
        leader: i32,
        /// The leader epoch it asked in.
        leader_epoch: i32,
    },
    /// An ISR change computed from an older partition state. `INVALID_UPDATE_VERSION` (95).
    #[error("Partition {topic}-{partition} moved past epoch {partition_epoch}.")]
    StalePartitionEpoch {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The partition epoch the change was based on.
        partition_epoch: i32,
    },
    /// An ISR that is empty, lacks its leader or names a non-replica, or that adds a fenced
    /// broker. `INELIGIBLE_REPLICA` (107).
    #[error("Invalid ISR {isr:?} for {topic}-{partition}: {reason}")]
    IneligibleReplica {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The refused ISR.
        isr: Vec<i32>,
        /// What is wrong with it.
        reason: String,
    },
    /// A reassignment cancelled where none runs. `NO_REASSIGNMENT_IN_PROGRESS` (85).
    #[error("No reassignment of {topic}-{partition} is in progress.")]
    NoReassignmentInProgress {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A feature update outside the supported range or against its upgrade type
    /// (UpdateFeatures). `INVALID_UPDATE_VERSION` (95).
    #[error("Invalid update version {level} for feature {feature}. {reason}")]
    InvalidFeatureUpdate {
        /// The feature.
        feature: String,
        /// The requested level.
        level: i16,
        /// Why it cannot be set.
        reason: String,
    },
    /// A producer-id block request for a count below one. `INVALID_REQUEST` (42).
    #[error("Invalid producer id block size {0}: must be at least 1.")]
    InvalidProducerIdCount(i64),
    /// The producer-id space cannot hold the requested block. Kafka answers
    /// `UNKNOWN_SERVER_ERROR` (-1) here.
    #[error("Exhausted all producer ids: cannot allocate {count} more after {next}.")]
    ProducerIdsExhausted {
        /// The first id that would have been handed out.
        next: i64,
        /// The requested block size.
        count: i64,
    },
    /// AddRaftVoter for a node id already in the voter set. `DUPLICATE_VOTER` (126).
    #[error("The voter id {0} is already part of the set of voters.")]
    DuplicateVoter(i32),
    /// RemoveRaftVoter or UpdateRaftVoter for an id and directory id not in the voter set.
    /// `VOTER_NOT_FOUND` (127).
    #[error("Voter {node_id} with directory id {directory_id} is not part of the set of voters.")]
    VoterNotFound {
        /// The node id asked for.
        node_id: i32,
        /// The directory id asked for.
        directory_id: uuid::Uuid,
    },
    /// A voter change that can never succeed as asked (no usable endpoint, removing the
    /// last voter). `INVALID_REQUEST` (42).
    #[error("{0}")]
    InvalidVoterChange(String),
    /// A voter change that could not complete now: another one is under way, or the new
    /// voter did not catch up in time. `REQUEST_TIMED_OUT` (7), as Kafka answers.
    #[error("{0}")]
    VoterChangeTimedOut(String),
}

impl Rejection {
    /// The Kafka error a client gets for this rejection.
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            Rejection::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            Rejection::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
            Rejection::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
            Rejection::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
            Rejection::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
            Rejection::InvalidReplicaAssignment { .. } => ResponseError::InvalidReplicaAssignment,
            Rejection::InvalidConfig { .. } => ResponseError::InvalidConfig,
            Rejection::UnknownBroker(_) => ResponseError::BrokerIdNotRegistered,
            Rejection::InvalidBrokerRegistration { .. } => ResponseError::InvalidRequest,
            Rejection::InvalidAcl { .. } => ResponseError::InvalidRequest,
            Rejection::InvalidScramCredential { .. } => ResponseError::UnacceptableCredential,
            Rejection::ScramCredentialNotFound { .. } => ResponseError::ResourceNotFound,
            Rejection::InvalidClientQuota { .. } => ResponseError::InvalidRequest,
            Rejection::InvalidTopicId { .. } => ResponseError::UnknownServerError,
            Rejection::InvalidProducerIdCount(_) => ResponseError::InvalidRequest,
            Rejection::NotPartitionLeader { .. } => ResponseError::FencedLeaderEpoch,
            Rejection::StalePartitionEpoch { .. } => ResponseError::InvalidUpdateVersion,
            Rejection::IneligibleReplica { .. } => ResponseError::IneligibleReplica,
            Rejection::NoReassignmentInProgress { .. } => ResponseError::NoReassignmentInProgress,
            Rejection::ProducerIdsExhausted { .. } => ResponseError::UnknownServerError,
            Rejection::InvalidFeatureUpdate { .. } => ResponseError::InvalidUpdateVersion,
            Rejection::DuplicateVoter(_) => ResponseError::DuplicateVoter,
            Rejection::VoterNotFound { .. } => ResponseError::VoterNotFound,
            Rejection::InvalidVoterChange(_) => ResponseError::InvalidRequest,
            Rejection::VoterChangeTimedOut(_) => ResponseError::RequestTimedOut,
        }
    }

    /// The human-readable message for the response's `error_message` field
    /// (the same text as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Why the controller could not start or a command could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The command is invalid on the current image; nothing changed.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// No metadata leader accepted the command in time (it may still have been
    /// committed). Kafka's nearest answer is `REQUEST_TIMED_OUT` / `NOT_CONTROLLER`.
    #[error("metadata quorum unavailable: {0}")]
    Unavailable(String),
    /// Reading or writing the Raft log, a snapshot or the listener failed.
    #[error("metadata I/O on {path}: {source}")]
    Io {
        /// The file, directory or address concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The options are inconsistent (a voter without a listen address, bad timings).
    #[error("controller configuration: {0}")]
    Config(String),
    /// The Raft node failed to start or stopped.
    #[error("Raft: {0}")]
    Raft(String),
}
