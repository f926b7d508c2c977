//! The consumer-protocol group driven by simulated clients that behave as KIP-848 clients
//! do: they own exactly the last assignment they were given and report it in every heartbeat.

use super::*;
use kafka_protocol::error::ResponseError;

const T: Uuid = Uuid::from_u128(1);

fn config() -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 1_000,
        max_size: usize::MAX,
        migration: MigrationPolicy::Bidirectional,
    }
}

/// Topic `t` with a number of partitions, and others named in `more`.
struct Catalog {
    partitions: i32,
    more: Vec<(&'static str, TopicInfo)>,
}

impl Topics for Catalog {
    fn get(&self, name: &str) -> Option<TopicInfo> {
        if name == "t" {
            return Some(TopicInfo {
                id: T,
                partitions: self.partitions,
            });
        }
        self.more.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    fn names(&self) -> Vec<String> {
        std::iter::once("t")
            .chain(self.more.iter().map(|(n, _)| *n))
            .map(str::to_owned)
            .collect()
    }
}

fn topics_with(partitions: i32) -> Catalog {
    Catalog {
        partitions,
        more: Vec::new(),
    }
}

/// A client of the group: what it owns is what it was last given.
#[derive(Debug, Clone)]
struct Client {
    id: String,
    epoch: i32,
    owned: BTreeSet<i32>,
    assignor: Option<String>,
}

impl Client {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            epoch: 0,
            owned: BTreeSet::new(),
            assignor: None,
        }
    }

    fn request(&self) -> Heartbeat {
        Heartbeat {
            member_id: self.id.clone(),
            member_epoch: self.epoch,
            rebalance_timeout_ms: if self.epoch == 0 { 5_000 } else { -1 },
            subscribed_topic_names: (self.epoch == 0).then(|| vec!["t".to_owned()]),
            server_assignor: self.assignor.clone(),
            owned: Some(if self.owned.is_empty() {
                vec![]
            } else {
                vec![(T, self.owned.iter().copied().collect())]
            }),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            ..Heartbeat::default()
        }
    }

    fn heartbeat(
        &mut self,
        group: &mut ConsumerGroup,
        now: u64,
        partitions: i32,
    ) -> Result<HeartbeatReply, HeartbeatError> {
        let request = self.request();
        validate(&request, 1)?;
        let reply = group.heartbeat(now, request, &topics_with(partitions))?;
        self.epoch = reply.member_epoch;
        if let Some(a) = &reply.assignment {
            self.owned = a.get(&T).cloned().unwrap_or_default();
        }
        Ok(reply)
    }
}

/// No partition is owned by two clients.
fn assert_disjoint(clients: &[Client]) {
    let mut seen = BTreeSet::new();
    for c in clients {
        for p in &c.owned {
            assert!(seen.insert(*p), "partition {p} owned twice: {clients:?}");
        }
    }
}

/// Heartbeats every client in turn until nothing changes; checks ownership after each step.
fn settle(group: &mut ConsumerGroup, clients: &mut [Client], now: u64, partitions: i32) {
    for _ in 0..20 {
        let before: Vec<(i32, BTreeSet<i32>)> =
            clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
        for i in 0..clients.len() {
            clients[i].heartbeat(group, now, partitions).unwrap();
            assert_disjoint(clients);
        }
        let after: Vec<(i32, BTreeSet<i32>)> =
            clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
        if before == after && group.state() == ConsumerGroupState::Stable {
            return;
        }
    }
    panic!("the group did not settle: {:?}", group.state());
}

#[test]
fn three_members_get_disjoint_assignments_covering_every_partition() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut clients = vec![Client::new("a"), Client::new("b"), Client::new("c")];
    settle(&mut group, &mut clients, 0, 6);
    let all: BTreeSet<i32> = clients.iter().flat_map(|c| c.owned.clone()).collect();
    assert_eq!(all, (0..6).collect());
    assert!(clients.iter().all(|c| c.owned.len() == 2));
    assert_eq!(group.state(), ConsumerGroupState::Stable);
    assert!(clients.iter().all(|c| c.epoch == group.group_epoch));
}

