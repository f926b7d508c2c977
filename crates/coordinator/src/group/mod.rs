//! Consumer group coordination: the classic protocol's membership through the sans-IO
//! [`classic`] machine, KIP-848's consumer protocol through the sans-IO [`consumer`] machine,
//! and committed offsets (of both kinds of group) kept in memory and written to
//! `__consumer_offsets` in Kafka's [`records`] format before they are acknowledged.
//!
//! A group id names either a classic or a consumer group; an empty group of the other kind is
//! replaced (its offsets stay). KIP-848's online migration joins the two: a consumer group
//! serves classic members too ([`consumer::classic_member`]); a consumer-protocol member
//! joining a classic group with members converts it into a consumer group, and a consumer
//! group whose last consumer-protocol member left converts back into a classic group, as
//! `group.consumer.migration.policy` allows.
//!
//! One node coordinates every group whose `__consumer_offsets` partition it leads
//! ([`crate::CoordinatorPartitions`]); when it gains one it replays it to restore the groups.
//! Requests reach a group only through [`GroupCoordinator::group`], which refuses groups this
//! node does not coordinate (yet).

pub mod classic;
pub mod consumer;
mod groups;
mod handle;
pub mod records;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use classic::GroupConfig;
use consumer::ConsumerGroupConfig;
use groups::Groups;
pub use handle::{FetchedOffset, GroupHandle};

use crate::error::{CoordinatorError, LogError};
use crate::log::{CoordinatorLog, Record};
use crate::ownership::{CoordinatorPartitions, Load};

/// The internal topic of group state and offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// How often [`GroupCoordinator::tick`] should run: sessions and rebalance deadlines are
/// checked this often.
pub const TICK: Duration = Duration::from_millis(100);
/// `offsets.commit.timeout.ms`: how long a commit waits for replication.
pub const COMMIT_TIMEOUT: Duration = Duration::from_millis(5000);

/// The group coordinator of one node: the groups of the `__consumer_offsets` partitions it
/// leads.
#[derive(Debug)]
pub struct GroupCoordinator {
    partitions: CoordinatorPartitions<Groups>,
}

impl GroupCoordinator {
    /// A coordinator with settings for both protocols, leading no partition yet.
    pub fn new(config: GroupConfig, consumer_config: ConsumerGroupConfig) -> Self {
        Self {
            partitions: CoordinatorPartitions::new(
                OFFSETS_TOPIC,
                records::partition_for,
                Groups::new(config, consumer_config),
            ),
        }
    }

    /// The group `group_id`, when this node coordinates it and has loaded it: otherwise
    /// `NOT_COORDINATOR` (another node leads its partition, or this node has not applied
    /// the metadata yet) or `COORDINATOR_LOAD_IN_PROGRESS`.
    pub fn group<'a>(&'a self, group_id: &'a str) -> Result<GroupHandle<'a>, CoordinatorError> {
        let log = self.partitions.owner(group_id)?;
        Ok(GroupHandle::new(self.partitions.state(), group_id, log))
    }

    /// Takes `__consumer_offsets`' leadership: see [`CoordinatorPartitions::update`].
    pub fn update(
        &self,
        count: Option<i32>,
        led: Vec<(i32, Arc<dyn CoordinatorLog>)>,
    ) -> Vec<Load> {
        self.partitions.update(count, led)
    }

    /// Replays a gained partition (blocking): see [`CoordinatorPartitions::load`].
    pub fn load(&self, load: Load) -> Result<usize, LogError> {
        self.partitions.load(load)
    }

    /// Groups as ListGroups shows them: every group coordinated here, or
    /// `COORDINATOR_LOAD_IN_PROGRESS` while a partition is still being replayed (as Kafka
    /// answers, so a listing is never missing groups that are loading).
    pub fn list(&self) -> Result<Vec<ListedGroup>, CoordinatorError> {
        if self.partitions.any_loading() {
            return Err(CoordinatorError::LoadInProgress);
        }
        Ok(self.partitions.state().list())
    }

    /// Whether `__consumer_offsets` partition `partition` is led and loaded here, so a
    /// transaction marker may go into it: see [`CoordinatorPartitions::serves`].
    pub fn serves(&self, partition: i32) -> Result<(), CoordinatorError> {
        self.partitions.serves(partition)
    }

    /// `producer_id`'s transaction ended and its marker is in a `__consumer_offsets`
    /// partition led here: its offsets become their groups' (commit) or are dropped.
    pub fn complete_transaction(&self, producer_id: i64, commit: bool) {
        self.partitions
            .state()
            .complete_txn_offsets(producer_id, commit);
    }

    /// Expires sessions and completes rebalances whose time has come; run every [`TICK`].
    /// What that changes in consumer groups is queued on their partitions (not waited for).
    pub fn tick(&self) {
        let groups = self.partitions.state();
        // The logs are found before the groups' lock is taken: ownership changes take the
        // two in the other order.
        let logs: std::collections::HashMap<String, Arc<dyn CoordinatorLog>> = groups
            .ticking_group_ids()
            .into_iter()
            .filter_map(|id| Some((id.clone(), self.partitions.owner(&id).ok()?)))
            .collect();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let write = |group: &str, records: &[Record]| {
            let Some(log) = logs.get(group) else { return };
            let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
            if let Err(error) = log.append(records, now_ms, deadline) {
                tracing::warn!(group, %error, "writing a group's membership failed");
            }
        };
        groups.tick(&write);
    }

    /// Writes tombstones for offsets past `offsets.retention.minutes` (those of groups
    /// without members committed more than `retention_ms` ago; Kafka 2.1+ keeps a live
    /// group's offsets) and forgets them. Groups of partitions still loading wait.
    pub async fn expire_offsets(&self, now_ms: i64, retention_ms: i64) {
        let groups = self.partitions.state();
        let mut expiring = Vec::new();
        for (group, partitions) in groups.expired_offsets(now_ms, retention_ms) {
            let Ok(log) = self.partitions.owner(&group) else {
                continue;
            };
            let entries: Vec<Record> = partitions
                .iter()
                .map(|(t, p)| (records::offset_key(&group, t, *p), None))
                .collect();
            expiring.push(async move {
                let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
                let written = match log.append(&entries, now_ms, deadline) {
                    Ok(replication) => replication.await,
                    Err(error) => Err(error),
                };
                (group, partitions, written)
            });
        }
        for (group, partitions, written) in futures::future::join_all(expiring).await {
            match written {
                Ok(()) => {
                    tracing::info!(group = %group, partitions = partitions.len(), "expired committed offsets");
                    groups.remove_offsets(&group, &partitions);
                }
                Err(error) => tracing::warn!(group = %group, %error, "expiring offsets failed"),
            }
        }
    }
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedGroup {
    /// The group id.
    pub id: String,
    /// `consumer` for consumer groups and classic groups of consumers.
    pub protocol_type: String,
    /// Kafka's name of the group's state.
    pub state: &'static str,
    /// `classic` or `consumer` (ListGroups v5).
    pub group_type: &'static str,
}
