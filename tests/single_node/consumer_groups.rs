//! KIP-848 consumer-protocol groups: librdkafka members with `group.protocol=consumer` share a
//! topic and take over a leaver's partitions, their commits survive a restart; raw requests
//! check the errors Kafka answers with (epochs, assignors, a group id used by both protocols).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
    DeleteGroupsRequest, GroupId, JoinGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use strata_tests::raw::{call, call_loaded, connect, COORDINATOR_LOAD_IN_PROGRESS};
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{create_topic, producer};

const UNKNOWN_MEMBER_ID: i16 = 25;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const GROUP_ID_NOT_FOUND: i16 = 69;
const FENCED_MEMBER_EPOCH: i16 = 110;
const UNSUPPORTED_ASSIGNOR: i16 = 112;
const STALE_MEMBER_EPOCH: i16 = 113;

fn node() -> Node {
    Node::start(
        NodeOptions::default()
            .property("group.initial.rebalance.delay.ms", "0")
            .property("group.consumer.session.timeout.ms", "6000")
            .property("group.consumer.heartbeat.interval.ms", "500")
            .property("offsets.topic.num.partitions", "5"),
    )
}

fn member(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("creating a consumer-protocol member")
}

fn partitions(c: &BaseConsumer) -> HashSet<i32> {
    c.assignment()
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect()
}

fn produce(bootstrap: &str, topic: &str, count: usize) {
    run_bounded(Duration::from_secs(30), async {
        let producer = producer(bootstrap, &[]);
        for i in 0..count {
            producer
                .send(
                    FutureRecord::to(topic)
                        .key(&format!("k{i}"))
                        .payload(&format!("v{i}")),
                    Duration::from_secs(10),
                )
                .await
                .expect("produce");
        }
    });
}

/// Polls (committing every record read) until `done` holds; records read are added to `got`,
/// one set per member.
fn poll_until(
    members: &[&BaseConsumer],
    got: &mut [HashSet<String>],
    limit: Duration,
    what: &str,
    done: impl Fn(&[HashSet<String>]) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(got) {
        for (i, m) in members.iter().enumerate() {
            if let Some(Ok(message)) = m.poll(Duration::from_millis(20)) {
                let value = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
                got[i].insert(value);
                m.commit_message(&message, CommitMode::Sync)
                    .expect("a member commits with its epoch");
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

#[test]
fn consumer_protocol_members_share_partitions_take_over_a_leaver_and_keep_offsets() {
    let mut node = node();
    let b = node.bootstrap();
    run_bounded(Duration::from_secs(20), create_topic(&b, "kip848", 6, &[]));
    produce(&b, "kip848", 300);
    let first = member(&b, "kip848-group");
    let second = member(&b, "kip848-group");
    first.subscribe(&["kip848"]).unwrap();
    second.subscribe(&["kip848"]).unwrap();
    let shared = |_: &[HashSet<String>]| {
        let (a, c) = (partitions(&first), partitions(&second));
        !a.is_empty() && !c.is_empty() && a.is_disjoint(&c) && a.len() + c.len() == 6
    };
    let mut read = vec![HashSet::new(), HashSet::new()];
    poll_until(
        &[&first, &second],
        &mut read,
        Duration::from_secs(30),
        "two members sharing six partitions",
        shared,
    );
    poll_until(
        &[&first, &second],
        &mut read,
        Duration::from_secs(30),
        "every record",
        |got| got[0].union(&got[1]).count() >= 300,
    );
    assert_eq!(
        read[0].union(&read[1]).count(),
        300,
        "the group read every record"
    );

    // A member that closes leaves (epoch -1): the other takes everything without waiting for
    // a session timeout.
    drop(first);
    let left_at = Instant::now();
    poll_until(
        &[&second],
        &mut read[1..],
        Duration::from_secs(10),
        "the takeover",
        |_| partitions(&second).len() == 6,
    );
    assert!(
        left_at.elapsed() < Duration::from_secs(6),
        "no session timeout wait"
    );
    drop(second);

    node.stop();
    node.restart();
    let after = member(&b, "kip848-group");
    let mut all = rdkafka::TopicPartitionList::new();
    for p in 0..6 {
        all.add_partition("kip848", p);
    }
    let committed = after
        .committed_offsets(all, Duration::from_secs(10))
        .unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap())
        .sum();
    assert_eq!(
        total, 300,
        "commits of consumer-protocol members survive a restart"
    );
}

fn heartbeat(group: &str, member_id: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_member_id(StrBytes::from_string(member_id.to_owned()))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(if epoch == 0 { 30_000 } else { -1 })
        .with_subscribed_topic_names(
            (epoch == 0).then(|| vec![TopicName(StrBytes::from_static_str("raw848"))]),
        )
        .with_topic_partitions((epoch == 0).then(Vec::new))
}

fn commit(group: &str, member_id: &str, epoch: i32) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_member_id(StrBytes::from_string(member_id.to_owned()))
        .with_generation_id_or_member_epoch(epoch)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("raw848")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(1)])])
}

