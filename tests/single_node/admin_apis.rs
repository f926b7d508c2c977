//! Admin APIs that tools and UIs call and librdkafka does not all expose, on raw frames:
//! DescribeLogDirs, DescribeProducers, DescribeTopicPartitions, ApiVersions' features and
//! UpdateFeatures.

use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{
    ApiVersionsRequest, DescribeLogDirsRequest, DescribeProducersRequest,
    DescribeTopicPartitionsRequest, TopicName, UpdateFeaturesRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;
use strata_tests::raw::{call, connect};
use strata_tests::{run_bounded, Node};

use crate::common::{create_topic, producer};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUEST: i16 = 42;
const INVALID_UPDATE_VERSION: i16 = 95;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Produces `count` records of `size` bytes to `topic` partition `partition`, idempotently.
fn produce(bootstrap: &str, topic: &str, partition: i32, count: usize, size: usize) {
    let producer = producer(bootstrap, &[("enable.idempotence", "true")]);
    let value = vec![b'x'; size];
    run_bounded(Duration::from_secs(30), async {
        for _ in 0..count {
            producer
                .send(
                    FutureRecord::<(), _>::to(topic)
                        .partition(partition)
                        .payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
        }
    });
}

#[test]
fn describe_log_dirs_reports_replica_sizes_and_disk_space() {
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(20), async {
        create_topic(&bootstrap, "dirs-a", 2, &[]).await;
        create_topic(&bootstrap, "dirs-b", 1, &[]).await;
    });
    produce(&bootstrap, "dirs-a", 1, 20, 1000);

    let mut stream = connect(&bootstrap);
    // null: every replica.
    let (_, all) = call(
        &mut stream,
        &DescribeLogDirsRequest::default().with_topics(None),
        4,
    );
    assert_eq!(all.error_code, 0, "{all:?}");
    assert_eq!(all.results.len(), 1, "{all:?}");
    let dir = &all.results[0];
    assert_eq!(dir.error_code, 0);
    let expected_dir = std::fs::canonicalize(node.data_dir()).expect("data dir");
    assert_eq!(dir.log_dir.as_str(), expected_dir.display().to_string());
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0, "{dir:?}");
    assert!(dir.usable_bytes <= dir.total_bytes, "{dir:?}");
    let size = |topic: &str, partition: i32| {
        dir.topics
            .iter()
            .find(|t| t.name.0.as_str() == topic)
            .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
            .unwrap_or_else(|| panic!("{topic}-{partition} missing from {dir:?}"))
            .clone()
    };
    let a1 = size("dirs-a", 1);
    assert!(a1.partition_size > 20_000, "{a1:?}");
    assert_eq!(a1.offset_lag, 0);
    assert!(!a1.is_future_key);
    assert_eq!(size("dirs-a", 0).partition_size, 0);
    assert_eq!(size("dirs-b", 0).partition_size, 0);

    // Filtered: only the asked-for partitions that exist here.
    let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default()
            .with_topic(name("dirs-a"))
            .with_partitions(vec![1, 7]),
        DescribableLogDirTopic::default()
            .with_topic(name("no-such-topic"))
            .with_partitions(vec![0]),
    ]));
    let (_, filtered) = call(&mut stream, &request, 4);
    let topics = &filtered.results[0].topics;
    assert_eq!(topics.len(), 1, "{topics:?}");
    assert_eq!(topics[0].name.0.as_str(), "dirs-a");
    assert_eq!(topics[0].partitions.len(), 1);
    assert_eq!(topics[0].partitions[0].partition_index, 1);
    assert_eq!(topics[0].partitions[0].partition_size, a1.partition_size);

    // An empty list asks for nothing (null asks for all).
    let empty = DescribeLogDirsRequest::default().with_topics(Some(Vec::new()));
    let (_, none) = call(&mut stream, &empty, 4);
    assert!(none.results[0].topics.is_empty(), "{none:?}");

    // v1 has no disk space fields; the rest is the same.
    let (_, v1) = call(&mut stream, &request, 1);
    assert_eq!(
        v1.results[0].topics[0].partitions[0].partition_size,
        a1.partition_size
    );
}

