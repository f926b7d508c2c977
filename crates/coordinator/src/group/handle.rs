//! [`GroupHandle`]: one group this node coordinates, with every operation a group API needs,
//! state change and `__consumer_offsets` write together.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::classic::{Group, GroupState, JoinRequest, JoinResponse, SyncResponse};
use super::consumer::{ConsumerGroup, Heartbeat, HeartbeatReply, Topics};
use super::groups::Groups;
use super::records::{self, CommittedOffset};
use super::COMMIT_TIMEOUT;
use crate::error::CoordinatorError;
use crate::log::{CoordinatorLog, Record, Replication};

/// One partition's answer to OffsetFetch: its committed offset (`None`: nothing committed),
/// or the error it is answered with.
pub type FetchedOffset = (
    (String, i32),
    Result<Option<CommittedOffset>, ResponseError>,
);

/// A group this node coordinates and has loaded, from [`super::GroupCoordinator::group`].
/// Writes go to the group's `__consumer_offsets` partition; should it have moved meanwhile,
/// they fail with `NOT_COORDINATOR`.
pub struct GroupHandle<'a> {
    groups: &'a Groups,
    id: &'a str,
    log: Arc<dyn CoordinatorLog>,
}

impl std::fmt::Debug for GroupHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupHandle")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<'a> GroupHandle<'a> {
    pub(super) fn new(groups: &'a Groups, id: &'a str, log: Arc<dyn CoordinatorLog>) -> Self {
        Self { groups, id, log }
    }

    /// The group id.
    pub fn id(&self) -> &str {
        self.id
    }

    /// Queues records on the group's partition; the future resolves once they are
    /// replicated.
    fn write(&self, records: &[Record], now_ms: i64) -> Result<Replication<'_>, CoordinatorError> {
        let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
        self.log.append(records, now_ms, deadline).map_err(|e| {
            tracing::warn!(group = self.id, error = %e, "writing to __consumer_offsets failed");
            CoordinatorError::from(e)
        })
    }

    /// JoinGroup; waits until the rebalance completes (bounded by the rebalance timeout).
    /// An empty consumer-protocol group of this id gives way first: its tombstones are
    /// written, and failing that is the error.
    ///
    /// A classic member joining a consumer group with members is served by that group (its
    /// records written and replicated before the answer); `topics` resolves its subscription.
    pub async fn join(
        &self,
        request: JoinRequest,
        topics: &dyn Topics,
        now_ms: i64,
    ) -> Result<JoinResponse, CoordinatorError> {
        let queued = parking_lot::Mutex::new(Vec::new());
        let write = |records: &[Record]| {
            queued.lock().push(self.write(records, now_ms)?);
            Ok(())
        };
        let mixed = self
            .groups
            .join_consumer_group(self.id, &request, topics, &write);
        if let Some(response) = mixed {
            for replicated in futures::future::join_all(queued.into_inner()).await {
                replicated?;
            }
            return Ok(response);
        }
        let tombstones = self.groups.consumer_tombstones(self.id);
        if !tombstones.is_empty() {
            self.write(&tombstones, now_ms)?.await?;
        }
        Ok(self.groups.join(self.id, request).await)
    }

    /// SyncGroup; a follower waits for the leader's assignment. Once the generation is
    /// stable its membership is written to `__consumer_offsets`, as Kafka does, for tools
    /// that read assignments from there (a failed write is only logged).
    pub async fn sync(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
    ) -> SyncResponse {
        let response = self
            .groups
            .sync(self.id, member_id, instance, generation, assignments)
            .await;
        if response.error.is_none() {
            let stored = self.groups.with_group(self.id, |g| {
                (g.state == GroupState::Stable).then(|| g.stored(now_ms))
            });
            if let Some(Some(stored)) = stored {
                let entry = (
                    records::group_key(self.id),
                    Some(records::group_value(&stored)),
                );
                let written = match self.write(&[entry], now_ms) {
                    Ok(replication) => replication.await.map_err(CoordinatorError::from),
                    Err(error) => Err(error),
                };
                if let Err(error) = written {
                    tracing::warn!(group = self.id, %error, "writing group membership failed");
                }
            }
        }
        response
    }

    /// Heartbeat of a classic member.
    pub fn heartbeat(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        self.groups
            .heartbeat(self.id, member_id, instance, generation)
    }

    /// LeaveGroup for one member, named by member id or (static members) instance id. The
    /// records of a classic member leaving a consumer group are queued, not waited for.
    pub fn leave(&self, member_id: &str, instance: Option<&str>) -> Result<(), ResponseError> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let write = |records: &[Record]| self.write(records, now_ms).map(drop);
        self.groups.leave(self.id, member_id, instance, &write)
    }

    /// Whether a commit by this member and generation (member epoch, for consumer groups)
    /// is allowed. `version` is the OffsetCommit version.
    pub fn check_commit(
        &self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        version: i16,
    ) -> Result<(), ResponseError> {
        self.groups
            .check_commit(self.id, member_id, instance, generation, version)
    }

    /// Writes committed offsets and waits until they are replicated (at most
    /// [`COMMIT_TIMEOUT`]); only then are they the group's.
    pub async fn commit(
        &self,
        offsets: Vec<((String, i32), CommittedOffset)>,
        now_ms: i64,
    ) -> Result<(), CoordinatorError> {
        let entries = self.offset_records(&offsets);
        self.write(&entries, now_ms)?.await?;
        self.groups.apply_offsets(self.id, offsets);
        Ok(())
    }

    /// The `__consumer_offsets` records of `offsets` of this group.
    fn offset_records(&self, offsets: &[((String, i32), CommittedOffset)]) -> Vec<Record> {
        offsets
            .iter()
            .map(|((topic, partition), value)| {
                (
                    records::offset_key(self.id, topic, *partition),
                    Some(records::offset_value(value)),
                )
            })
            .collect()
    }

    /// TxnOffsetCommit: writes the offsets as part of `producer`'s (id, epoch) transaction
    /// and waits until they are replicated; they become the group's when the transaction
    /// commits (its marker reaches this partition) and are dropped if it aborts.
    pub async fn commit_in_transaction(
        &self,
        producer: (i64, i16),
        offsets: Vec<((String, i32), CommittedOffset)>,
        now_ms: i64,
    ) -> Result<(), CoordinatorError> {
        let entries = self.offset_records(&offsets);
        let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
        self.log
            .append_as(&entries, Some(producer), now_ms, deadline)?
            .await?;
        self.groups.stage_txn_offsets(producer.0, self.id, offsets);
        Ok(())
    }

    /// OffsetFetch's answer: the committed offset of each of `partitions` (`None` where
    /// nothing is committed), or of every partition with a committed offset when
    /// `partitions` is `None`. With `require_stable` (KIP-447, OffsetFetch v7+) a partition
    /// that a transaction has offsets pending for (TxnOffsetCommit written, its marker not
    /// yet) is `UNSTABLE_OFFSET_COMMIT` instead, as Kafka answers, so a read_committed
    /// consumer waits for the transaction's outcome rather than start from an older offset.
    pub fn fetch_offsets(
        &self,
        partitions: Option<Vec<(String, i32)>>,
        require_stable: bool,
    ) -> Vec<FetchedOffset> {
        // One snapshot: read apart, a transaction completing in between would show neither
        // its offsets nor that they are pending.
        let (committed, mut pending) = self.groups.committed_and_pending(self.id);
        if !require_stable {
            pending.clear();
        }
        let wanted = partitions.unwrap_or_else(|| committed.keys().cloned().collect());
        wanted
            .into_iter()
            .map(|partition| {
                let answer = if pending.contains(&partition) {
                    Err(ResponseError::UnstableOffsetCommit)
                } else {
                    Ok(committed.get(&partition).cloned())
                };
                (partition, answer)
            })
            .collect()
    }

    /// Whether an OffsetFetch (v9+) naming a member may read the group's offsets. Classic
    /// groups do not check.
    pub fn check_fetch(&self, member_id: Option<&str>, epoch: i32) -> Result<(), ResponseError> {
        self.groups.check_fetch(self.id, member_id, epoch)
    }

    /// The group's committed offsets.
    pub fn committed(&self) -> BTreeMap<(String, i32), CommittedOffset> {
        self.groups.committed(self.id)
    }

    /// DeleteGroups: a group without members is removed with its offsets, once their
    /// tombstones are replicated. `GROUP_ID_NOT_FOUND` for an unknown group,
    /// `NON_EMPTY_GROUP` for one with members.
    pub async fn delete(&self, now_ms: i64) -> Result<(), ResponseError> {
        let partitions = self.groups.deletable(self.id)?;
        let mut entries: Vec<Record> = partitions
            .iter()
            .map(|(t, p)| (records::offset_key(self.id, t, *p), None))
            .collect();
        entries.push((records::group_key(self.id), None));
        entries.extend(self.groups.consumer_tombstones(self.id));
        self.write(&entries, now_ms)?
            .await
            .map_err(|e| CoordinatorError::from(e).error())?;
        self.groups.remove_group(self.id);
        Ok(())
    }

    /// Topics the group's members subscribe to, or `None` if the group is unknown.
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        self.groups.subscribed_topics(self.id)
    }

    /// OffsetDelete: forgets the offsets of `partitions` once their tombstones are
    /// replicated.
    pub async fn delete_offsets(
        &self,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<(), CoordinatorError> {
        let entries: Vec<Record> = partitions
            .iter()
            .map(|(t, p)| (records::offset_key(self.id, t, *p), None))
            .collect();
        self.write(&entries, now_ms)?.await?;
        self.groups.remove_offsets(self.id, partitions);
        Ok(())
    }

    /// ConsumerGroupHeartbeat of `version`: joins, heartbeats and leaves of consumer-protocol
    /// groups against the metadata `topics`. What changed in the group is appended to
    /// `__consumer_offsets` in the order it was made (queued under the group's lock) and
    /// replicated before the answer. Errors are Kafka's with a message.
    pub async fn consumer_heartbeat(
        &self,
        version: i16,
        request: Heartbeat,
        topics: &dyn Topics,
        now_ms: i64,
    ) -> Result<HeartbeatReply, (ResponseError, String)> {
        let queued = parking_lot::Mutex::new(Vec::new());
        let write = |records: &[Record]| {
            queued.lock().push(self.write(records, now_ms)?);
            Ok(())
        };
        let reply = self
            .groups
            .consumer_heartbeat(self.id, version, request, topics, &write);
        for replicated in futures::future::join_all(queued.into_inner()).await {
            if let Err(error) = replicated {
                let error = CoordinatorError::from(error);
                return Err((error.error(), error.to_string()));
            }
        }
        reply
    }

    /// Runs `f` on the classic group of this id, if there is one.
    pub fn with_classic<T>(&self, f: impl FnOnce(&Group) -> T) -> Option<T> {
        self.groups.with_group(self.id, f)
    }

    /// Runs `f` on the consumer-protocol group of this id, if there is one.
    pub fn with_consumer<T>(&self, f: impl FnOnce(&ConsumerGroup) -> T) -> Option<T> {
        self.groups.with_consumer_group(self.id, f)
    }
}
