//! Consumer groups with librdkafka: members share a topic's partitions, and committed offsets
//! outlive restarts and kill -9.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::ClientConfig;
use strata_tests::{run_bounded, tool, Node, NodeOptions};

use crate::common::{create_topic, producer};

fn member(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("creating a group member")
}

fn produce(bootstrap: &str, topic: &str, from: usize, count: usize) {
    run_bounded(Duration::from_secs(30), async {
        let producer = producer(bootstrap, &[]);
        for i in from..from + count {
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

/// Polls every member until `expected` records arrived in total; returns values per member.
fn drain(members: &[&BaseConsumer], expected: usize, limit: Duration) -> Vec<Vec<String>> {
    let deadline = Instant::now() + limit;
    let mut got = vec![Vec::new(); members.len()];
    while got.iter().map(Vec::len).sum::<usize>() < expected && Instant::now() < deadline {
        for (i, m) in members.iter().enumerate() {
            if let Some(Ok(message)) = m.poll(Duration::from_millis(50)) {
                got[i].push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
            }
        }
    }
    got
}

fn node() -> Node {
    Node::start(
        NodeOptions::default()
            .property("group.initial.rebalance.delay.ms", "0")
            .property("offsets.topic.num.partitions", "5"),
    )
}

#[test]
fn members_of_a_group_split_the_partitions_between_them() {
    let node = node();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "shared", 6, &[]),
    );
    produce(&bootstrap, "shared", 0, 300);
    let a = member(&bootstrap, "splitters");
    let b = member(&bootstrap, "splitters");
    a.subscribe(&["shared"]).unwrap();
    b.subscribe(&["shared"]).unwrap();
    // Both members must be in the generation before the split is judged.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = vec![Vec::new(), Vec::new()];
    loop {
        let more = drain(&[&a, &b], 1, Duration::from_millis(200));
        got[0].extend(more[0].clone());
        got[1].extend(more[1].clone());
        let (pa, pb) = (
            a.assignment().unwrap().count(),
            b.assignment().unwrap().count(),
        );
        if pa > 0 && pb > 0 && pa + pb == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group never settled on two members"
        );
    }
    let pa: HashSet<i32> = a
        .assignment()
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    let pb: HashSet<i32> = b
        .assignment()
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    assert!(pa.is_disjoint(&pb), "{pa:?} and {pb:?} overlap");
    assert_eq!(pa.union(&pb).count(), 6, "every partition is assigned");
    let rest = drain(&[&a, &b], 300, Duration::from_secs(30));
    let all: HashSet<String> = got.into_iter().chain(rest).flatten().collect();
    assert_eq!(all.len(), 300, "the group read every record");
}

#[test]
fn committed_offsets_survive_a_clean_restart_and_kill_9() {
    let mut node = node();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "resumed", 2, &[]),
    );
    produce(&bootstrap, "resumed", 0, 100);
    {
        let c = member(&bootstrap, "resumers");
        c.subscribe(&["resumed"]).unwrap();
        let got = drain(&[&c], 100, Duration::from_secs(30));
        assert_eq!(got[0].len(), 100);
        c.commit_consumer_state(CommitMode::Sync).expect("commit");
    }
    node.stop();
    node.restart();
    produce(&bootstrap, "resumed", 100, 10);
    {
        let c = member(&bootstrap, "resumers");
        c.subscribe(&["resumed"]).unwrap();
        let got = drain(&[&c], 10, Duration::from_secs(30));
        let mut values = got[0].clone();
        values.sort();
        let mut expected: Vec<String> = (100..110).map(|i| format!("v{i}")).collect();
        expected.sort();
        assert_eq!(
            values, expected,
            "the group resumed at its committed offsets"
        );
        assert!(
            drain(&[&c], 1, Duration::from_secs(1))[0].is_empty(),
            "nothing read twice"
        );
        c.commit_consumer_state(CommitMode::Sync).expect("commit");
        let committed = c.committed(Duration::from_secs(10)).unwrap();
        let by_partition: HashMap<i32, i64> = committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset().to_raw().unwrap()))
            .collect();
        assert_eq!(by_partition.values().sum::<i64>(), 110);
    }
    node.kill();
    node.restart();
    let c = member(&bootstrap, "resumers");
    let committed = c
        .committed_offsets(
            {
                let mut list = rdkafka::TopicPartitionList::new();
                list.add_partition("resumed", 0);
                list.add_partition("resumed", 1);
                list
            },
            Duration::from_secs(10),
        )
        .unwrap();
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap())
        .sum();
    assert_eq!(total, 110, "committed offsets survive kill -9");
}

