//! Broker configs as Kafka describes and changes them: synonyms with their sources, the
//! broker resource's full set of properties, and dynamic broker configs (cluster default
//! and per broker) kept in the metadata quorum and applied while running.

use std::net::TcpStream;
use std::time::Duration;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;
use strata_tests::raw::{call, closed_by_server, connect};
use strata_tests::{run_bounded, Node, NodeOptions};

use crate::common::{create_topic, producer};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
// Kafka's ConfigSource ids.
const TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

/// DescribeConfigs v4 of one resource, with synonyms and documentation.
fn describe(
    stream: &mut TcpStream,
    kind: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResult {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(name))
            .with_configuration_keys(
                keys.map(|k| k.iter().map(|k| s(k)).collect()),
            )])
        .with_include_synonyms(true)
        .with_include_documentation(true);
    let (_, mut response) = call(stream, &request, 4);
    response.results.remove(0)
}

/// One entry's value, source and synonyms (name, value, source).
type Entry = (Option<String>, i8, Vec<(String, Option<String>, i8)>);

fn entry(result: &DescribeConfigsResult, key: &str) -> Entry {
    let found = result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} not described: {result:?}"));
    (
        found.value.as_ref().map(|v| v.to_string()),
        found.config_source,
        found
            .synonyms
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.value.as_ref().map(|v| v.to_string()),
                    s.source,
                )
            })
            .collect(),
    )
}

/// IncrementalAlterConfigs v1 of one resource; returns (error code, message).
fn alter(
    stream: &mut TcpStream,
    kind: i8,
    name: &str,
    changes: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(s(name))
            .with_configs(
                changes
                    .iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_config_operation(*op)
                            .with_value(v.map(s))
                    })
                    .collect(),
            )])
        .with_validate_only(validate_only);
    let (_, response) = call(stream, &request, 1);
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

fn syn(name: &str, value: &str, source: i8) -> (String, Option<String>, i8) {
    (name.to_owned(), Some(value.to_owned()), source)
}

/// The effective `retention.ms` of `topic` and its source.
fn retention(stream: &mut TcpStream, topic: &str) -> (Option<String>, i8) {
    let (value, source, _) = entry(
        &describe(stream, TOPIC, topic, Some(&["retention.ms"])),
        "retention.ms",
    );
    (value, source)
}

#[test]
fn topic_configs_list_their_synonyms_with_sources_in_kafkas_order() {
    let node = Node::start(
        NodeOptions::default()
            .property("log.retention.ms", "7200000")
            .property("log.retention.hours", "5"),
    );
    let bootstrap = node.bootstrap();
    run_bounded(Duration::from_secs(30), async {
        create_topic(&bootstrap, "synonyms", 1, &[("retention.ms", "1000")]).await;
    });
    let mut stream = connect(&bootstrap);
    assert_eq!(
        alter(
            &mut stream,
            BROKER,
            "",
            &[("log.retention.ms", SET, Some("3600000"))],
            false
        )
        .0,
        0
    );
    let result = describe(&mut stream, TOPIC, "synonyms", None);
    assert_eq!(result.error_code, 0, "{result:?}");
    assert_eq!(
        entry(&result, "retention.ms"),
        (
            Some("1000".to_owned()),
            TOPIC_CONFIG,
            vec![
                syn("retention.ms", "1000", TOPIC_CONFIG),
                syn("log.retention.ms", "3600000", DYNAMIC_DEFAULT_BROKER_CONFIG),
                syn("log.retention.ms", "7200000", STATIC_BROKER_CONFIG),
                syn("log.retention.hours", "5", STATIC_BROKER_CONFIG),
                syn("log.retention.hours", "168", DEFAULT_CONFIG),
            ]
        )
    );
    assert_eq!(
        entry(&result, "segment.bytes"),
        (
            Some("1073741824".to_owned()),
            DEFAULT_CONFIG,
            vec![syn("log.segment.bytes", "1073741824", DEFAULT_CONFIG)]
        )
    );
    // The same property on the broker resource: its synonyms are the broker's alone.
    let broker = describe(
        &mut stream,
        BROKER,
        &node.node_id().to_string(),
        Some(&["log.retention.ms"]),
    );
    assert_eq!(
        entry(&broker, "log.retention.ms"),
        (
            Some("3600000".to_owned()),
            DYNAMIC_DEFAULT_BROKER_CONFIG,
            vec![
                syn("log.retention.ms", "3600000", DYNAMIC_DEFAULT_BROKER_CONFIG),
                syn("log.retention.ms", "7200000", STATIC_BROKER_CONFIG),
                syn("log.retention.hours", "5", STATIC_BROKER_CONFIG),
                syn("log.retention.hours", "168", DEFAULT_CONFIG),
            ]
        )
    );
    // The cluster-default resource lists only what is set there.
    let default = describe(&mut stream, BROKER, "", None);
    let names: Vec<_> = default.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["log.retention.ms"]);
}

