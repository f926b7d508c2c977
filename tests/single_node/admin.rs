//! Topic administration through librdkafka's admin client and the `strata` command line.

use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::types::RDKafkaErrorCode;
use strata_tests::tool::{self, Strata};
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{admin, create_topic, list_offset, raw_produce};

#[test]
fn topics_are_created_described_altered_grown_and_deleted() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(60), async {
        let admin = admin(&bootstrap);
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        create_topic(&bootstrap, "admin-a", 2, &[("cleanup.policy", "delete")]).await;

        let again = admin
            .create_topics(
                &[NewTopic::new("admin-a", 1, TopicReplication::Fixed(1))],
                &options,
            )
            .await
            .unwrap();
        assert_eq!(
            again[0].as_ref().unwrap_err().1,
            RDKafkaErrorCode::TopicAlreadyExists
        );
        let too_many = admin
            .create_topics(
                &[NewTopic::new("admin-b", 1, TopicReplication::Fixed(3))],
                &options,
            )
            .await
            .unwrap();
        assert_eq!(
            too_many[0].as_ref().unwrap_err().1,
            RDKafkaErrorCode::InvalidReplicationFactor
        );
        let bad_config = admin
            .create_topics(
                &[NewTopic::new("admin-c", 1, TopicReplication::Fixed(1))
                    .set("retention.ms", "soon")],
                &options,
            )
            .await
            .unwrap();
        assert_eq!(
            bad_config[0].as_ref().unwrap_err().1,
            RDKafkaErrorCode::InvalidConfig
        );
        let validate = AdminOptions::new().validate_only(true);
        let checked = admin
            .create_topics(
                &[NewTopic::new("admin-d", 3, TopicReplication::Fixed(1))],
                &validate,
            )
            .await
            .unwrap();
        assert!(checked[0].is_ok());

        let grown = admin
            .create_partitions(&[NewPartitions::new("admin-a", 5)], &options)
            .await
            .unwrap();
        assert!(grown[0].is_ok(), "{grown:?}");
        let shrink = admin
            .create_partitions(&[NewPartitions::new("admin-a", 3)], &options)
            .await
            .unwrap();
        assert_eq!(
            shrink[0].as_ref().unwrap_err().1,
            RDKafkaErrorCode::InvalidPartitions
        );

        let altered = admin
            .alter_configs(
                &[AlterConfig::new(ResourceSpecifier::Topic("admin-a"))
                    .set("retention.ms", "3600000")],
                &options,
            )
            .await
            .unwrap();
        assert!(altered[0].is_ok(), "{altered:?}");
        let described = admin
            .describe_configs(&[ResourceSpecifier::Topic("admin-a")], &options)
            .await
            .unwrap();
        let resource = described[0].as_ref().unwrap();
        assert_eq!(
            resource.get("retention.ms").unwrap().value.as_deref(),
            Some("3600000")
        );
        assert_eq!(
            resource.get("segment.bytes").unwrap().value.as_deref(),
            Some("1073741824")
        );
        assert!(resource.get("segment.bytes").unwrap().is_default);

        let mut cluster = client::Cluster::connect(&bootstrap).await.unwrap();
        let topics = cluster.metadata(None, false).await.unwrap();
        let names: Vec<_> = topics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["admin-a"],
            "validate-only and refused creations made nothing"
        );
        assert_eq!(topics[0].partitions.len(), 5);

        let deleted = admin.delete_topics(&["admin-a"], &options).await.unwrap();
        assert!(deleted[0].is_ok());
        assert!(cluster.metadata(None, false).await.unwrap().is_empty());
        let missing = admin.delete_topics(&["admin-a"], &options).await.unwrap();
        assert_eq!(
            missing[0].as_ref().unwrap_err().1,
            RDKafkaErrorCode::UnknownTopicOrPartition
        );
    });
}