#[test]
fn a_killed_member_loses_its_partitions_when_its_session_expires() {
    let node = node();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "handover", 4, &[]),
    );
    // The other member is a separate process (kcat's balanced consumer), so it can be killed.
    let mut other = std::process::Command::new("kcat")
        .args([
            "-b",
            &bootstrap,
            "-G",
            "handover-group",
            "-q",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
            "handover",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kcat (Debian's kcat package) runs");
    let survivor = member(&bootstrap, "handover-group");
    survivor.subscribe(&["handover"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = survivor.poll(Duration::from_millis(100));
        let mine = survivor.assignment().unwrap().count();
        if (1..4).contains(&mine) {
            break;
        }
        if Instant::now() > deadline {
            let _ = other.kill();
            panic!("the two members never shared the partitions (survivor has {mine})");
        }
    }
    other.kill().expect("kill -9 kcat");
    other.wait().unwrap();
    let killed_at = Instant::now();
    while survivor.assignment().unwrap().count() < 4 {
        let _ = survivor.poll(Duration::from_millis(100));
        assert!(
            killed_at.elapsed() < Duration::from_secs(6 + 10),
            "partitions were not handed over"
        );
    }
    let took = killed_at.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "handover waited for the session timeout ({took:?})"
    );
}

#[test]
fn group_command_line_shows_lag_resets_offsets_and_deletes_groups() {
    let node = node();
    let b = node.bootstrap();
    run_bounded(Duration::from_secs(20), create_topic(&b, "lagging", 1, &[]));
    produce(&b, "lagging", 0, 10);
    {
        let c = member(&b, "cli-group");
        c.subscribe(&["lagging"]).unwrap();
        assert_eq!(drain(&[&c], 10, Duration::from_secs(30))[0].len(), 10);
        c.commit_consumer_state(CommitMode::Sync).unwrap();
        c.unsubscribe();
    }
    produce(&b, "lagging", 10, 5);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !tool::ok(&["group", "list", "-b", &b]).contains("Empty") {
        assert!(Instant::now() < deadline, "the group never became empty");
        std::thread::sleep(Duration::from_millis(200));
    }
    let described = tool::ok(&["group", "describe", "-b", &b, "cli-group"]);
    let row = described
        .lines()
        .find(|l| l.starts_with("lagging"))
        .expect(&described);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[1..5],
        ["0", "10", "15", "5"],
        "committed 10, end 15, lag 5: {row}"
    );
    let plan = tool::ok(&[
        "group",
        "reset-offsets",
        "-b",
        &b,
        "cli-group",
        "--topic",
        "lagging",
        "--to",
        "earliest",
    ]);
    assert!(plan.contains("dry run"));
    tool::ok(&[
        "group",
        "reset-offsets",
        "-b",
        &b,
        "cli-group",
        "--topic",
        "lagging",
        "--to",
        "earliest",
        "--execute",
    ]);
    let described = tool::ok(&["group", "describe", "-b", &b, "cli-group"]);
    let row = described
        .lines()
        .find(|l| l.starts_with("lagging"))
        .expect(&described);
    assert!(
        row.split_whitespace().collect::<Vec<_>>()[1..5] == ["0", "0", "15", "15"],
        "{row}"
    );
    tool::ok(&["group", "delete", "-b", &b, "cli-group"]);
    assert!(!tool::ok(&["group", "list", "-b", &b]).contains("cli-group"));
}

/// Counts the rebalances a member goes through.
#[derive(Default)]
struct RebalanceCounter(std::sync::atomic::AtomicUsize);

impl rdkafka::ClientContext for RebalanceCounter {}

impl rdkafka::consumer::ConsumerContext for RebalanceCounter {
    fn post_rebalance(
        &self,
        _: &rdkafka::consumer::BaseConsumer<Self>,
        _: &rdkafka::consumer::Rebalance<'_>,
    ) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn static_member(bootstrap: &str, instance: &str) -> BaseConsumer<RebalanceCounter> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "statics")
        .set("group.instance.id", instance)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "30000")
        .set("heartbeat.interval.ms", "500")
        .create_with_context(RebalanceCounter::default())
        .expect("creating a static member")
}