/// A classic JoinGroup of `protocol_type` (v3: no member id round trip) subscribing to
/// nothing.
fn classic_join(group: &str, protocol_type: &'static str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str(protocol_type))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(&[
                0, 0, 0, 0, 0, 0, 255, 255, 255, 255,
            ]))])
}

#[test]
fn bad_epochs_members_assignors_and_protocol_mixes_get_kafka_s_error_codes() {
    let node = node();
    let b = node.bootstrap();
    run_bounded(Duration::from_secs(20), create_topic(&b, "raw848", 2, &[]));
    let mut s = connect(&b);
    // Clients find the coordinator first (which creates `__consumer_offsets`).
    let find = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str("raw"));
    let (_, found): (_, kafka_protocol::messages::FindCoordinatorResponse) = call(&mut s, &find, 3);
    assert_eq!(found.error_code, 0, "{found:?}");
    let id = "Zm9vYmFyLWJhei0xMjM0NTY";
    let (_, joined): (_, ConsumerGroupHeartbeatResponse) =
        call(&mut s, &heartbeat("raw", id, 0), 1);
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert_eq!(joined.member_epoch, 1);
    assert_eq!(joined.heartbeat_interval_ms, 500);
    let assigned: usize = joined
        .assignment
        .as_ref()
        .map(|a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum())
        .unwrap_or(0);
    assert_eq!(assigned, 2, "the only member gets both partitions");

    let (_, ahead) = call(&mut s, &heartbeat("raw", id, 7), 1);
    assert_eq!(ahead.error_code, FENCED_MEMBER_EPOCH);
    let (_, stranger) = call(&mut s, &heartbeat("raw", "someone-else", 1), 1);
    assert_eq!(stranger.error_code, UNKNOWN_MEMBER_ID);
    let picky = heartbeat("raw", "picky-member", 0)
        .with_server_assignor(Some(StrBytes::from_static_str("sticky")));
    assert_eq!(call(&mut s, &picky, 1).1.error_code, UNSUPPORTED_ASSIGNOR);
    let owning =
        heartbeat("raw", id, 1).with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic_id(joined.assignment.unwrap().topic_partitions[0].topic_id)
            .with_partitions(vec![0, 1])]));
    assert_eq!(call(&mut s, &owning, 1).1.error_code, 0);

    assert_eq!(
        call(&mut s, &commit("raw", id, 1), 9).1.topics[0].partitions[0].error_code,
        0
    );
    assert_eq!(
        call(&mut s, &commit("raw", id, 0), 9).1.topics[0].partitions[0].error_code,
        STALE_MEMBER_EPOCH
    );
    assert_eq!(
        call(&mut s, &classic_join("raw", "connect"), 3)
            .1
            .error_code,
        INCONSISTENT_GROUP_PROTOCOL,
        "a classic member of another protocol type cannot join a consumer group"
    );
    let described = call(
        &mut s,
        &ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_static_str("raw"))]),
        1,
    )
    .1;
    let group = &described.groups[0];
    assert_eq!(
        (group.error_code, group.group_state.as_str()),
        (0, "Stable")
    );
    assert_eq!(
        (group.group_epoch, group.assignor_name.as_str()),
        (1, "uniform")
    );
    assert_eq!(group.members.len(), 1);
    let listed = call(&mut s, &ListGroupsRequest::default(), 5).1;
    let raw = listed
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == "raw")
        .expect("ListGroups shows the consumer group");
    assert_eq!(
        (raw.group_type.as_str(), raw.protocol_type.as_str()),
        ("consumer", "consumer")
    );

    let delete = DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(StrBytes::from_static_str("raw"))]);
    assert_ne!(
        call(&mut s, &delete, 2).1.results[0].error_code,
        0,
        "not while it has a member"
    );
    let (_, left) = call(&mut s, &heartbeat("raw", id, -1), 1);
    assert_eq!((left.error_code, left.member_epoch), (0, -1));
    assert_eq!(
        call(&mut s, &delete, 2).1.results[0].error_code,
        0,
        "an empty group goes"
    );

    // The other way round: a classic group with a member of another protocol type is no
    // consumer group and cannot become one.
    let mut classic = connect(&b);
    let joined = call(&mut classic, &classic_join("old", "connect"), 3).1;
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let (_, refused) = call(&mut s, &heartbeat("old", "new-member-xyz", 0), 1);
    assert_eq!(refused.error_code, GROUP_ID_NOT_FOUND);
    assert_eq!(
        refused.error_message.as_deref(),
        Some("Cannot upgrade classic group old to consumer group because the group does not use the consumer embedded protocol.")
    );
}

