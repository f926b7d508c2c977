//! ACLs with Kafka's StandardAuthorizer: one node with a PLAINTEXT listener (its principal
//! `User:ANONYMOUS` is a super user, as the inter-broker listener's must be) and a
//! SASL_PLAINTEXT listener with PLAIN users; librdkafka and raw requests as those users.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateTopicsRequest, DeleteAclsRequest, DeleteTopicsRequest,
    DescribeAclsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use strata_tests::raw;
use strata_tests::sasl::{plain_login, SaslNode};
use strata_tests::{run_bounded, tool, Node};

const LIMIT: Duration = Duration::from_secs(120);
const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
/// Quotes escaped: the harness writes properties into a TOML file.
const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\" user_reader=\"reader-secret\" user_writer=\"writer-secret\";"#;

// Kafka's codes.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const MATCH: i8 = 2;
const ANY: i8 = 1;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DENY: i8 = 2;
const ALLOW: i8 = 3;
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const SECURITY_DISABLED: i16 = 54;

/// A node with a PLAINTEXT listener (`User:ANONYMOUS`, a super user) and a SASL_PLAINTEXT
/// listener with PLAIN users admin (a super user), reader and writer, under the
/// StandardAuthorizer.
fn start() -> SaslNode {
    SaslNode::start(
        JAAS,
        &[
            ("authorizer.class.name", STANDARD_AUTHORIZER),
            ("super.users", "User:admin;User:ANONYMOUS"),
            ("offsets.topic.num.partitions", "1"),
            ("group.initial.rebalance.delay.ms", "0"),
        ],
    )
}

/// A raw connection to `addr` authenticated as `user` with PLAIN.
fn login(addr: &str, user: &str) -> TcpStream {
    let mut stream = raw::connect(addr);
    let auth = plain_login(&mut stream, user, &format!("{user}-secret"));
    assert_eq!(auth.error_code, 0, "{auth:?}");
    stream
}

fn sasl_client(addr: &str, user: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", format!("{user}-secret"))
        .set("message.timeout.ms", "10000")
        .set("socket.timeout.ms", "10000");
    config
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(str(name))
        .with_resource_pattern_type(pattern)
        .with_principal(str(principal))
        .with_host(str("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

/// Creates `acls` and returns each one's error code.
fn create_acls(stream: &mut TcpStream, acls: Vec<AclCreation>) -> Vec<i16> {
    let (_, response) = raw::call(
        stream,
        &CreateAclsRequest::default().with_creations(acls),
        3,
    );
    response.results.iter().map(|r| r.error_code).collect()
}

fn create_topics(stream: &mut TcpStream, names: &[&str]) {
    let topics = names
        .iter()
        .map(|n| {
            CreatableTopic::default()
                .with_name(TopicName(str(n)))
                .with_num_partitions(1)
                .with_replication_factor(1)
        })
        .collect();
    let (_, response) = raw::call(
        stream,
        &CreateTopicsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(10_000),
        7,
    );
    for t in &response.topics {
        assert_eq!(t.error_code, 0, "{t:?}");
    }
}

/// The topics a Metadata request for every topic shows on `stream`.
fn visible_topics(stream: &mut TcpStream) -> Vec<String> {
    let (_, metadata) = raw::call(stream, &MetadataRequest::default().with_topics(None), 12);
    let mut names: Vec<String> = metadata
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    names.sort();
    names
}

/// The error code of Metadata for `topic` alone (auto-creation off for the request).
fn metadata_error(stream: &mut TcpStream, topic: &str) -> i16 {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(str(topic))))
        ]))
        .with_allow_auto_topic_creation(false);
    let (_, metadata) = raw::call(stream, &request, 12);
    metadata.topics[0].error_code
}

fn delete_topic(stream: &mut TcpStream, topic: &str) -> i16 {
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![TopicName(str(topic))])
        .with_timeout_ms(10_000);
    let (_, response) = raw::call(stream, &request, 4);
    response.responses[0].error_code
}

/// Produces one record to `topic` as `user`; the error librdkafka reports, if any.
async fn produce_as(addr: &str, user: &str, topic: &str) -> Option<RDKafkaErrorCode> {
    let producer: FutureProducer = sasl_client(addr, user).create().expect("producer");
    crate::common::produce_one(&producer, topic, user).await
}

