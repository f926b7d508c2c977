//! A small Kafka protocol client: one connection per broker, requests answered in order,
//! versions negotiated through ApiVersions.
//!
//! It exists as its own crate so that the `strata` command-line tools, the benches and the
//! black-box tests speak Kafka through one piece of code that depends on no broker internals:
//! whatever it can do against Strata it can do against any Kafka-compatible server.

mod batched_reads;
mod cluster;
mod connection;
mod groups;
mod partitioner;
mod quorum;
mod records;
mod replicas;
mod security;
mod transactions;

pub use batched_reads::{BatchedReads, READ_SIZE};
pub use cluster::{
    fetch_committed_on, fetch_on, produce_on, produce_transactional_on, Cluster, PartitionInfo,
    TopicInfo,
};
pub use connection::{connect_tcp, Connection, Transport, CONNECT_TIMEOUT};
pub use groups::{GroupDescription, GroupMember};
pub use partitioner::partition_for_key;
pub use quorum::metadata_quorum_request;
pub use records::{
    decode_records, encode_batch, encode_batch_as, encode_transactional_batch, Compression,
    OwnedRecord, ProducerIdentity,
};
pub use replicas::Reassignment;
pub use security::{scram_salted_password, SaslCredentials, SaslMechanism, Security};
pub use transactions::{ListFilter, ProducerState, TransactionDescription, TransactionListing};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection failed.
    #[error("{addr}: {source}")]
    Io {
        /// Broker address.
        addr: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A request or response could not be encoded or decoded.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The broker does not serve the API at a version this client speaks.
    #[error("broker does not support {api} at a version this client speaks")]
    Unsupported {
        /// The API's name.
        api: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{context}: Kafka error {code} ({name}){message}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The error code.
        code: i16,
        /// The error's name.
        name: String,
        /// The broker's message, if any, prefixed with ": ".
        message: String,
    },
    /// The request timed out.
    #[error("{0} timed out")]
    Timeout(String),
}

impl ClientError {
    /// A Kafka error code as an error, or `Ok` for 0.
    pub fn check(code: i16, context: impl Into<String>, message: Option<&str>) -> Result<()> {
        if code == 0 {
            return Ok(());
        }
        let name = kafka_protocol::error::ResponseError::try_from_code(code)
            .map_or_else(|| "UNKNOWN".to_owned(), |e| format!("{e:?}"));
        Err(ClientError::Kafka {
            context: context.into(),
            code,
            name,
            message: message.map(|m| format!(": {m}")).unwrap_or_default(),
        })
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ClientError>;
