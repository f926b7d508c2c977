//! Cluster metadata: the single source of truth for brokers, topics, partitions, configs
//! and producer-id blocks.
//!
//! Two layers:
//!
//! - [`MetadataImage`] is a pure state machine. [`MetadataImage::apply`] validates a
//!   [`Command`] the way Kafka's controller does and either applies it or returns a
//!   [`Rejection`] (which maps to a Kafka error code) without changing anything. It does no
//!   I/O and reads no clock, so a replicated log of commands yields the same image on every
//!   node.
//! - [`Controller`] replicates the commands with Raft (openraft, behind this crate's own
//!   API) among the voters, over tonic (`proto/controller.proto`). Voters keep the Raft log
//!   and snapshots of the image on disk; broker-only nodes follow the committed metadata
//!   through a watch stream. The Raft leader keeps broker leases and fences brokers whose
//!   lease lapsed. Every node publishes each new image through a `tokio::sync::watch`
//!   channel.
//!
//! openraft is pinned to exactly `0.10.0-alpha.37`, not 0.9.25: 0.10's storage-v2 traits
//! take log flushes as callbacks (so one `fdatasync` can acknowledge many appends), its
//! network-v2 trait lets a transport send whole snapshots in one call, its storage
//! conformance suite is what `raft::tests` runs, and it is the line that the tonic example
//! and the turmoil harness track. Being an alpha, it is pinned with `=` and every voter of
//! a cluster must run the same build (voters exchange openraft's own message types).
//!
//! The controller port serves plain HTTP/2 only on loopback addresses (or when the operator
//! says so); anywhere else it needs [`ControllerTls`], mutual TLS with the cluster's CA.
//!
//! Pure helpers for the broker: [`assign_replicas`] (replica placement) and the
//! [`topic_config`] catalog.
#![deny(missing_docs)]

pub mod acl;
mod command;
mod error;
pub mod features;
mod image;
mod leases;
mod node;
mod placement;
mod quorum;
pub mod quotas;
mod raft;
mod rpc;
mod tls;
pub mod topic_config;
mod validate;

pub use command::{Applied, Command, ConfigResource, Election, ScramCredential, ScramMechanism};
pub use error::{ControllerError, Rejection};
pub use image::{BrokerMeta, ListenerEndpoint, MetadataImage, PartitionMeta, TopicMeta};
pub use node::{parse_voters, BrokerRegistration, Controller, ControllerOptions, RaftStatus};
pub use placement::assign_replicas;
pub use quorum::{QuorumInfo, VoterInfo};
pub use tls::ControllerTls;
pub use topic_config::{topic_config_defs, validate_topic_config, ConfigDef, ConfigKind};
pub use uuid::Uuid;
pub use validate::{
    is_internal_topic, validate_topic_name, INTERNAL_TOPICS, MAX_TOPIC_NAME_LENGTH,
};