/// DescribeAcls with a filter on topic `name` with `pattern`: (pattern type, name) of each
/// resource returned with its binding count.
fn describe_topic_acls(
    stream: &mut TcpStream,
    name: Option<&str>,
    pattern: i8,
) -> Vec<(i8, String, usize)> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(name.map(str))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY);
    let (_, response) = raw::call(stream, &request, 3);
    assert_eq!(response.error_code, 0, "{response:?}");
    let mut found: Vec<(i8, String, usize)> = response
        .resources
        .iter()
        .map(|r| (r.pattern_type, r.resource_name.to_string(), r.acls.len()))
        .collect();
    found.sort();
    found
}

#[test]
fn a_read_only_principal_consumes_but_cannot_produce_see_other_topics_or_delete() {
    let secured = start();
    let mut admin = raw::connect(&secured.plaintext);
    create_topics(&mut admin, &["t", "other"]);
    run_bounded(LIMIT, async {
        // Records to read, written by the super user.
        let producer: FutureProducer = sasl_client(&secured.sasl, "admin")
            .create()
            .expect("producer");
        for i in 0..3 {
            producer
                .send(
                    FutureRecord::<(), _>::to("t")
                        .payload(&format!("r{i}"))
                        .partition(0),
                    Duration::from_secs(15),
                )
                .await
                .expect("the super user produces");
        }
        // Without ACLs (allow.everyone.if.no.acl.found=false) the reader sees nothing.
        let mut reader = login(&secured.sasl, "reader");
        assert_eq!(visible_topics(&mut reader), Vec::<String>::new());
        assert_eq!(metadata_error(&mut reader, "t"), TOPIC_AUTHORIZATION_FAILED);
        // The reader may not grant itself anything.
        assert_eq!(
            create_acls(
                &mut reader,
                vec![acl(TOPIC, "t", LITERAL, "User:reader", WRITE, ALLOW)]
            ),
            [CLUSTER_AUTHORIZATION_FAILED]
        );

        let granted = create_acls(
            &mut admin,
            vec![
                acl(TOPIC, "t", LITERAL, "User:reader", READ, ALLOW),
                acl(GROUP, "g", LITERAL, "User:reader", READ, ALLOW),
            ],
        );
        assert_eq!(granted, [0, 0]);

        // READ on t implies DESCRIBE: t, and only t, shows; other is refused by name.
        assert_eq!(visible_topics(&mut reader), ["t"]);
        assert_eq!(metadata_error(&mut reader, "t"), 0);
        assert_eq!(
            metadata_error(&mut reader, "other"),
            TOPIC_AUTHORIZATION_FAILED
        );
        // Not even existence leaks: a missing topic answers the same.
        assert_eq!(
            metadata_error(&mut reader, "missing"),
            TOPIC_AUTHORIZATION_FAILED
        );

        // The reader consumes t in group g and commits.
        let consumer: BaseConsumer = sasl_client(&secured.sasl, "reader")
            .set("group.id", "g")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&["t"]).expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        while got.len() < 3 && Instant::now() < deadline {
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.expect("the reader consumes t");
                got.push(
                    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
                );
            }
        }
        assert_eq!(got, ["r0", "r1", "r2"]);
        consumer
            .commit_consumer_state(CommitMode::Sync)
            .expect("the reader commits in g");
        drop(consumer);

        // A group without an ACL is refused.
        let outsider: BaseConsumer = sasl_client(&secured.sasl, "reader")
            .set("group.id", "not-granted")
            .create()
            .expect("consumer");
        outsider.subscribe(&["t"]).expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut refused = false;
        while !refused && Instant::now() < deadline {
            if let Some(Err(KafkaError::MessageConsumption(code))) =
                outsider.poll(Duration::from_millis(200))
            {
                refused = code == RDKafkaErrorCode::GroupAuthorizationFailed;
            }
        }
        assert!(refused, "a group the reader may not READ is refused");
        drop(outsider);

        // READ is not WRITE, nor DELETE.
        assert_eq!(
            produce_as(&secured.sasl, "reader", "t").await,
            Some(RDKafkaErrorCode::TopicAuthorizationFailed)
        );
        assert_eq!(delete_topic(&mut reader, "t"), TOPIC_AUTHORIZATION_FAILED);
        assert_eq!(
            delete_topic(&mut reader, "other"),
            TOPIC_AUTHORIZATION_FAILED
        );

        // A super user over SASL may do everything.
        let mut super_user = login(&secured.sasl, "admin");
        assert_eq!(
            visible_topics(&mut super_user),
            ["__consumer_offsets", "other", "t"]
        );
        assert_eq!(delete_topic(&mut super_user, "other"), 0);
    });
}

