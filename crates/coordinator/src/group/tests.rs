//! Ownership of `__consumer_offsets` partitions, over an in-memory log.

use std::sync::Arc;

use bytes::Bytes;

use kafka_protocol::error::ResponseError;
use parking_lot::Mutex;

use super::classic::{self, GroupConfig};
use super::consumer::ConsumerGroupConfig;
use super::groups::Groups;
use super::records::{self, CommittedOffset};
use super::GroupCoordinator;
use crate::error::{CoordinatorError, LogError};
use crate::log::{CoordinatorLog, Record, Replication};

/// A partition in memory: one record per offset, replicated at once.
#[derive(Default)]
struct MemoryLog {
    records: Mutex<Vec<Record>>,
    /// When set, appends fail with this error.
    refuse: Mutex<Option<ResponseError>>,
}

impl CoordinatorLog for MemoryLog {
    fn offsets(&self) -> (i64, i64) {
        (0, self.records.lock().len() as i64)
    }

    fn read(&self, from: i64, end: i64) -> Result<Option<(Vec<Record>, i64)>, LogError> {
        let records = self.records.lock();
        let end = (end as usize).min(records.len()).min(from as usize + 2);
        if from as usize >= end {
            return Ok(None);
        }
        Ok(Some((records[from as usize..end].to_vec(), end as i64)))
    }

    fn append(
        &self,
        records: &[Record],
        _now_ms: i64,
        _deadline: tokio::time::Instant,
    ) -> Result<Replication<'_>, LogError> {
        if let Some(error) = *self.refuse.lock() {
            return Err(LogError::new(error, "refused"));
        }
        self.records.lock().extend_from_slice(records);
        Ok(Box::pin(async { Ok(()) }))
    }
}

fn coordinator() -> GroupCoordinator {
    GroupCoordinator::new(GroupConfig::default(), ConsumerGroupConfig::default())
}

fn committed(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: 1,
    }
}

fn error_of(result: Result<super::GroupHandle<'_>, CoordinatorError>) -> ResponseError {
    result.expect_err("no handle").error()
}

/// The partition of "g" among 4 partitions, and a group id of another partition.
fn partitions() -> (i32, &'static str) {
    let p = records::partition_for("g", 4);
    let other = ["a", "b", "c", "d", "e", "f"]
        .into_iter()
        .find(|g| records::partition_for(g, 4) != p)
        .expect("some id lands elsewhere");
    (p, other)
}

#[test]
fn groups_answer_by_ownership_and_loading() {
    let coordinator = coordinator();
    // No `__consumer_offsets` applied here yet: clients look for the coordinator again.
    assert_eq!(
        error_of(coordinator.group("g")),
        ResponseError::NotCoordinator
    );
    let (p, other) = partitions();
    let log: Arc<dyn CoordinatorLog> = Arc::new(MemoryLog::default());
    let loads = coordinator.update(Some(4), vec![(p, Arc::clone(&log))]);
    assert_eq!(loads.len(), 1);
    assert_eq!(
        error_of(coordinator.group("g")),
        ResponseError::CoordinatorLoadInProgress
    );
    assert_eq!(
        error_of(coordinator.group(other)),
        ResponseError::NotCoordinator
    );
    for load in loads {
        coordinator.load(load).expect("loads");
    }
    assert!(coordinator.group("g").is_ok());
    assert!(
        coordinator.update(Some(4), vec![(p, log)]).is_empty(),
        "an unchanged leadership loads nothing"
    );
}

/// A fresh adapter over a shared log, as the broker makes one on every reconcile.
struct Handle(Arc<MemoryLog>);

impl CoordinatorLog for Handle {
    fn offsets(&self) -> (i64, i64) {
        self.0.offsets()
    }

    fn read(&self, from: i64, end: i64) -> Result<Option<(Vec<Record>, i64)>, LogError> {
        self.0.read(from, end)
    }

    fn append(
        &self,
        records: &[Record],
        now_ms: i64,
        deadline: tokio::time::Instant,
    ) -> Result<Replication<'_>, LogError> {
        self.0.append(records, now_ms, deadline)
    }

    fn identity(&self) -> *const () {
        Arc::as_ptr(&self.0).cast()
    }
}

#[test]
fn a_partition_reported_through_a_new_handle_to_its_log_keeps_its_groups() {
    let coordinator = coordinator();
    let (p, _) = partitions();
    let handle =
        |log: &Arc<MemoryLog>| Arc::new(Handle(Arc::clone(log))) as Arc<dyn CoordinatorLog>;
    let log = Arc::new(MemoryLog::default());
    for load in coordinator.update(Some(4), vec![(p, handle(&log))]) {
        coordinator.load(load).expect("loads");
    }
    assert!(
        coordinator
            .update(Some(4), vec![(p, handle(&log))])
            .is_empty(),
        "the same log through a new handle: nothing unloaded, nothing to replay"
    );
    assert!(coordinator.group("g").is_ok(), "still served, not loading");
    let other = Arc::new(MemoryLog::default());
    assert_eq!(
        coordinator.update(Some(4), vec![(p, handle(&other))]).len(),
        1,
        "another log: replayed afresh"
    );
}

