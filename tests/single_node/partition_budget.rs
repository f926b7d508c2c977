//! The node's budget of open files and mappings: thousands of partitions, many segments
//! each, reopen after kill -9 under a low `RLIMIT_NOFILE`; a create beyond what the node can
//! keep open is refused with POLICY_VIOLATION and the node stays healthy.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{admin, create_topic, producer, read_all};

/// Descriptors the node has open, and mappings of files under its data directory.
fn fds_and_maps(node: &Node) -> (usize, usize) {
    let pid = node.process_id();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let dir = node.data_dir();
    let dir = dir.to_str().unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(dir))
        .count();
    (fds, maps)
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Partitions of `topics` that Metadata reports with a leader, polled until all of
/// `expected` have one or `limit` passes.
fn wait_for_leaders(bootstrap: &str, topics: &[(&str, i32)], limit: Duration) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("creating a metadata client");
    let deadline = Instant::now() + limit;
    loop {
        let led: Vec<(String, usize)> = topics
            .iter()
            .map(|(topic, _)| {
                let n = consumer
                    .fetch_metadata(Some(topic), Duration::from_secs(5))
                    .ok()
                    .and_then(|m| {
                        m.topics().first().map(|t| {
                            t.partitions()
                                .iter()
                                .filter(|p| p.leader() >= 0 && p.error().is_none())
                                .count()
                        })
                    })
                    .unwrap_or(0);
                ((*topic).to_owned(), n)
            })
            .collect();
        if led
            .iter()
            .zip(topics)
            .all(|((_, n), (_, want))| *n == *want as usize)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "partitions with a leader: {led:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn produce_to_every_partition(bootstrap: &str, topic: &str, partitions: i32, rounds: usize) {
    run_bounded(Duration::from_secs(60), async {
        let producer = producer(bootstrap, &[("acks", "all"), ("linger.ms", "20")]);
        // Round after round, so each round is a batch of its own in every partition.
        for round in 0..rounds {
            let mut sends = Vec::new();
            for p in 0..partitions {
                let payload = format!("{p}-{round}-{}", "x".repeat(400));
                let fut = producer
                    .send_result(
                        FutureRecord::<(), _>::to(topic)
                            .partition(p)
                            .payload(&payload),
                    )
                    .expect("queue");
                sends.push(fut);
            }
            for send in sends {
                send.await.expect("delivery").expect("acknowledged");
            }
        }
    });
}

#[test]
fn thousands_of_partitions_with_many_segments_reopen_after_kill_under_a_low_open_files_limit() {
    // 2,048 descriptors: the node keeps at most 1,536 log files open and accepts 1,536
    // partition replicas. Every partition of `data` rolls a segment every two batches and
    // writes index entries for every batch: 1,000 active segments of 3 files each being
    // written at once, ~3,000 segments in all, beyond the limit, that a node keeping its
    // files open could neither write nor reopen.
    let mut node = Node::start(NodeOptions {
        open_files_limit: Some(2048),
        ..NodeOptions::default()
    });
    let bootstrap = node.bootstrap();
    let (data, empty) = (("data", 1000), ("empty", 400));
    run_bounded(Duration::from_secs(30), async {
        create_topic(
            &bootstrap,
            data.0,
            data.1,
            &[("segment.bytes", "1024"), ("index.interval.bytes", "1")],
        )
        .await;
        create_topic(&bootstrap, empty.0, empty.1, &[]).await;
    });
    let rounds = 6;
    produce_to_every_partition(&bootstrap, data.0, data.1, rounds);
    let (fds, maps) = fds_and_maps(&node);
    let segments = std::fs::read_dir(node.data_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("data-"))
        .map(|e| {
            std::fs::read_dir(e.path())
                .unwrap()
                .filter(|f| f.as_ref().unwrap().path().extension() == Some("log".as_ref()))
                .count()
        })
        .sum::<usize>();
    assert!(segments >= 3 * data.1 as usize, "{segments} segments");
    assert!(fds <= 1536 + 100, "{fds} descriptors open while writing");
    eprintln!("while writing: {fds} descriptors, {maps} mappings, {segments} segments");

    node.kill();
    let restarted = Instant::now();
    node.restart();
    wait_for_leaders(&bootstrap, &[data, empty], Duration::from_secs(45));
    let reopened = restarted.elapsed();
    let (fds, maps) = fds_and_maps(&node);
    assert!(fds < 200, "{fds} descriptors open after recovery");
    eprintln!("after recovery: {fds} descriptors, {maps} mappings");

    let got = read_all(
        &bootstrap,
        data.0,
        data.1,
        data.1 as usize * rounds,
        Duration::from_secs(40),
    );
    assert_eq!(got.len(), data.1 as usize * rounds);
    for g in &got {
        let value = String::from_utf8(g.value.clone().unwrap()).unwrap();
        let (p, rest) = value.split_once('-').unwrap();
        let round: i64 = rest.split_once('-').unwrap().0.parse().unwrap();
        assert_eq!(p.parse::<i32>().unwrap(), g.partition);
        assert_eq!(g.offset, round, "{value}");
    }
    assert!(node.is_running());
    eprintln!("reopened {} partitions in {reopened:?}", data.1 + empty.1);
}

