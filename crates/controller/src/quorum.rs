//! The quorum as one voter sees it, for DescribeQuorum and `strata quorum describe`.

/// One voter of the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterInfo {
    /// The voter's node id.
    pub node_id: i32,
    /// Its controller address (`host:port`).
    pub address: String,
    /// Its Raft log end offset as the leader knows it (`None` on followers, or before the
    /// leader heard from it).
    pub log_end_offset: Option<u64>,
    /// Milliseconds since the leader last heard from it, when known.
    pub last_contact_ms_ago: Option<u64>,
    /// Its metadata directory id (KIP-853), once it announced it.
    pub directory_id: Option<uuid::Uuid>,
}

/// The metadata quorum's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    /// The current leader, if one is known.
    pub leader_id: Option<i32>,
    /// The current Raft term (Kafka's "leader epoch" of the metadata log).
    pub term: u64,
    /// The committed index of the Raft log.
    pub high_watermark: u64,
    /// Every voter, by node id.
    pub voters: Vec<VoterInfo>,
    /// Controllers receiving the Raft log without a vote (observers that joined as
    /// learners), by node id.
    pub observers: Vec<VoterInfo>,
}