#[tokio::test]
async fn commits_are_replayed_when_leadership_returns_and_unloaded_when_it_goes() {
    let coordinator = coordinator();
    let (p, _) = partitions();
    let log: Arc<dyn CoordinatorLog> = Arc::new(MemoryLog::default());
    for load in coordinator.update(Some(4), vec![(p, Arc::clone(&log))]) {
        coordinator.load(load).expect("loads");
    }
    let group = coordinator.group("g").expect("coordinated here");
    let offsets = (0..5)
        .map(|i| (("t".to_owned(), i), committed(10 + i64::from(i))))
        .collect();
    group.commit(offsets, 1).await.expect("committed");
    group
        .delete_offsets(&[("t".to_owned(), 4)], 2)
        .await
        .expect("deleted");
    assert_eq!(group.committed().len(), 4);

    coordinator.update(Some(4), vec![]);
    assert_eq!(
        error_of(coordinator.group("g")),
        ResponseError::NotCoordinator
    );
    assert!(
        coordinator.list().expect("loaded").is_empty(),
        "the group is unloaded"
    );

    let loads = coordinator.update(Some(4), vec![(p, log)]);
    for load in loads {
        assert_eq!(
            coordinator.load(load),
            Ok(6),
            "five commits and a tombstone"
        );
    }
    let group = coordinator.group("g").expect("coordinated again");
    let restored = group.committed();
    assert_eq!(restored.len(), 4);
    assert_eq!(restored[&("t".to_owned(), 3)].offset, 13);
}

#[tokio::test]
async fn a_load_overtaken_by_a_leadership_change_does_nothing() {
    let coordinator = coordinator();
    let (p, _) = partitions();
    let log = Arc::new(MemoryLog::default());
    log.records.lock().push((
        records::offset_key("g", "t", 0),
        Some(records::offset_value(&committed(7))),
    ));
    let log: Arc<dyn CoordinatorLog> = log;
    let stale = coordinator.update(Some(4), vec![(p, Arc::clone(&log))]);
    coordinator.update(Some(4), vec![]);
    let fresh = coordinator.update(Some(4), vec![(p, log)]);
    for load in stale {
        assert_eq!(coordinator.load(load), Ok(0));
    }
    assert_eq!(
        error_of(coordinator.group("g")),
        ResponseError::CoordinatorLoadInProgress
    );
    for load in fresh {
        assert_eq!(coordinator.load(load), Ok(1));
    }
    let group = coordinator.group("g").expect("loaded");
    assert_eq!(group.committed()[&("t".to_owned(), 0)].offset, 7);
}

#[tokio::test]
async fn failed_writes_map_to_coordinator_errors() {
    let coordinator = coordinator();
    let (p, _) = partitions();
    let log = Arc::new(MemoryLog::default());
    let shared: Arc<dyn CoordinatorLog> = Arc::clone(&log) as Arc<dyn CoordinatorLog>;
    for load in coordinator.update(Some(4), vec![(p, shared)]) {
        coordinator.load(load).expect("loads");
    }
    let group = coordinator.group("g").expect("coordinated here");
    for (refused, answered) in [
        (
            ResponseError::NotLeaderOrFollower,
            ResponseError::NotCoordinator,
        ),
        (
            ResponseError::RequestTimedOut,
            ResponseError::CoordinatorNotAvailable,
        ),
        (
            ResponseError::NotEnoughReplicas,
            ResponseError::CoordinatorNotAvailable,
        ),
    ] {
        *log.refuse.lock() = Some(refused);
        let offsets = vec![(("t".to_owned(), 0), committed(1))];
        let error = group.commit(offsets, 1).await.expect_err("refused");
        assert_eq!(error.error(), answered);
    }
    assert!(
        group.committed().is_empty(),
        "nothing unreplicated is applied"
    );
}

// The in-memory state alone.

fn committed_at(offset: i64, commit_timestamp: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp,
    }
}

#[test]
fn offsets_expire_after_retention_and_are_forgotten() {
    let coordinator = Groups::new(GroupConfig::default(), ConsumerGroupConfig::default());
    coordinator.apply_offsets(
        "g",
        vec![
            (("t".into(), 0), committed_at(5, 1_000)),
            (("t".into(), 1), committed_at(7, 50_000)),
        ],
    );
    assert!(
        coordinator.expired_offsets(10_000, 60_000).is_empty(),
        "nothing is older than the retention"
    );
    let expired = coordinator.expired_offsets(70_000, 60_000);
    assert_eq!(expired, vec![("g".to_owned(), vec![("t".to_owned(), 0)])]);
    coordinator.remove_offsets("g", &expired[0].1);
    assert_eq!(coordinator.committed("g").len(), 1);
    coordinator.remove_offsets("g", &[("t".to_owned(), 1)]);
    assert!(
        coordinator.list().is_empty(),
        "a group with no offsets and no members is gone"
    );
}

#[tokio::test]
async fn a_group_with_members_keeps_its_offsets() {
    let coordinator = Groups::new(
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        },
        ConsumerGroupConfig::default(),
    );
    let join = classic::JoinRequest {
        member_id: String::new(),
        group_instance_id: Some("i".into()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::new())],
        require_known_member_id: true,
    };
    let joined = coordinator.join("g", join).await;
    assert_eq!(joined.error, None);
    coordinator.apply_offsets("g", vec![(("t".into(), 0), committed_at(5, 0))]);
    assert!(coordinator.expired_offsets(i64::MAX / 2, 1).is_empty());
}