#[test]
fn a_partition_moves_only_after_its_owner_revoked_it() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut a = Client::new("a");
    a.heartbeat(&mut group, 0, 4).unwrap();
    assert_eq!(a.owned.len(), 4);
    let mut b = Client::new("b");
    b.heartbeat(&mut group, 10, 4).unwrap();
    assert!(b.owned.is_empty(), "a still owns everything");
    assert_eq!(group.state(), ConsumerGroupState::Reconciling);
    // a is told to give up two partitions but keeps its epoch until it does.
    let reply = a.heartbeat(&mut group, 20, 4).unwrap();
    assert_eq!(a.owned.len(), 2);
    assert_eq!(reply.member_epoch, 1);
    b.heartbeat(&mut group, 30, 4).unwrap();
    assert!(b.owned.is_empty(), "a has not confirmed the revocation yet");
    // a's next heartbeat reports only two partitions: the revocation is done.
    a.heartbeat(&mut group, 40, 4).unwrap();
    assert_eq!(a.epoch, 2);
    b.heartbeat(&mut group, 50, 4).unwrap();
    assert_eq!(b.owned.len(), 2);
    assert!(a.owned.is_disjoint(&b.owned));
    assert_eq!(group.state(), ConsumerGroupState::Stable);
}

#[test]
fn an_expired_member_s_partitions_go_to_the_others() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut clients = vec![Client::new("a"), Client::new("b"), Client::new("c")];
    settle(&mut group, &mut clients, 0, 6);
    let epoch = group.group_epoch;
    let dead = clients.pop().unwrap();
    settle(&mut group, &mut clients, 9_000, 6);
    group.tick(10_000);
    assert!(group.members.contains_key("a") && !group.members.contains_key("c"));
    assert_eq!(group.group_epoch, epoch + 1);
    settle(&mut group, &mut clients, 10_100, 6);
    let all: BTreeSet<i32> = clients.iter().flat_map(|c| c.owned.clone()).collect();
    assert_eq!(all, (0..6).collect());
    assert!(dead.owned.iter().all(|p| all.contains(p)));
}

#[test]
fn new_partitions_of_a_subscribed_topic_start_a_new_epoch() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut clients = vec![Client::new("a"), Client::new("b")];
    settle(&mut group, &mut clients, 0, 2);
    let epoch = group.group_epoch;
    settle(&mut group, &mut clients, 100, 4);
    assert_eq!(group.group_epoch, epoch + 1);
    let all: BTreeSet<i32> = clients.iter().flat_map(|c| c.owned.clone()).collect();
    assert_eq!(all, (0..4).collect());
}

#[test]
fn the_range_assignor_is_used_when_members_ask_for_it() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut clients: Vec<Client> = ["a", "b"]
        .iter()
        .map(|id| Client {
            assignor: Some("range".into()),
            ..Client::new(id)
        })
        .collect();
    settle(&mut group, &mut clients, 0, 5);
    assert_eq!(group.assignor(), "range");
    assert_eq!(clients[0].owned, BTreeSet::from([0, 1, 2]));
    assert_eq!(clients[1].owned, BTreeSet::from([3, 4]));
}