#[test]
fn describe_producers_lists_the_idempotent_producers_of_a_partition() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(20), async {
        create_topic(&bootstrap, "producers", 2, &[]).await;
    });
    let before = now_ms();
    produce(&bootstrap, "producers", 0, 5, 10);
    let after = now_ms();

    let request = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(name("producers"))
            .with_partition_indexes(vec![0, 1, 9]),
        TopicRequest::default()
            .with_name(name("no-such-topic"))
            .with_partition_indexes(vec![0]),
    ]);
    let mut stream = connect(&bootstrap);
    let (_, response) = call(&mut stream, &request, 0);
    let partitions = &response.topics[0].partitions;
    assert_eq!(partitions[0].error_code, 0, "{response:?}");
    let active = &partitions[0].active_producers;
    assert_eq!(active.len(), 1, "{active:?}");
    let p = &active[0];
    assert!(p.producer_id.0 >= 0, "{p:?}");
    assert_eq!(p.producer_epoch, 0);
    assert_eq!(p.last_sequence, 4, "five records, sequences 0-4: {p:?}");
    assert!(
        (before..=after).contains(&p.last_timestamp),
        "{p:?} not within {before}..{after}"
    );
    assert_eq!(p.coordinator_epoch, -1);
    assert_eq!(p.current_txn_start_offset, -1);
    assert_eq!(partitions[1].error_code, 0);
    assert!(partitions[1].active_producers.is_empty());
    assert_eq!(partitions[2].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(
        response.topics[1].partitions[0].error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

fn describe_partitions(
    stream: &mut TcpStream,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> kafka_protocol::messages::DescribeTopicPartitionsResponse {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| {
            Cursor::default()
                .with_topic_name(name(t))
                .with_partition_index(p)
        }));
    call(stream, &request, 0).1
}

#[test]
fn describe_topic_partitions_pages_through_topics_with_a_cursor() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(30), async {
        create_topic(&bootstrap, "pages-a", 3, &[]).await;
        create_topic(&bootstrap, "pages-b", 4, &[]).await;
        create_topic(&bootstrap, "pages-c", 1, &[]).await;
    });
    let mut stream = connect(&bootstrap);

    // Every topic, three partitions a page: the pages cover each partition once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<(String, i32)> = None;
    for _ in 0..10 {
        let page = describe_partitions(
            &mut stream,
            &[],
            3,
            cursor.as_ref().map(|(t, p)| (t.as_str(), *p)),
        );
        let count: usize = page.topics.iter().map(|t| t.partitions.len()).sum();
        assert!(count <= 3, "{page:?}");
        for topic in &page.topics {
            assert_eq!(topic.error_code, 0, "{topic:?}");
            assert!(!topic.topic_id.is_nil());
            for p in &topic.partitions {
                assert_eq!(p.error_code, 0, "{p:?}");
                assert_eq!(p.leader_id.0, 1);
                assert_eq!(p.replica_nodes.len(), 1);
                seen.push((
                    topic.name.as_ref().expect("name").0.to_string(),
                    p.partition_index,
                ));
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some((next.topic_name.0.to_string(), next.partition_index)),
            None => break,
        }
    }
    let expected: Vec<(String, i32)> = [("pages-a", 3), ("pages-b", 4), ("pages-c", 1)]
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (t.to_string(), p)))
        .collect();
    assert_eq!(seen, expected);

    // Named topics: unknown and invalid names get their errors; the order is by name.
    let named = describe_partitions(
        &mut stream,
        &["pages-c", "no-such-topic", "bad/name", "pages-a"],
        100,
        None,
    );
    let by_name: Vec<(String, i16, usize)> = named
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().expect("name").0.to_string(),
                t.error_code,
                t.partitions.len(),
            )
        })
        .collect();
    assert_eq!(
        by_name,
        vec![
            ("bad/name".to_owned(), INVALID_TOPIC_EXCEPTION, 0),
            ("no-such-topic".to_owned(), UNKNOWN_TOPIC_OR_PARTITION, 0),
            ("pages-a".to_owned(), 0, 3),
            ("pages-c".to_owned(), 0, 1),
        ]
    );
    assert!(named.next_cursor.is_none());

    // A cursor inside a topic starts there; a cursor topic missing from the list is refused.
    let from_b2 = describe_partitions(&mut stream, &["pages-b"], 100, Some(("pages-b", 2)));
    let indexes: Vec<i32> = from_b2.topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(indexes, vec![2, 3]);
    let refused = describe_partitions(&mut stream, &["pages-a"], 100, Some(("pages-b", 0)));
    assert_eq!(refused.topics[0].error_code, INVALID_REQUEST, "{refused:?}");
}

/// What ApiVersions `version` (3 or 4) says of features: supported (name, min, max),
/// finalized (name, level) and the finalized features' epoch.
struct Features {
    supported: Vec<(String, i16, i16)>,
    finalized: Vec<(String, i16)>,
    epoch: i64,
}

fn features(stream: &mut TcpStream, version: i16) -> Features {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("raw-test"))
        .with_client_software_version(StrBytes::from_static_str("1"));
    let (_, response) = call(stream, &request, version);
    assert_eq!(response.error_code, 0);
    let supported = response
        .supported_features
        .iter()
        .map(|f| (f.name.to_string(), f.min_version, f.max_version))
        .collect();
    let finalized = response
        .finalized_features
        .iter()
        .map(|f| {
            assert_eq!(f.min_version_level, f.max_version_level);
            (f.name.to_string(), f.max_version_level)
        })
        .collect();
    Features {
        supported,
        finalized,
        epoch: response.finalized_features_epoch,
    }
}

