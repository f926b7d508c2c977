//! Strata's coordinators: the state that lives in Kafka's internal topics and the one
//! component that owns those topics' partitions on a node.
//!
//! - [`group`]: the group coordinator. Sans-IO state machines for the classic protocol
//!   ([`group::classic`]) and KIP-848's consumer protocol ([`group::consumer`], with its
//!   assignors), the `__consumer_offsets` record formats ([`group::records`]), and
//!   [`GroupCoordinator`], through which every group request goes:
//!   [`GroupCoordinator::group`] answers `NOT_COORDINATOR` / `COORDINATOR_LOAD_IN_PROGRESS`
//!   before any group is touched.
//! - [`ownership`]: [`CoordinatorPartitions`], generic over the internal topic and the state
//!   kept from it: which partitions this node leads, which are loading, their replay, and
//!   unloading when leadership moves. The transaction coordinator (`__transaction_state`) is
//!   meant to sit beside `group` and reuse it.
//! - [`txn`]: the transaction coordinator's state per transactional id: Kafka's states and
//!   the transitions between them, two-step (prepare, then complete once the record is
//!   written), and the `__transaction_state` record formats; [`txn::TxnCoordinator`] drives
//!   it over the led `__transaction_state` partitions.
//! - [`log`]: [`CoordinatorLog`], the only I/O a coordinator does (read, append, wait for
//!   replication), implemented by the broker over its partitions.
//! - [`error`]: [`CoordinatorError`] and [`LogError`]; Kafka's `ResponseError` at the edge.
//!
//! This crate never depends on the broker, the storage engine or the controller.

pub mod error;
pub mod group;
pub mod log;
pub mod ownership;
#[cfg(test)]
mod test_log;
pub mod txn;

pub use error::{CoordinatorError, LogError};
pub use group::{FetchedOffset, GroupCoordinator, GroupHandle, ListedGroup, OFFSETS_TOPIC};
pub use log::{CoordinatorLog, LogEntry, Record, Replication};
pub use ownership::{CoordinatorPartitions, CoordinatorState, Load};

/// Milliseconds since the Unix epoch, as Kafka timestamps records.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
