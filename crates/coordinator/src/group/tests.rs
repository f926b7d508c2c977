//! Ownership of `__consumer_offsets` partitions, over an in-memory log.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use kafka_protocol::error::ResponseError;

use super::classic::{self, GroupConfig};
use super::consumer::ConsumerGroupConfig;
use super::groups::Groups;
use super::records::{self, CommittedOffset};
use super::GroupCoordinator;
use crate::error::CoordinatorError;
use crate::error::LogError;
use crate::log::{CoordinatorLog, LogEntry, Record, Replication};
use crate::test_log::MemoryLog;

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

    fn read(&self, from: i64, end: i64) -> Result<Option<(Vec<LogEntry>, i64)>, LogError> {
        self.0.read(from, end)
    }

    fn append_as(
        &self,
        records: &[Record],
        producer: Option<(i64, i16)>,
        now_ms: i64,
        deadline: tokio::time::Instant,
    ) -> Result<Replication<'_>, LogError> {
        self.0.append_as(records, producer, now_ms, deadline)
    }

    fn leader_epoch(&self) -> i32 {
        self.0.leader_epoch()
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

#[test]
fn a_partition_at_a_new_leader_epoch_is_reloaded_and_takes_markers_once_loaded() {
    let coordinator = coordinator();
    let (p, _) = partitions();
    let handle =
        |log: &Arc<MemoryLog>| Arc::new(Handle(Arc::clone(log))) as Arc<dyn CoordinatorLog>;
    let log = Arc::new(MemoryLog::default());
    // Not led here yet, then loading: a transaction marker must wait.
    assert_eq!(
        coordinator.serves(p).map_err(|e| e.error()),
        Err(ResponseError::NotCoordinator)
    );
    let loads = coordinator.update(Some(4), vec![(p, handle(&log))]);
    assert_eq!(
        coordinator.serves(p).map_err(|e| e.error()),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    for load in loads {
        coordinator.load(load).expect("loads");
    }
    assert_eq!(coordinator.serves(p), Ok(()));
    // Led elsewhere and back within one report: the same log at a newer epoch. Until
    // reported, the partition answers as another node's; then it is replayed afresh.
    log.leader_epoch
        .store(2, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        error_of(coordinator.group("g")),
        ResponseError::NotCoordinator
    );
    let loads = coordinator.update(Some(4), vec![(p, handle(&log))]);
    assert_eq!(loads.len(), 1, "a new epoch: replayed afresh");
    assert_eq!(
        coordinator.serves(p).map_err(|e| e.error()),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    for load in loads {
        coordinator.load(load).expect("loads");
    }
    assert!(coordinator.group("g").is_ok());
    assert!(
        coordinator
            .update(Some(4), vec![(p, handle(&log))])
            .is_empty(),
        "the same epoch again: nothing to replay"
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

/// KIP-848's online migration, through the coordinator as the broker drives it.
mod migration {
    use super::*;
    use crate::group::consumer::classic_member::{decode_assignment, encode_assignment};
    use crate::group::consumer::{Heartbeat, MigrationPolicy, TopicInfo, Topics};
    use bytes::BufMut;
    use uuid::Uuid;

    const T: Uuid = Uuid::from_u128(9);

    struct Catalog;

    impl Topics for Catalog {
        fn get(&self, name: &str) -> Option<TopicInfo> {
            (name == "t").then_some(TopicInfo {
                id: T,
                partitions: 4,
            })
        }
        fn names(&self) -> Vec<String> {
            vec!["t".to_owned()]
        }
    }

    /// A coordinator leading the only `__consumer_offsets` partition of `log`.
    pub(super) fn loaded(policy: MigrationPolicy, log: &Arc<MemoryLog>) -> GroupCoordinator {
        let c = GroupCoordinator::new(
            GroupConfig {
                initial_rebalance_delay_ms: 0,
                ..GroupConfig::default()
            },
            ConsumerGroupConfig {
                migration: policy,
                ..ConsumerGroupConfig::default()
            },
        );
        let log: Arc<dyn CoordinatorLog> = log.clone();
        for load in c.update(Some(1), vec![(0, log)]) {
            c.load(load).expect("loads");
        }
        c
    }

    /// A version 1 ConsumerProtocolSubscription of `t`, owning nothing.
    fn subscription() -> Bytes {
        let mut b = bytes::BytesMut::new();
        b.put_i16(1);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(-1);
        b.put_i32(0);
        b.freeze()
    }

    fn join(member_id: &str) -> classic::JoinRequest {
        classic::JoinRequest {
            member_id: member_id.to_owned(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription())],
            require_known_member_id: false,
        }
    }

    fn consumer_join(member_id: &str) -> Heartbeat {
        Heartbeat {
            member_id: member_id.to_owned(),
            member_epoch: 0,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(vec![]),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            ..Heartbeat::default()
        }
    }

    fn count(assignment: &Bytes) -> usize {
        decode_assignment(assignment)
            .expect("a ConsumerProtocolAssignment")
            .iter()
            .map(|(_, ps)| ps.len())
            .sum()
    }

    /// A classic group of one member that owns every partition of `t`.
    pub(super) async fn classic_group(c: &GroupCoordinator) -> String {
        let g = c.group("g").unwrap();
        let joined = g.join(join(""), &Catalog, 0).await.unwrap();
        assert_eq!((joined.error, joined.generation_id), (None, 1));
        let all = encode_assignment(0, &[("t".into(), vec![0, 1, 2, 3])]);
        let a = joined.member_id;
        let synced = g.sync(&a, None, 1, vec![(a.clone(), all)], 0).await;
        assert_eq!(synced.error, None);
        a
    }

    #[tokio::test]
    async fn a_consumer_member_upgrades_a_classic_group_whose_members_stay_and_leaves_it_classic_again(
    ) {
        let log = Arc::new(MemoryLog::default());
        let c = loaded(MigrationPolicy::Bidirectional, &log);
        let a = classic_group(&c).await;
        let g = c.group("g").unwrap();

        // The consumer-protocol member joins: the group converts, the classic member keeps
        // its partitions until it rejoins.
        let joined = g
            .consumer_heartbeat(1, consumer_join("consumer-member-1"), &Catalog, 0)
            .await
            .expect("the join upgrades the group");
        assert_eq!(joined.member_epoch, 2, "generation 1, then the join");
        assert_eq!(
            joined.assignment,
            Some(Default::default()),
            "all still held"
        );
        assert_eq!(c.list().unwrap()[0].group_type, "consumer");
        assert_eq!(
            g.heartbeat(&a, None, 1),
            Err(ResponseError::RebalanceInProgress)
        );

        // The classic member rejoins (having given up its partitions) and syncs.
        let rejoined = g.join(join(&a), &Catalog, 0).await.unwrap();
        assert_eq!(
            (
                rejoined.error,
                rejoined.generation_id,
                rejoined.leader.as_str()
            ),
            (None, 2, "")
        );
        assert_eq!(rejoined.protocol_name.as_deref(), Some("range"));
        let synced = g.sync(&a, None, 2, vec![], 0).await;
        assert_eq!((synced.error, count(&synced.assignment)), (None, 2));
        assert_eq!(g.heartbeat(&a, None, 2), Ok(()));
        assert_eq!(g.check_commit(&a, None, 2, 7), Ok(()));
        assert_eq!(
            g.check_commit(&a, None, 1, 7),
            Err(ResponseError::IllegalGeneration)
        );
        let mut beat = consumer_join("consumer-member-1");
        beat.member_epoch = 2;
        let beat = g.consumer_heartbeat(1, beat, &Catalog, 0).await.unwrap();
        let freed: usize = beat.assignment.unwrap().values().map(|ps| ps.len()).sum();
        assert_eq!(freed, 2, "the partitions the classic member let go");

        // A restart finds the converted group with its classic member.
        let replayed = loaded(MigrationPolicy::Bidirectional, &log);
        let members = replayed
            .group("g")
            .unwrap()
            .with_consumer(|g| {
                g.members
                    .values()
                    .map(|m| (m.id.clone(), m.classic.is_some(), m.epoch))
                    .collect::<Vec<_>>()
            })
            .expect("a consumer group after the restart");
        assert!(members.contains(&(a.clone(), true, 2)), "{members:?}");
        assert_eq!(members.len(), 2);

        // The consumer-protocol member leaves: the group is classic again and rebalances.
        let mut leave = consumer_join("consumer-member-1");
        leave.member_epoch = -1;
        g.consumer_heartbeat(1, leave, &Catalog, 0).await.unwrap();
        let state = g.with_classic(|g| (g.state, g.generation, g.members.len()));
        assert_eq!(state, Some((classic::GroupState::PreparingRebalance, 3, 1)));
        assert_eq!(
            g.heartbeat(&a, None, 3),
            Err(ResponseError::RebalanceInProgress)
        );
        let rejoined = g.join(join(&a), &Catalog, 0).await.unwrap();
        assert_eq!(
            (rejoined.error, rejoined.generation_id, rejoined.leader == a),
            (None, 4, true)
        );
        let after_downgrade = loaded(MigrationPolicy::Bidirectional, &log);
        assert!(
            after_downgrade
                .group("g")
                .unwrap()
                .with_consumer(|_| ())
                .is_none(),
            "the consumer group's records are tombstoned"
        );
    }

    #[tokio::test]
    async fn the_migration_policy_can_refuse_the_upgrade_and_the_downgrade() {
        let log = Arc::new(MemoryLog::default());
        let c = loaded(MigrationPolicy::Disabled, &log);
        classic_group(&c).await;
        let refused = c
            .group("g")
            .unwrap()
            .consumer_heartbeat(1, consumer_join("consumer-member-1"), &Catalog, 0)
            .await
            .expect_err("no upgrade");
        assert_eq!(
            refused,
            (
                ResponseError::GroupIdNotFound,
                "Cannot upgrade classic group g to consumer group because online upgrade is disabled."
                    .to_owned()
            )
        );

        // `upgrade` converts one way only: the last consumer-protocol member leaves a
        // consumer group of classic members.
        let log = Arc::new(MemoryLog::default());
        let c = loaded(MigrationPolicy::Upgrade, &log);
        let a = classic_group(&c).await;
        let g = c.group("g").unwrap();
        g.consumer_heartbeat(1, consumer_join("consumer-member-1"), &Catalog, 0)
            .await
            .unwrap();
        let mut leave = consumer_join("consumer-member-1");
        leave.member_epoch = -1;
        g.consumer_heartbeat(1, leave, &Catalog, 0).await.unwrap();
        assert!(g.with_classic(|_| ()).is_none());
        let members = g.with_consumer(|g| g.members.keys().cloned().collect::<Vec<_>>());
        assert_eq!(members, Some(vec![a.clone()]));
        // A classic member of a consumer group leaves through LeaveGroup.
        assert_eq!(g.leave(&a, None), Ok(()));
        assert_eq!(g.with_consumer(|g| g.members.len()), Some(0));
    }
}

#[tokio::test]
async fn offsets_pending_in_a_transaction_are_unstable_to_a_fetch_that_requires_stable_ones() {
    let coordinator = coordinator();
    let (p, _) = partitions();
    let log: Arc<dyn CoordinatorLog> = Arc::new(MemoryLog::default());
    for load in coordinator.update(Some(4), vec![(p, Arc::clone(&log))]) {
        coordinator.load(load).expect("loads");
    }
    let group = coordinator.group("g").expect("coordinated here");
    let t = |i: i32| ("t".to_owned(), i);
    let wanted = || Some(vec![t(0), t(1), t(2)]);
    let unstable = Err(ResponseError::UnstableOffsetCommit);
    group
        .commit(vec![(t(0), committed(5))], 1)
        .await
        .expect("committed");
    group
        .commit_in_transaction((42, 0), vec![(t(0), committed(7)), (t(1), committed(9))], 2)
        .await
        .expect("written in the transaction");
    assert_eq!(
        group.fetch_offsets(wanted(), true),
        vec![
            (t(0), unstable.clone()),
            (t(1), unstable.clone()),
            (t(2), Ok(None))
        ]
    );
    assert_eq!(
        group.fetch_offsets(wanted(), false),
        vec![
            (t(0), Ok(Some(committed(5)))),
            (t(1), Ok(None)),
            (t(2), Ok(None))
        ],
        "without require_stable: the offsets committed so far"
    );
    assert_eq!(
        group.fetch_offsets(None, true),
        vec![(t(0), unstable.clone())],
        "all offsets: those committed, the pending one unstable"
    );
    let sibling = (0..100)
        .map(|i| format!("h{i}"))
        .find(|g| records::partition_for(g, 4) == p)
        .expect("some id lands in the same partition");
    assert_eq!(
        coordinator
            .group(&sibling)
            .expect("coordinated here")
            .fetch_offsets(wanted(), true),
        vec![(t(0), Ok(None)), (t(1), Ok(None)), (t(2), Ok(None))],
        "another group's offsets are not pending"
    );
    coordinator.complete_transaction(42, true);
    assert_eq!(
        group.fetch_offsets(wanted(), true),
        vec![
            (t(0), Ok(Some(committed(7)))),
            (t(1), Ok(Some(committed(9)))),
            (t(2), Ok(None))
        ],
        "committed by the marker"
    );
    group
        .commit_in_transaction((43, 0), vec![(t(2), committed(1))], 3)
        .await
        .expect("written in the transaction");
    assert_eq!(
        group.fetch_offsets(Some(vec![t(2)]), true),
        vec![(t(2), unstable)]
    );
    coordinator.complete_transaction(43, false);
    assert_eq!(
        group.fetch_offsets(Some(vec![t(2)]), true),
        vec![(t(2), Ok(None))],
        "an aborted transaction's offsets are dropped"
    );
}

#[test]
fn transactional_offsets_are_pending_until_their_marker_and_read_with_the_committed_ones() {
    let groups = Groups::new(GroupConfig::default(), ConsumerGroupConfig::default());
    let tp = ("t".to_owned(), 0);
    groups.apply_offsets("g", vec![(tp.clone(), committed(5))]);
    groups.stage_txn_offsets(7, "g", vec![(tp.clone(), committed(9))]);
    let (offsets, pending) = groups.committed_and_pending("g");
    assert_eq!(offsets[&tp].offset, 5, "not the group's before the marker");
    assert_eq!(pending, BTreeSet::from([tp.clone()]));
    assert!(
        groups.committed_and_pending("other").1.is_empty(),
        "pending for its own group only"
    );

    groups.complete_txn_offsets(7, true);
    let (offsets, pending) = groups.committed_and_pending("g");
    assert_eq!((offsets[&tp].offset, pending.len()), (9, 0));

    groups.stage_txn_offsets(7, "g", vec![(tp.clone(), committed(12))]);
    groups.complete_txn_offsets(7, false);
    let (offsets, pending) = groups.committed_and_pending("g");
    assert_eq!(
        (offsets[&tp].offset, pending.len()),
        (9, 0),
        "an abort drops them"
    );
}

/// A classic group's membership as the coordinator that takes its partition over sees it.
mod coordinator_moves {
    use super::migration::{classic_group, loaded};
    use super::*;
    use crate::group::classic::GroupState;
    use crate::group::consumer::MigrationPolicy;

    #[tokio::test]
    async fn a_classic_group_keeps_its_members_generation_and_assignments() {
        let log = Arc::new(MemoryLog::default());
        let old = loaded(MigrationPolicy::Disabled, &log);
        let a = classic_group(&old).await;

        let new = loaded(MigrationPolicy::Disabled, &log);
        let g = new.group("g").unwrap();
        assert_eq!(g.heartbeat(&a, None, 1), Ok(()));
        assert_eq!(g.check_commit(&a, None, 1, 8), Ok(()));
        assert_eq!(
            g.check_commit(&a, None, 2, 8),
            Err(ResponseError::IllegalGeneration)
        );
        let (state, assigned) = g
            .with_classic(|group| {
                let member = &group.members[&a];
                (group.state, member.assignment.clone())
            })
            .expect("a classic group");
        assert_eq!(state, GroupState::Stable);
        assert!(!assigned.is_empty(), "the stored assignment is kept");
    }

    #[tokio::test]
    async fn a_classic_group_whose_members_left_is_logged_empty() {
        let log = Arc::new(MemoryLog::default());
        let old = loaded(MigrationPolicy::Disabled, &log);
        let a = classic_group(&old).await;
        old.group("g").unwrap().leave(&a, None).unwrap();
        old.tick();

        let new = loaded(MigrationPolicy::Disabled, &log);
        let g = new.group("g").unwrap();
        assert_eq!(
            g.heartbeat(&a, None, 1),
            Err(ResponseError::UnknownMemberId)
        );
        let (state, members) = g
            .with_classic(|group| (group.state, group.members.len()))
            .expect("a classic group");
        assert_eq!((state, members), (GroupState::Empty, 0));
    }
}