fn partitions_of(c: &BaseConsumer<RebalanceCounter>) -> Vec<i32> {
    let mut p: Vec<i32> = c
        .assignment()
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    p.sort();
    p
}

#[test]
fn a_restarted_static_member_gets_its_partitions_back_without_a_rebalance_of_the_others() {
    let node = node();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "statics", 4, &[]),
    );
    let a = static_member(&bootstrap, "member-a");
    let b = static_member(&bootstrap, "member-b");
    a.subscribe(&["statics"]).unwrap();
    b.subscribe(&["statics"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(partitions_of(&a).len() == 2 && partitions_of(&b).len() == 2) {
        let _ = a.poll(Duration::from_millis(50));
        let _ = b.poll(Duration::from_millis(50));
        assert!(
            Instant::now() < deadline,
            "the static members never shared the partitions"
        );
    }
    // Let b settle, then note how many rebalances it has seen.
    for _ in 0..20 {
        let _ = b.poll(Duration::from_millis(50));
    }
    let before = b.context().0.load(std::sync::atomic::Ordering::SeqCst);
    let a_partitions = partitions_of(&a);
    let b_partitions = partitions_of(&b);
    // A static member leaves no group on close (KIP-345): this is a restart, not a departure.
    drop(a);
    let a = static_member(&bootstrap, "member-a");
    a.subscribe(&["statics"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while partitions_of(&a).is_empty() {
        let _ = a.poll(Duration::from_millis(50));
        let _ = b.poll(Duration::from_millis(50));
        assert!(
            Instant::now() < deadline,
            "the restarted member got no partitions"
        );
    }
    for _ in 0..20 {
        let _ = a.poll(Duration::from_millis(50));
        let _ = b.poll(Duration::from_millis(50));
    }
    assert_eq!(
        partitions_of(&a),
        a_partitions,
        "the restarted member has its partitions back"
    );
    assert_eq!(partitions_of(&b), b_partitions);
    assert_eq!(
        b.context().0.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "the other member did not rebalance"
    );
}

/// A member that commits what it has processed, synchronously, when its partitions are
/// revoked (the "commit in onPartitionsRevoked" pattern), once `armed`.
#[derive(Default)]
struct CommitOnRevoke {
    armed: std::sync::atomic::AtomicBool,
    commits: std::sync::Mutex<Vec<Result<(), String>>>,
}

impl rdkafka::ClientContext for CommitOnRevoke {}

impl rdkafka::consumer::ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(
        &self,
        consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        if let rdkafka::consumer::Rebalance::Revoke(revoked) = rebalance {
            if revoked.count() > 0 && self.armed.load(std::sync::atomic::Ordering::SeqCst) {
                let result = consumer
                    .commit_consumer_state(CommitMode::Sync)
                    .map_err(|e| e.to_string());
                self.commits.lock().unwrap().push(result);
            }
        }
    }
}

fn eager_member(bootstrap: &str, group: &str) -> BaseConsumer<CommitOnRevoke> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .create_with_context(CommitOnRevoke::default())
        .expect("creating a group member")
}

/// Polls `consumer` once, counting a delivered record by its partition and offset.
fn poll_counting(
    consumer: &BaseConsumer<CommitOnRevoke>,
    deliveries: &mut HashMap<(i32, i64), usize>,
) {
    if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
        *deliveries
            .entry((message.partition(), message.offset()))
            .or_default() += 1;
    }
}