#[test]
fn deleted_topic_recreated_under_the_same_name_starts_empty() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(30), async {
        create_topic(&bootstrap, "reborn", 1, &[]).await;
        let batch =
            client::encode_batch(&crate::common::records("old", 5), client::Compression::None)
                .unwrap();
        assert_eq!(raw_produce(&bootstrap, "reborn", 0, batch).0, 0);
        let admin = admin(&bootstrap);
        admin
            .delete_topics(&["reborn"], &AdminOptions::new())
            .await
            .unwrap();
        create_topic(&bootstrap, "reborn", 1, &[]).await;
        assert_eq!(list_offset(&bootstrap, "reborn", 0, -1).await, 0);
    });
}

#[test]
fn retention_deletes_old_segments() {
    let node =
        Node::start(NodeOptions::default().property("log.retention.check.interval.ms", "200"));
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(30), async {
        create_topic(
            &bootstrap,
            "retained",
            1,
            &[("segment.bytes", "1024"), ("retention.bytes", "2048")],
        )
        .await;
        for i in 0..40 {
            let batch = client::encode_batch(
                &crate::common::records(&format!("r{i}"), 3),
                client::Compression::None,
            )
            .unwrap();
            assert_eq!(raw_produce(&bootstrap, "retained", 0, batch).0, 0);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let start = list_offset(&bootstrap, "retained", 0, -2).await;
            if start > 0 {
                assert_eq!(
                    list_offset(&bootstrap, "retained", 0, -1).await,
                    120,
                    "the end is untouched"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "retention.bytes never deleted a segment"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[test]
fn command_line_creates_produces_consumes_and_deletes() {
    let node = Node::start_default();
    let b = node.bootstrap();
    tool::ok(&[
        "topic",
        "create",
        "-b",
        &b,
        "cli",
        "-p",
        "2",
        "-c",
        "retention.ms=60000",
    ]);
    assert!(tool::ok(&["topic", "list", "-b", &b]).contains("cli"));
    let described = tool::ok(&["topic", "describe", "-b", &b, "cli"]);
    assert!(
        described.contains("retention.ms") && described.contains("60000"),
        "{described}"
    );
    Strata::default()
        .stdin("a:one\nb:two\na:three\n")
        .ok(&["produce", "-b", &b, "cli", "-K", ":", "-H", "src=cli"]);
    let out = tool::ok(&["consume", "-b", &b, "cli", "--format", "%k=%v %h"]);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["a=one src=cli", "a=three src=cli", "b=two src=cli"]);
    let json = tool::ok(&["consume", "-b", &b, "cli", "--format", "json", "-n", "1"]);
    assert!(json.contains("\"headers\":[[\"src\",\"cli\"]]"), "{json}");
    tool::ok(&[
        "topic",
        "alter-config",
        "-b",
        &b,
        "cli",
        "--set",
        "retention.ms=1000",
        "--delete",
        "cleanup.policy",
    ]);
    assert!(tool::ok(&["topic", "describe", "-b", &b, "cli"]).contains("1000"));
    tool::ok(&["topic", "delete", "-b", &b, "cli"]);
    assert!(!tool::ok(&["topic", "list", "-b", &b]).contains("cli"));
}

#[test]
fn compacted_topics_keep_the_latest_value_of_each_key() {
    let node = Node::start(NodeOptions::default().property("log.cleaner.backoff.ms", "200"));
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(
            &bootstrap,
            "compacted",
            1,
            &[("cleanup.policy", "compact"), ("segment.bytes", "1024")],
        ),
    );
    // 200 records over 10 keys, one batch each, so the log spans many segments.
    for i in 0..200 {
        let record = client::OwnedRecord {
            offset: 0,
            timestamp: 1_700_000_000_000 + i,
            key: Some(bytes::Bytes::from(format!("key-{}", i % 10))),
            value: Some(bytes::Bytes::from(format!("value-{i}"))),
            headers: vec![],
        };
        let batch = client::encode_batch(&[record], client::Compression::None).unwrap();
        assert_eq!(raw_produce(&bootstrap, "compacted", 0, batch).0, 0);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = crate::common::read_all(&bootstrap, "compacted", 1, 200, Duration::from_secs(3));
        let mut latest = std::collections::HashMap::new();
        for g in &got {
            latest.insert(g.key.clone().unwrap(), g.value.clone().unwrap());
        }
        for k in 0..10 {
            let expected = format!("value-{}", 190 + k).into_bytes();
            assert_eq!(
                latest[format!("key-{k}").as_bytes()],
                expected,
                "the latest value of every key survives"
            );
        }
        let offsets: Vec<i64> = got.iter().map(|g| g.offset).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "offsets stay in order"
        );
        if got.len() < 60 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "compaction never removed superseded records ({} left)",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Metadata v12 for `topics` (name, id) on a fresh raw connection.
fn metadata_v12(
    bootstrap: &str,
    topics: Vec<(Option<&str>, uuid::Uuid)>,
) -> kafka_protocol::messages::MetadataResponse {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(Some(
            topics
                .into_iter()
                .map(|(name, id)| {
                    MetadataRequestTopic::default()
                        .with_name(name.map(|n| TopicName(StrBytes::from_string(n.to_owned()))))
                        .with_topic_id(id)
                })
                .collect(),
        ));
    let mut stream = strata_tests::raw::connect(bootstrap);
    strata_tests::raw::call(&mut stream, &request, 12).1
}

#[test]
fn topics_are_described_and_deleted_by_id_as_java_s_admin_client_asks() {
    const UNKNOWN_TOPIC_ID: i16 = 100;
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    run_bounded(
        Duration::from_secs(20),
        create_topic(&bootstrap, "known-by-id", 3, &[]),
    );
    let by_name = metadata_v12(&bootstrap, vec![(Some("known-by-id"), uuid::Uuid::nil())]);
    let id = by_name.topics[0].topic_id;
    assert!(!id.is_nil(), "the topic has an id");
    let unknown = uuid::Uuid::from_u128(id.as_u128() ^ 1);
    // describeTopics(TopicCollection.ofTopicIds(..)) sends the id with a null name; other
    // clients send an empty one.
    let response = metadata_v12(
        &bootstrap,
        vec![(None, id), (Some(""), id), (None, unknown)],
    );
    for topic in &response.topics[..2] {
        assert_eq!(topic.error_code, 0, "{topic:?}");
        assert_eq!(
            topic.name.as_ref().map(|n| n.0.to_string()).as_deref(),
            Some("known-by-id")
        );
        assert_eq!(topic.topic_id, id);
        assert_eq!(topic.partitions.len(), 3);
    }
    let missing = &response.topics[2];
    assert_eq!(missing.error_code, UNKNOWN_TOPIC_ID, "{missing:?}");
    assert_eq!(missing.topic_id, unknown);
    assert!(missing.name.is_none());

    // deleteTopics(TopicCollection.ofTopicIds(..)): DeleteTopics v6 by id.
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::{DeleteTopicsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            DeleteTopicState::default()
                .with_name(Some(TopicName(StrBytes::from_static_str(""))))
                .with_topic_id(id),
            DeleteTopicState::default().with_topic_id(unknown),
        ]);
    let mut stream = strata_tests::raw::connect(&bootstrap);
    let (_, deleted) = strata_tests::raw::call(&mut stream, &request, 6);
    assert_eq!(deleted.responses[0].error_code, 0, "{deleted:?}");
    assert_eq!(
        deleted.responses[0]
            .name
            .as_ref()
            .map(|n| n.0.to_string())
            .as_deref(),
        Some("known-by-id")
    );
    assert_eq!(deleted.responses[1].error_code, UNKNOWN_TOPIC_ID);
    let after = metadata_v12(&bootstrap, vec![(Some("known-by-id"), uuid::Uuid::nil())]);
    assert_eq!(after.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
}
