//! The Kafka protocol on port 9092: the listener, one module per Kafka API, and the partitions
//! those APIs read and write.
//!
//! Layout: [`server`] owns sockets and framing; [`api`] decodes a request and dispatches it to
//! the handler module named after the Kafka API; [`partition`] holds each partition's log,
//! producer state and the notification fetches wait on; [`Broker`] ties them to the metadata
//! held by the `controller` crate.

mod api;
pub mod authorizer;
mod broker;
pub mod config;
pub mod fuzz;
mod inter_broker;
pub mod metrics;
mod partition;
pub mod prometheus;
mod quota;
mod replication;
mod server;
mod topic_config;

pub use broker::Broker;
pub use config::{BrokerConfig, ConfigError};
pub use server::serve;