#[test]
fn the_broker_resource_describes_every_known_property() {
    let node = Node::start(
        NodeOptions::default()
            .property("num.partitions", "3")
            .property("ssl.key.password", "hunter2"),
    );
    let mut stream = connect(&node.bootstrap());
    let result = describe(&mut stream, BROKER, &node.node_id().to_string(), None);
    assert_eq!(result.error_code, 0, "{result:?}");
    assert!(
        result.configs.len() > 100,
        "{} entries",
        result.configs.len()
    );
    let get = |key: &str| {
        result
            .configs
            .iter()
            .find(|c| c.name.as_str() == key)
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    let partitions = get("num.partitions");
    assert_eq!(partitions.value.as_deref(), Some("3"));
    assert_eq!(partitions.config_source, STATIC_BROKER_CONFIG);
    assert!(partitions.read_only);
    assert_eq!(partitions.config_type, 3, "INT");
    let retention = get("log.retention.ms");
    assert_eq!(retention.value, None, "unset, as in Kafka");
    assert_eq!(retention.config_source, DEFAULT_CONFIG);
    assert!(!retention.read_only, "log.retention.ms changes dynamically");
    assert_eq!(retention.config_type, 5, "LONG");
    assert!(retention
        .documentation
        .as_ref()
        .is_some_and(|d| !d.is_empty()));
    let hours = get("log.retention.hours");
    assert_eq!(hours.value.as_deref(), Some("168"));
    assert!(hours.read_only);
    let connections = get("max.connections");
    assert!(!connections.read_only);
    assert_eq!(connections.value.as_deref(), Some("2147483647"));
    let secret = get("sasl.jaas.config");
    assert!(secret.is_sensitive);
    assert_eq!(secret.value, None);
    assert_eq!(secret.config_type, 9, "PASSWORD");
    assert_eq!(get("auto.create.topics.enable").config_type, 1, "BOOLEAN");
    // A property only accepted, of no known type, may be a secret: hidden, as in Kafka.
    let password = get("ssl.key.password");
    assert!(password.is_sensitive);
    assert_eq!(password.value, None);
    assert_eq!(password.config_source, STATIC_BROKER_CONFIG);
    // Another broker's id is refused, as Kafka does.
    let other = describe(&mut stream, BROKER, "77", None);
    assert_eq!(other.error_code, INVALID_REQUEST);
}

#[test]
fn dynamic_retention_defaults_layer_over_the_file_and_survive_a_restart() {
    let mut node = Node::start(NodeOptions::default().property("log.retention.ms", "86400000"));
    let bootstrap = node.bootstrap();
    let id = node.node_id().to_string();
    run_bounded(Duration::from_secs(30), async {
        create_topic(&bootstrap, "layers", 1, &[]).await;
    });
    let mut stream = connect(&bootstrap);
    let r = |v: &str, source| (Some(v.to_owned()), source);
    assert_eq!(
        retention(&mut stream, "layers"),
        r("86400000", STATIC_BROKER_CONFIG)
    );

    // validate_only changes nothing.
    let set = |v| [("log.retention.ms", SET, Some(v))];
    assert_eq!(alter(&mut stream, BROKER, "", &set("3600000"), true).0, 0);
    assert_eq!(
        retention(&mut stream, "layers"),
        r("86400000", STATIC_BROKER_CONFIG)
    );

    assert_eq!(alter(&mut stream, BROKER, "", &set("3600000"), false).0, 0);
    assert_eq!(
        retention(&mut stream, "layers"),
        r("3600000", DYNAMIC_DEFAULT_BROKER_CONFIG)
    );
    assert_eq!(alter(&mut stream, BROKER, &id, &set("1800000"), false).0, 0);
    assert_eq!(
        retention(&mut stream, "layers"),
        r("1800000", DYNAMIC_BROKER_CONFIG)
    );

    drop(stream);
    node.stop();
    node.restart();
    let mut stream = connect(&node.bootstrap());
    assert_eq!(
        retention(&mut stream, "layers"),
        r("1800000", DYNAMIC_BROKER_CONFIG)
    );

    let delete = [("log.retention.ms", DELETE, None)];
    assert_eq!(alter(&mut stream, BROKER, &id, &delete, false).0, 0);
    assert_eq!(
        retention(&mut stream, "layers"),
        r("3600000", DYNAMIC_DEFAULT_BROKER_CONFIG)
    );
    assert_eq!(alter(&mut stream, BROKER, "", &delete, false).0, 0);
    assert_eq!(
        retention(&mut stream, "layers"),
        r("86400000", STATIC_BROKER_CONFIG)
    );
}

#[test]
fn a_dynamic_message_max_bytes_applies_to_the_next_produce() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    let mut stream = connect(&bootstrap);
    run_bounded(Duration::from_secs(40), async {
        create_topic(&bootstrap, "sized", 1, &[]).await;
        let producer = producer(&bootstrap, &[("message.max.bytes", "100000")]);
        let payload = vec![b'x'; 5_000];
        producer
            .send(
                FutureRecord::<(), _>::to("sized").payload(&payload),
                Duration::from_secs(20),
            )
            .await
            .expect("5 kB fits the default");
        assert_eq!(
            alter(
                &mut stream,
                BROKER,
                "",
                &[("message.max.bytes", SET, Some("1000"))],
                false
            )
            .0,
            0
        );
        let refused = producer
            .send(
                FutureRecord::<(), _>::to("sized").payload(&payload),
                Duration::from_secs(20),
            )
            .await;
        let (error, _) = refused.expect_err("5 kB is over the new cluster default");
        assert_eq!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge),
            "{error}"
        );
    });
}

