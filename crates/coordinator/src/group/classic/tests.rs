//! Unit tests of the classic group state machine.

use super::*;

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 100,
        ..GroupConfig::default()
    }
}

fn join_request(member: &str) -> JoinRequest {
    JoinRequest {
        member_id: member.to_owned(),
        group_instance_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![
            ("range".into(), Bytes::from_static(b"r")),
            ("roundrobin".into(), Bytes::from_static(b"rr")),
        ],
        require_known_member_id: true,
    }
}

/// Joins with the KIP-394 round trip; returns the member id and the join outcome.
fn join(group: &mut Group, now: u64) -> (String, Outcome<JoinResponse>) {
    let (id, first) = group.join(now, join_request(""));
    assert_eq!(
        first.reply.unwrap().error,
        Some(ResponseError::MemberIdRequired)
    );
    group.join(now, join_request(&id))
}

#[test]
fn first_members_wait_for_the_initial_delay_then_all_get_the_generation() {
    let mut group = Group::new("g".into(), config());
    let (a, outcome) = join(&mut group, 0);
    assert!(
        outcome.reply.is_none(),
        "the first join waits for the initial delay"
    );
    let (b, outcome) = join(&mut group, 50);
    assert!(outcome.reply.is_none());
    assert!(
        group.tick(100).is_empty(),
        "the delay restarted when b joined"
    );
    let deliveries = group.tick(150);
    assert_eq!(deliveries.len(), 2);
    for d in &deliveries {
        let Delivery::Join(id, r) = d else {
            panic!("{d:?}")
        };
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(r.leader, a);
        assert_eq!(
            r.members.len(),
            if *id == a { 2 } else { 0 },
            "only the leader sees the members"
        );
    }
    assert_eq!(group.state, GroupState::CompletingRebalance);
    // The follower's sync waits for the leader's.
    assert!(group.sync(160, &b, 1, vec![]).reply.is_none());
    let leader = group.sync(
        170,
        &a,
        1,
        vec![
            (a.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ],
    );
    assert_eq!(leader.reply.unwrap().assignment, Bytes::from_static(b"A"));
    assert_eq!(
        leader.deliveries,
        vec![Delivery::Sync(
            b.clone(),
            SyncResponse {
                error: None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignment: Bytes::from_static(b"B"),
            }
        )]
    );
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.heartbeat(200, &b, 1), Ok(()));
}

#[test]
fn an_expired_member_triggers_a_rebalance_of_the_rest() {
    let mut group = Group::new("g".into(), config());
    let (a, _) = join(&mut group, 0);
    let (b, _) = join(&mut group, 0);
    group.tick(100);
    group.sync(100, &a, 1, vec![]);
    group.sync(100, &b, 1, vec![]);
    assert_eq!(group.state, GroupState::Stable);
    // Only a keeps heartbeating; b's 10 s session lapses.
    for t in (1_000..=10_000).step_by(1_000) {
        assert_eq!(group.heartbeat(t, &a, 1), Ok(()));
    }
    assert!(group.tick(10_200).is_empty());
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert!(!group.members.contains_key(&b));
    assert_eq!(
        group.heartbeat(10_300, &a, 1),
        Err(ResponseError::RebalanceInProgress)
    );
    let (_, rejoin) = group.join(10_400, join_request(&a));
    let r = rejoin
        .reply
        .expect("the only member's rejoin completes the rebalance");
    assert_eq!((r.generation_id, r.members.len()), (2, 1));
}