#[test]
fn epochs_unknown_members_and_bad_requests_are_refused_with_kafka_errors() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut a = Client::new("a");
    a.heartbeat(&mut group, 0, 2).unwrap();
    let mut ahead = a.clone();
    ahead.epoch += 5;
    let err = ahead.heartbeat(&mut group, 1, 2).unwrap_err();
    assert_eq!(err.error(), ResponseError::FencedMemberEpoch);
    let mut stranger = Client::new("x");
    stranger.epoch = 3;
    let err = stranger.heartbeat(&mut group, 1, 2).unwrap_err();
    assert_eq!(err, HeartbeatError::UnknownMemberId("x".into()));

    let mut bad = a.request();
    bad.server_assignor = Some("sticky".into());
    assert_eq!(
        validate(&bad, 1).unwrap_err().error(),
        ResponseError::UnsupportedAssignor
    );
    let mut no_id = Client::new("").request();
    assert!(validate(&no_id, 1).is_err(), "v1 needs a client-chosen id");
    assert!(validate(&no_id, 0).is_ok(), "v0 lets the server choose");
    no_id.subscribed_topic_names = None;
    assert!(
        validate(&no_id, 0).is_err(),
        "a join must say what it subscribes to"
    );
    let mut regex = Client::new("r").request();
    regex.subscribed_topic_regex = Some("t(".into());
    assert_eq!(
        validate(&regex, 1).unwrap_err().error(),
        ResponseError::InvalidRegularExpression
    );
    let reply = group
        .heartbeat(2, Client::new("").request(), &topics_with(2))
        .unwrap();
    assert!(!reply.member_id.is_empty(), "the server chose a member id");
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_removed() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut a = Client::new("a");
    a.heartbeat(&mut group, 0, 2).unwrap();
    let mut b = Client::new("b");
    b.heartbeat(&mut group, 0, 2).unwrap();
    // a is asked to revoke (rebalance timeout 5 s) but keeps claiming both partitions.
    let mut stubborn = a.request();
    stubborn.member_epoch = a.epoch;
    group
        .heartbeat(100, stubborn.clone(), &topics_with(2))
        .unwrap();
    group.heartbeat(4_000, stubborn, &topics_with(2)).unwrap();
    group.tick(5_000);
    assert!(group.members.contains_key("a"));
    group.tick(5_101);
    assert!(
        !group.members.contains_key("a"),
        "fenced after the rebalance timeout"
    );
    b.heartbeat(&mut group, 5_200, 2).unwrap();
    assert_eq!(b.owned.len(), 2);
}

#[test]
fn leaving_and_commits_follow_member_epochs() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut a = Client::new("a");
    a.heartbeat(&mut group, 0, 2).unwrap();
    assert_eq!(group.check_commit("a", a.epoch, 9), Ok(()));
    assert!(matches!(
        group.check_commit("a", a.epoch - 1, 9),
        Err(HeartbeatError::StaleMemberEpoch { .. })
    ));
    assert_eq!(
        group.check_commit("a", a.epoch, 8),
        Err(HeartbeatError::UnsupportedVersion)
    );
    assert!(matches!(
        group.check_commit("z", 1, 9),
        Err(HeartbeatError::UnknownMemberId(_))
    ));
    assert_eq!(group.check_fetch(None, -1), Ok(()));
    let mut leave = a.request();
    leave.member_epoch = LEAVE_EPOCH;
    let reply = group.heartbeat(10, leave, &topics_with(2)).unwrap();
    assert_eq!(reply.member_epoch, LEAVE_EPOCH);
    assert_eq!(group.state(), ConsumerGroupState::Empty);
    assert_eq!(
        group.check_commit("", -1, 9),
        Ok(()),
        "an empty group takes any commit"
    );
}

#[test]
fn a_static_member_returns_to_its_partitions_under_a_new_member_id() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let join = |id: &str, instance: &str| Heartbeat {
        instance_id: Some(instance.into()),
        ..Client::new(id).request()
    };
    let a = group
        .heartbeat(0, join("a1", "ia"), &topics_with(4))
        .unwrap();
    let b = group
        .heartbeat(0, join("b1", "ib"), &topics_with(4))
        .unwrap();
    assert!(b.assignment.unwrap().is_empty(), "a owns all four yet");
    let mut leave = join("a1", "ia");
    leave.member_epoch = STATIC_LEAVE_EPOCH;
    leave.owned = Some(vec![(
        T,
        a.assignment.unwrap()[&T].iter().copied().collect(),
    )]);
    group.heartbeat(10, leave, &topics_with(4)).unwrap();
    assert_eq!(
        group
            .heartbeat(20, join("a3", "ib"), &topics_with(4))
            .unwrap_err(),
        HeartbeatError::UnreleasedInstanceId("ib".into())
    );
    let epoch = group.group_epoch;
    let back = group
        .heartbeat(30, join("a2", "ia"), &topics_with(4))
        .unwrap();
    assert_eq!(
        group.group_epoch, epoch,
        "no rebalance for a returning static member"
    );
    assert_eq!(
        back.assignment.unwrap()[&T].len(),
        2,
        "its share of the target"
    );
    assert!(!group.members.contains_key("a1"));
}