#[test]
fn a_create_beyond_what_the_node_can_keep_open_is_refused_and_the_node_stays_healthy() {
    // 1,024 descriptors: the node accepts 768 partition replicas.
    let mut node = Node::start(NodeOptions {
        open_files_limit: Some(1024),
        ..NodeOptions::default()
    });
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(40), async {
        create_topic(&bootstrap, "fits", 700, &[]).await;
        let admin = admin(&bootstrap);
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let refused = admin
            .create_topics(
                &[NewTopic::new("too-many", 100, TopicReplication::Fixed(1))],
                &options,
            )
            .await
            .unwrap();
        assert_eq!(
            refused[0].as_ref().unwrap_err().1,
            RDKafkaErrorCode::PolicyViolation
        );
        let grown = admin
            .create_partitions(&[NewPartitions::new("fits", 800)], &options)
            .await
            .unwrap();
        assert_eq!(
            grown[0].as_ref().unwrap_err().1,
            RDKafkaErrorCode::PolicyViolation
        );
        // Within the budget both still work.
        create_topic(&bootstrap, "small", 10, &[]).await;
        let grown = admin
            .create_partitions(&[NewPartitions::new("fits", 750)], &options)
            .await
            .unwrap();
        assert!(grown[0].is_ok(), "{grown:?}");
    });
    let log = strip_colours(&node.log());
    assert!(
        log.contains("max_partitions=768"),
        "the budget is logged at start"
    );
    produce_to_every_partition(&bootstrap, "small", 10, 3);
    node.kill();
    node.restart();
    wait_for_leaders(
        &bootstrap,
        &[("fits", 750), ("small", 10)],
        Duration::from_secs(30),
    );
    assert_eq!(
        read_all(&bootstrap, "small", 10, 30, Duration::from_secs(20)).len(),
        30
    );
    // The refused topic was never created.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("allow.auto.create.topics", "false")
        .create()
        .unwrap();
    let m = consumer
        .fetch_metadata(Some("too-many"), Duration::from_secs(5))
        .unwrap();
    assert!(m.topics()[0].error().is_some());
}

#[test]
fn a_create_topics_of_more_than_10000_partitions_is_refused_whole_as_kafka_does() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let node = Node::start_default();
    let topic = |name: &str, partitions: i32| {
        CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_owned())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
    };
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![topic("big-a", 6000), topic("big-b", 4001)]);
    let mut stream = strata_tests::raw::connect(&node.bootstrap());
    let (_, response) = strata_tests::raw::call(&mut stream, &request, 5);
    assert_eq!(response.topics.len(), 2);
    for t in &response.topics {
        assert_eq!(t.error_code, 44, "POLICY_VIOLATION for {:?}", t.name);
        assert_eq!(
            t.error_message.as_deref(),
            Some("Excessively large number of partitions per request.")
        );
    }
    // 10,000 in one request pass the cap (a node with fewer than ~13,400 descriptors
    // refuses them for its own budget instead, with another message).
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(true)
        .with_topics(vec![topic("big-a", 6000), topic("big-b", 4000)]);
    let (_, response) = strata_tests::raw::call(&mut stream, &request, 5);
    for t in &response.topics {
        assert_ne!(
            t.error_message.as_deref(),
            Some("Excessively large number of partitions per request.")
        );
    }
}