#[test]
fn prefixed_patterns_deny_beats_allow_and_acls_survive_a_restart() {
    let mut secured = start();
    let mut admin = raw::connect(&secured.plaintext);
    create_topics(&mut admin, &["app-orders", "app-audit", "billing"]);
    let granted = create_acls(
        &mut admin,
        vec![
            acl(TOPIC, "app-", PREFIXED, "User:writer", WRITE, ALLOW),
            acl(TOPIC, "app-audit", LITERAL, "User:*", WRITE, DENY),
        ],
    );
    assert_eq!(granted, [0, 0]);
    run_bounded(LIMIT, async {
        assert_eq!(
            produce_as(&secured.sasl, "writer", "app-orders").await,
            None
        );
        assert_eq!(
            produce_as(&secured.sasl, "writer", "app-audit").await,
            Some(RDKafkaErrorCode::TopicAuthorizationFailed),
            "DENY beats ALLOW"
        );
        assert_eq!(
            produce_as(&secured.sasl, "writer", "billing").await,
            Some(RDKafkaErrorCode::TopicAuthorizationFailed),
            "outside the prefix"
        );
    });
    // MATCH finds every binding applying to a resource; LITERAL only its own.
    assert_eq!(
        describe_topic_acls(&mut admin, Some("app-audit"), MATCH),
        [
            (LITERAL, "app-audit".to_owned(), 1),
            (PREFIXED, "app-".to_owned(), 1)
        ]
    );
    assert_eq!(
        describe_topic_acls(&mut admin, Some("app-audit"), LITERAL),
        [(LITERAL, "app-audit".to_owned(), 1)]
    );

    secured.node.stop();
    secured.node.restart();
    let mut admin = raw::connect(&secured.plaintext);
    assert_eq!(
        describe_topic_acls(&mut admin, None, ANY),
        [
            (LITERAL, "app-audit".to_owned(), 1),
            (PREFIXED, "app-".to_owned(), 1)
        ],
        "ACLs are kept in the metadata quorum"
    );
    run_bounded(LIMIT, async {
        assert_eq!(
            produce_as(&secured.sasl, "writer", "app-orders").await,
            None
        );
        assert_eq!(
            produce_as(&secured.sasl, "writer", "app-audit").await,
            Some(RDKafkaErrorCode::TopicAuthorizationFailed)
        );
    });

    // Deleting the DENY by filter reports it, and opens the topic to the prefix's ALLOW.
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(str("app-audit")))
        .with_pattern_type_filter(LITERAL)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(DENY);
    let (_, deleted) = raw::call(
        &mut admin,
        &DeleteAclsRequest::default().with_filters(vec![filter]),
        3,
    );
    assert_eq!(deleted.filter_results[0].error_code, 0);
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    assert_eq!(
        describe_topic_acls(&mut admin, None, ANY),
        [(PREFIXED, "app-".to_owned(), 1)]
    );
    run_bounded(LIMIT, async {
        assert_eq!(produce_as(&secured.sasl, "writer", "app-audit").await, None);
    });
}

#[test]
fn acl_apis_without_an_authorizer_answer_security_disabled() {
    let node = Node::start_default();
    let mut stream = raw::connect(&node.bootstrap());
    assert_eq!(
        create_acls(
            &mut stream,
            vec![acl(TOPIC, "t", LITERAL, "User:a", READ, ALLOW)]
        ),
        [SECURITY_DISABLED]
    );
    let (_, described) = raw::call(
        &mut stream,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(ANY)
            .with_pattern_type_filter(ANY)
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(ANY)
            .with_permission_type(ANY),
        3,
    );
    assert_eq!(described.error_code, SECURITY_DISABLED);
}

/// Runs `strata acl` with `args` against `brokers`, bounded to 30 seconds; its output.
fn strata_acl(brokers: &str, args: &[&str]) -> String {
    tool::ok(&[&["-b", brokers, "acl"], args].concat())
}