#[test]
fn a_group_read_back_from_its_records_is_the_same_group() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let mut clients = vec![Client::new("a"), Client::new("b"), Client::new("c")];
    let mut log: Vec<(bytes::Bytes, Option<bytes::Bytes>)> = Vec::new();
    let mut flush = |group: &mut ConsumerGroup| {
        for r in group.take_records() {
            log.extend(records::encode("g", &r));
        }
    };
    settle(&mut group, &mut clients, 0, 6);
    flush(&mut group);
    // c leaves mid-way through a rebalance: some partitions are pending revocation.
    let mut leave = clients[2].request();
    leave.member_epoch = LEAVE_EPOCH;
    group.heartbeat(100, leave, &topics_with(6)).unwrap();
    clients.pop();
    clients[0].heartbeat(&mut group, 200, 6).unwrap();
    flush(&mut group);
    assert!(group.take_records().is_empty(), "nothing changed since");

    let mut restored = ConsumerGroup::new("g".into(), config());
    for (k, v) in &log {
        let (id, record) = records::decode(k, v.as_ref()).expect("decodes");
        assert_eq!(id, "g");
        restored.replay(1_000, record);
    }
    assert_eq!(restored.group_epoch, group.group_epoch);
    assert_eq!(restored.assignment_epoch, group.assignment_epoch);
    assert_eq!(restored.target, group.target);
    assert_eq!(restored.owners, group.owners);
    assert_eq!(
        restored.members.keys().collect::<Vec<_>>(),
        vec!["a", "b"],
        "the departed member stays gone"
    );
    for (id, m) in &group.members {
        assert_eq!(restored.members[id].current(), m.current());
        assert_eq!(restored.members[id].metadata(), m.metadata());
    }
    assert!(
        restored.take_records().is_empty(),
        "what was read is not written again"
    );
    // The members carry on where they were.
    settle(&mut restored, &mut clients, 1_100, 6);
    let all: BTreeSet<i32> = clients.iter().flat_map(|c| c.owned.clone()).collect();
    assert_eq!(all, (0..6).collect());
}

#[test]
fn a_regular_expression_subscribes_to_every_topic_it_matches_in_full() {
    let mut group = ConsumerGroup::new("g".into(), config());
    let info = |id| TopicInfo {
        id: Uuid::from_u128(id),
        partitions: 1,
    };
    let mut catalog = Catalog {
        partitions: 2,
        more: vec![("t-extra", info(2)), ("other", info(3))],
    };
    let join = Heartbeat {
        subscribed_topic_names: None,
        subscribed_topic_regex: Some("t.*".into()),
        ..Client::new("a").request()
    };
    validate(&join, 1).unwrap();
    let reply = group.heartbeat(0, join, &catalog).unwrap();
    let assigned = reply.assignment.unwrap();
    assert_eq!(assigned.get(&T).map(BTreeSet::len), Some(2));
    assert!(assigned.contains_key(&Uuid::from_u128(2)));
    assert!(
        !assigned.contains_key(&Uuid::from_u128(3)),
        "`other` does not match"
    );
    // A topic created later that matches starts a new epoch and is assigned.
    let epoch = group.group_epoch;
    catalog.more.push(("tt", info(4)));
    let beat = Heartbeat {
        member_epoch: reply.member_epoch,
        owned: Some(
            assigned
                .iter()
                .map(|(t, p)| (*t, p.iter().copied().collect()))
                .collect(),
        ),
        ..Heartbeat::default()
    };
    let reply = group
        .heartbeat(
            10,
            Heartbeat {
                member_id: "a".into(),
                ..beat
            },
            &catalog,
        )
        .unwrap();
    assert_eq!(group.group_epoch, epoch + 1);
    assert!(reply.assignment.unwrap().contains_key(&Uuid::from_u128(4)));
}
