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
);

/// A voter's node as Raft knows it: its controller address (`host:port`).
pub(crate) type Node = openraft::BasicNode;
/// One Raft log entry.
pub(crate) type Entry = openraft::alias::EntryOf<TypeConfig>;
/// A Raft log position.
pub(crate) type LogId = openraft::alias::LogIdOf<TypeConfig>;
/// A Raft vote.
pub(crate) type Vote = openraft::alias::VoteOf<TypeConfig>;
/// The Raft handle.
pub(crate) type Raft = openraft::Raft<TypeConfig, state_machine::StateMachine>;

/// The voter set as openraft's initial membership.
pub(crate) fn membership(voters: &BTreeMap<i32, String>) -> BTreeMap<u64, Node> {
    voters
        .iter()
        .map(|(id, addr)| (*id as u64, Node { addr: addr.clone() }))
        .collect()
}

/// An `io::Error` for data that does not decode.
pub(crate) fn invalid_data(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, error.to_string())
}