#[test]
fn strata_acl_adds_lists_and_removes_acls_as_kafka_acls_does() {
    let secured = start();
    let brokers = secured.plaintext.as_str();
    let added = strata_acl(
        brokers,
        &[
            "add",
            "--allow-principal",
            "User:reader",
            "--operation",
            "Read",
            "--operation",
            "Describe",
            "--topic",
            "orders",
            "--group",
            "billing",
        ],
    );
    assert!(added.contains("added 4 ACLs"), "{added}");
    strata_acl(
        brokers,
        &[
            "add",
            "--deny-principal",
            "User:*",
            "--operation",
            "Write",
            "--topic",
            "audit-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    let listed = strata_acl(brokers, &["list"]);
    let lines: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(lines.len(), 5, "{listed}");
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["TOPIC", "audit-", "PREFIXED", "User:*", "*", "WRITE", "DENY"]),
        "{listed}"
    );
    // MATCH on a topic: its literal ACLs and the prefixes covering it.
    let matching = strata_acl(
        brokers,
        &[
            "list",
            "--topic",
            "audit-log",
            "--resource-pattern-type",
            "match",
        ],
    );
    assert_eq!(matching.lines().count(), 2, "{matching}");
    let removed = strata_acl(
        brokers,
        &[
            "remove",
            "--allow-principal",
            "User:reader",
            "--topic",
            "orders",
        ],
    );
    assert!(removed.contains("removed 2 ACLs"), "{removed}");
    let mut admin = raw::connect(brokers);
    assert_eq!(
        describe_topic_acls(&mut admin, None, ANY),
        [(PREFIXED, "audit-".to_owned(), 1)]
    );
}

/// The `authorized_operations` bits of `operations` (Kafka's codes).
fn bits(operations: &[i8]) -> i32 {
    operations.iter().fold(0, |b, op| b | (1 << op))
}

#[test]
fn authorized_operations_are_what_the_acls_allow_and_only_when_asked() {
    use kafka_protocol::messages::{DescribeClusterRequest, DescribeGroupsRequest, GroupId};
    const DESCRIBE: i8 = 8;
    const NOT_ASKED: i32 = i32::MIN;
    let secured = start();
    let mut admin = raw::connect(&secured.plaintext);
    create_topics(&mut admin, &["t"]);
    let granted = create_acls(
        &mut admin,
        vec![
            acl(TOPIC, "t", LITERAL, "User:reader", READ, ALLOW),
            acl(GROUP, "g", LITERAL, "User:reader", READ, ALLOW),
        ],
    );
    assert_eq!(granted, [0, 0]);
    let mut reader = login(&secured.sasl, "reader");

    let metadata = |stream: &mut TcpStream, asked: bool| {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(str("t"))))
            ]))
            .with_include_topic_authorized_operations(asked)
            .with_include_cluster_authorized_operations(asked);
        let (_, response) = raw::call(stream, &request, 10);
        (
            response.topics[0].topic_authorized_operations,
            response.cluster_authorized_operations,
        )
    };
    // READ implies DESCRIBE; nothing on the cluster.
    assert_eq!(metadata(&mut reader, true), (bits(&[READ, DESCRIBE]), 0));
    assert_eq!(metadata(&mut reader, false), (NOT_ASKED, NOT_ASKED));
    // A super user may do every operation a topic and the cluster support.
    let every_topic_op = bits(&[READ, WRITE, 5, 6, 7, DESCRIBE, 10, 11]);
    let every_cluster_op = bits(&[5, 7, DESCRIBE, 9, 10, 11, 12]);
    assert_eq!(
        metadata(&mut admin, true),
        (every_topic_op, every_cluster_op)
    );

    let cluster = |stream: &mut TcpStream| {
        let request =
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
        raw::call(stream, &request, 0)
            .1
            .cluster_authorized_operations
    };
    assert_eq!(cluster(&mut reader), 0);
    assert_eq!(cluster(&mut admin), every_cluster_op);

    // A group known by its committed offsets is described with its operations.
    let consumer: BaseConsumer = sasl_client(&secured.sasl, "reader")
        .set("group.id", "g")
        .create()
        .expect("consumer");
    let mut offsets = rdkafka::TopicPartitionList::new();
    offsets
        .add_partition_offset("t", 0, rdkafka::Offset::Offset(0))
        .expect("offset");
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
        assert!(Instant::now() < deadline, "commit failed: {error}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut groups = |asked: bool| {
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(str("g"))])
            .with_include_authorized_operations(asked);
        let group = raw::call(&mut reader, &request, 5).1.groups.remove(0);
        (group.error_code, group.authorized_operations)
    };
    assert_eq!(groups(true), (0, bits(&[READ, DESCRIBE])));
    assert_eq!(groups(false), (0, NOT_ASKED));

    // A consumer-protocol member must be able to DESCRIBE every topic it subscribes to.
    let join = |topic: &str| {
        use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, GroupId};
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(str("g")))
            .with_member_id(str("m-1"))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(str(topic))]))
            .with_topic_partitions(Some(Vec::new()));
        let mut reader = login(&secured.sasl, "reader");
        raw::call(&mut reader, &request, 1).1.error_code
    };
    assert_eq!(join("other"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(join("t"), 0);
}