#[test]
fn a_member_commits_in_its_revoke_callback_and_no_record_is_processed_twice() {
    let node = node();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "revoked", 4, &[]),
    );
    produce(&bootstrap, "revoked", 0, 200);
    let mut deliveries: HashMap<(i32, i64), usize> = HashMap::new();
    let a = eager_member(&bootstrap, "revokers");
    a.subscribe(&["revoked"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while deliveries.len() < 200 {
        poll_counting(&a, &mut deliveries);
        assert!(
            Instant::now() < deadline,
            "the first member read {} of 200 records",
            deliveries.len()
        );
    }
    // Everything is processed and nothing committed yet: the commit in the revoke callback,
    // while the coordinator prepares the rebalance b's join starts, is what keeps b and a
    // from reading these records again.
    a.context()
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let b = eager_member(&bootstrap, "revokers");
    b.subscribe(&["revoked"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(a.assignment().unwrap().count() == 2 && b.assignment().unwrap().count() == 2) {
        poll_counting(&a, &mut deliveries);
        poll_counting(&b, &mut deliveries);
        assert!(
            Instant::now() < deadline,
            "the two members never shared the partitions"
        );
    }
    // Give a re-read every chance to show.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        poll_counting(&a, &mut deliveries);
        poll_counting(&b, &mut deliveries);
    }
    let commits = a.context().commits.lock().unwrap().clone();
    assert!(
        !commits.is_empty(),
        "the first member's partitions were revoked"
    );
    assert!(
        commits.iter().all(Result::is_ok),
        "commits in the revoke callback succeed: {commits:?}"
    );
    assert_eq!(deliveries.len(), 200);
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} records were delivered more than once",
        twice.len()
    );
}

/// An OffsetCommit of partition 0 of `topic` to `offset`, as `member` of `generation`.
fn offset_commit(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> kafka_protocol::messages::OffsetCommitRequest {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::protocol::StrBytes;
    kafka_protocol::messages::OffsetCommitRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_string(
            group.to_owned(),
        )))
        .with_member_id(StrBytes::from_string(member.to_owned()))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(kafka_protocol::messages::TopicName(StrBytes::from_string(
                topic.to_owned(),
            )))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])])
}

/// The error code of the one partition of an OffsetCommit, sent as `version`.
fn commit_error(
    stream: &mut std::net::TcpStream,
    request: &kafka_protocol::messages::OffsetCommitRequest,
    version: i16,
) -> i16 {
    let response = strata_tests::raw::call_loaded(stream, request, version, |r| {
        r.topics[0].partitions[0].error_code == strata_tests::raw::COORDINATOR_LOAD_IN_PROGRESS
    });
    response.topics[0].partitions[0].error_code
}

#[test]
fn an_admin_offset_change_needs_an_empty_group_as_kafka_s_rules_say() {
    const UNKNOWN_MEMBER_ID: i16 = 25;
    const ILLEGAL_GENERATION: i16 = 22;
    const GROUP_ID_NOT_FOUND: i16 = 69;
    let node = node();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "reset", 1, &[]),
    );
    let mut stream = strata_tests::raw::connect(&bootstrap);
    let member = member(&bootstrap, "resetters");
    member.subscribe(&["reset"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.assignment().unwrap().count() == 0 {
        let _ = member.poll(Duration::from_millis(50));
        assert!(Instant::now() < deadline, "the member got no partition");
    }
    // kafka-consumer-groups --reset-offsets and AdminClient.alterConsumerGroupOffsets commit
    // with generation -1 and no member id; Kafka takes that only from an empty group.
    let admin_commit = offset_commit("resetters", "", -1, "reset", 0);
    assert_eq!(
        commit_error(&mut stream, &admin_commit, 8),
        UNKNOWN_MEMBER_ID,
        "an admin's commit to an active group"
    );
    member.unsubscribe();
    drop(member);
    let deadline = Instant::now() + Duration::from_secs(20);
    while commit_error(&mut stream, &admin_commit, 8) != 0 {
        assert!(
            Instant::now() < deadline,
            "an admin's commit is refused after the member left"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A member's commit to a group that does not exist.
    let stray = offset_commit("nobody", "m", 3, "reset", 0);
    assert_eq!(commit_error(&mut stream, &stray, 8), ILLEGAL_GENERATION);
    assert_eq!(commit_error(&mut stream, &stray, 9), GROUP_ID_NOT_FOUND);
}