#[test]
fn consumer_group_membership_and_assignments_survive_kill_9() {
    let mut node = node();
    let b = node.bootstrap();
    run_bounded(Duration::from_secs(20), create_topic(&b, "raw848", 2, &[]));
    let id = "cmVzdGFydGVkLW1lbWJlcjE";
    let find = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str("kept"));
    let (_, found): (_, kafka_protocol::messages::FindCoordinatorResponse) =
        call(&mut connect(&b), &find, 3);
    assert_eq!(found.error_code, 0, "{found:?}");
    let joined = call(&mut connect(&b), &heartbeat("kept", id, 0), 1).1;
    assert_eq!((joined.error_code, joined.member_epoch), (0, 1));
    node.kill();
    node.restart();
    let mut s = connect(&b);
    let described = call_loaded(
        &mut s,
        &ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_static_str("kept"))]),
        1,
        |r| r.groups[0].error_code == COORDINATOR_LOAD_IN_PROGRESS,
    );
    let group = &described.groups[0];
    assert_eq!(group.error_code, 0, "{group:?}");
    assert_eq!(group.group_epoch, 1);
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.members[0].member_id.as_str(), id);
    assert_eq!(group.members[0].member_epoch, 1);
    let owned: usize = group.members[0]
        .assignment
        .topic_partitions
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    assert_eq!(owned, 2, "its partitions are still its own");
    let beat = call(&mut s, &heartbeat("kept", id, 1), 1).1;
    assert_eq!(
        beat.error_code, 0,
        "the member carries on with its epoch: {beat:?}"
    );

    // Once empty, the group id can go to a classic group, and the consumer group's records
    // are tombstoned: it does not come back after another restart.
    assert_eq!(call(&mut s, &heartbeat("kept", id, -1), 1).1.error_code, 0);
    assert_eq!(
        call(&mut s, &classic_join("kept", "consumer"), 3)
            .1
            .error_code,
        0
    );
    drop(s);
    node.kill();
    node.restart();
    let listed = call_loaded(&mut connect(&b), &ListGroupsRequest::default(), 5, |r| {
        r.error_code == COORDINATOR_LOAD_IN_PROGRESS
    });
    assert_eq!(listed.error_code, 0, "{listed:?}");
    assert!(
        !listed
            .groups
            .iter()
            .any(|g| g.group_id.0.as_str() == "kept" && g.group_type.as_str() == "consumer"),
        "{listed:?}"
    );
}

#[test]
fn a_regex_subscription_gets_every_matching_topic_and_no_other() {
    let node = node();
    let b = node.bootstrap();
    for (topic, partitions) in [("re-one", 2), ("re-two", 1), ("unrelated", 1)] {
        run_bounded(
            Duration::from_secs(20),
            create_topic(&b, topic, partitions, &[]),
        );
    }
    let c = member(&b, "regex-group");
    // librdkafka sends a subscription starting with ^ as SubscribedTopicRegex.
    c.subscribe(&["^re-.*"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut topics = HashSet::new();
    while topics.len() < 2 || c.assignment().unwrap().count() < 3 {
        let _ = c.poll(Duration::from_millis(100));
        topics = c
            .assignment()
            .unwrap()
            .elements()
            .iter()
            .map(|e| e.topic().to_owned())
            .collect();
        assert!(Instant::now() < deadline, "no regex assignment: {topics:?}");
    }
    assert_eq!(
        topics,
        HashSet::from(["re-one".to_owned(), "re-two".to_owned()])
    );
}
