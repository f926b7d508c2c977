//! Several `strata serve` processes forming one cluster through the Raft metadata quorum,
//! driven by real clients: metadata convergence, topic creation on any node, controller
//! failover under load, broker fencing, replication under faults, replica administration and
//! group coordinator failover.

mod acks;
mod acls;
mod configs;
mod ctp;
mod groups;
mod metadata;
mod metrics;
mod quorum_voters;
mod reassignment;
mod replication;
mod security;
mod transactions;
mod verify;
