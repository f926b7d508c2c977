//! KIP-848's online migration with librdkafka: a classic group moves to
//! `group.protocol=consumer` by rolling restart (each member closed and started again with
//! the other protocol, one at a time) while records keep flowing, and back again. Every
//! record produced is consumed, no partition stays unowned for long, and the group ends up
//! a consumer group (then a classic one), as ListGroups, ConsumerGroupDescribe and
//! DescribeGroups show.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use strata_tests::raw::{call, connect};
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{create_topic, producer};

const TOPIC: &str = "migrate";
const GROUP: &str = "migrate-group";
const PARTITIONS: usize = 6;
/// The longest a partition may stay without an owner while members restart.
const MAX_GAP: Duration = Duration::from_secs(10);

fn member(bootstrap: &str, protocol: &str) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("group.protocol", protocol)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    if protocol == "classic" {
        config
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500");
    }
    let c: BaseConsumer = config.create().expect("creating a consumer");
    c.subscribe(&[TOPIC]).expect("subscribing");
    c
}

/// Produces records `r0`, `r1`, ... until told to stop; returns how many were acknowledged
/// (each is retried until it is, so they are exactly `r0..rN`).
fn produce_until(bootstrap: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let producer = producer(&bootstrap, &[]);
            let mut sent = 0usize;
            let deadline = Instant::now() + Duration::from_secs(240);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let value = format!("r{sent}");
                let record = FutureRecord::to(TOPIC).key(&value).payload(&value);
                if producer.send(record, Duration::from_secs(10)).await.is_ok() {
                    sent += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        })
    })
}

/// The members, the values they read, and the longest time any partition went unowned.
struct Group {
    members: Vec<(String, BaseConsumer)>,
    read: HashSet<String>,
    unowned_since: Option<Instant>,
    longest_gap: Duration,
}

impl Group {
    fn owned(&self) -> HashSet<i32> {
        self.members
            .iter()
            .flat_map(|(_, c)| {
                c.assignment()
                    .map(|a| a.elements().iter().map(|e| e.partition()).collect())
                    .unwrap_or_else(|_| Vec::new())
            })
            .collect()
    }

    /// Each member's partition count.
    fn shares(&self) -> Vec<usize> {
        self.members
            .iter()
            .map(|(_, c)| c.assignment().map_or(0, |a| a.count()))
            .collect()
    }

    /// Polls every member (committing what it reads) until `done` holds, at most `limit`.
    fn drive(&mut self, limit: Duration, what: &str, done: impl Fn(&Group) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            for (_, c) in &self.members {
                if let Some(Ok(message)) = c.poll(Duration::from_millis(20)) {
                    let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                    self.read.insert(value.into_owned());
                    let _ = c.commit_message(&message, CommitMode::Async);
                }
            }
            let full = self.owned().len() == PARTITIONS;
            match (full, self.unowned_since) {
                (false, None) => self.unowned_since = Some(Instant::now()),
                (true, Some(since)) => {
                    self.longest_gap = self.longest_gap.max(since.elapsed());
                    self.unowned_since = None;
                }
                _ => {}
            }
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: members {:?} own {:?}",
                self.members.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                self.shares()
            );
        }
    }

    /// Every partition owned, each member owning some.
    fn settled(&self) -> bool {
        self.owned().len() == PARTITIONS && self.shares().iter().all(|n| *n > 0)
    }

    /// Closes the oldest member (it leaves the group) and starts one of `protocol`; waits
    /// until the group settles with it and has read new records, then consumes for a second
    /// more in that shape.
    fn restart_one(&mut self, bootstrap: &str, protocol: &str) {
        let (_, old) = self.members.remove(0);
        drop(old);
        self.members
            .push((protocol.to_owned(), member(bootstrap, protocol)));
        let before = self.read.len();
        self.drive(
            Duration::from_secs(45),
            &format!("the group to settle with a new {protocol} member and read on"),
            |g| g.settled() && g.read.len() > before,
        );
        let settled = Instant::now();
        self.drive(Duration::from_secs(10), "a second of consuming", |_| {
            settled.elapsed() > Duration::from_secs(1)
        });
    }
}