fn update_features(
    stream: &mut TcpStream,
    updates: &[(&str, i16, i8)],
    validate_only: bool,
    version: i16,
) -> kafka_protocol::messages::UpdateFeaturesResponse {
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    let request = UpdateFeaturesRequest::default()
        .with_timeout_ms(10_000)
        .with_validate_only(validate_only)
        .with_feature_updates(
            updates
                .iter()
                .map(|(f, level, kind)| {
                    FeatureUpdateKey::default()
                        .with_feature(StrBytes::from_string((*f).to_owned()))
                        .with_max_version_level(*level)
                        .with_upgrade_type(*kind)
                })
                .collect(),
        );
    call(stream, &request, version).1
}

#[test]
fn features_are_described_and_updated_within_the_supported_range() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    let mut stream = connect(&bootstrap);
    let Features {
        supported,
        finalized,
        epoch,
    } = features(&mut stream, 4);
    assert!(
        supported.contains(&("metadata.version".to_owned(), 7, 25)),
        "{supported:?}"
    );
    assert!(supported.contains(&("group.version".to_owned(), 1, 1)));
    assert!(supported.contains(&("transaction.version".to_owned(), 0, 2)));
    assert!(supported.contains(&("kraft.version".to_owned(), 0, 1)));
    // The voter set is dynamic (KIP-853), as in a Kafka quorum formatted with --standalone.
    assert!(finalized.contains(&("kraft.version".to_owned(), 1)));
    // v3 leaves out ranges starting at 0 (KIP-1022) and finalizes the same levels.
    let v3 = features(&mut stream, 3);
    assert_eq!(
        v3.supported,
        supported
            .iter()
            .filter(|(_, min, _)| *min > 0)
            .cloned()
            .collect::<Vec<_>>()
    );
    assert_eq!(v3.finalized, finalized);
    assert!(
        finalized.contains(&("metadata.version".to_owned(), 25)),
        "{finalized:?}"
    );
    assert!(finalized.contains(&("group.version".to_owned(), 1)));
    assert!(
        !finalized.iter().any(|(n, _)| n == "transaction.version"),
        "{finalized:?}"
    );
    assert!(epoch >= 0);

    const UPGRADE: i8 = 1;
    const SAFE_DOWNGRADE: i8 = 2;
    const UNSAFE_DOWNGRADE: i8 = 3;
    for (updates, why) in [
        (
            vec![("metadata.version", 26, UPGRADE)],
            "above the supported range",
        ),
        (
            vec![("metadata.version", 24, UPGRADE)],
            "a downgrade typed as upgrade",
        ),
        (
            vec![("metadata.version", 24, SAFE_DOWNGRADE)],
            "a metadata downgrade",
        ),
        (
            vec![("metadata.version", 24, UNSAFE_DOWNGRADE)],
            "an unsafe downgrade",
        ),
        (
            vec![("transaction.version", 3, UPGRADE)],
            "beyond the supported transaction versions",
        ),
        (
            vec![("group.version", 0, SAFE_DOWNGRADE)],
            "the consumer protocol stays",
        ),
        (vec![("no.such.feature", 1, UPGRADE)], "an unknown feature"),
        (
            vec![("kraft.version", 0, SAFE_DOWNGRADE)],
            "the voter set stays dynamic",
        ),
        (vec![("metadata.version", 25, 9)], "an unknown upgrade type"),
    ] {
        for version in [1, 2] {
            let response = update_features(&mut stream, &updates, false, version);
            assert_eq!(
                response.error_code, INVALID_UPDATE_VERSION,
                "{why} (v{version}): {response:?}"
            );
            assert!(response.error_message.is_some());
            assert!(response.results.is_empty(), "{response:?}");
        }
    }
    // Nothing changed.
    assert_eq!(features(&mut stream, 4).finalized, finalized);

    // Same level: accepted; v1 lists each feature's result, v2 only the top-level code.
    let v1 = update_features(&mut stream, &[("metadata.version", 25, UPGRADE)], true, 1);
    assert_eq!(v1.error_code, 0, "{v1:?}");
    assert_eq!(v1.results.len(), 1);
    assert_eq!(v1.results[0].error_code, 0);
    let v2 = update_features(&mut stream, &[("metadata.version", 25, UPGRADE)], false, 2);
    assert_eq!(v2.error_code, 0, "{v2:?}");
    assert!(v2.results.is_empty());
    // Removing a feature at level 0 is a no-op the quorum accepts.
    let removed = update_features(
        &mut stream,
        &[("eligible.leader.replicas.version", 0, SAFE_DOWNGRADE)],
        false,
        2,
    );
    assert_eq!(removed.error_code, 0, "{removed:?}");
    let after = features(&mut stream, 4);
    assert_eq!(after.finalized, finalized);
    assert!(after.epoch > epoch, "the update went through the quorum");
}
