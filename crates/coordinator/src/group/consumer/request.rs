//! What goes in and out of the consumer group machine: ConsumerGroupHeartbeat requests
//! and answers, their validation, and the errors a member can get.

use base64::Engine as _;
use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::assignor::ASSIGNORS;
use super::{Assignment, LEAVE_EPOCH, STATIC_LEAVE_EPOCH};

/// Why a ConsumerGroupHeartbeat (or a commit by a member) was refused; each maps to the
/// Kafka error code the client expects ([`HeartbeatError::error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    /// A field is missing or malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// `server_assignor` names an assignor this broker does not have.
    #[error("ServerAssignor {0} is not supported. Supported assignors: uniform, range.")]
    UnsupportedAssignor(String),
    /// A regular expression subscription that does not compile.
    #[error("SubscribedTopicRegex `{0}` is not a valid regular expression.")]
    InvalidRegularExpression(String),
    /// The member id is not (or no longer) in the group.
    #[error("Member {0} is not a member of the group.")]
    UnknownMemberId(String),
    /// The member's epoch is not one the coordinator accepts: it must rejoin.
    #[error("The consumer group member has a member epoch ({received}) other than the one known by the group coordinator ({known}). The member must abandon all its partitions and rejoin.")]
    FencedMemberEpoch { received: i32, known: i32 },
    /// The group is full.
    #[error("The consumer group has reached its maximum capacity of {0} members.")]
    GroupMaxSizeReached(usize),
    /// The static member's instance id is held by another member id.
    #[error("Static member {instance} with member id {member} is fenced by another member.")]
    FencedInstanceId { instance: String, member: String },
    /// A static member joins while the previous holder of its instance id is still active.
    #[error("Static member with instance id {0} is still active under another member id.")]
    UnreleasedInstanceId(String),
    /// An offset commit or fetch from an older (or newer) member epoch.
    #[error("The member epoch {received} is stale; the current one is {known}.")]
    StaleMemberEpoch { received: i32, known: i32 },
    /// A request below the version the consumer protocol requires.
    #[error("OffsetCommit version 9 or above must be used by members of consumer groups.")]
    UnsupportedVersion,
}

impl HeartbeatError {
    /// Kafka's error for this error.
    pub fn error(&self) -> ResponseError {
        match self {
            Self::InvalidRequest(_) => ResponseError::InvalidRequest,
            Self::InvalidRegularExpression(_) => ResponseError::InvalidRegularExpression,
            Self::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
            Self::UnknownMemberId(_) => ResponseError::UnknownMemberId,
            Self::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
            Self::GroupMaxSizeReached(_) => ResponseError::GroupMaxSizeReached,
            Self::FencedInstanceId { .. } => ResponseError::FencedInstanceId,
            Self::UnreleasedInstanceId(_) => ResponseError::UnreleasedInstanceId,
            Self::StaleMemberEpoch { .. } => ResponseError::StaleMemberEpoch,
            Self::UnsupportedVersion => ResponseError::UnsupportedVersion,
        }
    }
}

/// A ConsumerGroupHeartbeat as the state machine needs it. `None` (or -1 for the rebalance
/// timeout) means "unchanged since the last heartbeat".
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns, by topic id.
    pub owned: Option<Vec<(Uuid, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
}

/// A ConsumerGroupHeartbeat answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed or the request was a full one.
    pub assignment: Option<Assignment>,
}

/// Checks what can be checked without the group (Kafka's request validation). Version 1
/// requires the client to choose its member id.
pub fn validate(request: &Heartbeat, version: i16) -> Result<(), HeartbeatError> {
    let invalid = |m: &str| Err(HeartbeatError::InvalidRequest(m.to_owned()));
    let blank = |s: &Option<String>| s.as_ref().is_some_and(|s| s.trim().is_empty());
    if (version >= 1 || request.member_epoch > 0 || request.member_epoch == LEAVE_EPOCH)
        && request.member_id.trim().is_empty()
    {
        return invalid("MemberId can't be empty.");
    }
    if blank(&request.instance_id) {
        return invalid("InstanceId can't be empty.");
    }
    if blank(&request.rack_id) {
        return invalid("RackId can't be empty.");
    }
    match request.member_epoch {
        0 => {
            if request.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if request.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none()
            {
                return invalid(
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                );
            }
        }
        STATIC_LEAVE_EPOCH if request.instance_id.is_none() => {
            return invalid("InstanceId can't be null.");
        }
        e if e < STATIC_LEAVE_EPOCH => return invalid("MemberEpoch is invalid."),
        _ => {}
    }
    if let Some(name) = &request.server_assignor {
        if !ASSIGNORS.contains(&name.as_str()) {
            return Err(HeartbeatError::UnsupportedAssignor(name.clone()));
        }
    }
    if let Some(re) = request
        .subscribed_topic_regex
        .as_ref()
        .filter(|r| !r.is_empty())
    {
        compile(re)?;
    }
    Ok(())
}

/// A subscription's regular expression, matched against whole topic names as Kafka does.
pub(super) fn compile(re: &str) -> Result<regex::Regex, HeartbeatError> {
    regex::Regex::new(&format!("^(?:{re})$"))
        .map_err(|_| HeartbeatError::InvalidRegularExpression(re.to_owned()))
}

/// A member id as Kafka makes them: a random UUID in URL-safe base64.
pub fn new_member_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes())
}