fn group_type(bootstrap: &str) -> String {
    let mut s = connect(bootstrap);
    let (_, listed): (_, ListGroupsResponse) = call(&mut s, &ListGroupsRequest::default(), 5);
    listed
        .groups
        .iter()
        .find(|g| g.group_id.0.as_str() == GROUP)
        .map(|g| g.group_type.to_string())
        .unwrap_or_default()
}

fn group_ids() -> Vec<GroupId> {
    vec![GroupId(StrBytes::from_static_str(GROUP))]
}

#[test]
fn a_rolling_restart_moves_a_classic_group_to_the_consumer_protocol_and_back_without_losing_records(
) {
    let node = Node::start(
        NodeOptions::default()
            .property("group.initial.rebalance.delay.ms", "0")
            .property("group.consumer.session.timeout.ms", "6000")
            .property("group.consumer.heartbeat.interval.ms", "500")
            .property("offsets.topic.num.partitions", "5"),
    );
    let b = node.bootstrap();
    run_bounded(Duration::from_secs(20), create_topic(&b, TOPIC, 6, &[]));
    let stop = Arc::new(AtomicBool::new(false));
    let producing = produce_until(b.clone(), Arc::clone(&stop));

    let mut group = Group {
        members: (0..3)
            .map(|_| ("classic".to_owned(), member(&b, "classic")))
            .collect(),
        read: HashSet::new(),
        unowned_since: None,
        longest_gap: Duration::ZERO,
    };
    group.drive(
        Duration::from_secs(45),
        "three classic members sharing the topic",
        Group::settled,
    );
    assert_eq!(group_type(&b), "classic");
    group.longest_gap = Duration::ZERO;

    // Rolling upgrade: the first consumer-protocol member converts the group.
    for _ in 0..3 {
        group.restart_one(&b, "consumer");
    }
    assert_eq!(group_type(&b), "consumer", "the group is a consumer group");
    let mut s = connect(&b);
    let (_, described): (_, ConsumerGroupDescribeResponse) = call(
        &mut s,
        &ConsumerGroupDescribeRequest::default().with_group_ids(group_ids()),
        1,
    );
    let described = &described.groups[0];
    assert_eq!(described.error_code, 0, "{described:?}");
    assert_eq!(described.members.len(), 3, "{described:?}");
    assert!(
        described.members.iter().all(|m| m.member_type == 1),
        "every member uses the consumer protocol: {described:?}"
    );
    let upgrade_gap = group.longest_gap;
    group.longest_gap = Duration::ZERO;

    // Rolling downgrade: the last consumer-protocol member to leave converts it back.
    for _ in 0..3 {
        group.restart_one(&b, "classic");
    }
    assert_eq!(group_type(&b), "classic", "the group is classic again");
    let (_, described): (_, DescribeGroupsResponse) = call(
        &mut s,
        &DescribeGroupsRequest::default().with_groups(group_ids()),
        5,
    );
    let described = &described.groups[0];
    assert_eq!(
        (described.group_state.as_str(), described.members.len()),
        ("Stable", 3),
        "{described:?}"
    );
    let downgrade_gap = group.longest_gap;

    stop.store(true, Ordering::Relaxed);
    let produced = producing.join().expect("the producer thread");
    assert!(produced > 100, "records kept flowing: {produced}");
    group.drive(Duration::from_secs(30), "every produced record", |g| {
        (0..produced).all(|i| g.read.contains(&format!("r{i}")))
    });
    eprintln!(
        "migration: {produced} records produced and consumed; longest unowned gap {upgrade_gap:?} (upgrade), {downgrade_gap:?} (downgrade)"
    );
    assert!(
        upgrade_gap < MAX_GAP && downgrade_gap < MAX_GAP,
        "partitions unowned for {upgrade_gap:?} / {downgrade_gap:?}"
    );
}
