//! Several `strata serve` processes forming one cluster through the Raft metadata quorum,
//! driven by real clients: metadata convergence, topic creation on any node, controller
//! failover under load, broker fencing, and replication under faults.

mod metadata;
mod reassignment;
mod replication;
