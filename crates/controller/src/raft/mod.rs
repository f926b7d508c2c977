//! openraft wiring: the type configuration, durable log storage, the metadata state
//! machine and the tonic transport between voters. Nothing outside this module names
//! openraft.
//!
//! openraft is pinned to `=0.10.0-alpha.37`: its storage-v2 traits (grouped, callback-based
//! log flushes), its network-v2 trait and its storage conformance suite
//! (`openraft::testing::log::Suite`) are what this module is written against, and voters
//! exchange openraft's own message types (JSON over tonic), so every voter of a cluster
//! must run the same openraft version.

use std::collections::BTreeMap;

use crate::command::{Applied, Command};
use crate::error::Rejection;

pub(crate) mod log_store;
pub(crate) mod network;
pub(crate) mod state_machine;
#[cfg(test)]
mod tests;

/// What applying one command yields on every voter: its result and the image index after
/// it, or why it was refused.
pub(crate) type Outcome = Result<(Applied, u64), Rejection>;

openraft::declare_raft_types!(
    /// Strata's Raft types: metadata commands in, outcomes out, `u64` node ids and
    /// controller addresses as nodes.
    pub(crate) TypeConfig:
        D = Command,
        R = Outcome,
        Node = VoterNode,
);

/// A member of the quorum as Raft knows it: its controller address and, once it told the
/// leader, its metadata directory id (KIP-853's voter key). Serialised exactly as openraft's
/// `BasicNode` when the directory id is unknown, so logs and snapshots written before it
/// existed read unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct VoterNode {
    /// The controller address, `host:port`.
    pub(crate) addr: String,
    /// The member's directory id (`None` for voters seeded by `--voters` until they
    /// announced it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) directory_id: Option<uuid::Uuid>,
}

impl std::fmt::Display for VoterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.directory_id {
            Some(id) => write!(f, "{}({id})", self.addr),
            None => f.write_str(&self.addr),
        }
    }
}

/// A member of the quorum as Raft knows it.
pub(crate) type Node = VoterNode;
/// One Raft log entry.
pub(crate) type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A Raft log position.
pub(crate) type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A Raft vote.
pub(crate) type Vote = openraft::alias::VoteOf<TypeConfig>;
/// The Raft handle.
pub(crate) type Raft = openraft::Raft<TypeConfig, state_machine::StateMachine>;

/// The voter set as openraft's initial membership; `own` is this node's id and directory
/// id, the only directory id it knows.
pub(crate) fn membership(
    voters: &BTreeMap<i32, String>,
    own: (i32, uuid::Uuid),
) -> BTreeMap<u64, Node> {
    voters
        .iter()
        .map(|(id, addr)| {
            let node = Node {
                addr: addr.clone(),
                directory_id: (*id == own.0).then_some(own.1),
            };
            (*id as u64, node)
        })
        .collect()
}

/// An `io::Error` for data that does not decode.
pub(crate) fn invalid_data(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
}