#[test]
fn leaving_member_and_protocol_checks() {
    let mut group = Group::new("g".into(), config());
    let (a, _) = join(&mut group, 0);
    group.tick(200);
    let mut other = join_request("");
    other.protocol_type = "connect".into();
    assert_eq!(
        group.join(300, other).1.reply.unwrap().error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(
        group
            .join(300, join_request("nobody"))
            .1
            .reply
            .unwrap()
            .error,
        Some(ResponseError::UnknownMemberId)
    );
    let mut short = join_request("");
    short.session_timeout_ms = 10;
    assert_eq!(
        group.join(300, short).1.reply.unwrap().error,
        Some(ResponseError::InvalidSessionTimeout)
    );
    assert_eq!(group.leave(400, &a).reply, Some(Ok(())));
    assert_eq!(group.state, GroupState::Empty);
    assert_eq!(
        group.leave(400, &a).reply,
        Some(Err(ResponseError::UnknownMemberId))
    );
}

#[test]
fn commits_are_checked_against_generation_and_membership() {
    let mut group = Group::new("g".into(), config());
    assert_eq!(
        group.check_commit(0, "", None, -1),
        Ok(()),
        "standalone commits to an empty group"
    );
    let (a, _) = join(&mut group, 0);
    group.tick(200);
    assert_eq!(group.state, GroupState::CompletingRebalance);
    assert_eq!(
        group.check_commit(210, &a, None, 1),
        Err(ResponseError::RebalanceInProgress),
        "no commits between the join and the assignment"
    );
    group.sync(220, &a, 1, vec![]);
    assert_eq!(group.check_commit(230, &a, None, 1), Ok(()));
    assert_eq!(
        group.check_commit(230, &a, None, 0),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        group.check_commit(230, "x", None, 1),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        group.check_commit(230, "", None, -1),
        Err(ResponseError::UnknownMemberId),
        "an admin's offset change needs an empty group"
    );
}

#[test]
fn members_commit_while_a_rebalance_is_prepared() {
    let mut group = Group::new("g".into(), config());
    let (a, _) = join(&mut group, 0);
    group.tick(200);
    group.sync(210, &a, 1, vec![]);
    join(&mut group, 300);
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(
        group.check_commit(310, &a, None, 1),
        Ok(()),
        "a commits what it processed before giving its partitions up"
    );
    assert_eq!(
        group.members[&a].last_heard_ms, 310,
        "a commit is a heartbeat"
    );
    assert_eq!(
        group.check_commit(310, &a, None, 0),
        Err(ResponseError::IllegalGeneration)
    );
}

#[test]
fn a_restarted_static_member_takes_its_place_back_without_a_rebalance() {
    let mut group = Group::new("g".into(), config());
    let static_join = |instance: &str| JoinRequest {
        group_instance_id: Some(instance.into()),
        ..join_request("")
    };
    let (a, first) = group.join(0, static_join("a"));
    assert!(
        first.reply.is_none(),
        "a static member joins without the member-id round trip"
    );
    let (b, _) = group.join(0, static_join("b"));
    group.tick(200);
    group.sync(
        210,
        &a,
        1,
        vec![
            (a.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ],
    );
    group.sync(210, &b, 1, vec![]);
    assert_eq!(group.state, GroupState::Stable);

    let (a2, rejoin) = group.join(300, static_join("a"));
    assert_ne!(a2, a);
    let reply = rejoin.reply.expect("answered at once");
    assert_eq!(
        (reply.error, reply.generation_id),
        (None, 1),
        "same generation: no rebalance"
    );
    assert!(rejoin.deliveries.is_empty(), "b is not disturbed");
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(
        group.sync(310, &a2, 1, vec![]).reply.unwrap().assignment,
        Bytes::from_static(b"A")
    );
    assert!(group.fenced(&a, Some("a")), "the old incarnation is fenced");
    assert_eq!(
        group.check_commit(305, &a, Some("a"), 1),
        Err(ResponseError::FencedInstanceId)
    );
    assert_eq!(group.check_commit(305, &a2, Some("a"), 1), Ok(()));
    assert_eq!(
        group.check_commit(305, &a2, Some("z"), 1),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(group.heartbeat(320, &b, 1), Ok(()));
    let stale = JoinRequest {
        member_id: a.clone(),
        ..static_join("a")
    };
    assert_eq!(
        group.join(330, stale).1.reply.unwrap().error,
        Some(ResponseError::FencedInstanceId)
    );
}