#[test]
fn static_only_unknown_and_invalid_broker_configs_are_refused() {
    let node = Node::start_default();
    let mut stream = connect(&node.bootstrap());
    let id = node.node_id().to_string();
    let (code, message) = alter(
        &mut stream,
        BROKER,
        &id,
        &[
            ("log.retention.hours", SET, Some("1")),
            ("num.partitions", SET, Some("2")),
        ],
        false,
    );
    assert_eq!(code, INVALID_REQUEST, "{message}");
    assert!(
        message.contains("Cannot update these configs dynamically")
            && message.contains("log.retention.hours")
            && message.contains("num.partitions"),
        "{message}"
    );
    let (code, message) = alter(
        &mut stream,
        BROKER,
        "",
        &[("no.such.property", SET, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
    let (code, message) = alter(
        &mut stream,
        BROKER,
        "",
        &[("log.segment.bytes", SET, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
    let (code, _) = alter(
        &mut stream,
        BROKER,
        "one",
        &[("log.retention.ms", SET, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_REQUEST);
    // Nothing was stored.
    let default = describe(&mut stream, BROKER, "", None);
    assert!(default.configs.is_empty(), "{default:?}");
}

#[test]
fn a_dynamic_per_ip_connection_limit_applies_to_new_connections() {
    let node = Node::start_default();
    let bootstrap = node.bootstrap();
    let mut first = connect(&bootstrap);
    assert_eq!(
        alter(
            &mut first,
            BROKER,
            "",
            &[("max.connections.per.ip", SET, Some("2"))],
            false
        )
        .0,
        0
    );
    let _second = connect(&bootstrap);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut third = connect(&bootstrap);
        third
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        if closed_by_server(&mut third) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a third connection from 127.0.0.1 stayed open"
        );
        drop(third);
        std::thread::sleep(Duration::from_millis(100));
    }
}
