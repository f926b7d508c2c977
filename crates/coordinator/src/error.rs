//! Errors of the coordinators: [`CoordinatorError`] says why a request cannot reach a
//! coordinator's state here; [`LogError`] is what a [`crate::CoordinatorLog`] reports.

use kafka_protocol::error::ResponseError;

/// A failed read of, append to, or replication wait on a coordinator partition, as the
/// partition classifies it in Kafka's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({error:?})")]
pub struct LogError {
    /// Kafka's error for the failure (`NOT_LEADER_OR_FOLLOWER`, `REQUEST_TIMED_OUT`, ...).
    pub error: ResponseError,
    /// What happened, for the log.
    pub message: String,
}

impl LogError {
    /// A failure described by Kafka's `error`.
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
        }
    }
}

/// Why a coordinator on this node cannot serve a key (a group id) right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatorError {
    /// Another broker leads the key's partition of the internal topic, or this node has not
    /// yet applied the metadata that makes it the leader (Kafka answers the same).
    #[error("this broker is not the coordinator")]
    NotCoordinator,
    /// This node leads the partition but is still replaying it.
    #[error("the coordinator is loading")]
    LoadInProgress,
    /// Writing the coordinator's records failed.
    #[error("writing the coordinator's records failed: {0}")]
    Write(#[from] LogError),
}

impl CoordinatorError {
    /// The error a client gets. Failed writes map as Kafka's `GroupMetadataManager` maps
    /// them: a lost leadership or a broken disk is `NOT_COORDINATOR`; missing replicas and
    /// timeouts are `COORDINATOR_NOT_AVAILABLE`; oversized records are
    /// `INVALID_COMMIT_OFFSET_SIZE`; anything else passes through.
    pub fn error(&self) -> ResponseError {
        use ResponseError as E;
        match self {
            Self::NotCoordinator => E::NotCoordinator,
            Self::LoadInProgress => E::CoordinatorLoadInProgress,
            Self::Write(e) => match e.error {
                E::NotLeaderOrFollower | E::KafkaStorageError => E::NotCoordinator,
                E::UnknownTopicOrPartition
                | E::NotEnoughReplicas
                | E::NotEnoughReplicasAfterAppend
                | E::RequestTimedOut => E::CoordinatorNotAvailable,
                E::MessageTooLarge | E::RecordListTooLarge => E::InvalidCommitOffsetSize,
                other => other,
            },
        }
    }

    /// [`Self::error`]'s code, for response structs.
    pub fn code(&self) -> i16 {
        self.error().code()
    }
}

impl From<CoordinatorError> for ResponseError {
    fn from(e: CoordinatorError) -> Self {
        e.error()
    }
}
